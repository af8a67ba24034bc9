// Llama: the Llama-family forward pass (token-by-token decode with a KV cache, and prefill).
//
// Per block, for the tokens x (rows of X, positions pos0, pos0+1, ...):
//   RMSNorm:   rms(x) = w ⊙ x / sqrt(mean(x²) + eps)                    (eps = config.rms_eps)
//   attention: q = wq·rms_att(x), k = wk·…, v = wv·…; RoPE on q and k; grouped-query attention
//              (query head h reads kv head h / (n_heads / n_kv_heads)); softmax(q·kᵀ/√head_dim)·v
//              over positions 0..pos (causal); x += wo·att
//   FFN:       x += w2·(silu(w1·rms_ffn(x)) ⊙ (w3·rms_ffn(x))),  silu(u) = u / (1 + e^(−u))
// then logits = classifier · rms_final(x) (the classifier is the embedding when shared).
// RoPE follows llama2.c: within each head the pairs (2i, 2i+1) are rotated by the angle
// pos · theta^(−2i/head_dim) (theta = config.rope_theta, 10000).
//
// Every linear goes through a LinearOp (see linear_op.hpp), one per (block, Linear). By default
// each is a DenseLinear view of the block's float weights; set_linear replaces one (a quantized or
// sparse format), reset_linear restores the dense view. Decode is prefill of one token: the same
// code runs for 1 or n rows, so prefill(n tokens) reproduces n decode steps.
//
// Thread safety: every forward entry point is const and keeps its mutable data in the LlamaState,
// so threads may run separate states over one model. Non-const members (set_linear,
// block_weights, refresh_block) must not run concurrently with a forward pass.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/kernels/attention.hpp"
#include "sparq/model/linear_op.hpp"
#include "sparq/model/llama_state.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq::model {

/// Called with the input of every linear group during a forward pass (see Llama::forward_block).
/// Linears that share an input are reported once, under the first of their group:
/// Linear::wq for {wq, wk, wv}, Linear::wo, Linear::w1 for {w1, w3}, Linear::w2.
using LinearInputHook = std::function<void(Linear, MatrixView<const float>)>;

/// The linears that read the same input as `l` ({wq,wk,wv}, {wo}, {w1,w3}, {w2}).
[[nodiscard]] inline std::span<const Linear> linears_sharing_input(Linear l) noexcept {
  static constexpr Linear attn[] = {Linear::wq, Linear::wk, Linear::wv};
  static constexpr Linear o[] = {Linear::wo};
  static constexpr Linear ffn[] = {Linear::w1, Linear::w3};
  static constexpr Linear down[] = {Linear::w2};
  switch (l) {
    case Linear::wq: case Linear::wk: case Linear::wv: return attn;
    case Linear::wo: return o;
    case Linear::w1: case Linear::w3: return ffn;
    case Linear::w2: return down;
  }
  return o;
}

/// The linear under which a group's shared input is reported (wq, wo, w1 or w2).
[[nodiscard]] constexpr Linear input_group_leader(Linear l) noexcept {
  switch (l) {
    case Linear::wq: case Linear::wk: case Linear::wv: return Linear::wq;
    case Linear::w1: case Linear::w3: return Linear::w1;
    default: return l;
  }
}

/// Tag of the Llama constructor whose blocks are loaded later, one at a time (Llama::load_block).
struct DeferredBlocks {};

class Llama {
 public:
  /// Takes the float weights (validated: config, every shape, finite norms).
  explicit Llama(LlamaWeights w) : Llama(std::move(w), true) {}

  /// Takes the embedding, final norm and classifier of `w`, but no block: every block starts
  /// unloaded (its weights in `w` are dropped), and load_block / unload_block bring one in and out,
  /// so a model larger than memory can be run or compressed block by block (joint/ stream drivers).
  /// Using an unloaded block (forward_block, linear, set_linear, ...) is a sparq::error.
  Llama(LlamaWeights w, DeferredBlocks) : Llama(std::move(w), false) {}

  /// Installs block b's float weights (checked as by refresh_block: on error nothing changes) and
  /// their dense views; replaces what block b held.
  void load_block(std::size_t b, LlamaBlock blk) {
    check_block(b);
    std::swap(w_.blocks[b], blk);
    const auto views = is_view_[b];
    is_view_[b].fill(true);
    try {
      refresh_block(b);
    } catch (...) {
      std::swap(w_.blocks[b], blk);
      is_view_[b] = views;
      throw;
    }
  }
  /// Frees block b's weights and ops; the block is unloaded until load_block(b, ...).
  void unload_block(std::size_t b) {
    check_block(b);
    w_.blocks[b] = LlamaBlock{};
    for (auto& op : ops_[b]) op.reset();
    is_view_[b].fill(true);
  }
  /// False for a block of a DeferredBlocks model not loaded yet, or unloaded.
  [[nodiscard]] bool block_loaded(std::size_t b) const {
    check_block(b);
    return ops_[b][0] != nullptr;
  }

 private:
  Llama(LlamaWeights w, bool load_blocks) : w_(std::move(w)) {
    const auto& c = w_.config;
    c.validate();
    SPARQ_CHECK(w_.blocks.size() == c.n_layers, "Llama: ", w_.blocks.size(), " blocks, config says ",
                c.n_layers);
    SPARQ_CHECK(w_.token_embedding.rows() == c.vocab_size && w_.token_embedding.cols() == c.dim,
                "Llama: token_embedding is ", w_.token_embedding.rows(), "x", w_.token_embedding.cols(),
                ", expected ", c.vocab_size, "x", c.dim);
    SPARQ_CHECK(w_.rms_final.size() == c.dim, "Llama: rms_final has ", w_.rms_final.size(),
                " values, expected dim = ", c.dim);
    const auto& cls = w_.output_matrix();
    SPARQ_CHECK(cls.rows() == c.vocab_size && cls.cols() == c.dim, "Llama: classifier is ",
                cls.rows(), "x", cls.cols(), ", expected ", c.vocab_size, "x", c.dim);
    SPARQ_CHECK(std::isfinite(c.rms_eps) && c.rms_eps > 0, "Llama: rms_eps = ", c.rms_eps,
                ", expected a positive finite value");
    SPARQ_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 0, "Llama: rope_theta = ",
                c.rope_theta, ", expected a positive finite value");
    ops_.resize(c.n_layers);
    is_view_.resize(c.n_layers);
    for (std::size_t b = 0; b < c.n_layers; ++b) {
      is_view_[b].fill(true);
      if (load_blocks) refresh_block(b);
      else w_.blocks[b] = LlamaBlock{};
    }
    classifier_ = std::make_unique<DenseLinear>(DenseLinear::view_of(cls.view()));
    // RoPE angles, computed in double and rounded once.
    const std::size_t hd = c.head_dim(), half = hd / 2;
    rope_cos_.resize(c.seq_len * half);
    rope_sin_.resize(c.seq_len * half);
    for (std::size_t p = 0; p < c.seq_len; ++p) {
      for (std::size_t i = 0; i < half; ++i) {
        const double freq = std::pow(static_cast<double>(c.rope_theta),
                                     -static_cast<double>(2 * i) / static_cast<double>(hd));
        const double a = static_cast<double>(p) * freq;
        rope_cos_[p * half + i] = static_cast<float>(std::cos(a));
        rope_sin_[p * half + i] = static_cast<float>(std::sin(a));
      }
    }
  }

 public:
  Llama(const Llama&) = delete;
  Llama& operator=(const Llama&) = delete;
  Llama(Llama&&) noexcept = default;  // heap buffers keep their addresses: the views stay valid
  Llama& operator=(Llama&&) noexcept = default;

  [[nodiscard]] const LlamaConfig& config() const noexcept { return w_.config; }
  [[nodiscard]] const LlamaWeights& weights() const noexcept { return w_; }

  /// Mutable float weights of block `b`. After editing (or replacing) its matrices, call
  /// refresh_block(b) so that the dense views point at the new data.
  [[nodiscard]] LlamaBlock& block_weights(std::size_t b) {
    check_block(b);
    return w_.blocks[b];
  }

  /// The token embedding's values, to edit in place (e.g. model::quantize_embeddings). The shape is
  /// fixed; the classifier (the same matrix when shared) reads the edited values at once.
  [[nodiscard]] MatrixView<float> token_embedding_values() noexcept { return w_.token_embedding.view(); }
  /// The classifier's values, to edit in place: the token embedding's when shared.
  [[nodiscard]] MatrixView<float> classifier_values() noexcept {
    return w_.config.shared_classifier ? w_.token_embedding.view() : w_.classifier.view();
  }

  /// Re-creates the dense views of block `b` for every linear that was not replaced by
  /// set_linear, after checking every matrix still has its configured shape. A linear replaced by
  /// an op may have its float matrix released (empty 0x0, see model::release_float_weights); any
  /// other shape is an error.
  void refresh_block(std::size_t b) {
    check_block(b);
    const auto& c = w_.config;
    auto& blk = w_.blocks[b];
    SPARQ_CHECK(blk.rms_att.size() == c.dim && blk.rms_ffn.size() == c.dim, "Llama: block ", b,
                " RMSNorm weights have ", blk.rms_att.size(), "/", blk.rms_ffn.size(),
                " values, expected dim = ", c.dim);
    for (Linear l : all_linears) {
      const auto& m = blk.linear(l);
      const auto [rows, cols] = expected_shape(l);
      const bool view = is_view_[b][index(l)];
      SPARQ_CHECK((m.rows() == rows && m.cols() == cols) || (!view && m.size() == 0), "Llama: block ", b, " ",
                  linear_name(l), " is ", m.rows(), "x", m.cols(), ", expected ", rows, "x", cols,
                  view ? "" : " (or 0x0 if its float weights were released)");
    }
    for (Linear l : all_linears) {  // only after every check: a failed refresh changes nothing
      if (is_view_[b][index(l)]) ops_[b][index(l)] = std::make_unique<DenseLinear>(DenseLinear::view_of(blk.linear(l).view()));
    }
  }

  /// True if the float matrix of (b, l) was released (see model::release_float_weights): the
  /// linear then runs only through its op and its dense view cannot be restored.
  [[nodiscard]] bool float_weights_released(std::size_t b, Linear l) const {
    check_block(b);
    return w_.blocks[b].linear(l).size() == 0;
  }

  /// [out x in] shape of linear `l` in this model.
  [[nodiscard]] std::pair<std::size_t, std::size_t> expected_shape(Linear l) const noexcept {
    const auto& c = w_.config;
    switch (l) {
      case Linear::wq: case Linear::wo: return {c.dim, c.dim};
      case Linear::wk: case Linear::wv: return {c.kv_dim(), c.dim};
      case Linear::w1: case Linear::w3: return {c.hidden_dim, c.dim};
      case Linear::w2: return {c.dim, c.hidden_dim};
    }
    return {0, 0};
  }

  [[nodiscard]] const LinearOp& linear(std::size_t b, Linear l) const {
    check_loaded(b);
    return *ops_[b][index(l)];
  }

  /// Replaces the op of (b, l). Throws sparq::error on a null op or a shape mismatch.
  void set_linear(std::size_t b, Linear l, std::unique_ptr<LinearOp> op) {
    check_loaded(b);
    SPARQ_CHECK(op != nullptr, "Llama::set_linear: null op for block ", b, " ", linear_name(l));
    const auto [rows, cols] = expected_shape(l);
    SPARQ_CHECK(op->out_features() == rows && op->in_features() == cols, "Llama::set_linear: block ",
                b, " ", linear_name(l), " op is ", op->out_features(), "x", op->in_features(),
                ", expected ", rows, "x", cols);
    ops_[b][index(l)] = std::move(op);
    is_view_[b][index(l)] = false;
  }

  /// Takes the op of (b, l) out (e.g. to wrap it) and puts the dense view back in its place.
  /// Throws sparq::error, leaving the model unchanged, if that float matrix was released or has
  /// the wrong shape.
  [[nodiscard]] std::unique_ptr<LinearOp> take_linear(std::size_t b, Linear l) {
    check_loaded(b);
    const auto& m = w_.blocks[b].linear(l);
    const auto [rows, cols] = expected_shape(l);
    SPARQ_CHECK(m.rows() == rows && m.cols() == cols, "Llama::take_linear: block ", b, " ", linear_name(l),
                " float weights are ", m.rows(), "x", m.cols(), ", expected ", rows, "x", cols,
                m.size() == 0 ? " (released: the dense view cannot be restored; set_linear replaces the op)" : "");
    auto op = std::move(ops_[b][index(l)]);
    is_view_[b][index(l)] = true;
    try {
      refresh_block(b);
    } catch (...) {  // another linear of the block is malformed: put everything back
      ops_[b][index(l)] = std::move(op);
      is_view_[b][index(l)] = false;
      throw;
    }
    return op;
  }

  /// Restores the dense view of the block's float weights for (b, l).
  void reset_linear(std::size_t b, Linear l) { (void)take_linear(b, l); }

  /// Fake-quantizes the outputs of wq, wk and wv per token (before RoPE) with `bits` (2..16), as
  /// SmoothQuant/JSQ do to simulate int8 attention BMMs (`quantize_bmm_input`); 0 switches it off.
  void set_attention_input_bits(int bits) {
    SPARQ_CHECK(bits == 0 || (bits >= 2 && bits <= 16), "Llama::set_attention_input_bits: bits = ",
                bits, ", expected 0 (off) or 2..16");
    attn_bits_ = bits;
  }
  [[nodiscard]] int attention_input_bits() const noexcept { return attn_bits_; }

  /// Sum of weight_bytes() over every decoder linear.
  [[nodiscard]] std::size_t linear_weight_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& blk : ops_)
      for (const auto& op : blk)
        if (op) n += op->weight_bytes();  // unloaded blocks (DeferredBlocks) count nothing
    return n;
  }

  /// X[i] = embedding row of tokens[i]. Throws sparq::error on an id outside the vocabulary.
  void embed(std::span<const int> tokens, MatrixView<float> X) const {
    const auto& c = w_.config;
    SPARQ_CHECK(X.rows() == tokens.size() && X.cols() == c.dim, "Llama::embed: output is ", X.rows(),
                "x", X.cols(), ", expected ", tokens.size(), "x", c.dim);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      check_token(tokens[i]);
      const float* e = w_.token_embedding.row(static_cast<std::size_t>(tokens[i]));
      std::copy(e, e + c.dim, X.row(i));
    }
  }

  /// Runs block `b` over the rows of X in place (X: n tokens x dim at positions pos0..pos0+n-1),
  /// reading and writing keys/values of cache layer `cache_layer` of `st` (positions 0..pos0-1
  /// must already be there). `hook`, when given, sees the input of every linear group.
  /// Does not change st.length().
  void forward_block(std::size_t b, MatrixView<float> X, std::size_t pos0, LlamaState& st,
                     std::size_t cache_layer, const LinearInputHook* hook = nullptr) const {
    check_loaded(b);
    const auto& c = w_.config;
    const std::size_t n = X.rows();
    SPARQ_CHECK(X.cols() == c.dim, "Llama::forward_block: X has ", X.cols(), " columns, expected dim ",
                c.dim);
    SPARQ_CHECK(cache_layer < st.cache_layers(), "Llama::forward_block: cache layer ", cache_layer,
                " but the state holds ", st.cache_layers());
    SPARQ_CHECK(pos0 <= st.capacity() && n <= st.capacity() - pos0, "Llama::forward_block: positions ",
                pos0, "..", pos0 + n, " exceed the state's capacity ", st.capacity());
    if (n == 0) return;
    st.reserve_rows(c, n);
    const auto& blk = w_.blocks[b];
    const auto& ops = ops_[b];
    const std::size_t dim = c.dim, kv = c.kv_dim(), hd = c.head_dim(), hidden = c.hidden_dim;

    MatrixView<float> xb(st.xb_.data(), n, dim);
    MatrixView<float> q(st.q_.data(), n, dim);
    MatrixView<float> att(st.att_out_.data(), n, dim);
    MatrixView<float> proj(st.proj_.data(), n, dim);
    MatrixView<float> h1(st.h1_.data(), n, hidden);
    MatrixView<float> h3(st.h3_.data(), n, hidden);
    MatrixView<float> kc(st.k_.data(), n, kv);
    MatrixView<float> vc(st.v_.data(), n, kv);

    // Attention.
    rmsnorm(X, blk.rms_att.data(), xb);
    if (hook) (*hook)(Linear::wq, xb);
    ops[index(Linear::wq)]->gemm(xb, q);
    ops[index(Linear::wk)]->gemm(xb, kc);
    ops[index(Linear::wv)]->gemm(xb, vc);
    if (attn_bits_ > 0) {
      for (std::size_t i = 0; i < n; ++i) {
        fake_quantize_token(q.row(i), q.row(i), dim, attn_bits_);
        fake_quantize_token(kc.row(i), kc.row(i), kv, attn_bits_);
        fake_quantize_token(vc.row(i), vc.row(i), kv, attn_bits_);
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      rope(q.row(i), dim, pos0 + i);
      rope(kc.row(i), kv, pos0 + i);
    }
    const std::size_t cap = st.capacity();
    for (std::size_t h = 0; h < c.n_kv_heads; ++h) {  // keys and values into the transposed cache
      float* kt = st.keys(cache_layer, h);
      float* vt = st.values(cache_layer, h);
      for (std::size_t d = 0; d < hd; ++d) {
        for (std::size_t i = 0; i < n; ++i) {
          kt[d * cap + pos0 + i] = kc(i, h * hd + d);
          vt[d * cap + pos0 + i] = vc(i, h * hd + d);
        }
      }
    }
    const std::size_t group = c.n_heads / c.n_kv_heads;
    const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hd));
    float* a = st.att_.data();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t len = pos0 + i + 1;  // causal: positions 0..pos
      for (std::size_t h = 0; h < c.n_heads; ++h) {
        const float* qh = q.row(i) + h * hd;
        const float* kt = st.keys(cache_layer, h / group);
        const float* vt = st.values(cache_layer, h / group);
        kernels::attn_head(qh, inv_sqrt, kt, vt, cap, hd, len, a, att.row(i) + h * hd);
      }
    }
    if (hook) (*hook)(Linear::wo, att);
    ops[index(Linear::wo)]->gemm(att, proj);
    add_rows(X, proj);

    // Feed-forward (SwiGLU).
    rmsnorm(X, blk.rms_ffn.data(), xb);
    if (hook) (*hook)(Linear::w1, xb);
    ops[index(Linear::w1)]->gemm(xb, h1);
    ops[index(Linear::w3)]->gemm(xb, h3);
    for (std::size_t i = 0; i < n; ++i) {
      float* g = h1.row(i);
      const float* u = h3.row(i);
      for (std::size_t j = 0; j < hidden; ++j) g[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    }
    if (hook) (*hook)(Linear::w2, h1);
    ops[index(Linear::w2)]->gemm(h1, proj);
    add_rows(X, proj);
  }

  /// logits = classifier · rms_final(X) for every row of X (logits: rows x vocab).
  void logits(MatrixView<const float> X, MatrixView<float> out, LlamaState& st) const {
    const auto& c = w_.config;
    SPARQ_CHECK(X.cols() == c.dim && out.rows() == X.rows() && out.cols() == c.vocab_size,
                "Llama::logits: X is ", X.rows(), "x", X.cols(), " and out ", out.rows(), "x",
                out.cols(), ", expected n x ", c.dim, " and n x ", c.vocab_size);
    st.reserve_rows(c, X.rows());
    MatrixView<float> xb(st.xb_.data(), X.rows(), c.dim);
    rmsnorm(X, w_.rms_final.data(), xb);
    classifier_->gemm(xb, out);
  }

  /// Runs `tokens` at positions st.length()..; writes logits of every token (out has n rows), of
  /// the last token only (1 row) or none (0 rows); advances st.length() by n.
  void prefill(std::span<const int> tokens, LlamaState& st, MatrixView<float> out) const {
    const auto& c = w_.config;
    const std::size_t n = tokens.size();
    SPARQ_CHECK(st.cache_layers() == c.n_layers, "Llama::prefill: the state caches ",
                st.cache_layers(), " layers, the model has ", c.n_layers);
    SPARQ_CHECK(n <= st.capacity() - st.length(), "Llama::prefill: ", n, " tokens after ",
                st.length(), " cached positions exceed the capacity ", st.capacity());
    SPARQ_CHECK(out.rows() == 0 || out.rows() == 1 || out.rows() == n, "Llama::prefill: ",
                out.rows(), " logit rows, expected 0, 1 or ", n);
    SPARQ_CHECK(out.rows() == 0 || out.cols() == c.vocab_size, "Llama::prefill: logits have ",
                out.cols(), " columns, expected vocab_size ", c.vocab_size);
    if (n == 0) return;
    st.reserve_rows(c, n);
    MatrixView<float> X(st.x_.data(), n, c.dim);
    embed(tokens, X);
    for (std::size_t b = 0; b < c.n_layers; ++b) forward_block(b, X, st.length(), st, b);
    st.length_ += n;
    if (out.rows() == n) {
      logits(X, out, st);
    } else if (out.rows() == 1) {
      logits(X.rows_range(n - 1, 1), out, st);
    }
  }

  /// One decode step: runs `token` at position st.length(), advances it, returns the logits
  /// (vocab floats, held by st until the next step).
  const float* decode(int token, LlamaState& st) const {
    const int t[1] = {token};
    prefill(std::span<const int>(t, 1), st, MatrixView<float>(st.logits_.data(), 1, w_.config.vocab_size));
    return st.logits_.data();
  }

  /// Applies llama2.c-convention RoPE at position `pos` to a vector of `n` floats (whole heads).
  void rope(float* v, std::size_t n, std::size_t pos) const noexcept {
    const std::size_t hd = w_.config.head_dim(), half = hd / 2;
    const float* cs = rope_cos_.data() + pos * half;
    const float* sn = rope_sin_.data() + pos * half;
    for (std::size_t h0 = 0; h0 < n; h0 += hd) {
      for (std::size_t i = 0; i < half; ++i) {
        const float v0 = v[h0 + 2 * i], v1 = v[h0 + 2 * i + 1];
        v[h0 + 2 * i] = v0 * cs[i] - v1 * sn[i];
        v[h0 + 2 * i + 1] = v0 * sn[i] + v1 * cs[i];
      }
    }
  }

  /// out[i] = w ⊙ X[i] / sqrt(mean(X[i]²) + eps), the sum of squares in double.
  void rmsnorm(MatrixView<const float> X, const float* w, MatrixView<float> out) const noexcept {
    const std::size_t d = X.cols();
    for (std::size_t i = 0; i < X.rows(); ++i) {
      const float* x = X.row(i);
      double ss = 0.0;
      for (std::size_t j = 0; j < d; ++j) ss += static_cast<double>(x[j]) * x[j];
      const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + w_.config.rms_eps));
      float* o = out.row(i);
      for (std::size_t j = 0; j < d; ++j) o[j] = w[j] * (r * x[j]);
    }
  }

 private:
  static constexpr std::size_t index(Linear l) noexcept { return static_cast<std::size_t>(l); }

  static void add_rows(MatrixView<float> X, MatrixView<const float> Y) noexcept {
    for (std::size_t i = 0; i < X.rows(); ++i) {
      float* x = X.row(i);
      const float* y = Y.row(i);
      for (std::size_t j = 0; j < X.cols(); ++j) x[j] += y[j];
    }
  }

  void check_block(std::size_t b) const {
    SPARQ_CHECK(b < w_.config.n_layers, "Llama: block ", b, " is out of range 0..",
                w_.config.n_layers - 1);
  }
  void check_loaded(std::size_t b) const {
    check_block(b);
    SPARQ_CHECK(ops_[b][0] != nullptr, "Llama: block ", b, " is not loaded (a model built with DeferredBlocks "
                "holds only the blocks given to load_block)");
  }
  void check_token(int t) const {
    SPARQ_CHECK(t >= 0 && static_cast<std::size_t>(t) < w_.config.vocab_size, "Llama: token id ", t,
                " is outside the vocabulary 0..", w_.config.vocab_size - 1);
  }

  LlamaWeights w_;
  std::vector<std::array<std::unique_ptr<LinearOp>, 7>> ops_;
  std::vector<std::array<bool, 7>> is_view_;
  std::unique_ptr<DenseLinear> classifier_;
  std::vector<float> rope_cos_, rope_sin_;
  int attn_bits_ = 0;
};

}  // namespace sparq::model
