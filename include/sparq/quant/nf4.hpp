// NF4: QLoRA's 16 NormalFloat levels, nearest-level encoding and decoding.
//
// Definition (Dettmers et al. 2023, "QLoRA", create_normal_map with offset δ = 0.9677083 =
// 1 − (1/32 + 1/30)/2): with Φ⁻¹ the N(0,1) quantile function,
//   8 positive levels  Φ⁻¹(δ + k(0.5 − δ)/8),  k = 0..7   (the last linspace point 0.5 is dropped)
//   7 negative levels −Φ⁻¹(δ + k(0.5 − δ)/7),  k = 0..6
//   and an exact 0;  all divided by Φ⁻¹(δ), sorted ascending. Code u ∈ [0, 15] indexes the table,
//   u = 7 is exactly 0, u = 0 is −1, u = 15 is +1. tests/quant derives the table from this
// definition with its own inverse normal CDF.
// Encoding picks the nearest level of v = x · (1/absmax) clamped to [−1, 1]; a tie (v exactly on a
// midpoint of two levels, midpoints rounded to float) goes to the even code.
#pragma once

#include <array>
#include <cstdint>

namespace sparq::nf4 {

/// The 16 NF4 levels, ascending (float32 values of the QLoRA table).
inline constexpr std::array<float, 16> levels = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f};

/// Code of the exact zero level.
inline constexpr std::uint8_t zero_code = 7;

/// Midpoints between consecutive levels (float), the decision thresholds of encode().
inline constexpr std::array<float, 15> midpoints = [] {
  std::array<float, 15> m{};
  for (std::size_t i = 0; i < 15; ++i) m[i] = (levels[i] + levels[i + 1]) * 0.5f;
  return m;
}();

/// Nearest NF4 code of a normalised value v (clamped to [−1, 1]); ties go to the even code.
[[nodiscard]] constexpr std::uint8_t encode(float v) noexcept {
  unsigned idx = 0;
  for (unsigned k = 0; k < 15; ++k) idx += midpoints[k] < v ? 1u : 0u;
  if (idx < 15 && v == midpoints[idx] && (idx & 1u)) ++idx;  // tie between idx and idx+1
  return static_cast<std::uint8_t>(idx);
}

/// Level of code u (only the low 4 bits are used).
[[nodiscard]] constexpr float decode(std::uint8_t u) noexcept { return levels[u & 15u]; }

}  // namespace sparq::nf4
