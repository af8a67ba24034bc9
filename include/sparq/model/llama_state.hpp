// LlamaState: the per-sequence state of a Llama forward pass (KV cache and scratch buffers).
//
// One LlamaState belongs to one sequence and one thread; several states can run over one const
// model::Llama concurrently. The cache holds keys and values of `cache_layers` layers for
// positions [0, capacity). Keys (after RoPE) are stored transposed per kv head —
// keys(l, h) is [head_dim x capacity], element (d, p) — so that the scores of one query against
// all positions are a sum of contiguous rows; values are stored the same way (values(l, h),
// [head_dim x capacity]) so that each output component is one contiguous dot product.
#pragma once

#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq::model {

class Llama;

class LlamaState {
 public:
  /// `capacity` positions (0: the model's seq_len) for `cache_layers` layers (0: all n_layers).
  /// Throws sparq::error if capacity exceeds seq_len (RoPE tables stop there).
  explicit LlamaState(const LlamaConfig& cfg, std::size_t capacity = 0, std::size_t cache_layers = 0)
      : capacity_(capacity ? capacity : cfg.seq_len),
        layers_(cache_layers ? cache_layers : cfg.n_layers),
        kv_dim_(cfg.kv_dim()),
        head_dim_(cfg.head_dim()) {
    cfg.validate();
    SPARQ_CHECK(capacity_ <= cfg.seq_len, "LlamaState: capacity ", capacity_,
                " exceeds the model's seq_len ", cfg.seq_len);
    key_.assign(layers_ * capacity_ * kv_dim_, 0.0f);
    value_.assign(layers_ * capacity_ * kv_dim_, 0.0f);
    logits_.assign(cfg.vocab_size, 0.0f);
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t cache_layers() const noexcept { return layers_; }
  /// Positions already in the cache (the next token goes to position length()).
  [[nodiscard]] std::size_t length() const noexcept { return length_; }
  /// Empties the cache (the next token is position 0). Buffers are kept.
  void reset() noexcept { length_ = 0; }

  /// Keys of kv head `h` in `layer`: [head_dim x capacity], element (d, p) at [d * capacity + p].
  [[nodiscard]] float* keys(std::size_t layer, std::size_t h) noexcept {
    return key_.data() + (layer * kv_dim_ + h * head_dim_) * capacity_;
  }
  [[nodiscard]] const float* keys(std::size_t layer, std::size_t h) const noexcept {
    return key_.data() + (layer * kv_dim_ + h * head_dim_) * capacity_;
  }
  /// Values of kv head `h` in `layer`: [head_dim x capacity], element (d, p) at [d * capacity + p].
  [[nodiscard]] float* values(std::size_t layer, std::size_t h) noexcept {
    return value_.data() + (layer * kv_dim_ + h * head_dim_) * capacity_;
  }
  [[nodiscard]] const float* values(std::size_t layer, std::size_t h) const noexcept {
    return value_.data() + (layer * kv_dim_ + h * head_dim_) * capacity_;
  }
  /// Logits of the last decode step ([vocab]).
  [[nodiscard]] const std::vector<float>& logits() const noexcept { return logits_; }

 private:
  friend class Llama;

  /// Makes sure every scratch matrix holds at least `rows` rows.
  void reserve_rows(const LlamaConfig& cfg, std::size_t rows) {
    if (x_.rows() >= rows) return;
    x_ = Matrix<float>(rows, cfg.dim);
    xb_ = Matrix<float>(rows, cfg.dim);
    q_ = Matrix<float>(rows, cfg.dim);
    att_out_ = Matrix<float>(rows, cfg.dim);
    proj_ = Matrix<float>(rows, cfg.dim);
    k_ = Matrix<float>(rows, cfg.kv_dim());
    v_ = Matrix<float>(rows, cfg.kv_dim());
    h1_ = Matrix<float>(rows, cfg.hidden_dim);
    h3_ = Matrix<float>(rows, cfg.hidden_dim);
    att_.assign(capacity_, 0.0f);
  }

  std::size_t capacity_;
  std::size_t layers_;
  std::size_t kv_dim_;
  std::size_t head_dim_;
  std::size_t length_ = 0;
  std::vector<float> key_, value_, logits_, att_;
  Matrix<float> x_, xb_, q_, k_, v_, att_out_, proj_, h1_, h3_;
};

}  // namespace sparq::model
