// rANS stream: interleaved 32-bit-state rANS encoder/decoder for byte buffers read as 2/4/8-bit symbols.
//
// SYMBOLS. A buffer of n bytes is read as n·8/b symbols of b ∈ {2, 4, 8} bits, least significant
// first inside each byte (b = 4: low nibble, then high nibble — the order of sparq's packed int4
// codes and of 2:4 index pairs; b = 2: bits [0,2), [2,4), ...). Any bytes round-trip exactly for
// every b; b only changes the model (which symbols the frequency table counts).
//
// CODER (byte-exact contract of the stream below). Probabilities have 12 bits (M = 4096, see
// rans_table.hpp). N states x_j ∈ [L, 2^32), L = 2^16, symbol i uses state i mod N. Decoding one
// symbol from x:  q = x mod M;  s = LUT(q);  x ← f_s·⌊x / M⌋ + q − start_s;  then if x < L,
// x ← x·2^16 + next 16-bit word (never twice: x ≥ 2^4 after a step, so one word restores x ≥ L).
// Encoding runs over the symbols in reverse (i = n−1 … 0), each state starting at L: if
// x ≥ 2^20·f_s, emit x mod 2^16 and x ← ⌊x / 2^16⌋; then x ← ⌊x / f_s⌋·M + (x mod f_s) + start_s.
// The words are stored in the order the decoder reads them (reverse emission order); the final
// encoder states are the decoder's initial states, and a correct stream ends with every state
// back at L and every word consumed — which the decoder checks, so corrupted streams are
// rejected with sparq::error rather than decoded to garbage (except for the rare corruption that
// happens to preserve both invariants; the container's CRC covers those).
//
// STREAM LAYOUT (little-endian):
//   u8 format (1) | u8 symbol bits b (2, 4, 8) | u8 probability bits (12) | u8 N (4, 8, 16 or 32)
//   u64 n_bytes (decoded length) | frequency table (rans_table.hpp: bitmap + varints; empty
//   iff n_bytes = 0) | N × u32 initial states (each ≥ L) | the u16 words, up to the end of the
//   stream (so the stream length minus the header must be even; there is no word-count field). The decoder validates every field before use, bounds the output by the
// caller's max_bytes before allocating, never reads a word past the end (the unchecked fast loop
// runs only while ≥ 2N word bytes remain) and writes exactly n_bytes.
//
// SPEED. The fast loop decodes N symbols per iteration with one LUT load, one multiply and a
// branch-free renormalisation per symbol; N independent states hide the LUT/multiply latency.
// With AVX-512, 16 and 32 states run 16 lanes per zmm (kernels/rans_decode.hpp): 32 states decode
// ~1.8 G symbols/s on this machine, 8 states (scalar) ~0.55 G. Each state costs 4 header bytes,
// so rans_auto_states picks 32 states for streams of ≥ 64 Ki symbols and 4 below.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/byte_cursor.hpp"
#include "sparq/io/rans_table.hpp"
#include "sparq/kernels/rans_decode.hpp"

namespace sparq::io {

inline constexpr std::uint8_t rans_format_version = 1;
inline constexpr std::uint32_t rans_lower = 1u << 16;  ///< L: states live in [L, 2^32)
/// 0 = choose from the stream length (rans_auto_states).
inline constexpr unsigned rans_default_states = 0;

/// 32 states (two zmm registers of lanes, fastest) for ≥ 64 Ki symbols, else 4 (16 header bytes).
[[nodiscard]] constexpr unsigned rans_auto_states(std::uint64_t n_symbols) noexcept {
  return n_symbols >= (std::uint64_t{1} << 16) ? 32 : 4;
}

/// Header facts of a rANS stream (everything before the words, validated).
struct RansStreamInfo {
  unsigned symbol_bits = 8;
  unsigned n_states = 0;
  std::uint64_t n_bytes = 0;       ///< decoded length
  std::size_t table_bytes = 0;     ///< serialized frequency table
  std::size_t header_bytes = 0;    ///< everything before the words (format … states)
  std::size_t word_bytes = 0;      ///< 2 · number of words
};

namespace detail {

[[nodiscard]] inline bool rans_valid_states(unsigned n) noexcept { return n == 4 || n == 8 || n == 16 || n == 32; }

/// Symbol i of a buffer read as b-bit symbols.
[[nodiscard]] inline unsigned rans_symbol(const std::uint8_t* data, std::size_t i, unsigned b) noexcept {
  if (b == 8) return data[i];
  const std::size_t bit = i * b;
  return (data[bit >> 3] >> (bit & 7u)) & ((1u << b) - 1u);
}

/// Histogram of n bytes read as b-bit symbols (counts[0 .. 2^b) incremented).
inline void rans_count(const std::uint8_t* data, std::size_t n, unsigned b, std::uint64_t* counts) noexcept {
  if (b == 8) {
    for (std::size_t i = 0; i < n; ++i) ++counts[data[i]];
  } else {
    const std::uint64_t n_sym = static_cast<std::uint64_t>(n) * (8 / b);
    for (std::uint64_t i = 0; i < n_sym; ++i) ++counts[rans_symbol(data, static_cast<std::size_t>(i), b)];
  }
}

/// A parsed, validated stream header.
struct RansParsed {
  RansStreamInfo info;
  RansTable table;
  std::uint32_t states[32] = {};
  const std::uint8_t* words = nullptr;
};

[[nodiscard]] inline RansParsed rans_parse(const std::uint8_t* stream, std::size_t size, std::uint64_t max_bytes,
                                           const std::string& what) {
  ByteCursor c(reinterpret_cast<const char*>(stream), size, what);
  RansParsed r;
  const auto format = c.read<std::uint8_t>("rANS format");
  SPARQ_CHECK(format == rans_format_version, what, ": rANS format ", int(format), ", expected ",
              int(rans_format_version));
  r.info.symbol_bits = c.read<std::uint8_t>("rANS symbol bits");
  SPARQ_CHECK(r.info.symbol_bits == 2 || r.info.symbol_bits == 4 || r.info.symbol_bits == 8, what,
              ": rANS symbol bits ", r.info.symbol_bits, ", expected 2, 4 or 8");
  const auto pb = c.read<std::uint8_t>("rANS probability bits");
  SPARQ_CHECK(pb == rans_prob_bits, what, ": rANS probability bits ", int(pb), ", expected ", rans_prob_bits);
  r.info.n_states = c.read<std::uint8_t>("rANS state count");
  SPARQ_CHECK(rans_valid_states(r.info.n_states), what, ": rANS state count ", r.info.n_states,
              ", expected 4, 8, 16 or 32");
  r.info.n_bytes = c.read<std::uint64_t>("rANS decoded length");
  SPARQ_CHECK(r.info.n_bytes <= max_bytes, what, ": rANS decoded length ", r.info.n_bytes,
              " exceeds the limit of ", max_bytes, " bytes");
  const std::size_t t0 = c.offset();
  r.table = RansTable::parse(c, r.info.symbol_bits);
  r.info.table_bytes = c.offset() - t0;
  SPARQ_CHECK(r.table.empty() == (r.info.n_bytes == 0), what, ": rANS table has ",
              r.table.empty() ? "no symbols" : "symbols", " for a decoded length of ", r.info.n_bytes);
  for (unsigned j = 0; j < r.info.n_states; ++j) {
    r.states[j] = c.read<std::uint32_t>("rANS state");
    SPARQ_CHECK(r.states[j] >= rans_lower, what, ": rANS initial state ", j, " = ", r.states[j],
                " is below L = ", rans_lower);
  }
  r.info.header_bytes = c.offset();
  SPARQ_CHECK(c.remaining() % 2 == 0, what, ": ", c.remaining(), " rANS word bytes, expected an even number");
  r.info.word_bytes = c.remaining();
  r.words = reinterpret_cast<const std::uint8_t*>(c.take(r.info.word_bytes, "rANS words"));
  return r;
}

}  // namespace detail

/// Encodes n bytes read as symbol_bits-bit symbols with n_states interleaved states (0: auto).
/// Deterministic: the same input and parameters give the same bytes.
[[nodiscard]] inline std::vector<std::uint8_t> rans_encode(const std::uint8_t* data, std::size_t n,
                                                           unsigned symbol_bits,
                                                           unsigned n_states = rans_default_states) {
  RansTable::check_symbol_bits(symbol_bits);
  const std::uint64_t n_sym = static_cast<std::uint64_t>(n) * (8 / symbol_bits);
  if (n_states == 0) n_states = rans_auto_states(n_sym);
  SPARQ_CHECK(detail::rans_valid_states(n_states), "rans_encode: ", n_states, " states, expected 4, 8, 16 or 32 (or 0: auto)");
  std::uint64_t counts[256] = {};
  detail::rans_count(data, n, symbol_bits, counts);
  const RansTable table = RansTable::from_counts(counts, symbol_bits);
  // Exact ⌊x / f⌋ without a hardware division: a double-precision estimate (error < 1 for
  // x < 2^32) corrected by one step each way.
  double inv[256];
  for (unsigned k = 0; k < table.alphabet(); ++k) inv[k] = table.freq(k) ? 1.0 / table.freq(k) : 0.0;

  // Words are written backwards from the end of a buffer with room for one per symbol (the most
  // a symbol can emit), branch-free; they then sit in decoding order at words[pos ..].
  const std::size_t cap = static_cast<std::size_t>(n_sym) + 1;
  const auto words = std::make_unique_for_overwrite<std::uint16_t[]>(cap);  // no zero-fill of 2·n_sym bytes
  std::size_t pos = cap;
  std::uint32_t x[32];
  for (unsigned j = 0; j < n_states; ++j) x[j] = rans_lower;
  for (std::uint64_t i = n_sym; i-- > 0;) {
    const unsigned s = detail::rans_symbol(data, static_cast<std::size_t>(i), symbol_bits);
    std::uint32_t& xs = x[i & (n_states - 1)];  // n_states is a power of two
    const std::uint32_t f = table.freq(s);
    const std::uint32_t c = xs >= (std::uint64_t{1} << 20) * f;
    words[pos - 1] = static_cast<std::uint16_t>(xs & 0xffffu);  // pos ≥ 1: at most n_sym words
    pos -= c;
    std::uint32_t y = xs >> (c * 16);
    std::uint32_t q = static_cast<std::uint32_t>(static_cast<double>(y) * inv[s]);
    q -= static_cast<std::uint64_t>(q) * f > y;
    q += static_cast<std::uint64_t>(q + 1) * f <= y;
    xs = (q << rans_prob_bits) + (y - q * f) + table.start(s);
  }

  ByteSink out;
  out.put(rans_format_version);
  out.put(static_cast<std::uint8_t>(symbol_bits));
  out.put(static_cast<std::uint8_t>(rans_prob_bits));
  out.put(static_cast<std::uint8_t>(n_states));
  out.put(static_cast<std::uint64_t>(n));
  table.serialize(out);
  for (unsigned j = 0; j < n_states; ++j) out.put(x[j]);
  std::vector<std::uint8_t> result(out.size() + (cap - pos) * 2);
  std::memcpy(result.data(), out.bytes().data(), out.size());
  if (cap > pos) std::memcpy(result.data() + out.size(), words.get() + pos, (cap - pos) * 2);
  return result;
}

/// Size in bytes of rans_encode(data, n, symbol_bits, n_states) predicted from the histogram
/// alone (header + table + states + words for Σ c_s·(12 − log2 f_s) bits). The final states
/// hold up to 16 of those bits each, so the stream is smaller by at most 2·N + 2 bytes.
/// Costs one pass over the data, no coding.
[[nodiscard]] inline std::size_t rans_estimate_size(const std::uint8_t* data, std::size_t n, unsigned symbol_bits,
                                                    unsigned n_states = rans_default_states) {
  RansTable::check_symbol_bits(symbol_bits);
  const std::uint64_t n_sym = static_cast<std::uint64_t>(n) * (8 / symbol_bits);
  if (n_states == 0) n_states = rans_auto_states(n_sym);
  std::uint64_t counts[256] = {};
  detail::rans_count(data, n, symbol_bits, counts);
  const RansTable table = RansTable::from_counts(counts, symbol_bits);
  const double words = std::ceil(table.coded_bits(counts) / 16.0);
  return 12 + table.serialized_size() + 4 * std::size_t{n_states} + 2 * static_cast<std::size_t>(words);
}

/// Validated header of a stream (throws sparq::error on any malformed field).
[[nodiscard]] inline RansStreamInfo rans_stream_info(const std::uint8_t* stream, std::size_t size,
                                                     const std::string& what = "rANS stream") {
  return detail::rans_parse(stream, size, std::numeric_limits<std::uint64_t>::max(), what).info;
}

/// Decodes a stream into out[0..n_out), n_out being the stream's decoded length exactly.
/// Throws sparq::error on a malformed or corrupted stream; never touches memory outside
/// [stream, stream + size) and [out, out + n_out).
inline void rans_decode_into(const std::uint8_t* stream, std::size_t size, std::uint8_t* out, std::size_t n_out,
                             const std::string& what = "rANS stream") {
  auto r = detail::rans_parse(stream, size, n_out, what);
  SPARQ_CHECK(r.info.n_bytes == n_out, what, ": rANS decoded length ", r.info.n_bytes, ", expected ", n_out);
  if (n_out == 0) {
    for (unsigned j = 0; j < r.info.n_states; ++j)
      SPARQ_CHECK(r.states[j] == rans_lower, what, ": empty rANS stream with state ", j, " = ", r.states[j]);
    SPARQ_CHECK(r.info.word_bytes == 0, what, ": empty rANS stream with ", r.info.word_bytes / 2, " words");
    return;
  }
  const std::uint8_t* wp = r.words;
  const std::uint8_t* wend = r.words + r.info.word_bytes;
  const std::uint64_t n_sym = static_cast<std::uint64_t>(n_out) * (8 / r.info.symbol_bits);
  bool ok = false;
  switch (r.info.symbol_bits) {
    case 2: ok = kernels::rans_decode_symbols<2>(r.info.n_states, r.table.lut(), r.states, wp, wend, out, n_sym); break;
    case 4: ok = kernels::rans_decode_symbols<4>(r.info.n_states, r.table.lut(), r.states, wp, wend, out, n_sym); break;
    default: ok = kernels::rans_decode_symbols<8>(r.info.n_states, r.table.lut(), r.states, wp, wend, out, n_sym); break;
  }
  SPARQ_CHECK(ok, what, ": rANS words exhausted before the last of ", n_sym, " symbols (corrupted stream)");
  SPARQ_CHECK(wp == wend, what, ": ", (wend - wp) / 2, " rANS words left after the last symbol (corrupted stream)");
  for (unsigned j = 0; j < r.info.n_states; ++j)
    SPARQ_CHECK(r.states[j] == rans_lower, what, ": rANS state ", j, " ends at ", r.states[j], " instead of L = ",
                rans_lower, " (corrupted stream)");
}

/// Decodes a stream whose decoded length is at most max_bytes (checked before allocating).
[[nodiscard]] inline std::vector<std::uint8_t> rans_decode(const std::uint8_t* stream, std::size_t size,
                                                           std::uint64_t max_bytes,
                                                           const std::string& what = "rANS stream") {
  const auto info = detail::rans_parse(stream, size, max_bytes, what).info;
  std::vector<std::uint8_t> out(static_cast<std::size_t>(info.n_bytes));
  rans_decode_into(stream, size, out.data(), out.size(), what);
  return out;
}

}  // namespace sparq::io
