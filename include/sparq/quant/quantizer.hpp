// Quantizer<Scheme, Granularity, Bits, Calibrator>: the typed front end of sparq::quant.
//
//   using Q = sparq::Quantizer<sparq::Symmetric, sparq::PerGroup<128>, 4>;   // int4, g128, MinMax
//   sparq::QuantizedTensor t = Q{}.quantize(w);   // packed codes + scales (quant/quantized_tensor.hpp)
//   sparq::Matrix<float> w_hat = Q{}.dequantize(t);
//
// Math, ranges and rounding: quant/scheme.hpp; packed layout: quant/quantized_tensor.hpp;
// calibrators: quant/calibrator.hpp. The policies are checked at compile time; everything that
// depends on data (shapes, NaN/Inf, cols % G) is checked at run time with sparq::error.
#pragma once

#include <cstddef>

#include "sparq/core/matrix_view.hpp"
#include "sparq/quant/calibrator.hpp"
#include "sparq/quant/granularity.hpp"
#include "sparq/quant/quant_config.hpp"
#include "sparq/quant/quantize.hpp"
#include "sparq/quant/quantized_tensor.hpp"
#include "sparq/quant/scheme.hpp"

namespace sparq {

template <QuantScheme Scheme, Granularity Gran, unsigned Bits = 8, RangeCalibrator Calibrator = MinMax>
class Quantizer {
  static_assert(Scheme::fixed_bits == 0 || Bits == Scheme::fixed_bits || Bits == 8,
                "Quantizer: this scheme has a fixed width (NF4 is 4-bit, FP8E4M3 is 8-bit): "
                "leave Bits at its default or write that width");
  static_assert(Scheme::fixed_bits != 0 || is_supported_int_bits(static_cast<int>(Bits)),
                "Quantizer: integer schemes support Bits = 2, 3, 4, 5, 6 or 8");

 public:
  using scheme = Scheme;
  using granularity = Gran;
  using calibrator = Calibrator;
  /// Effective code width (the scheme's fixed width for NF4 / FP8).
  static constexpr unsigned bits = Scheme::fixed_bits ? Scheme::fixed_bits : Bits;
  /// True for PerToken: scales are computed from the data at quantize time.
  static constexpr bool dynamic = Gran::dynamic;

  Quantizer() = default;
  explicit Quantizer(QuantOptions options) : options_(options) { config().validate(); }

  [[nodiscard]] const QuantOptions& options() const noexcept { return options_; }

  /// The run-time description of this quantizer.
  [[nodiscard]] QuantConfig config() const noexcept {
    QuantConfig c;
    c.scheme = Scheme::kind;
    c.granularity = Gran::kind;
    c.group_size = Gran::group_size;
    c.bits = static_cast<int>(bits);
    c.calibrator = Calibrator::kind;
    c.options = options_;
    return c;
  }

  /// Scales and zero points of w (rows = output channels or tokens).
  [[nodiscard]] QuantParams fit(MatrixView<const float> w) const { return quant::fit(w, config()); }

  /// Packed codes + parameters, fitted on w.
  [[nodiscard]] QuantizedTensor quantize(MatrixView<const float> w) const {
    return quant::quantize(w, config());
  }
  /// Packed codes of w with parameters fitted earlier (same shape and configuration).
  [[nodiscard]] QuantizedTensor quantize(MatrixView<const float> w, const QuantParams& params) const {
    const QuantConfig c = config();
    SPARQ_CHECK(params.config.scheme == c.scheme && params.config.bits == c.bits &&
                    params.config.granularity == c.granularity &&
                    params.config.group_size == c.group_size,
                "Quantizer::quantize: parameters were fitted for ", scheme_name(params.config.scheme),
                " ", params.config.bits, "-bit per-", granularity_name(params.config.granularity),
                ", this quantizer is ", scheme_name(c.scheme), " ", c.bits, "-bit per-",
                granularity_name(c.granularity));
    return quant::quantize(w, params);
  }

  /// Floats of a packed tensor (into a caller buffer of the same shape, or a new Matrix).
  void dequantize(const QuantizedTensor& q, MatrixView<float> out) const { quant::dequantize(q, out); }
  [[nodiscard]] Matrix<float> dequantize(const QuantizedTensor& q) const { return quant::dequantize(q); }

  /// dequantize(quantize(w)).
  void fake_quantize(MatrixView<const float> w, MatrixView<float> out) const {
    quant::fake_quantize(w, config(), out);
  }
  [[nodiscard]] Matrix<float> fake_quantize(MatrixView<const float> w) const {
    return quant::fake_quantize(w, config());
  }

 private:
  QuantOptions options_{};
};

}  // namespace sparq
