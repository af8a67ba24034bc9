// Range calibrators: the RangeCalibrator concept and MinMax, MseClip, Percentile.
//
// A calibrator chooses the range each group's scale covers:
//   MinMax      the full range of the group (absmax, or min/max for Asymmetric).
//   MseClip     GPTQ's MSE search (docs/algorithms.md#mse-clip-search): for
//               i = 0 .. floor(maxshrink·grid) − 1, shrink the MinMax range by
//               p = 1 − i/grid (both bounds), recompute scale (and zero for Asymmetric; Symmetric
//               keeps its fixed zero) and keep the candidate with the smallest Σ |x̂ − x|^norm
//               (defaults grid 100, maxshrink 0.8, norm 2.4: QuantOptions). Candidate i = 0 is
//               MinMax, and ties keep the earlier candidate, so MseClip is never worse than MinMax on
//               that objective.
//   Percentile  clip at the P-th percentile of |x| in the group (QuantOptions::percentile, default
//               99.9; nearest rank: the ceil(P/100 · n)-th smallest |x|): absmax → c, or for
//               Asymmetric min → max(min, −c), max → min(max, c).
#pragma once

#include <concepts>
#include <cstdint>

namespace sparq {

/// Run-time identity of a calibrator.
enum class CalibratorKind : std::uint8_t { minmax, mse_clip, percentile };

/// A range calibrator tag.
template <class C>
concept RangeCalibrator = requires {
  { C::kind } -> std::convertible_to<CalibratorKind>;
  { C::name } -> std::convertible_to<const char*>;
};

struct MinMax {
  static constexpr CalibratorKind kind = CalibratorKind::minmax;
  static constexpr const char* name = "minmax";
};
static_assert(RangeCalibrator<MinMax>);

struct MseClip {
  static constexpr CalibratorKind kind = CalibratorKind::mse_clip;
  static constexpr const char* name = "mse";
};
static_assert(RangeCalibrator<MseClip>);

struct Percentile {
  static constexpr CalibratorKind kind = CalibratorKind::percentile;
  static constexpr const char* name = "percentile";
};
static_assert(RangeCalibrator<Percentile>);

/// Short name of a calibrator kind.
[[nodiscard]] constexpr const char* calibrator_name(CalibratorKind k) noexcept {
  switch (k) {
    case CalibratorKind::minmax: return "minmax";
    case CalibratorKind::mse_clip: return "mse";
    case CalibratorKind::percentile: return "percentile";
  }
  return "?";
}

}  // namespace sparq
