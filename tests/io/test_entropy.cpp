// Entropy coding: rANS tables and streams (round trips, a reference decoder written from the spec,
// scalar vs AVX-512 agreement, corruption), raw fallback, and entropy-coded SPRQ container sections.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "sparq/io/container.hpp"
#include "sparq/io/entropy.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/io/rans.hpp"
#include "sparq/quant/quantizer.hpp"
#include "container_forge.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::io;

namespace {

using Bytes = std::vector<std::uint8_t>;

// Streams of several distributions, as bytes.
Bytes gaussian_codes(std::size_t n, unsigned seed, double sigma) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd(0.0, sigma);
  Bytes b(n);
  for (auto& v : b) v = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(std::nearbyint(nd(g)), -127.0, 127.0)));
  return b;
}
Bytes uniform_bytes(std::size_t n, unsigned seed) {
  std::mt19937 g(seed);
  Bytes b(n);
  for (auto& v : b) v = static_cast<std::uint8_t>(g() >> 24);
  return b;
}
Bytes geometric_bytes(std::size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::geometric_distribution<int> gd(0.3);
  Bytes b(n);
  for (auto& v : b) v = static_cast<std::uint8_t>(std::min(gd(g), 255) | (std::min(gd(g), 15) << 4));
  return b;
}
Bytes one_rare(std::size_t n) {  // every byte 0x55 but one 0xA3 in the middle
  Bytes b(n, 0x55);
  if (n) b[n / 2] = 0xA3;
  return b;
}
Bytes all_distinct(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 167 + 13);
  return b;
}

Bytes encode(const Bytes& b, unsigned bits, unsigned states = 0) { return rans_encode(b.data(), b.size(), bits, states); }
Bytes decode(const Bytes& s) { return rans_decode(s.data(), s.size(), std::uint64_t(1) << 40); }

// A straightforward decoder written from the stream layout in io/rans.hpp, one symbol at a time.
Bytes reference_decode(const Bytes& s) {
  std::size_t pos = 0;
  auto u8 = [&] { return s.at(pos++); };
  REQUIRE(u8() == 1);
  const unsigned b = u8();
  REQUIRE(u8() == 12);
  const unsigned n_states = u8();
  std::uint64_t n = 0;
  for (int k = 0; k < 8; ++k) n |= std::uint64_t(u8()) << (8 * k);
  const unsigned a = 1u << b;
  std::vector<unsigned> present;
  std::vector<std::uint8_t> bitmap;
  for (unsigned k = 0; k < (a + 7) / 8; ++k) bitmap.push_back(u8());
  std::vector<std::uint32_t> freq(a, 0), start(a, 0);
  for (unsigned sym = 0; sym < a; ++sym)
    if ((bitmap[sym / 8] >> (sym % 8)) & 1) {
      std::uint32_t v = u8();
      if (v & 128) v = (v & 127) | (std::uint32_t(u8()) << 7);
      freq[sym] = v + 1;
    }
  for (unsigned sym = 1; sym < a; ++sym) start[sym] = start[sym - 1] + freq[sym - 1];
  std::vector<std::uint32_t> x(n_states);
  for (auto& st : x) {
    st = 0;
    for (int k = 0; k < 4; ++k) st |= std::uint32_t(u8()) << (8 * k);
  }
  Bytes out(n, 0);
  for (std::uint64_t i = 0; i < n * (8 / b); ++i) {
    std::uint32_t& st = x[i % n_states];
    const std::uint32_t q = st % 4096;
    unsigned sym = 0;
    while (!(start[sym] <= q && q < start[sym] + freq[sym])) ++sym;
    st = freq[sym] * (st / 4096) + q - start[sym];
    if (st < 65536) {
      st = (st << 16) | s.at(pos) | (std::uint32_t(s.at(pos + 1)) << 8);
      pos += 2;
    }
    out[(i * b) / 8] = static_cast<std::uint8_t>(out[(i * b) / 8] | (sym << ((i * b) % 8)));
  }
  CHECK(pos == s.size());
  for (auto st : x) CHECK(st == 65536);
  return out;
}

using container_forge::peek;
using container_forge::poke;
using container_forge::refresh_checksums;

}  // namespace

TEST_CASE("RansTable: normalized frequencies sum to 4096, keep every present symbol, cost near the entropy") {
  const Bytes b = gaussian_codes(20000, 1, 6.0);
  std::uint64_t counts[256] = {};
  for (auto v : b) ++counts[v];
  const auto t = RansTable::from_counts(counts, 8);
  std::uint32_t sum = 0;
  for (unsigned s = 0; s < 256; ++s) {
    CHECK((t.freq(s) > 0) == (counts[s] > 0));
    sum += t.freq(s);
  }
  CHECK(sum == 4096);
  const double h = entropy_bits(b.data(), b.size(), 8);
  const double coded = t.coded_bits(counts);
  CHECK(coded >= h - 1e-6);
  CHECK(coded <= h * 1.01);  // 12-bit quantization of the probabilities costs < 1% here
  // LUT: every slot maps to the symbol whose [start, start + f) holds it.
  for (unsigned q = 0; q < 4096; ++q) {
    const auto e = t.lut()[q];
    const unsigned s = e & 255;
    CHECK(t.start(s) <= q);
    CHECK(q < t.start(s) + t.freq(s));
    CHECK(((e >> 8) & 4095) == q - t.start(s));
    CHECK((e >> 20) + 1 == t.freq(s));
  }
  // Serialized form round-trips and has the documented size.
  ByteSink sink;
  t.serialize(sink);
  CHECK(sink.size() == t.serialized_size());
  ByteCursor c(sink.bytes().data(), sink.size(), "table");
  const auto u = RansTable::parse(c, 8);
  CHECK(c.remaining() == 0);
  for (unsigned s = 0; s < 256; ++s) CHECK(u.freq(s) == t.freq(s));

  // One symbol: probability 1 (0 bits per symbol).
  std::uint64_t one[16] = {};
  one[9] = 12345;
  const auto t1 = RansTable::from_counts(one, 4);
  CHECK(t1.freq(9) == 4096);
  CHECK(t1.coded_bits(one) == 0.0);
  // The greedy repair moves units where they cost least: 255 singletons and one huge symbol
  // (every singleton keeps f = 1, the big one takes the rest).
  std::uint64_t skew[256];
  for (auto& v : skew) v = 1;
  skew[0] = 1000000;
  const auto ts = RansTable::from_counts(skew, 8);
  CHECK(ts.freq(0) == 4096 - 255);
  for (unsigned s = 1; s < 256; ++s) CHECK(ts.freq(s) == 1);
}

TEST_CASE("RansTable::parse rejects malformed tables") {
  auto parse = [](Bytes b, unsigned bits) {
    ByteCursor c(reinterpret_cast<const char*>(b.data()), b.size(), "t");
    return RansTable::parse(c, bits);
  };
  // 2-bit alphabet: bitmap 0b0011, freqs 2048, 2048 (varints 0xff 0x0f).
  CHECK_NOTHROW(parse({0x03, 0xff, 0x0f, 0xff, 0x0f}, 2));
  CHECK_THROWS_AS(parse({0x13, 0xff, 0x0f, 0xff, 0x0f}, 2), sparq::error);                 // bitmap padding bit
  CHECK_THROWS_WITH(parse({0x03, 0xff, 0x0f, 0xfe, 0x0f}, 2), Catch::Contains("sum to 4095"));  // sum off by one
  CHECK_THROWS_WITH(parse({0x03, 0xff, 0x0f, 0xff, 0x20}, 2), Catch::Contains("high byte"));  // f > 4096
  CHECK_THROWS_WITH(parse({0x03, 0x85, 0x00, 0xff, 0x0f}, 2), Catch::Contains("high byte"));  // non-minimal varint
  CHECK_THROWS_WITH(parse({0x03, 0xff, 0x0f}, 2), Catch::Contains("truncated"));
  CHECK(parse({0x01, 0xff, 0x1f}, 2).freq(0) == 4096);  // one symbol of probability 1
  CHECK_THROWS_WITH(parse({0x03, 0xff, 0x1f, 0x00}, 2), Catch::Contains("more than 4096"));
  CHECK_THROWS_AS(RansTable::check_symbol_bits(3), sparq::error);
}

TEST_CASE("rANS: exact round trips of random and adversarial streams, every symbol width and state count") {
  const std::size_t sizes[] = {0, 1, 2, 3, 7, 31, 33, 257, 1000, 4099};
  for (unsigned bits : {2u, 4u, 8u})
    for (unsigned states : {4u, 8u, 16u, 32u})
      for (std::size_t n : sizes) {
        const std::vector<Bytes> inputs = {gaussian_codes(n, unsigned(n + bits), 3.0), uniform_bytes(n, unsigned(n)),
                                           geometric_bytes(n, 7), Bytes(n, 0x5a), one_rare(n), all_distinct(n)};
        for (const auto& in : inputs) {
          const Bytes s = encode(in, bits, states);
          INFO("bits " << bits << " states " << states << " n " << n);
          REQUIRE(decode(s) == in);
          const auto info = rans_stream_info(s.data(), s.size());
          CHECK(info.n_bytes == n);
          CHECK(info.n_states == states);
          CHECK(info.header_bytes + info.word_bytes == s.size());
        }
      }
  // Large: a 300 KB Gaussian stream goes through the AVX-512 fast loop for many iterations.
  for (unsigned bits : {2u, 4u, 8u}) {
    const Bytes in = gaussian_codes(300001, 5, 20.0);
    const Bytes s = encode(in, bits);
    CHECK(rans_stream_info(s.data(), s.size()).n_states == 32);
    CHECK(decode(s) == in);
  }
  // Determinism: same input, same bytes.
  const Bytes in = geometric_bytes(5000, 3);
  CHECK(encode(in, 4) == encode(in, 4));
}

TEST_CASE("rANS: the decoder agrees with a reference decoder written from the documented layout") {
  for (unsigned bits : {2u, 4u, 8u})
    for (unsigned states : {4u, 16u, 32u})
      for (std::size_t n : {0u, 5u, 700u, 3001u}) {
        const Bytes in = geometric_bytes(n, unsigned(n * 3 + bits));
        const Bytes s = encode(in, bits, states);
        CHECK(reference_decode(s) == in);
      }
}

TEST_CASE("rANS: scalar and AVX-512 kernels decode identically") {
  for (unsigned states : {16u, 32u}) {
    const Bytes in = gaussian_codes(70001, 9, 12.0);
    const Bytes s = encode(in, 8, states);
    auto r = io::detail::rans_parse(s.data(), s.size(), in.size(), "s");
    Bytes out(in.size());
    const std::uint8_t* wp = r.words;
    const std::uint8_t* wend = r.words + r.info.word_bytes;
    const bool ok = states == 16 ? kernels::rans_decode_scalar<8, 16>(r.table.lut(), r.states, wp, wend, out.data(), in.size())
                                 : kernels::rans_decode_scalar<8, 32>(r.table.lut(), r.states, wp, wend, out.data(), in.size());
    CHECK(ok);
    CHECK(wp == wend);
    CHECK(out == in);
    Bytes out2(in.size());
    rans_decode_into(s.data(), s.size(), out2.data(), out2.size());  // AVX-512 when compiled in
    CHECK(out2 == in);
  }
  INFO("AVX-512 rANS kernel compiled in: " << SPARQ_RANS_AVX512);
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  CHECK(SPARQ_RANS_AVX512 == 1);  // built with the AVX-512 flag set
#endif
}

TEST_CASE("rANS: scalar and AVX2 kernels decode identically (2/4/8-bit symbols, 16 and 32 states)") {
#if SPARQ_RANS_AVX2
  if (!__builtin_cpu_supports("avx2")) return;
  for (unsigned bits : {2u, 4u, 8u})
    for (unsigned states : {16u, 32u})
      for (std::size_t n : {0u, 40u, 7000u, 70000u}) {
        Bytes in = gaussian_codes(n, unsigned(n + bits + states), bits == 8 ? 12.0 : bits == 4 ? 3.0 : 1.0);
        for (auto& v : in) v = static_cast<std::uint8_t>(v & ((1u << bits) - 1));
        const Bytes s = encode(in, bits, states);
        auto r = io::detail::rans_parse(s.data(), s.size(), in.size(), "s");
        const std::size_t out_bytes = (in.size() * bits + 7) / 8;
        Bytes a(out_bytes + 1, 0xAB), b(out_bytes + 1, 0xAB);  // one guard byte past the output
        std::uint32_t sa[32], sb[32];
        std::memcpy(sa, r.states, states * 4);
        std::memcpy(sb, r.states, states * 4);
        const std::uint8_t* wa = r.words;
        const std::uint8_t* wb = r.words;
        const std::uint8_t* wend = r.words + r.info.word_bytes;
        auto run = [&](auto scalar_tag, std::uint32_t* st, const std::uint8_t*& wp, std::uint8_t* o) {
          constexpr bool scalar = decltype(scalar_tag)::value;
          auto go = [&](auto bt, auto nt) {
            constexpr unsigned Bb = decltype(bt)::value, Nn = decltype(nt)::value;
            if constexpr (scalar) return kernels::rans_decode_scalar<Bb, Nn>(r.table.lut(), st, wp, wend, o, in.size());
            else return kernels::rans_decode_avx2<Bb, Nn>(r.table.lut(), st, wp, wend, o, in.size());
          };
          using I16 = std::integral_constant<unsigned, 16>;
          using I32 = std::integral_constant<unsigned, 32>;
          auto by_n = [&](auto bt) { return states == 16 ? go(bt, I16{}) : go(bt, I32{}); };
          return bits == 2 ? by_n(std::integral_constant<unsigned, 2>{})
                 : bits == 4 ? by_n(std::integral_constant<unsigned, 4>{})
                             : by_n(std::integral_constant<unsigned, 8>{});
        };
        INFO("bits " << bits << " states " << states << " n " << n);
        const bool oka = run(std::true_type{}, sa, wa, a.data());
        const bool okb = run(std::false_type{}, sb, wb, b.data());
        CHECK(oka);
        CHECK(okb);
        CHECK(wa == wb);
        CHECK(std::memcmp(sa, sb, states * 4) == 0);
        CHECK(a == b);
      }
#endif
}

TEST_CASE("rANS: size is within 1% of the order-0 entropy on skewed streams") {
  const Bytes in = gaussian_codes(1 << 18, 11, 9.0);
  for (unsigned bits : {8u, 4u}) {
    const Bytes s = encode(in, bits);
    const double h = entropy_bits(in.data(), in.size(), bits) / 8.0;
    const auto info = rans_stream_info(s.data(), s.size());
    CHECK(static_cast<double>(info.word_bytes) >= h * 0.999);
    CHECK(static_cast<double>(info.word_bytes) <= h * 1.01 + 64);
  }
  // The size predicted from the histogram overshoots by at most 2N + 2 bytes (the final states).
  for (unsigned bits : {8u, 4u, 2u})
    for (std::size_t n : {0u, 1u, 100u, 5000u, 70000u}) {
      const Bytes g = geometric_bytes(n, unsigned(n + bits));
      const Bytes s = encode(g, bits);
      const auto states = rans_stream_info(s.data(), s.size()).n_states;
      const auto est = rans_estimate_size(g.data(), g.size(), bits);
      CHECK(est >= s.size());
      CHECK(est <= s.size() + 2 * states + 2);
    }
  // All-equal: 0 bits per symbol, only the header.
  const Bytes eq(1 << 16, 7);
  const Bytes s = encode(eq, 8);
  CHECK(rans_stream_info(s.data(), s.size()).word_bytes == 0);
  CHECK(decode(s) == eq);
}

TEST_CASE("rANS: corrupted, truncated and lying streams are rejected with sparq::error") {
  const Bytes in = gaussian_codes(3000, 4, 5.0);
  const Bytes s = encode(in, 8, 8);
  const auto info = rans_stream_info(s.data(), s.size());
  // Truncation at every length, and a trailing byte.
  for (std::size_t k = 0; k < s.size(); ++k) {
    Bytes t(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k));
    CHECK_THROWS_AS(decode(t), sparq::error);
  }
  Bytes longer = s;
  longer.push_back(0);
  CHECK_THROWS_AS(decode(longer), sparq::error);
  longer.push_back(0);  // an extra word: consumed nowhere
  CHECK_THROWS_AS(decode(longer), sparq::error);
  // Lengths that lie.
  auto with_len = [&](std::uint64_t n) {
    Bytes t = s;
    std::memcpy(t.data() + 4, &n, 8);
    return t;
  };
  CHECK_THROWS_AS(decode(with_len(in.size() + 1)), sparq::error);
  CHECK_THROWS_AS(decode(with_len(in.size() - 1)), sparq::error);
  CHECK_THROWS_WITH(decode(with_len(std::uint64_t(1) << 50)), Catch::Contains("exceeds the limit"));
  CHECK_THROWS_AS(decode(with_len(0)), sparq::error);
  Bytes out(in.size() + 1);
  CHECK_THROWS_WITH(rans_decode_into(s.data(), s.size(), out.data(), out.size()), Catch::Contains("expected"));
  // Bad header fields.
  for (std::size_t at : {0u, 1u, 2u, 3u}) {
    Bytes t = s;
    t[at] = static_cast<std::uint8_t>(t[at] + 1);
    CHECK_THROWS_AS(decode(t), sparq::error);
  }
  // A state below L.
  {
    Bytes t = s;
    const std::uint32_t low = 5;
    std::memcpy(t.data() + info.header_bytes - 4 * info.n_states, &low, 4);
    CHECK_THROWS_WITH(decode(t), Catch::Contains("below L"));
  }
  // Every single-bit flip: rejected with sparq::error, or (rarely, in the words, where only the
  // final-state check can notice) decoded to different bytes; never anything else.
  std::size_t accepted = 0, flips = 0;
  for (std::size_t byte = 0; byte < s.size(); ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      Bytes t = s;
      t[byte] = static_cast<std::uint8_t>(t[byte] ^ (1u << bit));
      ++flips;
      try {
        const Bytes d = entropy_decode(t.data(), t.size());  // bounded like a container reader
        CHECK(byte >= info.header_bytes);  // header and table flips are always caught
        CHECK(d != in);
        ++accepted;
      } catch (const sparq::error&) {
      }
    }
  CHECK(accepted * 50 < flips);  // > 98% of flips are caught by the stream alone
}

TEST_CASE("entropy_encode: raw fallback when coding does not pay, never larger than fixed width") {
  // Maximum-entropy bytes and all-distinct bytes cannot be compressed: stored raw.
  for (const Bytes& in : {uniform_bytes(5000, 1), all_distinct(256), Bytes{}, Bytes{42}}) {
    for (auto e : {SectionEncoding::rans8, SectionEncoding::rans4, SectionEncoding::rans2, SectionEncoding::smallest}) {
      const auto r = entropy_encode(in.data(), in.size(), e);
      CHECK(r.encoding == SectionEncoding::raw);
      CHECK(r.stored_size(in.size()) == in.size());
      // The stream alone would have been larger (this is why the fallback exists).
      if (!in.empty()) CHECK(rans_encode(in.data(), in.size(), static_cast<unsigned>(e == SectionEncoding::smallest ? 8 : int(e))).size() >= in.size());
    }
  }
  // Skewed data is coded, and the stored size (table, states and words) is below the raw size.
  const Bytes g = gaussian_codes(4096, 2, 4.0);
  const auto r = entropy_encode(g.data(), g.size(), SectionEncoding::smallest);
  CHECK(r.encoding != SectionEncoding::raw);
  CHECK(r.stream.size() < g.size());
  CHECK(entropy_decode(r.stream.data(), r.stream.size()) == g);
  // smallest picks the smallest of the three (a wider width wins within 0.5%).
  for (auto e : {SectionEncoding::rans8, SectionEncoding::rans4, SectionEncoding::rans2}) {
    const auto q = entropy_encode(g.data(), g.size(), e);
    CHECK(r.stream.size() * 995 <= q.stored_size(g.size()) * 1000);
    if (static_cast<int>(e) > static_cast<int>(r.encoding)) CHECK(q.stored_size(g.size()) * 995 >= r.stream.size() * 1000);
  }
  // Near-constant data past the decoded-size bound of readers (256 x + 64 KiB) is stored raw.
  const Bytes big(1 << 20, 3);
  CHECK(entropy_encode(big.data(), big.size(), SectionEncoding::rans8).encoding == SectionEncoding::raw);
  const Bytes mid(1 << 16, 3);
  CHECK(entropy_encode(mid.data(), mid.size(), SectionEncoding::rans8).encoding == SectionEncoding::rans8);
}

TEST_CASE("container: entropy-coded sections round-trip; all-raw files stay version 1") {
  Container c;
  c.metadata["recipe"] = std::string("int4 g32");
  ContainerTensor t{"blk.0.wq", "int4_g32_sym", {64, 64}, {}};
  const Bytes codes = gaussian_codes(64 * 32, 3, 2.0);
  const Bytes nib = [&] {  // packed int4 codes (offset binary) of a Gaussian
    Bytes b(2048);
    const Bytes g = gaussian_codes(4096, 8, 2.0);
    for (std::size_t i = 0; i < b.size(); ++i)
      b[i] = static_cast<std::uint8_t>(((int8_t(g[2 * i]) + 8) & 15) | (((int8_t(g[2 * i + 1]) + 8) & 15) << 4));
    return b;
  }();
  t.add_section("codes", nib);
  t.add_section("scales", sparq_test::randn(128, 4));
  t.add_section("codes8", codes);
  c.add(std::move(t));

  const auto plain = serialize_container(c);
  CHECK(peek<std::uint32_t>(plain, 4) == 1);
  CHECK(serialize_container(parse_container(plain.data(), plain.size())) == plain);

  for (auto e : {SectionEncoding::rans8, SectionEncoding::rans4, SectionEncoding::rans2, SectionEncoding::smallest}) {
    Container d = c;
    d.tensors[0].set_encoding("codes", e);
    d.tensors[0].set_encoding("codes8", SectionEncoding::smallest);
    d.tensors[0].set_encoding("scales", e);  // floats do not compress: must fall back to raw
    const auto b = serialize_container(d);
    CHECK(peek<std::uint32_t>(b, 4) == 2);
    CHECK(b.size() < plain.size());
    const auto p = parse_container(b.data(), b.size());
    const auto& pt = p.tensor("blk.0.wq");
    CHECK(pt.find_section("codes")->bytes == nib);
    CHECK(pt.find_section("codes8")->bytes == codes);
    CHECK(pt.section_as<float>("scales") == sparq_test::randn(128, 4));
    CHECK(pt.find_section("scales")->encoding == SectionEncoding::raw);
    CHECK(pt.find_section("scales")->stored_bytes == 128 * 4);
    const auto* cs = pt.find_section("codes");
    if (e != SectionEncoding::smallest) CHECK(cs->encoding == e);
    CHECK(cs->stored_bytes < nib.size());
    // Parsed sections keep their encoding, so writing again gives the same file.
    CHECK(serialize_container(p) == b);
  }
  CHECK_THROWS_WITH(c.tensors[0].set_encoding("nope", SectionEncoding::rans8), Catch::Contains("no section 'nope'"));
  Container all = c;
  all.set_encoding(SectionEncoding::smallest);
  const auto ba = serialize_container(all);
  CHECK(parse_container(ba.data(), ba.size()).tensor("blk.0.wq").find_section("codes")->bytes == nib);
}

TEST_CASE("container: a version-1 file written before entropy coding existed still reads") {
  // Bytes written by the version-1 writer (commit 763b5d8): metadata bits=4, note="v1"; tensor
  // "q" int4_g32_sym [2, 8] with sections codes (8 bytes) and scales (0.5f, 0.25f).
  const unsigned char v1[] = {
      0x53, 0x50, 0x52, 0x51, 0x01, 0x00, 0x00, 0x00, 0xc4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x98, 0x9f, 0x4e, 0x3f, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x62, 0x69, 0x74, 0x73, 0x01, 0x04, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x6e, 0x6f, 0x74, 0x65, 0x00, 0x02, 0x00, 0x00, 0x00, 0x76, 0x31,
      0x45, 0x77, 0x0f, 0xd4, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x71, 0x0c, 0x00,
      0x00, 0x00, 0x69, 0x6e, 0x74, 0x34, 0x5f, 0x67, 0x33, 0x32, 0x5f, 0x73, 0x79, 0x6d, 0x02, 0x00, 0x00, 0x00, 0x02,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
      0x05, 0x00, 0x00, 0x00, 0x63, 0x6f, 0x64, 0x65, 0x73, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x32,
      0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe, 0x06, 0x00, 0x00, 0x00, 0x73, 0x63, 0x61, 0x6c, 0x65, 0x73, 0x08, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80, 0x3e, 0x16, 0x91, 0x0d, 0x03, 0x3e, 0x61,
      0x8b, 0x99, 0x51, 0x52, 0x50, 0x53};
  const std::vector<char> b(reinterpret_cast<const char*>(v1), reinterpret_cast<const char*>(v1) + sizeof v1);
  const auto c = parse_container(b.data(), b.size());
  CHECK(std::get<std::int64_t>(c.metadata.at("bits")) == 4);
  CHECK(std::get<std::string>(c.metadata.at("note")) == "v1");
  const auto& t = c.tensor("q");
  CHECK(t.dims == std::vector<std::uint64_t>{2, 8});
  CHECK(t.find_section("codes")->bytes == Bytes{0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe});
  CHECK(t.section_as<float>("scales") == std::vector<float>{0.5f, 0.25f});
  CHECK(t.find_section("codes")->encoding == SectionEncoding::raw);
  CHECK(serialize_container(c) == b);  // the writer still produces exactly these bytes
}

TEST_CASE("container: corrupted coded sections are rejected with sparq::error") {
  Container c;
  ContainerTensor t{"w", "int8", {4096}, {}};
  t.add_section("codes", gaussian_codes(4096, 6, 3.0));
  t.sections.back().encoding = SectionEncoding::rans8;
  c.add(std::move(t));
  const auto good = serialize_container(c);
  REQUIRE(peek<std::uint32_t>(good, 4) == 2);
  // Locate the section: ... "codes" | u8 encoding | u64 B | stream.
  const std::string key = "codes";
  const auto it = std::search(good.begin(), good.end(), key.begin(), key.end());
  REQUIRE(it != good.end());
  const std::size_t enc_at = static_cast<std::size_t>(it - good.begin()) + key.size();
  CHECK(good[enc_at] == 1);
  const std::size_t stream_at = enc_at + 9;
  {  // unknown encoding byte
    auto b = good;
    b[enc_at] = 2;
    refresh_checksums(b);
    CHECK_THROWS_WITH(parse_container(b.data(), b.size()), Catch::Contains("encoding 2"));
  }
  {  // encoding says raw: the stream bytes are then the section (valid), and differ from the codes
    auto b = good;
    b[enc_at] = 0;
    refresh_checksums(b);
    CHECK(parse_container(b.data(), b.size()).tensor("w").find_section("codes")->bytes != gaussian_codes(4096, 6, 3.0));
  }
  {  // the stream's decoded length lies
    auto b = good;
    poke<std::uint64_t>(b, stream_at + 4, 4097);
    refresh_checksums(b);
    CHECK_THROWS_AS(parse_container(b.data(), b.size()), sparq::error);
  }
  {  // a stream claiming a huge decoded size is refused before allocation
    auto b = good;
    poke<std::uint64_t>(b, stream_at + 4, std::uint64_t(1) << 40);
    refresh_checksums(b);
    CHECK_THROWS_WITH(parse_container(b.data(), b.size()), Catch::Contains("exceeds the limit"));
  }
  {  // without refreshing the CRCs, any flip is caught by the container itself
    auto b = good;
    b[stream_at + 40] ^= 4;
    CHECK_THROWS_WITH(parse_container(b.data(), b.size()), Catch::Contains("checksum"));
  }
  // Truncated files.
  for (std::size_t k = 0; k < good.size(); k += 7) {
    const std::vector<char> b(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(k));
    CHECK_THROWS_AS(parse_container(b.data(), b.size()), sparq::error);
  }
}

TEST_CASE("container: real stories260K int8 and int4 codes compress losslessly") {
  const auto path = sparq_test::data_path("models/stories260K.bin");
  if (path.empty()) return;
  const auto w = read_llama2c(path);
  Container c;
  std::size_t raw = 0;
  for (std::size_t l = 0; l < w.blocks.size(); ++l) {
    const auto& m = w.blocks[l].wq;
    const auto q8 = Quantizer<Symmetric, PerChannel, 8>{}.quantize(m.view());
    const auto q4 = Quantizer<Symmetric, PerGroup<32>, 4>{}.quantize(m.view());
    ContainerTensor t{"blk." + std::to_string(l) + ".wq", "int8+int4", {m.rows(), m.cols()}, {}};
    t.add_section("codes8", q8.code_storage());
    t.add_section("codes4", q4.code_storage());
    raw += q8.code_storage().size() + q4.code_storage().size();
    c.add(std::move(t));
  }
  const auto plain = serialize_container(c);
  c.set_encoding(SectionEncoding::smallest);
  const auto coded = serialize_container(c);
  const auto p = parse_container(coded.data(), coded.size());
  std::size_t stored = 0;
  for (std::size_t l = 0; l < c.tensors.size(); ++l)
    for (const auto* name : {"codes8", "codes4"}) {
      const auto* s = p.tensors[l].find_section(name);
      CHECK(s->bytes == c.tensors[l].find_section(name)->bytes);
      CHECK(s->stored_bytes <= s->bytes.size());
      stored += s->stored_bytes;
    }
  // Small tensors (4096 codes, tables included) of near-Gaussian codes: a few percent smaller.
  CHECK(stored < raw);
  CHECK(coded.size() < plain.size());
}
