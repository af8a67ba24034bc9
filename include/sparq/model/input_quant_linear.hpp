// InputQuantLinear: a LinearOp decorator that fake-quantizes its input per token (W8A8 simulation).
//
// Per-token dynamic symmetric absmax quantization of the activations (docs/algorithms.md#w8a8):
// with q_max = 2^(bits-1) - 1 (127 for 8 bits), for each token row x:
//     Δ = max(max_j |x_j|, 1e-5) / q_max,   x̂_j = clamp(nearbyint(x_j / Δ), -q_max, q_max) · Δ
// (round half to even, the clamp on absmax is applied before the division). The wrapped LinearOp
// then sees x̂. The caller's input is never modified (the reference quantizes in place; the result
// is the same because the operation is idempotent).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/linear_op.hpp"

namespace sparq::model {

/// Fake-quantizes one token row: out = dequantize(quantize(x)) with the formula above.
/// `out` may equal `x`.
inline void fake_quantize_token(const float* x, float* out, std::size_t n, int bits) noexcept {
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  float amax = 0.0f;
  for (std::size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float delta = std::max(amax, 1e-5f) / qmax;
  for (std::size_t j = 0; j < n; ++j) {
    const float q = std::clamp(std::nearbyint(x[j] / delta), -qmax, qmax);
    out[j] = q * delta;
  }
}

class InputQuantLinear final : public LinearOp {
 public:
  /// Wraps `inner`; `bits` in 2..16. Throws sparq::error on a null op or bad bit width.
  InputQuantLinear(std::unique_ptr<LinearOp> inner, int bits) : inner_(std::move(inner)), bits_(bits) {
    SPARQ_CHECK(inner_ != nullptr, "InputQuantLinear: null inner LinearOp");
    SPARQ_CHECK(bits >= 2 && bits <= 16, "InputQuantLinear: activation bits = ", bits,
                ", expected 2..16");
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return inner_->in_features(); }
  [[nodiscard]] std::size_t out_features() const noexcept override { return inner_->out_features(); }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override { return inner_->weight_bytes(); }
  [[nodiscard]] std::string describe() const override {
    return sparq::detail::concat(inner_->describe(), " + A", bits_, " per-token");
  }
  [[nodiscard]] int bits() const noexcept { return bits_; }
  [[nodiscard]] const LinearOp& inner() const noexcept { return *inner_; }
  /// Gives the wrapped op back (this object is empty afterwards).
  [[nodiscard]] std::unique_ptr<LinearOp> release() noexcept { return std::move(inner_); }

  void gemv(const float* x, float* y) const override {
    const std::size_t n = in_features();
    const Scratch xq(n);
    fake_quantize_token(x, xq.data, n, bits_);
    inner_->gemv(xq.data, y);
  }
  void gemm(MatrixView<const float> X, MatrixView<float> Y) const override {
    const std::size_t n = in_features();
    const Scratch xq(X.rows() * n);
    for (std::size_t t = 0; t < X.rows(); ++t) fake_quantize_token(X.row(t), xq.data + t * n, n, bits_);
    inner_->gemm(MatrixView<const float>(xq.data, X.rows(), n), Y);
  }

  /// The inner op packed with this wrapper's width (which it takes over or keeps), wrapped again
  /// in `input_bits` of an InputQuantLinear around this one, if any; nullptr when the inner op is
  /// kept as it is.
  [[nodiscard]] std::unique_ptr<LinearOp> pack(const OpPacker& p, int input_bits, bool inside_correction) const override {
    std::unique_ptr<LinearOp> in = inner_->pack(p, bits_, inside_correction);
    if (in == nullptr) return nullptr;
    if (input_bits != 0) in = std::make_unique<InputQuantLinear>(std::move(in), input_bits);
    return in;
  }
  void save(OpWriter& w) const override {
    w.input_bits(bits_);
    inner_->save(w);
  }
  [[nodiscard]] Matrix<float> dense_weights() const override { return inner_->dense_weights(); }
  void export_weights(Matrix<float>& w, std::string& source) const override { inner_->export_weights(w, source); }
  [[nodiscard]] int activation_bits() const noexcept override { return bits_; }
  [[nodiscard]] bool reads_float_view() const noexcept override { return inner_->reads_float_view(); }
  [[nodiscard]] std::size_t owned_weight_bytes() const noexcept override { return inner_->owned_weight_bytes(); }

 private:
  /// A per-thread buffer of at least n floats, one per nesting level (an inner op may itself be an
  /// InputQuantLinear, directly or under a decorator), grown on demand and kept: no allocation per
  /// call once warm.
  struct Scratch {
    float* data;
    explicit Scratch(std::size_t n) {
      std::vector<float>& b = level(depth());
      if (b.size() < n) b.resize(n);
      data = b.data();
      ++depth();
    }
    ~Scratch() { --depth(); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    static std::size_t& depth() noexcept {
      thread_local std::size_t d = 0;
      return d;
    }
    static std::vector<float>& level(std::size_t i) {
      thread_local std::vector<std::unique_ptr<std::vector<float>>> pool;  // stable addresses
      while (pool.size() <= i) pool.push_back(std::make_unique<std::vector<float>>());
      return *pool[i];
    }
  };

  std::unique_ptr<LinearOp> inner_;
  int bits_;
};

}  // namespace sparq::model
