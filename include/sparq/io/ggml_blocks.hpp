// GgmlType, the table of ggml tensor types sparq reads and writes in GGUF, and the 32-element block
// layouts. The 256-element K-quant super-blocks are in ggml_kquants.hpp (included here); the
// layouts are also tabled in docs/formats.md.
//
// Types: F32, F16, BF16 (one element a "block"); Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL (blocks of
// 32 consecutive elements of a row, ne0 % 32 == 0); Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (blocks of 256).
// Every type decodes; Q2_K, Q3_K, Q5_K and IQ4_NL are decode-only (ggml_encode throws).
//
// 32-element layouts (lo/hi = low/high nibble; byte j carries element j low and j+16 high):
//   Q8_0,   34 bytes: fp16 d | int8 q[32];                    x[j] = d * q[j].
//   Q4_0,   18 bytes: fp16 d | u8 qs[16];                     x[j] = (lo(qs[j]) - 8) * d,
//                                                             x[j+16] = (hi(qs[j]) - 8) * d.
//   Q4_1,   20 bytes: fp16 d | fp16 m | u8 qs[16];           x = q * d + m, q the nibble (0..15).
//   Q5_0,   22 bytes: fp16 d | u8 qh[4] | u8 qs[16];          q = nibble | (bit i of qh as
//                     little-endian u32) << 4 for element i (0..31);  x = (q - 16) * d.
//   Q5_1,   24 bytes: fp16 d | fp16 m | u8 qh[4] | u8 qs[16]; q as Q5_0;  x = q * d + m.
//   IQ4_NL, 18 bytes: fp16 d | u8 qs[16];                     nibbles as Q4_0, x = d * kvalues[q]
//                     with the fixed non-linear table ggml_iq4nl_values (-127..113).
// Decoders perform ggml's reference float operations in the same order (bit-identical results);
// every product in them is exact in float, so FMA and non-FMA builds agree.
//
// Quantizers for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 follow ggml's reference (scalar) quantizers, so the
// codes are the ones llama.cpp's `quantize` would produce from the same floats:
//   Q8_0: amax = max|x|, d = amax / 127, id = d ? 1/d : 0, q = roundf(x * id) (ties away from
//         zero, as C roundf: ggml's choice, kept for byte compatibility), d stored as fp16.
//   Q4_0: m = the element of largest |x| with its sign (first one on ties), d = m / -8,
//         id = d ? 1/d : 0, q = min(15, trunc(x * id + 8.5)), d stored as fp16. The extreme value
//         m maps to q = 0 exactly; the opposite end of the range can reach 16, clamped to 15.
//   Q5_0: as Q4_0 with d = m / -16 and q = min(31, trunc(x * id + 16.5)).
//   Q4_1: lo = min x, hi = max x, d = (hi - lo) / 15, id = d ? 1/d : 0,
//         q = min(15, trunc((x - lo) * id + 0.5)); d and m = lo stored as fp16.
//   Q5_1: as Q4_1 with d = (hi - lo) / 31 and q = trunc((x - lo) * id + 0.5) (no clamp, as ggml).
//   The product x * id (or (x - lo) * id) is rounded to float before the constant is added (never
//   fused into an FMA), so every build (with or without -mfma) writes the same codes. Float to
//   integer conversions use x86's out-of-range result (see detail::trunc_i32), never undefined
//   behaviour. Dequantization uses the fp16-rounded d (and m), so for values inside the range
//   |x - x̂| <= d/2 + |q - z| * |d - fp16(d)| (+ |lo - fp16(lo)| for Q4_1/Q5_1; z = 0 for Q8_0,
//   Q4_1, Q5_1, 8 for Q4_0, 16 for Q5_0).
// Q4_K and Q6_K have sparq's own encoder (ggml_kquants.hpp states the rule and its error bound).
//
// make_block_* build blocks from explicit codes in element order (for exporters that choose their
// own grid); they check the code range and do the nibble / high-bit packing of the layout.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"
#include "sparq/io/ggml_kquants.hpp"

namespace sparq::io {

/// ggml tensor type codes (the values stored in GGUF tensor infos; ggml's own numbering). Only
/// those sparq converts are named; other codes are rejected by the reader with their number.
enum class GgmlType : std::uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, IQ4_NL = 20, BF16 = 30
};

inline constexpr std::size_t ggml_qk = 32;  ///< elements per Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/IQ4_NL block

struct BlockQ8_0 {
  std::uint16_t d;    ///< fp16 scale
  std::int8_t qs[32];
};
struct BlockQ4_0 {
  std::uint16_t d;      ///< fp16 scale
  std::uint8_t qs[16];  ///< byte j: element j in the low nibble, element j+16 in the high nibble
};
struct BlockQ4_1 {
  std::uint16_t d;      ///< fp16 scale
  std::uint16_t m;      ///< fp16 offset (the block minimum)
  std::uint8_t qs[16];  ///< as Q4_0
};
struct BlockQ5_0 {
  std::uint16_t d;      ///< fp16 scale
  std::uint8_t qh[4];   ///< bit i (little-endian u32) = fifth bit of element i's code
  std::uint8_t qs[16];  ///< low four bits, as Q4_0
};
struct BlockQ5_1 {
  std::uint16_t d;      ///< fp16 scale
  std::uint16_t m;      ///< fp16 offset
  std::uint8_t qh[4];   ///< as Q5_0
  std::uint8_t qs[16];  ///< as Q5_0
};
struct BlockIQ4_NL {
  std::uint16_t d;      ///< fp16 scale
  std::uint8_t qs[16];  ///< 4-bit indices into ggml_iq4nl_values, packed as Q4_0
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "ggml block sizes");
static_assert(sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24, "ggml block sizes");
static_assert(sizeof(BlockIQ4_NL) == 18, "ggml block sizes");

/// IQ4_NL's 16 levels (a fixed non-uniform grid, denser near zero).
inline constexpr std::int8_t ggml_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                      1,    13,   25,  38,  53,  69,  89,  113};

/// One row of the type table: every per-type fact the reader, writer and codecs use.
struct GgmlTypeInfo {
  GgmlType type;
  const char* name;
  std::size_t block_elems;  ///< elements per block (1 for the float types)
  std::size_t block_bytes;  ///< bytes per block
  bool encodable;           ///< ggml_encode writes it (all types decode)
};

inline constexpr GgmlTypeInfo ggml_type_table[] = {
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", ggml_qk, sizeof(BlockQ4_0), true},
    {GgmlType::Q4_1, "Q4_1", ggml_qk, sizeof(BlockQ4_1), true},
    {GgmlType::Q5_0, "Q5_0", ggml_qk, sizeof(BlockQ5_0), true},
    {GgmlType::Q5_1, "Q5_1", ggml_qk, sizeof(BlockQ5_1), true},
    {GgmlType::Q8_0, "Q8_0", ggml_qk, sizeof(BlockQ8_0), true},
    {GgmlType::Q2_K, "Q2_K", ggml_qk_k, sizeof(BlockQ2_K), false},
    {GgmlType::Q3_K, "Q3_K", ggml_qk_k, sizeof(BlockQ3_K), false},
    {GgmlType::Q4_K, "Q4_K", ggml_qk_k, sizeof(BlockQ4_K), true},
    {GgmlType::Q5_K, "Q5_K", ggml_qk_k, sizeof(BlockQ5_K), false},
    {GgmlType::Q6_K, "Q6_K", ggml_qk_k, sizeof(BlockQ6_K), true},
    {GgmlType::IQ4_NL, "IQ4_NL", ggml_qk, sizeof(BlockIQ4_NL), false},
    {GgmlType::BF16, "BF16", 1, 2, true},
};

/// The table row of a type code, or nullptr for a code sparq does not convert.
[[nodiscard]] constexpr const GgmlTypeInfo* ggml_type_info(std::uint32_t code) noexcept {
  for (const auto& t : ggml_type_table)
    if (static_cast<std::uint32_t>(t.type) == code) return &t;
  return nullptr;
}
[[nodiscard]] constexpr const GgmlTypeInfo* ggml_type_info(GgmlType t) noexcept {
  return ggml_type_info(static_cast<std::uint32_t>(t));
}

/// True for the type codes sparq can read.
[[nodiscard]] constexpr bool ggml_type_supported(std::uint32_t t) noexcept { return ggml_type_info(t) != nullptr; }

/// True for the types ggml_encode writes.
[[nodiscard]] constexpr bool ggml_type_encodable(GgmlType t) noexcept {
  const auto* i = ggml_type_info(t);
  return i != nullptr && i->encodable;
}

[[nodiscard]] constexpr const char* ggml_type_name(GgmlType t) noexcept {
  const auto* i = ggml_type_info(t);
  return i ? i->name : "?";
}

/// Elements per block (1 for the float types and for codes outside the table).
[[nodiscard]] constexpr std::size_t ggml_block_elems(GgmlType t) noexcept {
  const auto* i = ggml_type_info(t);
  return i ? i->block_elems : 1;
}

/// Bytes per block (0 for codes outside the table).
[[nodiscard]] constexpr std::size_t ggml_block_bytes(GgmlType t) noexcept {
  const auto* i = ggml_type_info(t);
  return i ? i->block_bytes : 0;
}

/// "F32 (0), F16 (1), ..." for the table's types (all, or the encodable ones), for error messages.
[[nodiscard]] inline std::string ggml_type_list(bool encodable_only = false) {
  std::string s;
  for (const auto& t : ggml_type_table) {
    if (encodable_only && !t.encodable) continue;
    if (!s.empty()) s += ", ";
    s += t.name;
    s += " (" + std::to_string(static_cast<std::uint32_t>(t.type)) + ")";
  }
  return s;
}

// ---- builders from explicit codes (element order) -------------------------------------------------

namespace detail {
inline void check_codes(const char* fn, const std::uint8_t* q, unsigned limit) {
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    SPARQ_CHECK(q[j] < limit, fn, ": code ", int(q[j]), " at element ", j, ", expected 0..", limit - 1);
  }
}
/// Packs 32 4-bit codes: byte j = code j | code (j + 16) << 4.
inline void pack_nibbles(const std::uint8_t* q, std::uint8_t* qs) noexcept {
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) qs[j] = static_cast<std::uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
}
/// Packs 32 5-bit codes: low four bits as pack_nibbles, bit 4 of code i into bit i of qh (LE u32).
inline void pack_q5(const std::uint8_t* q, std::uint8_t* qh, std::uint8_t* qs) noexcept {
  pack_nibbles(q, qs);
  std::uint32_t h = 0;
  for (std::size_t j = 0; j < ggml_qk; ++j) h |= static_cast<std::uint32_t>((q[j] >> 4) & 1) << j;
  for (std::size_t k = 0; k < 4; ++k) qh[k] = static_cast<std::uint8_t>(h >> (8 * k));
}
[[nodiscard]] inline std::uint32_t load_qh(const std::uint8_t* qh) noexcept {
  return static_cast<std::uint32_t>(qh[0]) | static_cast<std::uint32_t>(qh[1]) << 8 |
         static_cast<std::uint32_t>(qh[2]) << 16 | static_cast<std::uint32_t>(qh[3]) << 24;
}
}  // namespace detail

/// Q4_0 block from fp16 d and codes q[j] in 0..15 (element j): x = d * (q - 8).
[[nodiscard]] inline BlockQ4_0 make_block_q4_0(std::uint16_t d, const std::uint8_t* q) {
  detail::check_codes("make_block_q4_0", q, 16);
  BlockQ4_0 b{};
  b.d = d;
  detail::pack_nibbles(q, b.qs);
  return b;
}
/// Q4_1 block from fp16 d, fp16 m and codes q[j] in 0..15: x = d * q + m.
[[nodiscard]] inline BlockQ4_1 make_block_q4_1(std::uint16_t d, std::uint16_t m, const std::uint8_t* q) {
  detail::check_codes("make_block_q4_1", q, 16);
  BlockQ4_1 b{};
  b.d = d;
  b.m = m;
  detail::pack_nibbles(q, b.qs);
  return b;
}
/// Q5_0 block from fp16 d and codes q[j] in 0..31: x = d * (q - 16).
[[nodiscard]] inline BlockQ5_0 make_block_q5_0(std::uint16_t d, const std::uint8_t* q) {
  detail::check_codes("make_block_q5_0", q, 32);
  BlockQ5_0 b{};
  b.d = d;
  detail::pack_q5(q, b.qh, b.qs);
  return b;
}
/// Q5_1 block from fp16 d, fp16 m and codes q[j] in 0..31: x = d * q + m.
[[nodiscard]] inline BlockQ5_1 make_block_q5_1(std::uint16_t d, std::uint16_t m, const std::uint8_t* q) {
  detail::check_codes("make_block_q5_1", q, 32);
  BlockQ5_1 b{};
  b.d = d;
  b.m = m;
  detail::pack_q5(q, b.qh, b.qs);
  return b;
}
/// Q8_0 block from fp16 d and int8 codes q[j]: x = d * q.
[[nodiscard]] inline BlockQ8_0 make_block_q8_0(std::uint16_t d, const std::int8_t* q) noexcept {
  BlockQ8_0 b{};
  b.d = d;
  std::memcpy(b.qs, q, ggml_qk);
  return b;
}

// ---- quantizers (ggml reference rounding, see the file comment) ------------------------------------

/// Quantizes one block of 32 floats to Q8_0 (ggml reference rounding). x must be finite.
inline void quantize_block_q8_0(const float* x, BlockQ8_0& b) noexcept {
  float amax = 0.0f;
  for (std::size_t j = 0; j < ggml_qk; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = float_to_fp16(d);
  for (std::size_t j = 0; j < ggml_qk; ++j) b.qs[j] = static_cast<std::int8_t>(detail::trunc_i8(std::roundf(x[j] * id)));
}

namespace detail {
/// The element of largest |x| with its sign (the first on ties), as ggml's Q4_0/Q5_0 take it.
[[nodiscard]] inline float signed_absmax(const float* x) noexcept {
  float amax = 0.0f, m = 0.0f;
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      m = x[j];
    }
  }
  return m;
}
/// Block minimum and maximum as ggml's Q4_1/Q5_1 scan them.
inline void min_max(const float* x, float& lo, float& hi) noexcept {
  lo = FLT_MAX;
  hi = -FLT_MAX;
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
}
}  // namespace detail

/// Quantizes one block of 32 floats to Q4_0 (ggml reference rule, see the file comment).
inline void quantize_block_q4_0(const float* x, BlockQ4_0& b) noexcept {
  const float d = detail::signed_absmax(x) / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = float_to_fp16(d);
  std::uint8_t q[ggml_qk];
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    q[j] = static_cast<std::uint8_t>(std::min(15, detail::trunc_i8(detail::mul_unfused(x[j], id) + 8.5f)));
  }
  detail::pack_nibbles(q, b.qs);
}

/// Quantizes one block of 32 floats to Q4_1 (ggml reference rule, see the file comment).
inline void quantize_block_q4_1(const float* x, BlockQ4_1& b) noexcept {
  float lo, hi;
  detail::min_max(x, lo, hi);
  const float d = (hi - lo) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = float_to_fp16(d);
  b.m = float_to_fp16(lo);
  std::uint8_t q[ggml_qk];
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    q[j] = static_cast<std::uint8_t>(std::min(15, detail::trunc_i8(detail::mul_unfused(x[j] - lo, id) + 0.5f)));
  }
  detail::pack_nibbles(q, b.qs);
}

/// Quantizes one block of 32 floats to Q5_0 (ggml reference rule, see the file comment).
inline void quantize_block_q5_0(const float* x, BlockQ5_0& b) noexcept {
  const float d = detail::signed_absmax(x) / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = float_to_fp16(d);
  std::uint8_t q[ggml_qk];
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    q[j] = static_cast<std::uint8_t>(std::min(31, detail::trunc_i8(detail::mul_unfused(x[j], id) + 16.5f)));
  }
  detail::pack_q5(q, b.qh, b.qs);
}

/// Quantizes one block of 32 floats to Q5_1 (ggml reference rule, see the file comment).
inline void quantize_block_q5_1(const float* x, BlockQ5_1& b) noexcept {
  float lo, hi;
  detail::min_max(x, lo, hi);
  const float d = (hi - lo) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = float_to_fp16(d);
  b.m = float_to_fp16(lo);
  std::uint8_t q[ggml_qk];
  for (std::size_t j = 0; j < ggml_qk; ++j) {  // ggml keeps only the low five bits, unclamped
    q[j] = static_cast<std::uint8_t>(detail::trunc_i32(detail::mul_unfused(x[j] - lo, id) + 0.5f));
  }
  detail::pack_q5(q, b.qh, b.qs);
}

// ---- decoders (bit-identical to ggml's reference) ----------------------------------------------------

inline void dequantize_block_q8_0(const BlockQ8_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < ggml_qk; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

inline void dequantize_block_q4_0(const BlockQ4_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
    y[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

inline void dequantize_block_q4_1(const BlockQ4_1& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const float m = fp16_to_float(b.m);
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
    y[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

inline void dequantize_block_q5_0(const BlockQ5_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const std::uint32_t qh = detail::load_qh(b.qh);
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) {
    const int q0 = (b.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int q1 = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = static_cast<float>(q0 - 16) * d;
    y[j + 16] = static_cast<float>(q1 - 16) * d;
  }
}

inline void dequantize_block_q5_1(const BlockQ5_1& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  const float m = fp16_to_float(b.m);
  const std::uint32_t qh = detail::load_qh(b.qh);
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) {
    const int q0 = (b.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int q1 = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = static_cast<float>(q0) * d + m;
    y[j + 16] = static_cast<float>(q1) * d + m;
  }
}

inline void dequantize_block_iq4_nl(const BlockIQ4_NL& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) {
    y[j] = d * static_cast<float>(ggml_iq4nl_values[b.qs[j] & 0x0f]);
    y[j + 16] = d * static_cast<float>(ggml_iq4nl_values[b.qs[j] >> 4]);
  }
}

// ---- whole tensors ------------------------------------------------------------------------------------

/// Bytes taken by n elements of type t; n must be a multiple of the block size (checked).
[[nodiscard]] inline std::size_t ggml_nbytes(GgmlType t, std::size_t n) {
  SPARQ_CHECK(ggml_type_supported(static_cast<std::uint32_t>(t)), "ggml: unsupported type ",
              static_cast<std::uint32_t>(t), ", expected one of ", ggml_type_list());
  const std::size_t be = ggml_block_elems(t);
  SPARQ_CHECK(n % be == 0, "ggml ", ggml_type_name(t), ": ", n, " elements is not a multiple of the block size ", be);
  return n / be * ggml_block_bytes(t);
}

namespace detail {
/// Applies f(block, y) to each of the n / QK blocks of `in` (any alignment).
template <class Block, std::size_t QK, class F>
void for_each_block_in(const char* in, std::size_t n, float* y, F f) {
  for (std::size_t b = 0; b < n / QK; ++b) {
    Block blk;
    std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
    f(blk, y + b * QK);
  }
}
/// Writes f(x, block) for each of the n / QK blocks of x into `out` (any alignment).
template <class Block, std::size_t QK, class F>
void for_each_block_out(const float* x, std::size_t n, char* out, F f) {
  for (std::size_t b = 0; b < n / QK; ++b) {
    Block blk;
    f(x + b * QK, blk);
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}
}  // namespace detail

/// Encodes n finite floats as type t into `out` (ggml_nbytes(t, n) bytes, any alignment).
/// Throws sparq::error on a non-finite value, a length that is not a multiple of the block, or a
/// decode-only type (Q2_K, Q3_K, Q5_K, IQ4_NL).
inline void ggml_encode(GgmlType t, const float* x, std::size_t n, char* out) {
  (void)ggml_nbytes(t, n);
  SPARQ_CHECK(ggml_type_encodable(t), "ggml_encode: type ", ggml_type_name(t), " (", static_cast<std::uint32_t>(t),
              ") is decode-only, expected one of ", ggml_type_list(true));
  check_finite(x, n, "ggml_encode input");
  switch (t) {
    case GgmlType::F32: std::memcpy(out, x, n * 4); return;
    case GgmlType::F16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t h = float_to_fp16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t h = float_to_bf16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q8_0:
      return detail::for_each_block_out<BlockQ8_0, ggml_qk>(x, n, out, [](const float* v, BlockQ8_0& b) { quantize_block_q8_0(v, b); });
    case GgmlType::Q4_0:
      return detail::for_each_block_out<BlockQ4_0, ggml_qk>(x, n, out, [](const float* v, BlockQ4_0& b) { quantize_block_q4_0(v, b); });
    case GgmlType::Q4_1:
      return detail::for_each_block_out<BlockQ4_1, ggml_qk>(x, n, out, [](const float* v, BlockQ4_1& b) { quantize_block_q4_1(v, b); });
    case GgmlType::Q5_0:
      return detail::for_each_block_out<BlockQ5_0, ggml_qk>(x, n, out, [](const float* v, BlockQ5_0& b) { quantize_block_q5_0(v, b); });
    case GgmlType::Q5_1:
      return detail::for_each_block_out<BlockQ5_1, ggml_qk>(x, n, out, [](const float* v, BlockQ5_1& b) { quantize_block_q5_1(v, b); });
    case GgmlType::Q4_K:
      return detail::for_each_block_out<BlockQ4_K, ggml_qk_k>(x, n, out, [](const float* v, BlockQ4_K& b) { quantize_block_q4_k(v, b); });
    case GgmlType::Q6_K:
      return detail::for_each_block_out<BlockQ6_K, ggml_qk_k>(x, n, out, [](const float* v, BlockQ6_K& b) { quantize_block_q6_k(v, b); });
    default: break;
  }
  sparq::detail::fail("ggml_encode: type ", ggml_type_name(t), " (", static_cast<std::uint32_t>(t), ") has no encoder");
}

/// Decodes n elements of type t from `in` (ggml_nbytes(t, n) bytes, any alignment) into floats.
inline void ggml_decode(GgmlType t, const char* in, std::size_t n, float* y) {
  (void)ggml_nbytes(t, n);
  switch (t) {
    case GgmlType::F32: std::memcpy(y, in, n * 4); return;
    case GgmlType::F16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        y[i] = fp16_to_float(h);
      }
      return;
    case GgmlType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, in + 2 * i, 2);
        y[i] = bf16_to_float(h);
      }
      return;
    case GgmlType::Q8_0:
      return detail::for_each_block_in<BlockQ8_0, ggml_qk>(in, n, y, [](const BlockQ8_0& b, float* v) { dequantize_block_q8_0(b, v); });
    case GgmlType::Q4_0:
      return detail::for_each_block_in<BlockQ4_0, ggml_qk>(in, n, y, [](const BlockQ4_0& b, float* v) { dequantize_block_q4_0(b, v); });
    case GgmlType::Q4_1:
      return detail::for_each_block_in<BlockQ4_1, ggml_qk>(in, n, y, [](const BlockQ4_1& b, float* v) { dequantize_block_q4_1(b, v); });
    case GgmlType::Q5_0:
      return detail::for_each_block_in<BlockQ5_0, ggml_qk>(in, n, y, [](const BlockQ5_0& b, float* v) { dequantize_block_q5_0(b, v); });
    case GgmlType::Q5_1:
      return detail::for_each_block_in<BlockQ5_1, ggml_qk>(in, n, y, [](const BlockQ5_1& b, float* v) { dequantize_block_q5_1(b, v); });
    case GgmlType::IQ4_NL:
      return detail::for_each_block_in<BlockIQ4_NL, ggml_qk>(in, n, y, [](const BlockIQ4_NL& b, float* v) { dequantize_block_iq4_nl(b, v); });
    case GgmlType::Q2_K:
      return detail::for_each_block_in<BlockQ2_K, ggml_qk_k>(in, n, y, [](const BlockQ2_K& b, float* v) { dequantize_block_q2_k(b, v); });
    case GgmlType::Q3_K:
      return detail::for_each_block_in<BlockQ3_K, ggml_qk_k>(in, n, y, [](const BlockQ3_K& b, float* v) { dequantize_block_q3_k(b, v); });
    case GgmlType::Q4_K:
      return detail::for_each_block_in<BlockQ4_K, ggml_qk_k>(in, n, y, [](const BlockQ4_K& b, float* v) { dequantize_block_q4_k(b, v); });
    case GgmlType::Q5_K:
      return detail::for_each_block_in<BlockQ5_K, ggml_qk_k>(in, n, y, [](const BlockQ5_K& b, float* v) { dequantize_block_q5_k(b, v); });
    case GgmlType::Q6_K:
      return detail::for_each_block_in<BlockQ6_K, ggml_qk_k>(in, n, y, [](const BlockQ6_K& b, float* v) { dequantize_block_q6_k(b, v); });
  }
  sparq::detail::fail("ggml_decode: unsupported type ", static_cast<std::uint32_t>(t), ", expected one of ", ggml_type_list());
}

}  // namespace sparq::io
