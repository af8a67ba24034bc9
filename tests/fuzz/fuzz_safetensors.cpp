// libFuzzer target: safetensors reader. Any input must give either sparq::error or a file whose
// tensors tile the data buffer and can be read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sparq/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sparq::io;
  try {
    const auto f = parse_safetensors(reinterpret_cast<const char*>(data), size, "fuzz");
    for (const auto& t : f.tensors) {
      if (f.data_offset + t.end > f.bytes.size() || t.end - t.begin != t.n_elements() * safe_dtype_size(t.dtype))
        std::abort();  // validation hole
      if (t.dtype == SafeDtype::F32 || t.dtype == SafeDtype::F16 || t.dtype == SafeDtype::BF16) (void)f.floats(t);
    }
  } catch (const sparq::error&) {
  }
  return 0;
}
