// StoredFactor: one low-rank factor (A or B) stored in f32, per-row int8, fp16 or bf16, with its GEMV through the project kernels.
//
// Formats and stored bytes for a rows x cols factor:
//   f32   4·rows·cols                 y = F x by kernels::gemv_f32
//   int8  rows·cols + 4·rows          per-row symmetric int8 (Quantizer<Symmetric, PerChannel, 8>:
//                                      q ∈ [−127, 127], scale = max|row|/127), kernels::gemv_q8_f32
//   f16   2·rows·cols                 IEEE half, round to nearest even (core/half.hpp), kernels::gemv_f16
//   bf16  2·rows·cols                 bfloat16, RNE, kernels::gemv_bf16
// decode() returns exactly the values the GEMV multiplies by (dequantised codes), so fake
// application (W + decode(A)·decode(B)) and the runtime agree up to float summation order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_half.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq/quant/quantized_tensor.hpp"
#include "sparq/quant/quantizer.hpp"

namespace sparq::lowrank {

enum class FactorFormat : unsigned char { f32, int8, f16, bf16 };

[[nodiscard]] constexpr std::string_view factor_format_name(FactorFormat f) noexcept {
  switch (f) {
    case FactorFormat::f32: return "f32";
    case FactorFormat::int8: return "int8";
    case FactorFormat::f16: return "f16";
    case FactorFormat::bf16: return "bf16";
  }
  return "?";
}

class StoredFactor {
 public:
  StoredFactor() = default;

  /// Encodes `m` (non-empty, finite) in `format`. Throws sparq::error otherwise.
  [[nodiscard]] static StoredFactor encode(MatrixView<const float> m, FactorFormat format) {
    SPARQ_CHECK(!m.empty(), "StoredFactor::encode: empty ", m.rows(), "x", m.cols(), " factor");
    for (std::size_t i = 0; i < m.rows(); ++i) check_finite(m.row(i), m.cols(), "StoredFactor::encode");
    StoredFactor f;
    f.rows_ = m.rows();
    f.cols_ = m.cols();
    f.format_ = format;
    const std::size_t n = m.rows() * m.cols();
    switch (format) {
      case FactorFormat::f32:
        f.f32_.resize(n);
        for (std::size_t i = 0; i < m.rows(); ++i) std::copy(m.row(i), m.row(i) + m.cols(), f.f32_.data() + i * m.cols());
        break;
      case FactorFormat::int8:
        f.q8_ = Quantizer<Symmetric, PerChannel, 8>{}.quantize(m);
        break;
      case FactorFormat::f16:
      case FactorFormat::bf16:
        f.h_.resize(n);
        for (std::size_t i = 0; i < m.rows(); ++i)
          for (std::size_t j = 0; j < m.cols(); ++j)
            f.h_[i * m.cols() + j] = format == FactorFormat::f16 ? float_to_fp16(m(i, j)) : float_to_bf16(m(i, j));
        break;
    }
    return f;
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] FactorFormat format() const noexcept { return format_; }

  /// Bytes as stored (values + scales), see the file comment.
  [[nodiscard]] std::size_t bytes() const noexcept {
    switch (format_) {
      case FactorFormat::f32: return f32_.size() * sizeof(float);
      case FactorFormat::int8: return q8_.byte_size();
      case FactorFormat::f16:
      case FactorFormat::bf16: return h_.size() * sizeof(std::uint16_t);
    }
    return 0;
  }

  /// The values the GEMV uses, as floats (rows x cols).
  [[nodiscard]] Matrix<float> decode() const {
    Matrix<float> m(rows_, cols_);
    switch (format_) {
      case FactorFormat::f32: std::copy(f32_.begin(), f32_.end(), m.data()); break;
      case FactorFormat::int8: {
        const auto q = q8_.int8_codes();
        for (std::size_t i = 0; i < rows_; ++i)
          for (std::size_t j = 0; j < cols_; ++j) m(i, j) = q8_.scales()[i] * static_cast<float>(q[i * cols_ + j]);
        break;
      }
      case FactorFormat::f16:
        for (std::size_t i = 0; i < h_.size(); ++i) m.data()[i] = fp16_to_float(h_[i]);
        break;
      case FactorFormat::bf16:
        for (std::size_t i = 0; i < h_.size(); ++i) m.data()[i] = bf16_to_float(h_[i]);
        break;
    }
    return m;
  }

  /// y = F x (x has cols() floats, y rows()). Hot path: checks nothing.
  void gemv(const float* x, float* y) const noexcept {
    switch (format_) {
      case FactorFormat::f32: kernels::gemv_f32(f32_.data(), rows_, cols_, x, y); break;
      case FactorFormat::int8:
        kernels::gemv_q8_f32(reinterpret_cast<const std::int8_t*>(q8_.codes()), q8_.scales(), rows_, cols_, x, y);
        break;
      case FactorFormat::f16: kernels::gemv_f16(h_.data(), rows_, cols_, x, y); break;
      case FactorFormat::bf16: kernels::gemv_bf16(h_.data(), rows_, cols_, x, y); break;
    }
  }

  /// The f32 values (format f32 only; empty otherwise), row-major rows x cols.
  [[nodiscard]] const std::vector<float>& f32_values() const noexcept { return f32_; }

 private:
  std::size_t rows_ = 0, cols_ = 0;
  FactorFormat format_ = FactorFormat::f32;
  std::vector<float> f32_;
  QuantizedTensor q8_;
  std::vector<std::uint16_t> h_;
};

}  // namespace sparq::lowrank
