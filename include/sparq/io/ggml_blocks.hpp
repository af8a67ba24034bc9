// GgmlType and the ggml block layouts sparq reads and writes in GGUF: F32, F16, BF16, Q8_0, Q4_0.
//
// Block formats (each block covers 32 consecutive elements of a row, ne0 % 32 == 0):
//   Q8_0, 34 bytes: fp16 d, then int8 q[32];            x[j] = d * q[j].
//   Q4_0, 18 bytes: fp16 d, then uint8 qs[16];          x[j] = d * (lo(qs[j]) - 8),
//                                                        x[j + 16] = d * (hi(qs[j]) - 8), j < 16,
//                   lo = low nibble, hi = high nibble: element j and element j+16 share byte j.
// Quantizers follow ggml's reference (scalar) quantizers, so the codes are the ones llama.cpp's
// `quantize` would produce from the same floats:
//   Q8_0: amax = max|x|, d = amax / 127, id = d ? 1/d : 0, q = roundf(x * id) (ties away from
//         zero, as C roundf: ggml's choice, kept for byte compatibility), d stored as fp16.
//   Q4_0: m = the element of largest |x| with its sign (first one on ties), d = m / -8,
//         id = d ? 1/d : 0, q = min(15, trunc(x * id + 8.5)), d stored as fp16. The extreme value
//         m maps to q = 0 exactly; the opposite end of the range can reach 16, clamped to 15.
//         x * id is rounded to float before 8.5 is added (never fused into an FMA), so every
//         build (with or without -mfma) writes the same codes.
// Dequantization uses the fp16-rounded d, so |x - x̂| <= d/2 + |q - z| * |d - fp16(d)| for values
// inside the representable range (z = 0 for Q8_0, 8 for Q4_0).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"

namespace sparq::io {

/// ggml tensor type codes (the values stored in GGUF tensor infos). Only those sparq converts are
/// named; other codes are rejected by the reader with their number.
enum class GgmlType : std::uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, BF16 = 30 };

inline constexpr std::size_t ggml_qk = 32;  ///< elements per Q8_0 / Q4_0 block

struct BlockQ8_0 {
  std::uint16_t d;    ///< fp16 scale
  std::int8_t qs[32];
};
struct BlockQ4_0 {
  std::uint16_t d;    ///< fp16 scale
  std::uint8_t qs[16];  ///< byte j: element j in the low nibble, element j+16 in the high nibble
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "ggml block sizes");

/// True for the type codes sparq can read.
[[nodiscard]] constexpr bool ggml_type_supported(std::uint32_t t) noexcept {
  return t == 0 || t == 1 || t == 2 || t == 8 || t == 30;
}

[[nodiscard]] constexpr const char* ggml_type_name(GgmlType t) noexcept {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::BF16: return "BF16";
  }
  return "?";
}

/// Elements per block (1 for the float types).
[[nodiscard]] constexpr std::size_t ggml_block_elems(GgmlType t) noexcept {
  return (t == GgmlType::Q4_0 || t == GgmlType::Q8_0) ? ggml_qk : 1;
}

/// Bytes per block.
[[nodiscard]] constexpr std::size_t ggml_block_bytes(GgmlType t) noexcept {
  switch (t) {
    case GgmlType::F32: return 4;
    case GgmlType::F16: return 2;
    case GgmlType::BF16: return 2;
    case GgmlType::Q4_0: return sizeof(BlockQ4_0);
    case GgmlType::Q8_0: return sizeof(BlockQ8_0);
  }
  return 0;
}

/// Quantizes one block of 32 floats to Q8_0 (ggml reference rounding). x must be finite.
inline void quantize_block_q8_0(const float* x, BlockQ8_0& b) noexcept {
  float amax = 0.0f;
  for (std::size_t j = 0; j < ggml_qk; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = float_to_fp16(d);
  for (std::size_t j = 0; j < ggml_qk; ++j) b.qs[j] = static_cast<std::int8_t>(std::roundf(x[j] * id));
}

namespace detail {
/// a * b rounded to float before it is used: compilers otherwise fuse `a * b + c` into one FMA
/// when FMA is enabled, which moves ties and would make FMA and non-FMA builds write different
/// Q4_0 codes. The empty asm makes the rounded product opaque to the optimizer.
[[nodiscard]] inline float mul_unfused(float a, float b) noexcept {
  float p = a * b;
#if defined(__GNUC__)
  __asm__("" : "+m"(p));
#endif
  return p;
}
}  // namespace detail

/// Quantizes one block of 32 floats to Q4_0 (ggml reference rule, see the file comment).
inline void quantize_block_q4_0(const float* x, BlockQ4_0& b) noexcept {
  float amax = 0.0f, m = 0.0f;
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      m = x[j];
    }
  }
  const float d = m / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = float_to_fp16(d);
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) {
    const float v0 = detail::mul_unfused(x[j], id) + 8.5f;
    const float v1 = detail::mul_unfused(x[j + 16], id) + 8.5f;
    const auto q0 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(v0)));
    const auto q1 = static_cast<std::uint8_t>(std::min(15, static_cast<int>(v1)));
    b.qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
  }
}

inline void dequantize_block_q8_0(const BlockQ8_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < ggml_qk; ++j) y[j] = d * static_cast<float>(b.qs[j]);
}

inline void dequantize_block_q4_0(const BlockQ4_0& b, float* y) noexcept {
  const float d = fp16_to_float(b.d);
  for (std::size_t j = 0; j < ggml_qk / 2; ++j) {
    y[j] = d * static_cast<float>((b.qs[j] & 0x0f) - 8);
    y[j + 16] = d * static_cast<float>((b.qs[j] >> 4) - 8);
  }
}

/// Bytes taken by n elements of type t; n must be a multiple of the block size (checked).
[[nodiscard]] inline std::size_t ggml_nbytes(GgmlType t, std::size_t n) {
  const std::size_t be = ggml_block_elems(t);
  SPARQ_CHECK(n % be == 0, "ggml ", ggml_type_name(t), ": ", n, " elements is not a multiple of the block size ", be);
  return n / be * ggml_block_bytes(t);
}

/// Encodes n finite floats as type t into `out` (ggml_nbytes(t, n) bytes, any alignment).
/// Throws sparq::error on a non-finite value or a length that is not a multiple of the block.
inline void ggml_encode(GgmlType t, const float* x, std::size_t n, char* out) {
  const std::size_t nbytes = ggml_nbytes(t, n);
  (void)nbytes;
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
      for (std::size_t b = 0; b < n / ggml_qk; ++b) {
        BlockQ8_0 blk;
        quantize_block_q8_0(x + b * ggml_qk, blk);
        std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
      }
      return;
    case GgmlType::Q4_0:
      for (std::size_t b = 0; b < n / ggml_qk; ++b) {
        BlockQ4_0 blk;
        quantize_block_q4_0(x + b * ggml_qk, blk);
        std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
      }
      return;
  }
  sparq::detail::fail("ggml_encode: unsupported type ", static_cast<std::uint32_t>(t));
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
      for (std::size_t b = 0; b < n / ggml_qk; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
        dequantize_block_q8_0(blk, y + b * ggml_qk);
      }
      return;
    case GgmlType::Q4_0:
      for (std::size_t b = 0; b < n / ggml_qk; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, in + b * sizeof blk, sizeof blk);
        dequantize_block_q4_0(blk, y + b * ggml_qk);
      }
      return;
  }
  sparq::detail::fail("ggml_decode: unsupported type ", static_cast<std::uint32_t>(t));
}

}  // namespace sparq::io
