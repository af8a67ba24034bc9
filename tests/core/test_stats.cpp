// Calibration statistics: values against their definitions, batch invariance, errors.
#include <algorithm>
#include <cmath>
#include <vector>

#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq_test.hpp"

using sparq::MatrixView;

namespace {
struct Calib {
  std::size_t seqs = 6, len = 13, cin = 70;
  std::vector<float> x = sparq_test::randn(seqs * len * cin, 42, 2.0f);
  MatrixView<const float> all() const { return {x.data(), seqs * len, cin}; }
  MatrixView<const float> seq(std::size_t s) const { return {x.data() + s * len * cin, len, cin}; }
  MatrixView<const float> seqs_range(std::size_t s0, std::size_t n) const {
    return {x.data() + s0 * len * cin, n * len, cin};
  }
};
}  // namespace

TEST_CASE("ColumnSquareSum is Wanda's scaler_row and batch-invariant", "[stats]") {
  Calib c;
  sparq::ColumnSquareSum all(c.cin), parts(c.cin), one_by_one(c.cin);
  all.add(c.all(), c.seqs);
  parts.add(c.seqs_range(0, 2), 2);
  parts.add(c.seqs_range(2, 4), 4);
  for (std::size_t s = 0; s < c.seqs; ++s) one_by_one.add(c.seq(s));
  REQUIRE(all.sums() == parts.sums());
  REQUIRE(all.sums() == one_by_one.sums());
  REQUIRE(all.sequences() == 6);
  REQUIRE(all.tokens() == c.seqs * c.len);
  const auto scaler = all.scaler();
  const auto norms = all.norms();
  for (std::size_t j = 0; j < c.cin; ++j) {
    double ss = 0;
    for (std::size_t t = 0; t < c.seqs * c.len; ++t) ss += double(c.x[t * c.cin + j]) * c.x[t * c.cin + j];
    REQUIRE(scaler[j] == Approx(ss / c.seqs).epsilon(1e-6));
    REQUIRE(norms[j] == Approx(std::sqrt(ss) / std::sqrt(double(c.seqs))).epsilon(1e-6));
  }
}

TEST_CASE("ColumnAbsMax and ColumnMinMax match their definitions", "[stats]") {
  Calib c;
  sparq::ColumnAbsMax am(c.cin);
  sparq::ColumnMinMax mm(c.cin);
  for (std::size_t s = 0; s < c.seqs; ++s) {
    am.add(c.seq(s));
    mm.add(c.seq(s));
  }
  for (std::size_t j = 0; j < c.cin; ++j) {
    float amax = 0, mn = INFINITY, mx = -INFINITY;
    for (std::size_t t = 0; t < c.seqs * c.len; ++t) {
      const float v = c.x[t * c.cin + j];
      amax = std::max(amax, std::fabs(v));
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    REQUIRE(am.values()[j] == amax);
    REQUIRE(mm.min()[j] == mn);
    REQUIRE(mm.max()[j] == mx);
    REQUIRE(mm.range()[j] == mx - mn);
  }
}

TEST_CASE("HessianAccumulator gives (2/nseq) X^T X, symmetric and batch-invariant", "[stats]") {
  Calib c;
  c.cin = 150;  // spans several 64-wide tiles with a ragged tail
  c.x = sparq_test::randn(c.seqs * c.len * c.cin, 3);
  sparq::HessianAccumulator all(c.cin), parts(c.cin);
  all.add(c.all(), c.seqs);
  for (std::size_t s = 0; s < c.seqs; ++s) parts.add(c.seq(s));
  const auto h = all.hessian();
  const auto hp = parts.hessian();
  REQUIRE(h.storage() == hp.storage());
  for (std::size_t i = 0; i < c.cin; i += 7) {
    for (std::size_t j = 0; j < c.cin; j += 5) {
      double s = 0;
      for (std::size_t t = 0; t < c.seqs * c.len; ++t) s += double(c.x[t * c.cin + i]) * c.x[t * c.cin + j];
      REQUIRE(h(i, j) == Approx(2.0 * s / c.seqs).epsilon(1e-6).margin(1e-6));
      REQUIRE(h(i, j) == h(j, i));
    }
  }
  REQUIRE(all.hessian_f64()(3, 4) == Approx(h(3, 4)).epsilon(1e-6));
}

TEST_CASE("MeanSequence averages positions over sequences", "[stats]") {
  Calib c;
  sparq::MeanSequence ms(c.len, c.cin);
  for (std::size_t s = 0; s < c.seqs; ++s) ms.add(c.seq(s));
  const auto m = ms.mean();
  for (std::size_t t = 0; t < c.len; ++t) {
    for (std::size_t j = 0; j < c.cin; ++j) {
      double s = 0;
      for (std::size_t q = 0; q < c.seqs; ++q) s += c.x[(q * c.len + t) * c.cin + j];
      REQUIRE(m(t, j) == Approx(s / c.seqs).epsilon(1e-6).margin(1e-7));
    }
  }
}

TEST_CASE("Statistics reject bad input with a message naming the value", "[stats][errors]") {
  std::vector<float> x(4 * 3, 1.0f);
  sparq::ColumnSquareSum ss(3);
  REQUIRE_THROWS_WITH(ss.scaler(), Catch::Contains("no sequences"));
  REQUIRE_THROWS_WITH(ss.add(MatrixView<const float>(x.data(), 3, 4)),
                      Catch::Contains("4 columns") && Catch::Contains("cin = 3"));
  x[7] = NAN;
  REQUIRE_THROWS_WITH(ss.add(MatrixView<const float>(x.data(), 4, 3)),
                      Catch::Contains("non-finite") && Catch::Contains("token 2") &&
                          Catch::Contains("channel 1"));
  x[7] = INFINITY;
  sparq::HessianAccumulator h(3);
  REQUIRE_THROWS_AS(h.add(MatrixView<const float>(x.data(), 4, 3)), sparq::error);
  sparq::MeanSequence ms(5, 3);
  x[7] = 0;
  REQUIRE_THROWS_WITH(ms.add(MatrixView<const float>(x.data(), 4, 3)),
                      Catch::Contains("4 tokens") && Catch::Contains("expected 5"));
  REQUIRE_THROWS_AS(sparq::ColumnAbsMax(0), sparq::error);
}
