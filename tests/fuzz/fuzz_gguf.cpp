// libFuzzer target: GGUF reader and Llama mapping. Any input must give either sparq::error or a
// structurally valid file whose every tensor can be decoded; nothing else (no crash, no UB, no
// other exception, no allocation far beyond the input size).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sparq/io/gguf.hpp"
#include "sparq/io/gguf_llama.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sparq::io;
  try {
    const auto f = parse_gguf(reinterpret_cast<const char*>(data), size, "fuzz");
    for (const auto& t : f.tensors) {
      if (f.data_offset + t.offset + t.n_bytes > f.bytes.size()) std::abort();  // validation hole
      if (t.n_elements <= (std::uint64_t{1} << 22)) (void)f.tensor_floats(t);
    }
    try {
      const auto m = gguf_to_llama(f);
      if (m.weights.token_embedding.rows() != m.weights.config.vocab_size) std::abort();
    } catch (const sparq::error&) {
    }
  } catch (const sparq::error&) {
  }
  return 0;
}
