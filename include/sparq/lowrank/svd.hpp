// Svd: a (possibly truncated) singular value decomposition A ≈ U·diag(s)·Vᵀ, held in double.
//
// Invariants (every producer in sparq/lowrank guarantees them): for an m x n input and rank r,
//   u  is m x r with orthonormal columns (UᵀU = I up to rounding),
//   s  has r values, descending, all ≥ 0,
//   vt is r x n with orthonormal rows (vt·vtᵀ = I up to rounding).
// Columns of U that belong to zero singular values are completed to an orthonormal set, so the
// orthogonality holds even for rank-deficient inputs.
// By Eckart–Young, when s holds the r largest singular values, ||A − U diag(s) Vᵀ||_F² equals the
// tail energy Σ_{i>r} σ_i²; `reconstruct` forms the rank-r product (tests, small matrices).
#pragma once

#include <cstddef>
#include <vector>

#include "sparq/core/matrix_view.hpp"

namespace sparq::lowrank {

struct Svd {
  Matrix<double> u;       ///< m x r, orthonormal columns
  std::vector<double> s;  ///< r singular values, descending
  Matrix<double> vt;      ///< r x n, orthonormal rows

  [[nodiscard]] std::size_t rank() const noexcept { return s.size(); }
  [[nodiscard]] std::size_t rows() const noexcept { return u.rows(); }
  [[nodiscard]] std::size_t cols() const noexcept { return vt.cols(); }

  /// U·diag(s)·Vᵀ (m x n), plain triple loop in double.
  [[nodiscard]] Matrix<double> reconstruct() const {
    Matrix<double> a(rows(), cols(), 0.0);
    for (std::size_t i = 0; i < rows(); ++i) {
      double* ai = a.row(i);
      for (std::size_t k = 0; k < rank(); ++k) {
        const double c = u(i, k) * s[k];
        const double* vk = vt.row(k);
        for (std::size_t j = 0; j < cols(); ++j) ai[j] += c * vk[j];
      }
    }
    return a;
  }
};

}  // namespace sparq::lowrank
