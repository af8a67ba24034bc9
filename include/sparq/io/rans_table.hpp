// RansTable: the normalized symbol frequencies of one rANS stream (12-bit precision) and its decode LUT.
//
// MATH. A stream of symbols s ∈ [0, A) (A = 2^symbol_bits, symbol_bits ∈ {2, 4, 8}) with counts
// c_s is modelled by integer frequencies f_s with Σ f_s = 2^12 = 4096 and f_s ≥ 1 exactly for the
// symbols that occur (f_s = 0 otherwise). rANS then spends −log2(f_s / 4096) bits on symbol s, so
// a stream costs  Σ_s c_s · (12 − log2 f_s)  bits (coded_bits), which approaches the empirical
// entropy n·H as 4096·c_s/n approaches an integer. `from_counts` starts from the rounded
// proportions max(1, round(4096 · c_s / n)) and then moves single units of frequency, one at a
// time, to/from the symbol where that costs the fewest bits (greedy on c_s · log2 of the ratio;
// ties go to the lowest symbol), so the table is deterministic and close to the optimum. A
// stream of one distinct symbol gets f = 4096 and costs 0 bits.
//
// cumulative start: start_s = Σ_{t<s} f_t. The decode LUT maps every slot q ∈ [0, 4096) to the
// symbol s with start_s ≤ q < start_s + f_s, packed as one u32:
//   bits 0..7 symbol s | bits 8..19 q − start_s | bits 20..31 f_s − 1.
//
// SERIALIZED FORM (little-endian, inside a rANS stream; see rans.hpp):
//   presence bitmap: ceil(A / 8) bytes, bit s (bit s%8 of byte s/8) set iff f_s > 0; unused high
//   bits of the last byte are 0; then for every present symbol in increasing order f_s − 1 as a
//   1- or 2-byte varint: v < 128 → one byte v; else two bytes (v & 127) | 128, v >> 7 (< 32).
// `parse` checks every byte: bitmap padding zero, each varint complete and minimal, every
// frequency in [1, 4096], and Σ f_s = 4096 when any symbol is present.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/byte_cursor.hpp"
#include "sparq/kernels/rans_decode.hpp"

namespace sparq::io {

inline constexpr unsigned rans_prob_bits = kernels::rans_prob_bits;  // the decode kernels' resolution
inline constexpr std::uint32_t rans_prob_scale = kernels::rans_prob_scale;

class RansTable {
 public:
  RansTable() = default;

  /// Normalized table for the counts of an alphabet of 2^symbol_bits symbols (counts[0..A)).
  [[nodiscard]] static RansTable from_counts(const std::uint64_t* counts, unsigned symbol_bits) {
    check_symbol_bits(symbol_bits);
    RansTable t;
    t.symbol_bits_ = symbol_bits;
    const unsigned a = t.alphabet();
    std::uint64_t n = 0;
    unsigned present = 0;
    for (unsigned s = 0; s < a; ++s) {
      n += counts[s];
      present += counts[s] != 0;
    }
    if (present == 0) return t;  // empty stream: no symbol, no frequencies
    std::int64_t sum = 0;
    for (unsigned s = 0; s < a; ++s) {
      if (counts[s] == 0) continue;
      const double p = static_cast<double>(counts[s]) * rans_prob_scale / static_cast<double>(n);
      const auto f = static_cast<std::uint32_t>(std::max(1.0, std::floor(p + 0.5)));
      t.freq_[s] = std::min<std::uint32_t>(f, rans_prob_scale);
      sum += t.freq_[s];
    }
    // Greedy repair of the sum: take a unit where it costs the fewest bits, give one where it
    // saves the most. Each move changes the cost by c_s · log2(f / (f ∓ 1)).
    while (sum > static_cast<std::int64_t>(rans_prob_scale)) {
      int best = -1;
      double best_cost = 0;
      for (unsigned s = 0; s < a; ++s) {
        if (t.freq_[s] <= 1) continue;
        const double cost = static_cast<double>(counts[s]) * std::log2(double(t.freq_[s]) / double(t.freq_[s] - 1));
        if (best < 0 || cost < best_cost) best = static_cast<int>(s), best_cost = cost;
      }
      --t.freq_[static_cast<unsigned>(best)];  // exists: present ≤ 256 < 4096 < sum
      --sum;
    }
    while (sum < static_cast<std::int64_t>(rans_prob_scale)) {
      int best = -1;
      double best_gain = 0;
      for (unsigned s = 0; s < a; ++s) {
        if (t.freq_[s] == 0) continue;
        const double gain = static_cast<double>(counts[s]) * std::log2(double(t.freq_[s] + 1) / double(t.freq_[s]));
        if (best < 0 || gain > best_gain) best = static_cast<int>(s), best_gain = gain;
      }
      ++t.freq_[static_cast<unsigned>(best)];
      ++sum;
    }
    t.finish();
    return t;
  }

  /// Reads a serialized table for 2^symbol_bits symbols; throws sparq::error naming the field.
  [[nodiscard]] static RansTable parse(ByteCursor& c, unsigned symbol_bits) {
    check_symbol_bits(symbol_bits);
    RansTable t;
    t.symbol_bits_ = symbol_bits;
    const unsigned a = t.alphabet();
    const unsigned nb = (a + 7) / 8;
    std::array<std::uint8_t, 32> bitmap{};
    for (unsigned i = 0; i < nb; ++i) bitmap[i] = c.read<std::uint8_t>("rANS table presence bitmap");
    if (a < 8 && (bitmap[0] >> a) != 0) {
      sparq::detail::fail(c.what(), ": rANS table presence bitmap 0x", std::hex, int(bitmap[0]), std::dec,
                          " marks symbols >= ", a, " (alphabet of ", a, ")");
    }
    std::uint32_t sum = 0;
    for (unsigned s = 0; s < a; ++s) {
      if (((bitmap[s / 8] >> (s % 8)) & 1u) == 0) continue;
      std::uint32_t v = c.read<std::uint8_t>("rANS table frequency");
      if (v & 128u) {
        const std::uint32_t hi = c.read<std::uint8_t>("rANS table frequency");
        SPARQ_CHECK(hi != 0 && hi < 32, c.what(), ": rANS table frequency of symbol ", s, " has high byte ", hi,
                    ", expected 1..31");
        v = (v & 127u) | (hi << 7);
      }
      SPARQ_CHECK(v < rans_prob_scale, c.what(), ": rANS frequency of symbol ", s, " is ", v + 1,
                  ", expected 1..", rans_prob_scale);
      t.freq_[s] = v + 1;
      sum += v + 1;
      SPARQ_CHECK(sum <= rans_prob_scale, c.what(), ": rANS frequencies sum to more than ", rans_prob_scale);
    }
    SPARQ_CHECK(sum == 0 || sum == rans_prob_scale, c.what(), ": rANS frequencies sum to ", sum, ", expected ",
                rans_prob_scale);
    if (sum != 0) t.finish();
    return t;
  }

  /// Appends the serialized form (see the file comment).
  void serialize(ByteSink& out) const {
    const unsigned a = alphabet();
    std::array<std::uint8_t, 32> bitmap{};
    for (unsigned s = 0; s < a; ++s)
      if (freq_[s]) bitmap[s / 8] = static_cast<std::uint8_t>(bitmap[s / 8] | (1u << (s % 8)));
    out.put_bytes(bitmap.data(), (a + 7) / 8);
    for (unsigned s = 0; s < a; ++s) {
      if (!freq_[s]) continue;
      const std::uint32_t v = freq_[s] - 1;
      if (v < 128) {
        out.put(static_cast<std::uint8_t>(v));
      } else {
        out.put(static_cast<std::uint8_t>((v & 127u) | 128u));
        out.put(static_cast<std::uint8_t>(v >> 7));
      }
    }
  }

  /// Bytes `serialize` writes.
  [[nodiscard]] std::size_t serialized_size() const noexcept {
    std::size_t n = (alphabet() + 7) / 8;
    for (unsigned s = 0; s < alphabet(); ++s)
      if (freq_[s]) n += freq_[s] - 1 < 128 ? 1 : 2;
    return n;
  }

  [[nodiscard]] unsigned symbol_bits() const noexcept { return symbol_bits_; }
  [[nodiscard]] unsigned alphabet() const noexcept { return 1u << symbol_bits_; }
  /// True when no symbol is present (the table of an empty stream).
  [[nodiscard]] bool empty() const noexcept { return !finished_; }
  [[nodiscard]] std::uint32_t freq(unsigned s) const noexcept { return freq_[s & 255u]; }
  [[nodiscard]] std::uint32_t start(unsigned s) const noexcept { return start_[s & 255u]; }
  /// The 4096-entry decode LUT (see the file comment); empty() tables have none.
  [[nodiscard]] const std::uint32_t* lut() const noexcept { return lut_.data(); }

  /// Σ c_s · (12 − log2 f_s): the bits rANS spends on these counts (∞ if a counted symbol has f = 0).
  [[nodiscard]] double coded_bits(const std::uint64_t* counts) const noexcept {
    double bits = 0;
    for (unsigned s = 0; s < alphabet(); ++s) {
      if (counts[s] == 0) continue;
      if (freq_[s] == 0) return INFINITY;
      bits += static_cast<double>(counts[s]) * (rans_prob_bits - std::log2(static_cast<double>(freq_[s])));
    }
    return bits;
  }

  static void check_symbol_bits(unsigned symbol_bits) {
    SPARQ_CHECK(symbol_bits == 2 || symbol_bits == 4 || symbol_bits == 8, "rANS: symbol width ", symbol_bits,
                " bits, expected 2, 4 or 8");
  }

 private:
  void finish() {
    std::uint32_t st = 0;
    lut_.assign(rans_prob_scale, 0);
    for (unsigned s = 0; s < alphabet(); ++s) {
      start_[s] = st;
      for (std::uint32_t q = 0; q < freq_[s]; ++q)
        lut_[st + q] = s | (q << 8) | ((freq_[s] - 1) << 20);
      st += freq_[s];
    }
    finished_ = true;
  }

  unsigned symbol_bits_ = 8;
  bool finished_ = false;
  std::array<std::uint32_t, 256> freq_{};
  std::array<std::uint32_t, 256> start_{};
  std::vector<std::uint32_t> lut_;
};

}  // namespace sparq::io
