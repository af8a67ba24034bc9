// NF4 and FP8 E4M3 tables against their definitions; encoders against brute-force nearest search.
#include <cmath>
#include <cstring>
#include <random>

#include "sparq/quant/fp8_e4m3.hpp"
#include "sparq/quant/nf4.hpp"
#include "sparq_test.hpp"

namespace {
/// Φ⁻¹(p) by bisection on Φ(x) = erfc(−x/√2)/2 (double precision, independent of the header).
double normal_quantile(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}
}  // namespace

TEST_CASE("NF4 levels are QLoRA's normal quantiles", "[quant][nf4]") {
  const double offset = 1.0 - 0.5 * (1.0 / 32.0 + 1.0 / 30.0);  // 0.9677083...
  REQUIRE(std::fabs(offset - 0.9677083) < 1e-7);
  std::vector<double> v;
  for (int k = 0; k < 8; ++k) v.push_back(normal_quantile(offset + k * (0.5 - offset) / 8.0));
  for (int k = 0; k < 7; ++k) v.push_back(-normal_quantile(offset + k * (0.5 - offset) / 7.0));
  v.push_back(0.0);
  const double m = normal_quantile(offset);
  for (double& x : v) x /= m;
  std::sort(v.begin(), v.end());
  REQUIRE(v.size() == 16);
  for (int i = 0; i < 16; ++i) {
    INFO("level " << i << ": derived " << v[i] << ", table " << sparq::nf4::levels[i]);
    REQUIRE(std::fabs(v[i] - sparq::nf4::levels[i]) < 2e-6);
  }
  REQUIRE(sparq::nf4::levels[sparq::nf4::zero_code] == 0.0f);
  REQUIRE(sparq::nf4::levels[0] == -1.0f);
  REQUIRE(sparq::nf4::levels[15] == 1.0f);
}

TEST_CASE("NF4 encode picks the nearest level, ties to the even code", "[quant][nf4]") {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-1.2f, 1.2f);
  for (int t = 0; t < 20000; ++t) {
    const float v = d(rng);
    const float c = std::min(std::max(v, -1.0f), 1.0f);
    const unsigned u = sparq::nf4::encode(c);
    float best = 1e9f;
    for (int i = 0; i < 16; ++i) best = std::min(best, std::fabs(sparq::nf4::levels[i] - c));
    REQUIRE(std::fabs(sparq::nf4::levels[u] - c) == best);
  }
  for (unsigned u = 0; u < 16; ++u) REQUIRE(sparq::nf4::encode(sparq::nf4::levels[u]) == u);
  for (unsigned k = 0; k < 15; ++k) {
    const unsigned u = sparq::nf4::encode(sparq::nf4::midpoints[k]);
    REQUIRE((u == k || u == k + 1));
    REQUIRE(u % 2 == 0);
  }
}

TEST_CASE("FP8 E4M3: all 256 codes decode per the OCP definition and round-trip", "[quant][fp8]") {
  for (unsigned c = 0; c < 256; ++c) {
    const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    const float got = sparq::fp8::decode_e4m3(static_cast<std::uint8_t>(c));
    INFO("code " << c);
    if (e == 15 && m == 7) {
      REQUIRE(std::isnan(got));
      REQUIRE(std::signbit(got) == (s == 1));
    } else {
      const double mag = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
      REQUIRE(static_cast<double>(got) == (s ? -mag : mag));
      REQUIRE(std::signbit(got) == (s == 1));
    }
    REQUIRE(sparq::fp8::encode_e4m3(got) == c);
  }
  REQUIRE(sparq::fp8::decode_e4m3(0x7E) == 448.0f);
  REQUIRE(sparq::fp8::decode_e4m3(0x01) == std::ldexp(1.0f, -9));
}

TEST_CASE("FP8 E4M3 encode: nearest, ties to even, saturating", "[quant][fp8]") {
  // Brute force over the finite non-negative codes.
  auto nearest = [](float a) {
    unsigned best = 0;
    for (unsigned c = 1; c <= 0x7E; ++c) {
      const float dc = std::fabs(sparq::fp8::decode_e4m3(c) - a), db = std::fabs(sparq::fp8::decode_e4m3(best) - a);
      if (dc < db || (dc == db && (c & 1u) == 0)) best = c;
    }
    return best;
  };
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> ex(-12.0f, 9.5f);
  for (int t = 0; t < 4000; ++t) {
    const float a = std::exp2(ex(rng));
    const unsigned want = nearest(a);
    REQUIRE(sparq::fp8::encode_e4m3(a) == want);
    REQUIRE(sparq::fp8::encode_e4m3(-a) == (want | 0x80u));
  }
  // Exact midpoints between neighbours go to the even mantissa.
  for (unsigned c = 0; c < 0x7E; ++c) {
    const float mid = 0.5f * (sparq::fp8::decode_e4m3(c) + sparq::fp8::decode_e4m3(c + 1));
    REQUIRE(sparq::fp8::encode_e4m3(mid) == ((c & 1u) ? c + 1 : c));
  }
  REQUIRE(sparq::fp8::encode_e4m3(1e9f) == 0x7E);
  REQUIRE(sparq::fp8::encode_e4m3(-500.0f) == 0xFE);
  REQUIRE(sparq::fp8::encode_e4m3(464.0f) == 0x7E);  // would round to 480: saturates
  REQUIRE(sparq::fp8::encode_e4m3(-0.0f) == 0x80);
  REQUIRE(sparq::fp8::encode_e4m3(std::ldexp(1.0f, -11)) == 0x00);  // below half the smallest subnormal
}
