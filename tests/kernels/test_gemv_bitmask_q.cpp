// Bitmask-sparse int8 GEMVs (W8A8, W8A32) and int4 GEMVs (W4A8, W4A32) against the scalar references
// and bit for bit against the dense int8 / int4 kernels on the same codes (zeros, or the zero code u = z,
// at the cleared bits), on every arch of this binary.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "sparq/kernels/gemv_bitmask_q.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

namespace sparq_test_bitmask_q {

/// A bitmask int8 matrix: row k keeps each column with probability density[k % 4] of
/// {1, 0.5, 0.3, 0} (0 %, 50 %, 70 %, 100 % sparsity), codes uniform in [−127, 127] \ {0} (or all
/// ±127 when `extreme`); `dense` holds the same codes with zeros at the cleared bits. The codes
/// array has exactly the kept codes (no slack), so a read past it is a sanitizer error.
struct BitmaskQ8 {
  std::size_t rows = 0, cols = 0;
  std::vector<std::uint8_t> mask;
  std::vector<std::int8_t> codes, dense;
  std::vector<std::size_t> off;
};

inline BitmaskQ8 make(std::size_t rows, std::size_t cols, unsigned seed, bool extreme = false) {
  BitmaskQ8 b;
  b.rows = rows;
  b.cols = cols;
  const std::size_t mb = (cols + 7) / 8;
  b.mask.assign(rows * mb, 0);
  b.dense.assign(rows * cols, 0);
  b.off.assign(1, 0);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(1, 127);
  std::bernoulli_distribution neg(0.5);
  constexpr double density[4] = {1.0, 0.5, 0.3, 0.0};
  for (std::size_t k = 0; k < rows; ++k) {
    std::bernoulli_distribution keep(density[k % 4]);
    for (std::size_t c = 0; c < cols; ++c) {
      if (!keep(rng)) continue;
      const int mag = extreme ? 127 : code(rng);
      const auto q = static_cast<std::int8_t>(neg(rng) ? -mag : mag);
      b.mask[k * mb + c / 8] = static_cast<std::uint8_t>(b.mask[k * mb + c / 8] | (1u << (c % 8)));
      b.codes.push_back(q);
      b.dense[k * cols + c] = q;
    }
    b.off.push_back(b.codes.size());
  }
  b.codes.shrink_to_fit();
  return b;
}

inline std::vector<std::int8_t> random_qx(std::size_t n, unsigned seed, bool extreme = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-127, 127);
  std::vector<std::int8_t> qx(n);
  for (auto& v : qx) v = static_cast<std::int8_t>(extreme ? (d(rng) < 0 ? -127 : 127) : d(rng));
  return qx;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

constexpr std::size_t col_sizes[] = {1, 7, 8, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 100, 127, 128, 129, 200, 513, 1000};

}  // namespace sparq_test_bitmask_q

TEST_CASE("gemv_bitmask_q8_a8: exact int32 sums, bit-identical to gemv_q8_a8 on the dense codes", "[kernels][gemv][bitmask][int8]") {
  namespace t = sparq_test_bitmask_q;
  for (std::size_t cols : t::col_sizes) {
    for (bool extreme : {false, true}) {
      const std::size_t rows = 23;
      const t::BitmaskQ8 b = t::make(rows, cols, 100 + static_cast<unsigned>(cols), extreme);
      const auto qx = t::random_qx(cols, 7 + static_cast<unsigned>(cols), extreme);
      std::vector<std::int32_t> ref(rows), dref(rows);
      sk::gemv_bitmask_q8_a8_reference(b.mask.data(), b.codes.data(), b.off.data(), rows, cols, qx.data(), ref.data());
      sk::gemv_q8_a8_reference(b.dense.data(), rows, cols, qx.data(), dref.data());
      REQUIRE(ref == dref);
      // cols <= 1000: |sum| <= 1000·127² < 2^24, so with sx = scale = 1 the float output is the sum itself
      const std::vector<float> ones(rows, 1.0f);
      std::vector<float> scale(rows);
      for (std::size_t k = 0; k < rows; ++k) scale[k] = 0.001f * static_cast<float>(k + 1);
      const float sx = 0.0123f;
      sparq_test::for_each_arch([&](auto arch) {
        using A = decltype(arch);
        INFO("arch " << A::name() << " cols " << cols << " extreme " << extreme);
        std::vector<float> y(rows, 123.0f), y2(rows, 5.0f), y3(rows, 7.0f), yd(rows, 9.0f);
        sk::gemv_bitmask_q8_a8<A>(b.mask.data(), b.codes.data(), b.off.data(), ones.data(), rows, cols, qx.data(), 1.0f,
                                  y.data());
        sk::gemv_bitmask_q8_a8<A, false>(b.mask.data(), b.codes.data(), b.off.data(), ones.data(), rows, cols, qx.data(),
                                         1.0f, y2.data(), 2);
        for (std::size_t k = 0; k < rows; ++k) {
          INFO("row " << k);
          REQUIRE(y[k] == static_cast<float>(ref[k]));
          REQUIRE(static_cast<std::int32_t>(y[k]) == ref[k]);
          REQUIRE(y2[k] == static_cast<float>(ref[k]));
        }
        // any scales: the float expression of gemv_q8_a8, bit for bit
        sk::gemv_bitmask_q8_a8<A>(b.mask.data(), b.codes.data(), b.off.data(), scale.data(), rows, cols, qx.data(), sx,
                                  y3.data());
        sk::gemv_q8_a8<A>(b.dense.data(), scale.data(), rows, cols, qx.data(), sx, yd.data());
        REQUIRE(t::same_bits(y3, yd));
        for (std::size_t k = 0; k < rows; ++k) REQUIRE(y3[k] == sx * scale[k] * static_cast<float>(ref[k]));
      });
    }
  }
}

TEST_CASE("gemv_bitmask_q8_f32: bit-identical to gemv_q8_f32 on the dense codes, close to the double reference",
          "[kernels][gemv][bitmask][int8]") {
  namespace t = sparq_test_bitmask_q;
  for (std::size_t cols : t::col_sizes) {
    const std::size_t rows = 21;
    const t::BitmaskQ8 b = t::make(rows, cols, 300 + static_cast<unsigned>(cols));
    const auto x = sparq_test::randn(cols, 8 + static_cast<unsigned>(cols));
    std::vector<float> scale(rows);
    for (std::size_t k = 0; k < rows; ++k) scale[k] = 0.01f + 0.002f * static_cast<float>(k);
    std::vector<float> ref(rows);
    sk::gemv_q8_f32_reference(b.dense.data(), scale.data(), rows, cols, x.data(), ref.data());
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      INFO("arch " << A::name() << " cols " << cols);
      std::vector<float> y(rows, 123.0f), y2(rows, 4.0f), yd(rows, 6.0f);
      sk::gemv_bitmask_q8_f32<A>(b.mask.data(), b.codes.data(), b.off.data(), scale.data(), rows, cols, x.data(), y.data());
      sk::gemv_bitmask_q8_f32<A>(b.mask.data(), b.codes.data(), b.off.data(), scale.data(), rows, cols, x.data(), y2.data(),
                                 2);
      sk::gemv_q8_f32<A>(b.dense.data(), scale.data(), rows, cols, x.data(), yd.data());
      REQUIRE(t::same_bits(y, y2));
      REQUIRE(t::same_bits(y, yd));
      for (std::size_t k = 0; k < rows; ++k) {
        double mag = 0.0;
        for (std::size_t c = 0; c < cols; ++c) mag += std::fabs(static_cast<double>(b.dense[k * cols + c]) * x[c]);
        REQUIRE(std::fabs(static_cast<double>(y[k]) - ref[k]) <= 1e-5 * scale[k] * mag + 1e-30);
      }
    });
  }
}

TEST_CASE("gemv_bitmask_q8: all rows empty or all rows full", "[kernels][gemv][bitmask][int8]") {
  namespace t = sparq_test_bitmask_q;
  for (std::size_t cols : {5u, 64u, 130u}) {
    const std::size_t rows = 9, mb = (cols + 7) / 8;
    // nothing kept: the codes array is empty, every output is +0
    const std::vector<std::uint8_t> mask0(rows * mb, 0);
    const std::vector<std::size_t> off0(rows + 1, 0);
    const std::vector<float> scale(rows, 0.5f);
    const auto qx = t::random_qx(cols, 3);
    const auto x = sparq_test::randn(cols, 4);
    std::vector<std::int8_t> none;
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      INFO("arch " << A::name() << " cols " << cols);
      std::vector<float> y(rows, 1.0f), yf(rows, 1.0f);
      sk::gemv_bitmask_q8_a8<A>(mask0.data(), none.data(), off0.data(), scale.data(), rows, cols, qx.data(), 0.1f, y.data());
      sk::gemv_bitmask_q8_f32<A>(mask0.data(), none.data(), off0.data(), scale.data(), rows, cols, x.data(), yf.data());
      for (std::size_t k = 0; k < rows; ++k) {
        REQUIRE(y[k] == 0.0f);
        REQUIRE(yf[k] == 0.0f);
      }
    });
    // everything kept: the dense kernels' results
    t::BitmaskQ8 full = t::make(rows * 4, cols, 11);  // rows 0, 4, 8, ... are full, the others mixed
    std::vector<float> sc(full.rows, 0.25f);
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      std::vector<float> y(full.rows), yd(full.rows);
      sk::gemv_bitmask_q8_a8<A>(full.mask.data(), full.codes.data(), full.off.data(), sc.data(), full.rows, cols, qx.data(),
                                0.1f, y.data());
      sk::gemv_q8_a8<A>(full.dense.data(), sc.data(), full.rows, cols, qx.data(), 0.1f, yd.data());
      REQUIRE(t::same_bits(y, yd));
    });
  }
}

// ---- bitmask int4 ----

namespace sparq_test_bitmask_q4 {

/// A bitmask int4 matrix (cols a multiple of G): row k keeps each column with probability
/// density[k % 4] of {1, 0.5, 0.3, 0} (0 %, 50 %, 70 %, 100 % sparsity), kept codes uniform in
/// [0, 15] (so some equal the zero code); `dense` is the gemv_q4.hpp packing of the same matrix
/// with u = z at the cleared bits. The codes array is allocated with exactly its bytes (no slack),
/// so a read past it is a sanitizer error.
struct BitmaskQ4 {
  std::size_t rows = 0, cols = 0, group = 0;
  std::vector<std::uint8_t> mask, codes, dense, zeros;
  std::vector<float> scales;
  std::vector<std::size_t> off;
  [[nodiscard]] const std::uint8_t* zp() const { return zeros.empty() ? nullptr : zeros.data(); }
};

inline BitmaskQ4 make(std::size_t rows, std::size_t cols, std::size_t group, bool asym, unsigned seed,
                      bool first_full = true) {
  BitmaskQ4 b;
  b.rows = rows;
  b.cols = cols;
  b.group = group;
  const std::size_t mb = cols / 8, ng = cols / group;
  b.mask.assign(rows * mb, 0);
  b.dense.assign(rows * cols / 2, 0);
  b.off.assign(1, 0);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, 15);
  std::uniform_real_distribution<float> sc(0.001f, 0.05f);
  b.scales.resize(rows * ng);
  for (auto& s : b.scales) s = sc(rng);
  if (asym) {
    b.zeros.resize(rows * ng);
    for (auto& z : b.zeros) z = static_cast<std::uint8_t>(code(rng));
  }
  constexpr double density[4] = {1.0, 0.5, 0.3, 0.0};
  std::vector<std::uint8_t> kept;
  for (std::size_t k = 0; k < rows; ++k) {
    std::bernoulli_distribution keep(density[(k + (first_full ? 0 : 1)) % 4]);
    std::size_t n = 0;
    const std::size_t start = kept.size();
    for (std::size_t c = 0; c < cols; ++c) {
      unsigned u = asym ? b.zeros[k * ng + c / group] : 8u;
      if (keep(rng)) {
        u = static_cast<unsigned>(code(rng));
        b.mask[k * mb + c / 8] = static_cast<std::uint8_t>(b.mask[k * mb + c / 8] | (1u << (c % 8)));
        if (n % 2 == 0) kept.push_back(static_cast<std::uint8_t>(u));
        else kept.back() = static_cast<std::uint8_t>(kept.back() | (u << 4));
        ++n;
      }
      b.dense[k * cols / 2 + c / 2] = static_cast<std::uint8_t>(b.dense[k * cols / 2 + c / 2] | (u << (4 * (c % 2))));
    }
    REQUIRE(kept.size() - start == (n + 1) / 2);
    b.off.push_back(kept.size());
  }
  b.codes = std::vector<std::uint8_t>(kept.begin(), kept.end());
  return b;
}

struct Case {
  std::size_t cols, group;
};
// multiples and non-multiples of 256 / 512 (the AVX2 / AVX-512 blocks) and of the groups
constexpr Case cases[] = {{32, 32},    {64, 64},    {96, 32},    {128, 128},  {160, 32},  {224, 32},
                          {256, 64},   {288, 32},   {384, 128},  {480, 32},   {512, 128}, {544, 32},
                          {640, 64},   {768, 128},  {800, 32},   {1024, 64},  {1056, 32}, {1152, 128}};

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace sparq_test_bitmask_q4

TEST_CASE("gemv_bitmask_q4: bit-identical to gemv_q4_a8 / gemv_q4_f32 on the dense codes, close to the reference",
          "[kernels][gemv][bitmask][int4]") {
  namespace t = sparq_test_bitmask_q4;
  for (const t::Case cs : t::cases) {
    for (bool asym : {false, true}) {
      for (bool first_full : {true, false}) {
        const std::size_t rows = first_full ? 21 : 23;
        const unsigned seed = static_cast<unsigned>(cs.cols * 7 + cs.group + (asym ? 1 : 0) + (first_full ? 0 : 5));
        const t::BitmaskQ4 b = t::make(rows, cs.cols, cs.group, asym, seed, first_full);
        auto x = sparq_test::randn(cs.cols, seed + 1);
        for (std::size_t c = 64; c < cs.cols && c < 96; ++c) x[c] = 0.0f;  // an all-zero block (a = 0)
        std::vector<unsigned char> work(sk::block_q8_workspace_bytes(cs.cols)), work2(work.size());
        const sk::BlockQ8 act = sk::BlockQ8::carve(work2.data(), cs.cols);
        sk::quantize_block_q8(x.data(), cs.cols, act);
        std::vector<float> ref(rows), dref(rows);
        sk::gemv_bitmask_q4_reference(b.mask.data(), b.codes.data(), b.off.data(), b.scales.data(), b.zp(), rows, cs.cols,
                                      cs.group, x.data(), ref.data());
        sk::gemv_q4_reference(b.dense.data(), b.scales.data(), b.zp(), rows, cs.cols, cs.group, x.data(), dref.data());
        REQUIRE(ref == dref);
        sparq_test::for_each_arch([&](auto arch) {
          using A = decltype(arch);
          INFO("arch " << A::name() << " cols " << cs.cols << " G " << cs.group << " asym " << asym << " first_full "
                       << first_full);
          std::vector<float> y(rows, 1.0f), y2(rows, 2.0f), y3(rows, 3.0f), yd(rows, 4.0f), yf(rows, 5.0f),
              ydf(rows, 6.0f);
          sk::gemv_bitmask_q4_a8<A>(b.mask.data(), b.codes.data(), b.off.data(), b.scales.data(), b.zp(), rows, cs.cols,
                                    cs.group, act, y.data());
          sk::gemv_bitmask_q4_a8<A>(b.mask.data(), b.codes.data(), b.off.data(), b.scales.data(), b.zp(), rows, cs.cols,
                                    cs.group, act, y2.data(), 2);
          sk::gemv_bitmask_q4_a8<A, false>(b.mask.data(), b.codes.data(), b.off.data(), b.scales.data(), b.zp(), rows,
                                           cs.cols, cs.group, act, y3.data());
          sk::gemv_q4_a8<A>(b.dense.data(), b.scales.data(), b.zp(), rows, cs.cols, cs.group, act, yd.data());
          REQUIRE(t::same_bits(y, yd));
          REQUIRE(t::same_bits(y2, yd));
          std::vector<float> yd3(rows, 7.0f);
          sk::gemv_q4_a8<A, false>(b.dense.data(), b.scales.data(), b.zp(), rows, cs.cols, cs.group, act, yd3.data());
          REQUIRE(t::same_bits(y3, yd3));
          sk::gemv_bitmask_q4_f32<A>(b.mask.data(), b.codes.data(), b.off.data(), b.scales.data(), b.zp(), rows, cs.cols,
                                     cs.group, x.data(), yf.data(), work.data());
          sk::gemv_q4_f32<A>(b.dense.data(), b.scales.data(), b.zp(), rows, cs.cols, cs.group, x.data(), ydf.data(),
                             work.data());
          REQUIRE(t::same_bits(yf, ydf));
          REQUIRE(t::same_bits(yf, y));  // the same block-int8 activations
          // versus the exact float product: |Δ| <= Σ_j |W[k][j]|·a[b(j)]/2 plus float rounding
          const std::size_t ng = cs.cols / cs.group;
          for (std::size_t k = 0; k < rows; ++k) {
            double bound = 0.0, mag = 0.0;
            for (std::size_t j = 0; j < cs.cols; ++j) {
              const int u = (b.dense[k * cs.cols / 2 + j / 2] >> (4 * (j % 2))) & 15;
              const int z = asym ? b.zeros[k * ng + j / cs.group] : 8;
              const double w = std::fabs(static_cast<double>(b.scales[k * ng + j / cs.group]) * (u - z));
              bound += w * act.scale[j / 32] / 2.0;
              mag += w * std::fabs(x[j]);
            }
            INFO("row " << k);
            REQUIRE(std::fabs(static_cast<double>(y[k]) - ref[k]) <= bound + 1e-5 * mag + 1e-30);
            if (k % 4 == (first_full ? 3u : 2u)) REQUIRE(ref[k] == 0.0f);  // nothing kept
          }
        });
      }
    }
  }
}

TEST_CASE("gemv_bitmask_q4: nothing kept, everything kept, extreme codes", "[kernels][gemv][bitmask][int4]") {
  namespace t = sparq_test_bitmask_q4;
  for (std::size_t cols : {32u, 288u, 544u}) {
    for (bool asym : {false, true}) {
      const std::size_t rows = 7, mb = cols / 8, ng = cols / 32;
      std::vector<float> scales(rows * ng, 0.02f);
      std::vector<std::uint8_t> zeros(asym ? rows * ng : 0, 3);
      const std::uint8_t* zp = asym ? zeros.data() : nullptr;
      const auto x = sparq_test::randn(cols, 9);
      std::vector<unsigned char> work(sk::block_q8_workspace_bytes(cols));
      // nothing kept: the codes array is empty, every output is +0 (the dense kernel's on all-zero weights)
      const std::vector<std::uint8_t> mask0(rows * mb, 0);
      const std::vector<std::size_t> off0(rows + 1, 0);
      const std::vector<std::uint8_t> none;
      std::vector<std::uint8_t> dz(rows * cols / 2, asym ? 0x33 : 0x88);
      // everything kept, codes 0 and 15 alternating (the largest |u − z|)
      const std::vector<std::uint8_t> mask1(rows * mb, 0xff);
      std::vector<std::size_t> off1(rows + 1);
      for (std::size_t k = 0; k <= rows; ++k) off1[k] = k * cols / 2;
      const std::vector<std::uint8_t> full(rows * cols / 2, 0xf0);
      sparq_test::for_each_arch([&](auto arch) {
        using A = decltype(arch);
        INFO("arch " << A::name() << " cols " << cols << " asym " << asym);
        std::vector<float> y(rows, 1.0f), yd(rows, 2.0f);
        sk::gemv_bitmask_q4_f32<A>(mask0.data(), none.data(), off0.data(), scales.data(), zp, rows, cols, 32, x.data(),
                                   y.data(), work.data());
        sk::gemv_q4_f32<A>(dz.data(), scales.data(), zp, rows, cols, 32, x.data(), yd.data(), work.data());
        REQUIRE(t::same_bits(y, yd));
        for (float v : y) REQUIRE(v == 0.0f);
        sk::gemv_bitmask_q4_f32<A>(mask1.data(), full.data(), off1.data(), scales.data(), zp, rows, cols, 32, x.data(),
                                   y.data(), work.data());
        sk::gemv_q4_f32<A>(full.data(), scales.data(), zp, rows, cols, 32, x.data(), yd.data(), work.data());
        REQUIRE(t::same_bits(y, yd));
      });
    }
  }
}
