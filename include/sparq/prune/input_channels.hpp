// InputChannels: structured pattern that prunes whole input columns (lowest score sums).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparq/prune/unstructured.hpp"

namespace sparq {

/// Prunes floor(sparsity*cin) whole input columns: the columns with the lowest sum of scores over
/// all output rows (in double; ties: lower column first).
struct InputChannels {
  [[nodiscard]] static std::string name() { return "input_channels"; }
  static void validate(std::size_t /*rows*/, std::size_t /*cols*/) {}
  static void select(MatrixView<const float> s, const PruneOptions& o, MatrixView<std::uint8_t> mask) {
    std::vector<double> acc(s.cols(), 0.0);
    for (std::size_t r = 0; r < s.rows(); ++r)
      for (std::size_t c = 0; c < s.cols(); ++c) acc[c] += s(r, c);
    std::vector<float> sums(acc.begin(), acc.end());
    std::vector<std::uint8_t> keep(s.cols());
    prune_detail::SelectScratch idx;
    prune_detail::prune_k_smallest(
        s.cols(), prune_count(o.sparsity, s.cols()), [&](std::uint32_t i) { return sums[i]; }, keep.data(), 1, idx);
    for (std::size_t r = 0; r < s.rows(); ++r)
      for (std::size_t c = 0; c < s.cols(); ++c) mask(r, c) = keep[c];
  }
};
static_assert(SparsityPattern<InputChannels>);

}  // namespace sparq
