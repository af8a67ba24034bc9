// Wanda: the weight-times-activation-norm metric |W_kj| * sqrt(scaler_j).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "sparq/core/stats.hpp"
#include "sparq/prune/prune_options.hpp"

namespace sparq {

namespace prune_detail {
/// sqrt(scaler_j) from a ColumnSquareSum, checked against cin and for finiteness.
inline std::vector<float> checked_norms(const ColumnSquareSum& sq, std::size_t cin, const char* who) {
  SPARQ_CHECK(sq.channels() == cin, who, ": statistics have ", sq.channels(),
              " input channels but the weights have cin = ", cin);
  SPARQ_CHECK(sq.sequences() > 0, who, ": the ColumnSquareSum statistics are empty (no sequences added)");
  std::vector<float> n = sq.norms();
  for (std::size_t j = 0; j < n.size(); ++j)
    SPARQ_CHECK(std::isfinite(n[j]), who, ": non-finite activation norm ", n[j], " at channel ", j);
  return n;
}
}  // namespace prune_detail

/// S_kj = |W_kj| * sqrt(scaler_j), scaler_j = (1/nseq) * sum_t x_tj^2 (docs/algorithms.md#wanda),
/// from a ColumnSquareSum fed with the layer's calibration inputs. Reference pattern: per row
/// (Pruner<Wanda, Unstructured>) or N:M.
struct Wanda {
  using stats_type = ColumnSquareSum;
  static constexpr bool updates_weights = false;
  static constexpr bool row_local = true;  ///< row r's scores read row r of W only (pruner.hpp)
  [[nodiscard]] static std::string name() { return "wanda"; }
  static void check(MatrixView<const float> w, const ColumnSquareSum& st) {
    (void)prune_detail::checked_norms(st, w.cols(), "Wanda");
  }
  static void score(MatrixView<const float> w, const ColumnSquareSum& st, const PruneOptions& /*o*/,
                    MatrixView<float> s) {
    const std::vector<float> norms = prune_detail::checked_norms(st, w.cols(), "Wanda");
    for (std::size_t r = 0; r < w.rows(); ++r) {
      const float* wr = w.row(r);
      float* sr = s.row(r);
      for (std::size_t c = 0; c < w.cols(); ++c) sr[c] = std::fabs(wr[c]) * norms[c];
    }
  }
};
static_assert(PruneMetric<Wanda>);

}  // namespace sparq
