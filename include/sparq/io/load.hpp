// load_model / load: turn a model file (llama2.c .bin, GGUF or sparq's packed SPRQ file) or a
// Hugging Face model directory, and a tokenizer, into a runnable Llama.
//
// A directory holding a config.json is read with io::read_hf_llama (format "hf"). Its tokenizer is
// the llama2.c file given, else tok<vocab>.bin inside the directory, else its tokenizer.json when
// that is a byte-level BPE (Llama 3, Qwen2, GPT-2 style: io::read_tokenizer_json, BOS / EOS ids from
// config.json when the post-processor names none); a SentencePiece tokenizer.model alone is not
// read, and the load says so.
// A file's format is recognised by content, not by name: a file starting with "GGUF" is read with
// io::read_gguf_llama (weights, hyper-parameters and its own vocabulary), one starting with "SPRQ"
// with io::packed_model_from_container (packed ops as written, run by the packed kernels), anything
// else as a llama2.c checkpoint. The tokenizer is a llama2.c tokenizer file when a path is given;
// otherwise the GGUF's own `tokenizer.ggml.*` vocabulary (model "llama": SentencePiece BPE; "gpt2":
// byte-level BPE with merges), the tokenizer stored in the SPRQ file
// (io::add_tokenizer), or `tok<vocab>.bin` beside the model.
//
// Activations of a GGUF that sparq wrote: its sparq.activation_bits / sparq.attention_bits say how
// the compressed model quantizes activations at run time (e.g. W8A8), which no ggml type can hold.
// By default (StoredActivations::apply) the loaded model runs them as sparq's in-memory model did:
// every decoder linear wrapped in InputQuantLinear(bits), the q/k/v outputs quantized to the
// attention bits. StoredActivations::ignore runs float activations, as llama.cpp does. A SPRQ file
// stores the activation mode inside its packed ops, so the choice does not apply to it.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/hf_checkpoint.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/io/tokenizer_json.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/tokenizer.hpp"

namespace sparq::io {

/// True when the file starts with the 4-byte `magic`.
[[nodiscard]] inline bool file_starts_with(const std::string& path, const char (&magic)[5]) {
  std::ifstream f(path, std::ios::binary);
  char head[4] = {};
  f.read(head, 4);
  return f.gcount() == 4 && std::memcmp(head, magic, 4) == 0;
}

/// True when the file starts with the GGUF magic.
[[nodiscard]] inline bool is_gguf_file(const std::string& path) { return file_starts_with(path, "GGUF"); }

/// True when the file starts with the SPRQ container magic.
[[nodiscard]] inline bool is_sprq_file(const std::string& path) { return file_starts_with(path, "SPRQ"); }

/// The default llama2.c tokenizer path for a model file: tok<vocab>.bin beside it
/// (e.g. models/stories260K.bin with vocab 512 -> models/tok512.bin).
[[nodiscard]] inline std::string default_tokenizer_path(const std::string& model_path, std::size_t vocab_size) {
  const auto dir = std::filesystem::path(model_path).parent_path();
  return (dir / ("tok" + std::to_string(vocab_size) + ".bin")).string();
}

/// A tokenizer from a GGUF vocabulary: model "gpt2" -> byte-level BPE (gguf_bpe_vocab), otherwise
/// SentencePiece BPE with scores ("▁" spaces mapped to " ").
[[nodiscard]] inline model::Tokenizer tokenizer_from_gguf(const GgufVocab& v, std::size_t vocab_size) {
  SPARQ_CHECK(v.tokens.size() == vocab_size, "GGUF vocabulary has ", v.tokens.size(),
              " tokens, the model's vocab_size is ", vocab_size);
  if (v.model == "gpt2") return model::Tokenizer(model::BpeTokenizer(gguf_bpe_vocab(v, "GGUF vocabulary")));
  SPARQ_CHECK(v.model.empty() || v.model == "llama", "GGUF vocabulary: tokenizer.ggml.model = '", v.model,
              "' is not supported (expected llama or gpt2)");
  SPARQ_CHECK(!v.scores.empty(), "GGUF vocabulary has no tokenizer.ggml.scores (needed for BPE merges)");
  const int bos = v.bos_id >= 0 ? static_cast<int>(v.bos_id) : 1;
  const int eos = v.eos_id >= 0 ? static_cast<int>(v.eos_id) : 2;
  return model::Tokenizer(v.tokens, v.scores, bos, eos, model::Tokenizer::SpaceMarker::sentencepiece);
}

/// Whether the run-time activation quantization a GGUF file declares (sparq.activation_bits,
/// sparq.attention_bits) is applied when it is loaded (see the file comment).
enum class StoredActivations { apply, ignore };

/// Wraps decoder linear i (block-major, all_linears order) of m in InputQuantLinear(linear_bits[i])
/// (0: left as is; one entry per linear, or a single entry for all of them) and quantizes the q/k/v
/// outputs to attention_bits (0: float). Every value is 0 or 2..16.
inline void apply_activation_bits(model::Llama& m, const std::vector<int>& linear_bits, int attention_bits) {
  const std::size_t n = m.config().n_layers * std::size(model::all_linears);
  SPARQ_CHECK(linear_bits.size() == n || linear_bits.size() == 1, "apply_activation_bits: ", linear_bits.size(),
              " entries, expected 1 or one per decoder linear = ", n);
  for (std::size_t i = 0; i < linear_bits.size(); ++i)
    SPARQ_CHECK(linear_bits[i] == 0 || (linear_bits[i] >= 2 && linear_bits[i] <= 16), "activation bits[", i,
                "] = ", linear_bits[i], ", expected 0 or 2..16");
  std::size_t i = 0;
  for (std::size_t b = 0; b < m.config().n_layers; ++b)
    for (auto l : model::all_linears) {
      const int bits = linear_bits[linear_bits.size() == 1 ? 0 : i++];
      if (bits > 0) m.set_linear(b, l, std::make_unique<model::InputQuantLinear>(m.take_linear(b, l), bits));
    }
  m.set_attention_input_bits(attention_bits);
}

/// The same bits for every decoder linear.
inline void apply_activation_bits(model::Llama& m, int linear_bits, int attention_bits) {
  apply_activation_bits(m, std::vector<int>{linear_bits}, attention_bits);
}

/// A Llama from a read GGUF, with its declared activation quantization applied or not.
[[nodiscard]] inline model::Llama gguf_llama_model(GgufLlama&& g, StoredActivations act = StoredActivations::apply) {
  model::Llama m(std::move(g.weights));
  if (act == StoredActivations::apply) {
    if (g.linear_activation_bits.empty()) apply_activation_bits(m, g.activation_bits, g.attention_bits);
    else apply_activation_bits(m, g.linear_activation_bits, g.attention_bits);
  }
  return m;
}

namespace detail {

/// The tokenizer of a Hugging Face directory: `tokenizer_path` when given, else tok<vocab>.bin in the
/// directory, else its byte-level BPE tokenizer.json. Returns it with the path it came from.
[[nodiscard]] inline std::pair<model::Tokenizer, std::string> hf_tokenizer(const std::string& dir, const HfLlama& h,
                                                                          std::size_t vocab,
                                                                          const std::string& tokenizer_path) {
  std::string tp = tokenizer_path;
  if (tp.empty()) {
    tp = (std::filesystem::path(dir) / ("tok" + std::to_string(vocab) + ".bin")).string();
    if (!std::filesystem::exists(tp) && !h.tokenizer_json.empty())
      return {model::Tokenizer(read_tokenizer_json(h.tokenizer_json, vocab, h.bos_id, h.eos_id)), h.tokenizer_json};
    if (!std::filesystem::exists(tp)) {
      sparq::detail::fail("Hugging Face model directory '", dir, "' has no tokenizer sparq can read",
                          h.tokenizer_model.empty() ? std::string() : " (it has tokenizer.model)",
                          ": a SentencePiece tokenizer.model is not supported yet; pass --tokenizer with a llama2.c "
                          "tokenizer file, or put one named '", std::filesystem::path(tp).filename().string(),
                          "' or a byte-level BPE tokenizer.json in the directory");
    }
  }
  SPARQ_CHECK(std::filesystem::exists(tp), "tokenizer file '", tp, "' does not exist (pass --tokenizer)");
  return {model::Tokenizer::read_llama2c(tp, vocab), tp};
}

}  // namespace detail

/// A Hugging Face directory opened for block-by-block work: the checkpoint (HfCheckpoint::read_block
/// gives each block), a model::DeferredBlocks model holding only the embedding, final norm and
/// classifier, and the directory's tokenizer.
struct StreamedModel {
  HfCheckpoint checkpoint;
  model::Llama model;
  model::Tokenizer tokenizer;
  std::string tokenizer_source;
};

/// Opens a Hugging Face model directory without reading its blocks (see StreamedModel); the
/// tokenizer as io::load finds it. Throws sparq::error naming the path on failure.
[[nodiscard]] inline StreamedModel load_streamed(const std::string& dir, const std::string& tokenizer_path = "") {
  SPARQ_CHECK(is_hf_directory(dir), "'", dir, "' is not a Hugging Face model directory (a directory with config.json); "
              "block-by-block loading reads those only");
  HfCheckpoint ck(dir);
  model::Llama m(ck.read_globals(), model::DeferredBlocks{});
  auto [tok, src] = detail::hf_tokenizer(dir, ck.info(), m.config().vocab_size, tokenizer_path);
  return {std::move(ck), std::move(m), std::move(tok), std::move(src)};
}

/// A model with the tokenizer that goes with it.
struct LoadedModel {
  model::Llama model;
  model::Tokenizer tokenizer;
  std::string format;           ///< "gguf", "sprq", "llama2c" or "hf"
  std::string tokenizer_source; ///< path of the tokenizer file, "gguf vocabulary" or "sprq tokenizer"
  /// The vocabulary in GGUF form (for writing GGUF files): the GGUF's own arrays when the
  /// tokenizer came from it, else gguf_vocab_from_tokenizer(tokenizer).
  GgufVocab vocab;
  /// What a GGUF written by sparq declares (sparq.activation_bits / sparq.attention_bits), whether
  /// or not it was applied; 0 for other formats.
  int stored_activation_bits = 0;
  int stored_attention_bits = 0;
};

/// Loads weights only (llama2.c .bin, GGUF, SPRQ or a Hugging Face directory). Throws sparq::error
/// naming the path on failure.
[[nodiscard]] inline model::Llama load_model(const std::string& path, StoredActivations act = StoredActivations::apply) {
  SPARQ_CHECK(std::filesystem::exists(path), "model file '", path, "' does not exist");
  if (std::filesystem::is_directory(path)) return model::Llama(read_hf_llama(path).weights);
  if (is_gguf_file(path)) return gguf_llama_model(read_gguf_llama(path), act);
  if (is_sprq_file(path)) return read_packed_model(path);
  return model::Llama(read_llama2c(path));
}

/// Loads a llama2.c tokenizer file for `model` (its vocabulary size must match).
[[nodiscard]] inline model::Tokenizer load_tokenizer(const std::string& path, const model::Llama& m) {
  return model::Tokenizer::read_llama2c(path, m.config().vocab_size);
}

/// Loads a model and its tokenizer, reading the model file once. `tokenizer_path` empty: the GGUF's
/// own vocabulary for a GGUF model, tok<vocab>.bin beside a llama2.c model or inside a Hugging Face
/// directory.
[[nodiscard]] inline LoadedModel load(const std::string& model_path, const std::string& tokenizer_path = "",
                                      StoredActivations act = StoredActivations::apply) {
  SPARQ_CHECK(std::filesystem::exists(model_path), "model file '", model_path, "' does not exist");
  if (std::filesystem::is_directory(model_path)) {
    HfLlama h = read_hf_llama(model_path);
    model::Llama m(std::move(h.weights));
    auto [tok, src] = detail::hf_tokenizer(model_path, h, m.config().vocab_size, tokenizer_path);
    auto v = gguf_vocab_from_tokenizer(tok);
    return {std::move(m), std::move(tok), "hf", std::move(src), std::move(v)};
  }
  if (is_gguf_file(model_path)) {
    GgufLlama g = read_gguf_llama(model_path);
    const std::size_t vocab = g.weights.config.vocab_size;
    const int abits = g.activation_bits, tbits = g.attention_bits;
    GgufVocab gv = std::move(g.vocab);
    model::Llama m = gguf_llama_model(std::move(g), act);
    if (tokenizer_path.empty()) {
      auto tok = tokenizer_from_gguf(gv, vocab);
      return {std::move(m), std::move(tok), "gguf", "gguf vocabulary", std::move(gv), abits, tbits};
    }
    auto tok = load_tokenizer(tokenizer_path, m);
    auto v = gguf_vocab_from_tokenizer(tok);
    return {std::move(m), std::move(tok), "gguf", tokenizer_path, std::move(v), abits, tbits};
  }
  if (is_sprq_file(model_path)) {
    const std::string what = "packed sparq model '" + model_path + "'";
    const Container ct = read_container(model_path);
    model::Llama m = packed_model_from_container(ct, what);
    std::optional<model::Tokenizer> tok;
    std::string src = tokenizer_path;
    if (!tokenizer_path.empty()) {
      tok = load_tokenizer(tokenizer_path, m);
    } else if ((tok = container_tokenizer(ct, what))) {
      src = "sprq tokenizer";
      SPARQ_CHECK(tok->vocab_size() == m.config().vocab_size, what, ": its tokenizer has ", tok->vocab_size(),
                  " tokens, the model ", m.config().vocab_size);
    } else {
      src = default_tokenizer_path(model_path, m.config().vocab_size);
      SPARQ_CHECK(std::filesystem::exists(src), what, " stores no tokenizer and '", src,
                  "' does not exist (pass --tokenizer)");
      tok = load_tokenizer(src, m);
    }
    auto v = gguf_vocab_from_tokenizer(*tok);
    return {std::move(m), std::move(*tok), "sprq", src, std::move(v)};
  }
  model::Llama m(read_llama2c(model_path));
  const std::string tp = tokenizer_path.empty() ? default_tokenizer_path(model_path, m.config().vocab_size)
                                                : tokenizer_path;
  SPARQ_CHECK(std::filesystem::exists(tp), "tokenizer file '", tp, "' does not exist (pass --tokenizer)");
  auto tok = load_tokenizer(tp, m);
  auto v = gguf_vocab_from_tokenizer(tok);
  return {std::move(m), std::move(tok), "llama2c", tp, std::move(v)};
}

}  // namespace sparq::io
