// LlamaConfig and LlamaWeights: the float weights of a Llama-family decoder, one struct per block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq::model {

/// Hyper-parameters of a Llama-family decoder (llama2.c's header plus the values GGUF carries).
struct LlamaConfig {
  std::size_t dim = 0;          ///< model width
  std::size_t hidden_dim = 0;   ///< FFN width
  std::size_t n_layers = 0;     ///< decoder blocks
  std::size_t n_heads = 0;      ///< query heads
  std::size_t n_kv_heads = 0;   ///< key/value heads (grouped-query attention when < n_heads)
  std::size_t vocab_size = 0;
  std::size_t seq_len = 0;      ///< maximum context
  bool shared_classifier = true;  ///< classifier is the token embedding
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;

  [[nodiscard]] std::size_t head_dim() const noexcept { return n_heads ? dim / n_heads : 0; }
  [[nodiscard]] std::size_t kv_dim() const noexcept { return head_dim() * n_kv_heads; }

  /// Throws sparq::error naming the first inconsistent value.
  void validate() const {
    constexpr std::size_t limit = std::size_t{1} << 24;
    SPARQ_CHECK(dim > 0 && dim < limit, "LlamaConfig: dim = ", dim, ", expected 1..", limit - 1);
    SPARQ_CHECK(hidden_dim > 0 && hidden_dim < limit, "LlamaConfig: hidden_dim = ", hidden_dim,
                ", expected 1..", limit - 1);
    SPARQ_CHECK(n_layers > 0 && n_layers < 4096, "LlamaConfig: n_layers = ", n_layers,
                ", expected 1..4095");
    SPARQ_CHECK(n_heads > 0 && dim % n_heads == 0, "LlamaConfig: n_heads = ", n_heads,
                " must be positive and divide dim = ", dim);
    SPARQ_CHECK(head_dim() % 2 == 0, "LlamaConfig: head dimension ", head_dim(),
                " must be even for RoPE");
    SPARQ_CHECK(n_kv_heads > 0 && n_kv_heads <= n_heads && n_heads % n_kv_heads == 0,
                "LlamaConfig: n_kv_heads = ", n_kv_heads, " must divide n_heads = ", n_heads);
    SPARQ_CHECK(vocab_size > 0 && vocab_size < limit, "LlamaConfig: vocab_size = ", vocab_size,
                ", expected 1..", limit - 1);
    SPARQ_CHECK(seq_len > 0 && seq_len < limit, "LlamaConfig: seq_len = ", seq_len,
                ", expected 1..", limit - 1);
  }
};

/// The seven linear layers of a Llama block, in llama2.c naming (HF naming in the comments).
enum class Linear : std::uint8_t { wq, wk, wv, wo, w1, w2, w3 };
inline constexpr Linear all_linears[] = {Linear::wq, Linear::wk, Linear::wv, Linear::wo,
                                         Linear::w1, Linear::w2, Linear::w3};

[[nodiscard]] constexpr std::string_view linear_name(Linear l) noexcept {
  switch (l) {
    case Linear::wq: return "wq";  // q_proj
    case Linear::wk: return "wk";  // k_proj
    case Linear::wv: return "wv";  // v_proj
    case Linear::wo: return "wo";  // o_proj
    case Linear::w1: return "w1";  // gate_proj
    case Linear::w2: return "w2";  // down_proj
    case Linear::w3: return "w3";  // up_proj
  }
  return "?";
}

/// One decoder block. Every matrix is row-major [out x in].
struct LlamaBlock {
  std::vector<float> rms_att;  ///< [dim] attention RMSNorm weight
  std::vector<float> rms_ffn;  ///< [dim] FFN RMSNorm weight
  Matrix<float> wq, wk, wv, wo;  ///< [dim x dim], [kv_dim x dim], [kv_dim x dim], [dim x dim]
  Matrix<float> w1, w2, w3;      ///< [hidden x dim] gate, [dim x hidden] down, [hidden x dim] up

  [[nodiscard]] Matrix<float>& linear(Linear l) noexcept {
    switch (l) {
      case Linear::wq: return wq;
      case Linear::wk: return wk;
      case Linear::wv: return wv;
      case Linear::wo: return wo;
      case Linear::w1: return w1;
      case Linear::w2: return w2;
      case Linear::w3: return w3;
    }
    return wq;
  }
  [[nodiscard]] const Matrix<float>& linear(Linear l) const noexcept {
    return const_cast<LlamaBlock*>(this)->linear(l);
  }

  /// Zeroed norms and matrices of the shapes `cfg` implies (cfg is not validated here).
  static LlamaBlock zeros(const LlamaConfig& cfg) {
    const std::size_t d = cfg.dim, h = cfg.hidden_dim, kv = cfg.kv_dim();
    LlamaBlock b;
    b.rms_att.assign(d, 0.0f);
    b.rms_ffn.assign(d, 0.0f);
    b.wq = Matrix<float>(d, d);
    b.wk = Matrix<float>(kv, d);
    b.wv = Matrix<float>(kv, d);
    b.wo = Matrix<float>(d, d);
    b.w1 = Matrix<float>(h, d);
    b.w2 = Matrix<float>(d, h);
    b.w3 = Matrix<float>(h, d);
    return b;
  }
};

/// All float weights of a Llama-family model.
struct LlamaWeights {
  LlamaConfig config;
  Matrix<float> token_embedding;  ///< [vocab x dim]
  std::vector<LlamaBlock> blocks;
  std::vector<float> rms_final;   ///< [dim]
  Matrix<float> classifier;       ///< [vocab x dim]; empty when config.shared_classifier

  /// The classifier matrix (the embedding when shared).
  [[nodiscard]] const Matrix<float>& output_matrix() const noexcept {
    return config.shared_classifier ? token_embedding : classifier;
  }

  /// Allocates zeroed tensors of the shapes `cfg` implies (validated first).
  static LlamaWeights zeros(const LlamaConfig& cfg) {
    cfg.validate();
    LlamaWeights w;
    w.config = cfg;
    const std::size_t d = cfg.dim;
    w.token_embedding = Matrix<float>(cfg.vocab_size, d);
    w.blocks.resize(cfg.n_layers);
    for (auto& b : w.blocks) b = LlamaBlock::zeros(cfg);
    w.rms_final.assign(d, 0.0f);
    if (!cfg.shared_classifier) w.classifier = Matrix<float>(cfg.vocab_size, d);
    return w;
  }

  /// Number of float parameters (the shared classifier counted once).
  [[nodiscard]] std::size_t parameter_count() const noexcept {
    std::size_t n = token_embedding.size() + rms_final.size() + classifier.size();
    for (const auto& b : blocks) {
      n += b.rms_att.size() + b.rms_ffn.size();
      for (Linear l : all_linears) n += b.linear(l).size();
    }
    return n;
  }
};

}  // namespace sparq::model
