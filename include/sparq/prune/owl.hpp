// OWL: outlier-weighted layer-wise sparsity ratios (docs/algorithms.md#owl), usable with any metric's scores.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq {

/// OWL settings: outlier multiplier M (Hyper_m; 5 in the README examples, 3 in the CLI) and the
/// half-width lambda of the sparsity spread (Lamda, 0.08).
struct OwlOptions {
  double m = 5.0;
  double lambda = 0.08;
};

/// Outlier ratio of one block in percent: D = 100 * |{z > M * mean(z)}| / |z| over the
/// concatenated scores of all the block's linears (Wanda scores in the paper; any metric works).
[[nodiscard]] inline double owl_outlier_ratio(const std::vector<MatrixView<const float>>& scores, double m) {
  double sum = 0;
  std::size_t n = 0;
  for (const auto& s : scores)
    for (std::size_t r = 0; r < s.rows(); ++r)
      for (std::size_t c = 0; c < s.cols(); ++c) {
        SPARQ_CHECK(std::isfinite(s(r, c)), "owl_outlier_ratio: non-finite score ", s(r, c), " at (", r, ", ", c, ")");
        sum += s(r, c);
        ++n;
      }
  SPARQ_CHECK(n > 0, "owl_outlier_ratio: no scores given");
  const double thr = m * sum / static_cast<double>(n);
  std::size_t out = 0;
  for (const auto& s : scores)
    for (std::size_t r = 0; r < s.rows(); ++r)
      for (std::size_t c = 0; c < s.cols(); ++c) out += s(r, c) > thr ? 1 : 0;
  return 100.0 * static_cast<double>(out) / static_cast<double>(n);
}

/// Per-block sparsities from outlier ratios D_b (docs/algorithms.md#owl): D normalised to [0, 2*lambda]
/// (all 0 when max D == min D: uniform), density rho_b = D_b - mean(D) + (1 - s), s_b = 1 - rho_b
/// (0.01 if s_b <= 0). The mean of the s_b is the target s unless that floor is hit. Blocks with
/// more outliers are pruned less.
[[nodiscard]] inline std::vector<double> owl_sparsities(const std::vector<double>& ratios, double target,
                                                        const OwlOptions& o = {}) {
  SPARQ_CHECK(!ratios.empty(), "owl_sparsities: no outlier ratios given");
  SPARQ_CHECK(std::isfinite(target) && target >= 0.0 && target < 1.0, "owl_sparsities: target sparsity = ", target,
              ", expected a value in [0, 1)");
  SPARQ_CHECK(std::isfinite(o.lambda) && o.lambda >= 0.0, "owl_sparsities: lambda = ", o.lambda, ", expected >= 0");
  for (std::size_t i = 0; i < ratios.size(); ++i)
    SPARQ_CHECK(std::isfinite(ratios[i]), "owl_sparsities: outlier ratio ", ratios[i], " of block ", i, " is not finite");
  const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
  std::vector<double> d(ratios.size(), 0.0);
  if (*hi > *lo)
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = (ratios[i] - *lo) / (*hi - *lo) * 2.0 * o.lambda;
  double mean = 0;
  for (double v : d) mean += v;
  mean /= static_cast<double>(d.size());
  std::vector<double> s(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    const double sb = 1.0 - (d[i] - mean + (1.0 - target));
    s[i] = sb <= 0.0 ? 0.01 : sb;
  }
  return s;
}

}  // namespace sparq
