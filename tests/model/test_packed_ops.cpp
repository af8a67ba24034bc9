// Packed LinearOps (Q8Linear, Q4Linear, NMLinear) versus the dense float op of their dequantized
// weights, the bit-identical int8 activation quantizer, pack_linear's grid recovery and rejections.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "sparq/io/llama2c.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/model/tokenizer.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/prune/magnitude.hpp"
#include "sparq/prune/nm.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/quant/quantizer.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::model;

namespace {

Matrix<float> random_matrix(std::size_t rows, std::size_t cols, unsigned seed, float sigma = 0.1f) {
  Matrix<float> m(rows, cols);
  const auto v = sparq_test::randn(rows * cols, seed, sigma);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

std::vector<float> random_x(std::size_t n, unsigned seed) {
  auto x = sparq_test::randn(n, seed, 1.0f);
  if (n > 3) x[n / 2] = 0.0f;
  return x;
}

/// |y − y_ref| ≤ rel·Σ|w·x| + abs per row, with Σ|w·x| computed in double.
void check_close(const Matrix<float>& w, const float* x, const float* y, const float* yref, double rel, double abs_tol,
                 const std::string& what) {
  for (std::size_t k = 0; k < w.rows(); ++k) {
    double mag = 0.0;
    for (std::size_t j = 0; j < w.cols(); ++j) mag += std::fabs(static_cast<double>(w(k, j)) * x[j]);
    INFO(what << " row " << k << ": " << y[k] << " vs " << yref[k]);
    REQUIRE(std::fabs(static_cast<double>(y[k]) - yref[k]) <= rel * mag + abs_tol);
  }
}

/// Runs op and the dense float op of its dequantized weights on x (x fake-quantized to int8 per
/// token first for A8 ops) and checks they agree to float rounding.
void check_vs_dense(const PackedLinear& op, unsigned seed, const std::string& what) {
  const Matrix<float> w = op.dequantize();
  const DenseLinear dense(w);
  const auto x = random_x(op.in_features(), seed);
  std::vector<float> xin = x;
  if (op.activations() == ActivationMode::a8) fake_quantize_token(x.data(), xin.data(), x.size(), 8);
  std::vector<float> y(op.out_features()), yref(op.out_features());
  op.gemv(x.data(), y.data());
  dense.gemv(xin.data(), yref.data());
  check_close(w, xin.data(), y.data(), yref.data(), 2e-5, 1e-6, what);
}

/// As check_vs_dense, for an op whose A32 kernel quantizes x to int8 per block of `block` inputs
/// (a = max|x_b|/127): |y − y_ref| ≤ Σ_j |w_kj|·a[b(j)]/2 plus float rounding. A8 ops: check_vs_dense.
void check_vs_dense_block_q8(const PackedLinear& op, unsigned seed, std::size_t block, const std::string& what) {
  if (op.activations() == ActivationMode::a8) {
    check_vs_dense(op, seed, what);
    return;
  }
  const Matrix<float> w = op.dequantize();
  const DenseLinear dense(w);
  const auto x = random_x(op.in_features(), seed);
  std::vector<float> y(op.out_features()), yref(op.out_features());
  op.gemv(x.data(), y.data());
  dense.gemv(x.data(), yref.data());
  for (std::size_t k = 0; k < w.rows(); ++k) {
    double bound = 0.0, mag = 0.0;
    for (std::size_t b0 = 0; b0 < w.cols(); b0 += block) {
      float amax = 0.0f;
      for (std::size_t j = b0; j < std::min(w.cols(), b0 + block); ++j) amax = std::max(amax, std::fabs(x[j]));
      for (std::size_t j = b0; j < std::min(w.cols(), b0 + block); ++j) {
        bound += std::fabs(static_cast<double>(w(k, j))) * amax / 127.0 / 2.0;
        mag += std::fabs(static_cast<double>(w(k, j)) * x[j]);
      }
    }
    INFO(what << " row " << k << ": " << y[k] << " vs " << yref[k] << " bound " << bound);
    REQUIRE(std::fabs(static_cast<double>(y[k]) - yref[k]) <= bound * 1.0001 + 2e-5 * mag + 1e-6);
  }
}

/// gemm over `tokens` rows equals gemv row by row, bit for bit.
void check_gemm_equals_gemv(const LinearOp& op, std::size_t tokens, unsigned seed) {
  Matrix<float> X(tokens, op.in_features()), Y(tokens, op.out_features());
  const auto v = sparq_test::randn(X.size(), seed, 1.0f);
  std::copy(v.begin(), v.end(), X.data());
  op.gemm(X.view(), Y.view());
  std::vector<float> y(op.out_features());
  for (std::size_t t = 0; t < tokens; ++t) {
    op.gemv(X.row(t), y.data());
    for (std::size_t k = 0; k < y.size(); ++k) REQUIRE(Y(t, k) == y[k]);
  }
}

}  // namespace

TEST_CASE("quantize_token_int8 is bit-identical to fake_quantize_token(8)", "[model][packed]") {
  std::vector<std::vector<float>> cases;
  for (std::size_t n : {1u, 7u, 64u, 172u, 1000u}) cases.push_back(sparq_test::randn(n, static_cast<unsigned>(n), 3.0f));
  cases.push_back(std::vector<float>(33, 0.0f));                 // all zero: Δ = 1e-5/127
  cases.push_back(std::vector<float>{1e-7f, -3e-6f, 2e-6f});     // below the 1e-5 floor
  cases.push_back(std::vector<float>{127.0f, 0.5f, 1.5f, -2.5f, 63.5f});  // exact ties at Δ = 1
  for (const auto& x : cases) {
    std::vector<std::int8_t> q(x.size());
    std::vector<float> ref(x.size());
    const float d = quantize_token_int8(x.data(), x.size(), q.data());
    fake_quantize_token(x.data(), ref.data(), x.size(), 8);
    for (std::size_t j = 0; j < x.size(); ++j) {
      REQUIRE(q[j] >= -127);
      REQUIRE(static_cast<float>(q[j]) * d == ref[j]);
    }
  }
}

TEST_CASE("quantize_token_int8 gives defined codes for infinite and NaN inputs", "[model][packed]") {
  // Found by the container fuzzer: a huge weight overflows an activation to inf; inf / inf was cast to
  // int8 (undefined). Now: Δ = inf, the infinite entries 0 (NaN quotient), the finite ones 0 (x / inf),
  // NaN entries 0 — defined, and checked under UBSan by the sanitizer pass.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x{1.0f, inf, -2.0f, -inf, nan, 3.0f};
  std::vector<std::int8_t> q(x.size(), 55);
  const float d = quantize_token_int8(x.data(), x.size(), q.data());
  REQUIRE(std::isinf(d));
  for (const auto c : q) REQUIRE(c == 0);
  std::vector<float> y{nan, 2.0f, -1.0f};  // NaN alone: ignored by the absmax, its code 0
  std::vector<std::int8_t> qy(y.size(), 55);
  const float dy = quantize_token_int8(y.data(), y.size(), qy.data());
  REQUIRE(dy == 2.0f / 127.0f);
  REQUIRE(qy[0] == 0);
  REQUIRE(qy[1] == 127);
  REQUIRE(qy[2] == -64);
}

TEST_CASE("Q8Linear matches the dense op of its dequantized weights (A32 and A8)", "[model][packed]") {
  unsigned seed = 1;
  for (std::size_t rows : {1u, 5u, 17u, 33u}) {
    for (std::size_t cols : {1u, 7u, 16u, 33u, 64u, 100u, 257u}) {
      const Matrix<float> w = random_matrix(rows, cols, seed++);
      const auto t = Quantizer<Symmetric, PerChannel, 8>{}.quantize(w.view());
      for (auto act : {ActivationMode::a32, ActivationMode::a8}) {
        const Q8Linear op = Q8Linear::from_quantized(t, act);
        REQUIRE(op.weight_bytes() == rows * cols + rows * 4);
        const Matrix<float> dq = Quantizer<Symmetric, PerChannel, 8>{}.dequantize(t);
        const Matrix<float> mine = op.dequantize();
        for (std::size_t i = 0; i < dq.size(); ++i) REQUIRE(mine.data()[i] == dq.data()[i]);
        check_vs_dense(op, seed++, "q8 " + std::to_string(rows) + "x" + std::to_string(cols));
        check_gemm_equals_gemv(op, 3, seed++);
      }
    }
  }
  // W8A8 output is exactly Δ·scale·(exact integer sum).
  const Matrix<float> w = random_matrix(9, 50, 99);
  const auto t = Quantizer<Symmetric, PerChannel, 8>{}.quantize(w.view());
  const Q8Linear op = Q8Linear::from_quantized(t, ActivationMode::a8);
  const auto x = random_x(50, 7);
  std::vector<std::int8_t> qx(50);
  const float d = quantize_token_int8(x.data(), 50, qx.data());
  std::vector<float> y(9);
  op.gemv(x.data(), y.data());
  for (std::size_t k = 0; k < 9; ++k) {
    std::int32_t acc = 0;
    for (std::size_t j = 0; j < 50; ++j) acc += static_cast<std::int32_t>(op.codes()[k * 50 + j]) * qx[j];
    REQUIRE(y[k] == d * op.scales()[k] * static_cast<float>(acc));
  }
}

TEST_CASE("Q8Linear rejects bad inputs", "[model][packed]") {
  REQUIRE_THROWS_AS(Q8Linear(2, 2, {1, 2, 3, -128}, {1.0f, 1.0f}, ActivationMode::a32), sparq::error);
  REQUIRE_THROWS_AS(Q8Linear(2, 2, {1, 2, 3}, {1.0f, 1.0f}, ActivationMode::a32), sparq::error);
  REQUIRE_THROWS_AS(Q8Linear(2, 2, {1, 2, 3, 4}, {1.0f, 0.0f}, ActivationMode::a32), sparq::error);
  const Matrix<float> w = random_matrix(4, 64, 3);
  const auto t4 = Quantizer<Symmetric, PerGroup<32>, 4>{}.quantize(w.view());
  REQUIRE_THROWS_AS(Q8Linear::from_quantized(t4, ActivationMode::a32), sparq::error);
}

TEST_CASE("Q4Linear matches the dense op of its dequantized weights (every G, sym/asym, tail groups)",
          "[model][packed]") {
  unsigned seed = 100;
  QuantOptions tail;
  tail.tail_group = true;
  auto run = [&](auto quantizer, std::size_t G) {
    for (std::size_t rows : {1u, 7u, 18u}) {
      for (std::size_t cols : std::vector<std::size_t>{G, 3 * G, G + 12, 172, 4 * G + 1}) {
        const Matrix<float> w = random_matrix(rows, cols, seed++);
        const auto t = quantizer.quantize(w.view());
        const Matrix<float> dq = quantizer.dequantize(t);
        for (auto act : {ActivationMode::a32, ActivationMode::a8}) {
          const Q4Linear op = Q4Linear::from_quantized(t, act);
          const std::size_t cp = (cols + G - 1) / G * G;
          REQUIRE(op.padded_cols() == cp);
          REQUIRE(op.weight_bytes() == rows * cp / 2 + rows * (cp / G) * (4 + (op.asymmetric() ? 1 : 0)));
          const Matrix<float> mine = op.dequantize();
          for (std::size_t i = 0; i < dq.size(); ++i) REQUIRE(mine.data()[i] == dq.data()[i]);
          const std::string what = "q4 g" + std::to_string(G) + " " + std::to_string(rows) + "x" + std::to_string(cols);
          if (act == ActivationMode::a8) {
            check_vs_dense(op, seed++, what);
          } else {
            // A32: the kernel rounds x to int8 per block of 32 (x ≈ a_b·q): |Δy| ≤ Σ|W|·a_b/2.
            const auto x = random_x(cols, seed++);
            std::vector<float> xp(cp, 0.0f);
            std::copy(x.begin(), x.end(), xp.begin());
            std::vector<float> y(rows), yref(rows);
            op.gemv(x.data(), y.data());
            DenseLinear(dq).gemv(x.data(), yref.data());
            for (std::size_t k = 0; k < rows; ++k) {
              double bound = 0.0, mag = 0.0;
              for (std::size_t b = 0; b < cp / 32; ++b) {
                float amax = 0.0f;
                for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xp[b * 32 + j]));
                for (std::size_t j = b * 32; j < std::min(cols, b * 32 + 32); ++j) {
                  bound += std::fabs(dq(k, j)) * amax / 127.0 / 2.0;
                  mag += std::fabs(static_cast<double>(dq(k, j)) * x[j]);
                }
              }
              INFO(what << " A32 row " << k);
              REQUIRE(std::fabs(static_cast<double>(y[k]) - yref[k]) <= bound + 2e-5 * mag + 1e-6);
            }
          }
          check_gemm_equals_gemv(op, 3, seed++);
        }
      }
    }
  };
  run(Quantizer<Symmetric, PerGroup<32>, 4>(tail), 32);
  run(Quantizer<Asymmetric, PerGroup<32>, 4>(tail), 32);
  run(Quantizer<Symmetric, PerGroup<64>, 4>(tail), 64);
  run(Quantizer<Asymmetric, PerGroup<64>, 4>(tail), 64);
  run(Quantizer<Symmetric, PerGroup<128>, 4>(tail), 128);
  run(Quantizer<Asymmetric, PerGroup<128>, 4>(tail), 128);
}

TEST_CASE("Q4Linear runs per-channel int4 (scales repeated per group) and pack_linear packs it (group_size 0)",
          "[model][packed]") {
  unsigned seed = 300;
  for (std::size_t cols : {64u, 100u, 172u, 300u}) {
    for (bool asym : {false, true}) {
      const Matrix<float> w = random_matrix(9, cols, seed++);
      const auto t = asym ? Quantizer<Asymmetric, PerChannel, 4>{}.quantize(w.view()) : Quantizer<Symmetric, PerChannel, 4>{}.quantize(w.view());
      const Matrix<float> dq = asym ? Quantizer<Asymmetric, PerChannel, 4>{}.dequantize(t) : Quantizer<Symmetric, PerChannel, 4>{}.dequantize(t);
      for (auto act : {ActivationMode::a32, ActivationMode::a8}) {
        const Q4Linear op = Q4Linear::from_quantized(t, act);
        // G minimizes codes + scales (+ zeros) bytes per row, padding included
        std::size_t best = ~std::size_t{0};
        for (std::size_t g : {32u, 64u, 128u}) {
          const std::size_t cp = (cols + g - 1) / g * g;
          best = std::min(best, cp / 2 + cp / g * (4 + (asym ? 1 : 0)));
        }
        REQUIRE(op.weight_bytes() == 9 * best);
        if (op.padded_cols() / op.group_size() > 1) {
          REQUIRE(op.per_channel());
          REQUIRE(op.describe().find("per-channel") != std::string::npos);
        }
        const Matrix<float> mine = op.dequantize();
        for (std::size_t i = 0; i < dq.size(); ++i) REQUIRE(mine.data()[i] == dq.data()[i]);
        if (act == ActivationMode::a8) check_vs_dense(op, seed++, "q4 per-channel " + std::to_string(cols));
        PackOptions o;
        o.format = PackFormat::w4;
        o.group_size = 0;
        o.asymmetric = asym;
        const auto packed = pack_linear(dq.view(), o, act);
        const Matrix<float> back = packed->dequantize();
        for (std::size_t i = 0; i < dq.size(); ++i)
          REQUIRE(std::fabs(back.data()[i] - dq.data()[i]) <= 4e-7f * std::fabs(dq.data()[i]) + 1e-12f);
      }
    }
  }
  // a g32 matrix is not per-channel
  const Matrix<float> w = random_matrix(3, 96, 5);
  REQUIRE_FALSE(Q4Linear::from_quantized(Quantizer<Symmetric, PerGroup<32>, 4>{}.quantize(w.view()), ActivationMode::a32).per_channel());
}

TEST_CASE("Q4Linear rejects bad inputs", "[model][packed]") {
  REQUIRE_THROWS_AS(Q4Linear(1, 48, 48, std::vector<std::uint8_t>(24, 0x88), {1.0f}, {}, ActivationMode::a32), sparq::error);
  REQUIRE_THROWS_AS(Q4Linear(1, 32, 32, std::vector<std::uint8_t>(15, 0x88), {1.0f}, {}, ActivationMode::a32), sparq::error);
  REQUIRE_THROWS_AS(Q4Linear(1, 32, 32, std::vector<std::uint8_t>(16, 0x88), {1.0f}, {16}, ActivationMode::a32), sparq::error);
  // padding (columns 20..31) must hold the zero-weight code 8
  std::vector<std::uint8_t> codes(16, 0x88);
  codes[15] = 0x18;
  REQUIRE_THROWS_AS(Q4Linear(1, 20, 32, codes, {1.0f}, {}, ActivationMode::a32), sparq::error);
  codes[15] = 0x88;
  REQUIRE_NOTHROW(Q4Linear(1, 20, 32, codes, {1.0f}, {}, ActivationMode::a32));
  const Matrix<float> w = random_matrix(4, 64, 3);
  const auto t8 = Quantizer<Symmetric, PerChannel, 8>{}.quantize(w.view());
  REQUIRE_THROWS_AS(Q4Linear::from_quantized(t8, ActivationMode::a32), sparq::error);
}

namespace {

/// A random N:M-pruned matrix (magnitude within each group of M; a tail group shorter than M keeps
/// at most N), with a few already-zero weights.
Matrix<float> random_nm(std::size_t rows, std::size_t cols, std::size_t n, std::size_t m, unsigned seed) {
  Matrix<float> w = random_matrix(rows, cols, seed);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t g0 = 0; g0 < cols; g0 += m) {
      const std::size_t len = std::min(m, cols - g0);
      std::vector<std::size_t> ord(len);
      for (std::size_t i = 0; i < len; ++i) ord[i] = g0 + i;
      std::sort(ord.begin(), ord.end(), [&](auto a, auto b) { return std::fabs(w(r, a)) > std::fabs(w(r, b)); });
      for (std::size_t i = n; i < len; ++i) w(r, ord[i]) = 0.0f;
    }
    if (r % 3 == 1) w(r, 0) = 0.0f;
  }
  return w;
}

}  // namespace

namespace {

/// Fake-quantizes the kept values of an N:M matrix per group of G kept values (int4, sym/asym,
/// tail group allowed) and writes them back in place: the grid NMLinear's int4 values live on.
Matrix<float> fake_nm_w4(const Matrix<float>& w, std::size_t n, std::size_t m, std::size_t G, bool asym) {
  const std::size_t rows = w.rows(), cols = w.cols(), cm = (cols + m - 1) / m * m;
  Matrix<float> padded(rows, cm, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) std::copy(w.row(r), w.row(r) + cols, padded.row(r));
  Matrix<float> fq = padded;
  QuantOptions qo;
  qo.tail_group = true;
  auto fake = [&](const Matrix<float>& kept) -> Matrix<float> {
    switch (G) {
      case 32: return asym ? Quantizer<Asymmetric, PerGroup<32>, 4>(qo).fake_quantize(kept.view())
                           : Quantizer<Symmetric, PerGroup<32>, 4>(qo).fake_quantize(kept.view());
      case 64: return asym ? Quantizer<Asymmetric, PerGroup<64>, 4>(qo).fake_quantize(kept.view())
                           : Quantizer<Symmetric, PerGroup<64>, 4>(qo).fake_quantize(kept.view());
      default: return asym ? Quantizer<Asymmetric, PerGroup<128>, 4>(qo).fake_quantize(kept.view())
                           : Quantizer<Symmetric, PerGroup<128>, 4>(qo).fake_quantize(kept.view());
    }
  };
  auto apply = [&](auto comp) {
    Matrix<float> kept(rows, comp.kept_per_row());
    for (std::size_t r = 0; r < rows; ++r) std::copy(comp.row_values(r), comp.row_values(r) + comp.kept_per_row(), kept.row(r));
    const Matrix<float> kq = fake(kept);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < comp.kept_per_row(); ++i) fq(r, m * (i / n) + comp.index(r, i)) = kq(r, i);
  };
  if (m == 4) apply(NMCompressed<2, 4, float>::from_dense(padded.view()));
  else apply(NMCompressed<4, 8, float>::from_dense(padded.view()));
  Matrix<float> out(rows, cols);
  for (std::size_t r = 0; r < rows; ++r) std::copy(fq.row(r), fq.row(r) + cols, out.row(r));
  return out;
}

}  // namespace

TEST_CASE("NMLinear (2:4, 4:8; f32, int8, int4) matches the dense op of its dequantized weights", "[model][packed]") {
  unsigned seed = 500;
  for (auto [n, m] : {std::pair<std::size_t, std::size_t>{2, 4}, {4, 8}}) {
    for (std::size_t rows : {1u, 5u, 19u}) {
      for (std::size_t cols : {8u, 64u, 100u, 172u, 260u}) {
        const Matrix<float> w = random_nm(rows, cols, n, m, seed++);
        for (auto act : {ActivationMode::a32, ActivationMode::a8}) {
          const std::string what = std::to_string(n) + ":" + std::to_string(m) + " " + std::to_string(rows) + "x" +
                                   std::to_string(cols);
          // f32 kept values: exact.
          PackOptions o;
          o.nm_n = n;
          o.nm_m = m;
          o.format = PackFormat::nm_f32;
          const auto f = pack_linear(w.view(), o, act);
          const Matrix<float> back = f->dequantize();
          for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(back.data()[i] == w.data()[i]);
          check_vs_dense(*f, seed++, what + " f32");
          check_gemm_equals_gemv(*f, 2, seed++);
          // int8 kept values: fake-quantize the kept values per row, then pack.
          {
            Matrix<float> fq = w;
            for (std::size_t r = 0; r < rows; ++r) {
              float a = 0.0f;
              for (std::size_t c = 0; c < cols; ++c) a = std::max(a, std::fabs(w(r, c)));
              const float s = std::max(a, 1e-5f) / 127.0f;
              for (std::size_t c = 0; c < cols; ++c) fq(r, c) = s * std::clamp(std::nearbyint(w(r, c) * (1.0f / s)), -127.0f, 127.0f);
            }
            o.format = PackFormat::nm_w8;
            const auto q = pack_linear(fq.view(), o, act);
            const Matrix<float> qb = q->dequantize();
            for (std::size_t i = 0; i < fq.size(); ++i) REQUIRE(std::fabs(qb.data()[i] - fq.data()[i]) <= 4e-7f * std::fabs(fq.data()[i]) + 1e-12f);
            check_vs_dense(*q, seed++, what + " int8");
          }
          // int4 kept values, G = 32 kept values, sym and asym: through NMCompressed + QuantizedTensor.
          for (bool asym : {false, true}) {
            o.format = PackFormat::nm_w4;
            o.asymmetric = asym;
            o.group_size = 32;
            const Matrix<float> fql = fake_nm_w4(w, n, m, 32, asym);
            const auto q = pack_linear(fql.view(), o, act);
            const Matrix<float> qb = q->dequantize();
            for (std::size_t i = 0; i < fql.size(); ++i) REQUIRE(std::fabs(qb.data()[i] - fql.data()[i]) <= 4e-7f * std::fabs(fql.data()[i]) + 1e-12f);
            // 2:4 int4 runs the W4A8 mask kernel (A32: int8 activations per block of 64 inputs)
            if (n == 2) check_vs_dense_block_q8(*q, seed++, 64, what + (asym ? " int4 asym" : " int4 sym"));
            else check_vs_dense(*q, seed++, what + (asym ? " int4 asym" : " int4 sym"));
            check_gemm_equals_gemv(*q, 2, seed++);
            o.asymmetric = false;
          }
        }
      }
    }
  }
}

TEST_CASE("NMLinear int4 with G = 64 and 128 kept values (2:4 and 4:8, sym and asym)", "[model][packed]") {
  unsigned seed = 900;
  for (std::size_t G : {64u, 128u}) {
    for (auto [n, m] : {std::pair<std::size_t, std::size_t>{2, 4}, {4, 8}}) {
      for (std::size_t cols : {256u, 600u, 172u}) {
        if (cols % m != 0) continue;
        for (bool asym : {false, true}) {
          const Matrix<float> w = random_nm(7, cols, n, m, seed++);
          const Matrix<float> fq = fake_nm_w4(w, n, m, G, asym);
          PackOptions o;
          o.format = PackFormat::nm_w4;
          o.nm_n = n;
          o.nm_m = m;
          o.group_size = G;
          o.asymmetric = asym;
          for (auto act : {ActivationMode::a32, ActivationMode::a8}) {
            const auto q = pack_linear(fq.view(), o, act);
            const auto& nm = dynamic_cast<const NMLinear&>(*q);
            REQUIRE(nm.kept_per_row() % G == 0);
            REQUIRE(nm.values().group == G);
            const Matrix<float> qb = q->dequantize();
            for (std::size_t i = 0; i < fq.size(); ++i)
              REQUIRE(std::fabs(qb.data()[i] - fq.data()[i]) <= 4e-7f * std::fabs(fq.data()[i]) + 1e-12f);
            if (n == 2) check_vs_dense_block_q8(*q, seed++, 64, "nm int4 g" + std::to_string(G) + " " + std::to_string(cols));
            else check_vs_dense(*q, seed++, "nm int4 g" + std::to_string(G) + " " + std::to_string(cols));
          }
        }
      }
    }
  }
}

TEST_CASE("NMLinear and pack_linear reject broken N:M structure and bad arrays", "[model][packed]") {
  Matrix<float> w = random_nm(4, 16, 2, 4, 9);
  PackOptions o;
  o.format = PackFormat::nm_f32;
  REQUIRE_NOTHROW(pack_linear(w.view(), o, ActivationMode::a32));
  w(2, 5) = w(2, 5) == 0.0f ? 0.25f : w(2, 5);
  w(2, 4) = 0.5f;
  w(2, 6) = 0.75f;  // group 1 of row 2 now has 3 non-zeros
  try {
    (void)pack_linear(w.view(), o, ActivationMode::a32, "unit");
    FAIL("expected sparq::error");
  } catch (const sparq::error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("unit") != std::string::npos);
    CHECK(msg.find("row 2") != std::string::npos);
    CHECK(msg.find("group 1") != std::string::npos);
  }
  // indices not increasing within a group
  NMValues v;
  v.f32 = {1.0f, 2.0f};
  REQUIRE_THROWS_AS(NMLinear(1, 4, 2, 4, v, {0x01}, ActivationMode::a32), sparq::error);  // positions 1, 0
  REQUIRE_NOTHROW(NMLinear(1, 4, 2, 4, v, {0x04}, ActivationMode::a32));                   // positions 0, 1
  // a non-zero kept value in the padding columns
  REQUIRE_THROWS_AS(NMLinear(1, 2, 2, 4, v, {0x0e}, ActivationMode::a32), sparq::error);  // positions 2, 3 ≥ cols
  o.nm_n = 3;
  REQUIRE_THROWS_AS(pack_linear(w.view(), o, ActivationMode::a32), sparq::error);
}

TEST_CASE("BitmaskLinear matches the dense op of its weights and rejects inconsistent arrays", "[model][packed]") {
  unsigned seed = 700;
  for (std::size_t rows : {1u, 6u, 17u}) {
    for (std::size_t cols : {5u, 16u, 37u, 100u, 300u}) {
      for (int keep_every : {2, 10}) {
        Matrix<float> w = random_matrix(rows, cols, seed++);
        for (std::size_t i = 0; i < w.size(); ++i)
          if ((i * 7919 + seed) % static_cast<std::size_t>(keep_every) != 0) w.data()[i] = 0.0f;
        for (auto act : {ActivationMode::a32, ActivationMode::a8}) {
          PackOptions o;
          o.format = PackFormat::bitmask_f32;
          const auto op = pack_linear(w.view(), o, act);
          const Matrix<float> back = op->dequantize();
          for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(back.data()[i] == w.data()[i]);
          check_vs_dense(*op, seed++, "bitmask " + std::to_string(rows) + "x" + std::to_string(cols));
        }
      }
    }
  }
  REQUIRE_THROWS_AS(BitmaskLinear(1, 8, {0x03}, {1.0f}, {0, 1}, ActivationMode::a32), sparq::error);       // 2 bits, 1 value
  REQUIRE_THROWS_AS(BitmaskLinear(1, 4, {0x11}, {1.0f, 2.0f}, {0, 2}, ActivationMode::a32), sparq::error);  // bit past cols
  REQUIRE_THROWS_AS(BitmaskLinear(2, 8, {0x01, 0x01}, {1.0f, 2.0f}, {0, 2, 2}, ActivationMode::a32), sparq::error);
  REQUIRE_NOTHROW(BitmaskLinear(2, 8, {0x01, 0x01}, {1.0f, 2.0f}, {0, 1, 2}, ActivationMode::a32));
}

TEST_CASE("pack_linear recovers grids whose extreme code is not qmax and rejects off-grid weights", "[model][packed]") {
  // W4 symmetric g32 with |level| <= 5 in every group (e.g. GPTQ): MinMax would guess absmax/7.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> lev(-5, 5);
  Matrix<float> w(6, 64);
  for (std::size_t r = 0; r < 6; ++r)
    for (std::size_t c = 0; c < 64; ++c) w(r, c) = 0.013f * static_cast<float>(r + 1) * static_cast<float>(lev(rng));
  for (std::size_t r = 0; r < 6; ++r) w(r, 3) = 0.013f * static_cast<float>(r + 1) * 5.0f;  // absmax at level 5
  PackOptions o;
  o.format = PackFormat::w4;
  const auto op = pack_linear(w.view(), o, ActivationMode::a32);
  const Matrix<float> back = op->dequantize();
  for (std::size_t i = 0; i < w.size(); ++i) REQUIRE(std::fabs(back.data()[i] - w.data()[i]) <= 4e-7f * std::fabs(w.data()[i]) + 1e-9f);
  // asymmetric with codes in a sub-range
  Matrix<float> wa(3, 32);
  std::uniform_int_distribution<int> ua(-3, 9);
  for (std::size_t i = 0; i < wa.size(); ++i) wa.data()[i] = 0.02f * static_cast<float>(ua(rng));
  o.asymmetric = true;
  const auto opa = pack_linear(wa.view(), o, ActivationMode::a32);
  const Matrix<float> ba = opa->dequantize();
  for (std::size_t i = 0; i < wa.size(); ++i) REQUIRE(std::fabs(ba.data()[i] - wa.data()[i]) <= 4e-7f * std::fabs(wa.data()[i]) + 1e-9f);
  // off grid: a float matrix that was never quantized
  o.asymmetric = false;
  const Matrix<float> raw = random_matrix(4, 64, 77);
  REQUIRE_THROWS_AS(pack_linear(raw.view(), o, ActivationMode::a32), sparq::error);
  // W8: one weight moved by a third of a step
  Matrix<float> fq = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(random_matrix(5, 40, 78).view());
  o.format = PackFormat::w8;
  REQUIRE_NOTHROW(pack_linear(fq.view(), o, ActivationMode::a8));
  float a = 0.0f;
  std::size_t amax_col = 0;
  for (std::size_t c = 0; c < 40; ++c)
    if (std::fabs(fq(3, c)) > a) a = std::fabs(fq(3, amax_col = c));
  const std::size_t moved = amax_col == 17 ? 18 : 17;
  fq(3, moved) += a / 127.0f / 3.0f;
  try {
    (void)pack_linear(fq.view(), o, ActivationMode::a8, "blk");
    FAIL("expected sparq::error");
  } catch (const sparq::error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("row 3") != std::string::npos);
    CHECK(msg.find("column " + std::to_string(moved)) != std::string::npos);
  }
  o.group_size = 48;
  o.format = PackFormat::w4;
  REQUIRE_THROWS_AS(pack_linear(fq.view(), o, ActivationMode::a8), sparq::error);
}

TEST_CASE("NMLinear 2:4+W4 (A32 and W4A8) on stories260K: perplexity within 0.5 % of the fake-quantized model",
          "[model][packed][real]") {
  const auto mpath = sparq_test::data_path("models/stories260K.bin");
  const auto tpath = sparq_test::data_path("models/tok512.bin");
  const auto text = sparq_test::data_path("text/tinystories_valid_head.txt");
  if (mpath.empty() || tpath.empty() || text.empty()) return;
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
  const std::size_t ntok = 4096;
#else
  const std::size_t ntok = 1024;  // -O1 + ASan: 2 windows, same checks
#endif
  const auto weights = io::read_llama2c(mpath);
  const auto tok = Tokenizer::read_llama2c(tpath, weights.config.vocab_size);
  const auto stream = document_token_stream_file(text, tok, ntok);
  PerplexityOptions po;
  po.max_tokens = ntok;
  for (int bits : {0, 8}) {       // 0: A32 (the kernel rounds x per 64-block), 8: int8 per-token activations
    for (std::size_t G : {32u, 128u}) {
      Llama m{LlamaWeights(weights)};
      for (std::size_t b = 0; b < m.config().n_layers; ++b) {  // 2:4 magnitude, then W4 per G kept values
        for (Linear l : all_linears) {
          Matrix<float>& w = m.block_weights(b).linear(l);
          (void)Pruner<Magnitude, NM<2, 4>>{}.prune(w.view());
          w = fake_nm_w4(w, 2, 4, G, false);
        }
        m.refresh_block(b);
      }
      if (bits) {
        for (std::size_t b = 0; b < m.config().n_layers; ++b)
          for (Linear l : all_linears) m.set_linear(b, l, std::make_unique<InputQuantLinear>(m.take_linear(b, l), bits));
      }
      const auto fake = perplexity(m, stream, po);
      PackOptions o;
      o.format = PackFormat::nm_w4;
      o.nm_n = 2;
      o.nm_m = 4;
      o.group_size = G;
      const PackReport rep = pack_model(m, o);
      for (const auto& e : rep.linears) REQUIRE(e.format.find(bits ? "A8" : "A32") != std::string::npos);
      REQUIRE(dynamic_cast<const NMLinear*>(&m.linear(0, Linear::w2)) != nullptr);
      const auto t0 = std::chrono::steady_clock::now();
      const auto real = perplexity(m, stream, po);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double rel = std::fabs(real.perplexity - fake.perplexity) / fake.perplexity;
      WARN("2:4+W4 g" << G << (bits ? " A8" : " A32") << ": ppl fake " << fake.perplexity << ", NMLinear "
                      << real.perplexity << " (rel diff " << 100.0 * rel << " %), " << real.scored_tokens
                      << " tokens in " << secs << " s");
      REQUIRE(real.scored_tokens == fake.scored_tokens);
      REQUIRE(real.perplexity > 1.0);
      REQUIRE(rel < 0.005);
    }
  }
}
