// Forging helpers for container tests: read/write raw fields and recompute every size and CRC-32
// of a container whose bytes were edited, so a test can reach the checks behind the checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sparq/io/container.hpp"

namespace container_forge {

template <class T>
inline T peek(const std::vector<char>& b, std::size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
template <class T>
inline void poke(std::vector<char>& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

// Recomputes every size and checksum field of a container whose payloads were edited, so that
// a test can reach the structural checks behind the checksums.
inline void refresh_checksums(std::vector<char>& b) {
  poke<std::uint64_t>(b, 8, b.size());
  poke<std::uint32_t>(b, 28, sparq::io::crc32(b.data(), 28));
  const auto n = peek<std::uint32_t>(b, 16);
  std::size_t pos = 32;
  for (std::uint32_t i = 0; i <= n && pos + 12 <= b.size() - 8; ++i) {
    const auto len = static_cast<std::size_t>(peek<std::uint64_t>(b, pos));
    if (len > b.size() - 8 - pos - 12) break;  // forged beyond the end: nothing to refresh
    poke<std::uint32_t>(b, pos + 8 + len, sparq::io::crc32(b.data() + pos + 8, len));
    pos += 12 + len;
  }
  poke<std::uint32_t>(b, b.size() - 8, sparq::io::crc32(b.data(), b.size() - 8));
}

}  // namespace container_forge
