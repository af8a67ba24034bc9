// Dense float GEMV y = W·x (decode) and its multi-token form Y = X·Wᵀ (prefill), W row-major.
//
// W is rows × cols row-major (row k = output channel k), y[k] = Σ_j W[k][j]·x[j].
// Per row the sum is taken in 4 vector accumulators (4·width lanes, fused multiply-add), combined
// pairwise, reduced with hadd, then the scalar tail; the order depends only on the arch.
#pragma once

#include <algorithm>

#include <cmath>
#include <cstddef>

#include "sparq/kernels/gemv_common.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

/// Σ_j a[j]·b[j] for one row, fixed summation order per arch.
template <class Arch>
[[nodiscard]] inline float dot_f32(const float* a, const float* b, std::size_t n) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t j = 0;
  B s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  for (; j + 4 * W <= n; j += 4 * W) {
    s0 = xsimd::fma(B::load_unaligned(a + j), B::load_unaligned(b + j), s0);
    s1 = xsimd::fma(B::load_unaligned(a + j + W), B::load_unaligned(b + j + W), s1);
    s2 = xsimd::fma(B::load_unaligned(a + j + 2 * W), B::load_unaligned(b + j + 2 * W), s2);
    s3 = xsimd::fma(B::load_unaligned(a + j + 3 * W), B::load_unaligned(b + j + 3 * W), s3);
  }
  for (; j + W <= n; j += W) s0 = xsimd::fma(B::load_unaligned(a + j), B::load_unaligned(b + j), s0);
  float s = xsimd::hadd((s0 + s1) + (s2 + s3));
  for (; j < n; ++j) s = std::fma(a[j], b[j], s);  // explicit: contraction must not vary by caller
  return s;
}

}  // namespace detail

/// y[k] = Σ_j W[k][j]·x[j] for k < rows. `w` rows × cols row-major; x has cols, y has rows entries.
template <class Arch = xsimd::default_arch>
void gemv_f32(const float* w, std::size_t rows, std::size_t cols, const float* x, float* y,
              int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) y[k] = detail::dot_f32<Arch>(w + k * cols, x, cols);
  });
}

/// Prefill: Y[t][k] = Σ_j X[t][j]·W[k][j] (Y = X·Wᵀ), X tokens × cols, Y tokens × rows, row-major.
/// Cache-blocked over 16 weight rows at a time (reused across all tokens, also on one thread); each Y entry is the same
/// dot product as gemv_f32 computes, so Y's row t equals gemv_f32(W, X[t]) bit for bit.
template <class Arch = xsimd::default_arch>
void gemv_f32_batch(const float* w, std::size_t rows, std::size_t cols, const float* x, std::size_t tokens,
                    float* y, int threads = 1) noexcept {
  constexpr std::size_t block = 16;  // 16 rows x cols floats (256 KiB at 4096 inputs) stay in L2 for all tokens
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t b0 = r0; b0 < r1; b0 += block) {
      const std::size_t b1 = std::min(r1, b0 + block);
      for (std::size_t t = 0; t < tokens; ++t) {
        for (std::size_t k = b0; k < b1; ++k) y[t * rows + k] = detail::dot_f32<Arch>(w + k * cols, x + t * cols, cols);
      }
    }
  });
}

/// Scalar reference (double accumulation) of gemv_f32.
inline void gemv_f32_reference(const float* w, std::size_t rows, std::size_t cols, const float* x, float* y) noexcept {
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t j = 0; j < cols; ++j) s += static_cast<double>(w[k * cols + j]) * x[j];
    y[k] = static_cast<float>(s);
  }
}

SPARQ_TARGET_END

}  // namespace sparq::kernels
