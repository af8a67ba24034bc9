// Convenience overloads of the quantizer API for xt::xtensor<float, 2> (zero-copy views).
//
// The core works on MatrixView; these wrap a row-major xtensor without copying. Never pass an
// xtensor between translation units built with different -m flags (its allocator alignment
// depends on them: docs/quantization.md#xtensor-interop).
#pragma once

#include <xtensor/xtensor.hpp>

#include "sparq/core/matrix_view.hpp"
#include "sparq/quant/quantize.hpp"
#include "sparq/quant/quantizer.hpp"

namespace sparq::quant {

/// Read-only MatrixView of a 2-D row-major xtensor.
[[nodiscard]] inline MatrixView<const float> view_of(const xt::xtensor<float, 2>& t) {
  return {t.data(), t.shape()[0], t.shape()[1]};
}

[[nodiscard]] inline QuantizedTensor quantize(const xt::xtensor<float, 2>& w, const QuantConfig& cfg) {
  return quantize(view_of(w), cfg);
}

/// Dequantizes into a new xtensor of q's shape.
[[nodiscard]] inline xt::xtensor<float, 2> dequantize_xt(const QuantizedTensor& q) {
  xt::xtensor<float, 2> out = xt::empty<float>({q.rows(), q.cols()});
  dequantize(q, MatrixView<float>(out.data(), q.rows(), q.cols()));
  return out;
}

/// fake_quantize of an xtensor with a typed Quantizer.
template <class Q>
[[nodiscard]] xt::xtensor<float, 2> fake_quantize(const Q& quantizer, const xt::xtensor<float, 2>& w) {
  return dequantize_xt(quantizer.quantize(view_of(w)));
}

}  // namespace sparq::quant
