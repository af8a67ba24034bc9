// DenseLinear: a LinearOp over a dense float weight matrix (owned, or a view of the model's weights).
//
// Also the carrier of fake-quantized weights: a matrix that was quantized and dequantized is just
// another dense float matrix, so `DenseLinear(fake_quantized_matrix)` simulates any weight format.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

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

 private:
  explicit DenseLinear(MatrixView<const float> w) : w_(w) {}
  Matrix<float> owned_;
  MatrixView<const float> w_;
};

}  // namespace sparq::model
