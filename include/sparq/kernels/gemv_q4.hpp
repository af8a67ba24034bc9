// int4 per-group GEMV (symmetric offset-binary or asymmetric codes), W4A8 inner products.
//
// Weights: codes packed row by row, row_bytes = cols/2, element 2i in the LOW nibble of byte i and
// 2i+1 in the HIGH nibble; u ∈ [0, 15]. Per group of G consecutive inputs of a row (G ∈ {32, 64,
// 128}, cols % G == 0) a float scale s[k][g] and, if asymmetric, a uint8 zero z[k][g]:
//   symmetric:  W[k][j] = s[k][g]·(u − 8)        asymmetric: W[k][j] = s[k][g]·(u − z[k][g])
// scales and zeros are cout × (cols/G) row-major. zeros == nullptr means symmetric (z = 8).
//
// Method (no per-weight float conversion): the activations are int8 per block of 32 inputs
// (BlockQ8, see gemv_common.hpp: x[j] ≈ a[b]·qx[j]). For each row and block b of 32 inputs,
//   d[b] = Σ_{j in b} u[j]·qx[j]   (int32; vpdpbusd with the nibbles as the unsigned operand, or
//                                   maddubs: 15·127·2 < 32767 so it cannot saturate)
//   y[k] = Σ_b s[k][g(b)]·a[b]·(d[b] − z[k][g(b)]·Σ_{j in b} qx[j])
// which equals Σ_j W[k][j]·a[b]·qx[j] exactly up to float rounding of the last two products.
// The nibble-ordered activation layout lets the low/high nibbles of 64 code bytes meet their
// activations without shuffles; four 64-byte chunks (16 blocks) are reduced with an in-lane
// transpose-add and one permute, then scaled with one FMA per 16 blocks (AVX2: four 32-byte
// chunks, 8 blocks, one FMA per 8 blocks). Both vector kernels run 4 rows per pass in the streaming
// GEMV (shared activation loads, software prefetch of the rows ahead) and take float or fp16 scales.
//  - gemv_q4_a8:  activations already in a BlockQ8 (from quantize_block_q8, or from int8 per-token
//                 activations via block_q8_from_per_token: W4A8).
//  - gemv_q4_f32: float x; quantizes x into the caller's workspace first. Error versus the exact
//                 float product: |Δy[k]| ≤ Σ_j |W[k][j]|·a[b(j)]/2 (plus float rounding).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/core/half.hpp"
#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

#if defined(__AVX512BW__) && defined(__AVX512VL__)
/// NR rows at once, AVX-512 (row i: codes + i·cstride, sw + i·sstride, zp + i·sstride). r = G/32
/// blocks of 32 per group. The rows share the activation loads and the activation-side terms; each
/// row's result is computed by exactly the same operation sequence as with NR = 1 (bit-identical).
/// Prefetch: software-prefetch the rows 2·NR further on (decode GEMV streaming rows from memory;
/// prefetches never fault, so reading past the last row is harmless).
template <bool Asym, bool Vnni, int NR, bool Prefetch = false, class S = float>
inline void q4_rows_avx512(const std::uint8_t* codes, std::size_t cstride, const S* sw, const std::uint8_t* zp,
                           std::size_t sstride, std::size_t cols, std::size_t r, const BlockQ8& act,
                           float* out) noexcept {
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i expand = r == 1   ? _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                         : r == 2 ? _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)
                                  : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const auto gmask = static_cast<__mmask16>((1u << (16 / r)) - 1);
  __m512 accf[NR];
  for (int i = 0; i < NR; ++i) accf[i] = _mm512_setzero_ps();

  // cb(i): 256 code bytes of row i; swb(i) / zb(i): its scales / zeros for these 16 blocks.
  auto block = [&](auto cb, auto swb, auto zb, std::size_t base) {
    __m512i acc[NR][4];
    for (int k = 0; k < 4; ++k) {
      const __m512i xe = _mm512_load_si512(act.q + base + 128 * k);
      const __m512i xo = _mm512_load_si512(act.q + base + 128 * k + 64);
      for (int i = 0; i < NR; ++i) {
        const __m512i w = _mm512_loadu_si512(cb(i) + 64 * k);
        const __m512i lo = _mm512_and_si512(w, nib);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nib);
        if constexpr (Vnni) {
#if defined(__AVX512VNNI__)
          acc[i][k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xe), hi, xo);
#endif
        } else {
          acc[i][k] = _mm512_madd_epi16(
              _mm512_add_epi16(_mm512_maddubs_epi16(lo, xe), _mm512_maddubs_epi16(hi, xo)), _mm512_set1_epi16(1));
        }
      }
    }
    const std::size_t sb = base / 32;
    const __m512i qsum = _mm512_loadu_si512(act.sum + sb);
    const __m512i q8 = _mm512_slli_epi32(qsum, 3);
    const __m512 ascale = _mm512_loadu_ps(act.scale + sb);
    for (int i = 0; i < NR; ++i) {
      // each 128-bit lane of acc[i][k] holds 4 partial sums of block 4k + lane: transpose-add them
      const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[i][0], acc[i][1]),
                                          _mm512_unpackhi_epi32(acc[i][0], acc[i][1]));
      const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[i][2], acc[i][3]),
                                          _mm512_unpackhi_epi32(acc[i][2], acc[i][3]));
      const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
      __m512i d = _mm512_permutexvar_epi32(perm, u);  // natural block order
      if constexpr (Asym) {
        __m512i z;
        if (r == 1) {
          z = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zb(i))));
        } else {
          z = _mm512_permutexvar_epi32(expand, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(gmask, zb(i))));
        }
        d = _mm512_sub_epi32(d, _mm512_mullo_epi32(z, qsum));
      } else {
        d = _mm512_sub_epi32(d, q8);
      }
      const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(d), ascale);
      __m512 s;
      if constexpr (std::is_same_v<S, float>) {
        s = r == 1 ? _mm512_loadu_ps(swb(i)) : _mm512_permutexvar_ps(expand, _mm512_maskz_loadu_ps(gmask, swb(i)));
      } else {  // fp16 scales (exactly widened)
        s = r == 1 ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(swb(i))))
                   : _mm512_permutexvar_ps(expand, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(gmask, swb(i))));
      }
      accf[i] = _mm512_fmadd_ps(f, s, accf[i]);
    }
  };

  const std::size_t nfull = cols / 512;
  const std::size_t gpb = 16 / r;  // groups per 512-input block
  for (std::size_t b = 0; b < nfull; ++b) {
    if constexpr (Prefetch) {  // the same block of the rows two calls ahead (the row stream is interleaved)
      const std::uintptr_t cp = reinterpret_cast<std::uintptr_t>(codes) + 2 * NR * cstride + b * 256;
      const std::uintptr_t sp = reinterpret_cast<std::uintptr_t>(sw + b * gpb) + 2 * NR * sstride * sizeof(S);
      const std::uintptr_t zq = reinterpret_cast<std::uintptr_t>(zp) + 2 * NR * sstride + b * gpb;
      for (int i = 0; i < NR; ++i) {
        const auto* pc = reinterpret_cast<const char*>(cp + i * cstride);
        _mm_prefetch(pc, _MM_HINT_T0);
        _mm_prefetch(pc + 64, _MM_HINT_T0);
        _mm_prefetch(pc + 128, _MM_HINT_T0);
        _mm_prefetch(pc + 192, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(sp + i * sstride * sizeof(S)), _MM_HINT_T0);
        if constexpr (Asym) _mm_prefetch(reinterpret_cast<const char*>(zq + i * sstride), _MM_HINT_T0);
      }
    }
    block([&](int i) { return codes + i * cstride + b * 256; }, [&](int i) { return sw + i * sstride + b * gpb; },
          [&](int i) { return zp + i * sstride + b * gpb; }, b * 512);
  }
  const std::size_t rem = cols - nfull * 512;
  if (rem != 0) {
    alignas(64) std::uint8_t cbuf[NR][256] = {};
    S sbuf[NR][16] = {};
    std::uint8_t zbuf[NR][16] = {};
    const std::size_t ng = rem / (32 * r);
    for (int i = 0; i < NR; ++i) {
      std::memcpy(cbuf[i], codes + i * cstride + nfull * 256, rem / 2);
      std::memcpy(sbuf[i], sw + i * sstride + nfull * gpb, ng * sizeof(S));
      if constexpr (Asym) std::memcpy(zbuf[i], zp + i * sstride + nfull * gpb, ng);
    }
    block([&](int i) { return &cbuf[i][0]; }, [&](int i) { return &sbuf[i][0]; }, [&](int i) { return &zbuf[i][0]; },
          nfull * 512);
  }
  for (int i = 0; i < NR; ++i) out[i] = _mm512_reduce_add_ps(accf[i]);
}

/// One row, AVX-512.
template <bool Asym, bool Vnni>
[[nodiscard]] inline float q4_row_avx512(const std::uint8_t* codes, const float* sw, const std::uint8_t* zp,
                                         std::size_t cols, std::size_t r, const BlockQ8& act) noexcept {
  float out;
  q4_rows_avx512<Asym, Vnni, 1>(codes, 0, sw, zp, 0, cols, r, act, &out);
  return out;
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/// NR rows at once, AVX2 (maddubs; blocks of 256 inputs = 8 blocks of 32; row i: codes + i·cstride,
/// sw + i·sstride, zp + i·sstride). Each row runs exactly the operation sequence of NR = 1 (the rows
/// only share the activation-side loads), so a row's value does not depend on NR or on the thread
/// count. S = float scales, or uint16 fp16 bit patterns widened exactly (F16C vcvtph2ps), so with
/// fp16 scales the result equals the float-scale kernel on the widened scales bit for bit.
/// Prefetch (streaming decode): like the AVX-512 kernel, software-prefetch the same block of the
/// rows 2·NR further on (prefetches never fault, so running past the last row is harmless).
template <bool Asym, int NR, bool Prefetch = false, class S = float>
inline void q4_rows_avx2(const std::uint8_t* codes, std::size_t cstride, const S* sw, const std::uint8_t* zp,
                         std::size_t sstride, std::size_t cols, std::size_t r, const BlockQ8& act,
                         float* out) noexcept {
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i expand = r == 1   ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                         : r == 2 ? _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)
                                  : _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const std::size_t gpb = 8 / r;  // groups per 256-input block
  const __m256i gmask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(gpb)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 accf[NR];
  for (int i = 0; i < NR; ++i) accf[i] = _mm256_setzero_ps();

  // the scales of one block (gpb values) broadcast to the 8 blocks of 32 they cover
  auto load_scales = [&](const S* swb) {
    if constexpr (std::is_same_v<S, float>) {
      return r == 1 ? _mm256_loadu_ps(swb) : _mm256_permutevar8x32_ps(_mm256_maskload_ps(swb, gmask), expand);
    } else {
#if defined(__F16C__)
      if (r == 1) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(swb)));
      std::uint64_t h = 0;
      std::memcpy(&h, swb, gpb * sizeof(S));  // 4 or 2 halves
      return _mm256_permutevar8x32_ps(_mm256_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(h))), expand);
#else
      alignas(32) float t[8] = {};
      for (std::size_t g = 0; g < gpb; ++g) t[g] = fp16_to_float(swb[g]);
      return _mm256_permutevar8x32_ps(_mm256_load_ps(t), expand);
#endif
    }
  };

  // cb(i): 128 code bytes of row i; swb(i) / zb(i): its scales / zeros for these 8 blocks.
  auto block = [&](auto cb, auto swb, auto zb, std::size_t base) {
    const std::size_t sb = base / 32;
    const __m256i qsum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.sum + sb));
    const __m256 ascale = _mm256_loadu_ps(act.scale + sb);
    for (int i = 0; i < NR; ++i) {
      __m256i acc[4];
      for (int k = 0; k < 4; ++k) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb(i) + 32 * k));
        const __m256i lo = _mm256_and_si256(w, nib);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib);
        const std::int8_t* xp = act.q + base + 128 * (k / 2) + 32 * (k % 2);
        const __m256i xe = _mm256_load_si256(reinterpret_cast<const __m256i*>(xp));
        const __m256i xo = _mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 64));
        acc[k] =
            _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, xe), _mm256_maddubs_epi16(hi, xo)), ones16);
      }
      // each 128-bit lane of acc[k] holds 4 partial sums of block 2k + lane: transpose-add them
      const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(acc[0], acc[1]), _mm256_unpackhi_epi32(acc[0], acc[1]));
      const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(acc[2], acc[3]), _mm256_unpackhi_epi32(acc[2], acc[3]));
      const __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
      __m256i d = _mm256_permutevar8x32_epi32(u, perm);  // natural block order
      if constexpr (Asym) {
        std::uint64_t zz = 0;
        std::memcpy(&zz, zb(i), gpb);
        const __m256i z = _mm256_permutevar8x32_epi32(
            _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(zz))), expand);
        d = _mm256_sub_epi32(d, _mm256_mullo_epi32(z, qsum));
      } else {
        d = _mm256_sub_epi32(d, _mm256_slli_epi32(qsum, 3));
      }
      const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(d), ascale);
      accf[i] = _mm256_fmadd_ps(f, load_scales(swb(i)), accf[i]);
    }
  };

  const std::size_t nfull = cols / 256;
  for (std::size_t b = 0; b < nfull; ++b) {
    if constexpr (Prefetch) {  // the same block of the rows two calls ahead (the row stream is interleaved)
      const std::uintptr_t cp = reinterpret_cast<std::uintptr_t>(codes) + 2 * NR * cstride + b * 128;
      const std::uintptr_t sp = reinterpret_cast<std::uintptr_t>(sw + b * gpb) + 2 * NR * sstride * sizeof(S);
      const std::uintptr_t zq = reinterpret_cast<std::uintptr_t>(zp) + 2 * NR * sstride + b * gpb;
      for (int i = 0; i < NR; ++i) {
        const auto* pc = reinterpret_cast<const char*>(cp + i * cstride);
        _mm_prefetch(pc, _MM_HINT_T0);
        _mm_prefetch(pc + 64, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(sp + i * sstride * sizeof(S)), _MM_HINT_T0);
        if constexpr (Asym) _mm_prefetch(reinterpret_cast<const char*>(zq + i * sstride), _MM_HINT_T0);
      }
    }
    block([&](int i) { return codes + i * cstride + b * 128; }, [&](int i) { return sw + i * sstride + b * gpb; },
          [&](int i) { return zp + i * sstride + b * gpb; }, b * 256);
  }
  const std::size_t rem = cols - nfull * 256;
  if (rem != 0) {  // copy the partial block into zero-padded buffers (no reads past a row)
    alignas(32) std::uint8_t cbuf[NR][128] = {};
    S sbuf[NR][8] = {};
    std::uint8_t zbuf[NR][8] = {};
    const std::size_t ng = rem / (32 * r);
    for (int i = 0; i < NR; ++i) {
      std::memcpy(cbuf[i], codes + i * cstride + nfull * 128, rem / 2);
      std::memcpy(sbuf[i], sw + i * sstride + nfull * gpb, ng * sizeof(S));
      if constexpr (Asym) std::memcpy(zbuf[i], zp + i * sstride + nfull * gpb, ng);
    }
    block([&](int i) { return &cbuf[i][0]; }, [&](int i) { return &sbuf[i][0]; }, [&](int i) { return &zbuf[i][0]; },
          nfull * 256);
  }
  for (int i = 0; i < NR; ++i) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(accf[i]), _mm256_extractf128_ps(accf[i], 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    out[i] = _mm_cvtss_f32(h);
  }
}

/// One row, AVX2.
template <bool Asym>
[[nodiscard]] inline float q4_row_avx2(const std::uint8_t* codes, const float* sw, const std::uint8_t* zp,
                                       std::size_t cols, std::size_t r, const BlockQ8& act) noexcept {
  float out;
  q4_rows_avx2<Asym, 1>(codes, 0, sw, zp, 0, cols, r, act, &out);
  return out;
}
#endif

/// One row, portable (SSE2 / generic): block by block, same math.
template <bool Asym, class S = float>
[[nodiscard]] inline float q4_row_generic(const std::uint8_t* codes, const S* sw, const std::uint8_t* zp,
                                          std::size_t cols, std::size_t r, const BlockQ8& act) noexcept {
  float acc = 0.0f;
  for (std::size_t b = 0; b < cols / 32; ++b) {
    std::int32_t d = 0;
    const std::int8_t* xe = act.q + block_q8_position(b * 32);  // 16 even inputs, contiguous
    const std::int8_t* xo = xe + 64;                              // the 16 odd ones
    for (std::size_t i = 0; i < 16; ++i) {
      const std::uint8_t c = codes[b * 16 + i];
      d += static_cast<std::int32_t>(c & 0x0f) * xe[i] + static_cast<std::int32_t>(c >> 4) * xo[i];
    }
    const std::size_t g = b / r;
    const std::int32_t z = Asym ? zp[g] : 8;
    d -= z * act.sum[b];
    float sg;
    if constexpr (std::is_same_v<S, float>) {
      sg = sw[g];
    } else {
      sg = fp16_to_float(sw[g]);
    }
    acc += sg * (static_cast<float>(d) * act.scale[b]);
  }
  return acc;
}

/// Rows the AVX-512 and AVX2 kernels compute together (they share the activation loads).
inline constexpr int q4_rows = 4;


template <class Arch, bool Asym, bool Vnni>
[[nodiscard]] inline float q4_row(const std::uint8_t* codes, const float* sw, const std::uint8_t* zp, std::size_t cols,
                                  std::size_t r, const BlockQ8& act) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>) return q4_row_avx512<Asym, Vnni && has_vnni>(codes, sw, zp, cols, r, act);
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) return q4_row_avx2<Asym>(codes, sw, zp, cols, r, act);
#endif
  return q4_row_generic<Asym>(codes, sw, zp, cols, r, act);
}

}  // namespace detail

namespace detail {

/// Rows [k0, k1) of the W4A8 product into y[k0..k1): groups of q4_rows rows on AVX-512 / AVX2 (Prefetch:
/// streaming decode), then single rows. Each row's value is independent of the grouping.
template <class Arch, bool Vnni, bool Prefetch, class S = float>
inline void q4_rows_range(const std::uint8_t* codes, const S* scales, const std::uint8_t* zeros, std::size_t k0,
                          std::size_t k1, std::size_t cols, std::size_t group, const BlockQ8& act, float* y) noexcept {
  const std::size_t r = group / 32;
  const std::size_t ng = cols / group;
  const std::size_t cb = cols / 2;
  std::size_t k = k0;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>) {
    constexpr bool V = Vnni && has_vnni;
    for (; k + q4_rows <= k1; k += q4_rows) {
      if (zeros != nullptr) {
        q4_rows_avx512<true, V, q4_rows, Prefetch, S>(codes + k * cb, cb, scales + k * ng, zeros + k * ng, ng, cols, r,
                                                   act, y + k);
      } else {
        q4_rows_avx512<false, V, q4_rows, Prefetch, S>(codes + k * cb, cb, scales + k * ng, nullptr, ng, cols, r, act,
                                                    y + k);
      }
    }
  }
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {  // float or fp16 scales: same kernel
    // Streaming GEMV: 4-row passes with prefetch. Without prefetch (the prefill GEMM) single rows:
    // 4 interleaved row streams without software prefetch measured much slower with AVX2 on an
    // AMD EPYC (benchmarks/kernels). Every row's value is the same either way (docs/kernels.md).
    if constexpr (Prefetch) {
      for (; k + q4_rows <= k1; k += q4_rows) {
        if (zeros != nullptr) {
          q4_rows_avx2<true, q4_rows, true, S>(codes + k * cb, cb, scales + k * ng, zeros + k * ng, ng, cols, r, act,
                                               y + k);
        } else {
          q4_rows_avx2<false, q4_rows, true, S>(codes + k * cb, cb, scales + k * ng, nullptr, ng, cols, r, act, y + k);
        }
      }
    }
    for (; k < k1; ++k) {
      if (zeros != nullptr) {
        q4_rows_avx2<true, 1, false, S>(codes + k * cb, 0, scales + k * ng, zeros + k * ng, 0, cols, r, act, y + k);
      } else {
        q4_rows_avx2<false, 1, false, S>(codes + k * cb, 0, scales + k * ng, nullptr, 0, cols, r, act, y + k);
      }
    }
    return;
  }
#endif
  for (; k < k1; ++k) {
    if constexpr (std::is_same_v<S, float>) {
      y[k] = zeros != nullptr ? q4_row<Arch, true, Vnni>(codes + k * cb, scales + k * ng, zeros + k * ng, cols, r, act)
                              : q4_row<Arch, false, Vnni>(codes + k * cb, scales + k * ng, nullptr, cols, r, act);
    } else {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (is_avx512bw_v<Arch>) {
        if (zeros != nullptr) {
          q4_rows_avx512<true, Vnni && has_vnni, 1, false, S>(codes + k * cb, 0, scales + k * ng, zeros + k * ng, 0,
                                                              cols, r, act, y + k);
        } else {
          q4_rows_avx512<false, Vnni && has_vnni, 1, false, S>(codes + k * cb, 0, scales + k * ng, nullptr, 0, cols, r,
                                                               act, y + k);
        }
        continue;
      }
#endif
      y[k] = zeros != nullptr ? q4_row_generic<true, S>(codes + k * cb, scales + k * ng, zeros + k * ng, cols, r, act)
                              : q4_row_generic<false, S>(codes + k * cb, scales + k * ng, nullptr, cols, r, act);
    }
  }
}

}  // namespace detail

/// W4A8 GEMV: y[k] = Σ_b s[k][g(b)]·a[b]·Σ_{j in b}(u[k][j] − z[k][g(b)])·qx[j] (see the header).
/// codes rows × cols/2 bytes; scales (and zeros, or nullptr for symmetric) rows × cols/group;
/// group ∈ {32, 64, 128}, cols % group == 0; `act` built for the same cols.
template <class Arch = simd::dynamic, bool Vnni = detail::has_vnni>
void gemv_q4_a8(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t rows,
                std::size_t cols, std::size_t group, const BlockQ8& act, float* y, int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    detail::q4_rows_range<Arch, Vnni, true>(codes, scales, zeros, r0, r1, cols, group, act, y);
  });
}

/// Float-activation int4 GEMV: quantizes x per block of 32 into `work` (block_q8_workspace_bytes(cols)
/// bytes) and runs gemv_q4_a8. Error bound in the header comment.
template <class Arch = simd::dynamic>
void gemv_q4_f32(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t rows,
                 std::size_t cols, std::size_t group, const float* x, float* y, void* work, int threads = 1) noexcept {
  const BlockQ8 act = BlockQ8::carve(work, cols);
  quantize_block_q8(x, cols, act);
  gemv_q4_a8<Arch>(codes, scales, zeros, rows, cols, group, act, y, threads);
}

/// Scalar reference: y[k] = Σ_j W[k][j]·x[j] with W dequantized exactly (double accumulation).
inline void gemv_q4_reference(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros,
                              std::size_t rows, std::size_t cols, std::size_t group, const float* x, float* y) noexcept {
  const std::size_t ng = cols / group;
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t j = 0; j < cols; ++j) {
      const std::uint8_t byte = codes[k * (cols / 2) + j / 2];
      const int u = (j % 2 == 0) ? (byte & 0x0f) : (byte >> 4);
      const int z = zeros != nullptr ? zeros[k * ng + j / group] : 8;
      s += static_cast<double>(scales[k * ng + j / group]) * (u - z) * x[j];
    }
    y[k] = static_cast<float>(s);
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_q4_a8<simd::dynamic, detail::has_vnni>(
    const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t rows,
    std::size_t cols, std::size_t group, const BlockQ8& act, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_q4_a8, (gemv_q4_a8<xsimd::default_arch, detail::has_vnni>), codes, scales, zeros, rows, cols, group, act, y, threads);
}
template <>
inline void gemv_q4_f32<simd::dynamic>(
    const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t rows,
    std::size_t cols, std::size_t group, const float* x, float* y, void* work, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_q4_f32, (gemv_q4_f32<xsimd::default_arch>), codes, scales, zeros, rows, cols, group, x, y, work, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
