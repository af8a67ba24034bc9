// IEEE fp16 (binary16) and bfloat16 conversion with round-to-nearest-even; NaN/Inf preserved.
#pragma once

#include <bit>
#include <cstdint>

namespace sparq {

/// binary16 -> binary32. Exact for every pattern; NaN payloads are kept bit for bit (a signalling
/// NaN stays signalling), so fp16 -> float -> fp16 is the identity on all 65536 patterns.
[[nodiscard]] constexpr float fp16_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1fu) {
    bits = sign | 0x7f800000u | (mant << 13);  // Inf, or NaN with the same payload
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // signed zero
    } else {      // subnormal: normalise
      std::uint32_t e = 113;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
      }
      bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
    }
  } else {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

/// binary32 -> binary16, round to nearest, ties to even (as the F16C instruction in its default
/// mode). Overflow (|x| >= 65520) gives Inf; NaN stays NaN (payload truncated, quiet bit set if
/// the truncated payload would be empty), sign kept.
[[nodiscard]] constexpr std::uint16_t float_to_fp16(float f) noexcept {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {
    if (x == 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
    std::uint32_t payload = (x >> 13) & 0x3ffu;
    if (payload == 0) payload = 0x200u;
    return static_cast<std::uint16_t>(sign | 0x7c00u | payload);
  }
  if (x >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to Inf
  if (x < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (x <= 0x33000000u) return sign;  // <= 2^-25: ties to even go to zero
    const std::uint32_t mant = (x & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - (x >> 23);
    std::uint32_t r = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<std::uint16_t>(sign | r);
  }
  std::uint32_t h = (x - 0x38000000u) >> 13;  // re-bias the exponent by 127 - 15
  const std::uint32_t rem = x & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry may reach Inf: correct
  return static_cast<std::uint16_t>(sign | h);
}

/// bfloat16 -> binary32 (exact: the top 16 bits).
[[nodiscard]] constexpr float bf16_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// binary32 -> bfloat16, round to nearest, ties to even; NaN stays NaN (quiet bit set).
[[nodiscard]] constexpr std::uint16_t float_to_bf16(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  const std::uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

/// Rounds a float to the nearest bf16 value and back (for "bf16-compat" arithmetic).
[[nodiscard]] constexpr float round_to_bf16(float f) noexcept { return bf16_to_float(float_to_bf16(f)); }

/// Rounds a float to the nearest fp16 value and back.
[[nodiscard]] constexpr float round_to_fp16(float f) noexcept { return fp16_to_float(float_to_fp16(f)); }

/// Storage types with explicit conversions, for buffers whose element type must say what it holds.
struct f16 {
  std::uint16_t bits = 0;
  constexpr f16() noexcept = default;
  constexpr explicit f16(float f) noexcept : bits(float_to_fp16(f)) {}
  [[nodiscard]] static constexpr f16 from_bits(std::uint16_t b) noexcept {
    f16 h;
    h.bits = b;
    return h;
  }
  [[nodiscard]] constexpr explicit operator float() const noexcept { return fp16_to_float(bits); }
};

struct bf16 {
  std::uint16_t bits = 0;
  constexpr bf16() noexcept = default;
  constexpr explicit bf16(float f) noexcept : bits(float_to_bf16(f)) {}
  [[nodiscard]] static constexpr bf16 from_bits(std::uint16_t b) noexcept {
    bf16 h;
    h.bits = b;
    return h;
  }
  [[nodiscard]] constexpr explicit operator float() const noexcept { return bf16_to_float(bits); }
};

static_assert(sizeof(f16) == 2 && sizeof(bf16) == 2);

}  // namespace sparq
