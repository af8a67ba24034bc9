// SparseGPT: reconstruction error ordering, exactness at s = 0, counts, N:M, dead/singular Hessians, joint RTN.
#include <algorithm>
#include <cmath>
#include <vector>

#include "sparq/prune/sparse_gpt.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {

Matrix<float> rand_matrix(std::size_t r, std::size_t c, unsigned seed, float sigma = 1.0f) {
  Matrix<float> m(r, c);
  const auto v = sparq_test::randn(r * c, seed, sigma);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

// Generator of correlated, outlier-heavy activations: X = Z * (I + 0.6 * G / sqrt(cin)) with Z, G
// standard normal (T x cin, cin x cin): every channel mixes many others (correlations); then
// channels 0, 7, 19 and 33 are scaled by 12 (the outlier channels of LLM activations).
Matrix<float> correlated_tokens(std::size_t T, std::size_t cin, unsigned seed) {
  const Matrix<float> z = rand_matrix(T, cin, seed), g = rand_matrix(cin, cin, seed + 1);
  Matrix<float> x(T, cin);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < cin; ++j) {
      double s = z(t, j);
      for (std::size_t i = 0; i < cin; ++i) s += 0.6 * z(t, i) * g(i, j) / std::sqrt(double(cin));
      x(t, j) = float(s);
    }
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j : {0u, 7u, 19u, 33u})
      if (j < cin) x(t, j) *= 12.0f;
  return x;
}

double recon_error(const Matrix<float>& x, const Matrix<float>& w, const Matrix<float>& wh) {
  double e = 0;
  for (std::size_t t = 0; t < x.rows(); ++t)
    for (std::size_t k = 0; k < w.rows(); ++k) {
      double d = 0;
      for (std::size_t j = 0; j < w.cols(); ++j) d += double(x(t, j)) * (double(w(k, j)) - wh(k, j));
      e += d * d;
    }
  return std::sqrt(e);
}

}  // namespace

TEST_CASE("SparseGPT < Wanda < Magnitude output error at 50% on correlated outlier inputs", "[prune][sparsegpt]") {
  const std::size_t cout = 48, cin = 96, T = 400;
  const Matrix<float> x = correlated_tokens(T, cin, 1);
  const Matrix<float> w = rand_matrix(cout, cin, 3);
  ColumnSquareSum sq(cin);
  sq.add(x.view());
  HessianAccumulator ha(cin);
  ha.add(x.view());
  PruneOptions o;
  o.sparsity = 0.5;
  o.block_size = 32;
  Matrix<float> wm = w, ww = w, ws = w;
  Pruner<Magnitude, Unstructured>(o).prune(wm.view());
  Pruner<Wanda, Unstructured>(o).prune(ww.view(), sq);
  const SparseGptReport rep = Pruner<SparseGPT, Unstructured>(o).run(ws.view(), ha.hessian());
  const double em = recon_error(x, w, wm), ew = recon_error(x, w, ww), es = recon_error(x, w, ws);
  INFO("magnitude " << em << " wanda " << ew << " sparsegpt " << es);
  REQUIRE(es < ew);
  REQUIRE(ew < em);
  REQUIRE(!rep.identity_fallback);
  REQUIRE(rep.loss > 0);
  // Exactly floor(cout*B*s) zeros per block (B = 32 divides 96): 50% overall; pruned = exact 0.
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < ws.size(); ++i) {
    zeros += ws.data()[i] == 0.0f;
    if (rep.mask.data()[i] == 0) REQUIRE(ws.data()[i] == 0.0f);
  }
  REQUIRE(zeros == cout * cin / 2);
  // The GEMM Hessian matches the accumulator's.
  const Matrix<float> hg = hessian_from_tokens(x.view(), 1), hr = ha.hessian();
  for (std::size_t i = 0; i < hg.size(); ++i) REQUIRE(std::abs(hg.data()[i] - hr.data()[i]) <= 1e-4f * (1 + std::abs(hr.data()[i])));
}

TEST_CASE("SparseGPT at sparsity 0 leaves W unchanged (zero error); ragged blocks count exactly", "[prune][sparsegpt]") {
  const std::size_t cout = 20, cin = 70, T = 150;
  const Matrix<float> x = correlated_tokens(T, cin, 5);
  const Matrix<float> w = rand_matrix(cout, cin, 6);
  const Matrix<float> h = hessian_from_tokens(x.view(), 3);
  PruneOptions o;
  o.sparsity = 0.0;
  o.block_size = 16;
  Matrix<float> w0 = w;
  const SparseGptReport r0 = Pruner<SparseGPT, Unstructured>(o).run(w0.view(), h);
  REQUIRE(w0.storage() == w.storage());
  REQUIRE(r0.loss == 0.0);
  REQUIRE(recon_error(x, w, w0) == 0.0);
  for (double s : {0.3, 0.5, 0.7}) {
    o.sparsity = s;
    Matrix<float> ws = w;
    const PruneMask m = Pruner<SparseGPT, Unstructured>(o).prune(ws.view(), h);
    std::size_t expect = 0;
    for (std::size_t i1 = 0; i1 < cin; i1 += 16) expect += static_cast<std::size_t>(std::floor(s * double(cout * std::min<std::size_t>(16, cin - i1))));
    REQUIRE(std::size_t(std::count(m.data(), m.data() + m.size(), 0)) == expect);
    for (std::size_t i = 0; i < ws.size(); ++i)
      if (m.data()[i] == 0) REQUIRE(ws.data()[i] == 0.0f);
  }
  // Reference-compat inclusive threshold prunes one more per block (no ties in random data).
  o.sparsity = 0.5;
  o.inclusive_threshold = true;
  Matrix<float> wi = w;
  const PruneMask mi = Pruner<SparseGPT, Unstructured>(o).prune(wi.view(), h);
  REQUIRE(std::size_t(std::count(mi.data(), mi.data() + mi.size(), 0)) == cout * cin / 2 + 5);
}

TEST_CASE("SparseGPT N:M chooses valid groups and beats Wanda N:M", "[prune][sparsegpt]") {
  const std::size_t cout = 32, cin = 64, T = 300;
  const Matrix<float> x = correlated_tokens(T, cin, 7);
  const Matrix<float> w = rand_matrix(cout, cin, 8);
  const Matrix<float> h = hessian_from_tokens(x.view(), 1);
  ColumnSquareSum sq(cin);
  sq.add(x.view());
  PruneOptions o;
  o.block_size = 16;
  Matrix<float> ws = w, ww = w;
  const PruneMask m = Pruner<SparseGPT, NM<2, 4>>(o).prune(ws.view(), h);
  Pruner<Wanda, NM<2, 4>>(o).prune(ww.view(), sq);
  for (std::size_t r = 0; r < cout; ++r)
    for (std::size_t g = 0; g < cin; g += 4) {
      REQUIRE(m(r, g) + m(r, g + 1) + m(r, g + 2) + m(r, g + 3) == 2);
      for (std::size_t i = 0; i < 4; ++i)
        if (!m(r, g + i)) REQUIRE(ws(r, g + i) == 0.0f);
    }
  REQUIRE(recon_error(x, w, ws) < recon_error(x, w, ww));
  Matrix<float> w8 = w;
  const PruneMask m8 = Pruner<SparseGPT, NM<4, 8>>(o).prune(w8.view(), h);
  for (std::size_t r = 0; r < cout; ++r)
    for (std::size_t g = 0; g < cin; g += 8) {
      int kept = 0;
      for (std::size_t i = 0; i < 8; ++i) kept += m8(r, g + i);
      REQUIRE(kept == 4);
    }
  o.block_size = 10;
  REQUIRE_THROWS_WITH((Pruner<SparseGPT, NM<2, 4>>(o).prune(ws.view(), h)), Catch::Contains("block_size = 10"));
}

TEST_CASE("SparseGPT handles dead inputs, singular and indefinite Hessians", "[prune][sparsegpt]") {
  const std::size_t cout = 8, cin = 24, T = 60;
  Matrix<float> x = correlated_tokens(T, cin, 9);
  for (std::size_t t = 0; t < T; ++t) x(t, 5) = 0.0f;  // dead input channel
  const Matrix<float> w = rand_matrix(cout, cin, 10);
  Matrix<float> wd = w;
  const SparseGptReport rd = Pruner<SparseGPT, Unstructured>().run(wd.view(), hessian_from_tokens(x.view(), 1));
  REQUIRE(rd.dead_inputs == 1);
  REQUIRE(!rd.identity_fallback);
  for (std::size_t r = 0; r < cout; ++r) {
    REQUIRE(wd(r, 5) == 0.0f);
    for (std::size_t c = 0; c < cin; ++c) REQUIRE(std::isfinite(wd(r, c)));
  }
  // Rank-1 Hessian v v^T with power-of-two entries: the undamped factorisation fails exactly,
  // the retry with 0.01 * mean(diag) succeeds.
  Matrix<float> h1(cin, cin);
  for (std::size_t i = 0; i < cin; ++i)
    for (std::size_t j = 0; j < cin; ++j) h1(i, j) = std::ldexp(1.0f, int(i % 4) + int(j % 4));
  PruneOptions o;
  o.dampening = 0.0;
  Matrix<float> w1 = w;
  const SparseGptReport r1 = Pruner<SparseGPT, Unstructured>(o).run(w1.view(), h1);
  REQUIRE(r1.cholesky_retries == 1);
  REQUIRE(!r1.identity_fallback);
  REQUIRE(r1.damping > 0.0);
  // Negative definite: every retry fails -> identity (magnitude within the pooled block).
  Matrix<float> hn(cin, cin);
  for (std::size_t i = 0; i < cin; ++i) hn(i, i) = -1.0f;
  Matrix<float> wn = w, wmag = w;
  const SparseGptReport rn = Pruner<SparseGPT, Unstructured>().run(wn.view(), hn);
  REQUIRE(rn.identity_fallback);
  PruneOptions layer;
  layer.sparsity = 0.5;
  // With U = I there are no updates: pooled block magnitude = one-threshold magnitude (one block).
  for (std::size_t i = 0; i < w.size(); ++i) REQUIRE((wn.data()[i] == 0.0f) == (rn.mask.data()[i] == 0));
  for (std::size_t i = 0; i < w.size(); ++i)
    if (rn.mask.data()[i]) REQUIRE(wn.data()[i] == w.data()[i]);
  const PruneMask mm = Pruner<Magnitude, UnstructuredLayer>(layer).mask(w.view());
  std::size_t diff = 0;
  for (std::size_t i = 0; i < w.size(); ++i) diff += mm.data()[i] != rn.mask.data()[i];
  REQUIRE(diff <= 1);  // the layer threshold is inclusive: one extra pruned weight
  // Bad statistics.
  Matrix<float> hnan = hessian_from_tokens(x.view(), 1);
  hnan(3, 2) = std::nanf("");
  REQUIRE_THROWS_WITH((Pruner<SparseGPT, Unstructured>().prune(wmag.view(), hnan)), Catch::Contains("non-finite"));
  const Matrix<float> hsmall(cin - 1, cin - 1, 1.0f);
  REQUIRE_THROWS_WITH((Pruner<SparseGPT, Unstructured>().prune(wmag.view(), hsmall)),
                      Catch::Contains("23x23") && Catch::Contains("24x24"));
}

TEST_CASE("SparseGPT joint prune + 4-bit RTN: zeros exact, values on the row grid, lower error", "[prune][sparsegpt][quant]") {
  const std::size_t cout = 24, cin = 64, T = 300;
  const Matrix<float> x = correlated_tokens(T, cin, 11);
  const Matrix<float> w = rand_matrix(cout, cin, 12);
  const Matrix<float> h = hessian_from_tokens(x.view(), 1);
  PruneOptions o;
  o.block_size = 32;
  for (bool sym : {false, true}) {
    RowMinMaxQuantizer q(4, sym);
    Matrix<float> wj = w;
    const PruneMask m = Pruner<SparseGPT, Unstructured>(o).prune(wj.view(), h, q);
    for (std::size_t r = 0; r < cout; ++r)
      for (std::size_t c = 0; c < cin; ++c) {
        if (!m(r, c)) REQUIRE(wj(r, c) == 0.0f);
        const float code = wj(r, c) / q.scales()[r] + q.zeros()[r];
        REQUIRE(std::abs(code - std::nearbyint(code)) < 1e-3f);
        REQUIRE(code > -0.5f);
        REQUIRE(code < 15.5f);
      }
    // Prune (SparseGPT) then quantize each weight afterwards: the joint sweep compensates better.
    Matrix<float> wp = w;
    Pruner<SparseGPT, Unstructured>(o).prune(wp.view(), h);
    RowMinMaxQuantizer q2(4, sym);
    q2.fit(w.view());
    for (std::size_t r = 0; r < cout; ++r)
      for (std::size_t c = 0; c < cin; ++c) wp(r, c) = q2.quantize(wp(r, c), r);
    REQUIRE(recon_error(x, w, wj) < recon_error(x, w, wp));
  }
}
