// load_model / load_tokenizer: the one place the tools turn a file path into a Llama + Tokenizer.
//
// Today: llama2.c checkpoints (io::read_llama2c) and llama2.c tokenizer files. GGUF files are
// recognised by their magic ("GGUF") and rejected with a clear message until io/gguf.hpp exists;
// wiring them in means adding one branch here (weights from the GGUF tensors, the tokenizer from
// tokenizer.ggml.tokens/scores with Tokenizer::SpaceMarker::sentencepiece).
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "sparq/core/error.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/tokenizer.hpp"

namespace sparq::model {

/// True when the file starts with the GGUF magic.
[[nodiscard]] inline bool is_gguf_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

/// Loads a model file (llama2.c .bin). Throws sparq::error naming the path on failure.
[[nodiscard]] inline Llama load_model(const std::string& path) {
  SPARQ_CHECK(std::filesystem::exists(path), "model file '", path, "' does not exist");
  SPARQ_CHECK(!is_gguf_file(path), "model file '", path,
              "' is GGUF, which this build cannot load yet (expected a llama2.c checkpoint)");
  return Llama(io::read_llama2c(path));
}

/// Loads the tokenizer for `model` from a llama2.c tokenizer file (its vocabulary size must match).
[[nodiscard]] inline Tokenizer load_tokenizer(const std::string& path, const Llama& model) {
  return Tokenizer::read_llama2c(path, model.config().vocab_size);
}

/// The default tokenizer path for a model file: tok<vocab>.bin beside it (llama2.c's convention),
/// e.g. models/stories260K.bin with vocab 512 → models/tok512.bin.
[[nodiscard]] inline std::string default_tokenizer_path(const std::string& model_path, std::size_t vocab_size) {
  const auto dir = std::filesystem::path(model_path).parent_path();
  return (dir / ("tok" + std::to_string(vocab_size) + ".bin")).string();
}

}  // namespace sparq::model
