// OutputChannels: structured pattern that prunes whole output rows (lowest score sums).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparq/prune/unstructured.hpp"

namespace sparq {

/// Prunes floor(sparsity*cout) whole output rows: the rows with the lowest sum of scores (sum
/// over the row of the metric's scores, in double; ties: lower row first).
struct OutputChannels {
  [[nodiscard]] static std::string name() { return "output_channels"; }
  static void validate(std::size_t /*rows*/, std::size_t /*cols*/) {}
  static void select(MatrixView<const float> s, const PruneOptions& o, MatrixView<std::uint8_t> mask) {
    std::vector<float> sums(s.rows());
    for (std::size_t r = 0; r < s.rows(); ++r) {
      double acc = 0;
      for (std::size_t c = 0; c < s.cols(); ++c) acc += s(r, c);
      sums[r] = static_cast<float>(acc);
    }
    std::vector<std::uint8_t> keep(s.rows());
    prune_detail::SelectScratch idx;
    prune_detail::prune_k_smallest(
        s.rows(), prune_count(o.sparsity, s.rows()), [&](std::uint32_t i) { return sums[i]; }, keep.data(), 1, idx);
    for (std::size_t r = 0; r < s.rows(); ++r)
      for (std::size_t c = 0; c < s.cols(); ++c) mask(r, c) = keep[r];
  }
};
static_assert(SparsityPattern<OutputChannels>);

}  // namespace sparq
