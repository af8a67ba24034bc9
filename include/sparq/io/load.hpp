// load_model / load: turn a model file (llama2.c .bin or GGUF) and a tokenizer into a runnable Llama.
//
// The format is recognised by content, not by name: a file starting with "GGUF" is read with
// io::read_gguf_llama (weights, hyper-parameters and its own vocabulary), anything else as a
// llama2.c checkpoint. The tokenizer is a llama2.c tokenizer file when a path is given; otherwise
// the GGUF's own `tokenizer.ggml.*` vocabulary, or `tok<vocab>.bin` beside a llama2.c model.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "sparq/core/error.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/tokenizer.hpp"

namespace sparq::io {

/// True when the file starts with the GGUF magic.
[[nodiscard]] inline bool is_gguf_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

/// The default llama2.c tokenizer path for a model file: tok<vocab>.bin beside it
/// (e.g. models/stories260K.bin with vocab 512 -> models/tok512.bin).
[[nodiscard]] inline std::string default_tokenizer_path(const std::string& model_path, std::size_t vocab_size) {
  const auto dir = std::filesystem::path(model_path).parent_path();
  return (dir / ("tok" + std::to_string(vocab_size) + ".bin")).string();
}

/// A tokenizer from a GGUF vocabulary ("▁" spaces mapped to " ").
[[nodiscard]] inline model::Tokenizer tokenizer_from_gguf(const GgufVocab& v, std::size_t vocab_size) {
  SPARQ_CHECK(v.tokens.size() == vocab_size, "GGUF vocabulary has ", v.tokens.size(),
              " tokens, the model's vocab_size is ", vocab_size);
  SPARQ_CHECK(!v.scores.empty(), "GGUF vocabulary has no tokenizer.ggml.scores (needed for BPE merges)");
  const int bos = v.bos_id >= 0 ? static_cast<int>(v.bos_id) : 1;
  const int eos = v.eos_id >= 0 ? static_cast<int>(v.eos_id) : 2;
  return model::Tokenizer(v.tokens, v.scores, bos, eos, model::Tokenizer::SpaceMarker::sentencepiece);
}

/// A model with the tokenizer that goes with it.
struct LoadedModel {
  model::Llama model;
  model::Tokenizer tokenizer;
  std::string format;           ///< "gguf" or "llama2c"
  std::string tokenizer_source; ///< path of the tokenizer file, or "gguf vocabulary"
};

/// Loads weights only (llama2.c .bin or GGUF). Throws sparq::error naming the path on failure.
[[nodiscard]] inline model::Llama load_model(const std::string& path) {
  SPARQ_CHECK(std::filesystem::exists(path), "model file '", path, "' does not exist");
  if (is_gguf_file(path)) return model::Llama(read_gguf_llama(path).weights);
  return model::Llama(read_llama2c(path));
}

/// Loads a llama2.c tokenizer file for `model` (its vocabulary size must match).
[[nodiscard]] inline model::Tokenizer load_tokenizer(const std::string& path, const model::Llama& m) {
  return model::Tokenizer::read_llama2c(path, m.config().vocab_size);
}

/// Loads a model and its tokenizer, reading the model file once. `tokenizer_path` empty: the GGUF's
/// own vocabulary for a GGUF model, tok<vocab>.bin beside a llama2.c model.
[[nodiscard]] inline LoadedModel load(const std::string& model_path, const std::string& tokenizer_path = "") {
  SPARQ_CHECK(std::filesystem::exists(model_path), "model file '", model_path, "' does not exist");
  if (is_gguf_file(model_path)) {
    GgufLlama g = read_gguf_llama(model_path);
    const std::size_t vocab = g.weights.config.vocab_size;
    model::Llama m(std::move(g.weights));
    if (tokenizer_path.empty()) {
      auto tok = tokenizer_from_gguf(g.vocab, vocab);
      return {std::move(m), std::move(tok), "gguf", "gguf vocabulary"};
    }
    auto tok = load_tokenizer(tokenizer_path, m);
    return {std::move(m), std::move(tok), "gguf", tokenizer_path};
  }
  model::Llama m(read_llama2c(model_path));
  const std::string tp = tokenizer_path.empty() ? default_tokenizer_path(model_path, m.config().vocab_size)
                                                : tokenizer_path;
  SPARQ_CHECK(std::filesystem::exists(tp), "tokenizer file '", tp, "' does not exist (pass --tokenizer)");
  auto tok = load_tokenizer(tp, m);
  return {std::move(m), std::move(tok), "llama2c", tp};
}

}  // namespace sparq::io
