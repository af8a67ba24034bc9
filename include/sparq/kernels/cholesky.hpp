// Blocked Cholesky factorisation, lower-triangular inverse, and the upper inverse factor U (H^-1 = U^T U).
//
// All matrices are row-major with a leading dimension, T = float or double (the FP64 option of
// SparseGPT/GPTQ). Only the lower triangle of the input is read.
//
//   cholesky_lower(A):   A = L L^T, L lower with a positive diagonal, written over the lower
//                        triangle of A (the strict upper triangle is set to 0). Right-looking,
//                        blocks of NB = 64: unblocked factor of the diagonal block, row-wise
//                        triangular solve of the panel, trailing update A22 -= L21 L21^T by gemm
//                        on the lower triangle only (row panels, each up to its diagonal).
//   invert_lower(L):     X = L^-1 (lower). Blocked: X_ii = inv(L_ii) (unblocked), then
//                        X[i, 0:i] = -X_ii * (L[i, 0:i] * X[0:i, 0:i]) by gemms per block row, the
//                        first one skipping the zero upper triangle of X in whole depth slices.
//   inverse_upper_factor(H): the upper-triangular U with H^-1 = U^T U, which SparseGPT and GPTQ
//                        call "Hinv" (the reference forms H^-1 and takes its upper Cholesky
//                        factor). Computed without forming H^-1: with P the reversal permutation,
//                        chol(P H P) = L' gives H = R R^T with R = P L' P upper, so
//                        H^-1 = R^-T R^-1 and U = R^-1 = P inv(L') P. By uniqueness of the
//                        Cholesky factor with a positive diagonal this is the same U, with one
//                        factorisation and one triangular inverse instead of two and an inverse.
//
// Failure: the functions return the index of the first pivot that is not positive and finite
// (n on success), leaving the output partly written. Callers retry with more damping.
// Deterministic for any thread count (gemm is; the row-wise solves partition rows statically).
// Same results on every SIMD target (docs/kernels.md): the dot products of the unblocked factor and
// the panel solve use the canonical 16-lane order, the triangular inverse sums in order with every
// product rounded before the add (canonical::mul), and gemm is target-independent too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/core/large_alloc.hpp"
#include "sparq/kernels/canonical.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace chol_detail {

/// Sum of a[i]*b[i] over n elements in the canonical order (kernels/canonical.hpp): the same
/// bits on every SIMD target.
template <class Arch, class T>
inline T dot(const T* a, const T* b, std::size_t n) noexcept {
  return canonical::dot<Arch>(a, b, n);
}

inline constexpr std::size_t NB = 64;

/// Unblocked Cholesky of the nb x nb block at A (lower triangle). Returns nb on success.
template <class Arch, class T>
inline std::size_t potrf_unblocked(T* A, std::size_t nb, std::size_t lda) noexcept {
  for (std::size_t j = 0; j < nb; ++j) {
    T* rj = A + j * lda;
    const T d = rj[j] - dot<Arch>(rj, rj, j);
    if (!(d > T(0)) || !std::isfinite(d)) return j;
    const T ljj = std::sqrt(d);
    rj[j] = ljj;
    const T inv = T(1) / ljj;
    for (std::size_t i = j + 1; i < nb; ++i) {
      T* ri = A + i * lda;
      ri[j] = (ri[j] - dot<Arch>(ri, rj, j)) * inv;
    }
  }
  return nb;
}

}  // namespace chol_detail

/// In-place lower Cholesky (see the file comment). Returns n on success, otherwise the index of
/// the first failing pivot.
template <class Arch = simd::dynamic, class T>
std::size_t cholesky_lower(T* A, std::size_t n, std::size_t lda) {
  using chol_detail::NB;
  for (std::size_t k0 = 0; k0 < n; k0 += NB) {
    const std::size_t nb = std::min(NB, n - k0);
    T* Akk = A + k0 * lda + k0;
    const std::size_t r = chol_detail::potrf_unblocked<Arch>(Akk, nb, lda);
    if (r != nb) return k0 + r;
    const std::size_t rest = n - k0 - nb;
    if (rest == 0) break;
    // Panel: row i of L21 solves L11 * l_i^T = a_i^T (forward substitution along the row).
    T* A21 = A + (k0 + nb) * lda + k0;
    const long long nrest = static_cast<long long>(rest);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rest * nb * nb > 200000)
#endif
    for (long long ii = 0; ii < nrest; ++ii) {
      T* ri = A21 + static_cast<std::size_t>(ii) * lda;
      for (std::size_t j = 0; j < nb; ++j) {
        const T* rj = Akk + j * lda;
        ri[j] = (ri[j] - chol_detail::dot<Arch>(ri, rj, j)) / rj[j];
      }
    }
    // Trailing update A22 -= L21 L21^T, lower triangle only (nothing reads the upper one): row
    // panels of kTrailRows rows, each up to its last column. gemm computes every element of C the
    // same way whatever the sub-problem, so these are the bits of the full-square product.
    T* A22 = A + (k0 + nb) * lda + k0 + nb;
    constexpr std::size_t kTrailRows = 384;
    for (std::size_t r0 = 0; r0 < rest; r0 += kTrailRows) {
      const std::size_t rr = std::min(kTrailRows, rest - r0);
      gemm<Arch>(Trans::no, Trans::yes, rr, r0 + rr, nb, T(-1), A21 + r0 * lda, lda, A21, lda, T(1), A22 + r0 * lda,
                 lda);
    }
  }
  for (std::size_t i = 0; i < n; ++i) std::fill(A + i * lda + i + 1, A + i * lda + n, T(0));
  return n;
}

/// X = L^-1 for lower-triangular L (n x n, positive diagonal assumed). X may not alias L.
/// The strict upper triangle of X is set to 0.
template <class Arch = simd::dynamic, class T>
void invert_lower(const T* L, std::size_t n, std::size_t ldl, T* X, std::size_t ldx) {
  using chol_detail::NB;
  for (std::size_t i = 0; i < n; ++i) std::fill(X + i * ldx, X + i * ldx + n, T(0));
  std::vector<T> tmp;
  for (std::size_t i0 = 0; i0 < n; i0 += NB) {
    const std::size_t nb = std::min(NB, n - i0);
    // Diagonal block: row by row, X_ij = -(sum_{p=j}^{i-1} L_ip X_pj) / L_ii, X_ii = 1/L_ii.
    for (std::size_t i = 0; i < nb; ++i) {
      const T* li = L + (i0 + i) * ldl + i0;
      T* xi = X + (i0 + i) * ldx + i0;
      const T inv = T(1) / li[i];
      for (std::size_t j = 0; j < i; ++j) {
        T s = T(0);
        for (std::size_t p = j; p < i; ++p) s = s + canonical::mul(li[p], X[(i0 + p) * ldx + i0 + j]);
        xi[j] = -s * inv;
      }
      xi[i] = inv;
    }
    if (i0 == 0) continue;
    // Off-diagonal block row: X[i0:i0+nb, 0:i0] = -X_ii * (L[i0:i0+nb, 0:i0] * X[0:i0, 0:i0]).
    // Column block [c0, c0 + KC) of the product reads X[p, c] = 0 (upper triangle) for every
    // p < c0, so its sum starts at p = c0. c0 is a multiple of gemm's depth slice KC, so the
    // slices that remain are the same as those of the full product, and the skipped ones only
    // added +0 to a +0 sum: the same bits for half the work.
    tmp.assign(nb * i0, T(0));
    constexpr std::size_t KC = gemm_detail::Config<T, Arch>::KC;
    for (std::size_t c0 = 0; c0 < i0; c0 += KC) {
      const std::size_t cw = std::min(KC, i0 - c0);
      gemm<Arch>(Trans::no, Trans::no, nb, cw, i0 - c0, T(1), L + i0 * ldl + c0, ldl, X + c0 * ldx + c0, ldx, T(0),
                 tmp.data() + c0, i0);
    }
    gemm<Arch>(Trans::no, Trans::no, nb, i0, nb, T(-1), X + i0 * ldx + i0, ldx, tmp.data(), i0,
               T(0), X + i0 * ldx, ldx);
  }
}

/// U (upper, n x n) with H^-1 = U^T U, from symmetric positive definite H (lower triangle read).
/// Returns n on success, else the index (in H's order) of a failing pivot; U is then unspecified.
template <class Arch = simd::dynamic, class T>
std::size_t inverse_upper_factor(const T* H, std::size_t n, std::size_t ldh, T* U, std::size_t ldu) {
  LargeVector<T> R(n * n);  // n x n temporaries on huge pages (core/large_alloc.hpp)
  // R = P H P (reversal), lower triangle only (all cholesky_lower reads): R[a, b] = H[n-1-b, n-1-a]
  // for b <= a, read from H's lower triangle. In 32 x 32 tiles, so that the transposed reads stay
  // in cache.
  constexpr std::size_t tile = 32;
  for (std::size_t a0 = 0; a0 < n; a0 += tile)
    for (std::size_t b0 = 0; b0 <= a0; b0 += tile)
      for (std::size_t b = b0; b < std::min(n, b0 + tile); ++b) {
        const T* hrow = H + (n - 1 - b) * ldh;
        for (std::size_t a = std::max(a0, b); a < std::min(n, a0 + tile); ++a) R[a * n + b] = hrow[n - 1 - a];
      }
  const std::size_t r = cholesky_lower<Arch>(R.data(), n, n);
  if (r != n) return n - 1 - r;
  LargeVector<T> X(n * n);
  invert_lower<Arch>(R.data(), n, n, X.data(), n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) U[i * ldu + j] = X[(n - 1 - i) * n + (n - 1 - j)];
  return n;
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline std::size_t cholesky_lower<simd::dynamic, float>(
    float* A, std::size_t n, std::size_t lda) {
  SPARQ_DISPATCH_CALL(cholesky_lower_f32, (cholesky_lower<xsimd::default_arch, float>), A, n, lda);
}
template <>
inline std::size_t cholesky_lower<simd::dynamic, double>(
    double* A, std::size_t n, std::size_t lda) {
  SPARQ_DISPATCH_CALL(cholesky_lower_f64, (cholesky_lower<xsimd::default_arch, double>), A, n, lda);
}
template <>
inline void invert_lower<simd::dynamic, float>(
    const float* L, std::size_t n, std::size_t ldl, float* X, std::size_t ldx) {
  SPARQ_DISPATCH_CALL(invert_lower_f32, (invert_lower<xsimd::default_arch, float>), L, n, ldl, X, ldx);
}
template <>
inline void invert_lower<simd::dynamic, double>(
    const double* L, std::size_t n, std::size_t ldl, double* X, std::size_t ldx) {
  SPARQ_DISPATCH_CALL(invert_lower_f64, (invert_lower<xsimd::default_arch, double>), L, n, ldl, X, ldx);
}
template <>
inline std::size_t inverse_upper_factor<simd::dynamic, float>(
    const float* H, std::size_t n, std::size_t ldh, float* U, std::size_t ldu) {
  SPARQ_DISPATCH_CALL(inverse_upper_factor_f32, (inverse_upper_factor<xsimd::default_arch, float>), H, n, ldh, U, ldu);
}
template <>
inline std::size_t inverse_upper_factor<simd::dynamic, double>(
    const double* H, std::size_t n, std::size_t ldh, double* U, std::size_t ldu) {
  SPARQ_DISPATCH_CALL(inverse_upper_factor_f64, (inverse_upper_factor<xsimd::default_arch, double>), H, n, ldh, U, ldu);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
