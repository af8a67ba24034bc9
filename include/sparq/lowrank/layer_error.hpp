// Layer-output error of an approximated weight matrix, measured through the calibration Hessian.
//
// For inputs X (tokens x cin) and H ∝ XᵀX (HessianAccumulator: (2/nseq) XᵀX; the scale cancels),
//   relative_output_error(W, Ŵ, H) = ||(W − Ŵ) Xᵀ||_F / ||W Xᵀ||_F
//                                   = √( tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) ),   ΔW = W − Ŵ,
// computed row by row in double (O(cout · cin²)). H is used undamped: this is the error on the
// calibration activations themselves.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq::lowrank {

/// Σ_rows d H dᵀ for the rows d of `delta` (cout x cin), H cin x cin.
template <class F>
[[nodiscard]] double quadratic_trace(std::size_t cout, std::size_t cin, F&& row, MatrixView<const double> h) {
  double total = 0;
  std::vector<double> d(cin);
  for (std::size_t i = 0; i < cout; ++i) {
    row(i, d.data());
    for (std::size_t a = 0; a < cin; ++a) {
      if (d[a] == 0.0) continue;
      const double* ha = h.row(a);
      double s = 0;
      for (std::size_t b = 0; b < cin; ++b) s += ha[b] * d[b];
      total += d[a] * s;
    }
  }
  return total;
}

/// ||(W − Ŵ) Xᵀ||_F / ||W Xᵀ||_F through H (see the file comment). Throws sparq::error on shapes.
[[nodiscard]] inline double relative_output_error(MatrixView<const float> w, MatrixView<const float> w_hat,
                                                  MatrixView<const double> h) {
  SPARQ_CHECK(w.rows() == w_hat.rows() && w.cols() == w_hat.cols(), "relative_output_error: W is ", w.rows(), "x",
              w.cols(), " but the approximation is ", w_hat.rows(), "x", w_hat.cols());
  SPARQ_CHECK(h.rows() == w.cols() && h.cols() == w.cols(), "relative_output_error: H is ", h.rows(), "x", h.cols(),
              ", expected ", w.cols(), "x", w.cols());
  const std::size_t cout = w.rows(), cin = w.cols();
  const double num = quadratic_trace(cout, cin, [&](std::size_t i, double* d) {
    for (std::size_t j = 0; j < cin; ++j) d[j] = static_cast<double>(w(i, j)) - static_cast<double>(w_hat(i, j));
  }, h);
  const double den = quadratic_trace(cout, cin, [&](std::size_t i, double* d) {
    for (std::size_t j = 0; j < cin; ++j) d[j] = static_cast<double>(w(i, j));
  }, h);
  SPARQ_CHECK(den > 0, "relative_output_error: ||W X^T|| is zero (W or the activations are zero)");
  return std::sqrt(std::max(num, 0.0) / den);
}

}  // namespace sparq::lowrank
