// QuantConfig (scheme, granularity, bits, calibrator as run-time values) and QuantOptions.
#pragma once

#include <cmath>
#include <cstddef>

#include "sparq/core/error.hpp"
#include "sparq/quant/calibrator.hpp"
#include "sparq/quant/granularity.hpp"
#include "sparq/quant/scheme.hpp"

namespace sparq {

/// Knobs shared by every Quantizer; each is ignored where it does not apply.
struct QuantOptions {
  /// Symmetric only: GPTQ's full grid [−2^(b−1), 2^(b−1)−1] with scale 2·absmax/(2^b−1) instead of
  /// the restricted [−qmax, qmax] with scale max(absmax, 1e−5)/qmax.
  bool full_range = false;
  /// PerGroup only: allow cols % G != 0; the last group of each row is then shorter (cols % G).
  bool tail_group = false;
  /// MseClip: number of grid steps, fraction of them searched, error exponent (GPTQ defaults).
  int mse_grid = 100;
  float mse_maxshrink = 0.8f;
  float mse_norm = 2.4f;
  /// Percentile: clip at this percentile of |x| (0 < p ≤ 100).
  float percentile = 99.9f;
};

/// True for the integer bit widths sparq supports: 2, 3, 4, 5, 6, 8.
[[nodiscard]] constexpr bool is_supported_int_bits(int bits) noexcept {
  return bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
}

/// A quantizer described by run-time values (what Quantizer<...> compiles down to).
struct QuantConfig {
  SchemeKind scheme = SchemeKind::symmetric;
  GranularityKind granularity = GranularityKind::per_channel;
  std::size_t group_size = 0;  ///< PerGroup only: G > 0
  int bits = 8;
  CalibratorKind calibrator = CalibratorKind::minmax;
  QuantOptions options{};

  /// Throws sparq::error naming the first invalid value.
  void validate() const {
    switch (scheme) {
      case SchemeKind::symmetric:
      case SchemeKind::asymmetric:
        SPARQ_CHECK(is_supported_int_bits(bits), "QuantConfig: bits = ", bits, " for the ",
                    scheme_name(scheme), " scheme, expected one of 2, 3, 4, 5, 6, 8");
        break;
      case SchemeKind::nf4:
        SPARQ_CHECK(bits == 4, "QuantConfig: bits = ", bits, " for NF4, expected 4");
        break;
      case SchemeKind::fp8_e4m3:
        SPARQ_CHECK(bits == 8, "QuantConfig: bits = ", bits, " for FP8E4M3, expected 8");
        break;
      default:
        detail::fail("QuantConfig: unknown scheme ", static_cast<int>(scheme));
    }
    if (granularity == GranularityKind::per_group) {
      SPARQ_CHECK(group_size > 0, "QuantConfig: group size G = ", group_size,
                  " for PerGroup, expected G > 0");
    } else {
      SPARQ_CHECK(granularity == GranularityKind::per_tensor ||
                      granularity == GranularityKind::per_channel ||
                      granularity == GranularityKind::per_token,
                  "QuantConfig: unknown granularity ", static_cast<int>(granularity));
    }
    SPARQ_CHECK(calibrator == CalibratorKind::minmax || calibrator == CalibratorKind::mse_clip ||
                    calibrator == CalibratorKind::percentile,
                "QuantConfig: unknown calibrator ", static_cast<int>(calibrator));
    if (calibrator == CalibratorKind::mse_clip) {
      SPARQ_CHECK(options.mse_grid > 0 && options.mse_grid <= 100000, "QuantOptions: mse_grid = ",
                  options.mse_grid, ", expected 1..100000");
      SPARQ_CHECK(std::isfinite(options.mse_maxshrink) && options.mse_maxshrink > 0.0f &&
                      options.mse_maxshrink <= 1.0f,
                  "QuantOptions: mse_maxshrink = ", options.mse_maxshrink, ", expected (0, 1]");
      SPARQ_CHECK(std::isfinite(options.mse_norm) && options.mse_norm > 0.0f,
                  "QuantOptions: mse_norm = ", options.mse_norm, ", expected a positive exponent");
    }
    if (calibrator == CalibratorKind::percentile) {
      SPARQ_CHECK(std::isfinite(options.percentile) && options.percentile > 0.0f &&
                      options.percentile <= 100.0f,
                  "QuantOptions: percentile = ", options.percentile, ", expected (0, 100]");
    }
  }

  /// Scales per row for a row of `cols` inputs (1 unless PerGroup). Throws if cols % G != 0
  /// without QuantOptions::tail_group.
  [[nodiscard]] std::size_t groups_per_row(std::size_t cols) const {
    if (granularity != GranularityKind::per_group) return 1;
    SPARQ_CHECK(group_size > 0, "QuantConfig: group size G = ", group_size, ", expected G > 0");
    SPARQ_CHECK(options.tail_group || cols % group_size == 0, "PerGroup<", group_size,
                ">: row length ", cols, " is not a multiple of the group size ", group_size,
                " (cols % G = ", cols % group_size,
                "); set QuantOptions::tail_group = true to allow a shorter last group");
    return (cols + group_size - 1) / group_size;
  }

  /// Elements sharing one scale along a row (cols for per-row/per-tensor granularities).
  [[nodiscard]] std::size_t row_group(std::size_t cols) const noexcept {
    return granularity == GranularityKind::per_group ? group_size : cols;
  }

  /// Bytes of one packed row: ceil(cols · bits / 8).
  [[nodiscard]] std::size_t row_bytes(std::size_t cols) const noexcept {
    return (cols * static_cast<std::size_t>(bits) + 7) / 8;
  }
};

}  // namespace sparq
