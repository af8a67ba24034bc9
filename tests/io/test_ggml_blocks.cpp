// ggml block types beyond Q8_0/Q4_0 (Q4_1, Q5_0, Q5_1, IQ4_NL and the K-quants Q2_K..Q6_K):
// hand-packed blocks decode to the values their documented layout defines (docs/formats.md, the
// packing and the expected values are written here independently of the library), make_block_*
// keep codes exactly, encoders stay within their documented error bounds, bad input is rejected
// with a message naming it, and llama.cpp's own Q8_0/Q4_0 files read (their codes are exactly
// what sparq's encoder writes for the original floats).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "sparq/io/ggml_blocks.hpp"
#include "sparq/io/gguf.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/gguf_writer.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::io;

namespace {

// ---- independent helpers: little-endian writes and the layouts of docs/formats.md -----------------

void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v & 0xff);
  b[at + 1] = static_cast<std::uint8_t>(v >> 8);
}

/// A random fp16 with |value| in [lo, hi) and a random sign when `sign`.
std::uint16_t rand_half(std::mt19937& g, double lo, double hi, bool sign = true) {
  std::uniform_real_distribution<double> u(lo, hi);
  double v = u(g);
  if (sign && (g() & 1)) v = -v;
  return float_to_fp16(static_cast<float>(v));
}

int rand_int(std::mt19937& g, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }

double h2d(std::uint16_t h) { return static_cast<double>(fp16_to_float(h)); }

/// Decodes `raw` (blocks of type t) with the library.
std::vector<float> decode(GgmlType t, const std::vector<std::uint8_t>& raw, std::size_t n) {
  REQUIRE(raw.size() == ggml_nbytes(t, n));
  std::vector<float> y(n);
  ggml_decode(t, reinterpret_cast<const char*>(raw.data()), n, y.data());
  return y;
}

/// Expected value computed in double, rounded once to float. The products of the layouts are exact
/// in double and in float, so this is the value one float multiply(-add) gives.
float f(double v) { return static_cast<float>(v); }

// IQ4_NL's levels, written out here again so the test does not read the library's table.
constexpr int iq4nl_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

constexpr std::size_t kBlocks = 5;  // blocks per hand-built test tensor

template <class T>
std::vector<char> as_chars(const T& block) {
  std::vector<char> v(sizeof block);
  std::memcpy(v.data(), &block, sizeof block);
  return v;
}

}  // namespace

// ---- type table ---------------------------------------------------------------------------------------

TEST_CASE("ggml type table: codes, names, block sizes and encodability", "[io][ggml]") {
  struct Row {
    GgmlType t;
    std::uint32_t code;
    const char* name;
    std::size_t elems, bytes;
    bool enc;
  };
  const Row rows[] = {{GgmlType::F32, 0, "F32", 1, 4, true},        {GgmlType::F16, 1, "F16", 1, 2, true},
                      {GgmlType::Q4_0, 2, "Q4_0", 32, 18, true},    {GgmlType::Q4_1, 3, "Q4_1", 32, 20, true},
                      {GgmlType::Q5_0, 6, "Q5_0", 32, 22, true},    {GgmlType::Q5_1, 7, "Q5_1", 32, 24, true},
                      {GgmlType::Q8_0, 8, "Q8_0", 32, 34, true},    {GgmlType::Q2_K, 10, "Q2_K", 256, 84, false},
                      {GgmlType::Q3_K, 11, "Q3_K", 256, 110, false}, {GgmlType::Q4_K, 12, "Q4_K", 256, 144, true},
                      {GgmlType::Q5_K, 13, "Q5_K", 256, 176, false}, {GgmlType::Q6_K, 14, "Q6_K", 256, 210, true},
                      {GgmlType::IQ4_NL, 20, "IQ4_NL", 32, 18, false}, {GgmlType::BF16, 30, "BF16", 1, 2, true}};
  for (const auto& r : rows) {
    INFO(r.name);
    CHECK(static_cast<std::uint32_t>(r.t) == r.code);
    CHECK(ggml_type_supported(r.code));
    CHECK(std::string(ggml_type_name(r.t)) == r.name);
    CHECK(ggml_block_elems(r.t) == r.elems);
    CHECK(ggml_block_bytes(r.t) == r.bytes);
    CHECK(ggml_type_encodable(r.t) == r.enc);
    CHECK(ggml_nbytes(r.t, 3 * r.elems) == 3 * r.bytes);
    CHECK_THAT(ggml_type_list(), Catch::Contains(std::string(r.name) + " (" + std::to_string(r.code) + ")"));
  }
  for (std::uint32_t c : {4u, 5u, 9u, 15u, 16u, 19u, 21u, 29u, 31u, 39u, 1000u}) CHECK_FALSE(ggml_type_supported(c));
  CHECK_THAT(ggml_type_list(true), !Catch::Contains("Q3_K") && Catch::Contains("Q6_K (14)"));
}

// ---- (a) hand-packed blocks decode to the values the layout defines ----------------------------------

TEST_CASE("Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL: hand-packed blocks decode to d, m and the codes", "[io][ggml]") {
  std::mt19937 g(11);
  const std::size_t n = 32 * kBlocks;
  std::vector<std::uint8_t> q4_0(18 * kBlocks), q4_1(20 * kBlocks), q5_0(22 * kBlocks), q5_1(24 * kBlocks),
      q8_0(34 * kBlocks), iq4(18 * kBlocks);
  std::vector<float> e4_0(n), e4_1(n), e5_0(n), e5_1(n), e8_0(n), eiq(n);
  for (std::size_t b = 0; b < kBlocks; ++b) {
    const std::uint16_t d = rand_half(g, 0.001, 4.0), m = rand_half(g, 0.001, 8.0);
    std::uint32_t qh5_0 = 0, qh5_1 = 0;
    for (std::size_t j = 0; j < 32; ++j) {
      const std::size_t i = b * 32 + j;
      const int c4 = rand_int(g, 0, 15), c5 = rand_int(g, 0, 31), c8 = rand_int(g, -128, 127);
      // Q4_0 / Q4_1 / IQ4_NL: element j < 16 in the low nibble of byte j, j >= 16 in the high nibble of byte j-16.
      const std::size_t byte = j % 16, shift = j < 16 ? 0 : 4;
      q4_0[18 * b + 2 + byte] |= static_cast<std::uint8_t>(c4 << shift);
      q4_1[20 * b + 4 + byte] |= static_cast<std::uint8_t>(c4 << shift);
      iq4[18 * b + 2 + byte] |= static_cast<std::uint8_t>(c4 << shift);
      // Q5_0 / Q5_1: same nibbles for the low four bits, bit 4 in bit j of the little-endian u32 qh.
      q5_0[22 * b + 6 + byte] |= static_cast<std::uint8_t>((c5 & 15) << shift);
      q5_1[24 * b + 8 + byte] |= static_cast<std::uint8_t>((c5 & 15) << shift);
      qh5_0 |= static_cast<std::uint32_t>(c5 >> 4) << j;
      qh5_1 |= static_cast<std::uint32_t>(c5 >> 4) << j;
      q8_0[34 * b + 2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(c8));
      e4_0[i] = f(h2d(d) * (c4 - 8));
      e4_1[i] = f(h2d(d) * c4 + h2d(m));
      e5_0[i] = f(h2d(d) * (c5 - 16));
      e5_1[i] = f(h2d(d) * c5 + h2d(m));
      e8_0[i] = f(h2d(d) * c8);
      eiq[i] = f(h2d(d) * iq4nl_levels[c4]);
    }
    put16(q4_0, 18 * b, d);
    put16(q4_1, 20 * b, d);
    put16(q4_1, 20 * b + 2, m);
    put16(q5_0, 22 * b, d);
    put16(q5_1, 24 * b, d);
    put16(q5_1, 24 * b + 2, m);
    for (std::size_t k = 0; k < 4; ++k) {
      q5_0[22 * b + 2 + k] = static_cast<std::uint8_t>(qh5_0 >> (8 * k));
      q5_1[24 * b + 4 + k] = static_cast<std::uint8_t>(qh5_1 >> (8 * k));
    }
    put16(q8_0, 34 * b, d);
    put16(iq4, 18 * b, d);
  }
  CHECK(decode(GgmlType::Q4_0, q4_0, n) == e4_0);
  CHECK(decode(GgmlType::Q4_1, q4_1, n) == e4_1);
  CHECK(decode(GgmlType::Q5_0, q5_0, n) == e5_0);
  CHECK(decode(GgmlType::Q5_1, q5_1, n) == e5_1);
  CHECK(decode(GgmlType::Q8_0, q8_0, n) == e8_0);
  CHECK(decode(GgmlType::IQ4_NL, iq4, n) == eiq);
}

TEST_CASE("Q2_K and Q3_K: hand-packed blocks decode to d * scale * code (- dmin * min)", "[io][ggml]") {
  std::mt19937 g(12);
  const std::size_t n = 256 * kBlocks;
  std::vector<std::uint8_t> q2(84 * kBlocks), q3(110 * kBlocks);
  std::vector<float> e2(n), e3(n);
  for (std::size_t b = 0; b < kBlocks; ++b) {
    const std::uint16_t d2 = rand_half(g, 0.001, 2.0, false), dmin2 = rand_half(g, 0.001, 2.0, false);
    const std::uint16_t d3 = rand_half(g, 0.001, 2.0);
    std::uint8_t* p2 = q2.data() + 84 * b;  // scales[16] | qs[64] | d | dmin
    std::uint8_t* p3 = q3.data() + 110 * b;  // hmask[32] | qs[64] | scales[12] | d
    int sc2[16], mn2[16], s3[16];
    for (int i = 0; i < 16; ++i) {
      sc2[i] = rand_int(g, 0, 15);
      mn2[i] = rand_int(g, 0, 15);
      p2[i] = static_cast<std::uint8_t>(sc2[i] | (mn2[i] << 4));
      s3[i] = rand_int(g, 0, 63);  // stored 6-bit value; the scale is s3 - 32
      // Low four bits: scales[i] low nibble (i < 8) or scales[i - 8] high nibble; top two bits in
      // bits 2(i/4)..2(i/4)+1 of scales[8 + i % 4].
      if (i < 8) p3[96 + i] |= static_cast<std::uint8_t>(s3[i] & 15);
      else p3[96 + i - 8] |= static_cast<std::uint8_t>((s3[i] & 15) << 4);
      p3[96 + 8 + i % 4] |= static_cast<std::uint8_t>((s3[i] >> 4) << (2 * (i / 4)));
    }
    for (std::size_t e = 0; e < 256; ++e) {
      // e = 128h + 32j + 16k + l: the code sits in bits 2j of qs[32h + 16k + l].
      const std::size_t h = e / 128, j = (e / 32) % 4, k = (e / 16) % 2, l = e % 16, i = e / 16;
      const int c2 = rand_int(g, 0, 3);
      p2[16 + 32 * h + 16 * k + l] |= static_cast<std::uint8_t>(c2 << (2 * j));
      e2[b * 256 + e] = f(h2d(d2) * sc2[i] * c2 - h2d(dmin2) * mn2[i]);
      // Q3_K: code c in -4..3: low two bits (c + 4) & 3 in qs, hmask bit (4h + j) of byte 16k + l
      // set when c >= 0.
      const int c3 = rand_int(g, -4, 3);
      p3[32 + 32 * h + 16 * k + l] |= static_cast<std::uint8_t>(((c3 + 4) & 3) << (2 * j));
      if (c3 >= 0) p3[16 * k + l] |= static_cast<std::uint8_t>(1u << (4 * h + j));
      e3[b * 256 + e] = f(h2d(d3) * (s3[i] - 32) * c3);
    }
    put16(q2, 84 * b + 80, d2);
    put16(q2, 84 * b + 82, dmin2);
    put16(q3, 110 * b + 108, d3);
  }
  CHECK(decode(GgmlType::Q2_K, q2, n) == e2);
  CHECK(decode(GgmlType::Q3_K, q3, n) == e3);
}

namespace {
/// Q4_K/Q5_K's 12 scale bytes from eight 6-bit scales and mins (docs/formats.md).
void pack_k4_scales(const int* sc, const int* mn, std::uint8_t* s) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] |= static_cast<std::uint8_t>(sc[j]);
      s[j + 4] |= static_cast<std::uint8_t>(mn[j]);
    } else {
      s[j + 4] = static_cast<std::uint8_t>((sc[j] & 15) | ((mn[j] & 15) << 4));
      s[j - 4] |= static_cast<std::uint8_t>((sc[j] >> 4) << 6);
      s[j] |= static_cast<std::uint8_t>((mn[j] >> 4) << 6);
    }
  }
}
}  // namespace

TEST_CASE("Q4_K, Q5_K and Q6_K: hand-packed blocks decode to d * scale * code (- dmin * min)", "[io][ggml]") {
  std::mt19937 g(13);
  const std::size_t n = 256 * kBlocks;
  std::vector<std::uint8_t> q4(144 * kBlocks), q5(176 * kBlocks), q6(210 * kBlocks);
  std::vector<float> e4(n), e5(n), e6(n);
  std::vector<std::uint8_t> codes4(n), codes6(n);
  std::vector<std::uint8_t> sc4_all(8 * kBlocks), mn4_all(8 * kBlocks);
  std::vector<std::int8_t> s6_all(16 * kBlocks);
  for (std::size_t b = 0; b < kBlocks; ++b) {
    const std::uint16_t d4 = rand_half(g, 0.001, 2.0, false), dmin4 = rand_half(g, 0.001, 2.0, false);
    const std::uint16_t d5 = rand_half(g, 0.001, 2.0, false), dmin5 = rand_half(g, 0.001, 2.0, false);
    const std::uint16_t d6 = rand_half(g, 0.0001, 0.1);
    std::uint8_t* p4 = q4.data() + 144 * b;  // d | dmin | scales[12] | qs[128]
    std::uint8_t* p5 = q5.data() + 176 * b;  // d | dmin | scales[12] | qh[32] | qs[128]
    std::uint8_t* p6 = q6.data() + 210 * b;  // ql[128] | qh[64] | scales[16] | d
    int sc4[8], mn4[8], sc5[8], mn5[8], s6[16];
    for (int j = 0; j < 8; ++j) {
      sc4[j] = rand_int(g, 0, 63), mn4[j] = rand_int(g, 0, 63);
      sc5[j] = rand_int(g, 0, 63), mn5[j] = rand_int(g, 0, 63);
      sc4_all[8 * b + j] = static_cast<std::uint8_t>(sc4[j]);
      mn4_all[8 * b + j] = static_cast<std::uint8_t>(mn4[j]);
    }
    for (int i = 0; i < 16; ++i) {
      s6[i] = rand_int(g, -128, 127);
      s6_all[16 * b + i] = static_cast<std::int8_t>(s6[i]);
      p6[192 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(s6[i]));
    }
    pack_k4_scales(sc4, mn4, p4 + 4);
    pack_k4_scales(sc5, mn5, p5 + 4);
    for (std::size_t e = 0; e < 256; ++e) {
      const std::size_t i = b * 256 + e;
      // Q4_K / Q5_K: e = 64c + 32k + l: nibble k of qs[32c + l]; Q5_K's fifth bit is bit 2c + k of qh[l].
      const std::size_t c = e / 64, k = (e / 32) % 2, l = e % 32, j = e / 32;
      const int c4 = rand_int(g, 0, 15), c5 = rand_int(g, 0, 31);
      codes4[i] = static_cast<std::uint8_t>(c4);
      p4[16 + 32 * c + l] |= static_cast<std::uint8_t>(c4 << (4 * k));
      p5[48 + 32 * c + l] |= static_cast<std::uint8_t>((c5 & 15) << (4 * k));
      p5[16 + l] |= static_cast<std::uint8_t>((c5 >> 4) << (2 * c + k));
      e4[i] = f(h2d(d4) * sc4[j] * c4 - h2d(dmin4) * mn4[j]);
      e5[i] = f(h2d(d5) * sc5[j] * c5 - h2d(dmin5) * mn5[j]);
      // Q6_K: e = 128h + 32r + l: low nibble in ql[64h + 32(r % 2) + l] (high nibble when r >= 2),
      // top two bits in bits 2r of qh[32h + l]; value (q - 32) * d * scales[e / 16].
      const std::size_t h = e / 128, r = (e / 32) % 4, l6 = e % 32;
      const int c6 = rand_int(g, 0, 63);
      codes6[i] = static_cast<std::uint8_t>(c6);
      p6[64 * h + 32 * (r % 2) + l6] |= static_cast<std::uint8_t>((c6 & 15) << (4 * (r / 2)));
      p6[128 + 32 * h + l6] |= static_cast<std::uint8_t>((c6 >> 4) << (2 * r));
      e6[i] = f(h2d(d6) * s6[e / 16] * (c6 - 32));
    }
    put16(q4, 144 * b, d4);
    put16(q4, 144 * b + 2, dmin4);
    put16(q5, 176 * b, d5);
    put16(q5, 176 * b + 2, dmin5);
    put16(q6, 210 * b + 208, d6);
    // The library's builders produce the same bytes from the same codes.
    std::uint16_t dd, dm;
    std::memcpy(&dd, p4, 2);
    std::memcpy(&dm, p4 + 2, 2);
    const BlockQ4_K k4 = make_block_q4_k(dd, dm, sc4_all.data() + 8 * b, mn4_all.data() + 8 * b, codes4.data() + 256 * b);
    CHECK(std::memcmp(&k4, p4, 144) == 0);
    const BlockQ6_K k6 = make_block_q6_k(d6, s6_all.data() + 16 * b, codes6.data() + 256 * b);
    CHECK(std::memcmp(&k6, p6, 210) == 0);
  }
  CHECK(decode(GgmlType::Q4_K, q4, n) == e4);
  CHECK(decode(GgmlType::Q5_K, q5, n) == e5);
  CHECK(decode(GgmlType::Q6_K, q6, n) == e6);
}

// ---- (c) explicit-code builders ---------------------------------------------------------------------

TEST_CASE("make_block_*: codes in element order survive packing exactly", "[io][ggml]") {
  std::mt19937 g(14);
  for (int rep = 0; rep < 50; ++rep) {
    std::uint8_t c4[32], c5[32];
    std::int8_t c8[32];
    for (int j = 0; j < 32; ++j) {
      c4[j] = static_cast<std::uint8_t>(rand_int(g, 0, 15));
      c5[j] = static_cast<std::uint8_t>(rand_int(g, 0, 31));
      c8[j] = static_cast<std::int8_t>(rand_int(g, -128, 127));
    }
    if (rep == 0) std::fill(c4, c4 + 32, std::uint8_t{15}), std::fill(c5, c5 + 32, std::uint8_t{31});
    // Power-of-two d and m: every (code, d, m) gives an exact value, and the code comes back exactly.
    const std::uint16_t d = float_to_fp16(std::ldexp(1.0f, rand_int(g, -6, 3)) * ((g() & 1) ? -1.0f : 1.0f));
    const std::uint16_t m = float_to_fp16(std::ldexp(1.0f, rand_int(g, -6, 3)) * -3.0f);
    const float dv = fp16_to_float(d), mv = fp16_to_float(m);
    float y[32];
    dequantize_block_q4_0(make_block_q4_0(d, c4), y);
    for (int j = 0; j < 32; ++j) REQUIRE(y[j] / dv + 8.0f == c4[j]);
    dequantize_block_q4_1(make_block_q4_1(d, m, c4), y);
    for (int j = 0; j < 32; ++j) REQUIRE((y[j] - mv) / dv == c4[j]);
    dequantize_block_q5_0(make_block_q5_0(d, c5), y);
    for (int j = 0; j < 32; ++j) REQUIRE(y[j] / dv + 16.0f == c5[j]);
    dequantize_block_q5_1(make_block_q5_1(d, m, c5), y);
    for (int j = 0; j < 32; ++j) REQUIRE((y[j] - mv) / dv == c5[j]);
    dequantize_block_q8_0(make_block_q8_0(d, c8), y);
    for (int j = 0; j < 32; ++j) REQUIRE(y[j] / dv == c8[j]);
    // Stored fields are the given ones.
    const BlockQ5_1 b51 = make_block_q5_1(d, m, c5);
    CHECK(b51.d == d);
    CHECK(b51.m == m);
    CHECK(make_block_q4_1(d, m, c4).m == m);
    // Byte images: d, (m), then the packing of docs/formats.md.
    const BlockQ5_0 b50 = make_block_q5_0(d, c5);
    std::uint8_t raw[22];
    std::memcpy(raw, &b50, 22);
    for (int j = 0; j < 32; ++j) {
      REQUIRE(((raw[6 + j % 16] >> (j < 16 ? 0 : 4)) & 15) == (c5[j] & 15));
      REQUIRE(((raw[2 + j / 8] >> (j % 8)) & 1) == (c5[j] >> 4));
    }
  }
  std::uint8_t bad[32] = {};
  bad[3] = 16;
  CHECK_THROWS_WITH(make_block_q4_0(0, bad), Catch::Contains("code 16 at element 3") && Catch::Contains("0..15"));
  CHECK_THROWS_WITH(make_block_q4_1(0, 0, bad), Catch::Contains("code 16 at element 3"));
  CHECK_NOTHROW(make_block_q5_0(0, bad));
  bad[7] = 32;
  CHECK_THROWS_WITH(make_block_q5_0(0, bad), Catch::Contains("code 32 at element 7") && Catch::Contains("0..31"));
  CHECK_THROWS_WITH(make_block_q5_1(0, 0, bad), Catch::Contains("code 32 at element 7"));
  std::uint8_t k[256] = {}, sc[8] = {}, mn[8] = {};
  k[200] = 16;
  CHECK_THROWS_WITH(make_block_q4_k(0, 0, sc, mn, k), Catch::Contains("code 16 at element 200"));
  k[200] = 64;
  const std::int8_t s6[16] = {};
  CHECK_THROWS_WITH(make_block_q6_k(0, s6, k), Catch::Contains("code 64 at element 200"));
  k[200] = 0;
  sc[5] = 64;
  CHECK_THROWS_WITH(make_block_q4_k(0, 0, sc, mn, k), Catch::Contains("sub-block 5 scale 64"));
}

// ---- (b) encode -> decode within the documented bounds ----------------------------------------------

namespace {
/// Normal data with outliers and a few special blocks (constant, all-positive, all-negative, zero).
std::vector<float> test_data(std::size_t n, unsigned seed) {
  auto x = sparq_test::randn(n, seed, 0.05f);
  for (std::size_t i = 0; i < n; i += 97) x[i] *= 40.0f;
  for (std::size_t i = 0; i < 32; ++i) x[i] = 0.0f;                             // a zero block
  for (std::size_t i = 32; i < 64; ++i) x[i] = 0.3f;                            // a constant block
  for (std::size_t i = 256; i < 512; ++i) x[i] = std::fabs(x[i]) + 0.01f;       // a positive super-block
  for (std::size_t i = 512; i < 768; ++i) x[i] = -std::fabs(x[i]) - 1.0f;       // a negative one, off zero
  return x;
}
}  // namespace

TEST_CASE("Q4_1, Q5_0, Q5_1 encode -> decode within half a step (ggml's reference rule)", "[io][ggml]") {
  const std::size_t n = 256 * 8;
  const auto x = test_data(n, 21);
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1}) {
    INFO(ggml_type_name(t));
    std::vector<char> raw(ggml_nbytes(t, n));
    ggml_encode(t, x.data(), n, raw.data());
    std::vector<float> y(n);
    ggml_decode(t, raw.data(), n, y.data());
    std::size_t in_range = 0;
    for (std::size_t b = 0; b < n / 32; ++b) {
      const float* xb = x.data() + 32 * b;
      float lo = xb[0], hi = xb[0], amax = 0, sm = 0;
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, xb[j]);
        hi = std::max(hi, xb[j]);
        if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), sm = xb[j];
      }
      const std::size_t bb = ggml_block_bytes(t);
      std::uint16_t dh, mh = 0;
      std::memcpy(&dh, raw.data() + b * bb, 2);
      if (t != GgmlType::Q5_0) std::memcpy(&mh, raw.data() + b * bb + 2, 2);
      const double dq = h2d(dh), mq = h2d(mh);
      const double d = t == GgmlType::Q4_1 ? (hi - lo) / 15.0 : t == GgmlType::Q5_1 ? (hi - lo) / 31.0 : sm / -16.0;
      const int zmax = t == GgmlType::Q4_1 ? 15 : 31;
      for (int j = 0; j < 32; ++j) {
        const std::size_t i = 32 * b + j;
        const double err = std::fabs(double(x[i]) - y[i]);
        if (t == GgmlType::Q5_0) {
          const int q = static_cast<int>(std::lround(y[i] / (dq == 0 ? 1 : dq))) + 16;
          if (d == 0 || xb[j] / d + 16.0 <= 31.5) {
            ++in_range;
            REQUIRE(err <= 0.5 * std::fabs(d) + std::abs(q - 16) * std::fabs(d - dq) + 1e-6 * amax);
          } else {
            REQUIRE(q == 31);  // clamped end
          }
        } else {
          ++in_range;
          REQUIRE(err <= 0.5 * d + zmax * std::fabs(d - dq) + std::fabs(lo - mq) + 1e-6 * amax);
        }
      }
      if (t != GgmlType::Q5_0) {  // the block minimum is the fp16-rounded m exactly (code 0)
        float ymin = y[32 * b];
        for (int j = 0; j < 32; ++j) ymin = std::min(ymin, y[32 * b + j]);
        CHECK(ymin == fp16_to_float(mh));
      }
    }
    CHECK(in_range > n * 9 / 10);
    // Exact cases: the zero block decodes to zeros, the constant block to fp16(0.3) for Q4_1/Q5_1.
    for (int j = 0; j < 32; ++j) REQUIRE(y[j] == 0.0f);
    if (t != GgmlType::Q5_0)
      for (int j = 32; j < 64; ++j) REQUIRE(y[j] == round_to_fp16(0.3f));
  }
}

TEST_CASE("Q4_K and Q6_K encode -> decode within the documented bound", "[io][ggml]") {
  const std::size_t n = 256 * 12;
  auto x = test_data(n, 22);
  for (std::size_t i = 2048; i < 2304; ++i) x[i] *= 1e-6f;  // tiny super-block: subnormal fp16 factors
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    INFO(ggml_type_name(t));
    std::vector<char> raw(ggml_nbytes(t, n));
    ggml_encode(t, x.data(), n, raw.data());
    std::vector<float> y(n);
    ggml_decode(t, raw.data(), n, y.data());
    double worst = 0;  // largest error / bound
    for (std::size_t b = 0; b < n / 256; ++b) {
      const float* xb = x.data() + 256 * b;
      double amax = 0;
      for (int e = 0; e < 256; ++e) amax = std::max(amax, double(std::fabs(xb[e])));
      if (t == GgmlType::Q4_K) {
        std::uint16_t dh, dmh;  // fp16 d, dmin at bytes 0 and 2
        std::memcpy(&dh, raw.data() + 144 * b, 2);
        std::memcpy(&dmh, raw.data() + 144 * b + 2, 2);
        const double D = h2d(dh), Dmin = h2d(dmh);
        double max_step = 0, max_off = 0, range[8];
        for (int j = 0; j < 8; ++j) {
          double lo = 0, hi = xb[32 * j];
          for (int l = 0; l < 32; ++l) lo = std::min(lo, double(xb[32 * j + l])), hi = std::max(hi, double(xb[32 * j + l]));
          range[j] = hi - lo;
          max_step = std::max(max_step, range[j] / 15);
          max_off = std::max(max_off, -lo);
        }
        // D and Dmin are the fp16 values at or just above max step / 63 and max offset / 63.
        CHECK(D * 63 >= max_step * (1 - 1e-6));
        CHECK(D <= max_step / 63 * (1 + 1.0 / 1024) + std::ldexp(1.0, -24));
        CHECK(Dmin * 63 >= max_off * (1 - 1e-6));
        CHECK(Dmin <= max_off / 63 * (1 + 1.0 / 1024) + std::ldexp(1.0, -24));
        for (int e = 0; e < 256; ++e) {
          const double bound = 0.5 * (range[e / 32] / 15 + D) + 0.5 * Dmin + 1e-6 * amax;
          const double err = std::fabs(double(xb[e]) - y[256 * b + e]);
          REQUIRE(err <= bound);
          if (bound > 0) worst = std::max(worst, err / bound);
        }
      } else {
        std::uint16_t dh;  // fp16 d at byte 208
        std::memcpy(&dh, raw.data() + 210 * b + 208, 2);
        const double D = h2d(dh);
        for (int e = 0; e < 256; ++e) {
          double a = 0;
          for (int l = 0; l < 16; ++l) a = std::max(a, double(std::fabs(xb[16 * (e / 16) + l])));
          const double bound = a / 62 + 0.5 * D + 1e-6 * amax;
          const double err = std::fabs(double(xb[e]) - y[256 * b + e]);
          REQUIRE(err <= bound);
          if (bound > 0) worst = std::max(worst, err / bound);
        }
      }
    }
    CHECK(worst > 0.3);  // the bound is not vacuous
    for (int j = 0; j < 32; ++j) REQUIRE(y[j] == 0.0f);  // zero sub-block
    // Re-encoding the decoded values is stable in size and stays within the same bound family.
    std::vector<char> raw2(raw.size());
    ggml_encode(t, y.data(), n, raw2.data());
    std::vector<float> y2(n);
    ggml_decode(t, raw2.data(), n, y2.data());
    for (std::size_t i = 0; i < n; ++i) REQUIRE(std::isfinite(y2[i]));
  }
}

// ---- (d) bad input ---------------------------------------------------------------------------------------

TEST_CASE("ggml codecs: non-finite input, bad lengths, decode-only and unknown types are rejected", "[io][ggml][errors]") {
  const std::vector<GgmlType> all = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                     GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                                     GgmlType::Q6_K};
  std::vector<float> x(512, 0.5f);
  std::vector<char> out(4096);
  std::vector<float> y(512);
  for (GgmlType t : all) {
    INFO(ggml_type_name(t));
    const std::size_t be = ggml_block_elems(t);
    const std::string msg = "multiple of the block size " + std::to_string(be);
    CHECK_THROWS_WITH(ggml_nbytes(t, be + 1), Catch::Contains(msg) && Catch::Contains(ggml_type_name(t)));
    CHECK_THROWS_WITH(ggml_encode(t, x.data(), be + 1, out.data()), Catch::Contains(msg));
    CHECK_THROWS_WITH(ggml_decode(t, out.data(), be / 2, y.data()), Catch::Contains(msg));
    if (ggml_type_encodable(t)) {
      for (float bad : {NAN, INFINITY, -INFINITY}) {
        auto z = x;
        z[be - 3] = bad;
        CHECK_THROWS_WITH(ggml_encode(t, z.data(), be, out.data()),
                          Catch::Contains("non-finite") && Catch::Contains("index " + std::to_string(be - 3)));
      }
    } else {
      CHECK_THROWS_WITH(ggml_encode(t, x.data(), be, out.data()),
                        Catch::Contains(std::string(ggml_type_name(t)) + " (") && Catch::Contains("decode-only") &&
                            Catch::Contains("Q4_K (12)"));
    }
  }
  const auto q8k = static_cast<GgmlType>(15);
  CHECK_THROWS_WITH(ggml_nbytes(q8k, 256), Catch::Contains("unsupported type 15"));
  CHECK_THROWS_WITH(ggml_encode(q8k, x.data(), 256, out.data()), Catch::Contains("unsupported type 15"));
  CHECK_THROWS_WITH(ggml_decode(q8k, out.data(), 256, y.data()), Catch::Contains("unsupported type 15"));
  // K-quant encoders need their super-block factors to fit fp16.
  auto big = x;
  big[7] = 1e9f;
  CHECK_THROWS_WITH(ggml_encode(GgmlType::Q4_K, big.data(), 256, out.data()), Catch::Contains("beyond fp16"));
  CHECK_THROWS_WITH(ggml_encode(GgmlType::Q6_K, big.data(), 256, out.data()), Catch::Contains("beyond fp16"));
  big[7] = -5e6f;  // Q4_K's offset factor overflows, Q6_K is fine
  CHECK_THROWS_WITH(ggml_encode(GgmlType::Q4_K, big.data(), 256, out.data()), Catch::Contains("offset 5000000") && Catch::Contains("beyond fp16"));
  CHECK_NOTHROW(ggml_encode(GgmlType::Q6_K, big.data(), 256, out.data()));
  big[7] = 1e7f;  // fine for both
  CHECK_NOTHROW(ggml_encode(GgmlType::Q4_K, big.data(), 256, out.data()));
  CHECK_NOTHROW(ggml_encode(GgmlType::Q6_K, big.data(), 256, out.data()));
}

TEST_CASE("GGUF reader: an unknown ggml type is named, with the accepted list from the table", "[io][gguf][errors]") {
  GgufWriter w;
  const auto x = sparq_test::randn(256, 3);
  w.add_tensor("t", {256}, GgmlType::F32, x.data());
  auto bytes = w.serialize();
  // tensor info: after the 24-byte header (no metadata): name (8 + 1), n_dims (4), dim (8), type (4).
  const std::size_t type_at = 24 + 9 + 4 + 8;
  std::uint32_t code;
  std::memcpy(&code, bytes.data() + type_at, 4);
  REQUIRE(code == 0);
  for (std::uint32_t c : {16u, 15u, 9u}) {
    std::memcpy(bytes.data() + type_at, &c, 4);
    CHECK_THROWS_WITH(parse_gguf(bytes.data(), bytes.size()),
                      Catch::Contains("ggml type " + std::to_string(c)) && Catch::Contains(ggml_type_list()));
  }
  // Every table type is accepted when the row length fits its block (256 fits all; F32's 1024 bytes
  // hold every block type's 256 elements).
  for (const auto& ti : ggml_type_table) {
    const std::uint32_t c = static_cast<std::uint32_t>(ti.type);
    std::memcpy(bytes.data() + type_at, &c, 4);
    const auto f = parse_gguf(bytes.data(), bytes.size());
    CHECK(f.tensors[0].n_bytes == ggml_nbytes(ti.type, 256));
  }
}

// ---- GGUF files ------------------------------------------------------------------------------------------

namespace {
std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("sparq_ggml_blocks_" + name)).string();
}
}  // namespace

TEST_CASE("GGUF writer: tensors of every encodable block type read back through read_gguf", "[io][gguf]") {
  const auto x = sparq_test::randn(256 * 6, 31, 0.1f);
  GgufWriter w;
  w.set("general.architecture", std::string("test"));
  const std::vector<GgmlType> enc = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1};
  for (GgmlType t : enc) w.add_tensor(std::string("w.") + ggml_type_name(t), {512, 3}, t, x.data());
  // Decode-only types go in as ready-made blocks.
  std::vector<char> q3(2 * 110);
  for (std::size_t i = 0; i < q3.size(); ++i) q3[i] = static_cast<char>(i * 37 + 11);
  const std::uint16_t dh = float_to_fp16(0.01f);
  std::memcpy(q3.data() + 108, &dh, 2);
  std::memcpy(q3.data() + 218, &dh, 2);
  w.add_tensor_bytes("w.Q3_K", {512}, GgmlType::Q3_K, q3);
  CHECK_THROWS_WITH(w.add_tensor("bad", {128, 2}, GgmlType::Q4_K, x.data()), Catch::Contains("block size 256"));
  CHECK_THROWS_WITH(w.add_tensor("bad", {256}, GgmlType::Q5_K, x.data()), Catch::Contains("decode-only"));
  const auto path = tmp_path("kquants.gguf");
  w.write(path);
  const auto f = read_gguf(path);
  std::filesystem::remove(path);
  for (GgmlType t : enc) {
    INFO(ggml_type_name(t));
    const auto& ti = f.tensor(std::string("w.") + ggml_type_name(t));
    CHECK(ti.type == t);
    CHECK(ti.n_elements == 1536);
    CHECK(ti.n_bytes == 1536 / ggml_block_elems(t) * ggml_block_bytes(t));
    std::vector<char> want(ti.n_bytes);
    ggml_encode(t, x.data(), 1536, want.data());
    REQUIRE(std::memcmp(f.tensor_data(ti), want.data(), want.size()) == 0);
    std::vector<float> yw(1536);
    ggml_decode(t, want.data(), 1536, yw.data());
    const auto y = f.tensor_floats(ti);
    REQUIRE(std::memcmp(y.data(), yw.data(), 1536 * 4) == 0);
    double err = 0;
    for (std::size_t i = 0; i < 1536; ++i) err = std::max(err, double(std::fabs(y[i] - x[i])));
    CHECK(err < 0.05);
  }
  const auto& t3 = f.tensor("w.Q3_K");
  CHECK(t3.type == GgmlType::Q3_K);
  CHECK(std::memcmp(f.tensor_data(t3), q3.data(), q3.size()) == 0);
  for (float v : f.tensor_floats(t3)) REQUIRE(std::fabs(v) <= fp16_to_float(dh) * 32 * 4);  // |S - 32| <= 32, |q| <= 4
}

TEST_CASE("llama.cpp's Q8_0 and Q4_0 files read, with exactly the codes sparq's encoder writes", "[io][gguf][real]") {
  const auto ref_path = sparq_test::data_path("models/stories260K.gguf");
  if (ref_path.empty()) return;
  const auto ref = read_gguf(ref_path);
  for (const char* which : {"q8_0", "q4_0"}) {
    INFO(which);
    const auto path = sparq_test::data_path(std::string("models/llamacpp/stories260K-llamacpp-") + which + ".gguf");
    if (path.empty()) continue;
    const auto f = read_gguf(path);
    const GgmlType q = std::string(which) == "q8_0" ? GgmlType::Q8_0 : GgmlType::Q4_0;
    std::map<GgmlType, int> count;
    for (const auto& t : f.tensors) {
      ++count[t.type];
      const auto& r = ref.tensor(t.name);
      REQUIRE(r.type == GgmlType::F32);
      REQUIRE(r.n_elements == t.n_elements);
      const auto orig = ref.tensor_floats(r);
      const auto y = f.tensor_floats(t);
      for (float v : y) REQUIRE(std::isfinite(v));
      if (t.type == q) {
        // llama-quantize used ggml's reference quantizer on the F32 weights: the same bytes as ours.
        std::vector<char> mine(t.n_bytes);
        ggml_encode(q, orig.data(), orig.size(), mine.data());
        INFO(t.name);
        CHECK(std::memcmp(f.tensor_data(t), mine.data(), mine.size()) == 0);
      } else if (t.type == GgmlType::F16) {
        for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == round_to_fp16(orig[i]));
      } else {
        REQUIRE(t.type == GgmlType::F32);
        REQUIRE(std::memcmp(y.data(), orig.data(), 4 * y.size()) == 0);
      }
    }
    CHECK(count[q] == 32);
    CHECK(count[GgmlType::F16] == 5);
    CHECK(count[GgmlType::F32] == 11);
    // The Llama mapping reads them too.
    const auto m = read_gguf_llama(path);
    CHECK(m.weights.config.dim == 64);
    CHECK(m.weights.config.n_layers == 5);
  }
}
