// libFuzzer target: the llama2.c readers. Each input is tried as a checkpoint (io::parse_llama2c) and
// as a tokenizer file (model::Tokenizer::parse_llama2c, every record to the end of the input).
// Besides "no crash, only sparq::error": an accepted checkpoint has the tensor shapes its config
// implies and finite weights; an accepted tokenizer encodes fixed texts to ids below its vocabulary,
// decodes every id, and writes back to bytes that parse to the same pieces and scores.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "sparq/io/llama2c.hpp"
#include "sparq/model/tokenizer.hpp"

namespace {

void check_checkpoint(const std::uint8_t* data, std::size_t size) {
  using namespace sparq;
  try {
    const model::LlamaWeights w = io::parse_llama2c(reinterpret_cast<const char*>(data), size, "fuzz");
    const auto& c = w.config;
    if (w.token_embedding.rows() != c.vocab_size || w.token_embedding.cols() != c.dim) std::abort();
    if (w.blocks.size() != c.n_layers || w.rms_final.size() != c.dim) std::abort();
    for (const auto& b : w.blocks)
      for (model::Linear l : model::all_linears) {
        const auto& m = b.linear(l);
        for (std::size_t i = 0; i < m.size(); ++i)
          if (!std::isfinite(m.data()[i])) std::abort();  // the reader promises finite weights
      }
  } catch (const sparq::error&) {
  }
}

void check_tokenizer(const std::uint8_t* data, std::size_t size) {
  using namespace sparq;
  try {
    const model::Tokenizer t = model::Tokenizer::parse_llama2c(reinterpret_cast<const char*>(data), size, 0, "fuzz");
    const int vocab = static_cast<int>(t.vocab_size());
    for (const char* text : {"", "Hello world", "  two  spaces\n\nand a new line", "digits 0123456789",
                             "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 multi-byte", "\xff\xfe invalid UTF-8 \xc3"}) {
      for (const int id : t.encode(text, true, true)) {
        if (id < 0 || id >= vocab) std::abort();
        (void)t.piece(id);
      }
    }
    const std::vector<char> bytes = t.llama2c_bytes();
    const model::Tokenizer back = model::Tokenizer::parse_llama2c(bytes.data(), bytes.size(), t.vocab_size(), "fuzz back");
    for (int i = 0; i < vocab; ++i)
      if (back.piece(i) != t.piece(i) || !(back.score(i) == t.score(i))) std::abort();
  } catch (const sparq::error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_checkpoint(data, size);
  check_tokenizer(data, size);
  return 0;
}
