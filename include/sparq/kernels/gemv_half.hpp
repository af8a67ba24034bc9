// bf16 and fp16 weight GEMV with float activations: y[k] = Σ_j float(W[k][j])·x[j].
//
// Weights are uint16 bit patterns, rows × cols row-major. Conversion is exact (bf16: the bits
// shifted left by 16; fp16: F16C vcvtph2ps, or sparq::fp16_to_float on the portable path), then
// float FMA. Per row: 4 vector accumulators, pairwise combined and reduced, then the tail.
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

template <class Arch, bool Bf16>
[[nodiscard]] inline float dot_half(const std::uint16_t* w, const float* x, std::size_t n) noexcept {
  std::size_t j = 0;
  float r = 0.0f;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>) {
    auto cvt = [](__m256i h) {
      if constexpr (Bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      else return _mm512_cvtph_ps(h);
    };
    auto ld = [](const std::uint16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; j + 64 <= n; j += 64) {
      s0 = _mm512_fmadd_ps(cvt(ld(w + j)), _mm512_loadu_ps(x + j), s0);
      s1 = _mm512_fmadd_ps(cvt(ld(w + j + 16)), _mm512_loadu_ps(x + j + 16), s1);
      s2 = _mm512_fmadd_ps(cvt(ld(w + j + 32)), _mm512_loadu_ps(x + j + 32), s2);
      s3 = _mm512_fmadd_ps(cvt(ld(w + j + 48)), _mm512_loadu_ps(x + j + 48), s3);
    }
    for (; j < n; j += 16) {
      const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
      s0 = _mm512_fmadd_ps(cvt(_mm256_maskz_loadu_epi16(m, w + j)), _mm512_maskz_loadu_ps(m, x + j), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  }
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {
    auto cvt = [](const std::uint16_t* p) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      if constexpr (Bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      else return _mm256_cvtph_ps(h);
    };
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; j + 32 <= n; j += 32) {
      s0 = _mm256_fmadd_ps(cvt(w + j), _mm256_loadu_ps(x + j), s0);
      s1 = _mm256_fmadd_ps(cvt(w + j + 8), _mm256_loadu_ps(x + j + 8), s1);
      s2 = _mm256_fmadd_ps(cvt(w + j + 16), _mm256_loadu_ps(x + j + 16), s2);
      s3 = _mm256_fmadd_ps(cvt(w + j + 24), _mm256_loadu_ps(x + j + 24), s3);
    }
    const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    r = _mm_cvtss_f32(h);
  }
#endif
  for (; j < n; ++j) r = std::fma(Bf16 ? bf16_to_float(w[j]) : fp16_to_float(w[j]), x[j], r);
  return r;
}

}  // namespace detail

/// y[k] = Σ_j bf16(W[k][j])·x[j].
template <class Arch = simd::dynamic>
void gemv_bf16(const std::uint16_t* w, std::size_t rows, std::size_t cols, const float* x, float* y,
               int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) y[k] = detail::dot_half<Arch, true>(w + k * cols, x, cols);
  });
}

/// y[k] = Σ_j fp16(W[k][j])·x[j].
template <class Arch = simd::dynamic>
void gemv_f16(const std::uint16_t* w, std::size_t rows, std::size_t cols, const float* x, float* y,
              int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) y[k] = detail::dot_half<Arch, false>(w + k * cols, x, cols);
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
