// Quantization kernels: every SIMD target agrees exactly with the scalar references, and packing
// follows the little-endian bit-stream layout bit by bit.
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "sparq/kernels/dequantize.hpp"
#include "sparq/kernels/pack.hpp"
#include "sparq/kernels/quantize.hpp"
#include "sparq/quant/nf4.hpp"
#include "sparq_test.hpp"

namespace k = sparq::kernels;

namespace {
const std::size_t sizes[] = {1, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 1000};
const std::size_t groups[] = {1, 5, 16, 32, 64, 128, 1 << 20};

std::vector<float> data(std::size_t n, unsigned seed) {
  auto x = sparq_test::randn(n, seed, 1.5f);
  for (std::size_t i = 0; i < n; i += 11) x[i] = 0.0f;   // exact zeros
  for (std::size_t i = 5; i < n; i += 37) x[i] *= 20.f;  // outliers
  return x;
}

std::vector<std::uint8_t> random_codes(std::size_t n, unsigned bits, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> c(n);
  for (auto& v : c) v = static_cast<std::uint8_t>(rng() & ((1u << bits) - 1u));
  return c;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("group abs-max and min/max agree exactly with the scalar reference", "[quant][kernels]") {
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (std::size_t n : sizes) {
      const auto x = data(n, static_cast<unsigned>(n));
      for (std::size_t g : groups) {
        const std::size_t ng = k::group_count(n, g);
        std::vector<float> a(ng), b(ng), mn(ng), mx(ng), mn2(ng), mx2(ng);
        REQUIRE(k::group_absmax<A>(x.data(), n, g, a.data()));
        REQUIRE(k::group_absmax_scalar(x.data(), n, g, b.data()));
        {
          auto y = x;
          y[n / 2] = (n % 2) ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::quiet_NaN();
          std::vector<float> t(ng);
          REQUIRE_FALSE(k::group_absmax<A>(y.data(), n, g, t.data()));
          REQUIRE_FALSE(k::group_absmax_scalar(y.data(), n, g, t.data()));
        }
        INFO(A::name() << " n=" << n << " g=" << g);
        REQUIRE(same_bits(a, b));
        k::group_minmax<A>(x.data(), n, g, mn.data(), mx.data());
        k::group_minmax_scalar(x.data(), n, g, mn2.data(), mx2.data());
        REQUIRE(same_bits(mn, mn2));
        REQUIRE(same_bits(mx, mx2));
        // and against the definition
        for (std::size_t j = 0; j < ng; ++j) {
          float m = 0;
          for (std::size_t i = j * g; i < std::min(n, (j + 1) * g); ++i) m = std::max(m, std::fabs(x[i]));
          REQUIRE(a[j] == m);
        }
      }
    }
  });
}

TEST_CASE("symmetric scales are bit-identical between SIMD and scalar", "[quant][kernels]") {
  auto a = sparq_test::randn(301, 9, 3.0f);
  for (auto& v : a) v = std::fabs(v);
  a[0] = 0.0f;
  a[1] = 1e-7f;
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (float qmax : {1.0f, 7.0f, 127.0f}) {
      std::vector<float> s1(a.size()), i1(a.size()), s2(a.size()), i2(a.size());
      k::symmetric_scales<A>(a.data(), a.size(), qmax, s1.data(), i1.data());
      k::symmetric_scales_scalar(a.data(), a.size(), qmax, s2.data(), i2.data());
      REQUIRE(same_bits(s1, s2));
      REQUIRE(same_bits(i1, i2));
      REQUIRE(s1[0] == 1e-5f / qmax);
    }
  });
}

TEST_CASE("quantize_codes agrees exactly with the scalar reference", "[quant][kernels]") {
  struct Case {
    int lo, hi, zero;
    bool per_group_zero, signed_store;
  };
  const Case cases[] = {{1, 255, 128, false, true},   // int8 symmetric (signed bytes)
                        {0, 255, 128, false, true},   // int8 symmetric full range
                        {0, 255, 0, true, false},     // int8 asymmetric
                        {1, 15, 8, false, false},     // int4 symmetric offset binary
                        {0, 15, 0, true, false},      // int4 asymmetric
                        {1, 3, 2, false, false},      // int2 symmetric
                        {0, 63, 0, true, false}};     // int6 asymmetric
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (std::size_t n : sizes) {
      const auto x = data(n, 100 + static_cast<unsigned>(n));
      for (std::size_t g : groups) {
        const std::size_t ng = k::group_count(n, g);
        std::vector<float> amax(ng), scale(ng), inv(ng);
        (void)k::group_absmax_scalar(x.data(), n, g, amax.data());
        for (const Case& c : cases) {
          // Scales a bit too small so some values clamp; zeros spread over the range.
          k::symmetric_scales_scalar(amax.data(), ng, static_cast<float>(c.hi - c.zero) * 1.3f, scale.data(), inv.data());
          std::vector<std::uint8_t> zeros(ng);
          for (std::size_t j = 0; j < ng; ++j) zeros[j] = static_cast<std::uint8_t>((j * 7) % (c.hi + 1));
          const std::uint8_t* zp = c.per_group_zero ? zeros.data() : nullptr;
          std::vector<std::uint8_t> u1(n), u2(n);
          k::quantize_codes<A>(x.data(), n, g, inv.data(), zp, c.zero, c.lo, c.hi, c.signed_store, u1.data());
          k::quantize_codes_scalar(x.data(), n, g, inv.data(), zp, c.zero, c.lo, c.hi, c.signed_store, u2.data());
          INFO(A::name() << " n=" << n << " g=" << g << " hi=" << c.hi);
          REQUIRE(u1 == u2);
          for (std::size_t i = 0; i < n; ++i) {
            const int z = zp ? zp[i / g] : c.zero;
            const int u = c.signed_store ? static_cast<std::int8_t>(u1[i]) + z : u1[i];
            REQUIRE(u >= c.lo);
            REQUIRE(u <= c.hi);
          }
          // Dequantize the same codes.
          std::vector<float> d1(n), d2(n);
          k::dequantize_codes<A>(u1.data(), n, g, scale.data(), zp, c.zero, c.signed_store, d1.data());
          k::dequantize_codes_scalar(u1.data(), n, g, scale.data(), zp, c.zero, c.signed_store, d2.data());
          REQUIRE(same_bits(d1, d2));
        }
      }
    }
  });
}

TEST_CASE("quantize_codes rounds half to even", "[quant][kernels]") {
  const std::vector<float> x = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f, -3.5f, -4.5f, -5.5f, -6.5f, -7.5f, 0.49999997f};
  const std::vector<int> want = {0, 2, 2, 0, -2, -2, 4, 4, 6, 6, 7, -4, -4, -6, -6, -7, 0};
  const float inv = 1.0f;
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    std::vector<std::uint8_t> u(x.size());
    k::quantize_codes<A>(x.data(), x.size(), x.size(), &inv, nullptr, 8, 1, 15, false, u.data());
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(int(u[i]) - 8 == want[i]);
  });
}

TEST_CASE("dequantize_table agrees with the scalar reference (16 and 256 entries)", "[quant][kernels]") {
  std::vector<float> t16(16), t256(256);
  for (int i = 0; i < 16; ++i) t16[i] = 0.25f * static_cast<float>(i * i) - 3.0f;
  for (int i = 0; i < 256; ++i) t256[i] = static_cast<float>(i) * 0.37f - 40.0f;
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (std::size_t n : sizes) {
      for (std::size_t g : {std::size_t{16}, std::size_t{33}, n}) {
        const std::size_t ng = k::group_count(n, g);
        auto sc = sparq_test::randn(ng, 3, 1.0f);
        for (unsigned bits : {4u, 8u}) {
          const auto c = random_codes(n, bits, 77 + static_cast<unsigned>(n));
          const float* t = bits == 4 ? t16.data() : t256.data();
          std::vector<float> a(n), b(n);
          k::dequantize_table<A>(c.data(), n, g, sc.data(), t, bits == 4 ? 16 : 256, a.data());
          k::dequantize_table_scalar(c.data(), n, g, sc.data(), t, b.data());
          REQUIRE(same_bits(a, b));
          for (std::size_t i = 0; i < n; ++i) REQUIRE(b[i] == sc[i / g] * t[c[i]]);
        }
      }
    }
  });
}

TEST_CASE("pack/unpack follow the little-endian bit stream, bit by bit, on every target", "[quant][kernels][layout]") {
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (unsigned bits = 1; bits <= 8; ++bits) {
      for (std::size_t n : sizes) {
        const auto c = random_codes(n, bits, bits * 1000 + static_cast<unsigned>(n));
        const std::size_t nb = k::packed_row_bytes(n, bits);
        REQUIRE(nb == (n * bits + 7) / 8);
        std::vector<std::uint8_t> p1(nb, 0xAA), p2(nb, 0x55);
        k::pack_codes<A>(c.data(), n, bits, p1.data());
        k::pack_codes_scalar(c.data(), n, bits, p2.data());
        INFO(A::name() << " bits=" << bits << " n=" << n);
        REQUIRE(p1 == p2);
        // Independent definition: bit j of the stream is bit (j − i·b) of code i; padding is 0.
        for (std::size_t j = 0; j < nb * 8; ++j) {
          const unsigned got = (p1[j / 8] >> (j % 8)) & 1u;
          const std::size_t i = j / bits;
          const unsigned want = i < n ? (c[i] >> (j - i * bits)) & 1u : 0u;
          REQUIRE(got == want);
        }
        std::vector<std::uint8_t> u1(n), u2(n);
        k::unpack_codes<A>(p1.data(), n, bits, u1.data());
        k::unpack_codes_scalar(p1.data(), n, bits, u2.data());
        REQUIRE(u1 == c);
        REQUIRE(u2 == c);
      }
    }
  });
}

TEST_CASE("4-bit packing puts element 2i in the low nibble", "[quant][kernels][layout]") {
  const std::vector<std::uint8_t> c = {1, 2, 3, 4, 15, 0, 9};
  std::vector<std::uint8_t> p(4);
  k::pack_codes(c.data(), c.size(), 4, p.data());
  REQUIRE(p == std::vector<std::uint8_t>{0x21, 0x43, 0x0F, 0x09});
  const std::vector<std::uint8_t> c2 = {1, 2, 3, 0, 3};
  std::vector<std::uint8_t> p2(2);
  k::pack_codes(c2.data(), c2.size(), 2, p2.data());
  REQUIRE(p2 == std::vector<std::uint8_t>{0x39, 0x03});  // 1 | 2<<2 | 3<<4 | 0<<6, then 3
}

TEST_CASE("all_finite finds NaN and Inf anywhere", "[quant][kernels]") {
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (std::size_t n : sizes) {
      auto x = data(n, 500 + static_cast<unsigned>(n));
      x[0] = -std::numeric_limits<float>::max();
      REQUIRE(k::all_finite<A>(x.data(), n));
      for (std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
        for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
          auto y = x;
          y[pos] = bad;
          INFO(A::name() << " n=" << n << " pos=" << pos << " value=" << bad);
          REQUIRE_FALSE(k::all_finite<A>(y.data(), n));
        }
      }
    }
  });
}

TEST_CASE("asymmetric parameters agree exactly with the scalar reference", "[quant][kernels]") {
  auto mn = sparq_test::randn(203, 71, 2.0f), mx = sparq_test::randn(203, 72, 2.0f);
  for (std::size_t i = 0; i < mn.size(); ++i) {
    if (mn[i] > mx[i]) std::swap(mn[i], mx[i]);
    if (i % 7 == 0) mn[i] = mx[i] = 0.0f;        // degenerate → [−1, 1]
    if (i % 11 == 0) mn[i] = std::fabs(mn[i]);   // all positive: lo = 0, zero = 0
    if (i % 13 == 0) mx[i] = -std::fabs(mx[i]);  // all negative: zero = maxq
  }
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (float maxq : {3.0f, 15.0f, 255.0f}) {
      const std::size_t n = mn.size();
      std::vector<float> s1(n), i1(n), s2(n), i2(n);
      std::vector<std::uint8_t> z1(n), z2(n);
      k::asymmetric_params<A>(mn.data(), mx.data(), n, maxq, s1.data(), i1.data(), z1.data());
      k::asymmetric_params_scalar(mn.data(), mx.data(), n, maxq, s2.data(), i2.data(), z2.data());
      REQUIRE(same_bits(s1, s2));
      REQUIRE(same_bits(i1, i2));
      REQUIRE(z1 == z2);
      REQUIRE(s2[0] == 2.0f / maxq);
      REQUIRE(z2[0] == static_cast<std::uint8_t>(std::nearbyint(1.0f / s2[0])));  // z = round(−lo/Δ), lo = −1
      for (std::size_t i = 0; i < n; ++i) REQUIRE(z2[i] <= maxq);
    }
  });
}

TEST_CASE("16-level table codes (NF4) agree with the scalar reference and nf4::encode", "[quant][kernels]") {
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    for (std::size_t n : sizes) {
      auto x = data(n, 900 + static_cast<unsigned>(n));
      for (std::size_t i = 3; i < n; i += 17) x[i] = sparq::nf4::midpoints[i % 15];  // exact ties
      for (std::size_t g : {std::size_t{16}, std::size_t{64}, n}) {
        const std::size_t ng = k::group_count(n, g);
        std::vector<float> inv(ng, 1.0f);
        for (std::size_t j = 1; j < ng; ++j) inv[j] = 0.3f + 0.1f * static_cast<float>(j % 5);
        std::vector<std::uint8_t> a(n), b(n);
        k::table16_codes<A>(x.data(), n, g, inv.data(), sparq::nf4::midpoints.data(), a.data());
        k::table16_codes_scalar(x.data(), n, g, inv.data(), sparq::nf4::midpoints.data(), b.data());
        REQUIRE(a == b);
        for (std::size_t i = 0; i < n; ++i) {
          const float v = std::min(std::max(x[i] * inv[i / g], -1.0f), 1.0f);
          REQUIRE(b[i] == sparq::nf4::encode(v));
        }
      }
    }
  });
}
