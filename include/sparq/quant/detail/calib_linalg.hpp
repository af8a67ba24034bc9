// Private dense linear algebra for the calibration stages: f32 GEMM-accumulate and the GPTQ inverse factor.
//
// Stand-ins until the shared kernels (kernels/gemm.hpp, kernels/cholesky.hpp) are part of the
// committed tree; the interfaces are small so that switching over is a one-line change per call.
// Plain C++ written for the compiler's auto-vectoriser (no xsimd here): cache tiling plus a
// 4-row register block. Deterministic: every output element is computed by the same sequence of
// operations whatever the thread count (OpenMP shares rows, never a reduction).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace sparq::detail::calib {

/// C[m x n] += alpha · A[m x k] · B[k x n]; all row-major with leading dimensions. No aliasing.
inline void gemm_acc(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* A,
                     std::size_t lda, const float* B, std::size_t ldb, float* C,
                     std::size_t ldc) noexcept {
  if (m == 0 || n == 0 || k == 0) return;
  constexpr std::size_t NC = 256;  // B tile KC x NC floats stays in L2
  constexpr std::size_t KC = 256;
  const long long mm = static_cast<long long>((m + 3) / 4);
  for (std::size_t p0 = 0; p0 < k; p0 += KC) {
    const std::size_t kc = std::min(KC, k - p0);
    for (std::size_t j0 = 0; j0 < n; j0 += NC) {
      const std::size_t nc = std::min(NC, n - j0);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (m * nc * kc > (1u << 18))
#endif
      for (long long ib = 0; ib < mm; ++ib) {
        const std::size_t i0 = static_cast<std::size_t>(ib) * 4;
        const std::size_t mr = std::min<std::size_t>(4, m - i0);
        float acc[4][NC];
        for (std::size_t r = 0; r < 4; ++r)
          for (std::size_t j = 0; j < nc; ++j) acc[r][j] = 0.0f;
        if (mr == 4) {
          const float* a0 = A + i0 * lda + p0;
          const float* a1 = a0 + lda;
          const float* a2 = a1 + lda;
          const float* a3 = a2 + lda;
          for (std::size_t p = 0; p < kc; ++p) {
            const float* b = B + (p0 + p) * ldb + j0;
            const float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
            for (std::size_t j = 0; j < nc; ++j) {
              const float bj = b[j];
              acc[0][j] += x0 * bj;
              acc[1][j] += x1 * bj;
              acc[2][j] += x2 * bj;
              acc[3][j] += x3 * bj;
            }
          }
        } else {
          for (std::size_t r = 0; r < mr; ++r) {
            const float* a = A + (i0 + r) * lda + p0;
            for (std::size_t p = 0; p < kc; ++p) {
              const float* b = B + (p0 + p) * ldb + j0;
              const float x = a[p];
              for (std::size_t j = 0; j < nc; ++j) acc[r][j] += x * b[j];
            }
          }
        }
        for (std::size_t r = 0; r < mr; ++r) {
          float* c = C + (i0 + r) * ldc + j0;
          for (std::size_t j = 0; j < nc; ++j) c[j] += alpha * acc[r][j];
        }
      }
    }
  }
}

/// Y[m x n] = A[m x k] · B[n x k]ᵀ (e.g. outputs X·Wᵀ), via a transposed copy of B.
inline void gemm_abt(std::size_t m, std::size_t n, std::size_t k, const float* A, std::size_t lda,
                     const float* B, std::size_t ldb, float* Y, std::size_t ldy) {
  std::vector<float> bt(k * n);
  constexpr std::size_t T = 32;  // blocked transpose
  for (std::size_t i0 = 0; i0 < n; i0 += T)
    for (std::size_t p0 = 0; p0 < k; p0 += T)
      for (std::size_t i = i0; i < std::min(n, i0 + T); ++i)
        for (std::size_t p = p0; p < std::min(k, p0 + T); ++p) bt[p * n + i] = B[i * ldb + p];
  for (std::size_t i = 0; i < m; ++i) std::fill(Y + i * ldy, Y + i * ldy + n, 0.0f);
  gemm_acc(m, n, k, 1.0f, A, lda, bt.data(), n, Y, ldy);
}

/// Dot product with 8 independent partial sums (fixed order: deterministic).
inline double dot8(const double* a, const double* b, std::size_t n) noexcept {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t u = 0; u < 8; ++u) s[u] += a[i + u] * b[i + u];
  double t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; i < n; ++i) t += a[i] * b[i];
  return t;
}

/// In-place lower Cholesky A = L Lᵀ of the n x n row-major matrix (lower triangle read and
/// written; the strict upper triangle is set to 0). Returns n on success, else the first pivot
/// index that is not positive and finite. Row-oriented (each entry is one contiguous dot
/// product), blocked by 64 rows so the rows being combined stay in cache.
inline std::size_t cholesky_lower(double* A, std::size_t n) {
  constexpr std::size_t NB = 64;
  for (std::size_t j0 = 0; j0 < n; j0 += NB) {
    const std::size_t j1 = std::min(n, j0 + NB);
    // Factor the diagonal block rows [j0, j1) (columns < j1).
    for (std::size_t j = j0; j < j1; ++j) {
      double* rj = A + j * n;
      for (std::size_t c = j0; c < j; ++c) rj[c] = (rj[c] - dot8(rj, A + c * n, c)) / A[c * n + c];
      const double d = rj[j] - dot8(rj, rj, j);
      if (!(d > 0.0) || !std::isfinite(d)) return j;
      rj[j] = std::sqrt(d);
    }
    // Panel below: rows [j1, n), columns [j0, j1), each row independent.
    const long long rest = static_cast<long long>(n - j1);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rest * 64 * static_cast<long long>(j1) > 4000000)
#endif
    for (long long ii = 0; ii < rest; ++ii) {
      double* ri = A + (j1 + static_cast<std::size_t>(ii)) * n;
      for (std::size_t c = j0; c < j1; ++c) ri[c] = (ri[c] - dot8(ri, A + c * n, c)) / A[c * n + c];
    }
  }
  for (std::size_t i = 0; i < n; ++i) std::fill(A + i * n + i + 1, A + (i + 1) * n, 0.0);
  return n;
}

/// X = L⁻¹ for lower-triangular L (n x n, positive diagonal). Column j of X solves L x = e_j;
/// computed row by row over the transposed buffer so that the inner loop is a contiguous dot.
inline void invert_lower(const double* L, std::size_t n, double* X) {
  // Xt = X transposed (upper): Xt[j][i] = X[i][j]. Row j of Xt is column j of X.
  std::vector<double> xt(n * n, 0.0);
  const long long nn = static_cast<long long>(n);
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16) if (n > 256)
#endif
  for (long long jj = 0; jj < nn; ++jj) {
    const std::size_t j = static_cast<std::size_t>(jj);
    double* col = xt.data() + j * n;  // entries i >= j are non-zero
    col[j] = 1.0 / L[j * n + j];
    for (std::size_t i = j + 1; i < n; ++i) {
      const double* li = L + i * n;
      col[i] = -dot8(li + j, col + j, i - j) / li[i];
    }
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) X[i * n + j] = j <= i ? xt[j * n + i] : 0.0;
}

/// U (upper, n x n) with H⁻¹ = Uᵀ U, from symmetric positive definite H (row-major, full).
/// With P the reversal permutation, chol(P H P) = L' gives H = R Rᵀ with R = P L' P upper, so
/// H⁻¹ = R⁻ᵀ R⁻¹ and U = R⁻¹ = P L'⁻¹ P (unique: the Cholesky factor with positive diagonal).
/// Returns n on success, else the failing pivot index in H's order (U is then unspecified).
inline std::size_t inverse_upper_factor(const double* H, std::size_t n, double* U) {
  std::vector<double> r(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) r[(n - 1 - i) * n + (n - 1 - j)] = H[i * n + j];
  const std::size_t piv = cholesky_lower(r.data(), n);
  if (piv != n) return n - 1 - piv;
  std::vector<double> x(n * n);
  invert_lower(r.data(), n, x.data());
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) U[i * n + j] = x[(n - 1 - i) * n + (n - 1 - j)];
  return n;
}

}  // namespace sparq::detail::calib
