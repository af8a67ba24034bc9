// Small scalar packers for the kernel tests (the weight layouts are the contract; see docs/kernels.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace kt {

/// Random int8 codes in [lo, hi].
inline std::vector<std::int8_t> rand_i8(std::size_t n, unsigned seed, int lo = -127, int hi = 127) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<std::int8_t> v(n);
  for (auto& x : v) x = static_cast<std::int8_t>(d(rng));
  return v;
}

/// Random unsigned values in [0, hi].
inline std::vector<std::uint8_t> rand_u8(std::size_t n, unsigned seed, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, hi);
  std::vector<std::uint8_t> v(n);
  for (auto& x : v) x = static_cast<std::uint8_t>(d(rng));
  return v;
}

/// Positive random scales in [0.5, 1.5)·base.
inline std::vector<float> rand_scales(std::size_t n, unsigned seed, float base = 0.01f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.5f, 1.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = base * d(rng);
  return v;
}

/// Packs unsigned nibbles u[rows][cols] (values 0..15) row by row: element 2i low nibble of byte i.
inline std::vector<std::uint8_t> pack_nibbles(const std::vector<std::uint8_t>& u, std::size_t rows, std::size_t cols) {
  std::vector<std::uint8_t> p(rows * ((cols + 1) / 2), 0);
  for (std::size_t k = 0; k < rows; ++k) {
    for (std::size_t j = 0; j < cols; ++j) {
      const std::uint8_t v = u[k * cols + j] & 0x0f;
      auto& byte = p[k * ((cols + 1) / 2) + j / 2];
      byte = static_cast<std::uint8_t>(j % 2 == 0 ? (byte | v) : (byte | (v << 4)));
    }
  }
  return p;
}

/// Reads nibble j of a packed row.
inline int nibble(const std::uint8_t* row, std::size_t j) { return j % 2 == 0 ? (row[j / 2] & 0x0f) : (row[j / 2] >> 4); }

}  // namespace kt
