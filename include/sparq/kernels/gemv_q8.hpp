// int8 per-channel GEMV: float activations (W8A32) and int8 per-token activations (W8A8).
//
// Weights: codes q (int8, [−127, 127]) rows × cols row-major, one float scale per row:
// W[k][j] ≈ scale[k]·q[k][j].
//  - gemv_q8_f32:  y[k] = scale[k]·Σ_j q[k][j]·x[j]   (x float; weights widened to float, FMA)
//  - gemv_q8_a8:   y[k] = sx·scale[k]·Σ_j q[k][j]·qx[j] (x ≈ sx·qx, qx ∈ [−127, 127]; the sum is
//                  exact in int32 for cols ≤ 131072, since |Σ| ≤ cols·127²)
// Integer inner products (dot_s8):
//  - AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes, so the activations are made
//    unsigned, ux = qx + 128 (a xor with 0x80), and Σ q·ux − 128·Σ q is computed, Σ q by a second
//    vpdpbusd against a vector of ones (no precomputed row sums needed).
//  - AVX-512BW / AVX2 without VNNI: maddubs(|q|, sign(q)·qx) — the sign moves to the activation so
//    the unsigned operand is |q| ≤ 127 and each int16 pair sum is ≤ 2·127·127 = 32258 < 32767:
//    vpmaddubsw never saturates; then vpmaddwd with ones widens to int32.
//  - SSE2: both operands sign-extended to int16 and multiplied with pmaddwd.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

/// Σ_j a[j]·b[j] over int8 (a = weights, b = activations, both in [−127, 127]), exact int32.
/// Vnni selects vpdpbusd on AVX-512 (the default follows the TU's -mavx512vnni).
template <class Arch, bool Vnni = has_vnni>
[[nodiscard]] inline std::int32_t dot_s8(const std::int8_t* a, const std::int8_t* b, std::size_t n) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__)  // (the AVX-512 types are unknown on other targets)
  if constexpr (is_avx512bw_v<Arch>) {
    std::size_t j = 0;
    if constexpr (Vnni && has_vnni) {
#if defined(__AVX512VNNI__)
      const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
      const __m512i ones = _mm512_set1_epi8(1);
      __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
      __m512i cor0 = _mm512_setzero_si512(), cor1 = _mm512_setzero_si512();
      for (; j + 128 <= n; j += 128) {
        const __m512i w0 = _mm512_loadu_si512(a + j), w1 = _mm512_loadu_si512(a + j + 64);
        const __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(b + j), flip);
        const __m512i x1 = _mm512_xor_si512(_mm512_loadu_si512(b + j + 64), flip);
        acc0 = _mm512_dpbusd_epi32(acc0, x0, w0);
        acc1 = _mm512_dpbusd_epi32(acc1, x1, w1);
        cor0 = _mm512_dpbusd_epi32(cor0, ones, w0);
        cor1 = _mm512_dpbusd_epi32(cor1, ones, w1);
      }
      for (; j < n; j += 64) {  // masked tail: lanes past n load 0 weights and contribute nothing
        const __mmask64 m = n - j >= 64 ? ~__mmask64{0} : ((__mmask64{1} << (n - j)) - 1);
        const __m512i w0 = _mm512_maskz_loadu_epi8(m, a + j);
        const __m512i x0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, b + j), flip);
        acc0 = _mm512_dpbusd_epi32(acc0, x0, w0);
        cor0 = _mm512_dpbusd_epi32(cor0, ones, w0);
      }
      const __m512i acc = _mm512_add_epi32(acc0, acc1), cor = _mm512_add_epi32(cor0, cor1);
      return _mm512_reduce_add_epi32(_mm512_sub_epi32(acc, _mm512_slli_epi32(cor, 7)));
#endif
    } else {
      const __m512i ones16 = _mm512_set1_epi16(1);
      const __m512i zero = _mm512_setzero_si512();
      __m512i acc0 = zero, acc1 = zero;
      auto step = [&](__m512i w, __m512i x, __m512i& acc) {
        const __m512i aw = _mm512_abs_epi8(w);
        const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), zero, x);
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), ones16));
      };
      for (; j + 128 <= n; j += 128) {
        step(_mm512_loadu_si512(a + j), _mm512_loadu_si512(b + j), acc0);
        step(_mm512_loadu_si512(a + j + 64), _mm512_loadu_si512(b + j + 64), acc1);
      }
      for (; j < n; j += 64) {
        const __mmask64 m = n - j >= 64 ? ~__mmask64{0} : ((__mmask64{1} << (n - j)) - 1);
        step(_mm512_maskz_loadu_epi8(m, a + j), _mm512_maskz_loadu_epi8(m, b + j), acc0);
      }
      return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
    }
  }
#endif
#if defined(__AVX2__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    std::size_t j = 0;
    auto step = [&](__m256i w, __m256i x, __m256i& acc) {
      const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones16));
    };
    for (; j + 64 <= n; j += 64) {
      step(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + j)),
           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j)), acc0);
      step(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + j + 32)),
           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j + 32)), acc1);
    }
    for (; j + 32 <= n; j += 32) {
      step(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + j)),
           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j)), acc0);
    }
    const __m256i acc = _mm256_add_epi32(acc0, acc1);
    const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    std::int32_t s = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
    for (; j < n; ++j) s += static_cast<std::int32_t>(a[j]) * b[j];
    return s;
  }
#endif
#if defined(__SSE2__)
  if constexpr (!is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {
    __m128i acc = _mm_setzero_si128();
    std::size_t j = 0;
    for (; j + 16 <= n; j += 16) {
      const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j));
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + j));
      // sign-extend bytes to int16: interleave with itself, arithmetic shift right by 8
      const __m128i wl = _mm_srai_epi16(_mm_unpacklo_epi8(w, w), 8), wh = _mm_srai_epi16(_mm_unpackhi_epi8(w, w), 8);
      const __m128i xl = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8), xh = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);
      acc = _mm_add_epi32(acc, _mm_add_epi32(_mm_madd_epi16(wl, xl), _mm_madd_epi16(wh, xh)));
    }
    const __m128i s2 = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
    std::int32_t s = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
    for (; j < n; ++j) s += static_cast<std::int32_t>(a[j]) * b[j];
    return s;
  }
#endif
  std::int32_t s = 0;
  for (std::size_t j = 0; j < n; ++j) s += static_cast<std::int32_t>(a[j]) * b[j];
  return s;
}

/// Σ_j float(q[j])·x[j] (int8 weights widened to float), fixed order per arch.
template <class Arch>
[[nodiscard]] inline float dot_s8_f32(const std::int8_t* q, const float* x, std::size_t n) noexcept {
  [[maybe_unused]] std::size_t j = 0;  // used by the vector paths only
  if constexpr (is_avx512bw_v<Arch>) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    auto wf = [](const std::int8_t* p) {
      return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    };
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; j + 64 <= n; j += 64) {
      s0 = _mm512_fmadd_ps(wf(q + j), _mm512_loadu_ps(x + j), s0);
      s1 = _mm512_fmadd_ps(wf(q + j + 16), _mm512_loadu_ps(x + j + 16), s1);
      s2 = _mm512_fmadd_ps(wf(q + j + 32), _mm512_loadu_ps(x + j + 32), s2);
      s3 = _mm512_fmadd_ps(wf(q + j + 48), _mm512_loadu_ps(x + j + 48), s3);
    }
    for (; j < n; j += 16) {
      const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
      const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + j)));
      s0 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + j), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#endif
  }
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {
    auto wf = [](const std::int8_t* p) {
      return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    };
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const std::size_t n32 = n / 32 * 32;
    for (; j < n32; j += 32) {
      s0 = _mm256_fmadd_ps(wf(q + j), _mm256_loadu_ps(x + j), s0);
      s1 = _mm256_fmadd_ps(wf(q + j + 8), _mm256_loadu_ps(x + j + 8), s1);
      s2 = _mm256_fmadd_ps(wf(q + j + 16), _mm256_loadu_ps(x + j + 16), s2);
      s3 = _mm256_fmadd_ps(wf(q + j + 24), _mm256_loadu_ps(x + j + 24), s3);
    }
    const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float r = _mm_cvtss_f32(h);
    for (std::size_t i = n32; i < n; ++i) r = std::fma(static_cast<float>(q[i]), x[i], r);
    return r;
  }
#endif
  // SSE2 / generic: four scalar partial sums (the compiler vectorizes the widening).
  float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const std::size_t n4 = n / 4 * 4;
  for (std::size_t b = 0; b < n4; b += 4) {
    for (std::size_t i = 0; i < 4; ++i) s[i] = std::fma(static_cast<float>(q[b + i]), x[b + i], s[i]);
  }
  float r = (s[0] + s[1]) + (s[2] + s[3]);
  for (std::size_t i = n4; i < n; ++i) r = std::fma(static_cast<float>(q[i]), x[i], r);
  return r;
}

#if defined(__AVX2__)
/// NR rows of int8 weights (row r at a + r·stride) against the int8 activations b, AVX2: out[r] =
/// Σ_j a_r[j]·b[j], exact in int32 (so the same value as dot_s8 for any NR and any order). The rows
/// share the activation loads; when `Prefetch`, the same 64-byte line of each of the NR rows after
/// these is requested per step, so the next pass streams from cache. |a|, |b| ≤ 127 keeps maddubs
/// (|a|·sign(b, a), pairs summed) within int16.
template <int NR, bool Prefetch>
inline void dot_s8_rows_avx2(const std::int8_t* a, std::size_t stride, const std::int8_t* b, std::size_t n,
                             std::int32_t* out) noexcept {
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_si256();
  auto step = [&](int r, __m256i w, __m256i x) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, ones16));
  };
  std::size_t j = 0;
  for (; j + 64 <= n; j += 64) {
    if constexpr (Prefetch) {
      for (int r = 0; r < NR; ++r) __builtin_prefetch(a + (r + NR) * stride + j, 0, 3);
    }
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j + 32));
    for (int r = 0; r < NR; ++r) {
      const std::int8_t* ar = a + r * stride + j;
      step(r, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ar)), x0);
      step(r, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ar + 32)), x1);
    }
  }
  for (; j + 32 <= n; j += 32) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j));
    for (int r = 0; r < NR; ++r) step(r, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + r * stride + j)), x0);
  }
  for (int r = 0; r < NR; ++r) {
    const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc[r]), _mm256_extracti128_si256(acc[r], 1));
    const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    std::int32_t s = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
    for (std::size_t i = j; i < n; ++i) s += static_cast<std::int32_t>(a[r * stride + i]) * b[i];
    out[r] = s;
  }
}
#endif

#if defined(__AVX512BW__) && defined(__AVX512VL__)
/// Prefetches (never faulting) the 64-byte lines [p, p + bytes). The int8 GEMVs prefetch the rows one
/// group (NR rows = 16 KiB at 4096 columns) ahead: about the distance the int4 kernel uses, small
/// enough to stay in L1 next to the rows being read and the activations.
inline void prefetch_span(std::uintptr_t p, std::size_t bytes) noexcept {
  for (std::size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}

#if defined(__AVX512VNNI__)
/// Σ_j b[j] over int8 (exact), for the unsigned-weight VNNI form below.
[[nodiscard]] inline std::int32_t sum_s8_avx512(const std::int8_t* b, std::size_t n) noexcept {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i acc = _mm512_setzero_si512();
  for (std::size_t j = 0; j < n; j += 64) {
    const __mmask64 m = n - j >= 64 ? ~__mmask64{0} : ((__mmask64{1} << (n - j)) - 1);
    acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(m, b + j));
  }
  return _mm512_reduce_add_epi32(acc);
}

/// NR rows of Σ_j a[r][j]·b[j] (rows a + r·stride), exact, AVX-512 VNNI with the weights as the
/// unsigned operand: ua = a + 128 (xor 0x80), Σ ua·b = Σ a·b + 128·Σ b, and `bsum` = Σ b is
/// computed once per call. |Σ ua·b| per int32 lane ≤ 255·127·cols/16 < 2^31 for cols ≤ 131072.
template <int NR, bool Prefetch>
inline void dot_s8_rows_vnni(const std::int8_t* a, std::size_t stride, const std::int8_t* b, std::size_t n,
                             std::int32_t bsum, std::int32_t* out) noexcept {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc[NR][2];
  for (int r = 0; r < NR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
  std::size_t j = 0;
  for (; j + 128 <= n; j += 128) {
    if constexpr (Prefetch) {
      for (int r = 0; r < NR; ++r)
        prefetch_span(reinterpret_cast<std::uintptr_t>(a) + (r + NR) * stride + j, 128);
    }
    const __m512i x0 = _mm512_loadu_si512(b + j), x1 = _mm512_loadu_si512(b + j + 64);
    for (int r = 0; r < NR; ++r) {
      const std::int8_t* ar = a + r * stride + j;
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], _mm512_xor_si512(_mm512_loadu_si512(ar), flip), x0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], _mm512_xor_si512(_mm512_loadu_si512(ar + 64), flip), x1);
    }
  }
  for (; j < n; j += 64) {  // masked tail: lanes past n have x = 0, so their 128 contributes nothing
    const __mmask64 m = n - j >= 64 ? ~__mmask64{0} : ((__mmask64{1} << (n - j)) - 1);
    const __m512i x0 = _mm512_maskz_loadu_epi8(m, b + j);
    for (int r = 0; r < NR; ++r) {
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + r * stride + j), flip), x0);
    }
  }
  for (int r = 0; r < NR; ++r) {
    out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc[r][0], acc[r][1])) - 128 * bsum;
  }
}
#endif

/// NR rows of Σ_j float(q[r][j])·x[j], the same operation sequence per row as dot_s8_f32 on
/// AVX-512 (so results are bit-identical to it); x loads are shared by the rows.

template <int NR, bool Prefetch>
inline void dot_s8_f32_rows_avx512(const std::int8_t* q, std::size_t stride, const float* x, std::size_t n,
                                   float* out) noexcept {
  auto wf = [](const std::int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  };
  __m512 s[NR][4];
  for (int r = 0; r < NR; ++r) s[r][0] = s[r][1] = s[r][2] = s[r][3] = _mm512_setzero_ps();
  std::size_t j = 0;
  for (; j + 64 <= n; j += 64) {
    if constexpr (Prefetch) {
      for (int r = 0; r < NR; ++r) prefetch_span(reinterpret_cast<std::uintptr_t>(q) + (r + NR) * stride + j, 64);
    }
    const __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
    const __m512 x2 = _mm512_loadu_ps(x + j + 32), x3 = _mm512_loadu_ps(x + j + 48);
    for (int r = 0; r < NR; ++r) {
      const std::int8_t* qr = q + r * stride + j;
      s[r][0] = _mm512_fmadd_ps(wf(qr), x0, s[r][0]);
      s[r][1] = _mm512_fmadd_ps(wf(qr + 16), x1, s[r][1]);
      s[r][2] = _mm512_fmadd_ps(wf(qr + 32), x2, s[r][2]);
      s[r][3] = _mm512_fmadd_ps(wf(qr + 48), x3, s[r][3]);
    }
  }
  for (; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
    for (int r = 0; r < NR; ++r) {
      const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + r * stride + j)));
      s[r][0] = _mm512_fmadd_ps(w, xv, s[r][0]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    out[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), _mm512_add_ps(s[r][2], s[r][3])));
  }
}
#endif

/// Rows computed together by the AVX-512 int8 GEMV kernels.
inline constexpr int q8_rows = 4;

}  // namespace detail

/// W8A32: y[k] = scale[k]·Σ_j q[k][j]·x[j]. q rows × cols row-major (row stride cols).
template <class Arch = simd::dynamic>
void gemv_q8_f32(const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const float* x,
                 float* y, int threads = 1) noexcept {
  // One row at a time: with the weights streamed from memory the 4-row kernel (used by the prefill
  // GEMM, bit-identical) measured slower here (interleaved row streams) and it saves little compute.
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) y[k] = scale[k] * detail::dot_s8_f32<Arch>(q + k * cols, x, cols);
  });
}

/// W8A8: y[k] = sx·scale[k]·Σ_j q[k][j]·qx[j], integer sum exact (cols ≤ 131072).
template <class Arch = simd::dynamic, bool Vnni = detail::has_vnni>
void gemv_q8_a8(const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const std::int8_t* qx,
                float sx, float* y, int threads = 1) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
  if constexpr (detail::is_avx512bw_v<Arch> && Vnni) {
    // One row at a time (one xor + one vpdpbusd per 64 weights): streaming from memory this measured
    // faster than the 4-row interleave (which gemm_q8_a8 uses; the integer sums are exact either way).
    const std::int32_t qsum = detail::sum_s8_avx512(qx, cols);
    for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
      std::int32_t d[1];
      for (std::size_t k = r0; k < r1; ++k) {
        detail::dot_s8_rows_vnni<1, false>(q + k * cols, cols, qx, cols, qsum, d);
        y[k] = sx * scale[k] * static_cast<float>(d[0]);
      }
    });
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (detail::is_avx2_v<Arch> && !detail::is_avx512bw_v<Arch>) {
    // Four rows per pass sharing the activation loads, the next four prefetched (measured on Zen 3:
    // one row at a time left the memory stream at ~15 GB/s where the float GEMV reaches ~20).
    constexpr int NR = detail::q8_rows;
    for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
      std::int32_t d[NR];
      std::size_t k = r0;
      for (; k + 2 * NR <= r1; k += NR) {
        detail::dot_s8_rows_avx2<NR, true>(q + k * cols, cols, qx, cols, d);
        for (int r = 0; r < NR; ++r) y[k + r] = sx * scale[k + r] * static_cast<float>(d[r]);
      }
      for (; k + NR <= r1; k += NR) {
        detail::dot_s8_rows_avx2<NR, false>(q + k * cols, cols, qx, cols, d);
        for (int r = 0; r < NR; ++r) y[k + r] = sx * scale[k + r] * static_cast<float>(d[r]);
      }
      for (; k < r1; ++k) {
        detail::dot_s8_rows_avx2<1, false>(q + k * cols, cols, qx, cols, d);
        y[k] = sx * scale[k] * static_cast<float>(d[0]);
      }
    });
    return;
  }
#endif
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) {
      y[k] = sx * scale[k] * static_cast<float>(detail::dot_s8<Arch, Vnni>(q + k * cols, qx, cols));
    }
  });
}

/// Per-token symmetric int8 quantization of activations: qx = round-half-even(x/sx), sx = max|x|/127
/// (sx = 0 and qx = 0 for an all-zero x). Returns sx.
inline float quantize_per_token_q8(const float* x, std::size_t n, std::int8_t* qx) noexcept {
  float amax = 0.0f;
  for (std::size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (std::size_t j = 0; j < n; ++j) {
    qx[j] = static_cast<std::int8_t>(std::clamp(std::nearbyint(x[j] * inv), -127.0f, 127.0f));
  }
  return amax / 127.0f;
}

/// Scalar reference of gemv_q8_f32 (double accumulation).
inline void gemv_q8_f32_reference(const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols,
                                  const float* x, float* y) noexcept {
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t j = 0; j < cols; ++j) s += static_cast<double>(q[k * cols + j]) * x[j];
    y[k] = static_cast<float>(scale[k] * s);
  }
}

/// Scalar reference of the W8A8 integer sums: acc[k] = Σ_j q[k][j]·qx[j] (exact).
inline void gemv_q8_a8_reference(const std::int8_t* q, std::size_t rows, std::size_t cols, const std::int8_t* qx,
                                 std::int32_t* acc) noexcept {
  for (std::size_t k = 0; k < rows; ++k) {
    std::int32_t s = 0;
    for (std::size_t j = 0; j < cols; ++j) s += static_cast<std::int32_t>(q[k * cols + j]) * qx[j];
    acc[k] = s;
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_q8_f32<simd::dynamic>(
    const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const float* x, float* y,
    int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_q8_f32, (gemv_q8_f32<xsimd::default_arch>), q, scale, rows, cols, x, y, threads);
}
template <>
inline void gemv_q8_a8<simd::dynamic, detail::has_vnni>(
    const std::int8_t* q, const float* scale, std::size_t rows, std::size_t cols, const std::int8_t* qx,
    float sx, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_q8_a8, (gemv_q8_a8<xsimd::default_arch, detail::has_vnni>), q, scale, rows, cols, qx, sx, y, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
