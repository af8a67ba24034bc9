// FP8 E4M3 (OCP 8-bit floating point, "E4M3FN"): bit-exact encode/decode.
//
// Layout S.EEEE.MMM, exponent bias 7. E = 0: subnormal (−1)^S · M/8 · 2^−6. E = 1..15: normal
// (−1)^S · (1 + M/8) · 2^(E−7), except S.1111.111 which is NaN (the only NaN; no infinities).
// Largest finite magnitude 1.75 · 2^8 = 448 (code 0x7E), smallest subnormal 2^−9.
// Encoding rounds to nearest, ties to even mantissa, and saturates: |x| ≥ 448 (after rounding)
// gives ±448. NaN encodes to S.1111.111 with the input's sign; −0 encodes to 0x80. Hence
// encode(decode(c)) == c for all 256 codes.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace sparq::fp8 {

inline constexpr float e4m3_max = 448.0f;

namespace detail {
constexpr float pow2(int e) noexcept {
  float r = 1.0f;
  for (; e > 0; --e) r *= 2.0f;
  for (; e < 0; ++e) r *= 0.5f;
  return r;
}
}  // namespace detail

/// Value of every E4M3 code (NaN codes 0x7F and 0xFF hold quiet NaNs with their sign).
inline const std::array<float, 256> e4m3_table = [] {
  std::array<float, 256> t{};
  for (unsigned c = 0; c < 256; ++c) {
    const unsigned e = (c >> 3) & 15u, m = c & 7u;
    float mag;
    if ((c & 0x7Fu) == 0x7Fu) {
      mag = std::numeric_limits<float>::quiet_NaN();
    } else if (e == 0) {
      mag = static_cast<float>(m) * detail::pow2(-9);
    } else {
      mag = (1.0f + static_cast<float>(m) * 0.125f) * detail::pow2(static_cast<int>(e) - 7);
    }
    t[c] = (c & 0x80u) ? -mag : mag;
  }
  return t;
}();

/// Decodes one E4M3 code.
[[nodiscard]] inline float decode_e4m3(std::uint8_t c) noexcept { return e4m3_table[c]; }

/// Encodes x to E4M3: round half to even, saturating at ±448, NaN → S.1111.111.
/// Normal range: the float32 bits are rounded to 3 mantissa bits (add 2^19 − 1 plus the lowest kept
/// bit, then truncate: round half to even), and the exponent is re-biased from 127 to 7.
[[nodiscard]] inline std::uint8_t encode_e4m3(float x) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint8_t sign = static_cast<std::uint8_t>((bits >> 24) & 0x80u);
  const std::uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7F);  // NaN
  if (abs >= 0x43E00000u) return static_cast<std::uint8_t>(sign | 0x7E);  // ≥ 448 (and Inf)
  std::uint32_t code;
  if (abs < 0x3C800000u) {
    // |x| < 2^-6: subnormal grid step 2^-9 (exact scaling); a code of 8 is the smallest normal.
    code = static_cast<std::uint32_t>(std::nearbyint(std::bit_cast<float>(abs) * detail::pow2(9)));
  } else {
    const std::uint32_t r = abs + 0x7FFFFu + ((abs >> 20) & 1u);
    code = (r >> 20) - (120u << 3);  // exponent 127 − 7 = 120 re-biased; mantissa carries over
  }
  if (code > 0x7Eu) code = 0x7Eu;  // rounding up past 448 saturates
  return static_cast<std::uint8_t>(sign | code);
}

}  // namespace sparq::fp8
