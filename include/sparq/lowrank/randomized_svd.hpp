// Randomized truncated SVD (Halko–Martinsson–Tropp) with power iterations, on the project's blocked GEMM.
//
// Algorithm for A (m x n), target rank r, oversampling p, q power iterations, l = min(r + p, m, n):
//   Ω  = n x l standard Gaussian (std::mt19937_64 seeded with `seed`, Box–Muller; bit-identical
//        for a seed on every platform, since mt19937_64 and the transform are fully specified)
//   Q  = qr(A Ω)                                     (householder_qr, double)
//   repeat q times:  Z = qr(Aᵀ Q),  Q = qr(A Z)       (re-orthonormalised every product, so the
//                                                    columns do not collapse onto σ_1)
//   Bᵀ = Aᵀ Q (n x l) = Q₂ R (Householder),  R = U_R Σ V_Rᵀ (one-sided Jacobi, double)
//   then B = Qᵀ A = V_R Σ (Q₂ U_R)ᵀ, so A ≈ Q B = (Q V_R) Σ (Q₂ U_R)ᵀ; the first r triplets are kept.
// The products with A (the only O(mnl) work) run in T (float for a float A, double for a double A)
// through kernels::gemm; everything else is in double. The error is governed by the decay of the
// spectrum: E||A − A_r|| ≤ (1 + …)·(σ_{r+1}^{2q+1} + …)^{1/(2q+1)}, so q = 2 and p = 10 give
// near-optimal (Eckart–Young) truncations for the spectra of LLM weights (measured in docs/lowrank.md).
// Deterministic: same A, options and seed → bit-identical factors (gemm is deterministic for any
// thread count; the rest is sequential).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/lowrank/householder_qr.hpp"
#include "sparq/lowrank/jacobi_svd.hpp"
#include "sparq/lowrank/svd.hpp"

namespace sparq::lowrank {

struct RandomizedSvdOptions {
  std::size_t oversampling = 10;    ///< p: extra random directions (Halko et al. recommend 5–10)
  std::size_t power_iterations = 2; ///< q: subspace iterations (0 = plain range finder)
  std::uint64_t seed = 0x5eed5eedULL;  ///< seed of the Gaussian test matrix
};

namespace detail {

/// n standard normal doubles from mt19937_64(seed): Box–Muller on 53-bit uniforms in (0, 1].
[[nodiscard]] inline std::vector<double> gaussian(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uni = [&rng] { return (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53; };
  std::vector<double> out(n);
  constexpr double two_pi = 6.283185307179586476925286766559;
  for (std::size_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uni())), th = two_pi * uni();
    out[i] = r * std::cos(th);
    if (i + 1 < n) out[i + 1] = r * std::sin(th);
  }
  return out;
}

template <class T>
[[nodiscard]] std::vector<T> cast_copy(const Matrix<double>& a) {
  std::vector<T> o(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) o[i] = static_cast<T>(a.data()[i]);
  return o;
}

template <class T>
[[nodiscard]] Matrix<double> widen(const std::vector<T>& v, std::size_t rows, std::size_t cols) {
  Matrix<double> o(rows, cols);
  for (std::size_t i = 0; i < v.size(); ++i) o.data()[i] = static_cast<double>(v[i]);
  return o;
}

}  // namespace detail

/// Rank-`rank` truncated SVD of `a` (float or double, m x n) by the randomized algorithm above.
/// Throws sparq::error on an empty matrix, a non-finite entry, rank 0 or rank > min(m, n).
template <class T>
  requires(std::is_same_v<std::remove_const_t<T>, float> || std::is_same_v<std::remove_const_t<T>, double>)
[[nodiscard]] Svd randomized_svd(MatrixView<T> a, std::size_t rank, const RandomizedSvdOptions& opt = {}) {
  using V = std::remove_const_t<T>;
  const std::size_t m = a.rows(), n = a.cols();
  SPARQ_CHECK(m > 0 && n > 0, "randomized_svd: empty ", m, "x", n, " matrix");
  SPARQ_CHECK(rank > 0 && rank <= std::min(m, n), "randomized_svd: rank ", rank, ", expected 1..min(rows, cols) = ",
              std::min(m, n), " for the ", m, "x", n, " matrix");
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      SPARQ_CHECK(std::isfinite(static_cast<double>(a(i, j))), "randomized_svd: non-finite value ", a(i, j), " at (",
                  i, ", ", j, "), expected finite values");
  const std::size_t l = std::min({rank + opt.oversampling, m, n});
  using kernels::Trans;
  const V* A = a.data();
  const std::size_t lda = a.stride();

  // Y = A Ω (m x l).
  std::vector<V> omega(n * l), y(m * l), z(n * l);
  {
    const auto g = detail::gaussian(n * l, opt.seed);
    for (std::size_t i = 0; i < n * l; ++i) omega[i] = static_cast<V>(g[i]);
  }
  kernels::gemm(Trans::no, Trans::no, m, l, n, V(1), A, lda, omega.data(), l, V(0), y.data(), l);
  Matrix<double> q = householder_qr(detail::widen(y, m, l).view(), false).q;
  for (std::size_t it = 0; it < opt.power_iterations; ++it) {
    std::vector<V> qv = detail::cast_copy<V>(q);
    kernels::gemm(Trans::yes, Trans::no, n, l, m, V(1), A, lda, qv.data(), l, V(0), z.data(), l);  // Aᵀ Q
    const Matrix<double> zq = householder_qr(detail::widen(z, n, l).view(), false).q;
    const std::vector<V> zv = detail::cast_copy<V>(zq);
    kernels::gemm(Trans::no, Trans::no, m, l, n, V(1), A, lda, zv.data(), l, V(0), y.data(), l);  // A Z
    q = householder_qr(detail::widen(y, m, l).view(), false).q;
  }
  // Bᵀ = Aᵀ Q (n x l) = Q₂ R.
  {
    const std::vector<V> qv = detail::cast_copy<V>(q);
    kernels::gemm(Trans::yes, Trans::no, n, l, m, V(1), A, lda, qv.data(), l, V(0), z.data(), l);
  }
  const QrResult qr2 = householder_qr(detail::widen(z, n, l).view(), true);
  const Svd core = jacobi_svd(qr2.r.view(), 0);  // R = U_R Σ V_Rᵀ (l x l)
  // U = Q V_R[:, :rank] (m x rank); V = Q₂ U_R[:, :rank] (n x rank).
  Matrix<double> vr(l, rank), ur(l, rank);
  for (std::size_t i = 0; i < l; ++i)
    for (std::size_t k = 0; k < rank; ++k) {
      vr(i, k) = core.vt(k, i);
      ur(i, k) = core.u(i, k);
    }
  Svd out;
  out.s.assign(core.s.begin(), core.s.begin() + static_cast<std::ptrdiff_t>(rank));
  out.u = Matrix<double>(m, rank);
  kernels::gemm(Trans::no, Trans::no, m, rank, l, 1.0, q.data(), l, vr.data(), rank, 0.0, out.u.data(), rank);
  out.vt = Matrix<double>(rank, n);
  // Vᵀ = U_Rᵀ Q₂ᵀ  (rank x n) = (ur)ᵀ · (q₂)ᵀ
  kernels::gemm(Trans::yes, Trans::yes, rank, n, l, 1.0, ur.data(), rank, qr2.q.data(), l, 0.0, out.vt.data(), n);
  return out;
}

template <class T>
[[nodiscard]] Svd randomized_svd(const Matrix<T>& a, std::size_t rank, const RandomizedSvdOptions& opt = {}) {
  return randomized_svd(a.view(), rank, opt);
}

}  // namespace sparq::lowrank
