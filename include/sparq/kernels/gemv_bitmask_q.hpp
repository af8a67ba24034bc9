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
//
// Bitmask-sparse int4 GEMV (unstructured sparsity, int4 codes, per-group scales): W4A8 and W4A32.
//
// Layout (docs/formats.md, "Bitmask sparse int4"): cols a multiple of the group G ∈ {32, 64, 128};
// per row cols/8 mask bytes, bit c%8 of byte c/8 set when column c is kept; the kept codes
// u ∈ [0, 15] of a row packed as nibbles in column order (kept code i of the row in the LOW nibble
// of byte i/2 when i is even, the HIGH nibble when odd), each row starting at a byte boundary: row k
// has ⌈n_k/2⌉ bytes (n_k = popcount of its mask row; odd n_k: the last high nibble is padding, 0)
// at codes[row_offsets[k] .. row_offsets[k+1]), byte offsets, rows + 1 entries. Per row and group a
// float scale s[k][g] and, asymmetric, a uint8 zero z[k][g] (zeros == nullptr: symmetric, z = 8),
// both rows × cols/G as in gemv_q4.hpp. W[k][c] = s·(u − z) for a kept column, 0 otherwise: the
// weights of the dense int4 matrix (gemv_q4.hpp) whose codes are u = z at the cleared bits.
//  - gemv_bitmask_q4_a8:  BlockQ8 activations, the arithmetic of gemv_q4_a8 on those dense codes
//  - gemv_bitmask_q4_f32: quantize_block_q8 of x into the caller's workspace, then the A8 kernel
//    (as gemv_q4_f32 does)
// Both equal the dense kernels on the dense codes bit for bit, on every target: each row is
// expanded, one block of the dense kernel at a time (256 inputs on AVX2, 512 on AVX-512, 32 on the
// scalar path), into the dense packed nibbles of that block in a stack buffer, which then meets the
// activations through a copy of the dense kernel's block (same integer sums, same float expression,
// same per-lane accumulation and final reduction; the dense kernel's partial last block, zero-padded
// codes / scales / zeros, likewise). The expansion (AVX2, also used by the AVX-512 path):
//  - the block's kept nibbles are unpacked to bytes in a stack buffer (16 code bytes → 32 bytes per
//    step: zero-extend to 16 bits, low nibble to the low byte, high nibble to the high byte);
//  - per 32 columns one 256-bit pshufb with the int8 kernels' controls (BitmaskShuffleLut) places
//    them under the set bits; the codes are XORed with the group's zero code z before and after the
//    shuffle, so a cleared lane (shuffle result 0) becomes z and a kept lane its own code;
//  - maddubs with (1, 16) byte pairs and packus turn two such 32-byte vectors back into 32 dense
//    code bytes (u[2i] + 16·u[2i+1]).
// (Gathering the nibbles straight from the code bytes, a window per 16 columns with a pshufb of its
// low and of its high nibbles blended per lane, measured about 1.4x slower on an AMD EPYC: more
// scalar work per control than the unpack pass saves.)
// SSE2 / NEON / generic: the same per block of 32 in scalar code (q4_row_generic's arithmetic).
// No read past any array: the code bytes of a block are loaded 16 at a time only where the codes
// array holds that many from the load's start (otherwise exactly the block's bytes are copied into
// a zeroed buffer first); the mask is read 4 bytes per 32 columns of the row, nothing past it.
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

// ---- bitmask int4 (layout and method in the header comment) ----

namespace detail {

#if defined(__AVX2__)
/// Unpacks the nibble codes [p, p + n) of a row (its bytes from rb; vend = end of the codes array)
/// to one byte each at out[p % 2 .. p % 2 + n) (n ≤ 512; out holds 576 bytes, the others are left
/// unspecified). Reads only bytes of the codes array (16 at a time where that many remain, else
/// exactly the needed ones through a zeroed copy).
inline void bitmask_q4_unpack(const std::uint8_t* rb, const std::uint8_t* vend, std::size_t p, std::size_t n,
                              std::uint8_t* out) noexcept {
  if (n == 0) return;
  const std::uint8_t* src = rb + p / 2;
  const std::size_t nb = ((p & 1u) + n + 1) / 2;  // bytes holding nibbles p .. p + n − 1
  const std::size_t nl = (nb + 15) / 16 * 16;     // bytes the 16-byte loads cover
  alignas(16) std::uint8_t tmp[272];
  if (static_cast<std::size_t>(vend - src) < nl) {
    std::memset(tmp, 0, nl);
    std::memcpy(tmp, src, nb);
    src = tmp;
  }
  const __m256i lo = _mm256_set1_epi16(0x000f), hi = _mm256_set1_epi16(0x0f00);
  for (std::size_t i = 0; i < nl; i += 16) {
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * i),
                        _mm256_or_si256(_mm256_and_si256(w, lo), _mm256_and_si256(_mm256_slli_epi16(w, 4), hi)));
  }
}

/// 32 code bytes of 32 columns: the next popcount(m) codes of u (one per byte) under the set bits
/// of m, the zero code (every byte of zv) under the cleared ones. Reads 16 bytes at u and at
/// u + popcount(m & 0xffff).
[[nodiscard]] inline __m256i bitmask_q4_expand32(std::uint32_t m, const std::uint8_t* u, __m256i zv) noexcept {
  const int n0 = std::popcount(m & 0xffffu);
  const __m256i d = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u + n0)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(u)));
  const __m256i ctrl = _mm256_set_m128i(bitmask_ctrl16(m >> 16), bitmask_ctrl16(m & 0xffffu));
  return _mm256_xor_si256(_mm256_shuffle_epi8(_mm256_xor_si256(d, zv), ctrl), zv);
}

/// The dense packed codes (gemv_q4.hpp layout) of columns [c0, c0 + 32·n32) of a bitmask row
/// (n32 ≤ 16, c0 % 32 == 0) into out[0 .. 16·n32), zero bytes up to the next multiple of 32.
/// p: nibble position of the row's next kept code, advanced past this block's. zp: the row's zeros
/// (Asym) or unused (symmetric, z = 8).
template <bool Asym>
inline void bitmask_q4_expand_block(const std::uint8_t* mrow, std::size_t c0, std::size_t n32, const std::uint8_t* rb,
                                    const std::uint8_t* vend, std::size_t& p, [[maybe_unused]] const std::uint8_t* zp,
                                    [[maybe_unused]] std::size_t group, std::uint8_t* out) noexcept {
  std::uint32_t m[16];
  std::size_t n = 0;
  for (std::size_t j = 0; j < n32; ++j) {
    std::memcpy(&m[j], mrow + c0 / 8 + 4 * j, 4);
    n += static_cast<std::size_t>(std::popcount(m[j]));
  }
  alignas(32) std::uint8_t ub[576];
  if (n == 0) std::memset(ub, 0, 32);  // nothing to shuffle in: every lane takes the zero code
  bitmask_q4_unpack(rb, vend, p, n, ub);
  const std::uint8_t* u = ub + (p & 1u);
  p += n;
  const __m256i pair = _mm256_set1_epi16(0x1001);  // maddubs: u[2i] + 16·u[2i+1]
  auto zv = [&](std::size_t j) {
    if constexpr (Asym) return _mm256_set1_epi8(static_cast<char>(zp[(c0 + 32 * j) / group]));
    else return _mm256_set1_epi8(8);
  };
  for (std::size_t j = 0; j < n32; j += 2) {
    const __m256i pa = _mm256_maddubs_epi16(bitmask_q4_expand32(m[j], u, zv(j)), pair);
    u += std::popcount(m[j]);
    __m256i pb = _mm256_setzero_si256();
    if (j + 1 < n32) {
      pb = _mm256_maddubs_epi16(bitmask_q4_expand32(m[j + 1], u, zv(j + 1)), pair);
      u += std::popcount(m[j + 1]);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * j),
                        _mm256_permute4x64_epi64(_mm256_packus_epi16(pa, pb), 0xd8));
  }
}
#endif

#if defined(__AVX512BW__) && defined(__AVX512VL__)
/// One bitmask row, AVX-512: q4_rows_avx512<Asym, Vnni, 1> (float scales) with each block of 512
/// inputs' codes expanded into a buffer first; the same operations on the same values.
template <bool Asym, bool Vnni>
[[nodiscard]] inline float bitmask_q4_row_avx512(const std::uint8_t* mrow, const std::uint8_t* rb,
                                                 const std::uint8_t* vend, const float* sw, const std::uint8_t* zp,
                                                 std::size_t cols, std::size_t group, const BlockQ8& act) noexcept {
  const std::size_t r = group / 32;
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i expand = r == 1   ? _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                         : r == 2 ? _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)
                                  : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const auto gmask = static_cast<__mmask16>((1u << (16 / r)) - 1);
  __m512 accf = _mm512_setzero_ps();

  // cb: the 256 dense code bytes of this block; swb / zb: its scales / zeros.
  auto block = [&](const std::uint8_t* cb, const float* swb, [[maybe_unused]] const std::uint8_t* zb, std::size_t base) {
    __m512i acc[4];
    for (int k = 0; k < 4; ++k) {
      const __m512i xe = _mm512_load_si512(act.q + base + 128 * k);
      const __m512i xo = _mm512_load_si512(act.q + base + 128 * k + 64);
      const __m512i w = _mm512_loadu_si512(cb + 64 * k);
      const __m512i lo = _mm512_and_si512(w, nib);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nib);
      if constexpr (Vnni) {
#if defined(__AVX512VNNI__)
        acc[k] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xe), hi, xo);
#endif
      } else {
        acc[k] = _mm512_madd_epi16(_mm512_add_epi16(_mm512_maddubs_epi16(lo, xe), _mm512_maddubs_epi16(hi, xo)),
                                   _mm512_set1_epi16(1));
      }
    }
    const std::size_t sb = base / 32;
    const __m512i qsum = _mm512_loadu_si512(act.sum + sb);
    const __m512i q8 = _mm512_slli_epi32(qsum, 3);
    const __m512 ascale = _mm512_loadu_ps(act.scale + sb);
    const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[0], acc[1]), _mm512_unpackhi_epi32(acc[0], acc[1]));
    const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[2], acc[3]), _mm512_unpackhi_epi32(acc[2], acc[3]));
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
    __m512i d = _mm512_permutexvar_epi32(perm, u);  // natural block order
    if constexpr (Asym) {
      __m512i z;
      if (r == 1) {
        z = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zb)));
      } else {
        z = _mm512_permutexvar_epi32(expand, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(gmask, zb)));
      }
      d = _mm512_sub_epi32(d, _mm512_mullo_epi32(z, qsum));
    } else {
      d = _mm512_sub_epi32(d, q8);
    }
    const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(d), ascale);
    const __m512 s = r == 1 ? _mm512_loadu_ps(swb) : _mm512_permutexvar_ps(expand, _mm512_maskz_loadu_ps(gmask, swb));
    accf = _mm512_fmadd_ps(f, s, accf);
  };

  std::size_t p = 0;
  const std::size_t nfull = cols / 512;
  const std::size_t gpb = 16 / r;  // groups per 512-input block
  for (std::size_t b = 0; b < nfull; ++b) {
    alignas(64) std::uint8_t cbuf[256];
    bitmask_q4_expand_block<Asym>(mrow, b * 512, 16, rb, vend, p, zp, group, cbuf);
    block(cbuf, sw + b * gpb, Asym ? zp + b * gpb : nullptr, b * 512);
  }
  const std::size_t rem = cols - nfull * 512;
  if (rem != 0) {  // the dense kernel's zero-padded partial block
    alignas(64) std::uint8_t cbuf[256] = {};
    float sbuf[16] = {};
    std::uint8_t zbuf[16] = {};
    const std::size_t ng = rem / (32 * r);
    std::memcpy(sbuf, sw + nfull * gpb, ng * sizeof(float));
    if constexpr (Asym) std::memcpy(zbuf, zp + nfull * gpb, ng);
    bitmask_q4_expand_block<Asym>(mrow, nfull * 512, rem / 32, rb, vend, p, zp, group, cbuf);
    block(cbuf, sbuf, zbuf, nfull * 512);
  }
  return _mm512_reduce_add_ps(accf);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/// One bitmask row, AVX2: q4_rows_avx2<Asym, 1> (float scales) with each block of 256 inputs'
/// codes expanded into a buffer first; the same operations on the same values.
template <bool Asym>
[[nodiscard]] inline float bitmask_q4_row_avx2(const std::uint8_t* mrow, const std::uint8_t* rb, const std::uint8_t* vend,
                                               const float* sw, const std::uint8_t* zp, std::size_t cols,
                                               std::size_t group, const BlockQ8& act) noexcept {
  const std::size_t r = group / 32;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i expand = r == 1   ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                         : r == 2 ? _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)
                                  : _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const std::size_t gpb = 8 / r;  // groups per 256-input block
  const __m256i gmask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(gpb)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 accf = _mm256_setzero_ps();

  // cb: the 128 dense code bytes of this block; swb / zb: its scales / zeros.
  auto block = [&](const std::uint8_t* cb, const float* swb, [[maybe_unused]] const std::uint8_t* zb, std::size_t base) {
    const std::size_t sb = base / 32;
    const __m256i qsum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act.sum + sb));
    const __m256 ascale = _mm256_loadu_ps(act.scale + sb);
    __m256i acc[4];
    for (int k = 0; k < 4; ++k) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb + 32 * k));
      const __m256i lo = _mm256_and_si256(w, nib);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib);
      const std::int8_t* xp = act.q + base + 128 * (k / 2) + 32 * (k % 2);
      const __m256i xe = _mm256_load_si256(reinterpret_cast<const __m256i*>(xp));
      const __m256i xo = _mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 64));
      acc[k] = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, xe), _mm256_maddubs_epi16(hi, xo)), ones16);
    }
    const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(acc[0], acc[1]), _mm256_unpackhi_epi32(acc[0], acc[1]));
    const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(acc[2], acc[3]), _mm256_unpackhi_epi32(acc[2], acc[3]));
    const __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
    __m256i d = _mm256_permutevar8x32_epi32(u, perm);  // natural block order
    if constexpr (Asym) {
      std::uint64_t zz = 0;
      std::memcpy(&zz, zb, gpb);
      const __m256i z =
          _mm256_permutevar8x32_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(zz))), expand);
      d = _mm256_sub_epi32(d, _mm256_mullo_epi32(z, qsum));
    } else {
      d = _mm256_sub_epi32(d, _mm256_slli_epi32(qsum, 3));
    }
    const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(d), ascale);
    const __m256 s = r == 1 ? _mm256_loadu_ps(swb) : _mm256_permutevar8x32_ps(_mm256_maskload_ps(swb, gmask), expand);
    accf = _mm256_fmadd_ps(f, s, accf);
  };

  std::size_t p = 0;
  const std::size_t nfull = cols / 256;
  for (std::size_t b = 0; b < nfull; ++b) {
    alignas(32) std::uint8_t cbuf[128];
    bitmask_q4_expand_block<Asym>(mrow, b * 256, 8, rb, vend, p, zp, group, cbuf);
    block(cbuf, sw + b * gpb, Asym ? zp + b * gpb : nullptr, b * 256);
  }
  const std::size_t rem = cols - nfull * 256;
  if (rem != 0) {  // the dense kernel's zero-padded partial block
    alignas(32) std::uint8_t cbuf[128] = {};
    float sbuf[8] = {};
    std::uint8_t zbuf[8] = {};
    const std::size_t ng = rem / (32 * r);
    std::memcpy(sbuf, sw + nfull * gpb, ng * sizeof(float));
    if constexpr (Asym) std::memcpy(zbuf, zp + nfull * gpb, ng);
    bitmask_q4_expand_block<Asym>(mrow, nfull * 256, rem / 32, rb, vend, p, zp, group, cbuf);
    block(cbuf, sbuf, zbuf, nfull * 256);
  }
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(accf), _mm256_extractf128_ps(accf, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}
#endif

/// One bitmask row, portable (SSE2 / NEON / generic): per block of 32 the dense code bytes are
/// rebuilt, then q4_row_generic's arithmetic.
template <bool Asym>
[[nodiscard]] inline float bitmask_q4_row_generic(const std::uint8_t* mrow, const std::uint8_t* rb, const float* sw,
                                                  const std::uint8_t* zp, std::size_t cols, std::size_t group,
                                                  const BlockQ8& act) noexcept {
  const std::size_t r = group / 32;
  float acc = 0.0f;
  std::size_t p = 0;  // nibble position of the row's next kept code
  for (std::size_t b = 0; b < cols / 32; ++b) {
    const std::size_t g = b / r;
    const std::int32_t z = Asym ? zp[g] : 8;
    auto code = [&](std::size_t c) -> unsigned {
      if (!((mrow[c / 8] >> (c % 8)) & 1u)) return static_cast<unsigned>(z);
      const unsigned u = (rb[p / 2] >> (4 * (p & 1u))) & 15u;
      ++p;
      return u;
    };
    std::uint8_t cb[16];
    for (std::size_t i = 0; i < 16; ++i) {
      const unsigned lo = code(b * 32 + 2 * i);
      cb[i] = static_cast<std::uint8_t>(lo | (code(b * 32 + 2 * i + 1) << 4));
    }
    std::int32_t d = 0;
    const std::int8_t* xe = act.q + block_q8_position(b * 32);  // 16 even inputs, contiguous
    const std::int8_t* xo = xe + 64;                              // the 16 odd ones
    for (std::size_t i = 0; i < 16; ++i) {
      const std::uint8_t c = cb[i];
      d += static_cast<std::int32_t>(c & 0x0f) * xe[i] + static_cast<std::int32_t>(c >> 4) * xo[i];
    }
    d -= z * act.sum[b];
    const float sg = sw[g];
    acc += sg * (static_cast<float>(d) * act.scale[b]);
  }
  return acc;
}

template <class Arch, bool Asym, bool Vnni>
[[nodiscard]] inline float bitmask_q4_row(const std::uint8_t* mrow, const std::uint8_t* rb,
                                          [[maybe_unused]] const std::uint8_t* vend, const float* sw,
                                          const std::uint8_t* zp, std::size_t cols, std::size_t group,
                                          const BlockQ8& act) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>)
    return bitmask_q4_row_avx512<Asym, Vnni && has_vnni>(mrow, rb, vend, sw, zp, cols, group, act);
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (is_avx2_v<Arch> && !is_avx512bw_v<Arch>)
    return bitmask_q4_row_avx2<Asym>(mrow, rb, vend, sw, zp, cols, group, act);
#endif
  return bitmask_q4_row_generic<Asym>(mrow, rb, sw, zp, cols, group, act);
}

}  // namespace detail

/// W4A8: y[k] = Σ_b s[k][g(b)]·a[b]·Σ_{j in b}(u[k][j] − z[k][g(b)])·qx[j] over the dense codes
/// (u = z at the cleared bits); the layout in the header comment (mask cols/8 bytes per row, kept
/// codes as nibbles, row_offsets in bytes, rows + 1 entries). group ∈ {32, 64, 128}, cols % group
/// == 0, `act` built for the same cols. Equal bit for bit to gemv_q4_a8 on the dense codes.
template <class Arch = simd::dynamic, bool Vnni = detail::has_vnni>
void gemv_bitmask_q4_a8(const std::uint8_t* mask, const std::uint8_t* codes, const std::size_t* row_offsets,
                        const float* scales, const std::uint8_t* zeros, std::size_t rows, std::size_t cols,
                        std::size_t group, const BlockQ8& act, float* y, int threads = 1) noexcept {
  const std::size_t mb = cols / 8, ng = cols / group;
  const std::uint8_t* const vend = codes + row_offsets[rows];
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) {
      const std::uint8_t* rb = codes + row_offsets[k];
      y[k] = zeros != nullptr
                 ? detail::bitmask_q4_row<Arch, true, Vnni>(mask + k * mb, rb, vend, scales + k * ng, zeros + k * ng,
                                                            cols, group, act)
                 : detail::bitmask_q4_row<Arch, false, Vnni>(mask + k * mb, rb, vend, scales + k * ng, nullptr, cols,
                                                             group, act);
    }
  });
}

/// Float activations: quantizes x per block of 32 into `work` (block_q8_workspace_bytes(cols) bytes)
/// and runs gemv_bitmask_q4_a8, as gemv_q4_f32 does: equal bit for bit to gemv_q4_f32 on the dense codes.
template <class Arch = simd::dynamic>
void gemv_bitmask_q4_f32(const std::uint8_t* mask, const std::uint8_t* codes, const std::size_t* row_offsets,
                         const float* scales, const std::uint8_t* zeros, std::size_t rows, std::size_t cols,
                         std::size_t group, const float* x, float* y, void* work, int threads = 1) noexcept {
  const BlockQ8 act = BlockQ8::carve(work, cols);
  quantize_block_q8(x, cols, act);
  gemv_bitmask_q4_a8<Arch>(mask, codes, row_offsets, scales, zeros, rows, cols, group, act, y, threads);
}

/// Scalar reference: y[k] = Σ_{c kept} s[k][g]·(u − z[k][g])·x[c] with the weights dequantized
/// exactly (double accumulation; no activation quantization).
inline void gemv_bitmask_q4_reference(const std::uint8_t* mask, const std::uint8_t* codes,
                                      const std::size_t* row_offsets, const float* scales, const std::uint8_t* zeros,
                                      std::size_t rows, std::size_t cols, std::size_t group, const float* x,
                                      float* y) noexcept {
  const std::size_t mb = cols / 8, ng = cols / group;
  for (std::size_t k = 0; k < rows; ++k) {
    std::size_t i = 0;
    double s = 0.0;
    for (std::size_t c = 0; c < cols; ++c) {
      if (!((mask[k * mb + c / 8] >> (c % 8)) & 1u)) continue;
      const int u = (codes[row_offsets[k] + i / 2] >> (4 * (i % 2))) & 15;
      ++i;
      const int z = zeros != nullptr ? zeros[k * ng + c / group] : 8;
      s += static_cast<double>(scales[k * ng + c / group]) * (u - z) * x[c];
    }
    y[k] = static_cast<float>(s);
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
template <>
inline void gemv_bitmask_q4_a8<simd::dynamic, detail::has_vnni>(
    const std::uint8_t* mask, const std::uint8_t* codes, const std::size_t* row_offsets, const float* scales,
    const std::uint8_t* zeros, std::size_t rows, std::size_t cols, std::size_t group, const BlockQ8& act, float* y,
    int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_bitmask_q4_a8, (gemv_bitmask_q4_a8<xsimd::default_arch, detail::has_vnni>), mask, codes,
                      row_offsets, scales, zeros, rows, cols, group, act, y, threads);
}
template <>
inline void gemv_bitmask_q4_f32<simd::dynamic>(
    const std::uint8_t* mask, const std::uint8_t* codes, const std::size_t* row_offsets, const float* scales,
    const std::uint8_t* zeros, std::size_t rows, std::size_t cols, std::size_t group, const float* x, float* y,
    void* work, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_bitmask_q4_f32, (gemv_bitmask_q4_f32<xsimd::default_arch>), mask, codes, row_offsets, scales,
                      zeros, rows, cols, group, x, y, work, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
