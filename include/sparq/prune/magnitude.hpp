// Magnitude: the calibration-free metric |W_kj|.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "sparq/prune/prune_options.hpp"

namespace sparq {

/// Statistics of a metric that needs none.
struct NoStats {};

/// S_kj = |W_kj| (docs/algorithms.md#magnitude). Its reference comparison group is the whole matrix
/// (Pruner<Magnitude, UnstructuredLayer>); per-row and N:M patterns work as for any metric.
struct Magnitude {
  using stats_type = NoStats;
  static constexpr bool updates_weights = false;
  static constexpr bool row_local = true;  ///< row r's scores read row r of W only (pruner.hpp)
  [[nodiscard]] static std::string name() { return "magnitude"; }
  static void check(MatrixView<const float> /*w*/, const NoStats& /*st*/) {}
  static void score(MatrixView<const float> w, const NoStats& /*st*/, const PruneOptions& /*o*/,
                    MatrixView<float> s) {
    for (std::size_t r = 0; r < w.rows(); ++r) {
      const float* wr = w.row(r);
      float* sr = s.row(r);
      for (std::size_t c = 0; c < w.cols(); ++c) sr[c] = std::fabs(wr[c]);
    }
  }
};
static_assert(PruneMetric<Magnitude>);

}  // namespace sparq
