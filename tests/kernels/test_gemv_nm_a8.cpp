// 2:4-sparse W4A8 GEMV (gemv_nm24_q4_a8 / _f32 on NmQ8, gemv_nm24m_q4(h)_a8 on mask tiles) against scalar references on every arch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "pack_helpers.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/experimental/gemv_nm24m_extra.hpp"
#include "sparq/kernels/experimental/gemv_nm_a8.hpp"
#include "sparq/kernels/gemv_nm_mask.hpp"
#include "sparq/core/half.hpp"
#include "sparq_test.hpp"

namespace sk = sparq::kernels;

namespace {

// Random 2:4 pattern, packed per the contract (2 bits per kept value, index i at bits 2(i%4) of byte i/4).
struct Pattern24 {
  std::vector<unsigned> pos;      // rows × nk in-group positions
  std::vector<std::uint8_t> idx;  // rows × nk/4
};

Pattern24 make_pattern24(std::size_t rows, std::size_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  const std::size_t nk = cols / 2;
  Pattern24 p;
  p.pos.resize(rows * nk);
  p.idx.assign(rows * sk::nm_index_row_bytes(nk, 4), 0);
  unsigned all[4];
  for (std::size_t k = 0; k < rows; ++k) {
    for (std::size_t g = 0; g < cols / 4; ++g) {
      std::iota(all, all + 4, 0u);
      std::shuffle(all, all + 4, rng);
      std::sort(all, all + 2);
      p.pos[k * nk + 2 * g] = all[0];
      p.pos[k * nk + 2 * g + 1] = all[1];
    }
    for (std::size_t i = 0; i < nk; ++i)
      p.idx[k * (nk / 4) + i / 4] = static_cast<std::uint8_t>(p.idx[k * (nk / 4) + i / 4] | p.pos[k * nk + i] << (2 * (i % 4)));
  }
  return p;
}

struct Case {
  std::size_t rows, cols, group;
  bool asym;
  Pattern24 pat;
  std::vector<std::uint8_t> u, codes, zr;
  std::vector<float> sc;
  Case(std::size_t r, std::size_t c, std::size_t g, bool a, unsigned seed)
      : rows(r), cols(c), group(g), asym(a), pat(make_pattern24(r, c, seed)) {
    const std::size_t nk = cols / 2, ng = nk / group;
    u = kt::rand_u8(rows * nk, seed + 1, 15);
    codes = kt::pack_nibbles(u, rows, nk);
    sc = kt::rand_scales(rows * ng, seed + 2);
    zr = kt::rand_u8(rows * ng, seed + 3, 15);
  }
  const std::uint8_t* zeros() const { return asym ? zr.data() : nullptr; }
  // dequantized kept value i of row k and its input column
  float w(std::size_t k, std::size_t i) const {
    const std::size_t nk = cols / 2, ng = nk / group;
    const int z = asym ? zr[k * ng + i / group] : 8;
    return sc[k * ng + i / group] * static_cast<float>(u[k * nk + i] - z);
  }
  std::size_t col(std::size_t k, std::size_t i) const { return 4 * (i / 2) + pat.pos[k * (cols / 2) + i]; }
};

}  // namespace

TEST_CASE("NmQ8 activation layout and quantizers", "[kernels][nm][int8]") {
  const std::size_t cols = 1024 + 192;
  const auto x = sparq_test::randn(cols, 5);
  std::vector<unsigned char> work(sk::nm_q8_workspace_bytes(cols) + 3);
  const sk::NmQ8 act = sk::NmQ8::carve(work.data() + 3, cols);  // misaligned buffer: carve aligns
  REQUIRE(reinterpret_cast<std::uintptr_t>(act.q) % 64 == 0);
  sk::quantize_nm_q8(x.data(), cols, act);
  std::vector<int> seen(sk::nm_q8_padded(cols), 0);
  for (std::size_t j = 0; j < sk::nm_q8_padded(cols); ++j) ++seen[sk::nm_q8_position(j)];
  REQUIRE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));  // a permutation
  for (std::size_t b = 0; b < cols / 64; ++b) {
    float amax = 0.0f;
    for (std::size_t j = b * 64; j < b * 64 + 64; ++j) amax = std::max(amax, std::fabs(x[j]));
    REQUIRE(act.scale[b] == amax / 127.0f);
    for (std::size_t j = b * 64; j < b * 64 + 64; ++j) {
      const int q = act.q[sk::nm_q8_position(j)];
      REQUIRE(q == static_cast<int>(std::nearbyint(x[j] * (127.0f / amax))));
      REQUIRE(std::fabs(act.scale[b] * q - x[j]) <= act.scale[b] / 2 * 1.0001f);
    }
  }
  for (std::size_t j = cols; j < sk::nm_q8_padded(cols); ++j) REQUIRE(act.q[sk::nm_q8_position(j)] == 0);
  REQUIRE(act.scale[cols / 64] == 0.0f);
  // per-token: every block carries sx, values copied
  const auto qx = kt::rand_i8(cols, 6);
  sk::nm_q8_from_per_token(qx.data(), 0.25f, cols, act);
  for (std::size_t j = 0; j < cols; ++j) REQUIRE(act.q[sk::nm_q8_position(j)] == qx[j]);
  for (std::size_t b = 0; b < cols / 64; ++b) REQUIRE(act.scale[b] == 0.25f);
}

TEST_CASE("gemv_nm24_q4_a8 matches the reference on every arch (G 32/64/128, sym/asym, ragged sizes)",
          "[kernels][gemv][nm][int4]") {
  for (std::size_t cols : {64, 128, 192, 960, 1024, 1088, 2112}) {
    for (std::size_t group : {32, 64, 128}) {
      if ((cols / 2) % group != 0) continue;
      for (bool asym : {false, true}) {
        const unsigned seed = static_cast<unsigned>(cols * 7 + group + (asym ? 1 : 0));
        const Case c(19, cols, group, asym, seed);
        const auto x = sparq_test::randn(cols, seed + 9);
        std::vector<unsigned char> work(sk::nm_q8_workspace_bytes(cols));
        const sk::NmQ8 act = sk::NmQ8::carve(work.data(), cols);
        sk::quantize_nm_q8(x.data(), cols, act);
        std::vector<std::uint8_t> tiles(c.rows * sk::nm24_q4_tile_row_bytes(cols), 0xAB);
        sk::pack_nm24_q4_tiles(c.codes.data(), c.pat.idx.data(), c.rows, cols, tiles.data());
        std::vector<float> ref(c.rows), exact(c.rows);
        std::vector<double> mag(c.rows, 0.0), qerr(c.rows, 0.0);
        sk::gemv_nm24_q4_a8_reference(c.codes.data(), c.sc.data(), c.zeros(), group, c.pat.idx.data(), c.rows, cols, act,
                                      ref.data());
        for (std::size_t k = 0; k < c.rows; ++k) {
          double e = 0.0;
          for (std::size_t i = 0; i < cols / 2; ++i) {
            const std::size_t j = c.col(k, i);
            e += static_cast<double>(c.w(k, i)) * x[j];
            mag[k] += std::fabs(static_cast<double>(c.w(k, i)) * x[j]);
            qerr[k] += std::fabs(static_cast<double>(c.w(k, i))) * act.scale[j / 64] / 2;
          }
          exact[k] = static_cast<float>(e);
        }
        sparq_test::for_each_arch([&](auto arch) {
          using A = decltype(arch);
          INFO("arch " << A::name() << " cols " << cols << " G " << group << " asym " << asym);
          std::vector<float> y(c.rows, -1.0f), y2(c.rows, -2.0f), y3(c.rows, -3.0f), yf(c.rows, -4.0f);
          sk::gemv_nm24_q4_a8<A>(c.codes.data(), c.sc.data(), c.zeros(), group, c.pat.idx.data(), c.rows, cols, act,
                                 y.data());
          for (std::size_t k = 0; k < c.rows; ++k) {
            INFO("row " << k << " got " << y[k] << " ref " << ref[k]);
            REQUIRE(std::fabs(static_cast<double>(y[k]) - ref[k]) <= 1e-5 * mag[k] + 1e-30);
          }
          sk::gemv_nm24_q4_a8<A, false>(c.codes.data(), c.sc.data(), c.zeros(), group, c.pat.idx.data(), c.rows, cols,
                                        act, y2.data(), 2);
          REQUIRE(y2 == y);  // maddubs path and two threads: same integer sums, same float order
          std::vector<float> yt(c.rows, -5.0f), yt2(c.rows, -6.0f);
          sk::gemv_nm24_q4_tiled_a8<A>(tiles.data(), c.sc.data(), c.zeros(), group, c.rows, cols, act, yt.data());
          REQUIRE(yt == y);  // the tiled layout carries the same weights: same result bit for bit
          std::vector<unsigned char> w3(sk::nm_q8_workspace_bytes(cols));
          sk::gemv_nm24_q4_tiled_f32<A>(tiles.data(), c.sc.data(), c.zeros(), group, c.rows, cols, x.data(),
                                        yt2.data(), w3.data(), 2);
          REQUIRE(yt2 == y);
          std::vector<unsigned char> w2(sk::nm_q8_workspace_bytes(cols));
          sk::gemv_nm24_q4_f32<A>(c.codes.data(), c.sc.data(), c.zeros(), group, c.pat.idx.data(), c.rows, cols,
                                  x.data(), yf.data(), w2.data(), 2);
          REQUIRE(yf == y);
          for (std::size_t k = 0; k < c.rows; ++k) {  // activation-quantization error bound vs the float product
            INFO("row " << k << " got " << yf[k] << " exact " << exact[k] << " bound " << qerr[k]);
            REQUIRE(std::fabs(static_cast<double>(yf[k]) - exact[k]) <= qerr[k] * 1.0001 + 1e-5 * mag[k]);
          }
          // the float-activation N:M kernel on the same weights agrees within the same bound
          sk::gemv_nm_q4<A>(c.codes.data(), c.sc.data(), c.zeros(), group, c.pat.idx.data(), c.rows, cols, 2, 4,
                            x.data(), y3.data());
          for (std::size_t k = 0; k < c.rows; ++k)
            REQUIRE(std::fabs(static_cast<double>(y3[k]) - yf[k]) <= qerr[k] * 1.0001 + 2e-5 * mag[k]);
        });
      }
    }
  }
}

TEST_CASE("gemv_nm24_q4_a8 is exact when every float product is exact (per-token int8 activations)",
          "[kernels][gemv][nm][int4]") {
  const std::size_t rows = 21, cols = 1024 + 128, group = 64, ng = cols / 2 / group;
  Case c(rows, cols, group, true, 77);
  for (std::size_t i = 0; i < rows * ng; ++i) c.sc[i] = std::ldexp(1.0f, -static_cast<int>(i % 5));
  const auto qx = kt::rand_i8(cols, 78, -31, 31);  // keeps every partial sum below 2^24 ulps
  std::vector<unsigned char> work(sk::nm_q8_workspace_bytes(cols));
  const sk::NmQ8 act = sk::NmQ8::carve(work.data(), cols);
  sk::nm_q8_from_per_token(qx.data(), 0.125f, cols, act);
  std::vector<float> expect(rows);
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t i = 0; i < cols / 2; ++i) s += static_cast<double>(c.w(k, i)) * 0.125 * qx[c.col(k, i)];
    expect[k] = static_cast<float>(s);
  }
  sparq_test::for_each_arch([&](auto arch) {
    using A = decltype(arch);
    INFO("arch " << A::name());
    std::vector<float> y(rows);
    sk::gemv_nm24_q4_a8<A>(c.codes.data(), c.sc.data(), c.zeros(), group, c.pat.idx.data(), rows, cols, act, y.data());
    REQUIRE(y == expect);
  });
}

TEST_CASE("pack_nm24_q4_tiles writes the documented tile layout", "[kernels][nm][int4]") {
  const std::size_t rows = 3, cols = 320, nk = cols / 2;  // 160 kept: one full tile and one padded tile
  const Case c(rows, cols, 32, false, 91);
  const std::size_t tb = sk::nm24_q4_tile_row_bytes(cols);
  REQUIRE(tb == 2 * 96);
  std::vector<std::uint8_t> tiles(rows * tb, 0xff);
  sk::pack_nm24_q4_tiles(c.codes.data(), c.pat.idx.data(), rows, cols, tiles.data());
  for (std::size_t k = 0; k < rows; ++k) {
    const std::uint8_t* row = tiles.data() + k * tb;
    for (std::size_t g = 0; g < 128; ++g) {  // 128 group slots in two tiles, 80 real groups
      const std::uint8_t* t = row + g / 64 * 96;
      const std::size_t j = g % 64;
      auto bit = [&](unsigned p) { return static_cast<unsigned>((t[64 + 8 * p + j / 8] >> (j % 8)) & 1u); };
      if (g < nk / 2) {
        INFO("row " << k << " group " << g);
        REQUIRE(t[j] == static_cast<std::uint8_t>(c.u[k * nk + 2 * g] | c.u[k * nk + 2 * g + 1] << 4));
        REQUIRE((bit(0) | bit(1) << 1) == c.pat.pos[k * nk + 2 * g]);
        REQUIRE((bit(2) | bit(3) << 1) == c.pat.pos[k * nk + 2 * g + 1]);
      } else {
        REQUIRE(t[j] == 0);
        for (unsigned p = 0; p < 4; ++p) REQUIRE(bit(p) == 0u);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Presence-mask tiles (gemv_nm_mask.hpp)
// ---------------------------------------------------------------------------------------------

TEST_CASE("NmMaskQ8 activation layout and quantizers", "[kernels][nm][int8]") {
  const std::size_t cols = 1024 + 320;
  const auto x = sparq_test::randn(cols, 15);
  std::vector<unsigned char> work(sk::nm24m_q8_workspace_bytes(cols) + 5);
  const sk::NmMaskQ8 act = sk::NmMaskQ8::carve(work.data() + 5, cols);
  REQUIRE(reinterpret_cast<std::uintptr_t>(act.q) % 64 == 0);
  const std::size_t padded = sk::nm24m_padded(cols);
  REQUIRE(padded == 2048);
  std::vector<int> seen(padded, 0);
  for (std::size_t j = 0; j < padded; ++j) ++seen[sk::nm24m_q8_position(j)];
  REQUIRE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));  // a permutation
  // the documented lane-vector position: input 256p + 64L + 16q + e of a chunk at byte 64(4p + q) + 16L + e
  REQUIRE(sk::nm24m_q8_position(1024 + 256 * 2 + 64 * 3 + 16 * 1 + 5) == 1024 + 64 * (4 * 2 + 1) + 16 * 3 + 5);
  sk::quantize_nm24m_q8(x.data(), cols, act);
  for (std::size_t b = 0; b < cols / 64; ++b) {
    float amax = 0.0f;
    for (std::size_t j = b * 64; j < b * 64 + 64; ++j) amax = std::max(amax, std::fabs(x[j]));
    REQUIRE(act.scale[b] == amax / 127.0f);
    std::int32_t sum = 0;
    for (std::size_t j = b * 64; j < b * 64 + 64; ++j) {
      const int q = act.q[sk::nm24m_q8_position(j)];
      REQUIRE(q == static_cast<int>(std::nearbyint(x[j] * (127.0f / amax))));
      sum += q;
    }
    REQUIRE(act.sum[b] == sum);
  }
  for (std::size_t j = cols; j < padded; ++j) REQUIRE(act.q[sk::nm24m_q8_position(j)] == 0);
  for (std::size_t b = cols / 64; b < padded / 64; ++b) {
    REQUIRE(act.scale[b] == 0.0f);
    REQUIRE(act.sum[b] == 0);
  }
  const auto qx = kt::rand_i8(cols, 16);
  sk::nm24m_q8_from_per_token(qx.data(), 0.5f, cols, act);
  for (std::size_t j = 0; j < cols; ++j) REQUIRE(act.q[sk::nm24m_q8_position(j)] == qx[j]);
  for (std::size_t b = 0; b < cols / 64; ++b) {
    REQUIRE(act.scale[b] == 0.5f);
    REQUIRE(act.sum[b] == std::accumulate(qx.begin() + static_cast<std::ptrdiff_t>(64 * b),
                                          qx.begin() + static_cast<std::ptrdiff_t>(64 * b + 64), 0));
  }
}

TEST_CASE("pack_nm24m_q4 writes the documented mask-tile layout", "[kernels][nm][int4]") {
  const std::size_t rows = 3, cols = 1024 + 192, nk = cols / 2;  // one full chunk, one padded chunk
  const Case c(rows, cols, 32, false, 93);
  const std::size_t rb = sk::nm24m_q4_row_bytes(cols);
  REQUIRE(rb == 2 * 384);
  std::vector<std::uint8_t> tiles(rows * rb, 0xff);
  sk::pack_nm24m_q4(c.codes.data(), c.pat.idx.data(), rows, cols, tiles.data());
  for (std::size_t k = 0; k < rows; ++k) {
    const std::uint8_t* row = tiles.data() + k * rb;
    std::vector<int> kept(sk::nm24m_padded(cols), -1);  // input -> kept value index
    for (std::size_t i = 0; i < nk; ++i) kept[c.col(k, i)] = static_cast<int>(i);
    for (std::size_t ch = 0; ch < 2; ++ch) {
      const std::uint8_t* t = row + ch * 384;
      for (std::size_t zt = 0; zt < 16; ++zt) {
        std::uint64_t m;
        std::memcpy(&m, t + 256 + 8 * zt, 8);
        std::size_t slot = 0;
        for (std::size_t l = 0; l < 64; ++l) {
          const std::size_t j = ch * 1024 + (zt / 4) * 256 + (l / 16) * 64 + (zt % 4) * 16 + l % 16;
          const bool bit = ((m >> l) & 1u) != 0;
          INFO("row " << k << " chunk " << ch << " Z " << zt << " lane " << l << " input " << j);
          REQUIRE(bit == (kept[j] >= 0));
          if (bit) {
            const int u = (t[32 * (zt / 2) + slot] >> (4 * (zt % 2))) & 15;
            REQUIRE(u == c.u[k * nk + static_cast<std::size_t>(kept[j])]);
            ++slot;
          }
        }
        const std::size_t valid = ch == 0 ? 1024 : cols - 1024;  // real inputs of this chunk
        std::size_t expect_kept = 0;
        for (std::size_t L = 0; L < 4; ++L) expect_kept += (zt / 4) * 256 + 64 * L + (zt % 4) * 16 < valid ? 8 : 0;
        REQUIRE(slot == expect_kept);  // 8 kept values per 16 real inputs, none in the padding
        for (std::size_t s2 = slot; s2 < 32; ++s2) REQUIRE(((t[32 * (zt / 2) + s2] >> (4 * (zt % 2))) & 15) == 0);
      }
    }
  }
}

TEST_CASE("gemv_nm24m_q4_a8 / q4h_a8 match the reference on every arch (G 32/64/128, sym/asym, ragged sizes)",
          "[kernels][gemv][nm][int4]") {
  for (std::size_t cols : {64, 128, 192, 960, 1024, 1088, 2112}) {
    for (std::size_t group : {32, 64, 128}) {
      if ((cols / 2) % group != 0) continue;
      for (bool asym : {false, true}) {
        const unsigned seed = static_cast<unsigned>(cols * 11 + group + (asym ? 3 : 0));
        const std::size_t rows = 23;  // 4-row passes and single rows
        Case c(rows, cols, group, asym, seed);
        const std::size_t ng = cols / 2 / group;
        std::vector<std::uint16_t> sh(rows * ng);
        for (std::size_t i = 0; i < rows * ng; ++i) {  // scales on the fp16 grid, so both forms see the same values
          sh[i] = sparq::float_to_fp16(c.sc[i]);
          c.sc[i] = sparq::fp16_to_float(sh[i]);
        }
        const auto x = sparq_test::randn(cols, seed + 9);
        std::vector<unsigned char> work(sk::nm24m_q8_workspace_bytes(cols));
        const sk::NmMaskQ8 act = sk::NmMaskQ8::carve(work.data(), cols);
        sk::quantize_nm24m_q8(x.data(), cols, act);
        std::vector<std::uint8_t> tiles(rows * sk::nm24m_q4_row_bytes(cols), 0xAB);
        sk::pack_nm24m_q4(c.codes.data(), c.pat.idx.data(), rows, cols, tiles.data());
        std::vector<float> ref(rows), exact(rows);
        std::vector<double> mag(rows, 0.0), qerr(rows, 0.0);
        sk::gemv_nm24m_q4_a8_reference(c.codes.data(), c.sc.data(), c.zeros(), group, c.pat.idx.data(), rows, cols, act,
                                       ref.data());
        for (std::size_t k = 0; k < rows; ++k) {
          double e = 0.0;
          for (std::size_t i = 0; i < cols / 2; ++i) {
            const std::size_t j = c.col(k, i);
            e += static_cast<double>(c.w(k, i)) * x[j];
            mag[k] += std::fabs(static_cast<double>(c.w(k, i)) * x[j]);
            qerr[k] += std::fabs(static_cast<double>(c.w(k, i))) * act.scale[j / 64] / 2;
          }
          exact[k] = static_cast<float>(e);
        }
        sparq_test::for_each_arch([&](auto arch) {
          using A = decltype(arch);
          INFO("arch " << A::name() << " cols " << cols << " G " << group << " asym " << asym);
          std::vector<float> y(rows, -1.0f), y2(rows, -2.0f), yh(rows, -3.0f), yf(rows, -4.0f), yhf(rows, -5.0f);
          sk::gemv_nm24m_q4_a8<A>(tiles.data(), c.sc.data(), c.zeros(), group, rows, cols, act, y.data());
          for (std::size_t k = 0; k < rows; ++k) {
            INFO("row " << k << " got " << y[k] << " ref " << ref[k]);
            REQUIRE(std::fabs(static_cast<double>(y[k]) - ref[k]) <= 1e-5 * mag[k] + 1e-30);
          }
          sk::gemv_nm24m_q4_a8<A, false>(tiles.data(), c.sc.data(), c.zeros(), group, rows, cols, act, y2.data(), 2);
          REQUIRE(y2 == y);  // maddubs path and two threads: same integer sums, same float order
          sk::gemv_nm24m_q4h_a8<A>(tiles.data(), sh.data(), c.zeros(), group, rows, cols, act, yh.data());
          REQUIRE(yh == y);  // fp16 scales widen exactly
          for (std::size_t k = 0; k < rows; ++k) {  // each row alone (no 4-row pass): the same value
            float one = -7.0f;
            sk::gemv_nm24m_q4_a8<A>(tiles.data() + k * sk::nm24m_q4_row_bytes(cols), c.sc.data() + k * ng,
                                    asym ? c.zr.data() + k * ng : nullptr, group, 1, cols, act, &one);
            REQUIRE(one == y[k]);
          }
          std::vector<unsigned char> w2(sk::nm24m_q8_workspace_bytes(cols)), w3(sk::nm24m_q8_workspace_bytes(cols));
          sk::gemv_nm24m_q4_f32<A>(tiles.data(), c.sc.data(), c.zeros(), group, rows, cols, x.data(), yf.data(), w2.data());
          REQUIRE(yf == y);
          sk::gemv_nm24m_q4h_f32<A>(tiles.data(), sh.data(), c.zeros(), group, rows, cols, x.data(), yhf.data(), w3.data(), 2);
          REQUIRE(yhf == y);
          for (std::size_t k = 0; k < rows; ++k) {  // activation-quantization error bound vs the float product
            INFO("row " << k << " got " << yf[k] << " exact " << exact[k] << " bound " << qerr[k]);
            REQUIRE(std::fabs(static_cast<double>(yf[k]) - exact[k]) <= qerr[k] * 1.0001 + 1e-5 * mag[k]);
          }
        });
      }
    }
  }
}

TEST_CASE("gemv_nm24m_q4_a8 is exact when every float product is exact (per-token int8 activations)",
          "[kernels][gemv][nm][int4]") {
  const std::size_t rows = 21, cols = 2048 + 128, group = 64, ng = cols / 2 / group;
  for (bool asym : {false, true}) {
    Case c(rows, cols, group, asym, 79);
    for (std::size_t i = 0; i < rows * ng; ++i) c.sc[i] = std::ldexp(1.0f, -static_cast<int>(i % 5));
    const auto qx = kt::rand_i8(cols, 80, -31, 31);  // keeps every partial sum below 2^24 ulps
    std::vector<unsigned char> work(sk::nm24m_q8_workspace_bytes(cols));
    const sk::NmMaskQ8 act = sk::NmMaskQ8::carve(work.data(), cols);
    sk::nm24m_q8_from_per_token(qx.data(), 0.125f, cols, act);
    std::vector<std::uint8_t> tiles(rows * sk::nm24m_q4_row_bytes(cols));
    sk::pack_nm24m_q4(c.codes.data(), c.pat.idx.data(), rows, cols, tiles.data());
    std::vector<float> expect(rows);
    for (std::size_t k = 0; k < rows; ++k) {
      double s = 0.0;
      for (std::size_t i = 0; i < cols / 2; ++i) s += static_cast<double>(c.w(k, i)) * 0.125 * qx[c.col(k, i)];
      expect[k] = static_cast<float>(s);
    }
    sparq_test::for_each_arch([&](auto arch) {
      using A = decltype(arch);
      INFO("arch " << A::name() << " asym " << asym);
      std::vector<float> y(rows);
      sk::gemv_nm24m_q4_a8<A>(tiles.data(), c.sc.data(), c.zeros(), group, rows, cols, act, y.data());
      REQUIRE(y == expect);
    });
  }
}
