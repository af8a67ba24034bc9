// fp16 / bf16 conversion: all 65536 fp16 patterns against the F16C instructions, RNE ties, NaN/Inf.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "sparq/core/half.hpp"
#include "sparq_test.hpp"

namespace {
#if defined(__F16C__)
float hw_h2f(std::uint16_t h) { return _cvtsh_ss(h); }
std::uint16_t hw_f2h(float f) {
  return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#endif
bool is_nan16(std::uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
}  // namespace

TEST_CASE("fp16 -> float is exact for all 65536 patterns; float -> fp16 inverts it", "[half]") {
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    const float f = sparq::fp16_to_float(h);
    if (is_nan16(h)) {
      REQUIRE(std::isnan(f));
      REQUIRE(std::signbit(f) == ((h & 0x8000u) != 0));
    } else {
#if defined(__F16C__)
      REQUIRE(std::bit_cast<std::uint32_t>(f) == std::bit_cast<std::uint32_t>(hw_h2f(h)));
#endif
    }
    // Lossless: the round trip is the identity, NaN payloads included.
    REQUIRE(sparq::float_to_fp16(f) == h);
  }
}

TEST_CASE("float -> fp16 rounds to nearest even like F16C", "[half]") {
#if defined(__F16C__)
  // Every fp16 value, every midpoint between neighbours, and the points just around each midpoint.
  for (std::uint32_t i = 0; i < 0x7c00; ++i) {
    for (int s = 0; s < 2; ++s) {
      const auto h = static_cast<std::uint16_t>(i | (s ? 0x8000u : 0u));
      const double a = sparq::fp16_to_float(h);
      const double b = sparq::fp16_to_float(static_cast<std::uint16_t>(h + 1));
      const float mid = static_cast<float>((a + b) / 2);  // exact in float
      for (float f : {static_cast<float>(a), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f),
                      std::nextafter(mid, -1e9f)}) {
        REQUIRE(sparq::float_to_fp16(f) == hw_f2h(f));
      }
    }
  }
  std::mt19937 rng(1);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int k = 0; k < 2000000; ++k) {
    const float f = std::bit_cast<float>(bits(rng));
    if (std::isnan(f)) continue;
    REQUIRE(sparq::float_to_fp16(f) == hw_f2h(f));
  }
#else
  WARN("F16C not compiled in: hardware comparison skipped");
#endif
  // Properties that hold without hardware: ties to even, overflow, underflow, signed zero.
  REQUIRE(sparq::float_to_fp16(65504.0f) == 0x7bffu);
  REQUIRE(sparq::float_to_fp16(65519.99f) == 0x7bffu);
  REQUIRE(sparq::float_to_fp16(65520.0f) == 0x7c00u);  // tie: 0x7bff is odd, rounds up to Inf
  REQUIRE(sparq::float_to_fp16(std::ldexp(1.0f, -25)) == 0x0000u);  // tie with 0 -> even (0)
  REQUIRE(sparq::float_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001u);
  REQUIRE(sparq::float_to_fp16(std::ldexp(3.0f, -25)) == 0x0002u);  // 1.5 ulp tie -> even 2
  REQUIRE(sparq::float_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00u);  // tie -> even
  REQUIRE(sparq::float_to_fp16(1.0f + std::ldexp(3.0f, -11)) == 0x3c02u);  // tie -> even
  REQUIRE(sparq::float_to_fp16(-0.0f) == 0x8000u);
  REQUIRE(sparq::float_to_fp16(INFINITY) == 0x7c00u);
  REQUIRE(sparq::float_to_fp16(-INFINITY) == 0xfc00u);
  REQUIRE(is_nan16(sparq::float_to_fp16(NAN)));
  // A float NaN whose payload lives only in the low bits must not become Inf.
  REQUIRE(is_nan16(sparq::float_to_fp16(std::bit_cast<float>(0x7f800001u))));
}

TEST_CASE("bf16 rounds to nearest even and keeps NaN/Inf", "[half]") {
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    const float f = sparq::bf16_to_float(b);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(sparq::bf16_to_float(sparq::float_to_bf16(f))));
    } else {
      REQUIRE(sparq::float_to_bf16(f) == b);
    }
  }
  // Reference: RNE computed in double on random floats.
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int k = 0; k < 1000000; ++k) {
    const float f = std::bit_cast<float>(bits(rng));
    if (!std::isfinite(f)) continue;
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t lo = x & 0xffff0000u;
    const double a = std::bit_cast<float>(lo);
    double b = std::bit_cast<float>(lo + 0x10000u);  // next bf16 away from zero
    if (std::isinf(b)) b = a + (a - std::bit_cast<float>(lo - 0x10000u));  // past the top: 2^128
    const double da = std::fabs(f - a), db = std::fabs(f - b);
    std::uint16_t expect = static_cast<std::uint16_t>(lo >> 16);
    if (db < da || (db == da && (expect & 1u))) expect = static_cast<std::uint16_t>(expect + 1);
    REQUIRE(sparq::float_to_bf16(f) == expect);
  }
  REQUIRE(sparq::float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80u);  // tie -> even
  REQUIRE(sparq::float_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3f82u);
  REQUIRE(sparq::float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80u);  // rounds to Inf
  REQUIRE(std::isnan(sparq::bf16_to_float(sparq::float_to_bf16(std::bit_cast<float>(0x7f800001u)))));
}
