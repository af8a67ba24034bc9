// SectionEncoding and entropy_encode/decode: lossless coding of byte sections (quantized codes, N:M indices).
//
// A section of bytes is stored either raw or as one rANS stream (io/rans.hpp) whose model reads
// the bytes as 8-, 4- or 2-bit symbols with the section's own 12-bit frequency table:
//   rans8 — one symbol per byte: int8 codes; for packed int4 codes, each PAIR of codes
//           (a 256-symbol alphabet: captures the joint distribution, decodes two codes a step);
//   rans4 — one symbol per nibble: int4 codes one by one; for 2:4 indices (two 2-bit in-group
//           positions per group, one nibble) each group's index PAIR, of which only 6 of the 16
//           values are valid (log2 6 = 2.585 bits, vs 4 bits fixed);
//   rans2 — one symbol per 2 bits: single 2:4 / 2-bit indices.
// `smallest` predicts the three sizes from the histograms (rans_estimate_size, exact up to a few
// bytes) and codes once with the smallest, preferring the wider symbols unless a narrower width
// saves more than 0.5% (wider symbols decode proportionally more bytes per step). Any bytes round-trip exactly under
// every encoding; the choice only changes the size.
//
// NEVER LARGER: entropy_encode falls back to raw when the stream (table and states included)
// is not strictly smaller than the raw bytes, so a stored section never exceeds its fixed-width
// size. It also stores raw when the decoded size would exceed entropy_max_decoded(stream size)
// = 256 · stream + 64 KiB, the bound every reader enforces before allocating, so a hostile file
// cannot make a reader allocate more than a small multiple of its own size (only near-constant
// sections, under 1/32 bit per byte, reach it).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/rans.hpp"

namespace sparq::io {

/// How a container section is (to be) stored. The value of an rANS encoding is its symbol width.
enum class SectionEncoding : std::uint8_t { raw = 0, rans2 = 2, rans4 = 4, rans8 = 8, smallest = 255 };

[[nodiscard]] constexpr const char* encoding_name(SectionEncoding e) noexcept {
  switch (e) {
    case SectionEncoding::raw: return "raw";
    case SectionEncoding::rans2: return "rans2";
    case SectionEncoding::rans4: return "rans4";
    case SectionEncoding::rans8: return "rans8";
    case SectionEncoding::smallest: return "smallest";
  }
  return "?";
}

/// Largest decoded size a reader accepts for a stored stream of `stored` bytes.
[[nodiscard]] constexpr std::uint64_t entropy_max_decoded(std::uint64_t stored) noexcept {
  constexpr std::uint64_t ratio = 256, slack = 1u << 16;
  return stored > (std::uint64_t(-1) - slack) / ratio ? std::uint64_t(-1) : stored * ratio + slack;
}

/// Result of entropy_encode: `stream` holds the rANS stream, or is empty when encoding == raw.
struct EntropyEncoded {
  SectionEncoding encoding = SectionEncoding::raw;
  std::vector<std::uint8_t> stream;
  /// Bytes stored for a section of n raw bytes.
  [[nodiscard]] std::size_t stored_size(std::size_t n) const noexcept {
    return encoding == SectionEncoding::raw ? n : stream.size();
  }
};

/// Encodes n bytes as requested (see the file comment); raw when coding does not pay.
[[nodiscard]] inline EntropyEncoded entropy_encode(const std::uint8_t* data, std::size_t n, SectionEncoding request,
                                                   unsigned n_states = rans_default_states) {
  EntropyEncoded best;
  if (request == SectionEncoding::raw || n == 0) return best;
  const auto consider = [&](unsigned bits) {
    auto s = rans_encode(data, n, bits, n_states);
    // Candidates come widest first; a narrower width must save more than 0.5% to win, because
    // each decode step yields 8/bits codes' worth of bytes (rans8 decodes 2x the bytes/s of rans4).
    if (s.size() < n && n <= entropy_max_decoded(s.size()) &&
        (best.encoding == SectionEncoding::raw || s.size() * 1000 < best.stream.size() * 995)) {
      best.encoding = static_cast<SectionEncoding>(bits);
      best.stream = std::move(s);
    }
  };
  switch (request) {
    case SectionEncoding::rans2: consider(2); break;
    case SectionEncoding::rans4: consider(4); break;
    case SectionEncoding::rans8: consider(8); break;
    case SectionEncoding::smallest: {
      // Pick the width from the predicted sizes (one histogram pass each), then code once.
      unsigned pick = 8;
      std::size_t best_size = rans_estimate_size(data, n, 8, n_states);
      for (unsigned bits : {4u, 2u}) {
        const std::size_t e = rans_estimate_size(data, n, bits, n_states);
        if (e * 1000 < best_size * 995) pick = bits, best_size = e;
      }
      consider(pick);
      break;
    }
    default: sparq::detail::fail("entropy_encode: unknown encoding ", int(request));
  }
  return best;
}

/// Decodes a stored rANS stream (decoded size bounded by entropy_max_decoded(size)).
[[nodiscard]] inline std::vector<std::uint8_t> entropy_decode(const std::uint8_t* stream, std::size_t size,
                                                              const std::string& what = "rANS stream") {
  return rans_decode(stream, size, entropy_max_decoded(size), what);
}

/// n_symbols · H: the order-0 empirical entropy, in bits, of n bytes read as b-bit symbols
/// (the floor no per-stream frequency table can beat).
[[nodiscard]] inline double entropy_bits(const std::uint8_t* data, std::size_t n, unsigned symbol_bits) {
  RansTable::check_symbol_bits(symbol_bits);
  std::uint64_t counts[256] = {};
  const std::uint64_t n_sym = static_cast<std::uint64_t>(n) * (8 / symbol_bits);
  for (std::uint64_t i = 0; i < n_sym; ++i) ++counts[detail::rans_symbol(data, static_cast<std::size_t>(i), symbol_bits)];
  double bits = 0;
  for (unsigned s = 0; s < (1u << symbol_bits); ++s)
    if (counts[s]) bits -= static_cast<double>(counts[s]) * std::log2(static_cast<double>(counts[s]) / double(n_sym));
  return bits;
}

}  // namespace sparq::io
