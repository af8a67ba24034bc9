// Unstructured: the per-output-row pattern of Wanda/JSQ (exactly floor(s*cin) zeros per row).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "sparq/prune/prune_options.hpp"

namespace sparq {

namespace prune_detail {

/// Marks in `keep[0..n)` the `k` smallest scores as pruned (0), the rest kept (1). Ties are broken
/// by position (lower index pruned first), i.e. exactly the first k of a stable ascending sort.
/// `score(i)` gives the score of element i; `idx` is scratch of size n.
template <class Score>
inline void prune_k_smallest(std::size_t n, std::size_t k, Score score, std::uint8_t* keep,
                             std::size_t stride, std::vector<std::uint32_t>& idx) {
  for (std::size_t i = 0; i < n; ++i) keep[i * stride] = 1;
  if (k == 0) return;
  idx.resize(n);
  std::iota(idx.begin(), idx.end(), 0u);
  auto less = [&](std::uint32_t a, std::uint32_t b) {
    const float sa = score(a), sb = score(b);
    return sa < sb || (sa == sb && a < b);
  };
  if (k < n) std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), less);
  for (std::size_t i = 0; i < k; ++i) keep[idx[i] * stride] = 0;
}

}  // namespace prune_detail

/// Per output row (the comparison group of Wanda and JSQ, docs/algorithms.md#mask-selection): in each row
/// the floor(sparsity*cin) lowest scores are pruned (ties: lower column first, as a stable sort),
/// so every row has exactly that many zeros.
struct Unstructured {
  [[nodiscard]] static std::string name() { return "unstructured"; }
  static void validate(std::size_t /*rows*/, std::size_t /*cols*/) {}
  static void select(MatrixView<const float> s, const PruneOptions& o, MatrixView<std::uint8_t> mask) {
    const std::size_t k = prune_count(o.sparsity, s.cols());
    const long long rows = static_cast<long long>(s.rows());
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
      std::vector<std::uint32_t> idx;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
      for (long long r = 0; r < rows; ++r) {
        const float* sr = s.row(static_cast<std::size_t>(r));
        prune_detail::prune_k_smallest(
            s.cols(), k, [sr](std::uint32_t i) { return sr[i]; }, mask.row(static_cast<std::size_t>(r)), 1, idx);
      }
    }
  }
};
static_assert(SparsityPattern<Unstructured>);

}  // namespace sparq
