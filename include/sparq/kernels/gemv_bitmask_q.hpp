// Bitmask-sparse int8 GEMV (unstructured sparsity, int8 codes, one scale per row): W8A8 and W8A32.
//
// Layout (the mask and row offsets exactly as gemv_bitmask_f32's): per row ⌈cols/8⌉ mask bytes, bit
// c%8 of byte c/8 set when column c is kept (row stride ⌈cols/8⌉, bits past cols clear); the kept
// codes q ∈ [−127, 127] of all rows in column order in one int8 array, row k's at
// codes[row_offsets[k] .. row_offsets[k+1]) (row_offsets has rows + 1 entries); one float scale per
// row. W[k][c] = scale[k]·q for a kept column, 0 otherwise (docs/formats.md, "Bitmask sparse int8").
//  - gemv_bitmask_q8_a8:  y[k] = sx·scale[k]·Σ q·qx, the sum exact in int32 (cols ≤ 131072) and the
//    float expression that of gemv_q8_a8, so the result equals gemv_q8_a8 on the dense codes (0 at
//    the cleared bits) bit for bit, on every target.
//  - gemv_bitmask_q8_f32: y[k] = scale[k]·Σ float(q)·x with the products and sums of gemv_q8_f32
//    (detail::dot_s8_f32) in the same order on each target: also equal to it bit for bit.
// How: the kept codes are expanded into dense lanes (0 where the bit is clear), then meet the
// activations as in the dense kernels.
//  - AVX2 / AVX-512BW: one pshufb per 16 columns. Its control comes from 256-entry tables of byte
//    positions per mask byte (lane l: rank of bit l among the byte's set bits, 0x80 = zero the lane
//    when bit l is clear); the second byte's positions are offset by the popcount of the first, all
//    precomputed, so a control is two 16-byte table loads and one add. AVX2 expands 32 columns
//    per step (two 128-bit lanes, each fed 16 bytes from its own offset), AVX-512 64 (four lanes).
//    The W8A8 dot is then dot_s8's (maddubs(|q|, sign(qx, q)); VNNI: vpdpbusd with the weights made
//    unsigned, q + 128, and 128·Σqx subtracted once per call).
//  - AVX-512 W8A32: vpexpandd (AVX-512F) places the sign-extended codes under 16 mask bits.
//  - SSE2 / NEON / generic: scalar loops (the W8A32 one in dot_s8_f32's generic order).
// No read goes past any array: AVX2 loads 16 code bytes where that many remain in the codes array
// (checked once per row; near the end it copies exactly the codes of the step), AVX-512 uses masked
// byte loads of exactly the codes of each 16 columns; mask bytes past a row and activations past
// cols are never loaded.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "sparq/kernels/dispatch.hpp"
#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/gemv_q8.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

/// pshufb controls of 16 columns as the bytewise sum of two 16-byte table rows (one load each, one
/// vector add, no scalar arithmetic): lo[b0] = {pos(b0), popcount(b0) × 8} and hi[b1] = {0 × 8,
/// pos(b1)}, where pos(m) lane l is the rank of bit l among the set bits of m (the position of its
/// code in the packed bytes) or 0x80 (zero the lane) when bit l is clear. So lanes 0–7 read
/// pos(b0), lanes 8–15 pos(b1) + popcount(b0) (0x80 + 8 still zeroes; no byte overflows).
struct BitmaskShuffleLut {
  alignas(16) std::uint8_t lo[256][16];
  alignas(16) std::uint8_t hi[256][16];
  constexpr BitmaskShuffleLut() noexcept : lo{}, hi{} {
    for (unsigned m = 0; m < 256; ++m) {
      unsigned r = 0;
      for (unsigned lane = 0; lane < 8; ++lane) {
        const auto b = static_cast<std::uint8_t>(((m >> lane) & 1u) ? r++ : 0x80u);
        lo[m][lane] = b;
        hi[m][8 + lane] = b;
      }
      for (unsigned lane = 8; lane < 16; ++lane) lo[m][lane] = static_cast<std::uint8_t>(r);
    }
  }
};
inline constexpr BitmaskShuffleLut bitmask_shuffle_lut{};

/// Scalar: the next code of a row (advancing v) when bit c of the mask row is set, else 0.
[[nodiscard]] inline std::int8_t bitmask_next_code(const std::uint8_t* mrow, std::size_t c, const std::int8_t*& v) noexcept {
  return ((mrow[c / 8] >> (c % 8)) & 1u) ? *v++ : std::int8_t{0};
}

#if defined(__AVX2__)
/// The pshufb control of 16 columns with mask bits m (m < 65536), see BitmaskShuffleLut.
[[nodiscard]] inline __m128i bitmask_ctrl16(unsigned m) noexcept {
  return _mm_add_epi8(_mm_load_si128(reinterpret_cast<const __m128i*>(bitmask_shuffle_lut.lo[m & 0xffu])),
                      _mm_load_si128(reinterpret_cast<const __m128i*>(bitmask_shuffle_lut.hi[(m >> 8) & 0xffu])));
}

/// 32 int8 lanes: the next popcount(m) codes of v expanded under the set bits of m, 0 elsewhere.
/// Two plain 16-byte loads at v and v + popcount(m & 0xffff); `Checked`: `left` = codes remaining in
/// the array from v, and when the loads would pass its end exactly the codes of these 32 columns are
/// copied instead (unchecked: the caller knows 16 more codes follow the row).
template <bool Checked>
[[nodiscard]] inline __m256i bitmask_expand32_s8(std::uint32_t m, const std::int8_t* v,
                                                 [[maybe_unused]] std::ptrdiff_t left) noexcept {
  const unsigned m0 = m & 0xffffu, m1 = m >> 16;
  const int n0 = std::popcount(m0);
  __m128i d0, d1;
  if (!Checked || left >= n0 + 16) {
    d0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v));
    d1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v + n0));
  } else {
    alignas(16) std::int8_t buf[32] = {};
    const int n1 = std::popcount(m1);
    if (n0 > 0) std::memcpy(buf, v, static_cast<std::size_t>(n0));
    if (n1 > 0) std::memcpy(buf + 16, v + n0, static_cast<std::size_t>(n1));
    d0 = _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
    d1 = _mm_load_si128(reinterpret_cast<const __m128i*>(buf + 16));
  }
  return _mm256_shuffle_epi8(_mm256_set_m128i(d1, d0), _mm256_set_m128i(bitmask_ctrl16(m1), bitmask_ctrl16(m0)));
}

/// Mask bits of columns [c, c + 32) of a mask row (c % 8 == 0), bits at or past cols cleared;
/// reads only the mask bytes of those columns.
[[nodiscard]] inline std::uint32_t bitmask_bits32(const std::uint8_t* mrow, std::size_t c, std::size_t cols) noexcept {
  const std::size_t left = cols - c;
  std::uint32_t m = 0;
  std::memcpy(&m, mrow + c / 8, left >= 32 ? 4 : (left + 7) / 8);
  if (left < 32) m &= (1u << left) - 1u;
  return m;
}
#endif

#if defined(__AVX512BW__) && defined(__AVX512VL__)
/// 64 int8 lanes: the next popcount(m) codes of v expanded under the 64 bits of m (0 elsewhere),
/// each 16 columns fed by a masked load of exactly their codes (no read past them); advances v.
[[nodiscard]] inline __m512i bitmask_expand64_s8(std::uint64_t m, const std::int8_t*& v) noexcept {
  __m128i d[4];
  for (int i = 0; i < 4; ++i) {
    const int n = std::popcount(static_cast<unsigned>((m >> (16 * i)) & 0xffffu));
    d[i] = _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1u), v);
    v += n;
  }
  __m512i data = _mm512_castsi128_si512(d[0]);
  data = _mm512_inserti32x4(data, d[1], 1);
  data = _mm512_inserti32x4(data, d[2], 2);
  data = _mm512_inserti32x4(data, d[3], 3);
  auto ctrl16 = [&](int i) { return bitmask_ctrl16(static_cast<unsigned>((m >> (16 * i)) & 0xffffu)); };
  __m512i ctrl = _mm512_castsi128_si512(ctrl16(0));
  ctrl = _mm512_inserti32x4(ctrl, ctrl16(1), 1);
  ctrl = _mm512_inserti32x4(ctrl, ctrl16(2), 2);
  ctrl = _mm512_inserti32x4(ctrl, ctrl16(3), 3);
  return _mm512_shuffle_epi8(data, ctrl);
}

/// 16 floats: the next popcount(m) codes of v (m < 65536) sign-extended, expanded under the bits
/// of m (vpexpandd) and converted; advances v. A masked load of exactly those codes.
[[nodiscard]] inline __m512 bitmask_expand16_f32(unsigned m, const std::int8_t*& v) noexcept {
  const int n = std::popcount(m);
  const __m128i codes = _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1u), v);
  v += n;
  return _mm512_cvtepi32_ps(_mm512_maskz_expand_epi32(static_cast<__mmask16>(m), _mm512_cvtepi8_epi32(codes)));
}
#endif

/// Σ_c W[k][c]·qx[c] of one bitmask row (codes from v), exact int32.
template <class Arch, bool Vnni>
[[nodiscard]] inline std::int32_t bitmask_dot_s8(const std::uint8_t* mrow, const std::int8_t* v,
                                                 [[maybe_unused]] std::size_t row_codes,
                                                 [[maybe_unused]] const std::int8_t* vend, const std::int8_t* qx,
                                                 std::size_t cols, [[maybe_unused]] std::int32_t qsum) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i acc0 = zero, acc1 = zero;
    for (std::size_t c = 0; c < cols; c += 64) {
      const std::size_t left = cols - c;
      std::uint64_t m = 0;
      std::memcpy(&m, mrow + c / 8, left >= 64 ? 8 : (left + 7) / 8);
      const __mmask64 lm = left >= 64 ? ~__mmask64{0} : ((__mmask64{1} << left) - 1);
      m &= lm;
      const __m512i w = bitmask_expand64_s8(m, v);
      const __m512i x = _mm512_maskz_loadu_epi8(lm, qx + c);  // lanes past cols: 0
      if constexpr (Vnni && has_vnni) {
#if defined(__AVX512VNNI__)
        // weights unsigned (q + 128): Σ (q + 128)·qx, 128·Σqx (qsum) subtracted at the end
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(w, _mm512_set1_epi8(static_cast<char>(0x80))), x);
#endif
      } else {
        const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), zero, x);
        acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(w), sx), _mm512_set1_epi16(1)));
      }
    }
    if constexpr (Vnni && has_vnni) {  // the lane total may wrap past 2^31; the difference (the true sum) fits
      return static_cast<std::int32_t>(static_cast<std::uint32_t>(_mm512_reduce_add_epi32(acc0)) -
                                       128u * static_cast<std::uint32_t>(qsum));
    }
    return _mm512_reduce_add_epi32(acc1);
  }
#endif
#if defined(__AVX2__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    auto step = [&](__m256i w, __m256i x, __m256i& acc) {  // |q| <= 127: maddubs cannot saturate
      const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones16));
    };
    std::size_t c = 0;
    auto body = [&](auto checked) {
      for (; c + 64 <= cols; c += 64) {
        std::uint64_t m;
        std::memcpy(&m, mrow + c / 8, 8);
        const auto m0 = static_cast<std::uint32_t>(m), m1 = static_cast<std::uint32_t>(m >> 32);
        const __m256i w0 = bitmask_expand32_s8<decltype(checked)::value>(m0, v, vend - v);
        v += std::popcount(m0);
        const __m256i w1 = bitmask_expand32_s8<decltype(checked)::value>(m1, v, vend - v);
        v += std::popcount(m1);
        step(w0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + c)), acc0);
        step(w1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + c + 32)), acc1);
      }
    };
    if (vend - (v + row_codes) >= 16) body(std::false_type{});  // every 16-byte load stays in the array
    else body(std::true_type{});
    for (; c < cols; c += 32) {
      const std::size_t left = cols - c;
      const std::uint32_t m = bitmask_bits32(mrow, c, cols);
      const __m256i w = bitmask_expand32_s8<true>(m, v, vend - v);
      v += std::popcount(m);
      __m256i x;
      if (left >= 32) {
        x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx + c));
      } else {
        alignas(32) std::int8_t buf[32] = {};
        std::memcpy(buf, qx + c, left);
        x = _mm256_load_si256(reinterpret_cast<const __m256i*>(buf));
      }
      step(w, x, acc0);
    }
    const __m256i acc = _mm256_add_epi32(acc0, acc1);
    const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
  }
#endif
  std::int32_t s = 0;
  for (std::size_t c = 0; c < cols; ++c) s += static_cast<std::int32_t>(bitmask_next_code(mrow, c, v)) * qx[c];
  return s;
}

/// Σ_c float(W[k][c])·x[c] of one bitmask row, in dot_s8_f32's order on each arch (the expanded
/// codes are the dense row's, so the result is dot_s8_f32's on the dense codes bit for bit).
template <class Arch>
[[nodiscard]] inline float bitmask_dot_s8_f32(const std::uint8_t* mrow, const std::int8_t* v,
                                              [[maybe_unused]] std::size_t row_codes,
                                              [[maybe_unused]] const std::int8_t* vend, const float* x,
                                              std::size_t cols) noexcept {
  [[maybe_unused]] std::size_t c = 0;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; c + 64 <= cols; c += 64) {
      std::uint64_t m;
      std::memcpy(&m, mrow + c / 8, 8);
      s0 = _mm512_fmadd_ps(bitmask_expand16_f32(static_cast<unsigned>(m & 0xffffu), v), _mm512_loadu_ps(x + c), s0);
      s1 = _mm512_fmadd_ps(bitmask_expand16_f32(static_cast<unsigned>((m >> 16) & 0xffffu), v), _mm512_loadu_ps(x + c + 16), s1);
      s2 = _mm512_fmadd_ps(bitmask_expand16_f32(static_cast<unsigned>((m >> 32) & 0xffffu), v), _mm512_loadu_ps(x + c + 32), s2);
      s3 = _mm512_fmadd_ps(bitmask_expand16_f32(static_cast<unsigned>(m >> 48), v), _mm512_loadu_ps(x + c + 48), s3);
    }
    for (; c < cols; c += 16) {
      const std::size_t left = cols - c;
      const __mmask16 lm = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
      std::uint16_t m = 0;
      std::memcpy(&m, mrow + c / 8, left >= 16 ? 2 : (left + 7) / 8);
      s0 = _mm512_fmadd_ps(bitmask_expand16_f32(static_cast<unsigned>(m & lm), v), _mm512_maskz_loadu_ps(lm, x + c), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  }
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>) {
    auto wf = [](__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)); };  // low 8 bytes
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    const std::size_t n32 = cols / 32 * 32;
    auto body = [&](auto checked) {
      for (; c < n32; c += 32) {
        std::uint32_t m;
        std::memcpy(&m, mrow + c / 8, 4);
        const __m256i w = bitmask_expand32_s8<decltype(checked)::value>(m, v, vend - v);
        v += std::popcount(m);
        const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
        s0 = _mm256_fmadd_ps(wf(lo), _mm256_loadu_ps(x + c), s0);
        s1 = _mm256_fmadd_ps(wf(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + c + 8), s1);
        s2 = _mm256_fmadd_ps(wf(hi), _mm256_loadu_ps(x + c + 16), s2);
        s3 = _mm256_fmadd_ps(wf(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + c + 24), s3);
      }
    };
    if (vend - (v + row_codes) >= 16) body(std::false_type{});  // every 16-byte load stays in the array
    else body(std::true_type{});
    const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float r = _mm_cvtss_f32(h);
    for (; c < cols; ++c) r = std::fma(static_cast<float>(bitmask_next_code(mrow, c, v)), x[c], r);
    return r;
  }
#endif
  // SSE2 / generic: dot_s8_f32's four scalar partial sums over groups of 4, then the tail.
  float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const std::size_t n4 = cols / 4 * 4;
  for (std::size_t b = 0; b < n4; b += 4) {
    for (std::size_t i = 0; i < 4; ++i)
      s[i] = std::fma(static_cast<float>(bitmask_next_code(mrow, b + i, v)), x[b + i], s[i]);
  }
  float r = (s[0] + s[1]) + (s[2] + s[3]);
  for (std::size_t i = n4; i < cols; ++i) r = std::fma(static_cast<float>(bitmask_next_code(mrow, i, v)), x[i], r);
  return r;
}

}  // namespace detail

/// W8A8: y[k] = sx·scale[k]·Σ_{c kept} q·qx[c] (integer sum exact, cols ≤ 131072); the layout in the
/// header comment. Equal bit for bit to gemv_q8_a8 on the dense codes.
template <class Arch = simd::dynamic, bool Vnni = detail::has_vnni>
void gemv_bitmask_q8_a8(const std::uint8_t* mask, const std::int8_t* codes, const std::size_t* row_offsets,
                        const float* scale, std::size_t rows, std::size_t cols, const std::int8_t* qx, float sx, float* y,
                        int threads = 1) noexcept {
  const std::size_t mb = (cols + 7) / 8;
  const std::int8_t* const vend = codes + row_offsets[rows];
  std::int32_t qsum = 0;
#if defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
  if constexpr (detail::is_avx512bw_v<Arch> && Vnni) qsum = detail::sum_s8_avx512(qx, cols);
#endif
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) {
      const std::int32_t d =
          detail::bitmask_dot_s8<Arch, Vnni>(mask + k * mb, codes + row_offsets[k], row_offsets[k + 1] - row_offsets[k],
                                             vend, qx, cols, qsum);
      y[k] = sx * scale[k] * static_cast<float>(d);
    }
  });
}

/// W8A32: y[k] = scale[k]·Σ_{c kept} float(q)·x[c]. Equal bit for bit to gemv_q8_f32 on the dense codes.
template <class Arch = simd::dynamic>
void gemv_bitmask_q8_f32(const std::uint8_t* mask, const std::int8_t* codes, const std::size_t* row_offsets,
                         const float* scale, std::size_t rows, std::size_t cols, const float* x, float* y,
                         int threads = 1) noexcept {
  const std::size_t mb = (cols + 7) / 8;
  const std::int8_t* const vend = codes + row_offsets[rows];
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k)
      y[k] = scale[k] * detail::bitmask_dot_s8_f32<Arch>(mask + k * mb, codes + row_offsets[k],
                                                         row_offsets[k + 1] - row_offsets[k], vend, x, cols);
  });
}

/// Scalar reference of the W8A8 integer sums: acc[k] = Σ_{c kept} q·qx[c] (exact).
inline void gemv_bitmask_q8_a8_reference(const std::uint8_t* mask, const std::int8_t* codes,
                                         const std::size_t* row_offsets, std::size_t rows, std::size_t cols,
                                         const std::int8_t* qx, std::int32_t* acc) noexcept {
  const std::size_t mb = (cols + 7) / 8;
  for (std::size_t k = 0; k < rows; ++k) {
    const std::int8_t* v = codes + row_offsets[k];
    std::int32_t s = 0;
    for (std::size_t c = 0; c < cols; ++c)
      if ((mask[k * mb + c / 8] >> (c % 8)) & 1u) s += static_cast<std::int32_t>(*v++) * qx[c];
    acc[k] = s;
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_bitmask_q8_a8<simd::dynamic, detail::has_vnni>(
    const std::uint8_t* mask, const std::int8_t* codes, const std::size_t* row_offsets, const float* scale,
    std::size_t rows, std::size_t cols, const std::int8_t* qx, float sx, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_bitmask_q8_a8, (gemv_bitmask_q8_a8<xsimd::default_arch, detail::has_vnni>), mask, codes,
                      row_offsets, scale, rows, cols, qx, sx, y, threads);
}
template <>
inline void gemv_bitmask_q8_f32<simd::dynamic>(
    const std::uint8_t* mask, const std::int8_t* codes, const std::size_t* row_offsets, const float* scale,
    std::size_t rows, std::size_t cols, const float* x, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_bitmask_q8_f32, (gemv_bitmask_q8_f32<xsimd::default_arch>), mask, codes, row_offsets, scale,
                      rows, cols, x, y, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
