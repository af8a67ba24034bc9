// Dense linear algebra of the calibration stages, as thin adapters over kernels/gemm.hpp and kernels/cholesky.hpp.
//
// The stages call these three names only, so the kernels behind them can change in one place:
//   gemm_acc(C += alpha·A·B), gemm_abt(Y = A·Bᵀ), inverse_upper_factor(U with H⁻¹ = UᵀU).
// Both kernels are deterministic for any thread count, so the stages are too.
#pragma once

#include <cstddef>

#include "sparq/kernels/cholesky.hpp"
#include "sparq/kernels/gemm.hpp"

namespace sparq::detail::calib {

/// C[m x n] += alpha · A[m x k] · B[k x n]; all row-major with leading dimensions. No aliasing.
inline void gemm_acc(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* A,
                     std::size_t lda, const float* B, std::size_t ldb, float* C, std::size_t ldc) {
  kernels::gemm(kernels::Trans::no, kernels::Trans::no, m, n, k, alpha, A, lda, B, ldb, 1.0f, C, ldc);
}

/// Y[m x n] = A[m x k] · B[n x k]ᵀ (e.g. layer outputs X·Wᵀ).
inline void gemm_abt(std::size_t m, std::size_t n, std::size_t k, const float* A, std::size_t lda,
                     const float* B, std::size_t ldb, float* Y, std::size_t ldy) {
  kernels::gemm(kernels::Trans::no, kernels::Trans::yes, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, Y, ldy);
}

/// U (upper, n x n, contiguous) with H⁻¹ = Uᵀ U from symmetric positive definite H (contiguous,
/// lower triangle read), in double. Returns n on success, else the failing pivot's index.
inline std::size_t inverse_upper_factor(const double* H, std::size_t n, double* U) {
  return kernels::inverse_upper_factor(H, n, n, U, n);
}

}  // namespace sparq::detail::calib
