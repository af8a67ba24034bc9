// Q8Linear: a LinearOp over int8 per-channel symmetric weights (W8A32 or W8A8) through the int8 kernels.
//
// Weights: W[k][j] = scale[k]·q[k][j], q int8 ∈ [−127, 127] (row-major rows × cols), one float
// scale per output row (kernels/gemv_q8.hpp layout; QuantizedTensor's signed 8-bit view).
//   A32:  y[k] = scale[k]·Σ_j q[k][j]·x[j]                     (gemv_q8_f32 / gemm_q8_f32)
//   A8:   (q_x, Δ) = quantize_token_int8(x) (bit-identical to fake_quantize_token(·, 8)),
//         y[k] = Δ·scale[k]·Σ_j q[k][j]·q_x[j], the sum exact in int32 (gemv_q8_a8 / gemm_q8_a8)
// The fake-quantized model computes the same products in float, so the two agree up to float
// rounding of the sums. Scratch: A8 uses packed_scratch (cols int8 per token, thread-local).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemm_q.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq/model/packed_linear.hpp"
#include "sparq/quant/quantized_tensor.hpp"

namespace sparq::model {

class Q8Linear final : public PackedLinear {
 public:
  /// Takes codes (rows·cols, each in [−127, 127]) and rows positive finite scales.
  /// Throws sparq::error on an empty shape, wrong sizes, a code −128 or a bad scale.
  Q8Linear(std::size_t rows, std::size_t cols, std::vector<std::int8_t> codes, std::vector<float> scales,
           ActivationMode act, int threads = 1)
      : rows_(rows), cols_(cols), q_(std::move(codes)), s_(std::move(scales)), act_(act), threads_(threads) {
    SPARQ_CHECK(rows_ > 0 && cols_ > 0, "Q8Linear: empty shape ", rows_, "x", cols_);
    SPARQ_CHECK(cols_ <= 131072, "Q8Linear: cols = ", cols_, ", expected at most 131072 (exact int32 sums)");
    SPARQ_CHECK(q_.size() == rows_ * cols_, "Q8Linear: ", q_.size(), " codes, expected rows·cols = ", rows_ * cols_);
    SPARQ_CHECK(s_.size() == rows_, "Q8Linear: ", s_.size(), " scales, expected one per row = ", rows_);
    SPARQ_CHECK(threads_ >= 0, "Q8Linear: threads = ", threads_, ", expected >= 0");
    for (std::size_t i = 0; i < q_.size(); ++i) {
      SPARQ_CHECK(q_[i] != -128, "Q8Linear: code -128 at row ", i / cols_, ", column ", i % cols_,
                  ", expected [-127, 127] (the int8 kernels need |q| <= 127)");
    }
    for (std::size_t k = 0; k < rows_; ++k) {
      SPARQ_CHECK(std::isfinite(s_[k]) && s_[k] > 0.0f, "Q8Linear: scale[", k, "] = ", s_[k],
                  ", expected a positive finite value");
    }
  }

  /// From an 8-bit symmetric per-channel QuantizedTensor (restricted range, or full range whose
  /// codes happen to avoid −128). Throws sparq::error on any other configuration.
  [[nodiscard]] static Q8Linear from_quantized(const QuantizedTensor& t, ActivationMode act, int threads = 1) {
    SPARQ_CHECK(t.bits() == 8 && t.scheme() == SchemeKind::symmetric, "Q8Linear: needs 8-bit symmetric codes, got ",
                t.bits(), "-bit ", scheme_name(t.scheme()));
    SPARQ_CHECK(t.config().granularity == GranularityKind::per_channel, "Q8Linear: needs per-channel scales, got per-",
                granularity_name(t.config().granularity));
    const auto c = t.int8_codes();
    return Q8Linear(t.rows(), t.cols(), std::vector<std::int8_t>(c.begin(), c.end()), t.params().scales, act, threads);
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return cols_; }
  [[nodiscard]] std::size_t out_features() const noexcept override { return rows_; }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override {
    return q_.size() * sizeof(std::int8_t) + s_.size() * sizeof(float);
  }
  [[nodiscard]] std::string describe() const override {
    return sparq::detail::concat("int8 per-channel ", activation_mode_name(act_), " ", rows_, "x", cols_);
  }
  [[nodiscard]] ActivationMode activations() const noexcept override { return act_; }
  [[nodiscard]] int threads() const noexcept override { return threads_; }

  [[nodiscard]] const std::vector<std::int8_t>& codes() const noexcept { return q_; }
  [[nodiscard]] const std::vector<float>& scales() const noexcept { return s_; }

  [[nodiscard]] Matrix<float> dequantize() const override {
    Matrix<float> w(rows_, cols_);
    for (std::size_t k = 0; k < rows_; ++k)
      for (std::size_t j = 0; j < cols_; ++j) w(k, j) = s_[k] * static_cast<float>(q_[k * cols_ + j]);
    return w;
  }

  void gemv(const float* x, float* y) const override {
    if (act_ == ActivationMode::a32) {
      kernels::gemv_q8_f32(q_.data(), s_.data(), rows_, cols_, x, y, threads_);
      return;
    }
    auto* qx = reinterpret_cast<std::int8_t*>(packed_scratch(cols_));
    const float dx = quantize_token_int8(x, cols_, qx);
    kernels::gemv_q8_a8(q_.data(), s_.data(), rows_, cols_, qx, dx, y, threads_);
  }

  void gemm(MatrixView<const float> X, MatrixView<float> Y) const override {
    const std::size_t n = X.rows();
    if (n == 0) return;
    if (X.stride() != cols_ || Y.stride() != rows_) {  // strided views: token by token
      for (std::size_t t = 0; t < n; ++t) gemv(X.row(t), Y.row(t));
      return;
    }
    if (act_ == ActivationMode::a32) {
      kernels::gemm_q8_f32(q_.data(), s_.data(), rows_, cols_, X.data(), n, Y.data(), threads_);
      return;
    }
    unsigned char* buf = packed_scratch(packed_align64(n * cols_) + n * sizeof(float));
    auto* qx = reinterpret_cast<std::int8_t*>(buf);
    auto* dx = reinterpret_cast<float*>(buf + packed_align64(n * cols_));
    for (std::size_t t = 0; t < n; ++t) dx[t] = quantize_token_int8(X.row(t), cols_, qx + t * cols_);
    kernels::gemm_q8_a8(q_.data(), s_.data(), rows_, cols_, qx, dx, n, Y.data(), threads_);
  }

  /// Format "packed_q8": sections codes (int8, rows·cols) and scales (f32, rows); metadata act.
  void save(OpWriter& w) const override {
    w.format("packed_q8", 1);
    w.section("codes", q_);
    w.section("scales", s_);
    save_activations(w);
  }
  [[nodiscard]] static std::unique_ptr<LinearOp> load(const OpReader& r) {
    const ActivationMode act = load_activations(r);
    return std::make_unique<Q8Linear>(r.rows(), r.cols(), r.section<std::int8_t>("codes"), r.section<float>("scales"),
                                      act, r.threads());
  }

 private:
  std::size_t rows_, cols_;
  std::vector<std::int8_t> q_;
  std::vector<float> s_;
  ActivationMode act_;
  int threads_;
};

}  // namespace sparq::model
