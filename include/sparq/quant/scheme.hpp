// Quantization schemes: the QuantScheme concept and the tags Symmetric, Asymmetric, NF4, FP8E4M3.
//
// Every scheme maps a real value x to a code and back through one positive scale per group:
//
//   Symmetric  (integer, b bits)  real = scale · q,              q ∈ [−2^(b−1), 2^(b−1) − 1]
//       restricted range (default, JSQ/SmoothQuant, docs/algorithms.md#w8a8): q ∈ [−qmax, qmax], qmax = 2^(b−1) − 1,
//       scale = max(absmax, 1e−5) / qmax.
//       full range (QuantOptions::full_range, docs/algorithms.md#gptq-grid): q ∈ [−2^(b−1), 2^(b−1) − 1],
//       scale = 2·absmax / (2^b − 1) (absmax 0 → 1 as the degenerate range [−1, 1]),
//       i.e. GPTQ's grid with the zero point fixed at (maxq + 1)/2 = 2^(b−1).
//   Asymmetric (integer, b bits)  real = scale · (u − zero),     u, zero ∈ [0, 2^b − 1]
//       docs/algorithms.md#gptq-grid: xmin = min(min x, 0), xmax = max(max x, 0) (the range always holds 0, so an
//       exact 0 quantizes to exactly 0), degenerate xmin = xmax = 0 → [−1, 1],
//       scale = (xmax − xmin)/(2^b − 1), zero = round(−xmin / scale).
//   NF4        (4 bits)           real = scale · NF4_LEVELS[u],  scale = absmax (0 → 1)
//   FP8E4M3    (8 bits)           real = scale · e4m3(u),        scale = absmax / 448 (0 → 1)
//
// Rounding is round-half-to-even (std::nearbyint) everywhere. Codes are computed as
// nearbyint(clamp(x · inv, lo, hi)) with inv = 1/scale rounded to float once per group (a multiply,
// not a division: x·(1/scale) can differ from x/scale by one code on exact ties, which is within the
// half-step error bound and identical in the scalar and SIMD paths).
#pragma once

#include <concepts>
#include <cstdint>

namespace sparq {

/// Run-time identity of a scheme (QuantConfig, QuantizedTensor).
enum class SchemeKind : std::uint8_t { symmetric, asymmetric, nf4, fp8_e4m3 };

/// A quantization scheme tag: its kind, a short name, whether it is an integer grid, and its fixed
/// bit width (0 when the width is a template/run-time parameter).
template <class S>
concept QuantScheme = requires {
  { S::kind } -> std::convertible_to<SchemeKind>;
  { S::name } -> std::convertible_to<const char*>;
  { S::is_integer } -> std::convertible_to<bool>;
  { S::fixed_bits } -> std::convertible_to<unsigned>;
};

/// Integer grid symmetric around 0, no zero point (stored as offset binary, see QuantizedTensor).
struct Symmetric {
  static constexpr SchemeKind kind = SchemeKind::symmetric;
  static constexpr const char* name = "sym";
  static constexpr bool is_integer = true;
  static constexpr unsigned fixed_bits = 0;
};
static_assert(QuantScheme<Symmetric>);

/// Integer grid with an integer zero point in [0, 2^b − 1].
struct Asymmetric {
  static constexpr SchemeKind kind = SchemeKind::asymmetric;
  static constexpr const char* name = "asym";
  static constexpr bool is_integer = true;
  static constexpr unsigned fixed_bits = 0;
};
static_assert(QuantScheme<Asymmetric>);

/// QLoRA's 4-bit NormalFloat: 16 levels (quantiles of N(0,1), exact 0), absmax-scaled.
struct NF4 {
  static constexpr SchemeKind kind = SchemeKind::nf4;
  static constexpr const char* name = "nf4";
  static constexpr bool is_integer = false;
  static constexpr unsigned fixed_bits = 4;
};
static_assert(QuantScheme<NF4>);

/// OCP 8-bit float E4M3 (bias 7, no infinities, max 448), saturating, round-half-to-even.
struct FP8E4M3 {
  static constexpr SchemeKind kind = SchemeKind::fp8_e4m3;
  static constexpr const char* name = "fp8";
  static constexpr bool is_integer = false;
  static constexpr unsigned fixed_bits = 8;
};
static_assert(QuantScheme<FP8E4M3>);

/// Short name of a scheme kind ("sym", "asym", "nf4", "fp8").
[[nodiscard]] constexpr const char* scheme_name(SchemeKind k) noexcept {
  switch (k) {
    case SchemeKind::symmetric: return "sym";
    case SchemeKind::asymmetric: return "asym";
    case SchemeKind::nf4: return "nf4";
    case SchemeKind::fp8_e4m3: return "fp8";
  }
  return "?";
}

}  // namespace sparq
