// The ggml "K-quant" super-block layouts (256 elements a block): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
// Included by ggml_blocks.hpp, which holds the type table and the ggml_encode / ggml_decode
// dispatch; docs/formats.md has the same layouts as a table.
//
// Every K-quant block covers 256 consecutive elements of a row (ne0 % 256 == 0), split into
// sub-blocks that each have a small integer scale (and, for Q2_K/Q4_K/Q5_K, a small integer min);
// those integers are multiplied by fp16 super-block factors d (and dmin). Element e of the block:
//
//   Q2_K, 84 bytes:  u8 scales[16] | u8 qs[64] | fp16 d | fp16 dmin.
//                    Sub-blocks of 16; e = 128h + 32j + 16k + l (h < 2, j < 4, k < 2, l < 16):
//                    q = (qs[32h + 16k + l] >> 2j) & 3 (2 bits), s = scales[e/16]:
//                    x = (d * lo4(s)) * q - dmin * hi4(s).
//   Q3_K, 110 bytes: u8 hmask[32] | u8 qs[64] | u8 scales[12] | fp16 d.
//                    Sub-blocks of 16, same e = 128h + 32j + 16k + l split: low two bits
//                    (qs[32h + 16k + l] >> 2j) & 3, high bit = bit (4h + j) of hmask[16k + l];
//                    q = low - (high ? 0 : 4) in -4..3. Sixteen 6-bit scales S_i (i = e/16):
//                    low 4 bits from scales[i] (i < 8, low nibble) or scales[i - 8] (high
//                    nibble), top 2 bits = bits 2(i/4)..2(i/4)+1 of scales[8 + i % 4];
//                    x = (d * (S_i - 32)) * q.
//   Q4_K, 144 bytes: fp16 d | fp16 dmin | u8 scales[12] | u8 qs[128].
//                    Sub-blocks of 32; e = 64c + 32k + l (c < 4, k < 2, l < 32): q = low nibble
//                    (k = 0) or high nibble (k = 1) of qs[32c + l]. Sub-block j = e/32 has a 6-bit
//                    scale sc_j and 6-bit min m_j packed in the 12 bytes (ggml's "scale_min_k4"):
//                    j < 4: sc_j = scales[j] & 63, m_j = scales[j + 4] & 63;
//                    j >= 4: sc_j = (scales[j + 4] & 15) | (scales[j - 4] >> 6) << 4,
//                            m_j = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4.
//                    x = (d * sc_j) * q - dmin * m_j.
//   Q5_K, 176 bytes: fp16 d | fp16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128].
//                    As Q4_K plus a fifth bit: bit (2c + k) of qh[l] adds 16 to q (0..31).
//   Q6_K, 210 bytes: u8 ql[128] | u8 qh[64] | i8 scales[16] | fp16 d.
//                    Sub-blocks of 16; e = 128h + 32r + l (h < 2, r < 4, l < 32): low nibble of
//                    ql[64h + l] (r = 0), of ql[64h + 32 + l] (r = 1), high nibble of ql[64h + l]
//                    (r = 2), of ql[64h + 32 + l] (r = 3); bits 4-5 = (qh[32h + l] >> 2r) & 3;
//                    x = (d * scales[e/16]) * (q - 32).
// Decoders perform ggml's reference float operations in the same order, so they are bit-identical
// to it. Every product in them is exact in float (an fp16 value has 11 significant bits, the small
// integers at most 8 + 6), so a fused multiply-add rounds exactly as the separate multiply and add:
// FMA and non-FMA builds decode the same bits.
//
// Encoders (sparq's own rule, simpler than ggml's search-based ones; valid blocks of the layout):
//   Q4_K: per sub-block j of 32, lo_j = min(0, min x), hi_j = max x, m_j = -lo_j and step
//         s_j = (hi_j - lo_j) / 15. D = max_j s_j / 63 and Dmin = max_j m_j / 63 are stored as fp16
//         rounded UP (so 63 * D >= max s_j); sc_j = min(63, ceil(s_j / D)), so the effective step
//         S_j = D * sc_j >= s_j and 15 S_j covers the range; the offset M_j = Dmin * mc_j (mc_j in
//         0..63) is chosen nearest the middle of the interval [m_j, 15 S_j - hi_j] of offsets that
//         represent both ends; codes q = clamp(round((x + M_j) / S_j), 0, 15).
//         Error: |x - x̂| <= S_j / 2 + Dmin / 2, with S_j <= (hi_j - lo_j) / 15 + D (the Dmin term
//         only when the grid of offsets misses that interval).
//   Q6_K: per sub-block j of 16, a_j = max |x|, s_j = a_j / 31; D = max_j s_j / 127 stored as fp16
//         rounded up; sc_j = min(127, ceil(s_j / D)); codes q = clamp(round(x / S_j), -32, 31) + 32
//         with S_j = D * sc_j >= s_j. Error: |x - x̂| <= S_j / 2 <= a_j / 62 + D / 2.
//   Both need the fp16 super-block factors to be finite: Q4_K throws sparq::error when a sub-block
//   range exceeds 63 * 15 * 65504 (about 6.2e7) or a value lies below -63 * 65504 (about -4.1e6),
//   Q6_K when max |x| exceeds 31 * 127 * 65504 (about 2.6e8).
//   Q2_K, Q3_K and Q5_K are decode-only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"

namespace sparq::io {

inline constexpr std::size_t ggml_qk_k = 256;  ///< elements per K-quant super-block

struct BlockQ2_K {
  std::uint8_t scales[16];  ///< sub-block e/16: low nibble scale, high nibble min
  std::uint8_t qs[64];      ///< 2-bit codes, four elements a byte (see the file comment)
  std::uint16_t d;          ///< fp16 factor of the scales
  std::uint16_t dmin;       ///< fp16 factor of the mins
};
struct BlockQ3_K {
  std::uint8_t hmask[32];   ///< third (high) bit of each code
  std::uint8_t qs[64];      ///< low two bits of each code
  std::uint8_t scales[12];  ///< sixteen 6-bit scales, offset 32
  std::uint16_t d;          ///< fp16 factor of the scales
};
struct BlockQ4_K {
  std::uint16_t d;          ///< fp16 factor of the scales
  std::uint16_t dmin;       ///< fp16 factor of the mins
  std::uint8_t scales[12];  ///< eight 6-bit scales and eight 6-bit mins
  std::uint8_t qs[128];     ///< 4-bit codes
};
struct BlockQ5_K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[12];  ///< as Q4_K
  std::uint8_t qh[32];      ///< fifth bit of each code
  std::uint8_t qs[128];     ///< low four bits of each code
};
struct BlockQ6_K {
  std::uint8_t ql[128];     ///< low four bits of each code
  std::uint8_t qh[64];      ///< top two bits of each code
  std::int8_t scales[16];   ///< one signed 8-bit scale per 16 elements
  std::uint16_t d;          ///< fp16 factor of the scales
};
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
                  sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210,
              "ggml K-quant block sizes");

namespace detail {

/// a * b rounded to float before it is used: compilers otherwise fuse `a * b + c` into one FMA
/// when FMA is enabled, which moves ties and would make FMA and non-FMA builds write different
/// codes. The empty asm makes the rounded product opaque to the optimizer (shared by the 32-element
/// encoders of ggml_blocks.hpp).
[[nodiscard]] inline float mul_unfused(float a, float b) noexcept {
  float p = a * b;
#if defined(__GNUC__) && defined(__x86_64__)
  __asm__("" : "+x"(p));
#elif defined(__GNUC__) && defined(__aarch64__)
  __asm__("" : "+w"(p));
#elif defined(__GNUC__)
  __asm__("" : "+m"(p));
#endif
  return p;
}

/// Float to int32 truncating toward zero; NaN and values outside the int32 range give INT32_MIN.
/// This is what the x86 conversion instruction returns, so it reproduces ggml's reference
/// quantizers on x86 even where their C conversion is out of range; without undefined behaviour.
[[nodiscard]] inline std::int32_t trunc_i32(float v) noexcept {
  if (v >= -2147483648.0f && v < 2147483648.0f) return static_cast<std::int32_t>(v);
  return INT32_MIN;
}

/// The low byte of trunc_i32(v) read as int8 (a C conversion float -> int8_t as compiled on x86).
[[nodiscard]] inline int trunc_i8(float v) noexcept {
  return static_cast<std::int8_t>(static_cast<std::uint8_t>(static_cast<std::uint32_t>(trunc_i32(v)) & 0xffu));
}

/// The smallest fp16 value >= v (v >= 0 finite); +Inf (0x7c00) when v exceeds the largest half.
[[nodiscard]] inline std::uint16_t fp16_round_up(float v) noexcept {
  std::uint16_t h = float_to_fp16(v);
  if (fp16_to_float(h) < v && h < 0x7c00u) ++h;  // next half up (subnormal -> normal carries over)
  return h;
}

/// Scale and min of Q4_K/Q5_K sub-block j (0..7) from the 12 packed bytes.
inline void kquant_scale_min(std::size_t j, const std::uint8_t* s, std::uint8_t& sc, std::uint8_t& m) noexcept {
  if (j < 4) {
    sc = static_cast<std::uint8_t>(s[j] & 63);
    m = static_cast<std::uint8_t>(s[j + 4] & 63);
  } else {
    sc = static_cast<std::uint8_t>((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

/// Packs eight 6-bit scales and mins into Q4_K/Q5_K's 12 bytes (inverse of kquant_scale_min).
inline void kquant_pack_scale_min(const std::uint8_t* sc, const std::uint8_t* m, std::uint8_t* s) noexcept {
  for (std::size_t j = 0; j < 4; ++j) {
    s[j] = static_cast<std::uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<std::uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<std::uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

/// Q3_K's sixteen 6-bit scales (0..63, before the -32 offset).
inline void q3_k_scales(const std::uint8_t* s, int* out) noexcept {
  for (std::size_t i = 0; i < 16; ++i) {
    const int low = i < 8 ? (s[i] & 15) : (s[i - 8] >> 4);
    const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    out[i] = low | (high << 4);
  }
}

}  // namespace detail

// ---- builders from explicit codes (element order) -------------------------------------------------

/// A Q4_K block from fp16 d and dmin, eight 6-bit scales sc[j] and mins m[j] (0..63) and 256 codes
/// q (0..15): element e decodes to (d * sc[e/32]) * q[e] - dmin * m[e/32]. Throws on a code or
/// scale out of range.
[[nodiscard]] inline BlockQ4_K make_block_q4_k(std::uint16_t d, std::uint16_t dmin, const std::uint8_t* sc,
                                               const std::uint8_t* m, const std::uint8_t* q) {
  for (std::size_t j = 0; j < 8; ++j) {
    SPARQ_CHECK(sc[j] < 64 && m[j] < 64, "make_block_q4_k: sub-block ", j, " scale ", int(sc[j]), " / min ",
                int(m[j]), ", expected 0..63");
  }
  BlockQ4_K b{};
  b.d = d;
  b.dmin = dmin;
  detail::kquant_pack_scale_min(sc, m, b.scales);
  for (std::size_t e = 0; e < ggml_qk_k; ++e) {
    SPARQ_CHECK(q[e] < 16, "make_block_q4_k: code ", int(q[e]), " at element ", e, ", expected 0..15");
    const std::size_t c = e / 64, k = (e / 32) % 2, l = e % 32;
    b.qs[32 * c + l] = static_cast<std::uint8_t>(b.qs[32 * c + l] | (q[e] << (4 * k)));
  }
  return b;
}

/// A Q6_K block from fp16 d, sixteen int8 scales and 256 codes q (0..63): element e decodes to
/// (d * scales[e/16]) * (q[e] - 32). Throws on a code out of range.
[[nodiscard]] inline BlockQ6_K make_block_q6_k(std::uint16_t d, const std::int8_t* scales, const std::uint8_t* q) {
  BlockQ6_K b{};
  b.d = d;
  std::memcpy(b.scales, scales, 16);
  for (std::size_t e = 0; e < ggml_qk_k; ++e) {
    SPARQ_CHECK(q[e] < 64, "make_block_q6_k: code ", int(q[e]), " at element ", e, ", expected 0..63");
    const std::size_t h = e / 128, r = (e / 32) % 4, l = e % 32;
    const std::size_t lo = 64 * h + 32 * (r % 2) + l;
    b.ql[lo] = static_cast<std::uint8_t>(b.ql[lo] | ((q[e] & 15) << (4 * (r / 2))));
    b.qh[32 * h + l] = static_cast<std::uint8_t>(b.qh[32 * h + l] | ((q[e] >> 4) << (2 * r)));
  }
  return b;
}

// ---- decoders (bit-identical to ggml's reference) ----------------------------------------------------

inline void dequantize_block_q2_k(const BlockQ2_K& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const float dmin = fp16_to_float(b.dmin);
  for (std::size_t i = 0; i < 16; ++i) {  // sub-block i: elements 16i..16i+15
    const float dl = d * static_cast<float>(b.scales[i] & 15);
    const float ml = dmin * static_cast<float>(b.scales[i] >> 4);
    const std::size_t h = i / 8, j = (i / 2) % 4, k = i % 2;
    const std::uint8_t* q = b.qs + 32 * h + 16 * k;
    for (std::size_t l = 0; l < 16; ++l) {
      y[16 * i + l] = dl * static_cast<float>((q[l] >> (2 * j)) & 3) - ml;
    }
  }
}

inline void dequantize_block_q3_k(const BlockQ3_K& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  int s[16];
  detail::q3_k_scales(b.scales, s);
  for (std::size_t i = 0; i < 16; ++i) {
    const float dl = d * static_cast<float>(s[i] - 32);
    const std::size_t h = i / 8, j = (i / 2) % 4, k = i % 2;
    const std::uint8_t* q = b.qs + 32 * h + 16 * k;
    const std::uint8_t* hm = b.hmask + 16 * k;
    const unsigned bit = 1u << (4 * h + j);
    for (std::size_t l = 0; l < 16; ++l) {
      const int v = ((q[l] >> (2 * j)) & 3) - ((hm[l] & bit) ? 0 : 4);
      y[16 * i + l] = dl * static_cast<float>(v);
    }
  }
}

inline void dequantize_block_q4_k(const BlockQ4_K& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const float dmin = fp16_to_float(b.dmin);
  for (std::size_t j = 0; j < 8; ++j) {  // sub-block j: elements 32j..32j+31
    std::uint8_t sc, m;
    detail::kquant_scale_min(j, b.scales, sc, m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    const std::uint8_t* q = b.qs + 32 * (j / 2);
    const unsigned shift = 4 * (j % 2);
    for (std::size_t l = 0; l < 32; ++l) y[32 * j + l] = dl * static_cast<float>((q[l] >> shift) & 15) - ml;
  }
}

inline void dequantize_block_q5_k(const BlockQ5_K& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const float dmin = fp16_to_float(b.dmin);
  for (std::size_t j = 0; j < 8; ++j) {
    std::uint8_t sc, m;
    detail::kquant_scale_min(j, b.scales, sc, m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    const std::uint8_t* q = b.qs + 32 * (j / 2);
    const unsigned shift = 4 * (j % 2);
    const unsigned bit = 1u << j;  // j = 2c + k
    for (std::size_t l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 15) + ((b.qh[l] & bit) ? 16 : 0);
      y[32 * j + l] = dl * static_cast<float>(v) - ml;
    }
  }
}

inline void dequantize_block_q6_k(const BlockQ6_K& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t e = 0; e < ggml_qk_k; ++e) {
    const std::size_t h = e / 128, r = (e / 32) % 4, l = e % 32;
    const int lo = (b.ql[64 * h + 32 * (r % 2) + l] >> (4 * (r / 2))) & 15;
    const int hi = (b.qh[32 * h + l] >> (2 * r)) & 3;
    const int q = (lo | (hi << 4)) - 32;
    y[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q);
  }
}

// ---- encoders (sparq's rule, see the file comment) ------------------------------------------------

/// Encodes 256 finite floats as one Q4_K block (rule and error bound in the file comment).
inline void quantize_block_q4_k(const float* x, BlockQ4_K& b) {
  float step[8], off[8], hi[8];
  float max_step = 0.0f, max_off = 0.0f;
  for (std::size_t j = 0; j < 8; ++j) {
    float lo = 0.0f, h = x[32 * j];
    for (std::size_t l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * j + l]);
      h = std::max(h, x[32 * j + l]);
    }
    hi[j] = h;
    off[j] = -lo;
    step[j] = (h - lo) / 15.0f;
    max_step = std::max(max_step, step[j]);
    max_off = std::max(max_off, off[j]);
  }
  const std::uint16_t dh = detail::fp16_round_up(max_step / 63.0f);
  const std::uint16_t dminh = detail::fp16_round_up(max_off / 63.0f);
  SPARQ_CHECK(dh < 0x7c00u && dminh < 0x7c00u, "quantize_block_q4_k: sub-block step ", max_step, " / offset ",
              max_off, " needs a super-block factor beyond fp16 (expected sub-block ranges below about 6.2e7 and values above about -4.1e6)");
  const float D = fp16_to_float(dh), Dmin = fp16_to_float(dminh);
  std::uint8_t sc[8], mc[8], q[ggml_qk_k];
  for (std::size_t j = 0; j < 8; ++j) {
    const float ls = D > 0.0f ? std::min(63.0f, std::ceil(step[j] / D)) : 0.0f;
    const float S = D * ls;
    // Offsets M with -M <= lo and -M + 15 S >= hi: [off, 15 S - hi]; take the grid point nearest its middle.
    const float mid = 0.5f * (off[j] + (15.0f * S - hi[j]));
    const float lm = Dmin > 0.0f ? std::clamp(std::nearbyint(mid / Dmin), 0.0f, 63.0f) : 0.0f;
    const float M = Dmin * lm;
    sc[j] = static_cast<std::uint8_t>(ls);
    mc[j] = static_cast<std::uint8_t>(lm);
    for (std::size_t l = 0; l < 32; ++l) {
      const float v = S > 0.0f ? std::clamp((x[32 * j + l] + M) / S, 0.0f, 15.0f) : 0.0f;
      q[32 * j + l] = static_cast<std::uint8_t>(std::nearbyint(v));
    }
  }
  b = make_block_q4_k(dh, dminh, sc, mc, q);
}

/// Encodes 256 finite floats as one Q6_K block (rule and error bound in the file comment).
inline void quantize_block_q6_k(const float* x, BlockQ6_K& b) {
  float step[16];
  float max_step = 0.0f;
  for (std::size_t j = 0; j < 16; ++j) {
    float a = 0.0f;
    for (std::size_t l = 0; l < 16; ++l) a = std::max(a, std::fabs(x[16 * j + l]));
    step[j] = a / 31.0f;
    max_step = std::max(max_step, step[j]);
  }
  const std::uint16_t dh = detail::fp16_round_up(max_step / 127.0f);
  SPARQ_CHECK(dh < 0x7c00u, "quantize_block_q6_k: sub-block step ", max_step,
              " needs a super-block factor beyond fp16 (expected max |x| below about 2.6e8)");
  const float D = fp16_to_float(dh);
  std::int8_t sc[16];
  std::uint8_t q[ggml_qk_k];
  for (std::size_t j = 0; j < 16; ++j) {
    const float ls = D > 0.0f ? std::min(127.0f, std::ceil(step[j] / D)) : 0.0f;
    const float S = D * ls;
    sc[j] = static_cast<std::int8_t>(ls);
    for (std::size_t l = 0; l < 16; ++l) {
      const float v = S > 0.0f ? std::clamp(x[16 * j + l] / S, -32.0f, 31.0f) : 0.0f;
      q[16 * j + l] = static_cast<std::uint8_t>(static_cast<int>(std::nearbyint(v)) + 32);
    }
  }
  b = make_block_q6_k(dh, sc, q);
}

}  // namespace sparq::io
