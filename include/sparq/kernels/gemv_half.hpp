// bf16 and fp16 weight GEMV with float activations: y[k] = Σ_j float(W[k][j])·x[j].
//
// Weights are uint16 bit patterns, rows × cols row-major. Conversion is exact (bf16: the bits
// shifted left by 16; fp16: F16C vcvtph2ps, or sparq::fp16_to_float on the portable path), then
// float FMA. Four rows per pass sharing the activation loads, the next four prefetched; per row two
// vector accumulators, summed and reduced, then a scalar FMA tail (the same for any grouping).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "sparq/core/half.hpp"
#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

/// NR rows of w (row r at w + r·cols) against x at once; out[r] = Σ_j half(w_r[j])·x[j]. Each row's
/// sum is formed the same way whatever NR is (two vector accumulators per row, FMA, summed and
/// reduced, then a scalar FMA tail), so y does not depend on how rows are grouped. The rows share
/// the activation loads; when `Prefetch`, the same cache lines of the NR rows after these are
/// requested, one 64-byte line per row per step, so the next pass streams from cache.
template <class Arch, bool Bf16, std::size_t NR, bool Prefetch>
inline void dot_half_rows(const std::uint16_t* w, std::size_t cols, const float* x, float* out) noexcept {
  std::size_t j = 0;
  float r[NR] = {};
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>) {
    auto cvt = [](__m256i h) {
      if constexpr (Bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      else return _mm512_cvtph_ps(h);
    };
    auto ld = [](const std::uint16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
    __m512 s0[NR], s1[NR];
    for (std::size_t q = 0; q < NR; ++q) s0[q] = s1[q] = _mm512_setzero_ps();
    for (; j + 32 <= cols; j += 32) {
      if constexpr (Prefetch) {
        for (std::size_t q = 0; q < NR; ++q) __builtin_prefetch(w + (NR + q) * cols + j, 0, 3);
      }
      const __m512 xa = _mm512_loadu_ps(x + j), xb = _mm512_loadu_ps(x + j + 16);
      for (std::size_t q = 0; q < NR; ++q) {
        s0[q] = _mm512_fmadd_ps(cvt(ld(w + q * cols + j)), xa, s0[q]);
        s1[q] = _mm512_fmadd_ps(cvt(ld(w + q * cols + j + 16)), xb, s1[q]);
      }
    }
    for (; j < cols; j += 16) {
      const __mmask16 m = cols - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - j)) - 1);
      const __m512 xa = _mm512_maskz_loadu_ps(m, x + j);
      for (std::size_t q = 0; q < NR; ++q)
        s0[q] = _mm512_fmadd_ps(cvt(_mm256_maskz_loadu_epi16(m, w + q * cols + j)), xa, s0[q]);
    }
    for (std::size_t q = 0; q < NR; ++q) out[q] = _mm512_reduce_add_ps(_mm512_add_ps(s0[q], s1[q]));
    return;
  }
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {
    auto cvt = [](const std::uint16_t* p) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      if constexpr (Bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      else return _mm256_cvtph_ps(h);
    };
    __m256 s0[NR], s1[NR];
    for (std::size_t q = 0; q < NR; ++q) s0[q] = s1[q] = _mm256_setzero_ps();
    for (; j + 32 <= cols; j += 32) {  // 64 bytes of each row per step
      if constexpr (Prefetch) {
        for (std::size_t q = 0; q < NR; ++q) __builtin_prefetch(w + (NR + q) * cols + j, 0, 3);
      }
      for (std::size_t h = 0; h < 32; h += 16) {
        const __m256 xa = _mm256_loadu_ps(x + j + h), xb = _mm256_loadu_ps(x + j + h + 8);
        for (std::size_t q = 0; q < NR; ++q) {
          s0[q] = _mm256_fmadd_ps(cvt(w + q * cols + j + h), xa, s0[q]);
          s1[q] = _mm256_fmadd_ps(cvt(w + q * cols + j + h + 8), xb, s1[q]);
        }
      }
    }
    for (std::size_t q = 0; q < NR; ++q) {
      const __m256 sv = _mm256_add_ps(s0[q], s1[q]);
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(sv), _mm256_extractf128_ps(sv, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
      r[q] = _mm_cvtss_f32(h);
    }
  }
#endif
  for (std::size_t q = 0; q < NR; ++q) {
    float acc = r[q];
    const std::uint16_t* wq = w + q * cols;
    for (std::size_t i = j; i < cols; ++i) acc = std::fma(Bf16 ? bf16_to_float(wq[i]) : fp16_to_float(wq[i]), x[i], acc);
    out[q] = acc;
  }
}

/// Rows [r0, r1) of y: four rows per pass, the next pass's rows prefetched (not past r1).
template <class Arch, bool Bf16>
inline void gemv_half_rows(const std::uint16_t* w, std::size_t cols, const float* x, float* y, std::size_t r0,
                           std::size_t r1) noexcept {
  constexpr std::size_t NR = 4;
  std::size_t k = r0;
  for (; k + 2 * NR <= r1; k += NR) dot_half_rows<Arch, Bf16, NR, true>(w + k * cols, cols, x, y + k);
  for (; k + NR <= r1; k += NR) dot_half_rows<Arch, Bf16, NR, false>(w + k * cols, cols, x, y + k);
  for (; k < r1; ++k) dot_half_rows<Arch, Bf16, 1, false>(w + k * cols, cols, x, y + k);
}

}  // namespace detail

/// y[k] = Σ_j bf16(W[k][j])·x[j].
template <class Arch = simd::dynamic>
void gemv_bf16(const std::uint16_t* w, std::size_t rows, std::size_t cols, const float* x, float* y,
               int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    detail::gemv_half_rows<Arch, true>(w, cols, x, y, r0, r1);
  });
}

/// y[k] = Σ_j fp16(W[k][j])·x[j].
template <class Arch = simd::dynamic>
void gemv_f16(const std::uint16_t* w, std::size_t rows, std::size_t cols, const float* x, float* y,
              int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    detail::gemv_half_rows<Arch, false>(w, cols, x, y, r0, r1);
  });
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_bf16<simd::dynamic>(
    const std::uint16_t* w, std::size_t rows, std::size_t cols, const float* x, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_bf16, (gemv_bf16<xsimd::default_arch>), w, rows, cols, x, y, threads);
}
template <>
inline void gemv_f16<simd::dynamic>(
    const std::uint16_t* w, std::size_t rows, std::size_t cols, const float* x, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_f16, (gemv_f16<xsimd::default_arch>), w, rows, cols, x, y, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
