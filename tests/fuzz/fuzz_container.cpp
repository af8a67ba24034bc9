// libFuzzer target: SPRQ container reader. Each input is parsed twice: as given (which almost
// always stops at a checksum), and after its size and checksum fields were recomputed, so that
// the fuzzer reaches the structural checks behind the checksums (and the rANS decoder of
// version-2 coded sections).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sparq/io/container.hpp"

namespace {
template <class T>
T peek(const std::vector<char>& b, std::size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
template <class T>
void poke(std::vector<char>& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
void refresh_checksums(std::vector<char>& b) {
  using sparq::io::crc32;
  if (b.size() < 40) return;
  poke<std::uint64_t>(b, 8, b.size());
  poke<std::uint32_t>(b, 28, crc32(b.data(), 28));
  const std::size_t end = b.size() - 8;
  const auto n = peek<std::uint32_t>(b, 16);
  std::size_t pos = 32;
  for (std::uint64_t i = 0; i <= n && pos + 12 <= end; ++i) {
    const auto len = peek<std::uint64_t>(b, pos);
    if (len > end - pos - 12) break;
    poke<std::uint32_t>(b, pos + 8 + static_cast<std::size_t>(len),
                        crc32(b.data() + pos + 8, static_cast<std::size_t>(len)));
    pos += 12 + static_cast<std::size_t>(len);
  }
  poke<std::uint32_t>(b, end, crc32(b.data(), end));
}
void check(const std::vector<char>& b) {
  try {
    const auto c = sparq::io::parse_container(b.data(), b.size(), "fuzz");
    // A parsed version-1 container must serialise back to the same bytes. A version-2 file may
    // hold a valid rANS stream the encoder would not have produced (another table, state count or
    // raw-vs-coded choice): its contents, not its bytes, must survive a write and a read.
    const auto again = sparq::io::serialize_container(c);
    if (peek<std::uint32_t>(b, 4) == sparq::io::container_version) {
      if (again != b) __builtin_trap();
    } else {
      const auto d = sparq::io::parse_container(again.data(), again.size(), "fuzz again");
      if (d.tensors.size() != c.tensors.size()) __builtin_trap();
      for (std::size_t i = 0; i < c.tensors.size(); ++i) {
        if (d.tensors[i].sections.size() != c.tensors[i].sections.size()) __builtin_trap();
        for (std::size_t k = 0; k < c.tensors[i].sections.size(); ++k)
          if (d.tensors[i].sections[k].bytes != c.tensors[i].sections[k].bytes) __builtin_trap();
      }
    }
  } catch (const sparq::error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<char> b(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  check(b);
  refresh_checksums(b);
  check(b);
  return 0;
}
