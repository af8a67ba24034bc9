// GgufLlama: a Llama-architecture GGUF file mapped to model::LlamaWeights plus its vocabulary.
//
// Config from metadata: llama.embedding_length (dim), feed_forward_length (hidden_dim),
// block_count, attention.head_count, attention.head_count_kv (default head_count),
// context_length (seq_len), attention.layer_norm_rms_epsilon (default 1e-5), rope.freq_base
// (default 10000); rope.dimension_count, when present, must equal the head dimension (partial
// rotary embeddings are not supported). Tensors (dims in ggml order [in, out], read into row-major
// [out x in]): token_embd, output_norm, output (absent -> shared classifier), blk.N.{attn_norm,
// attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_down, ffn_up}.weight.
//
// Row order of attn_q / attn_k: llama.cpp's "llama" architecture applies RoPE to adjacent pairs
// (x[2i], x[2i+1]) of each head, exactly as llama2.c does, so GGUF rows and llama2.c rows are the
// same and sparq reads and writes them unchanged. (llama.cpp's HF converter permutes HF q/k rows,
// which rotate (x[i], x[i + hd/2]), into this layout; a llama2.c checkpoint already has it. The
// stories260K test checks bit-identity against the llama2.c file.) An `output.weight` that is
// bit-identical to `token_embd.weight` is read as a shared classifier.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/gguf.hpp"
#include "sparq/io/gguf_writer.hpp"
#include "sparq/model/llama_weights.hpp"
#include "sparq/model/tokenizer.hpp"

namespace sparq::io {

/// The tokenizer arrays of a GGUF file (tokenizer.ggml.*). Model "llama" (SentencePiece BPE): pieces
/// use "▁" (U+2581) for space, with scores. Model "gpt2" (byte-level BPE): pieces in GPT-2's
/// byte-to-unicode spelling, with merges and the pre-tokenizer's name.
struct GgufVocab {
  std::string model;                 ///< tokenizer.ggml.model ("llama" or "gpt2")
  std::vector<std::string> tokens;
  std::vector<float> scores;         ///< empty if absent
  /// empty if absent (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)
  std::vector<std::int32_t> token_types;
  std::vector<std::string> merges;   ///< tokenizer.ggml.merges ("a b" in rank order), gpt2 only
  std::string pre;                   ///< tokenizer.ggml.pre ("gpt2", "llama-bpe", "qwen2", ...), if present
  std::int64_t bos_id = -1, eos_id = -1, unk_id = -1;  ///< -1 when absent
  int add_bos = -1, add_eos = -1;    ///< tokenizer.ggml.add_bos_token / add_eos_token (-1 absent, 0, 1)

  /// Pieces in llama2.c style: every "▁" replaced by " ".
  [[nodiscard]] std::vector<std::string> llama2c_pieces() const {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back(sentencepiece_to_text(t));
    return out;
  }

  /// Replaces each U+2581 (bytes E2 96 81) by a space.
  [[nodiscard]] static std::string sentencepiece_to_text(const std::string& s) {
    std::string r;
    r.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (i + 2 < s.size() && s[i] == '\xE2' && s[i + 1] == '\x96' && s[i + 2] == '\x81') {
        r.push_back(' ');
        i += 2;
      } else {
        r.push_back(s[i]);
      }
    }
    return r;
  }
  /// Replaces each space by U+2581.
  [[nodiscard]] static std::string text_to_sentencepiece(const std::string& s) {
    std::string r;
    for (char ch : s) {
      if (ch == ' ') r += "\xE2\x96\x81";
      else r.push_back(ch);
    }
    return r;
  }
};

struct GgufLlama {
  model::LlamaWeights weights;
  GgufVocab vocab;
  std::string name;  ///< general.name, if present
  /// Run-time activation quantization a sparq-written file declares (sparq.activation_bits,
  /// sparq.attention_bits; 0 = float activations, also when absent). The weights do not depend on
  /// it; io::load applies it (InputQuantLinear, Llama::set_attention_input_bits) unless asked not to.
  int activation_bits = 0;
  int attention_bits = 0;
  /// sparq.linear_activation_bits: one entry per decoder linear, block-major in all_linears order
  /// (empty when absent: activation_bits then applies to every linear).
  std::vector<int> linear_activation_bits;
};

namespace detail {

inline std::size_t gguf_cfg_value(const GgufFile& f, const std::string& key) {
  const auto v = f.get_uint(key);
  SPARQ_CHECK(v > 0 && v < (1ull << 24), f.what, ": metadata '", key, "' = ", v, ", expected 1..2^24-1");
  return static_cast<std::size_t>(v);
}

/// Checks that tensor `name` exists with ggml dims {cols, rows} ({cols} when rows == 0).
inline const GgufTensorInfo& gguf_expect_tensor(const GgufFile& f, const std::string& name, std::size_t cols,
                                                std::size_t rows) {
  const auto& t = f.tensor(name);
  const bool ok = rows == 0 ? (t.dims.size() == 1 && t.dims[0] == cols)
                            : (t.dims.size() == 2 && t.dims[0] == cols && t.dims[1] == rows);
  if (!ok) {
    std::string got;
    for (auto d : t.dims) got += (got.empty() ? "" : ", ") + std::to_string(d);
    sparq::detail::fail(f.what, ": tensor '", name, "' has dims [", got, "], expected [", cols,
                        rows ? ", " + std::to_string(rows) : std::string(), "]");
  }
  return t;
}

/// Decodes tensor `name` (shape checked by gguf_expect_tensor) into dst and checks it is finite.
inline void gguf_load_into(const GgufFile& f, const std::string& name, std::size_t cols, std::size_t rows,
                           float* dst) {
  const auto& t = gguf_expect_tensor(f, name, cols, rows);
  const std::size_t n = cols * (rows ? rows : 1);
  ggml_decode(t.type, f.tensor_data(t), n, dst);
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(dst[i])) {
      sparq::detail::fail(f.what, ": tensor '", name, "' has non-finite value ", dst[i], " at flat index ", i);
    }
  }
}

inline const char* gguf_block_tensor(model::Linear l) noexcept {
  switch (l) {
    case model::Linear::wq: return "attn_q";
    case model::Linear::wk: return "attn_k";
    case model::Linear::wv: return "attn_v";
    case model::Linear::wo: return "attn_output";
    case model::Linear::w1: return "ffn_gate";
    case model::Linear::w2: return "ffn_down";
    case model::Linear::w3: return "ffn_up";
  }
  return "?";
}

}  // namespace detail

/// Reads the vocabulary arrays (all optional except tokens, which must be strings if present).
[[nodiscard]] inline GgufVocab gguf_vocab(const GgufFile& f) {
  GgufVocab v;
  if (const auto* m = f.find_string("tokenizer.ggml.model")) v.model = *m;
  if (const auto* a = f.find_array("tokenizer.ggml.tokens")) {
    SPARQ_CHECK(a->elem_type == GgufType::string, f.what, ": tokenizer.ggml.tokens is an array of ",
                gguf_type_name(a->elem_type), ", expected string");
    v.tokens = a->strings;
  }
  if (const auto* a = f.find_array("tokenizer.ggml.scores")) {
    SPARQ_CHECK(a->elem_type == GgufType::f32, f.what, ": tokenizer.ggml.scores is an array of ",
                gguf_type_name(a->elem_type), ", expected f32");
    SPARQ_CHECK(a->size() == v.tokens.size(), f.what, ": tokenizer.ggml.scores has ", a->size(),
                " entries for ", v.tokens.size(), " tokens");
    v.scores.resize(a->size());
    if (!v.scores.empty()) std::memcpy(v.scores.data(), a->raw.data(), a->raw.size());
  }
  if (const auto* a = f.find_array("tokenizer.ggml.token_type")) {
    SPARQ_CHECK(a->elem_type == GgufType::i32, f.what, ": tokenizer.ggml.token_type is an array of ",
                gguf_type_name(a->elem_type), ", expected i32");
    SPARQ_CHECK(a->size() == v.tokens.size(), f.what, ": tokenizer.ggml.token_type has ", a->size(),
                " entries for ", v.tokens.size(), " tokens");
    v.token_types.resize(a->size());
    if (!v.token_types.empty()) std::memcpy(v.token_types.data(), a->raw.data(), a->raw.size());
  }
  auto id = [&](const char* key, std::int64_t& out) {
    if (const auto x = f.find_uint(key)) {
      SPARQ_CHECK(*x < v.tokens.size(), f.what, ": ", key, " = ", *x, ", expected < ", v.tokens.size(),
                  " (the number of tokens)");
      out = static_cast<std::int64_t>(*x);
    }
  };
  id("tokenizer.ggml.bos_token_id", v.bos_id);
  id("tokenizer.ggml.eos_token_id", v.eos_id);
  id("tokenizer.ggml.unknown_token_id", v.unk_id);
  if (const auto* a = f.find_array("tokenizer.ggml.merges")) {
    SPARQ_CHECK(a->elem_type == GgufType::string, f.what, ": tokenizer.ggml.merges is an array of ",
                gguf_type_name(a->elem_type), ", expected string");
    v.merges = a->strings;
  }
  if (const auto* p = f.find_string("tokenizer.ggml.pre")) v.pre = *p;
  auto flag = [&](const char* key, int& out) {
    if (const auto* x = f.find(key)) {
      const auto* b = std::get_if<bool>(x);
      SPARQ_CHECK(b != nullptr, f.what, ": metadata '", key, "' has type ", gguf_type_name(gguf_type_of(*x)),
                  ", expected bool");
      out = *b ? 1 : 0;
    }
  };
  flag("tokenizer.ggml.add_bos_token", v.add_bos);
  flag("tokenizer.ggml.add_eos_token", v.add_eos);
  return v;
}

/// The byte-level BPE vocabulary of a GGUF `gpt2` tokenizer: tokens of type 3 (control) and 4
/// (user-defined) are special tokens (matched before pre-tokenization, as llama.cpp does), type 5
/// (unused) ids are left empty; tokenizer.ggml.pre names the pre-tokenizer ("gpt2"; "llama-bpe" or
/// "llama3" = Llama 3, which also keeps pre-tokens found whole in the vocabulary and adds BOS by
/// default; "qwen2"). Throws sparq::error naming `what` and the field for anything else.
[[nodiscard]] inline model::BpeVocab gguf_bpe_vocab(const GgufVocab& v, const std::string& what) {
  SPARQ_CHECK(v.model == "gpt2", what, ": tokenizer.ggml.model = '", v.model, "', expected 'gpt2' (byte-level BPE)");
  SPARQ_CHECK(!v.tokens.empty(), what, ": tokenizer.ggml.tokens is missing or empty");
  SPARQ_CHECK(!v.merges.empty(), what, ": tokenizer.ggml.merges is missing or empty (needed for byte-level BPE)");
  model::BpeVocab b;
  if (v.pre == "gpt2") {
    b.pre = model::PreTokenizer::gpt2;
  } else if (v.pre == "llama-bpe" || v.pre == "llama3") {
    b.pre = model::PreTokenizer::llama3;
    b.ignore_merges = true;
    b.add_bos = true;
  } else if (v.pre == "qwen2") {
    b.pre = model::PreTokenizer::qwen2;
  } else {
    sparq::detail::fail(what, ": tokenizer.ggml.pre = '", v.pre.empty() ? std::string("(missing)") : v.pre,
                        "' is not supported (expected gpt2, llama-bpe, llama3 or qwen2)");
  }
  b.tokens = v.tokens;
  SPARQ_CHECK(v.token_types.empty() || v.token_types.size() == v.tokens.size(), what,
              ": tokenizer.ggml.token_type has ", v.token_types.size(), " entries for ", v.tokens.size(), " tokens");
  for (std::size_t i = 0; i < v.token_types.size(); ++i) {
    const auto t = v.token_types[i];
    if (t == 3 || t == 4) {
      if (!b.tokens[i].empty()) b.special_ids.push_back(static_cast<int>(i));
    } else if (t == 5) {
      b.tokens[i].clear();
    }
  }
  b.merges.reserve(v.merges.size());
  for (std::size_t r = 0; r < v.merges.size(); ++r) {
    const std::string& m = v.merges[r];
    const auto sp = m.find(' ');
    SPARQ_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos,
                what, ": tokenizer.ggml.merges[", r, "] = '", m, "', expected two tokens separated by one space");
    b.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  b.bos_id = static_cast<int>(v.bos_id);
  b.eos_id = static_cast<int>(v.eos_id);
  if (v.add_bos >= 0) b.add_bos = v.add_bos == 1;
  if (v.add_eos >= 0) b.add_eos = v.add_eos == 1;
  SPARQ_CHECK(!b.add_bos || b.bos_id >= 0, what, ": tokenizer.ggml.add_bos_token is true but there is no "
              "tokenizer.ggml.bos_token_id");
  SPARQ_CHECK(!b.add_eos || b.eos_id >= 0, what, ": tokenizer.ggml.add_eos_token is true but there is no "
              "tokenizer.ggml.eos_token_id");
  return b;
}

/// Maps a parsed GGUF file of architecture "llama" to float weights and vocabulary.
[[nodiscard]] inline GgufLlama gguf_to_llama(const GgufFile& f) {
  const auto* arch = f.find_string("general.architecture");
  SPARQ_CHECK(arch != nullptr, f.what, ": missing metadata key 'general.architecture'");
  SPARQ_CHECK(*arch == "llama", f.what, ": general.architecture = '", *arch, "', expected 'llama'");
  model::LlamaConfig cfg;
  cfg.dim = detail::gguf_cfg_value(f, "llama.embedding_length");
  cfg.hidden_dim = detail::gguf_cfg_value(f, "llama.feed_forward_length");
  cfg.n_layers = detail::gguf_cfg_value(f, "llama.block_count");
  cfg.n_heads = detail::gguf_cfg_value(f, "llama.attention.head_count");
  cfg.n_kv_heads = f.find("llama.attention.head_count_kv") ? detail::gguf_cfg_value(f, "llama.attention.head_count_kv")
                                                           : cfg.n_heads;
  cfg.seq_len = detail::gguf_cfg_value(f, "llama.context_length");
  const double eps = f.find_float("llama.attention.layer_norm_rms_epsilon").value_or(1e-5);
  SPARQ_CHECK(eps > 0 && eps < 1, f.what, ": llama.attention.layer_norm_rms_epsilon = ", eps, ", expected in (0, 1)");
  cfg.rms_eps = static_cast<float>(eps);
  const double theta = f.find_float("llama.rope.freq_base").value_or(10000.0);
  SPARQ_CHECK(theta > 1 && std::isfinite(theta) && theta < 1e30, f.what, ": llama.rope.freq_base = ", theta,
              ", expected a finite value > 1");
  cfg.rope_theta = static_cast<float>(theta);
  const auto& emb = f.tensor("token_embd.weight");
  SPARQ_CHECK(emb.dims.size() == 2 && emb.dims[1] < (1ull << 24), f.what,
              ": token_embd.weight must be 2-D [dim, vocab] with vocab < 2^24");
  cfg.vocab_size = static_cast<std::size_t>(emb.dims[1]);
  const auto* out = f.find_tensor("output.weight");
  cfg.shared_classifier = out == nullptr ||
                          (out->type == emb.type && out->dims == emb.dims &&
                           std::memcmp(f.tensor_data(*out), f.tensor_data(emb), emb.n_bytes) == 0);
  try {
    cfg.validate();
  } catch (const error& e) {
    sparq::detail::fail(f.what, ": ", e.what());
  }
  if (const auto rd = f.find_uint("llama.rope.dimension_count")) {
    SPARQ_CHECK(*rd == cfg.head_dim(), f.what, ": llama.rope.dimension_count = ", *rd,
                ", expected the head dimension ", cfg.head_dim(), " (partial RoPE is not supported)");
  }

  GgufLlama r;
  r.vocab = gguf_vocab(f);
  if (!r.vocab.tokens.empty()) {
    SPARQ_CHECK(r.vocab.tokens.size() == cfg.vocab_size, f.what, ": tokenizer.ggml.tokens has ",
                r.vocab.tokens.size(), " tokens but token_embd.weight has ", cfg.vocab_size, " rows");
  }
  if (const auto* n = f.find_string("general.name")) r.name = *n;
  auto bits = [&](const char* key) {
    const std::uint64_t b = f.find_uint(key).value_or(0);
    SPARQ_CHECK(b == 0 || (b >= 2 && b <= 16), f.what, ": metadata '", key, "' = ", b, ", expected 0 or 2..16");
    return static_cast<int>(b);
  };
  r.activation_bits = bits("sparq.activation_bits");
  r.attention_bits = bits("sparq.attention_bits");
  if (const auto* a = f.find_array("sparq.linear_activation_bits")) {
    const std::size_t n = cfg.n_layers * std::size(model::all_linears);
    SPARQ_CHECK(a->elem_type == GgufType::i32 && a->size() == n, f.what, ": sparq.linear_activation_bits is an array of ",
                a->size(), " ", gguf_type_name(a->elem_type), ", expected ", n, " i32 (one per decoder linear)");
    for (std::size_t i = 0; i < n; ++i) {
      const double b = a->number(i);
      SPARQ_CHECK(b == 0 || (b >= 2 && b <= 16), f.what, ": sparq.linear_activation_bits[", i, "] = ", b,
                  ", expected 0 or 2..16");
      r.linear_activation_bits.push_back(static_cast<int>(b));
    }
  }
  // Every tensor is checked against the config before anything is allocated, so the allocation
  // is bounded by the tensor bytes actually present in the file (hostile metadata cannot make
  // LlamaWeights::zeros ask for terabytes).
  {
    const std::size_t dd = cfg.dim, hh = cfg.hidden_dim, kk = cfg.kv_dim();
    detail::gguf_expect_tensor(f, "token_embd.weight", dd, cfg.vocab_size);
    detail::gguf_expect_tensor(f, "output_norm.weight", dd, 0);
    if (!cfg.shared_classifier) detail::gguf_expect_tensor(f, "output.weight", dd, cfg.vocab_size);
    for (std::size_t l = 0; l < cfg.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      detail::gguf_expect_tensor(f, p + "attn_norm.weight", dd, 0);
      detail::gguf_expect_tensor(f, p + "ffn_norm.weight", dd, 0);
      const std::size_t shapes[7][2] = {{dd, dd}, {dd, kk}, {dd, kk}, {dd, dd}, {dd, hh}, {hh, dd}, {dd, hh}};
      for (model::Linear lin : model::all_linears) {
        const auto i = static_cast<std::size_t>(lin);
        detail::gguf_expect_tensor(f, p + detail::gguf_block_tensor(lin) + ".weight", shapes[i][0], shapes[i][1]);
      }
    }
  }
  auto& w = r.weights;
  w = model::LlamaWeights::zeros(cfg);
  const std::size_t d = cfg.dim;
  detail::gguf_load_into(f, "token_embd.weight", d, cfg.vocab_size, w.token_embedding.data());
  detail::gguf_load_into(f, "output_norm.weight", d, 0, w.rms_final.data());
  if (!cfg.shared_classifier) detail::gguf_load_into(f, "output.weight", d, cfg.vocab_size, w.classifier.data());
  for (std::size_t l = 0; l < cfg.n_layers; ++l) {
    auto& b = w.blocks[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    detail::gguf_load_into(f, p + "attn_norm.weight", d, 0, b.rms_att.data());
    detail::gguf_load_into(f, p + "ffn_norm.weight", d, 0, b.rms_ffn.data());
    for (model::Linear lin : model::all_linears) {
      auto& m = b.linear(lin);
      detail::gguf_load_into(f, p + detail::gguf_block_tensor(lin) + ".weight", m.cols(), m.rows(), m.data());
    }
  }
  return r;
}

/// Reads a Llama GGUF file (see the file comment for the mapping).
[[nodiscard]] inline GgufLlama read_gguf_llama(const std::string& path) { return gguf_to_llama(read_gguf(path)); }

/// Reorders the rows of a q or k projection from Hugging Face order (RoPE rotates x[i] with
/// x[i + hd/2] inside each head) to GGUF / llama2.c order (RoPE rotates x[2i] with x[2i+1]):
/// gguf row h*hd + 2i + j = hf row h*hd + j*hd/2 + i, for head h < heads, i < hd/2, j in {0, 1}.
/// Use heads = n_heads for q and n_kv_heads for k. Needed only when importing HF checkpoints;
/// GGUF and llama2.c files are already in GGUF order.
[[nodiscard]] inline Matrix<float> permute_qk_hf_to_gguf(const Matrix<float>& w, std::size_t heads) {
  SPARQ_CHECK(heads > 0 && w.rows() % (2 * heads) == 0, "permute_qk_hf_to_gguf: ", w.rows(),
              " rows do not split into ", heads, " heads of even size");
  const std::size_t hd = w.rows() / heads, half = hd / 2;
  Matrix<float> out(w.rows(), w.cols());
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t i = 0; i < half; ++i)
      for (std::size_t j = 0; j < 2; ++j)
        std::memcpy(out.row(h * hd + 2 * i + j), w.row(h * hd + j * half + i), w.cols() * sizeof(float));
  return out;
}

/// The inverse of permute_qk_hf_to_gguf (GGUF / llama2.c order back to Hugging Face order).
[[nodiscard]] inline Matrix<float> permute_qk_gguf_to_hf(const Matrix<float>& w, std::size_t heads) {
  SPARQ_CHECK(heads > 0 && w.rows() % (2 * heads) == 0, "permute_qk_gguf_to_hf: ", w.rows(),
              " rows do not split into ", heads, " heads of even size");
  const std::size_t hd = w.rows() / heads, half = hd / 2;
  Matrix<float> out(w.rows(), w.cols());
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t i = 0; i < half; ++i)
      for (std::size_t j = 0; j < 2; ++j)
        std::memcpy(out.row(h * hd + j * half + i), w.row(h * hd + 2 * i + j), w.cols() * sizeof(float));
  return out;
}

/// Options of write_gguf_llama.
struct GgufLlamaWriteOptions {
  GgmlType linear_type = GgmlType::F32;     ///< the seven block linears
  GgmlType embedding_type = GgmlType::F32;  ///< token_embd (and output when not shared)
  /// Used for a tensor whose row length is not a multiple of the block size of a quantized
  /// type (e.g. ffn_down of a model with hidden_dim 172); must be F32, F16 or BF16.
  GgmlType fallback_type = GgmlType::F32;
  std::string name = "sparq";
};

/// Sets the metadata llama.cpp needs to run a Llama model: general.* (architecture, name,
/// alignment 32), the llama.* hyper-parameters of `c` and, if given, the tokenizer.ggml.* arrays
/// and special ids of `vocab`.
inline void gguf_llama_metadata(GgufWriter& g, const model::LlamaConfig& c, const GgufVocab* vocab,
                                const std::string& name) {
  c.validate();
  g.set("general.architecture", std::string("llama"));
  g.set("general.name", name);
  g.set("general.alignment", std::uint32_t{32});
  g.set("llama.context_length", static_cast<std::uint32_t>(c.seq_len));
  g.set("llama.embedding_length", static_cast<std::uint32_t>(c.dim));
  g.set("llama.feed_forward_length", static_cast<std::uint32_t>(c.hidden_dim));
  g.set("llama.block_count", static_cast<std::uint32_t>(c.n_layers));
  g.set("llama.attention.head_count", static_cast<std::uint32_t>(c.n_heads));
  g.set("llama.attention.head_count_kv", static_cast<std::uint32_t>(c.n_kv_heads));
  g.set("llama.rope.dimension_count", static_cast<std::uint32_t>(c.head_dim()));
  g.set("llama.rope.freq_base", c.rope_theta);
  g.set("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  if (vocab != nullptr) {
    SPARQ_CHECK(vocab->tokens.size() == c.vocab_size, "write_gguf_llama: vocabulary has ", vocab->tokens.size(),
                " tokens, the model ", c.vocab_size);
    g.set("tokenizer.ggml.model", vocab->model.empty() ? std::string("llama") : vocab->model);
    g.set("tokenizer.ggml.tokens", GgufArray::of_strings(vocab->tokens));
    if (!vocab->scores.empty()) {
      SPARQ_CHECK(vocab->scores.size() == vocab->tokens.size(), "write_gguf_llama: scores size mismatch");
      g.set("tokenizer.ggml.scores", GgufArray::of(GgufType::f32, vocab->scores));
    }
    if (!vocab->token_types.empty()) {
      SPARQ_CHECK(vocab->token_types.size() == vocab->tokens.size(), "write_gguf_llama: token_type size mismatch");
      g.set("tokenizer.ggml.token_type", GgufArray::of(GgufType::i32, vocab->token_types));
    }
    if (vocab->bos_id >= 0) g.set("tokenizer.ggml.bos_token_id", static_cast<std::uint32_t>(vocab->bos_id));
    if (vocab->eos_id >= 0) g.set("tokenizer.ggml.eos_token_id", static_cast<std::uint32_t>(vocab->eos_id));
    if (vocab->unk_id >= 0) g.set("tokenizer.ggml.unknown_token_id", static_cast<std::uint32_t>(vocab->unk_id));
    if (!vocab->merges.empty()) g.set("tokenizer.ggml.merges", GgufArray::of_strings(vocab->merges));
    if (!vocab->pre.empty()) g.set("tokenizer.ggml.pre", vocab->pre);
    if (vocab->add_bos >= 0) g.set("tokenizer.ggml.add_bos_token", vocab->add_bos == 1);
    if (vocab->add_eos >= 0) g.set("tokenizer.ggml.add_eos_token", vocab->add_eos == 1);
  }
}

/// A GGUF vocabulary from a sparq tokenizer of llama2.c / SentencePiece kind: pieces with spaces
/// written as "▁" (BOS / EOS without the newlines llama2.c puts around them), the scores, token types as llama.cpp's converter assigns them (1 normal,
/// 2 unknown for id 0, 3 control for BOS and EOS, 6 byte for the "<0xHH>" pieces) and the special
/// ids (unknown 0). tokenizer.ggml.model = "llama".
[[nodiscard]] inline GgufVocab gguf_vocab_from_tokenizer(const model::Tokenizer& t) {
  GgufVocab v;
  if (const model::BpeTokenizer* b = t.bpe()) {
    // Byte-level BPE: tokenizer.ggml.model = "gpt2"; special tokens are control tokens (3), unused
    // ids "[PAD<id>]" of type 5 (llama.cpp's convention), the rest normal (1).
    const model::BpeVocab& bv = b->vocab();
    v.model = "gpt2";
    v.pre = model::pre_tokenizer_name(bv.pre);
    v.tokens = bv.tokens;
    v.token_types.assign(bv.tokens.size(), 1);
    for (int id : bv.special_ids) v.token_types[static_cast<std::size_t>(id)] = 3;
    for (std::size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i].empty()) {
        v.tokens[i] = "[PAD" + std::to_string(i) + "]";
        v.token_types[i] = 5;
      }
    }
    v.merges.reserve(bv.merges.size());
    for (const auto& [l, r] : bv.merges) v.merges.push_back(l + " " + r);
    v.bos_id = bv.bos_id;
    v.eos_id = bv.eos_id;
    v.add_bos = bv.add_bos ? 1 : 0;
    v.add_eos = bv.add_eos ? 1 : 0;
    return v;
  }
  v.model = "llama";
  const auto n = t.vocab_size();
  v.tokens.reserve(n);
  v.scores.reserve(n);
  v.token_types.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int id = static_cast<int>(i);
    const std::string& p = t.piece(id);
    int byte = -1;
    const bool special = id == t.bos_id() || id == t.eos_id();
    // llama2.c tokenizer files spell BOS / EOS "\n<s>\n" / "\n</s>\n"; GGUF has "<s>" / "</s>".
    const bool nl = special && p.size() > 2 && p.front() == '\n' && p.back() == '\n';
    v.tokens.push_back(GgufVocab::text_to_sentencepiece(nl ? p.substr(1, p.size() - 2) : p));
    v.scores.push_back(t.score(id));
    v.token_types.push_back(id == 0 && !special ? 2 : special ? 3 : model::Tokenizer::parse_byte_piece(p, byte) ? 6 : 1);
  }
  v.bos_id = t.bos_id();
  v.eos_id = t.eos_id();
  v.unk_id = 0;
  return v;
}

/// A GgufWriter holding the weights (norms always F32) and, if given, the vocabulary.
[[nodiscard]] inline GgufWriter gguf_llama_writer(const model::LlamaWeights& w, const GgufVocab* vocab,
                                                  const GgufLlamaWriteOptions& opt = {}) {
  const auto& c = w.config;
  SPARQ_CHECK(ggml_block_elems(opt.fallback_type) == 1, "write_gguf_llama: fallback_type must be a float type, got ",
              ggml_type_name(opt.fallback_type));
  GgufWriter g;
  gguf_llama_metadata(g, c, vocab, opt.name);
  auto type_for = [&](GgmlType want, std::size_t cols) {
    return cols % ggml_block_elems(want) == 0 ? want : opt.fallback_type;
  };
  auto put_matrix = [&](const std::string& name, const Matrix<float>& m, GgmlType want) {
    g.add_tensor(name, {m.cols(), m.rows()}, type_for(want, m.cols()), m.data());
  };
  put_matrix("token_embd.weight", w.token_embedding, opt.embedding_type);
  g.add_tensor("output_norm.weight", {w.rms_final.size()}, GgmlType::F32, w.rms_final.data());
  if (!c.shared_classifier) put_matrix("output.weight", w.classifier, opt.embedding_type);
  for (std::size_t l = 0; l < c.n_layers; ++l) {
    const auto& b = w.blocks[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    g.add_tensor(p + "attn_norm.weight", {b.rms_att.size()}, GgmlType::F32, b.rms_att.data());
    for (model::Linear lin : model::all_linears)
      put_matrix(p + detail::gguf_block_tensor(lin) + ".weight", b.linear(lin), opt.linear_type);
    g.add_tensor(p + "ffn_norm.weight", {b.rms_ffn.size()}, GgmlType::F32, b.rms_ffn.data());
  }
  return g;
}

/// Writes weights (and optionally the vocabulary) as a Llama GGUF v3 file (temp file + rename).
inline void write_gguf_llama(const std::string& path, const model::LlamaWeights& w, const GgufVocab* vocab = nullptr,
                             const GgufLlamaWriteOptions& opt = {}) {
  gguf_llama_writer(w, vocab, opt).write(path);
}

}  // namespace sparq::io
