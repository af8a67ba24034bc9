// Quantized prefill GEMM (rows equal the GEMV bit for bit) and bf16/fp16 GEMV against references.
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "pack_helpers.hpp"
#include "sparq/kernels/experimental/gemv_q4h.hpp"
#include "sparq/core/half.hpp"
#include "sparq/kernels/gemm_q.hpp"
#include "sparq/kernels/gemv_half.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

TEST_CASE("quantized GEMM rows equal the GEMV for every token", "[kernels][gemm]") {
  const std::size_t rows = 35, cols = 640, tokens = 6, group = 64, ng = cols / group;
  const auto q = kt::rand_i8(rows * cols, 1);
  const auto sc = kt::rand_scales(rows, 2);
  const auto x = sparq_test::randn(tokens * cols, 3);
  std::vector<std::int8_t> qx(tokens * cols);
  std::vector<float> sx(tokens);
  for (std::size_t t = 0; t < tokens; ++t) sx[t] = sk::quantize_per_token_q8(x.data() + t * cols, cols, qx.data() + t * cols);
  const auto u = kt::rand_u8(rows * cols, 4, 15);
  const auto codes = kt::pack_nibbles(u, rows, cols);
  const auto s4 = kt::rand_scales(rows * ng, 5);
  const auto z4 = kt::rand_u8(rows * ng, 6, 15);
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    INFO("arch " << A::name());
    std::vector<float> y(tokens * rows), yg(rows);
    std::vector<unsigned char> work(sk::gemm_q4_workspace_bytes(cols, tokens)), w1(sk::block_q8_workspace_bytes(cols));
    sk::gemm_q8_f32<A>(q.data(), sc.data(), rows, cols, x.data(), tokens, y.data(), 2);
    for (std::size_t t = 0; t < tokens; ++t) {
      sk::gemv_q8_f32<A>(q.data(), sc.data(), rows, cols, x.data() + t * cols, yg.data());
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(y[t * rows + k] == yg[k]);
    }
    sk::gemm_q8_a8<A>(q.data(), sc.data(), rows, cols, qx.data(), sx.data(), tokens, y.data(), 2);
    for (std::size_t t = 0; t < tokens; ++t) {
      sk::gemv_q8_a8<A>(q.data(), sc.data(), rows, cols, qx.data() + t * cols, sx[t], yg.data());
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(y[t * rows + k] == yg[k]);
    }
    for (bool asym : {false, true}) {
      const std::uint8_t* zp = asym ? z4.data() : nullptr;
      sk::gemm_q4_f32<A>(codes.data(), s4.data(), zp, rows, cols, group, x.data(), tokens, y.data(), work.data(), 2);
      for (std::size_t t = 0; t < tokens; ++t) {
        sk::gemv_q4_f32<A>(codes.data(), s4.data(), zp, rows, cols, group, x.data() + t * cols, yg.data(), w1.data());
        for (std::size_t k = 0; k < rows; ++k) REQUIRE(y[t * rows + k] == yg[k]);
      }
    }
  });
}

TEST_CASE("gemv_bf16 and gemv_f16 match the double reference", "[kernels][gemv][half]") {
  for (std::size_t cols : {1, 15, 16, 17, 64, 65, 200, 1027}) {
    const std::size_t rows = 13;
    const auto wf = sparq_test::randn(rows * cols, 7 + static_cast<unsigned>(cols));
    const auto x = sparq_test::randn(cols, 8);
    std::vector<std::uint16_t> wb(rows * cols), wh(rows * cols);
    for (std::size_t i = 0; i < wf.size(); ++i) {
      wb[i] = sparq::float_to_bf16(wf[i]);
      wh[i] = sparq::float_to_fp16(wf[i]);
    }
    std::vector<double> rb(rows, 0.0), rh(rows, 0.0), mb(rows, 0.0), mh(rows, 0.0);
    for (std::size_t k = 0; k < rows; ++k)
      for (std::size_t j = 0; j < cols; ++j) {
        const double b = sparq::bf16_to_float(wb[k * cols + j]), h = sparq::fp16_to_float(wh[k * cols + j]);
        rb[k] += b * x[j];
        rh[k] += h * x[j];
        mb[k] += std::fabs(b * x[j]);
        mh[k] += std::fabs(h * x[j]);
      }
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      INFO("arch " << A::name() << " cols " << cols);
      std::vector<float> y(rows), y2(rows);
      sk::gemv_bf16<A>(wb.data(), rows, cols, x.data(), y.data());
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(std::fabs(y[k] - rb[k]) <= 1e-5 * mb[k] + 1e-30);
      sk::gemv_f16<A>(wh.data(), rows, cols, x.data(), y.data());
      sk::gemv_f16<A>(wh.data(), rows, cols, x.data(), y2.data(), 2);
      REQUIRE(y == y2);
      for (std::size_t k = 0; k < rows; ++k) REQUIRE(std::fabs(y[k] - rh[k]) <= 1e-5 * mh[k] + 1e-30);
    });
  }
}

TEST_CASE("multi-row GEMV kernels give every row exactly its one-row result", "[kernels][gemv]") {
  // rows = 23: groups of 4 plus a remainder; each row is also computed alone (rows = 1 takes the
  // one-row path), which must agree bit for bit for every arch, format and thread count.
  const std::size_t rows = 23, cols = 704, group = 32, ng = cols / group;
  const auto q = kt::rand_i8(rows * cols, 11);
  const auto sc = kt::rand_scales(rows, 12);
  const auto x = sparq_test::randn(cols, 13);
  std::vector<std::int8_t> qx(cols);
  const float sx = sk::quantize_per_token_q8(x.data(), cols, qx.data());
  const auto codes = kt::pack_nibbles(kt::rand_u8(rows * cols, 14, 15), rows, cols);
  const auto s4 = kt::rand_scales(rows * ng, 15);
  const auto z4 = kt::rand_u8(rows * ng, 16, 15);
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    INFO("arch " << A::name());
    std::vector<unsigned char> work(sk::block_q8_workspace_bytes(cols));
    const sk::BlockQ8 act = sk::BlockQ8::carve(work.data(), cols);
    sk::quantize_block_q8(x.data(), cols, act);
    std::vector<float> y(rows), y1(1);
    for (int threads : {1, 2}) {
      sk::gemv_q8_f32<A>(q.data(), sc.data(), rows, cols, x.data(), y.data(), threads);
      for (std::size_t k = 0; k < rows; ++k) {
        sk::gemv_q8_f32<A>(q.data() + k * cols, sc.data() + k, 1, cols, x.data(), y1.data());
        REQUIRE(y[k] == y1[0]);
      }
      sk::gemv_q8_a8<A>(q.data(), sc.data(), rows, cols, qx.data(), sx, y.data(), threads);
      for (std::size_t k = 0; k < rows; ++k) {
        sk::gemv_q8_a8<A>(q.data() + k * cols, sc.data() + k, 1, cols, qx.data(), sx, y1.data());
        REQUIRE(y[k] == y1[0]);
      }
      for (bool asym : {false, true}) {
        sk::gemv_q4_a8<A>(codes.data(), s4.data(), asym ? z4.data() : nullptr, rows, cols, group, act, y.data(), threads);
        for (std::size_t k = 0; k < rows; ++k) {
          sk::gemv_q4_a8<A>(codes.data() + k * cols / 2, s4.data() + k * ng, asym ? z4.data() + k * ng : nullptr, 1, cols,
                            group, act, y1.data());
          REQUIRE(y[k] == y1[0]);
        }
      }
    }
  });
  // int4 with float and fp16 scales for G = 32/64/128 (cols 640 and 704: a partial 256/512-input
  // tail block), rows 23 = five 4-row passes plus three single rows.
  for (std::size_t g : {32, 64, 128}) {
    for (std::size_t c : {640, 704}) {
      if (c % g != 0) continue;
      const std::size_t n = c / g;
      const auto cd = kt::pack_nibbles(kt::rand_u8(rows * c, 17, 15), rows, c);
      const auto sf = kt::rand_scales(rows * n, 18);
      std::vector<std::uint16_t> sh(rows * n);
      for (std::size_t i = 0; i < sh.size(); ++i) sh[i] = sparq::float_to_fp16(sf[i]);
      const auto zz = kt::rand_u8(rows * n, 19, 15);
      const auto xc = sparq_test::randn(c, 20);
      sparq_test::for_each_arch([&](auto arch) {
        using A = decltype(arch);
        std::vector<unsigned char> work(sk::block_q8_workspace_bytes(c));
        const sk::BlockQ8 act = sk::BlockQ8::carve(work.data(), c);
        sk::quantize_block_q8(xc.data(), c, act);
        std::vector<float> y(rows), yh(rows), y1(1);
        for (bool asym : {false, true}) {
          INFO("arch " << A::name() << " G " << g << " cols " << c << " asym " << asym);
          for (int threads : {1, 2}) {
            sk::gemv_q4_a8<A>(cd.data(), sf.data(), asym ? zz.data() : nullptr, rows, c, g, act, y.data(), threads);
            sk::gemv_q4h_a8<A>(cd.data(), sh.data(), asym ? zz.data() : nullptr, rows, c, g, act, yh.data(), threads);
            for (std::size_t k = 0; k < rows; ++k) {
              sk::gemv_q4_a8<A>(cd.data() + k * c / 2, sf.data() + k * n, asym ? zz.data() + k * n : nullptr, 1, c, g, act,
                                y1.data());
              REQUIRE(y[k] == y1[0]);
              sk::gemv_q4h_a8<A>(cd.data() + k * c / 2, sh.data() + k * n, asym ? zz.data() + k * n : nullptr, 1, c, g,
                                 act, y1.data());
              REQUIRE(yh[k] == y1[0]);
            }
          }
        }
      });
    }
  }
}

TEST_CASE("gemv_q4h (fp16 scales) equals gemv_q4 on the widened scales bit for bit", "[kernels][gemv][int4]") {
  for (std::size_t cols : {768, 1344}) {
    for (std::size_t group : {32, 64, 128}) {
      if (cols % group != 0) continue;
      const std::size_t rows = 23, ng = cols / group;
      const auto codes = kt::pack_nibbles(kt::rand_u8(rows * cols, 21, 15), rows, cols);
      const auto sf = kt::rand_scales(rows * ng, 22);
      std::vector<std::uint16_t> sh(rows * ng);
      std::vector<float> sw(rows * ng);
      for (std::size_t i = 0; i < sh.size(); ++i) {
        sh[i] = sparq::float_to_fp16(sf[i]);
        sw[i] = sparq::fp16_to_float(sh[i]);
      }
      const auto z4 = kt::rand_u8(rows * ng, 23, 15);
      const auto x = sparq_test::randn(cols, 24);
      sparq_test::for_each_arch([&](auto arch) {
        using A = decltype(arch);
        for (bool asym : {false, true}) {
          INFO("arch " << A::name() << " cols " << cols << " G " << group << " asym " << asym);
          std::vector<unsigned char> w1(sk::block_q8_workspace_bytes(cols)), w2(sk::block_q8_workspace_bytes(cols));
          std::vector<float> y(rows, -1.0f), yh(rows, -2.0f), yh2(rows, -3.0f);
          const std::uint8_t* zp = asym ? z4.data() : nullptr;
          sk::gemv_q4_f32<A>(codes.data(), sw.data(), zp, rows, cols, group, x.data(), y.data(), w1.data());
          sk::gemv_q4h_f32<A>(codes.data(), sh.data(), zp, rows, cols, group, x.data(), yh.data(), w2.data());
          sk::gemv_q4h_f32<A>(codes.data(), sh.data(), zp, rows, cols, group, x.data(), yh2.data(), w2.data(), 2);
          REQUIRE(yh2 == yh);
          REQUIRE(yh == y);  // every target: the same kernel on exactly widened scales
        }
      });
    }
  }
}
