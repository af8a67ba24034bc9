// QuantParams: the fitted scales and zero points of one matrix, with the code range they imply.
//
//   real value  x̂ = scale · (u − zero)   for integer schemes, u the stored unsigned code;
//   symmetric schemes have the fixed zero 2^(b−1) (offset binary), asymmetric ones a uint8 zero
//   per scale; NF4: x̂ = scale · nf4::levels[u]; FP8E4M3: x̂ = scale · e4m3(u).
// Scales are float32, row-major [scale_rows × groups_per_row]: scale_rows = rows (1 for
// PerTensor), groups_per_row = ceil(cols / G) for PerGroup<G> and 1 otherwise. Zero points
// (Asymmetric only) are uint8 with the same shape; other schemes keep `zeros` empty.
// Invariants (checked by validate()): every scale is finite and ≥ FLT_MIN (so 1/scale is finite),
// every zero ≤ 2^b − 1.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/quant/quant_config.hpp"

namespace sparq {

struct QuantParams {
  QuantConfig config{};
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t groups_per_row = 0;   ///< scales per row
  std::vector<float> scales;        ///< [scale_rows() × groups_per_row]
  std::vector<std::uint8_t> zeros;  ///< Asymmetric: same shape as scales; empty otherwise

  /// Allocates scales (and zeros) for a rows × cols matrix under `cfg` (validated).
  [[nodiscard]] static QuantParams make(const QuantConfig& cfg, std::size_t rows, std::size_t cols) {
    cfg.validate();
    SPARQ_CHECK(rows > 0 && cols > 0, "QuantParams: empty matrix ", rows, "x", cols,
                " (expected at least one row and one column)");
    QuantParams p;
    p.config = cfg;
    p.rows = rows;
    p.cols = cols;
    p.groups_per_row = cfg.groups_per_row(cols);
    p.scales.assign(p.scale_rows() * p.groups_per_row, 1.0f);
    if (cfg.scheme == SchemeKind::asymmetric) p.zeros.assign(p.scales.size(), 0);
    return p;
  }

  [[nodiscard]] std::size_t scale_rows() const noexcept {
    return config.granularity == GranularityKind::per_tensor ? 1 : rows;
  }
  /// Elements of a row that share one scale (the last group of a row may be shorter).
  [[nodiscard]] std::size_t group() const noexcept { return config.row_group(cols); }
  [[nodiscard]] int bits() const noexcept { return config.bits; }
  /// Largest stored code 2^b − 1.
  [[nodiscard]] int maxq() const noexcept { return (1 << config.bits) - 1; }

  /// Scales (zeros) of row r: groups_per_row values (the shared one for PerTensor).
  [[nodiscard]] const float* row_scales(std::size_t r) const noexcept {
    return scales.data() + (config.granularity == GranularityKind::per_tensor ? 0 : r * groups_per_row);
  }
  [[nodiscard]] float* row_scales(std::size_t r) noexcept {
    return scales.data() + (config.granularity == GranularityKind::per_tensor ? 0 : r * groups_per_row);
  }
  [[nodiscard]] const std::uint8_t* row_zeros(std::size_t r) const noexcept {
    if (zeros.empty()) return nullptr;
    return zeros.data() + (config.granularity == GranularityKind::per_tensor ? 0 : r * groups_per_row);
  }
  [[nodiscard]] std::uint8_t* row_zeros(std::size_t r) noexcept {
    if (zeros.empty()) return nullptr;
    return zeros.data() + (config.granularity == GranularityKind::per_tensor ? 0 : r * groups_per_row);
  }

  /// Scale and zero of element (r, c).
  [[nodiscard]] float scale_at(std::size_t r, std::size_t c) const {
    check_index(r, c);
    return row_scales(r)[c / group()];
  }
  [[nodiscard]] int zero_at(std::size_t r, std::size_t c) const {
    check_index(r, c);
    if (config.scheme == SchemeKind::asymmetric) return row_zeros(r)[c / group()];
    return symmetric_zero();
  }

  /// The fixed zero of integer symmetric codes (offset binary): 2^(b−1).
  [[nodiscard]] int symmetric_zero() const noexcept { return 1 << (config.bits - 1); }
  /// Smallest stored code: 1 for restricted-range symmetric (u = 0 is never used), 0 otherwise.
  [[nodiscard]] int code_lo() const noexcept {
    return config.scheme == SchemeKind::symmetric && !config.options.full_range ? 1 : 0;
  }
  /// Largest stored code: 2^b − 1 (15 for NF4, 255 for FP8).
  [[nodiscard]] int code_hi() const noexcept { return maxq(); }
  /// True when the stored byte is the two's-complement q (8-bit symmetric, see QuantizedTensor).
  [[nodiscard]] bool signed_codes() const noexcept {
    return config.scheme == SchemeKind::symmetric && config.bits == 8;
  }

  /// Throws sparq::error if the shapes or values break the invariants above.
  void validate() const {
    config.validate();
    SPARQ_CHECK(rows > 0 && cols > 0, "QuantParams: empty shape ", rows, "x", cols);
    SPARQ_CHECK(groups_per_row == config.groups_per_row(cols), "QuantParams: groups_per_row = ",
                groups_per_row, ", expected ", config.groups_per_row(cols), " for ", cols, " columns");
    SPARQ_CHECK(scales.size() == scale_rows() * groups_per_row, "QuantParams: ", scales.size(),
                " scales, expected ", scale_rows() * groups_per_row);
    const bool asym = config.scheme == SchemeKind::asymmetric;
    SPARQ_CHECK(zeros.size() == (asym ? scales.size() : 0), "QuantParams: ", zeros.size(),
                " zero points, expected ", asym ? scales.size() : 0);
    for (std::size_t i = 0; i < scales.size(); ++i) {
      SPARQ_CHECK(std::isfinite(scales[i]) && scales[i] >= FLT_MIN, "QuantParams: scale[", i,
                  "] = ", scales[i], ", expected a finite value >= ", FLT_MIN);
    }
    for (std::size_t i = 0; i < zeros.size(); ++i) {
      SPARQ_CHECK(zeros[i] <= maxq(), "QuantParams: zero[", i, "] = ", int(zeros[i]),
                  ", expected 0..", maxq());
    }
  }

 private:
  void check_index(std::size_t r, std::size_t c) const {
    SPARQ_CHECK(r < rows && c < cols, "QuantParams: element (", r, ", ", c, ") is outside the ",
                rows, "x", cols, " matrix");
  }
};

}  // namespace sparq
