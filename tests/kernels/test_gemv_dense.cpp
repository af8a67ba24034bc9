// Dense GEMV kernels (f32, int8, int4) against scalar references on every compiled+supported arch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "pack_helpers.hpp"
#include "sparq/kernels/experimental/gemv_f32_batch.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

namespace {

const std::size_t kRows[] = {1, 5, 17, 40};

// |got - ref| <= rel * mag + abs_tol
void require_close(const std::vector<float>& got, const std::vector<float>& ref, const std::vector<double>& mag,
                   double rel, const char* what) {
  for (std::size_t k = 0; k < ref.size(); ++k) {
    INFO(what << " row " << k << " got " << got[k] << " ref " << ref[k] << " mag " << mag[k]);
    REQUIRE(std::fabs(static_cast<double>(got[k]) - ref[k]) <= rel * mag[k] + 1e-30);
  }
}

}  // namespace

TEST_CASE("gemv_f32 matches the double reference on every arch and size", "[kernels][gemv][f32]") {
  for (std::size_t cols : {1, 7, 15, 16, 17, 63, 64, 65, 130, 257, 1000}) {
    for (std::size_t rows : kRows) {
      const auto w = sparq_test::randn(rows * cols, 11 + static_cast<unsigned>(cols));
      const auto x = sparq_test::randn(cols, 99);
      std::vector<float> ref(rows);
      std::vector<double> mag(rows, 0.0);
      sk::gemv_f32_reference(w.data(), rows, cols, x.data(), ref.data());
      for (std::size_t k = 0; k < rows; ++k)
        for (std::size_t j = 0; j < cols; ++j) mag[k] += std::fabs(static_cast<double>(w[k * cols + j]) * x[j]);
      sparq_test::for_each_arch([&](auto arch) {
        using A = decltype(arch);
        INFO("arch " << A::name() << " rows " << rows << " cols " << cols);
        std::vector<float> y(rows, -1.0f), y2(rows, -2.0f);
        sk::gemv_f32<A>(w.data(), rows, cols, x.data(), y.data());
        require_close(y, ref, mag, 1e-5, "f32");
        sk::gemv_f32<A>(w.data(), rows, cols, x.data(), y2.data(), 2);
        REQUIRE(y2 == y);  // deterministic across thread counts
      });
    }
  }
}

TEST_CASE("gemv_f32_batch equals gemv_f32 per token bit for bit", "[kernels][gemm][f32]") {
  const std::size_t rows = 37, cols = 71, tokens = 5;
  const auto w = sparq_test::randn(rows * cols, 3);
  const auto x = sparq_test::randn(tokens * cols, 4);
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    std::vector<float> y(tokens * rows), yt(rows);
    for (int threads : {1, 2}) {  // 37 rows: two full 16-row blocks and a partial one on one thread
      std::fill(y.begin(), y.end(), -1.0f);
      sk::gemv_f32_batch<A>(w.data(), rows, cols, x.data(), tokens, y.data(), threads);
      for (std::size_t t = 0; t < tokens; ++t) {
        sk::gemv_f32<A>(w.data(), rows, cols, x.data() + t * cols, yt.data());
        for (std::size_t k = 0; k < rows; ++k) REQUIRE(y[t * rows + k] == yt[k]);
      }
    }
  });
}

TEST_CASE("int8 dot products are exact in int32 (VNNI and maddubs paths, extreme codes)", "[kernels][int8]") {
  for (std::size_t n : {1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 4099}) {
    auto a = kt::rand_i8(n, 1 + static_cast<unsigned>(n));
    auto b = kt::rand_i8(n, 2 + static_cast<unsigned>(n));
    for (std::size_t j = 0; j < n; j += 3) {  // extremes: ±127 products stress saturation
      a[j] = (j % 2) ? -127 : 127;
      b[j] = (j % 4) ? -127 : 127;
    }
    std::int32_t ref = 0;
    for (std::size_t j = 0; j < n; ++j) ref += static_cast<std::int32_t>(a[j]) * b[j];
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      INFO("arch " << A::name() << " n " << n);
      REQUIRE(sk::detail::dot_s8<A, true>(a.data(), b.data(), n) == ref);
      REQUIRE(sk::detail::dot_s8<A, false>(a.data(), b.data(), n) == ref);
    });
  }
  // all +127 x all +127 and all +127 x all -127 (maddubs would saturate without the sign trick)
  std::vector<std::int8_t> p(256, 127), m(256, -127);
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    REQUIRE(sk::detail::dot_s8<A, false>(p.data(), p.data(), 256) == 256 * 127 * 127);
    REQUIRE(sk::detail::dot_s8<A, false>(m.data(), p.data(), 256) == -256 * 127 * 127);
    REQUIRE(sk::detail::dot_s8<A, true>(m.data(), m.data(), 256) == 256 * 127 * 127);
  });
}

TEST_CASE("gemv_q8_a8 equals sx*scale*exact integer sum; gemv_q8_f32 matches the reference", "[kernels][gemv][int8]") {
  for (std::size_t cols : {1, 17, 64, 65, 191, 256, 1025}) {
    for (std::size_t rows : kRows) {
      const auto q = kt::rand_i8(rows * cols, 5 + static_cast<unsigned>(cols));
      const auto scale = kt::rand_scales(rows, 6);
      const auto x = sparq_test::randn(cols, 7);
      std::vector<std::int8_t> qx(cols);
      const float sx = sk::quantize_per_token_q8(x.data(), cols, qx.data());
      std::vector<std::int32_t> acc(rows);
      sk::gemv_q8_a8_reference(q.data(), rows, cols, qx.data(), acc.data());
      std::vector<float> ref(rows);
      std::vector<double> mag(rows, 0.0);
      sk::gemv_q8_f32_reference(q.data(), scale.data(), rows, cols, x.data(), ref.data());
      for (std::size_t k = 0; k < rows; ++k)
        for (std::size_t j = 0; j < cols; ++j) mag[k] += std::fabs(scale[k] * static_cast<double>(q[k * cols + j]) * x[j]);
      sparq_test::for_each_arch([&](auto arch) {
        using A = decltype(arch);
        INFO("arch " << A::name() << " rows " << rows << " cols " << cols);
        std::vector<float> y(rows), y2(rows);
        sk::gemv_q8_a8<A>(q.data(), scale.data(), rows, cols, qx.data(), sx, y.data());
        sk::gemv_q8_a8<A, false>(q.data(), scale.data(), rows, cols, qx.data(), sx, y2.data(), 2);
        for (std::size_t k = 0; k < rows; ++k) {
          const float expect = sx * scale[k] * static_cast<float>(acc[k]);
          REQUIRE(y[k] == expect);
          REQUIRE(y2[k] == expect);
        }
        sk::gemv_q8_f32<A>(q.data(), scale.data(), rows, cols, x.data(), y.data());
        require_close(y, ref, mag, 1e-5, "q8_f32");
      });
    }
  }
}

TEST_CASE("per-token and per-block int8 activation quantizers", "[kernels][int8]") {
  const std::size_t cols = 96 + 512;  // not a multiple of 512: padding must be zero
  auto x = sparq_test::randn(cols, 8, 3.0f);
  for (std::size_t j = 64; j < 96; ++j) x[j] = 0.0f;  // an all-zero block
  std::vector<std::int8_t> qx(cols);
  const float sx = sk::quantize_per_token_q8(x.data(), cols, qx.data());
  for (std::size_t j = 0; j < cols; ++j) {
    REQUIRE(std::abs(static_cast<int>(qx[j])) <= 127);
    REQUIRE(std::fabs(x[j] - sx * qx[j]) <= 0.5f * sx * (1 + 1e-5f));
  }
  std::vector<unsigned char> work(sk::block_q8_workspace_bytes(cols));
  const auto act = sk::BlockQ8::carve(work.data(), cols);
  REQUIRE(reinterpret_cast<std::uintptr_t>(act.q) % 64 == 0);
  REQUIRE(reinterpret_cast<unsigned char*>(act.sum + sk::block_q8_padded(cols) / 32) <= work.data() + work.size());
  sk::quantize_block_q8(x.data(), cols, act);
  for (std::size_t b = 0; b < sk::block_q8_padded(cols) / 32; ++b) {
    std::int32_t s = 0;
    float amax = 0.0f;
    for (std::size_t j = b * 32; j < b * 32 + 32; ++j) {
      const std::int8_t v = act.q[sk::block_q8_position(j)];
      s += v;
      if (j < cols) {
        amax = std::max(amax, std::fabs(x[j]));
        REQUIRE(std::fabs(x[j] - act.scale[b] * v) <= 0.5f * act.scale[b] * (1 + 1e-5f));
      } else {
        REQUIRE(v == 0);
      }
    }
    REQUIRE(s == act.sum[b]);
    REQUIRE(act.scale[b] == amax / 127.0f);
  }
  // the position map is a bijection on each 128-input chunk
  std::vector<int> seen(256, 0);
  for (std::size_t j = 0; j < 256; ++j) ++seen[sk::block_q8_position(j)];
  for (int c : seen) REQUIRE(c == 1);
}

TEST_CASE("gemv_q4 (W4A8 and float activations) matches references for G in {32,64,128}", "[kernels][gemv][int4]") {
  for (std::size_t cols : {128, 256, 384, 512, 640, 1152, 4224}) {
    for (std::size_t group : {32, 64, 128}) {
      if (cols % group != 0) continue;
      for (std::size_t rows : kRows) {
        for (bool asym : {false, true}) {
          const unsigned seed = static_cast<unsigned>(cols * 7 + group + rows + (asym ? 1000 : 0));
          const auto u = kt::rand_u8(rows * cols, seed, 15);
          const auto codes = kt::pack_nibbles(u, rows, cols);
          const std::size_t ng = cols / group;
          const auto scales = kt::rand_scales(rows * ng, seed + 1);
          const auto zeros = kt::rand_u8(rows * ng, seed + 2, 15);
          const std::uint8_t* zp = asym ? zeros.data() : nullptr;
          const auto x = sparq_test::randn(cols, seed + 3);
          std::vector<unsigned char> work(sk::block_q8_workspace_bytes(cols));
          const auto act = sk::BlockQ8::carve(work.data(), cols);
          sk::quantize_block_q8(x.data(), cols, act);

          auto wval = [&](std::size_t k, std::size_t j) {
            const int z = asym ? zeros[k * ng + j / group] : 8;
            return static_cast<double>(scales[k * ng + j / group]) * (u[k * cols + j] - z);
          };
          // reference on the quantized activations, and the exact-float reference with its bound
          std::vector<float> ref_a8(rows), ref_f(rows);
          std::vector<double> mag_a8(rows, 0.0), bound(rows, 0.0), mag_f(rows, 0.0);
          for (std::size_t k = 0; k < rows; ++k) {
            double s = 0.0;
            for (std::size_t j = 0; j < cols; ++j) {
              const double xq = static_cast<double>(act.scale[j / 32]) * act.q[sk::block_q8_position(j)];
              s += wval(k, j) * xq;
              mag_a8[k] += std::fabs(wval(k, j) * xq);
              bound[k] += std::fabs(wval(k, j)) * act.scale[j / 32] * 0.5;
              mag_f[k] += std::fabs(wval(k, j) * x[j]);
            }
            ref_a8[k] = static_cast<float>(s);
          }
          sk::gemv_q4_reference(codes.data(), scales.data(), zp, rows, cols, group, x.data(), ref_f.data());

          sparq_test::for_each_arch([&](auto arch) {
            using A = decltype(arch);
            INFO("arch " << A::name() << " rows " << rows << " cols " << cols << " G " << group << " asym " << asym);
            std::vector<float> y(rows), y2(rows);
            sk::gemv_q4_a8<A>(codes.data(), scales.data(), zp, rows, cols, group, act, y.data());
            require_close(y, ref_a8, mag_a8, 1e-5, "q4_a8");
            sk::gemv_q4_a8<A, false>(codes.data(), scales.data(), zp, rows, cols, group, act, y2.data(), 2);
            require_close(y2, ref_a8, mag_a8, 1e-5, "q4_a8 maddubs");
            std::vector<unsigned char> work2(sk::block_q8_workspace_bytes(cols) + 3);
            sk::gemv_q4_f32<A>(codes.data(), scales.data(), zp, rows, cols, group, x.data(), y.data(), work2.data() + 3);
            for (std::size_t k = 0; k < rows; ++k) {
              INFO("row " << k << " got " << y[k] << " exact " << ref_f[k] << " bound " << bound[k]);
              REQUIRE(std::fabs(y[k] - static_cast<double>(ref_f[k])) <= bound[k] * 1.001 + 1e-5 * mag_f[k] + 1e-30);
            }
          });
        }
      }
    }
  }
}

TEST_CASE("gemv_q4_a8 is exact when every float product is exact (per-token int8 activations)", "[kernels][gemv][int4]") {
  const std::size_t rows = 9, cols = 1056, group = 32, ng = cols / group;
  const auto u = kt::rand_u8(rows * cols, 77, 15);
  const auto codes = kt::pack_nibbles(u, rows, cols);
  const auto zeros = kt::rand_u8(rows * ng, 78, 15);
  std::vector<float> scales(rows * ng);
  for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = (i % 3 == 0) ? 0.5f : 0.25f;
  const auto qx = kt::rand_i8(cols, 79);
  const float sx = 0.125f;
  std::vector<unsigned char> work(sk::block_q8_workspace_bytes(cols));
  const auto act = sk::BlockQ8::carve(work.data(), cols);
  sk::block_q8_from_per_token(qx.data(), sx, cols, act);
  for (bool asym : {false, true}) {
    std::vector<float> ref(rows);
    for (std::size_t k = 0; k < rows; ++k) {
      double s = 0.0;
      for (std::size_t j = 0; j < cols; ++j) {
        const int z = asym ? zeros[k * ng + j / group] : 8;
        s += static_cast<double>(scales[k * ng + j / group]) * (u[k * cols + j] - z) * sx * qx[j];
      }
      ref[k] = static_cast<float>(s);
    }
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      INFO("arch " << A::name() << " asym " << asym);
      std::vector<float> y(rows);
      sk::gemv_q4_a8<A>(codes.data(), scales.data(), asym ? zeros.data() : nullptr, rows, cols, group, act, y.data());
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(y[k] == ref[k]);
    });
  }
}
