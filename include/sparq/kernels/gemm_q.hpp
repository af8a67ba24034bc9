// Quantized prefill GEMM Y = X·Wᵀ for int8 per-channel (float or int8 per-token activations) and int4 per-group weights.
//
// X is tokens × cols row-major, Y tokens × rows row-major; W layouts as in gemv_q8.hpp / gemv_q4.hpp.
// Blocking: each work item takes 16 weight rows (16·cols bytes for int8: they stay in L1/L2) and
// runs them against every token, so the weights are streamed from memory once per call instead of
// once per token. Y[t][k] is computed by exactly the same row kernel as the GEMV (on AVX-512 the
// 4-rows-per-pass kernels, without the GEMV's streaming prefetch), so every row of Y equals the
// corresponding GEMV output bit for bit, for any thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// Y[t][k] = scale[k]·Σ_j q[k][j]·X[t][j] (W8A32).
template <class Arch = simd::dynamic>
void gemm_q8_f32(const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const float* x,
                 std::size_t tokens, float* y, int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t t = 0; t < tokens; ++t) {
      std::size_t k = r0;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (detail::is_avx512bw_v<Arch>) {  // 4 rows share the token's loads; bit-identical rows
        float d[detail::q8_rows];
        for (; k + detail::q8_rows <= r1; k += detail::q8_rows) {
          detail::dot_s8_f32_rows_avx512<detail::q8_rows, false>(q + k * cols, cols, x + t * cols, cols, d);
          for (int r = 0; r < detail::q8_rows; ++r) y[t * rows + k + r] = scale[k + r] * d[r];
        }
      }
#endif
      for (; k < r1; ++k) y[t * rows + k] = scale[k] * detail::dot_s8_f32<Arch>(q + k * cols, x + t * cols, cols);
    }
  });
}

/// Y[t][k] = sx[t]·scale[k]·Σ_j q[k][j]·qx[t][j] (W8A8, per-token int8 activations qx tokens × cols).
template <class Arch = simd::dynamic, bool Vnni = detail::has_vnni>
void gemm_q8_a8(const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const std::int8_t* qx,
                const float* sx, std::size_t tokens, float* y, int threads = 1) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
  if constexpr (detail::is_avx512bw_v<Arch> && Vnni) {  // 4-row VNNI kernel, as gemv_q8_a8 (exact sums)
    for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
      std::int32_t d[detail::q8_rows];
      for (std::size_t t = 0; t < tokens; ++t) {
        const std::int8_t* xt = qx + t * cols;
        const std::int32_t qsum = detail::sum_s8_avx512(xt, cols);
        std::size_t k = r0;
        for (; k + detail::q8_rows <= r1; k += detail::q8_rows) {
          detail::dot_s8_rows_vnni<detail::q8_rows, false>(q + k * cols, cols, xt, cols, qsum, d);
          for (int r = 0; r < detail::q8_rows; ++r) y[t * rows + k + r] = sx[t] * scale[k + r] * static_cast<float>(d[r]);
        }
        for (; k < r1; ++k) {
          detail::dot_s8_rows_vnni<1, false>(q + k * cols, cols, xt, cols, qsum, d);
          y[t * rows + k] = sx[t] * scale[k] * static_cast<float>(d[0]);
        }
      }
    });
    return;
  }
#endif
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t k = r0; k < r1; ++k)
        y[t * rows + k] =
            sx[t] * scale[k] * static_cast<float>(detail::dot_s8<Arch, Vnni>(q + k * cols, qx + t * cols, cols));
  });
}

/// Workspace bytes gemm_q4_f32 needs for `tokens` tokens of `cols` inputs.
[[nodiscard]] constexpr std::size_t gemm_q4_workspace_bytes(std::size_t cols, std::size_t tokens) noexcept {
  return block_q8_workspace_bytes(cols) * tokens;
}

/// int4 prefill: quantizes every token per block of 32 (as gemv_q4_f32) into `work`
/// (gemm_q4_workspace_bytes), then Y[t] = gemv_q4_a8(W, act[t]) for all tokens, row blocks outermost.
template <class Arch = simd::dynamic>
void gemm_q4_f32(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t rows,
                 std::size_t cols, std::size_t group, const float* x, std::size_t tokens, float* y, void* work,
                 int threads = 1) noexcept {
  const std::size_t wb = block_q8_workspace_bytes(cols);
  auto* base = static_cast<unsigned char*>(work);
  for (std::size_t t = 0; t < tokens; ++t) quantize_block_q8(x + t * cols, cols, BlockQ8::carve(base + t * wb, cols));
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t t = 0; t < tokens; ++t) {
      detail::q4_rows_range<Arch, detail::has_vnni, false>(codes, scales, zeros, r0, r1, cols, group,
                                                           BlockQ8::carve(base + t * wb, cols), y + t * rows);
    }
  });
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemm_q8_f32<simd::dynamic>(
    const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const float* x,
    std::size_t tokens, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemm_q8_f32, (gemm_q8_f32<xsimd::default_arch>), q, scale, rows, cols, x, tokens, y, threads);
}
template <>
inline void gemm_q8_a8<simd::dynamic, detail::has_vnni>(
    const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const std::int8_t* qx,
    const float* sx, std::size_t tokens, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemm_q8_a8, (gemm_q8_a8<xsimd::default_arch, detail::has_vnni>), q, scale, rows, cols, qx, sx, tokens, y, threads);
}
template <>
inline void gemm_q4_f32<simd::dynamic>(
    const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t rows,
    std::size_t cols, std::size_t group, const float* x, std::size_t tokens, float* y, void* work, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemm_q4_f32, (gemm_q4_f32<xsimd::default_arch>), codes, scales, zeros, rows, cols, group, x, tokens, y, work, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
