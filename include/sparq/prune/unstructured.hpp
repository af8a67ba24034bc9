// Unstructured: the per-output-row pattern of Wanda/JSQ (exactly floor(s*cin) zeros per row).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sparq/prune/prune_options.hpp"

namespace sparq {

namespace prune_detail {

/// Scratch of prune_k_smallest (reused across rows: one per thread).
struct SelectScratch {
  std::vector<std::uint32_t> keys, cand;
  std::vector<std::uint32_t> hist;
};

/// The float's bits mapped to an unsigned key with the same order as float `<` on finite values
/// (and on ±inf); -0 is first made +0 so that the two zeros are one key, as they compare equal.
[[nodiscard]] inline std::uint32_t order_key(float f) noexcept {
  const float z = f + 0.0f;
  std::uint32_t u;
  std::memcpy(&u, &z, sizeof u);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

/// Marks in `keep[0..n)` the `k` smallest scores as pruned (0), the rest kept (1). Ties are broken
/// by position (lower index pruned first), i.e. exactly the first k of a stable ascending sort.
/// `score(i)` gives the score of element i (compared as float; finite, or ±inf).
///
/// Radix selection of the k-th smallest key t (order_key: the float order as unsigned integers)
/// in three histogram passes over 11, 11 and 10 bits, each over the keys that share the bits fixed
/// so far; then every key below t is pruned, and of the keys equal to t the lowest-indexed ones
/// until k are. Linear in n, without sorting (several times faster than a comparison sort or an
/// nth_element of indices).
template <class Score>
inline void prune_k_smallest(std::size_t n, std::size_t k, Score score, std::uint8_t* keep,
                             std::size_t stride, SelectScratch& sc) {
  if (k >= n) {
    for (std::size_t i = 0; i < n; ++i) keep[i * stride] = 0;
    return;
  }
  for (std::size_t i = 0; i < n; ++i) keep[i * stride] = 1;
  if (k == 0) return;
  sc.keys.resize(n);
  std::uint32_t* keys = sc.keys.data();
  for (std::size_t i = 0; i < n; ++i) keys[i] = order_key(static_cast<float>(score(static_cast<std::uint32_t>(i))));
  sc.hist.resize(2048);
  std::uint32_t* hist = sc.hist.data();
  // The bucket of hist holding the rank-th smallest key (rank is 1-based; the histogram counts at
  // least rank keys); lowers rank by the count of the buckets below it.
  auto pick = [hist](std::size_t& rank) {
    std::size_t b = 0;
    while (hist[b] < rank) rank -= hist[b++];
    return static_cast<std::uint32_t>(b);
  };
  std::size_t rank = k;
  std::fill(hist, hist + 2048, 0u);
  for (std::size_t i = 0; i < n; ++i) ++hist[keys[i] >> 21];
  const std::uint32_t top = pick(rank);
  sc.cand.clear();
  std::fill(hist, hist + 2048, 0u);
  for (std::size_t i = 0; i < n; ++i)
    if ((keys[i] >> 21) == top) {
      sc.cand.push_back(keys[i]);
      ++hist[(keys[i] >> 10) & 2047u];
    }
  const std::uint32_t mid = pick(rank);
  std::fill(hist, hist + 1024, 0u);
  for (const std::uint32_t c : sc.cand)
    if (((c >> 10) & 2047u) == mid) ++hist[c & 1023u];
  const std::uint32_t low = pick(rank);
  const std::uint32_t t = (top << 21) | (mid << 10) | low;
  // rank = how many keys equal to t are among the k smallest (>= 1).
  for (std::size_t i = 0; i < n; ++i) {
    if (keys[i] < t) {
      keep[i * stride] = 0;
    } else if (keys[i] == t && rank > 0) {
      keep[i * stride] = 0;
      --rank;
    }
  }
}

}  // namespace prune_detail

/// Per output row (the comparison group of Wanda and JSQ, docs/algorithms.md#mask-selection): in each row
/// the floor(sparsity*cin) lowest scores are pruned (ties: lower column first, as a stable sort),
/// so every row has exactly that many zeros.
struct Unstructured {
  [[nodiscard]] static std::string name() { return "unstructured"; }
  static constexpr bool row_local = true;  ///< each row's selection reads that row's scores only
  static void validate(std::size_t /*rows*/, std::size_t /*cols*/) {}
  static void select(MatrixView<const float> s, const PruneOptions& o, MatrixView<std::uint8_t> mask) {
    const std::size_t k = prune_count(o.sparsity, s.cols());
    const long long rows = static_cast<long long>(s.rows());
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
      prune_detail::SelectScratch idx;
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
