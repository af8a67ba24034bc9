// Bitmask-sparse float GEMV against the dense product of the masked matrix.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "sparq/kernels/gemv_bitmask.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

TEST_CASE("gemv_bitmask_f32 equals the masked dense product", "[kernels][gemv][bitmask]") {
  for (std::size_t cols : {1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 100, 513, 1000}) {
    for (double density : {0.0, 0.3, 0.7, 1.0}) {
      const std::size_t rows = 19, mb = (cols + 7) / 8;
      const auto w = sparq_test::randn(rows * cols, 5 + static_cast<unsigned>(cols));
      const auto x = sparq_test::randn(cols, 6);
      std::mt19937 rng(static_cast<unsigned>(cols * 10 + density * 3));
      std::bernoulli_distribution keep(density);
      std::vector<std::uint8_t> mask(rows * mb, 0);
      std::vector<float> vals;
      std::vector<std::size_t> off{0};
      std::vector<double> ref(rows, 0.0), mag(rows, 0.0);
      for (std::size_t k = 0; k < rows; ++k) {
        for (std::size_t c = 0; c < cols; ++c) {
          if (keep(rng)) {
            mask[k * mb + c / 8] = static_cast<std::uint8_t>(mask[k * mb + c / 8] | (1u << (c % 8)));
            vals.push_back(w[k * cols + c]);
            ref[k] += static_cast<double>(w[k * cols + c]) * x[c];
            mag[k] += std::fabs(static_cast<double>(w[k * cols + c]) * x[c]);
          }
        }
        off.push_back(vals.size());
      }
      vals.push_back(0.0f);  // keep data() valid when nothing is kept
      sparq_test::for_each_arch([&](auto arch) {
        using A = decltype(arch);
        INFO("arch " << A::name() << " cols " << cols << " density " << density);
        std::vector<float> y(rows, 123.0f), y2(rows);
        sk::gemv_bitmask_f32<A>(mask.data(), vals.data(), off.data(), rows, cols, x.data(), y.data());
        sk::gemv_bitmask_f32<A>(mask.data(), vals.data(), off.data(), rows, cols, x.data(), y2.data(), 2);
        REQUIRE(y == y2);
        for (std::size_t k = 0; k < rows; ++k) REQUIRE(std::fabs(y[k] - ref[k]) <= 1e-5 * mag[k] + 1e-30);
      });
    }
  }
}
