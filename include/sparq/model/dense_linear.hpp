// DenseLinear: a LinearOp over a dense float weight matrix (owned, or a view of the model's weights).
//
// Also the carrier of fake-quantized weights: a matrix that was quantized and dequantized is just
// another dense float matrix, so `DenseLinear(fake_quantized_matrix)` simulates any weight format.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemm_dense.hpp"
#include "sparq/model/linear_op.hpp"

namespace sparq::model {

class DenseLinear final : public LinearOp {
 public:
  /// Owns `w` ([out x in], row-major). Throws sparq::error if it is empty.
  explicit DenseLinear(Matrix<float> w) : owned_(std::move(w)) {
    SPARQ_CHECK(owned_.rows() > 0 && owned_.cols() > 0, "DenseLinear: empty ", owned_.rows(), "x",
                owned_.cols(), " weight matrix");
    w_ = owned_.view();
  }

  /// Non-owning: `w` must outlive this object and keep its address (the model's own weights).
  [[nodiscard]] static DenseLinear view_of(MatrixView<const float> w) {
    SPARQ_CHECK(!w.empty(), "DenseLinear::view_of: empty ", w.rows(), "x", w.cols(), " view");
    return DenseLinear(w);
  }

  DenseLinear(DenseLinear&& o) noexcept : owned_(std::move(o.owned_)), w_(o.w_) {}

  [[nodiscard]] std::size_t in_features() const noexcept override { return w_.cols(); }
  [[nodiscard]] std::size_t out_features() const noexcept override { return w_.rows(); }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override { return w_.size() * sizeof(float); }
  [[nodiscard]] std::string describe() const override {
    return sparq::detail::concat("dense f32 ", w_.rows(), "x", w_.cols(), owns() ? "" : " (view)");
  }
  [[nodiscard]] bool owns() const noexcept { return owned_.size() != 0; }
  [[nodiscard]] MatrixView<const float> weight() const noexcept { return w_; }

  void gemv(const float* x, float* y) const override {
    kernels::dense_gemm(x, w_.cols(), 1, w_.data(), w_.stride(), w_.rows(), w_.cols(), y, w_.rows());
  }
  void gemm(MatrixView<const float> X, MatrixView<float> Y) const override {
    kernels::dense_gemm(X.data(), X.stride(), X.rows(), w_.data(), w_.stride(), w_.rows(), w_.cols(),
                       Y.data(), Y.stride());
  }

  /// A dense float op is what pack_model packs (into the format its PackOptions ask for).
  [[nodiscard]] std::unique_ptr<LinearOp> pack(const OpPacker& p, int input_bits, bool) const override {
    return p.pack_dense(*this, input_bits);
  }
  /// Format "f32", one section "data" ([out x in] floats, row-major).
  void save(OpWriter& wr) const override {
    wr.format("f32", 1);
    std::vector<float> data(w_.rows() * w_.cols());
    for (std::size_t r = 0; r < w_.rows(); ++r) std::copy(w_.row(r), w_.row(r) + w_.cols(), data.data() + r * w_.cols());
    wr.section("data", data);
  }
  [[nodiscard]] Matrix<float> dense_weights() const override {
    Matrix<float> w(w_.rows(), w_.cols());
    for (std::size_t r = 0; r < w_.rows(); ++r) std::copy(w_.row(r), w_.row(r) + w_.cols(), w.data() + r * w_.cols());
    return w;
  }
  /// The model's float copy when it is there (a view reads exactly it), else this op's weight.
  void export_weights(Matrix<float>& w, std::string&) const override {
    if (w.size() == 0) w = dense_weights();
  }
  [[nodiscard]] bool reads_float_view() const noexcept override { return !owns(); }
  [[nodiscard]] std::size_t owned_weight_bytes() const noexcept override { return owns() ? weight_bytes() : 0; }

 private:
  explicit DenseLinear(MatrixView<const float> w) : w_(w) {}
  Matrix<float> owned_;
  MatrixView<const float> w_;
};

}  // namespace sparq::model
