// Householder QR of a tall matrix in double: Y = Q·R with Q (m x l) orthonormal columns, R (l x l) upper.
//
// Math: for k = 0..l−1 the reflector H_k = I − 2 v_k v_kᵀ (||v_k|| = 1, zero above row k) maps
// column k of the partly reduced matrix, x = Y_k[k:m], to α e_k with α = −sign(x_0)·||x|| (the
// sign avoids cancellation). R is the reduced upper triangle, Q = H_0 H_1 ⋯ H_{l−1} [I_l; 0],
// formed by applying the reflectors to the first l unit vectors in reverse order. A column that
// is already zero below the diagonal gets no reflector (H_k = I), so Q stays orthonormal for
// rank-deficient Y (its column k is then a unit vector completing the basis). Unconditionally
// backward stable, unlike CholeskyQR, which fails when cond(Y) > ~1e8 — randomized power
// iterations produce exactly such matrices, so this is the re-orthonormalisation they use.
// Storage is transposed internally (column k of Y contiguous), so every dot/axpy is unit-stride.
// Cost ≈ 4 m l² flops. Deterministic (fixed summation order).
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/lowrank/detail/dense_ops.hpp"

namespace sparq::lowrank {

struct QrResult {
  Matrix<double> q;  ///< m x l, orthonormal columns
  Matrix<double> r;  ///< l x l, upper triangular, Y = Q R
};

/// QR of `y` (m x l, m ≥ l). With `want_r` false, r is left empty. Throws sparq::error when
/// l > m or y is empty.
[[nodiscard]] inline QrResult householder_qr(MatrixView<const double> y, bool want_r = true) {
  const std::size_t m = y.rows(), l = y.cols();
  SPARQ_CHECK(m > 0 && l > 0 && l <= m, "householder_qr: Y is ", m, "x", l, ", expected a tall matrix (rows >= cols > 0)");
  // yt: row k = column k of Y.
  std::vector<double> yt(l * m), vs(l * m, 0.0);
  std::vector<bool> has(l, false);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t k = 0; k < l; ++k) yt[k * m + i] = y(i, k);
  for (std::size_t k = 0; k < l; ++k) {
    double* x = &yt[k * m + k];
    const std::size_t len = m - k;
    const double nrm = std::sqrt(detail::dot(x, x, len));
    if (nrm == 0.0) continue;
    const double alpha = x[0] >= 0 ? -nrm : nrm;
    double* v = &vs[k * m + k];
    for (std::size_t i = 0; i < len; ++i) v[i] = x[i];
    v[0] -= alpha;
    const double vn = std::sqrt(detail::dot(v, v, len));
    if (vn == 0.0) continue;
    for (std::size_t i = 0; i < len; ++i) v[i] /= vn;
    has[k] = true;
    x[0] = alpha;
    for (std::size_t i = 1; i < len; ++i) x[i] = 0.0;
    for (std::size_t j = k + 1; j < l; ++j) {
      double* yj = &yt[j * m + k];
      detail::axpy(-2.0 * detail::dot(v, yj, len), v, yj, len);
    }
  }
  QrResult res;
  if (want_r) {
    res.r = Matrix<double>(l, l, 0.0);
    for (std::size_t k = 0; k < l; ++k)
      for (std::size_t j = k; j < l; ++j) res.r(k, j) = yt[j * m + k];
  }
  // Q columns: qt row j = Q e_j, built by applying H_{l−1} .. H_0 to e_j (H_k only touches rows ≥ k,
  // and e_j for j < k is zero there, so only j ≥ k is updated).
  std::vector<double> qt(l * m, 0.0);
  for (std::size_t j = 0; j < l; ++j) qt[j * m + j] = 1.0;
  for (std::size_t kk = l; kk-- > 0;) {
    if (!has[kk]) continue;
    const double* v = &vs[kk * m + kk];
    const std::size_t len = m - kk;
    for (std::size_t j = kk; j < l; ++j) {
      double* qj = &qt[j * m + kk];
      detail::axpy(-2.0 * detail::dot(v, qj, len), v, qj, len);
    }
  }
  res.q = Matrix<double>(m, l);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < l; ++j) res.q(i, j) = qt[j * m + i];
  return res;
}

}  // namespace sparq::lowrank
