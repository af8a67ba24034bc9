// LinearOp: the weight-format interface every linear layer of the model runtime goes through.
//
// A LinearOp computes y = W x for a weight W of shape [out_features x in_features] (row-major,
// rows are output channels, docs/algorithms.md#notation). How W is stored is the implementation's business:
// dense float (DenseLinear), fake-quantized float, packed integer codes, N:M-sparse, ... The model
// (model::Llama) holds one LinearOp per (block, Linear) and calls only this interface, so a new
// weight format plugs in by deriving from LinearOp and calling Llama::set_linear.
//
// Contract for implementations:
//   - gemv(x, y): y[o] = sum_i W[o, i] * x[i] for o < out_features(); x has in_features() floats,
//     y has out_features() floats; x and y do not alias.
//   - gemm(X, Y): Y = X · Wᵀ, X is [tokens x in_features], Y is [tokens x out_features] (rows may
//     be strided). The default runs gemv row by row; fast formats override it.
//   - Both are const and must be safe to call concurrently from several threads (the perplexity
//     evaluation runs windows in parallel over one model). The model checks shapes before calling;
//     implementations need not.
//   - weight_bytes(): bytes of weight storage as it would be stored (codes + scales + metadata),
//     used for the "weight bytes as stored" figure of docs/evaluation.md#what-a-results-row-states.
#pragma once

#include <cstddef>
#include <string>

#include "sparq/core/matrix_view.hpp"

namespace sparq::model {

class LinearOp {
 public:
  LinearOp() = default;
  LinearOp(const LinearOp&) = delete;
  LinearOp& operator=(const LinearOp&) = delete;
  virtual ~LinearOp() = default;

  [[nodiscard]] virtual std::size_t in_features() const noexcept = 0;
  [[nodiscard]] virtual std::size_t out_features() const noexcept = 0;
  [[nodiscard]] virtual std::size_t weight_bytes() const noexcept = 0;
  /// Short human-readable description of the format ("dense f32 64x64", ...).
  [[nodiscard]] virtual std::string describe() const = 0;

  /// y = W x (one token).
  virtual void gemv(const float* x, float* y) const = 0;

  /// Y = X · Wᵀ (all tokens). Default: one gemv per row.
  virtual void gemm(MatrixView<const float> X, MatrixView<float> Y) const {
    for (std::size_t t = 0; t < X.rows(); ++t) gemv(X.row(t), Y.row(t));
  }
};

}  // namespace sparq::model
