// UnstructuredLayer: one score threshold for the whole matrix (magnitude pruning's reference behaviour).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparq/prune/prune_options.hpp"

namespace sparq {

/// One comparison group per matrix, as Wanda's/SparseGPT's magnitude baseline
/// (docs/algorithms.md#magnitude): tau = sort(scores)[floor(numel*sparsity)] and every score <= tau
/// is pruned. Ties and the inclusive comparison make the sparsity at least floor(numel*s)+1
/// (reference behaviour); per-row counts vary. sparsity = 0 prunes nothing (the reference would prune the minimum).
struct UnstructuredLayer {
  [[nodiscard]] static std::string name() { return "unstructured_layer"; }
  static void validate(std::size_t /*rows*/, std::size_t /*cols*/) {}
  static void select(MatrixView<const float> s, const PruneOptions& o, MatrixView<std::uint8_t> mask) {
    const std::size_t n = s.rows() * s.cols();
    const std::size_t k = prune_count(o.sparsity, n);
    if (o.sparsity == 0.0 || n == 0) {
      for (std::size_t r = 0; r < s.rows(); ++r) std::fill(mask.row(r), mask.row(r) + s.cols(), std::uint8_t{1});
      return;
    }
    std::vector<float> flat;
    flat.reserve(n);
    for (std::size_t r = 0; r < s.rows(); ++r) flat.insert(flat.end(), s.row(r), s.row(r) + s.cols());
    std::nth_element(flat.begin(), flat.begin() + static_cast<std::ptrdiff_t>(k), flat.end());
    const float tau = flat[k];
    for (std::size_t r = 0; r < s.rows(); ++r) {
      const float* sr = s.row(r);
      std::uint8_t* m = mask.row(r);
      for (std::size_t c = 0; c < s.cols(); ++c) m[c] = sr[c] <= tau ? 0 : 1;
    }
  }
};
static_assert(SparsityPattern<UnstructuredLayer>);

}  // namespace sparq
