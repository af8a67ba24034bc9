// EXPERIMENTAL (docs/kernels.md, "Experimental kernels"): not used by the library and in no dispatch
// table; the N:M int4 op (NMLinear) runs the mask-tile kernels of kernels/gemv_nm_mask.hpp. Kept, tested
// and benchmarked as the measured alternative layout; call with an explicit Arch (default: the
// translation unit's own target).
//
// 2:4-sparse int4 GEMV with int8 activations (W4A8 on the N:M compressed layout of gemv_nm.hpp).
//
// Weights: the gemv_nm_q4 layout with N:M = 2:4 (unchanged, nothing is re-packed): per row
// nk = cols/2 kept values as int4 codes (nk/2 bytes, kept i in the low nibble of byte i/2 if i is
// even, else the high one), 2-bit in-group indices (nk/4 bytes, kept i at bits [2(i%4), 2(i%4)+2)
// of byte i/4), scales (and optional uint8 zeros) per group of G kept values, G ∈ {32, 64, 128},
// G | nk (so cols % 64 == 0). Kept value i of a row sits at input 4·⌊i/2⌋ + idx[i].
//
// Activations (NmQ8): x is quantized per block of 64 inputs, x[j] ≈ a[b]·qx[j], a[b] =
// max_{j in b}|x[j]|/127, qx = round-half-even(x/a[b]) ∈ [−127, 127] (a = 0, qx = 0 for an all-zero
// block). A block of 64 inputs holds exactly the 32 kept values of one "kept block", so an integer
// inner product per kept block is scaled once. The int8 values are stored de-interleaved by four:
// per 256 inputs, four 64-byte rows R_m (m = 0..3) with R_m[g] = qx[256·c + 4g + m]
// (nm_q8_position(j)). The buffer covers nm_q8_padded(cols) inputs (a multiple of 1024), padding 0.
//
// Method (AVX-512BW; no float per weight, no index expansion in memory): per 128 kept values (one
// 64-byte code load, 64 groups of 4 inputs, 256 inputs, 32 index bytes) the group nibbles
// (i0 | i1 << 2) are spread to one byte per group (vpmovzxbw + shift + or), four vptestmb give the
// index bits as k-masks, and three byte blends per operand select the activations
//   xe[g] = R_{i0(g)}[g]  (pairs with the low nibbles: kept 2g),  xo[g] = R_{i1(g)}[g]  (high nibbles).
// Then d = Σ u·qx by two vpdpbusd (nibbles unsigned; without VNNI maddubs, 2·15·127 < 32767),
// c = Σ qx over the kept positions by two more, and per kept block b (16 per 512 kept values,
// reduced by the in-lane transpose-add of gemv_q4)
//   y[k] += s[k][g(b)]·a[b]·(d[b] − z[k][g(b)]·c[b])       (z = 8 for symmetric codes).
// The streamed bytes per weight are the compact format's: 4 + 2 bits per kept value + scales.
// AVX2 (nm24_q4_row_avx2): the same integer sums, 32 groups per ymm, the activations selected with
// vpblendvb and the zero point folded in per 16-bit lane. Other archs use a portable loop with the
// same integer sums (float rounding differs).
//  - gemv_nm24_q4_a8:  activations already in an NmQ8 (quantize_nm_q8, or nm_q8_from_per_token for
//                      int8 per-token activations: W4A8).
//  - gemv_nm24_q4_f32: float x, quantized into the caller's workspace first; error versus the exact
//                      float product |Δy[k]| ≤ Σ_i |W[k][i]|·a[b(i)]/2 (plus float rounding).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/kernels/gemv_common.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// Inputs covered by an NmQ8 buffer for `cols` inputs (multiple of 1024).
[[nodiscard]] constexpr std::size_t nm_q8_padded(std::size_t cols) noexcept { return (cols + 1023) / 1024 * 1024; }

/// Bytes of workspace an NmQ8 over `cols` inputs needs (plus 64 for alignment).
[[nodiscard]] constexpr std::size_t nm_q8_workspace_bytes(std::size_t cols) noexcept {
  const std::size_t p = nm_q8_padded(cols);
  return p + (p / 64) * sizeof(float) + 64;
}

/// Position of input j in the de-interleaved NmQ8 buffer.
[[nodiscard]] constexpr std::size_t nm_q8_position(std::size_t j) noexcept {
  return j / 256 * 256 + 64 * (j % 4) + (j % 256) / 4;
}

/// int8 activations per block of 64 inputs over caller-owned memory (layout in the header comment).
struct NmQ8 {
  std::int8_t* q = nullptr;  ///< nm_q8_padded(cols) de-interleaved int8 values
  float* scale = nullptr;    ///< a[b], one per 64 inputs (padded/64)
  std::size_t cols = 0;

  /// Carves the arrays out of `work` (nm_q8_workspace_bytes(cols) bytes, any alignment).
  [[nodiscard]] static NmQ8 carve(void* work, std::size_t cols) noexcept {
    auto p = reinterpret_cast<std::uintptr_t>(work);
    p = (p + 63) & ~std::uintptr_t{63};
    NmQ8 v;
    v.q = reinterpret_cast<std::int8_t*>(p);
    v.scale = reinterpret_cast<float*>(p + nm_q8_padded(cols));
    v.cols = cols;
    return v;
  }
};

/// Quantizes x[0..cols) per block of 64 inputs into `out` (cols a multiple of 64; padding zeroed).
inline void quantize_nm_q8(const float* x, std::size_t cols, const NmQ8& out) noexcept {
  const std::size_t padded = nm_q8_padded(cols);
  const std::size_t nb = cols / 64;
  for (std::size_t b = 0; b < nb; ++b) {
    float amax = 0.0f;
    for (std::size_t j = 0; j < 64; ++j) amax = std::max(amax, std::fabs(x[b * 64 + j]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (std::size_t j = 0; j < 64; ++j) {
      const float v = std::nearbyint(x[b * 64 + j] * inv);
      out.q[nm_q8_position(b * 64 + j)] = static_cast<std::int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
    out.scale[b] = amax / 127.0f;
  }
  for (std::size_t j = nb * 64; j < padded; ++j) out.q[nm_q8_position(j)] = 0;
  for (std::size_t b = nb; b < padded / 64; ++b) out.scale[b] = 0.0f;
}

/// Fills `out` from int8 per-token activations x ≈ sx·qx (cols a multiple of 64): same scale per block.
inline void nm_q8_from_per_token(const std::int8_t* qx, float sx, std::size_t cols, const NmQ8& out) noexcept {
  const std::size_t padded = nm_q8_padded(cols);
  for (std::size_t j = 0; j < cols; ++j) out.q[nm_q8_position(j)] = qx[j];
  for (std::size_t j = cols; j < padded; ++j) out.q[nm_q8_position(j)] = 0;
  for (std::size_t b = 0; b < padded / 64; ++b) out.scale[b] = b < cols / 64 ? sx : 0.0f;
}

namespace detail {

#if defined(__AVX512BW__) && defined(__AVX512VL__)
/// One row of the 2:4 W4A8 product, AVX-512. r = G/32 kept blocks per group. Tiled: `codes` is the
/// row's tiles (nm24_q4_tiles layout, `idx` unused), else the compact codes + indices.
template <bool Asym, bool Vnni, bool Tiled = false>
[[nodiscard]] inline float nm24_q4_row_avx512(const std::uint8_t* codes, const std::uint8_t* idx, const float* sw,
                                              const std::uint8_t* zp, std::size_t nk, std::size_t r,
                                              const NmQ8& act) noexcept {
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i ones8 = _mm512_set1_epi8(1);
  const __m512i ones16 = _mm512_set1_epi16(1);
  const __m512i b1 = _mm512_set1_epi8(1), b2 = _mm512_set1_epi8(2), b4 = _mm512_set1_epi8(4), b8 = _mm512_set1_epi8(8);
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i expand = r == 1   ? _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                         : r == 2 ? _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)
                                  : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const auto gmask = static_cast<__mmask16>((1u << (16 / r)) - 1);
  auto transpose_add = [&](const __m512i* a) {
    const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[0], a[1]), _mm512_unpackhi_epi32(a[0], a[1]));
    const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2], a[3]), _mm512_unpackhi_epi32(a[2], a[3]));
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
    return _mm512_permutexvar_epi32(perm, u);  // natural block order
  };
  __m512 accf = _mm512_setzero_ps();

  // 512 kept values = 1024 inputs = 16 kept blocks: cb 256 code bytes, ib 128 index bytes.
  auto block = [&](const std::uint8_t* cb, const std::uint8_t* ib, const float* swb, const std::uint8_t* zb,
                   std::size_t base) {
    __m512i d[4], c[4];
    for (int k = 0; k < 4; ++k) {
      const std::int8_t* xr = act.q + base + 256 * k;
      const __m512i r0 = _mm512_load_si512(xr), r1 = _mm512_load_si512(xr + 64);
      const __m512i r2 = _mm512_load_si512(xr + 128), r3 = _mm512_load_si512(xr + 192);
      __mmask64 e0, e1, o0, o1;
      __m512i w;
      if constexpr (Tiled) {  // tile k: 64 code bytes, then the four index bit planes
        const std::uint8_t* t = cb + 96 * k;
        w = _mm512_loadu_si512(t);
        std::uint64_t pl[4];
        std::memcpy(pl, t + 64, 32);
        e0 = _cvtu64_mask64(pl[0]);
        e1 = _cvtu64_mask64(pl[1]);
        o0 = _cvtu64_mask64(pl[2]);
        o1 = _cvtu64_mask64(pl[3]);
      } else {
        __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ib + 32 * k)));
        v = _mm512_or_si512(v, _mm512_slli_epi16(v, 4));  // byte g, bits 0-3: group g's (i0 | i1 << 2)
        e0 = _mm512_test_epi8_mask(v, b1);
        e1 = _mm512_test_epi8_mask(v, b2);
        o0 = _mm512_test_epi8_mask(v, b4);
        o1 = _mm512_test_epi8_mask(v, b8);
        w = _mm512_loadu_si512(cb + 64 * k);
      }
      const __m512i xe = _mm512_mask_blend_epi8(e1, _mm512_mask_blend_epi8(e0, r0, r1), _mm512_mask_blend_epi8(e0, r2, r3));
      const __m512i xo = _mm512_mask_blend_epi8(o1, _mm512_mask_blend_epi8(o0, r0, r1), _mm512_mask_blend_epi8(o0, r2, r3));
      const __m512i lo = _mm512_and_si512(w, nib);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nib);
      if constexpr (Vnni) {
#if defined(__AVX512VNNI__)
        d[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xe), hi, xo);
        c[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones8, xe), ones8, xo);
#endif
      } else {
        d[k] = _mm512_madd_epi16(_mm512_add_epi16(_mm512_maddubs_epi16(lo, xe), _mm512_maddubs_epi16(hi, xo)), ones16);
        c[k] = _mm512_madd_epi16(_mm512_add_epi16(_mm512_maddubs_epi16(ones8, xe), _mm512_maddubs_epi16(ones8, xo)),
                                 ones16);
      }
    }
    __m512i dd = transpose_add(d);
    const __m512i cc = transpose_add(c);
    if constexpr (Asym) {
      const __m512i z =
          r == 1 ? _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zb)))
                 : _mm512_permutexvar_epi32(expand, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(gmask, zb)));
      dd = _mm512_sub_epi32(dd, _mm512_mullo_epi32(z, cc));
    } else {
      dd = _mm512_sub_epi32(dd, _mm512_slli_epi32(cc, 3));
    }
    const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(dd), _mm512_loadu_ps(act.scale + base / 64));
    const __m512 s = r == 1 ? _mm512_loadu_ps(swb) : _mm512_permutexvar_ps(expand, _mm512_maskz_loadu_ps(gmask, swb));
    accf = _mm512_fmadd_ps(f, s, accf);
  };

  const std::size_t nfull = nk / 512;
  const std::size_t gpb = 16 / r;  // groups per 512 kept values
  constexpr std::size_t cstep = Tiled ? 384 : 256;  // code (tile) bytes per 512 kept values
  for (std::size_t b = 0; b < nfull; ++b) {
    block(codes + b * cstep, Tiled ? nullptr : idx + b * 128, sw + b * gpb, Asym ? zp + b * gpb : nullptr, b * 1024);
  }
  const std::size_t rem = nk - nfull * 512;  // multiple of 32 kept values
  if (rem != 0) {
    alignas(64) std::uint8_t cbuf[384] = {};
    std::uint8_t ibuf[128] = {};
    float sbuf[16] = {};
    std::uint8_t zbuf[16] = {};
    const std::size_t ng = rem / (32 * r);
    if constexpr (Tiled) {
      std::memcpy(cbuf, codes + nfull * cstep, (rem + 127) / 128 * 96);  // tiles are zero-padded
    } else {
      std::memcpy(cbuf, codes + nfull * 256, rem / 2);
      std::memcpy(ibuf, idx + nfull * 128, rem / 4);
    }
    std::memcpy(sbuf, sw + nfull * gpb, ng * sizeof(float));
    if constexpr (Asym) std::memcpy(zbuf, zp + nfull * gpb, ng);
    block(cbuf, ibuf, sbuf, zbuf, nfull * 1024);
  }
  return _mm512_reduce_add_ps(accf);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/// One row of the 2:4 W4A8 product, AVX2 (same block sums as nm24_q4_row_avx512, 32 groups of 4
/// inputs per ymm). Per 32 groups (64 kept values, 128 inputs): the activation rows R_0..R_3 of
/// those groups are 32-byte loads; each group's index nibble (i0 | i1 << 2) is spread to one byte per
/// group (vpmovzxbw, shift, or) and four 16-bit shifts move bit b of that nibble to bit 7, where
/// vpblendvb reads it; as the layout keeps i0 < i1 (positions strictly increase, NMLinear checks
/// it), i0 ∈ {0, 1, 2} and i1 ∈ {1, 2, 3}, so two blends per operand select xe[g] = R_{i0(g)}[g],
/// xo[g] = R_{i1(g)}[g] (tiled: the index bit planes become byte masks with a byte broadcast and a
/// compare). Then, per
/// 16-bit lane, Σ (u − z)·qx = maddubs(lo, xe) + maddubs(hi, xo) − maddubs(z, xe) − maddubs(z, xo)
/// (|each| ≤ 2·15·127, the difference ≤ 4·15·127 < 32767: no saturation) and one vpmaddwd; each
/// 128-bit lane holds one kept block (16 groups), reduced with the transpose-add of gemv_q4's AVX2
/// kernel. The integers equal the AVX-512 kernel's d − z·c; only the float summation order differs.
template <bool Asym, bool Tiled = false>
[[nodiscard]] inline float nm24_q4_row_avx2(const std::uint8_t* codes, const std::uint8_t* idx, const float* sw,
                                            const std::uint8_t* zp, std::size_t nk, std::size_t r,
                                            const NmQ8& act) noexcept {
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i expand = r == 1   ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                         : r == 2 ? _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)
                                  : _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const std::size_t gph = 8 / r;  // scale groups per 8 kept blocks
  const __m256i gmask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(gph)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  // tiled: byte g of a 32-bit plane word broadcast to bytes 8g..8g+7, then bit (g % 8) tested
  const __m256i rep = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
                                       3, 3, 3, 3);
  const __m256i bitsel = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  auto plane = [&](const std::uint8_t* p) {
    std::uint32_t m;
    std::memcpy(&m, p, 4);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(m)), rep);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, bitsel), bitsel);
  };
  __m256 accf = _mm256_setzero_ps();

  // 512 kept values = 1024 inputs = 16 kept blocks, as 2 halves of 4 × 32 groups.
  auto block = [&](const std::uint8_t* cb, const std::uint8_t* ib, const float* swb, const std::uint8_t* zb,
                   std::size_t base) {
    for (int half = 0; half < 2; ++half) {
      __m256i a[4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int s = 4 * half + j;  // groups [32s, 32s + 32) of the chunk: kept blocks 2s, 2s + 1
        const int k = s / 2, h = s % 2;
        const std::int8_t* xr = act.q + base + 256 * k + 32 * h;
        const __m256i r0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(xr));
        const __m256i r1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(xr + 64));
        const __m256i r2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(xr + 128));
        const __m256i r3 = _mm256_load_si256(reinterpret_cast<const __m256i*>(xr + 192));
        __m256i e0, e1, o0, o1, w;
        if constexpr (Tiled) {  // tile k: 64 code bytes, then the four index bit planes
          const std::uint8_t* t = cb + 96 * k;
          w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 32 * h));
          e0 = plane(t + 64 + 4 * h);
          e1 = plane(t + 72 + 4 * h);
          o0 = plane(t + 80 + 4 * h);
          o1 = plane(t + 88 + 4 * h);
        } else {
          __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ib + 16 * s)));
          v = _mm256_or_si256(v, _mm256_slli_epi16(v, 4));  // byte g, bits 0-3: group g's (i0 | i1 << 2)
          e0 = _mm256_slli_epi16(v, 7);
          e1 = _mm256_slli_epi16(v, 6);
          o0 = _mm256_slli_epi16(v, 5);
          o1 = _mm256_slli_epi16(v, 4);
          w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb + 32 * s));
        }
        // i0 < i1 (the layout's increasing positions): i0 ∈ {0, 1, 2}, i1 ∈ {1, 2, 3}, two blends each
        const __m256i xe = _mm256_blendv_epi8(_mm256_blendv_epi8(r0, r1, e0), r2, e1);
        const __m256i xo = _mm256_blendv_epi8(r1, _mm256_blendv_epi8(r2, r3, o0), o1);
        const __m256i lo = _mm256_and_si256(w, nib);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib);
        __m256i z;
        if constexpr (Asym) {  // lane L: kept block 2s + L, group (2s + L) / r
          z = _mm256_set_m128i(_mm_set1_epi8(static_cast<char>(zb[(2 * s + 1) / static_cast<int>(r)])),
                               _mm_set1_epi8(static_cast<char>(zb[(2 * s) / static_cast<int>(r)])));
        } else {
          z = _mm256_set1_epi8(8);
        }
        const __m256i t = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xe), _mm256_maddubs_epi16(hi, xo));
        const __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(z, xe), _mm256_maddubs_epi16(z, xo));
        a[j] = _mm256_madd_epi16(_mm256_sub_epi16(t, c), ones16);
      }
      const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(a[0], a[1]), _mm256_unpackhi_epi32(a[0], a[1]));
      const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(a[2], a[3]), _mm256_unpackhi_epi32(a[2], a[3]));
      const __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
      const __m256i d = _mm256_permutevar8x32_epi32(u, perm);  // kept blocks 8·half .. 8·half + 7
      const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_loadu_ps(act.scale + base / 64 + 8 * half));
      const float* sh = swb + gph * static_cast<std::size_t>(half);
      const __m256 sc = r == 1 ? _mm256_loadu_ps(sh) : _mm256_permutevar8x32_ps(_mm256_maskload_ps(sh, gmask), expand);
      accf = _mm256_fmadd_ps(f, sc, accf);
    }
  };

  const std::size_t nfull = nk / 512;
  const std::size_t gpb = 16 / r;  // groups per 512 kept values
  constexpr std::size_t cstep = Tiled ? 384 : 256;  // code (tile) bytes per 512 kept values
  for (std::size_t b = 0; b < nfull; ++b) {
    block(codes + b * cstep, Tiled ? nullptr : idx + b * 128, sw + b * gpb, Asym ? zp + b * gpb : nullptr, b * 1024);
  }
  const std::size_t rem = nk - nfull * 512;  // multiple of 32 kept values
  if (rem != 0) {  // zero-padded copies: no read past a row
    alignas(32) std::uint8_t cbuf[384] = {};
    std::uint8_t ibuf[128] = {};
    float sbuf[16] = {};
    std::uint8_t zbuf[16] = {};
    const std::size_t ng = rem / (32 * r);
    if constexpr (Tiled) {
      std::memcpy(cbuf, codes + nfull * cstep, (rem + 127) / 128 * 96);
    } else {
      std::memcpy(cbuf, codes + nfull * 256, rem / 2);
      std::memcpy(ibuf, idx + nfull * 128, rem / 4);
    }
    std::memcpy(sbuf, sw + nfull * gpb, ng * sizeof(float));
    if constexpr (Asym) std::memcpy(zbuf, zp + nfull * gpb, ng);
    block(cbuf, ibuf, sbuf, zbuf, nfull * 1024);
  }
  __m128 hs = _mm_add_ps(_mm256_castps256_ps128(accf), _mm256_extractf128_ps(accf, 1));
  hs = _mm_add_ps(hs, _mm_movehl_ps(hs, hs));
  hs = _mm_add_ss(hs, _mm_movehdup_ps(hs));
  return _mm_cvtss_f32(hs);
}
#endif

/// One row, portable: the same integer sums per kept block of 32, accumulated in float.
template <bool Asym>
[[nodiscard]] inline float nm24_q4_row_generic(const std::uint8_t* codes, const std::uint8_t* idx, const float* sw,
                                               const std::uint8_t* zp, std::size_t nk, std::size_t r,
                                               const NmQ8& act) noexcept {
  float acc = 0.0f;
  for (std::size_t b = 0; b < nk / 32; ++b) {
    std::int32_t d = 0, c = 0;
    for (std::size_t i = b * 32; i < b * 32 + 32; ++i) {
      const int u = (i % 2 == 0) ? (codes[i / 2] & 15) : (codes[i / 2] >> 4);
      const std::size_t j = 4 * (i / 2) + ((idx[i / 4] >> (2 * (i % 4))) & 3u);
      const std::int32_t q = act.q[nm_q8_position(j)];
      d += u * q;
      c += q;
    }
    const std::size_t g = b / r;
    const std::int32_t z = Asym ? zp[g] : 8;
    acc += sw[g] * (static_cast<float>(d - z * c) * act.scale[b]);
  }
  return acc;
}

/// One tiled row, portable: same integer sums per kept block as nm24_q4_row_generic.
template <bool Asym>
[[nodiscard]] inline float nm24_q4_row_tiled_generic(const std::uint8_t* tiles, const float* sw, const std::uint8_t* zp,
                                                     std::size_t nk, std::size_t r, const NmQ8& act) noexcept {
  float acc = 0.0f;
  for (std::size_t b = 0; b < nk / 32; ++b) {
    std::int32_t d = 0, c = 0;
    for (std::size_t g = b * 16; g < b * 16 + 16; ++g) {  // group g: kept 2g and 2g + 1
      const std::uint8_t* t = tiles + g / 64 * 96;
      const std::size_t j = g % 64;
      auto bit = [&](unsigned p) { return (t[64 + 8 * p + j / 8] >> (j % 8)) & 1u; };
      const std::int32_t q0 = act.q[nm_q8_position(4 * g + (bit(0) | bit(1) << 1))];
      const std::int32_t q1 = act.q[nm_q8_position(4 * g + (bit(2) | bit(3) << 1))];
      d += (t[j] & 15) * q0 + (t[j] >> 4) * q1;
      c += q0 + q1;
    }
    const std::size_t gg = b / r;
    const std::int32_t z = Asym ? zp[gg] : 8;
    acc += sw[gg] * (static_cast<float>(d - z * c) * act.scale[b]);
  }
  return acc;
}

}  // namespace detail

/// 2:4 W4A8 GEMV: y[k] = Σ_b s[k][g(b)]·a[b]·Σ_{kept i in b}(u[k][i] − z[k][g(b)])·qx[j(k, i)]
/// (see the header). codes rows × cols/4 bytes, idx rows × cols/8 bytes, scales (zeros, or nullptr
/// for symmetric) rows × (cols/2)/group; group ∈ {32, 64, 128}, (cols/2) % group == 0; `act` built
/// for the same cols.
template <class Arch = xsimd::default_arch, bool Vnni = detail::has_vnni>
void gemv_nm24_q4_a8(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t group,
                     const std::uint8_t* idx, std::size_t rows, std::size_t cols, const NmQ8& act, float* y,
                     int threads = 1) noexcept {
  const std::size_t nk = cols / 2, r = group / 32, ng = nk / group;
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) {
      const std::uint8_t* c = codes + k * (nk / 2);
      const std::uint8_t* ip = idx + k * (nk / 4);
      const float* sw = scales + k * ng;
      const std::uint8_t* zr = zeros != nullptr ? zeros + k * ng : nullptr;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (detail::is_avx512bw_v<Arch>) {
        constexpr bool V = Vnni && detail::has_vnni;
        y[k] = zr != nullptr ? detail::nm24_q4_row_avx512<true, V>(c, ip, sw, zr, nk, r, act)
                             : detail::nm24_q4_row_avx512<false, V>(c, ip, sw, nullptr, nk, r, act);
        continue;
      }
#endif
#if defined(__AVX2__) && defined(__FMA__)
      if constexpr (detail::is_avx2_v<Arch> && !detail::is_avx512bw_v<Arch>) {
        y[k] = zr != nullptr ? detail::nm24_q4_row_avx2<true>(c, ip, sw, zr, nk, r, act)
                             : detail::nm24_q4_row_avx2<false>(c, ip, sw, nullptr, nk, r, act);
        continue;
      }
#endif
      y[k] = zr != nullptr ? detail::nm24_q4_row_generic<true>(c, ip, sw, zr, nk, r, act)
                           : detail::nm24_q4_row_generic<false>(c, ip, sw, nullptr, nk, r, act);
    }
  });
}

/// Float-activation 2:4 int4 GEMV: quantizes x per block of 64 into `work` (nm_q8_workspace_bytes(cols)
/// bytes) and runs gemv_nm24_q4_a8. Error bound in the header comment.
template <class Arch = xsimd::default_arch>
void gemv_nm24_q4_f32(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t group,
                      const std::uint8_t* idx, std::size_t rows, std::size_t cols, const float* x, float* y, void* work,
                      int threads = 1) noexcept {
  const NmQ8 act = NmQ8::carve(work, cols);
  quantize_nm_q8(x, cols, act);
  gemv_nm24_q4_a8<Arch>(codes, scales, zeros, group, idx, rows, cols, act, y, threads);
}

/// Bytes of one row in the tiled 2:4 int4 layout: ⌈nk/128⌉ tiles of 96 bytes (nk = cols/2). This is
/// the compact format's 6 bits per kept value (4 code + 2 index bits), rearranged, plus zero padding
/// of the last tile.
[[nodiscard]] constexpr std::size_t nm24_q4_tile_row_bytes(std::size_t cols) noexcept { return (cols / 2 + 127) / 128 * 96; }

/// Re-packs compact 2:4 int4 weights (gemv_nm_q4 layout: codes rows × nk/2, idx rows × nk/4) into the
/// tiled layout, `out` rows × nm24_q4_tile_row_bytes(cols). Tile t of a row covers kept values
/// [128t, 128t + 128) = groups g = 64t + j, j < 64 (inputs [256t, 256t + 256)):
///   bytes [0, 64):   the 64 code bytes of the compact layout (kept 2g low nibble, 2g+1 high nibble)
///   bytes [64, 96):  four little-endian uint64 bit planes, bit j of plane p:
///                    p = 0: bit 0 of i0(g), p = 1: bit 1 of i0(g), p = 2: bit 0 of i1(g), p = 3: bit 1 of i1(g)
///                    (i0, i1 the in-group positions of the group's first and second kept value)
/// Past nk the tile is zero. Scales and zeros stay separate, as in gemv_nm_q4.
inline void pack_nm24_q4_tiles(const std::uint8_t* codes, const std::uint8_t* idx, std::size_t rows, std::size_t cols,
                               std::uint8_t* out) noexcept {
  const std::size_t nk = cols / 2, tb = nm24_q4_tile_row_bytes(cols);
  for (std::size_t k = 0; k < rows; ++k) {
    std::uint8_t* o = out + k * tb;
    std::memset(o, 0, tb);
    const std::uint8_t* c = codes + k * (nk / 2);
    const std::uint8_t* ip = idx + k * ((nk + 3) / 4);
    for (std::size_t g = 0; g < nk / 2; ++g) {  // group g: kept 2g, 2g+1 = code byte g
      std::uint8_t* t = o + g / 64 * 96;
      t[g % 64] = c[g];
      const unsigned i0 = (ip[g / 2] >> (4 * (g % 2))) & 3u, i1 = (ip[g / 2] >> (4 * (g % 2) + 2)) & 3u;
      const unsigned bits[4] = {i0 & 1u, i0 >> 1, i1 & 1u, i1 >> 1};
      for (unsigned p = 0; p < 4; ++p) {
        t[64 + 8 * p + (g % 64) / 8] = static_cast<std::uint8_t>(t[64 + 8 * p + (g % 64) / 8] | bits[p] << (g % 8));
      }
    }
  }
}

/// gemv_nm24_q4_a8 on tiled weights (pack_nm24_q4_tiles): same math, same result bit for bit on the
/// same arch; the index bit planes are loaded straight into mask registers (no index decoding).
/// tiles rows × nm24_q4_tile_row_bytes(cols); scales/zeros as in gemv_nm24_q4_a8.
template <class Arch = xsimd::default_arch, bool Vnni = detail::has_vnni>
void gemv_nm24_q4_tiled_a8(const std::uint8_t* tiles, const float* scales, const std::uint8_t* zeros,
                           std::size_t group, std::size_t rows, std::size_t cols, const NmQ8& act, float* y,
                           int threads = 1) noexcept {
  const std::size_t nk = cols / 2, r = group / 32, ng = nk / group, tb = nm24_q4_tile_row_bytes(cols);
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) {
      const std::uint8_t* t = tiles + k * tb;
      const float* sw = scales + k * ng;
      const std::uint8_t* zr = zeros != nullptr ? zeros + k * ng : nullptr;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (detail::is_avx512bw_v<Arch>) {
        constexpr bool V = Vnni && detail::has_vnni;
        y[k] = zr != nullptr ? detail::nm24_q4_row_avx512<true, V, true>(t, nullptr, sw, zr, nk, r, act)
                             : detail::nm24_q4_row_avx512<false, V, true>(t, nullptr, sw, nullptr, nk, r, act);
        continue;
      }
#endif
#if defined(__AVX2__) && defined(__FMA__)
      if constexpr (detail::is_avx2_v<Arch> && !detail::is_avx512bw_v<Arch>) {
        y[k] = zr != nullptr ? detail::nm24_q4_row_avx2<true, true>(t, nullptr, sw, zr, nk, r, act)
                             : detail::nm24_q4_row_avx2<false, true>(t, nullptr, sw, nullptr, nk, r, act);
        continue;
      }
#endif
      y[k] = zr != nullptr ? detail::nm24_q4_row_tiled_generic<true>(t, sw, zr, nk, r, act)
                           : detail::nm24_q4_row_tiled_generic<false>(t, sw, nullptr, nk, r, act);
    }
  });
}

/// Float-activation form of gemv_nm24_q4_tiled_a8 (workspace nm_q8_workspace_bytes(cols)).
template <class Arch = xsimd::default_arch>
void gemv_nm24_q4_tiled_f32(const std::uint8_t* tiles, const float* scales, const std::uint8_t* zeros,
                            std::size_t group, std::size_t rows, std::size_t cols, const float* x, float* y,
                            void* work, int threads = 1) noexcept {
  const NmQ8 act = NmQ8::carve(work, cols);
  quantize_nm_q8(x, cols, act);
  gemv_nm24_q4_tiled_a8<Arch>(tiles, scales, zeros, group, rows, cols, act, y, threads);
}

/// Scalar reference of gemv_nm24_q4_a8 (double accumulation over the same int8 activations).
inline void gemv_nm24_q4_a8_reference(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros,
                                      std::size_t group, const std::uint8_t* idx, std::size_t rows, std::size_t cols,
                                      const NmQ8& act, float* y) noexcept {
  const std::size_t nk = cols / 2, ng = nk / group;
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t i = 0; i < nk; ++i) {
      const std::uint8_t cb = codes[k * (nk / 2) + i / 2];
      const int u = (i % 2 == 0) ? (cb & 15) : (cb >> 4);
      const int z = zeros != nullptr ? zeros[k * ng + i / group] : 8;
      const std::size_t j = 4 * (i / 2) + ((idx[k * (nk / 4) + i / 4] >> (2 * (i % 4))) & 3u);
      s += static_cast<double>(scales[k * ng + i / group]) * (u - z) * act.scale[j / 64] *
           act.q[nm_q8_position(j)];
    }
    y[k] = static_cast<float>(s);
  }
}

SPARQ_TARGET_END

}  // namespace sparq::kernels
