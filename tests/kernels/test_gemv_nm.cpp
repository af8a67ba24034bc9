// N:M-sparse GEMV (2:4, 4:8; float, int8 and int4 kept values) against the scalar reference.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "pack_helpers.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

namespace {

// Random N:M pattern: per row and group, N distinct sorted in-group positions; packed per the contract.
struct Pattern {
  std::vector<unsigned> pos;       // rows × nk in-group positions
  std::vector<std::uint8_t> idx;   // packed, rows × row_bytes
};

Pattern make_pattern(std::size_t rows, std::size_t cols, std::size_t n, std::size_t m, unsigned seed) {
  std::mt19937 rng(seed);
  const std::size_t nk = cols / m * n, rb = sk::nm_index_row_bytes(nk, m);
  Pattern p;
  p.pos.resize(rows * nk);
  p.idx.assign(rows * rb, 0);
  std::vector<unsigned> all(m);
  for (std::size_t k = 0; k < rows; ++k) {
    for (std::size_t g = 0; g < cols / m; ++g) {
      std::iota(all.begin(), all.end(), 0u);
      std::shuffle(all.begin(), all.end(), rng);
      std::sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
      for (std::size_t i = 0; i < n; ++i) p.pos[k * nk + g * n + i] = all[i];
    }
    for (std::size_t i = 0; i < nk; ++i) {
      const unsigned v = p.pos[k * nk + i];
      std::uint8_t& b = p.idx[k * rb + (m == 4 ? i / 4 : i / 2)];
      b = static_cast<std::uint8_t>(b | (m == 4 ? v << (2 * (i % 4)) : (i % 2 == 0 ? v : v << 4)));
    }
  }
  return p;
}

void check(const std::vector<float>& y, const std::vector<float>& ref, const std::vector<double>& mag) {
  for (std::size_t k = 0; k < ref.size(); ++k) {
    INFO("row " << k << " got " << y[k] << " ref " << ref[k]);
    REQUIRE(std::fabs(static_cast<double>(y[k]) - ref[k]) <= 1e-5 * mag[k] + 1e-30);
  }
}

}  // namespace

TEST_CASE("nm index packing helpers read the contract layout", "[kernels][nm]") {
  const auto p = make_pattern(3, 40, 2, 4, 1);
  const std::size_t nk = 20, rb = sk::nm_index_row_bytes(nk, 4);
  REQUIRE(rb == 5);
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t i = 0; i < nk; ++i) REQUIRE(sk::nm_index(p.idx.data() + k * rb, i, 4) == p.pos[k * nk + i]);
  const auto p8 = make_pattern(2, 24, 4, 8, 2);
  for (std::size_t i = 0; i < 12; ++i) REQUIRE(sk::nm_index(p8.idx.data() + 6, i, 8) == p8.pos[12 + i]);
  // kept positions strictly increase inside each group
  for (std::size_t i = 0; i + 1 < p8.pos.size(); ++i)
    if ((i + 1) % 4 != 0) REQUIRE(p8.pos[i] < p8.pos[i + 1]);
}

TEST_CASE("gemv_nm_f32 and gemv_nm_q8 match the reference (2:4, 4:8, ragged sizes)", "[kernels][gemv][nm]") {
  struct NM { std::size_t n, m; };
  for (NM nm : {NM{2, 4}, NM{4, 8}, NM{1, 4}, NM{2, 8}}) {
    for (std::size_t cols : {8, 16, 24, 40, 64, 72, 96, 200, 1032}) {
      if (cols % nm.m != 0) continue;
      for (std::size_t rows : {1, 7, 33}) {
        const unsigned seed = static_cast<unsigned>(cols * 31 + rows + nm.m * 7 + nm.n);
        const std::size_t nk = cols / nm.m * nm.n;
        const auto pat = make_pattern(rows, cols, nm.n, nm.m, seed);
        const auto v = sparq_test::randn(rows * nk, seed + 1);
        const auto q = kt::rand_i8(rows * nk, seed + 2);
        const auto sc = kt::rand_scales(rows, seed + 3);
        const auto x = sparq_test::randn(cols, seed + 4);
        std::vector<float> ref_f(rows), ref_q(rows);
        std::vector<double> mag_f(rows, 0.0), mag_q(rows, 0.0);
        sk::gemv_nm_reference([&](std::size_t k, std::size_t i) { return v[k * nk + i]; }, pat.idx.data(), rows, cols,
                              nm.n, nm.m, x.data(), ref_f.data());
        sk::gemv_nm_reference([&](std::size_t k, std::size_t i) { return sc[k] * q[k * nk + i]; }, pat.idx.data(),
                              rows, cols, nm.n, nm.m, x.data(), ref_q.data());
        for (std::size_t k = 0; k < rows; ++k) {
          for (std::size_t i = 0; i < nk; ++i) {
            const float xv = x[nm.m * (i / nm.n) + pat.pos[k * nk + i]];
            mag_f[k] += std::fabs(static_cast<double>(v[k * nk + i]) * xv);
            mag_q[k] += std::fabs(static_cast<double>(sc[k]) * q[k * nk + i] * xv);
          }
        }
        sparq_test::for_each_arch([&](auto arch) {
          using A = decltype(arch);
          INFO("arch " << A::name() << " " << nm.n << ":" << nm.m << " rows " << rows << " cols " << cols);
          std::vector<float> y(rows), y2(rows);
          sk::gemv_nm_f32<A>(v.data(), pat.idx.data(), rows, cols, nm.n, nm.m, x.data(), y.data());
          check(y, ref_f, mag_f);
          sk::gemv_nm_f32<A>(v.data(), pat.idx.data(), rows, cols, nm.n, nm.m, x.data(), y2.data(), 2);
          REQUIRE(y2 == y);
          sk::gemv_nm_q8<A>(q.data(), sc.data(), pat.idx.data(), rows, cols, nm.n, nm.m, x.data(), y.data());
          check(y, ref_q, mag_q);
        });
      }
    }
  }
}

TEST_CASE("gemv_nm_q4 matches the reference (groups over kept values, sym and asym)", "[kernels][gemv][nm][int4]") {
  struct NM { std::size_t n, m; };
  for (NM nm : {NM{2, 4}, NM{4, 8}}) {
    for (std::size_t cols : {64, 128, 192, 512, 1280}) {
      for (std::size_t group : {32, 64, 128}) {
        const std::size_t nk = cols / nm.m * nm.n;
        if (nk % group != 0) continue;
        for (bool asym : {false, true}) {
          const std::size_t rows = 37, ng = nk / group;  // 4-row passes, single rows, 3 row blocks
          const unsigned seed = static_cast<unsigned>(cols + group * 3 + nm.m + (asym ? 500 : 0));
          const auto pat = make_pattern(rows, cols, nm.n, nm.m, seed);
          const auto u = kt::rand_u8(rows * nk, seed + 1, 15);
          const auto codes = kt::pack_nibbles(u, rows, nk);
          const auto sc = kt::rand_scales(rows * ng, seed + 2);
          const auto zr = kt::rand_u8(rows * ng, seed + 3, 15);
          const auto x = sparq_test::randn(cols, seed + 4);
          auto val = [&](std::size_t k, std::size_t i) {
            const int z = asym ? zr[k * ng + i / group] : 8;
            return sc[k * ng + i / group] * static_cast<float>(kt::nibble(codes.data() + k * (nk / 2), i) - z);
          };
          std::vector<float> ref(rows);
          std::vector<double> mag(rows, 0.0);
          sk::gemv_nm_reference(val, pat.idx.data(), rows, cols, nm.n, nm.m, x.data(), ref.data());
          for (std::size_t k = 0; k < rows; ++k)
            for (std::size_t i = 0; i < nk; ++i)
              mag[k] += std::fabs(static_cast<double>(val(k, i)) * x[nm.m * (i / nm.n) + pat.pos[k * nk + i]]);
          sparq_test::for_each_arch([&](auto arch) {
            using A = decltype(arch);
            INFO("arch " << A::name() << " " << nm.n << ":" << nm.m << " cols " << cols << " G " << group << " asym " << asym);
            std::vector<float> y(rows);
            sk::gemv_nm_q4<A>(codes.data(), sc.data(), asym ? zr.data() : nullptr, group, pat.idx.data(), rows, cols,
                              nm.n, nm.m, x.data(), y.data());
            check(y, ref, mag);
            std::vector<float> y2(rows);
            sk::gemv_nm_q4<A>(codes.data(), sc.data(), asym ? zr.data() : nullptr, group, pat.idx.data(), rows, cols,
                              nm.n, nm.m, x.data(), y2.data(), 2);
            REQUIRE(y2 == y);
          });
        }
      }
    }
  }
}

TEST_CASE("gemv_nm_f32 2:4 and 4:8 give each row the same value whether it runs in a 4-row pass or alone", "[kernels][gemv][nm]") {
  for (std::size_t m : {4, 8}) {
  for (std::size_t cols : {40, 64, 200, 1032, 4096}) {
    const std::size_t rows = 13, nk = cols / 2, n = m / 2;
    const auto pat = make_pattern(rows, cols, n, m, static_cast<unsigned>(cols + m));
    const auto v = sparq_test::randn(rows * nk, 3);
    const auto x = sparq_test::randn(cols, 4);
    const std::size_t ib = sk::nm_index_row_bytes(nk, m);
    std::vector<float> ref(rows);
    sk::gemv_nm_reference([&](std::size_t k, std::size_t i) { return v[k * nk + i]; }, pat.idx.data(), rows, cols, n, m,
                          x.data(), ref.data());
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      INFO("arch " << A::name() << " " << n << ":" << m << " cols " << cols);
      std::vector<float> y(rows);
      sk::gemv_nm_f32<A>(v.data(), pat.idx.data(), rows, cols, n, m, x.data(), y.data());
      for (std::size_t k = 0; k < rows; ++k) {
        float one = 0.0f;
        sk::gemv_nm_f32<A>(v.data() + k * nk, pat.idx.data() + k * ib, 1, cols, n, m, x.data(), &one);
        REQUIRE(one == y[k]);
        double mag = 0.0;
        for (std::size_t i = 0; i < nk; ++i) mag += std::fabs(static_cast<double>(v[k * nk + i])) * 4.0;
        REQUIRE(std::fabs(static_cast<double>(y[k]) - ref[k]) <= 1e-5 * mag);
      }
    });
  }
  }
}
