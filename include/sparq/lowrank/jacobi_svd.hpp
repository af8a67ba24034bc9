// One-sided (Hestenes) Jacobi SVD in double: the reference SVD for small matrices and the small-core solver of randomized_svd.
//
// Math: for G with c columns g_0..g_{c−1} of length len (c ≤ len), plane rotations are applied to
// pairs of columns (cyclic by rows: (0,1), (0,2), ..., (c−2, c−1)) until every pair is
// orthogonal. For a pair with α = g_iᵀg_i, β = g_jᵀg_j, γ = g_iᵀg_j the rotation
//   ζ = (β − α) / (2γ),  t = sign(ζ) / (|ζ| + √(1 + ζ²)),  c = 1/√(1 + t²),  s = c·t
//   g_i ← c·g_i − s·g_j,  g_j ← s·g_i + c·g_j
// zeroes γ; the same rotation is applied to the columns of V (starting from I). At convergence
// G·V = W with orthogonal columns, so G = U Σ Vᵀ with σ_k = ||w_k||, u_k = w_k/σ_k. A pair is
// skipped when |γ| ≤ tol·√(αβ) (tol = len·ε by default) or a column is zero; a sweep that rotates
// nothing ends the iteration. Jacobi computes small singular values to high relative accuracy,
// which is why it is the reference here.
// Orientation: an m x n input with m ≥ n is processed by columns; with m < n its transpose is,
// and U and V swap. Cost O(sweeps · min(m,n)² · max(m,n)) (about 6–10 sweeps): small matrices
// only (the real model's layers are at most 172 x 172; use randomized_svd for large ones).
// Output: the `rank` largest triplets (0 = all min(m,n)), sorted by descending σ (ties keep the
// column order, so the result is deterministic); columns of U for σ ≤ len·ε·σ_max are completed to
// an orthonormal set (see svd.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/lowrank/detail/dense_ops.hpp"
#include "sparq/lowrank/svd.hpp"

namespace sparq::lowrank {

struct JacobiOptions {
  int max_sweeps = 60;  ///< sweeps before giving up (throws sparq::error; never seen in practice)
  double tol = 0.0;     ///< relative orthogonality threshold; 0 = len·ε
};

namespace detail {

/// Hestenes iteration on `c` columns of length `len` stored contiguously (column k at g + k·len);
/// v (c x c, column k at v + k·c) must hold I on entry and holds V on exit. Returns sweeps used.
inline int hestenes(double* g, std::size_t len, std::size_t c, double* v, const JacobiOptions& o) {
  const double tol = o.tol > 0 ? o.tol : static_cast<double>(len) * std::numeric_limits<double>::epsilon();
  for (int sweep = 1; sweep <= o.max_sweeps; ++sweep) {
    bool rotated = false;
    for (std::size_t i = 0; i + 1 < c; ++i) {
      for (std::size_t j = i + 1; j < c; ++j) {
        double* gi = g + i * len;
        double* gj = g + j * len;
        const double alpha = dot(gi, gi, len), beta = dot(gj, gj, len), gamma = dot(gi, gj, len);
        if (alpha == 0.0 || beta == 0.0 || std::fabs(gamma) <= tol * std::sqrt(alpha * beta)) continue;
        rotated = true;
        const double zeta = (beta - alpha) / (2.0 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1.0 + zeta * zeta));
        const double cs = 1.0 / std::sqrt(1.0 + t * t), sn = cs * t;
        for (std::size_t k = 0; k < len; ++k) {
          const double a = gi[k], b = gj[k];
          gi[k] = cs * a - sn * b;
          gj[k] = sn * a + cs * b;
        }
        double* vi = v + i * c;
        double* vj = v + j * c;
        for (std::size_t k = 0; k < c; ++k) {
          const double a = vi[k], b = vj[k];
          vi[k] = cs * a - sn * b;
          vj[k] = sn * a + cs * b;
        }
      }
    }
    if (!rotated) return sweep;
  }
  sparq::detail::fail("jacobi_svd: no convergence after ", o.max_sweeps, " sweeps (", len, " x ", c,
                      " columns); expected convergence within ~10");
}

}  // namespace detail

/// SVD of `a` (float or double, m x n) by one-sided Jacobi; the `rank` largest triplets
/// (0 = min(m, n)). Throws sparq::error on an empty matrix, a non-finite entry or rank > min(m, n).
template <class T>
  requires(std::is_same_v<std::remove_const_t<T>, float> || std::is_same_v<std::remove_const_t<T>, double>)
[[nodiscard]] Svd jacobi_svd(MatrixView<T> a, std::size_t rank = 0, const JacobiOptions& opt = {}) {
  const std::size_t m = a.rows(), n = a.cols();
  SPARQ_CHECK(m > 0 && n > 0, "jacobi_svd: empty ", m, "x", n, " matrix");
  const std::size_t kmax = std::min(m, n);
  if (rank == 0) rank = kmax;
  SPARQ_CHECK(rank <= kmax, "jacobi_svd: rank ", rank, " exceeds min(rows, cols) = ", kmax, " of the ", m,
              "x", n, " matrix");
  const bool by_cols = m >= n;  // columns of A (n of length m), else columns of Aᵀ = rows of A
  const std::size_t len = by_cols ? m : n, c = kmax;
  std::vector<double> g(len * c), v(c * c, 0.0);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const double x = static_cast<double>(a(i, j));
      SPARQ_CHECK(std::isfinite(x), "jacobi_svd: non-finite value ", x, " at (", i, ", ", j,
                  "), expected finite values");
      if (by_cols) g[j * len + i] = x;
      else g[i * len + j] = x;
    }
  }
  for (std::size_t k = 0; k < c; ++k) v[k * c + k] = 1.0;
  (void)detail::hestenes(g.data(), len, c, v.data(), opt);

  std::vector<double> sig(c);
  for (std::size_t k = 0; k < c; ++k) sig[k] = std::sqrt(detail::dot(&g[k * len], &g[k * len], len));
  std::vector<std::size_t> order(c);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return sig[x] > sig[y]; });
  const double smax = sig[order[0]];
  const double tiny = static_cast<double>(len) * std::numeric_limits<double>::epsilon() * smax;

  // Left vectors of G (length len) for all c columns in sorted order; tiny ones completed.
  std::vector<double> w(c * len);
  std::vector<bool> valid(c);
  for (std::size_t k = 0; k < c; ++k) {
    const std::size_t src = order[k];
    valid[k] = sig[src] > tiny && sig[src] > 0.0;
    if (valid[k])
      for (std::size_t i = 0; i < len; ++i) w[k * len + i] = g[src * len + i] / sig[src];
  }
  detail::complete_orthonormal(w.data(), len, c, valid);

  Svd r;
  r.s.resize(rank);
  r.u = Matrix<double>(m, rank);
  r.vt = Matrix<double>(rank, n);
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t src = order[k];
    r.s[k] = sig[src];
    const double* wk = &w[k * len];
    const double* vk = &v[src * c];
    if (by_cols) {  // A V = W: U = W/σ (m), V = v (n)
      for (std::size_t i = 0; i < m; ++i) r.u(i, k) = wk[i];
      for (std::size_t j = 0; j < n; ++j) r.vt(k, j) = vk[j];
    } else {  // Aᵀ V' = W': A = V' Σ W'ᵀ/σ: U = v (m), V = W/σ (n)
      for (std::size_t i = 0; i < m; ++i) r.u(i, k) = vk[i];
      for (std::size_t j = 0; j < n; ++j) r.vt(k, j) = wk[j];
    }
  }
  return r;
}

/// Overload for an owning matrix.
template <class T>
[[nodiscard]] Svd jacobi_svd(const Matrix<T>& a, std::size_t rank = 0, const JacobiOptions& opt = {}) {
  return jacobi_svd(a.view(), rank, opt);
}

}  // namespace sparq::lowrank
