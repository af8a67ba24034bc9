// libFuzzer target: rANS stream decoder (io/rans.hpp). Each input is decoded as a stream (bounded
// like a container reader); a stream that decodes must decode identically again, and re-encoding
// its output must give a stream that decodes to the same bytes. The first input byte also picks
// a symbol width to encode the raw input with, which must round-trip.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sparq/io/entropy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto out = sparq::io::entropy_decode(data, size, "fuzz");
    if (sparq::io::entropy_decode(data, size, "fuzz") != out) __builtin_trap();
    const auto info = sparq::io::rans_stream_info(data, size);
    const auto again = sparq::io::rans_encode(out.data(), out.size(), info.symbol_bits, info.n_states);
    if (sparq::io::rans_decode(again.data(), again.size(), out.size()) != out) __builtin_trap();
  } catch (const sparq::error&) {
  }
  if (size > 0) {
    const unsigned bits = data[0] % 3 == 0 ? 8 : data[0] % 3 == 1 ? 4 : 2;
    const auto s = sparq::io::rans_encode(data, size, bits);
    if (sparq::io::rans_decode(s.data(), s.size(), size) != std::vector<std::uint8_t>(data, data + size)) __builtin_trap();
  }
  return 0;
}
