// Activation-aware factorization, rank rules, LowRank / LowRankCompensation stages, stored factors and the runtime ops.
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "lowrank_test_util.hpp"
#include "sparq/core/error.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/lowrank/jacobi_svd.hpp"
#include "sparq/lowrank/layer_error.hpp"
#include "sparq/lowrank/low_rank.hpp"
#include "sparq/lowrank/low_rank_compensation.hpp"
#include "sparq/lowrank/low_rank_factors.hpp"
#include "sparq/lowrank/stored_factor.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/lowrank_linear.hpp"

using namespace lowrank_test;
using namespace sparq::lowrank;

namespace {

Matrix<float> gaussian_f(std::size_t r, std::size_t c, std::uint64_t seed, double sigma = 1.0) {
  const auto g = detail::gaussian(r * c, seed);
  Matrix<float> m(r, c);
  for (std::size_t i = 0; i < r * c; ++i) m.data()[i] = static_cast<float>(sigma * g[i]);
  return m;
}

/// Correlated activations: X = G·C with a random mixing C and per-channel scales spanning 100x.
Matrix<float> correlated_activations(std::size_t tokens, std::size_t cin, std::uint64_t seed) {
  const auto g = gaussian_f(tokens, cin, seed), c = gaussian_f(cin, cin, seed + 1);
  Matrix<float> x(tokens, cin, 0.0f);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t j = 0; j < cin; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < cin; ++k) s += double(g(t, k)) * c(k, j);
      x(t, j) = static_cast<float>(s * std::pow(100.0, double(j) / double(cin)) / std::sqrt(double(cin)));
    }
  return x;
}

/// ||(W − Ŵ) Xᵀ||_F computed directly from the tokens.
double output_error(const Matrix<float>& w, const Matrix<float>& w_hat, const Matrix<float>& x) {
  double e = 0;
  for (std::size_t t = 0; t < x.rows(); ++t)
    for (std::size_t i = 0; i < w.rows(); ++i) {
      double s = 0;
      for (std::size_t j = 0; j < w.cols(); ++j) s += (double(w(i, j)) - double(w_hat(i, j))) * x(t, j);
      e += s * s;
    }
  return std::sqrt(e);
}

Matrix<double> hessian_of(const Matrix<float>& x) {
  sparq::HessianAccumulator h(x.cols());
  h.add(x.view());
  return h.hessian_f64();
}

}  // namespace

TEST_CASE("cholesky whitening (no damping) attains the optimal rank-r output error", "[lowrank][factorize]") {
  const std::size_t cout = 24, cin = 32, tokens = 256;
  const auto w = gaussian_f(cout, cin, 1);
  const auto x = correlated_activations(tokens, cin, 2);
  sparq::HessianAccumulator h(cin);
  h.add(x.view());
  // Reference: the best rank-r approximation of the OUTPUT W·Xᵀ (Eckart–Young on cout x tokens).
  Matrix<double> y(cout, tokens, 0.0);
  for (std::size_t i = 0; i < cout; ++i)
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t j = 0; j < cin; ++j) y(i, t) += double(w(i, j)) * x(t, j);
  const auto ys = jacobi_svd(y).s;
  for (std::size_t r : {2u, 6u, 12u}) {
    double tail = 0;
    for (std::size_t i = r; i < ys.size(); ++i) tail += ys[i] * ys[i];
    FactorizeOptions fo;
    fo.rule.rank = r;
    const auto aware = factorize(w.view(), Whitening::cholesky(h, 0.0), fo);
    const auto plain = factorize(w.view(), Whitening::identity(cin), fo);
    REQUIRE(aware.rank() == r);
    REQUIRE(aware.a.rows() == cout);
    REQUIRE(aware.b.cols() == cin);
    const double ea = output_error(w, aware.product(), x), ep = output_error(w, plain.product(), x);
    CHECK(std::fabs(ea - std::sqrt(tail)) <= 1e-3 * std::sqrt(tail));
    CHECK(ea < 0.9 * ep);
    // The Hessian-based measure agrees with the direct one.
    const double rel = relative_output_error(w.view(), aware.product().view(), hessian_of(x).view());
    const double dense = output_error(w, Matrix<float>(cout, cin, 0.0f), x);
    CHECK(std::fabs(rel - ea / dense) <= 1e-4 * rel);
    // Damped (default 1 %) is nearly as good, and still beats plain.
    const auto damped = factorize(w.view(), Whitening::cholesky(h), fo);
    const double ed = output_error(w, damped.product(), x);
    CHECK(ed >= ea * (1 - 1e-4));
    CHECK(ed < ep);
    // Diagonal (per-channel scale) whitening sits in between for these scaled channels.
    sparq::ColumnSquareSum sq(cin);
    sq.add(x.view());
    const double eg = output_error(w, factorize(w.view(), Whitening::diagonal(sq), fo).product(), x);
    CHECK(eg < ep);
    CHECK(eg >= ea * (1 - 1e-4));
  }
}

TEST_CASE("plain factorization is the truncated SVD (weight error = tail energy)", "[lowrank][factorize]") {
  const auto s = std::vector<double>{5, 4, 3, 2, 1, 0.5, 0.25, 0.1};
  const auto w = to_float(with_spectrum(20, 8, s, 3));
  for (std::size_t r = 1; r <= 8; ++r) {
    FactorizeOptions fo;
    fo.rule.rank = r;
    const auto f = factorize(w.view(), Whitening::identity(8), fo);
    double tail = 0;
    for (std::size_t i = r; i < 8; ++i) tail += s[i] * s[i];
    CHECK(std::fabs(frob_diff2(f.product(), w) - tail) <= 1e-5 * s[0] * s[0]);
    // Balanced split: column k of A and row k of B both have norm √σ_k.
    for (std::size_t k = 0; k < r; ++k) {
      double na = 0;
      for (std::size_t i = 0; i < 20; ++i) na += double(f.a(i, k)) * f.a(i, k);
      CHECK(std::fabs(std::sqrt(na) - std::sqrt(s[k])) <= 1e-5);
    }
  }
  FactorizeOptions fo;
  fo.rule.rank = 4;
  fo.method = SvdMethod::randomized;
  const auto fr = factorize(w.view(), Whitening::identity(8), fo);
  CHECK(std::fabs(frob_diff2(fr.product(), w) - (1.0 + 0.25 + 0.0625 + 0.01)) <= 1e-4);
}

TEST_CASE("rank rules: energy, budget, precedence, bad values", "[lowrank][factorize]") {
  const std::vector<double> s = {4, 2, 1, 1};  // energies 16, 4, 1, 1 of 22
  CHECK(choose_rank({0, 16.0 / 22.0, 0.5}, 10, 4, s) == 1);
  CHECK(choose_rank({0, 16.0 / 22.0 + 1e-9, 0.5}, 10, 4, s) == 2);
  CHECK(choose_rank({0, 1.0, 0.5}, 10, 4, s) == 4);
  CHECK(choose_rank({3, 0.1, 0.5}, 10, 4, s) == 3);        // rank wins
  CHECK(choose_rank({0, 0, 0.5}, 100, 100) == 25);          // 0.5·10⁴ / 200
  CHECK(choose_rank({0, 0, 0.5}, 64, 172) == 23);           // floor(0.5·64·172 / 236) = 23
  CHECK(choose_rank({0, 0, 1e-6}, 64, 172) == 1);           // at least 1
  CHECK_THROWS_AS(choose_rank({5, 0, 0.5}, 10, 4, s), sparq::error);
  CHECK_THROWS_AS(choose_rank({0, 1.5, 0.5}, 10, 4, s), sparq::error);
  CHECK_THROWS_AS(choose_rank({0, 0, 0.0}, 10, 4), sparq::error);
  CHECK_THROWS_AS(choose_rank({0, 0, 2.0}, 10, 4), sparq::error);
  CHECK_THROWS_AS(choose_rank({0, 0.5, 0.5}, 10, 4), sparq::error);  // energy without the spectrum
  // Energy through factorize: the retained whitened energy reaches the threshold.
  const auto w = gaussian_f(12, 9, 4);
  FactorizeOptions fo;
  fo.rule = {0, 0.8, 0.5};
  const auto f = factorize(w.view(), Whitening::identity(9), fo);
  double tot = 0, kept = 0;
  for (std::size_t i = 0; i < f.singular_values.size(); ++i) {
    tot += f.singular_values[i] * f.singular_values[i];
    if (i < f.rank()) kept += f.singular_values[i] * f.singular_values[i];
  }
  CHECK(kept >= 0.8 * tot);
  CHECK(kept - f.singular_values[f.rank() - 1] * f.singular_values[f.rank() - 1] < 0.8 * tot);
}

TEST_CASE("LowRank stage: W := A·B of the chosen rank, statistics checked", "[lowrank][stage]") {
  const std::size_t cout = 16, cin = 20;
  auto w = gaussian_f(cout, cin, 5);
  const auto w0 = w;
  const auto x = correlated_activations(128, cin, 6);
  sparq::HessianAccumulator h(cin);
  h.add(x.view());
  LowRankOptions o;
  o.rule.rank = 5;
  const LowRank lr(o);
  const auto f = lr.apply(w.view(), h);
  CHECK(f.rank() == 5);
  CHECK(f.whitening == WhiteningKind::cholesky);
  CHECK(frob_diff2(f.product(), w) == 0.0);  // W was overwritten by the product
  const auto s = jacobi_svd(w.view()).s;     // ... which has rank 5
  CHECK(s[5] < 1e-5 * s[0]);
  CHECK(s[4] > 1e-3 * s[0]);
  // Default rule: budget 0.5 → floor(0.5·16·20/36) = 4.
  auto w2 = w0;
  CHECK(LowRank().apply(w2.view()).rank() == 4);
  sparq::HessianAccumulator wrong(cin + 1);
  Matrix<float> xw(4, cin + 1, 1.0f);
  wrong.add(xw.view());
  auto w3 = w0;
  CHECK_THROWS_AS(lr.apply(w3.view(), wrong), sparq::error);
  w3(1, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(lr.apply(w3.view()), sparq::error);
  LowRankOptions big;
  big.rule.rank = 17;
  auto w4 = w0;
  CHECK_THROWS_AS(LowRank(big).apply(w4.view()), sparq::error);
}

TEST_CASE("StoredFactor: GEMV equals decode()·x, bytes as documented, rounding bounded", "[lowrank][stored]") {
  const auto m = gaussian_f(13, 37, 8);
  const auto x = gaussian_f(1, 37, 9);
  for (FactorFormat fmt : {FactorFormat::f32, FactorFormat::int8, FactorFormat::f16, FactorFormat::bf16}) {
    const auto f = StoredFactor::encode(m.view(), fmt);
    const auto d = f.decode();
    std::vector<float> y(13);
    f.gemv(x.data(), y.data());
    double rel_round = 0, norm = 0;
    for (std::size_t i = 0; i < 13; ++i) {
      double ref = 0;
      for (std::size_t j = 0; j < 37; ++j) {
        ref += double(d(i, j)) * x(0, j);
        rel_round = std::max(rel_round, std::fabs(double(d(i, j)) - m(i, j)));
        norm = std::max(norm, double(std::fabs(m(i, j))));
      }
      CHECK(std::fabs(y[i] - ref) <= 1e-5 * (1 + std::fabs(ref)));
    }
    const std::size_t n = 13 * 37;
    switch (fmt) {
      case FactorFormat::f32: CHECK(f.bytes() == 4 * n); CHECK(rel_round == 0.0); break;
      case FactorFormat::int8: CHECK(f.bytes() == n + 4 * 13); CHECK(rel_round <= norm / 254 * 1.001); break;
      case FactorFormat::f16: CHECK(f.bytes() == 2 * n); CHECK(rel_round <= norm * 0x1p-11); break;
      case FactorFormat::bf16: CHECK(f.bytes() == 2 * n); CHECK(rel_round <= norm * 0x1p-8); break;
    }
  }
  Matrix<float> bad(2, 2, 1.0f);
  bad(0, 1) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(StoredFactor::encode(bad.view(), FactorFormat::int8), sparq::error);
}

TEST_CASE("LowRankCompensation: corrects the error, f32 plain = Eckart-Young, refit helps", "[lowrank][lorc]") {
  const std::size_t cout = 24, cin = 40;
  const auto w = gaussian_f(cout, cin, 10);
  // Ŵ: crude 3-level rounding of W (a stand-in for quantization).
  Matrix<float> w_hat(cout, cin);
  for (std::size_t i = 0; i < w.size(); ++i) w_hat.data()[i] = std::nearbyint(w.data()[i]);
  Matrix<float> e(cout, cin);
  for (std::size_t i = 0; i < w.size(); ++i) e.data()[i] = w.data()[i] - w_hat.data()[i];
  const auto es = jacobi_svd(e.view()).s;
  const auto x = correlated_activations(160, cin, 11);
  sparq::HessianAccumulator h(cin);
  h.add(x.view());
  const auto hm = h.hessian_f64();
  for (std::size_t r : {4u, 8u}) {
    LowRankCompensationOptions o;
    o.rank = r;
    o.format = FactorFormat::f32;
    const auto plain = LowRankCompensation(o).apply(w.view(), w_hat.view());
    auto corrected = w_hat;
    plain.add_to(corrected.view());
    double tail = 0;
    for (std::size_t i = r; i < es.size(); ++i) tail += es[i] * es[i];
    CHECK(std::fabs(frob_diff2(corrected, w) - tail) <= 1e-4 * tail);
    CHECK(plain.bytes() == 4 * r * (cout + cin));
    const double before = relative_output_error(w.view(), w_hat.view(), hm.view());
    double prev_aware = 0;
    for (FactorFormat fmt : {FactorFormat::f32, FactorFormat::int8, FactorFormat::f16, FactorFormat::bf16}) {
      o.format = fmt;
      for (int refit = 0; refit < 2; ++refit) {
        o.refit = refit == 1;
        const auto c = LowRankCompensation(o).apply(w.view(), w_hat.view(), h);
        auto cw = w_hat;
        c.add_to(cw.view());
        const double after = relative_output_error(w.view(), cw.view(), hm.view());
        CHECK(after < before);
        if (fmt == FactorFormat::f32 && refit == 0) prev_aware = after;
        if (fmt == FactorFormat::f32) CHECK(after <= prev_aware * (1 + 1e-6));  // refit never hurts exact factors
        if (fmt != FactorFormat::f32) CHECK(after <= prev_aware * 1.10);        // 8/16-bit cost little
        auto pw = w_hat;
        LowRankCompensationOptions po = o;
        po.whitening = WhiteningKind::identity;
        LowRankCompensation(po).apply(w.view(), w_hat.view(), h).add_to(pw.view());
        CHECK(after < relative_output_error(w.view(), pw.view(), hm.view()));  // aware beats plain on outputs
      }
    }
  }
  // Determinism and bad input.
  const auto c1 = LowRankCompensation().apply(w.view(), w_hat.view(), h);
  const auto c2 = LowRankCompensation().apply(w.view(), w_hat.view(), h);
  CHECK(c1.a.decode().storage() == c2.a.decode().storage());
  CHECK(c1.b.decode().storage() == c2.b.decode().storage());
  CHECK(c1.bytes() == 8 * (cout + cin) + 4 * (cout + 8));
  LowRankCompensationOptions big;
  big.rank = 25;
  CHECK_THROWS_AS(LowRankCompensation(big).apply(w.view(), w_hat.view()), sparq::error);
  CHECK_THROWS_AS(LowRankCompensation(LowRankCompensationOptions{0}), sparq::error);
  Matrix<float> other(cout, cin + 1);
  CHECK_THROWS_AS(LowRankCompensation().apply(w.view(), other.view()), sparq::error);
}

TEST_CASE("LowRankLinear and CompensatedLinear compute A(Bx) and Ŵx + A(Bx)", "[lowrank][model]") {
  const std::size_t cout = 19, cin = 33, tokens = 5;
  const auto w = gaussian_f(cout, cin, 20);
  Matrix<float> w_hat(cout, cin);
  for (std::size_t i = 0; i < w.size(); ++i) w_hat.data()[i] = std::nearbyint(2 * w.data()[i]) / 2;
  const auto x = gaussian_f(tokens, cin, 21);
  for (FactorFormat fmt : {FactorFormat::f32, FactorFormat::int8, FactorFormat::f16, FactorFormat::bf16}) {
    LowRankCompensationOptions o;
    o.rank = 6;
    o.format = fmt;
    auto c = LowRankCompensation(o).apply(w.view(), w_hat.view());
    auto dense = w_hat;
    c.add_to(dense.view());
    const std::size_t corr_bytes = c.bytes();
    sparq::model::CompensatedLinear op(std::make_unique<sparq::model::DenseLinear>(w_hat), std::move(c));
    CHECK(op.in_features() == cin);
    CHECK(op.out_features() == cout);
    CHECK(op.weight_bytes() == 4 * cout * cin + corr_bytes);
    CHECK(op.correction().rank() == 6);
    Matrix<float> y(tokens, cout);
    op.gemm(x.view(), y.view());
    std::vector<float> yv(cout);
    for (std::size_t t = 0; t < tokens; ++t) {
      op.gemv(x.row(t), yv.data());
      for (std::size_t i = 0; i < cout; ++i) {
        double ref = 0;
        for (std::size_t j = 0; j < cin; ++j) ref += double(dense(i, j)) * x(t, j);
        CHECK(std::fabs(yv[i] - ref) <= 1e-4 * (1 + std::fabs(ref)));
        CHECK(y(t, i) == yv[i]);
      }
    }
  }
  // LowRankLinear from LowRank factors.
  auto w2 = w;
  LowRankOptions lo;
  lo.rule.rank = 7;
  const auto f = LowRank(lo).apply(w2.view());
  const sparq::model::LowRankLinear lr(f);
  CHECK(lr.weight_bytes() == 4 * 7 * (cout + cin));
  std::vector<float> y(cout);
  lr.gemv(x.row(0), y.data());
  for (std::size_t i = 0; i < cout; ++i) {
    double ref = 0;
    for (std::size_t j = 0; j < cin; ++j) ref += double(w2(i, j)) * x(0, j);
    CHECK(std::fabs(y[i] - ref) <= 1e-4 * (1 + std::fabs(ref)));
  }
  Matrix<float> yg(tokens, cout);
  lr.gemm(x.view(), yg.view());
  for (std::size_t t = 0; t < tokens; ++t) {
    std::vector<float> yt(cout);
    lr.gemv(x.row(t), yt.data());
    for (std::size_t i = 0; i < cout; ++i) CHECK(yg(t, i) == yt[i]);
  }
  CHECK_THROWS_AS(sparq::model::LowRankLinear(StoredFactor::encode(f.a.view(), FactorFormat::f32),
                                              StoredFactor::encode(f.a.view(), FactorFormat::f32)),
                  sparq::error);
  auto c = LowRankCompensation(LowRankCompensationOptions{3}).apply(w.view(), w_hat.view());
  CHECK_THROWS_AS(sparq::model::CompensatedLinear(nullptr, std::move(c)), sparq::error);
}

TEST_CASE("Whitening: damping, round trip, singular and bad statistics", "[lowrank][whitening]") {
  const std::size_t cin = 12;
  const auto x = correlated_activations(6, cin, 40);  // 6 tokens < 12 channels: H is singular
  sparq::HessianAccumulator h(cin);
  h.add(x.view());
  const auto hm = h.hessian_f64();
  double mean = 0;
  for (std::size_t j = 0; j < cin; ++j) mean += hm(j, j);
  mean /= double(cin);
  const auto wc = Whitening::cholesky(h);
  CHECK(wc.kind() == WhiteningKind::cholesky);
  CHECK(wc.lambda() == Approx(0.01 * mean).epsilon(1e-12));
  const auto w = gaussian_f(5, cin, 41);
  const auto wd = detail::to_double(w.view());
  for (const Whitening& wh : {wc, Whitening::diagonal(h), Whitening::identity(cin)}) {
    auto m = wh.whiten(wd.view());
    wh.unwhiten(m);
    CHECK(frob_diff2(m, wd) < 1e-20 * 5 * cin);
  }
  // W·L·Lᵀ·Wᵀ = W (H + λI) Wᵀ: the whitened weight error is the damped output error.
  const auto m = wc.whiten(wd.view());
  for (std::size_t i = 0; i < 5; ++i) {
    double lhs = 0, rhs = 0;
    for (std::size_t j = 0; j < cin; ++j) lhs += m(i, j) * m(i, j);
    for (std::size_t a = 0; a < cin; ++a)
      for (std::size_t b = 0; b < cin; ++b) rhs += wd(i, a) * (hm(a, b) + (a == b ? wc.lambda() : 0.0)) * wd(i, b);
    CHECK(lhs == Approx(rhs).epsilon(1e-10));
  }
  // damp = 0 on a singular H: the retry adds a tiny ridge instead of failing.
  const auto w0 = Whitening::cholesky(hm.view(), 0.0);
  CHECK(w0.lambda() > 0);
  CHECK(w0.lambda() < 1e-5 * mean);
  // Diagonal with a dead channel: fine with damping, an error without.
  std::vector<double> d(cin, 1.0);
  d[3] = 0.0;
  CHECK(Whitening::diagonal(d).lambda() == Approx(0.01 * 11.0 / 12.0));
  CHECK_THROWS_AS(Whitening::diagonal(d, 0.0), sparq::error);
  d[3] = -1.0;
  CHECK_THROWS_AS(Whitening::diagonal(d), sparq::error);
  Matrix<double> rect(3, 4, 0.0);
  CHECK_THROWS_AS(Whitening::cholesky(rect.view()), sparq::error);
  Matrix<double> nan(3, 3, 0.0);
  nan(1, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(Whitening::cholesky(nan.view()), sparq::error);
  const auto wide = gaussian_f(2, cin + 1, 3);
  CHECK_THROWS_AS(wc.whiten(detail::to_double(wide.view()).view()), sparq::error);
  CHECK_THROWS_AS(factorize(gaussian_f(4, cin + 1, 3).view(), wc), sparq::error);
}
