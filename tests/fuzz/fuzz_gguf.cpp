// libFuzzer target: GGUF reader, Llama mapping and vocabulary. Any input must give either
// sparq::error or a structurally valid file whose every tensor can be decoded; nothing else (no
// crash, no UB, no other exception, no allocation far beyond the input size). When the file
// parses, its tokenizer.ggml.* arrays go through gguf_vocab and the tokenizer io::load builds from
// them (tokenizer_from_gguf: byte-level BPE for tokenizer.ggml.model = "gpt2" via gguf_bpe_vocab,
// SentencePiece otherwise), which must encode a few fixed texts (including special-token text and
// invalid UTF-8) and decode the result without crashing or looping.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/io/gguf.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/load.hpp"

namespace {
void check_vocab(const sparq::io::GgufFile& f) {
  using namespace sparq;
  io::GgufVocab v;
  try {
    v = io::gguf_vocab(f);
  } catch (const error&) {
    return;
  }
  std::string specials;
  for (std::size_t i = 0; i < v.token_types.size() && i < v.tokens.size() && specials.size() < 256; ++i)
    if (v.token_types[i] == 3 || v.token_types[i] == 4) specials += v.tokens[i] + " ";
  try {
    const model::Tokenizer t = io::tokenizer_from_gguf(v, v.tokens.size());
    auto encode_decode = [&](std::string_view text, bool bos, bool eos) {
      std::vector<int> ids;
      try {
        ids = t.encode(text, bos, eos);
      } catch (const error&) {
        return;  // a byte without a token, or BOS / EOS missing
      }
      try {
        (void)t.decode(ids);
      } catch (const error&) {
        __builtin_trap();  // encode returned an id outside the vocabulary
      }
    };
    static const char* const fixed[] = {
        "", "Hello world", " the 123 don't\r\n\n  x\t",
        "\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80 \xE2\x96\x81", "\xFF\xFE \xC3 \xE2\x82 \xED\xA0\x80 \x80"};
    for (const char* s : fixed) encode_decode(s, true, false);
    encode_decode("x" + specials + "y", false, true);
  } catch (const error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sparq::io;
  try {
    const auto f = parse_gguf(reinterpret_cast<const char*>(data), size, "fuzz");
    for (const auto& t : f.tensors) {
      if (f.data_offset + t.offset + t.n_bytes > f.bytes.size()) std::abort();  // validation hole
      if (t.n_elements <= (std::uint64_t{1} << 22)) (void)f.tensor_floats(t);
    }
    check_vocab(f);
    try {
      const auto m = gguf_to_llama(f);
      if (m.weights.token_embedding.rows() != m.weights.config.vocab_size) std::abort();
    } catch (const sparq::error&) {
    }
  } catch (const sparq::error&) {
  }
  return 0;
}
