// Bitmask-sparse int8 GEMVs (W8A8, W8A32) against the scalar references and bit for bit against the
// dense int8 kernels on the same codes (zeros at the cleared bits), on every arch of this binary.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "sparq/kernels/gemv_bitmask_q.hpp"
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
