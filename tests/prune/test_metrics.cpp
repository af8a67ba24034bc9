// Magnitude / Wanda / SAR metrics against brute-force definitions; every pattern's exact counts; errors.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "sparq/prune/pruner.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {

Matrix<float> rand_matrix(std::size_t r, std::size_t c, unsigned seed, float sigma = 1.0f) {
  Matrix<float> m(r, c);
  const auto v = sparq_test::randn(r * c, seed, sigma);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

// Brute-force "stable ascending sort, prune the first k" of one row of scores.
std::vector<std::uint8_t> stable_keep(const float* s, std::size_t n, std::size_t k) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return s[a] < s[b]; });
  std::vector<std::uint8_t> keep(n, 1);
  for (std::size_t i = 0; i < k; ++i) keep[idx[i]] = 0;
  return keep;
}

}  // namespace

TEST_CASE("Magnitude and Wanda scores match their definitions", "[prune][metric]") {
  const std::size_t cout = 9, cin = 13, nseq = 3, len = 5;
  const Matrix<float> w = rand_matrix(cout, cin, 1);
  ColumnSquareSum sq(cin);
  std::vector<Matrix<float>> seqs;
  for (std::size_t q = 0; q < nseq; ++q) {
    seqs.push_back(rand_matrix(len, cin, 10 + q, 2.0f));
    sq.add(seqs.back().view());
  }
  const Matrix<float> sm = Pruner<Magnitude, Unstructured>().score(w.view(), NoStats{});
  const Matrix<float> sw = Pruner<Wanda, Unstructured>().score(w.view(), sq);
  for (std::size_t k = 0; k < cout; ++k)
    for (std::size_t j = 0; j < cin; ++j) {
      REQUIRE(sm(k, j) == std::fabs(w(k, j)));
      double ss = 0;  // ||X_j||^2 / nseq
      for (auto& x : seqs)
        for (std::size_t t = 0; t < len; ++t) ss += double(x(t, j)) * x(t, j);
      const double ref = std::fabs(double(w(k, j))) * std::sqrt(ss / double(nseq));
      REQUIRE(std::abs(sw(k, j) - ref) <= 1e-6 * ref);
    }
}

TEST_CASE("SAR ranges equal the naive zero-one-weight-and-recompute definition", "[prune][metric][sar]") {
  // Outlier-heavy tokens (channel 3 x20) so the ranges are not all alike.
  const std::size_t cout = 37, cin = 23, T = 19;
  const Matrix<float> w = rand_matrix(cout, cin, 2);
  Matrix<float> x = rand_matrix(T, cin, 3);
  for (std::size_t t = 0; t < T; ++t) x(t, 3) *= 20.0f;
  auto naive = [&](std::size_t t0, std::size_t t1) {
    Matrix<double> a(cout, cin);
    for (std::size_t k = 0; k < cout; ++k)
      for (std::size_t j = 0; j < cin; ++j) {
        double hi = -1e300, lo = 1e300;
        for (std::size_t t = t0; t < t1; ++t) {
          double y = 0;
          for (std::size_t i = 0; i < cin; ++i)
            if (i != j) y += double(x(t, i)) * w(k, i);  // W with W_kj zeroed
          hi = std::max(hi, y);
          lo = std::min(lo, y);
        }
        a(k, j) = hi - lo;
      }
    return a;
  };
  const Matrix<double> ref = naive(0, T);
  sparq_test::for_each_arch([&](auto arch) {
    using Arch = decltype(arch);
    SarRangeAccumulator<Arch> one(w.view());
    one.add(x.view());
    // Streaming: three uneven chunks, plus internal chunking of 4 tokens.
    SarRangeAccumulator<Arch> chunked(w.view(), false, 4);
    chunked.add(x.view().rows_range(0, 7));
    chunked.add(x.view().rows_range(7, 1));
    chunked.add(x.view().rows_range(8, T - 8));
    const Matrix<float> a = one.ranges(), b = chunked.ranges();
    for (std::size_t k = 0; k < cout; ++k)
      for (std::size_t j = 0; j < cin; ++j) {
        INFO(Arch::name() << " k=" << k << " j=" << j);
        REQUIRE(std::abs(a(k, j) - ref(k, j)) <= 1e-5 * ref(k, j));
        REQUIRE(a(k, j) == b(k, j));
      }
  });
  // Full SAR score: |W| sqrt(scaler) + lambda * A, for lambda 2 (paper) and 2.1 (reference).
  ColumnSquareSum sq(cin);
  sq.add(x.view());
  for (float lambda : {jsq_paper_lambda, jsq_reference_lambda}) {
    PruneOptions o;
    o.lambda = lambda;
    const Matrix<float> s = Pruner<SAR, Unstructured>(o).score(w.view(), SarStats(sq, x.view()));
    for (std::size_t k = 0; k < cout; ++k)
      for (std::size_t j = 0; j < cin; ++j) {
        double ss = 0;
        for (std::size_t t = 0; t < T; ++t) ss += double(x(t, j)) * x(t, j);
        const double want = std::fabs(double(w(k, j))) * std::sqrt(ss) + lambda * ref(k, j);
        REQUIRE(std::abs(s(k, j) - want) <= 2e-5 * want);
      }
  }
}

TEST_CASE("SAR over the mean sequence equals SAR over the explicit mean; bf16 and inf safeguards", "[prune][metric][sar]") {
  const std::size_t cout = 16, cin = 8, L = 6;
  const Matrix<float> w = rand_matrix(cout, cin, 4);
  MeanSequence ms(L, cin);
  ColumnSquareSum sq(cin);
  for (unsigned q = 0; q < 4; ++q) {
    const Matrix<float> s = rand_matrix(L, cin, 20 + q);
    ms.add(s.view());
    sq.add(s.view());
  }
  const Matrix<float> mean = ms.mean();
  const Pruner<SAR, Unstructured> p;
  const SarStats from_ms(sq, ms);
  const SarStats copy = from_ms;  // copies keep the mean sequence alive
  REQUIRE(p.score(w.view(), copy).storage() == p.score(w.view(), SarStats(sq, mean.view())).storage());
  // bf16-compat: ranges are bf16 numbers and close to the fp32 ones.
  SarRangeAccumulator<> f32(w.view()), b16(w.view(), true);
  f32.add(mean.view());
  b16.add(mean.view());
  const Matrix<float> a = f32.ranges(), b = b16.ranges();
  bool any_diff = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(b.data()[i] == round_to_bf16(b.data()[i]));
    REQUIRE(std::abs(a.data()[i] - b.data()[i]) <= 0.05f * a.data()[i] + 1e-2f);
    any_diff |= a.data()[i] != b.data()[i];
  }
  REQUIRE(any_diff);
  // Overflowing outputs: range Inf/NaN -> nonfinite_range.
  Matrix<float> big(2, 2, 3e38f);
  Matrix<float> xb(2, 2);
  xb(0, 0) = 1.0f; xb(0, 1) = 1.0f; xb(1, 0) = -1.0f; xb(1, 1) = -1.0f;
  SarRangeAccumulator<> ov(big.view());
  ov.add(xb.view());
  const Matrix<float> r = ov.ranges(100.0f);
  for (std::size_t i = 0; i < 4; ++i) REQUIRE(r.data()[i] == 100.0f);
  REQUIRE(ov.ranges(7.0f).data()[0] == 7.0f);
}

TEST_CASE("Unstructured prunes exactly floor(s*cin) per row, as a stable sort", "[prune][pattern]") {
  const Matrix<float> w = rand_matrix(31, 45, 5);
  for (double s : {0.0, 0.1, 0.5, 0.73, 0.99}) {
    PruneOptions o;
    o.sparsity = s;
    Matrix<float> wp = w;
    const PruneMask m = Pruner<Magnitude, Unstructured>(o).prune(wp.view());
    const std::size_t k = static_cast<std::size_t>(std::floor(s * 45));
    for (std::size_t r = 0; r < 31; ++r) {
      std::vector<float> sc(45);
      for (std::size_t c = 0; c < 45; ++c) sc[c] = std::fabs(w(r, c));
      const auto keep = stable_keep(sc.data(), 45, k);
      std::size_t zeros = 0;
      for (std::size_t c = 0; c < 45; ++c) {
        REQUIRE(m(r, c) == keep[c]);
        zeros += wp(r, c) == 0.0f;
        if (m(r, c)) REQUIRE(wp(r, c) == w(r, c));
      }
      REQUIRE(zeros == k);
    }
  }
  // Ties: equal scores prune the lower column first.
  Matrix<float> t(1, 6, 1.0f);
  PruneOptions o;
  o.sparsity = 0.5;
  const PruneMask m = Pruner<Magnitude, Unstructured>(o).mask(t.view());
  REQUIRE(std::vector<std::uint8_t>(m.data(), m.data() + 6) == std::vector<std::uint8_t>{0, 0, 0, 1, 1, 1});
}

TEST_CASE("Unstructured selection equals a stable sort when most scores tie", "[prune][pattern]") {
  // Scores on a coarse grid (a few distinct values, signed zeros among them) make the k-th
  // smallest value a long run of ties: the selection must prune exactly the lowest columns of it.
  Matrix<float> w = rand_matrix(40, 97, 11);
  for (auto& v : w.storage()) v = std::round(v * 2.0f) / 2.0f;
  w(3, 5) = -0.0f;
  for (double s : {0.05, 0.3, 0.5, 0.77, 0.999}) {
    PruneOptions o;
    o.sparsity = s;
    const PruneMask m = Pruner<Magnitude, Unstructured>(o).mask(w.view());
    const std::size_t k = static_cast<std::size_t>(std::floor(s * 97));
    for (std::size_t r = 0; r < 40; ++r) {
      std::vector<float> sc(97);
      for (std::size_t c = 0; c < 97; ++c) sc[c] = std::fabs(w(r, c));
      const auto keep = stable_keep(sc.data(), 97, k);
      for (std::size_t c = 0; c < 97; ++c) REQUIRE(m(r, c) == keep[c]);
    }
  }
}

TEST_CASE("UnstructuredLayer uses one inclusive threshold per matrix", "[prune][pattern]") {
  const Matrix<float> w = rand_matrix(20, 30, 6);
  std::vector<float> flat(w.data(), w.data() + w.size());
  for (auto& v : flat) v = std::fabs(v);
  std::sort(flat.begin(), flat.end());
  for (double s : {0.2, 0.5, 0.9}) {
    PruneOptions o;
    o.sparsity = s;
    const float tau = flat[static_cast<std::size_t>(std::floor(s * 600))];
    const PruneMask m = Pruner<Magnitude, UnstructuredLayer>(o).mask(w.view());
    std::size_t zeros = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      REQUIRE(m.data()[i] == (std::fabs(w.data()[i]) <= tau ? 0 : 1));
      zeros += m.data()[i] == 0;
    }
    REQUIRE(zeros == static_cast<std::size_t>(std::floor(s * 600)) + 1);  // no ties in random data
  }
  PruneOptions o0;
  o0.sparsity = 0.0;
  const PruneMask m0 = Pruner<Magnitude, UnstructuredLayer>(o0).mask(w.view());
  REQUIRE(std::count(m0.data(), m0.data() + m0.size(), 0) == 0);
}

TEST_CASE("NM<N,M> keeps exactly N of every M, the N highest scores", "[prune][pattern]") {
  const std::size_t cout = 12, cin = 48, T = 10;
  const Matrix<float> w = rand_matrix(cout, cin, 7);
  const Matrix<float> x = rand_matrix(T, cin, 8);
  ColumnSquareSum sq(cin);
  sq.add(x.view());
  auto check = [&](auto pattern_tag, std::size_t N, std::size_t M) {
    using P = decltype(pattern_tag);
    Matrix<float> wp = w;
    const Pruner<Wanda, P> p;
    const Matrix<float> s = p.score(w.view(), sq);
    const PruneMask m = p.prune(wp.view(), sq);
    for (std::size_t r = 0; r < cout; ++r)
      for (std::size_t g = 0; g < cin; g += M) {
        const auto keep = stable_keep(s.row(r) + g, M, M - N);
        std::size_t kept = 0;
        for (std::size_t i = 0; i < M; ++i) {
          REQUIRE(m(r, g + i) == keep[i]);
          kept += m(r, g + i);
          REQUIRE((wp(r, g + i) != 0.0f) == (m(r, g + i) == 1));
        }
        REQUIRE(kept == N);
      }
  };
  check(NM<2, 4>{}, 2, 4);
  check(NM<4, 8>{}, 4, 8);
  check(NM<1, 4>{}, 1, 4);
  check(NM<4, 4>{}, 4, 4);
  // Already-zero weights still leave N entries per group in the mask.
  Matrix<float> z(2, 8, 0.0f);
  z(0, 1) = 1.0f;
  const PruneMask mz = Pruner<Magnitude, NM<2, 4>>().mask(z.view());
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t g = 0; g < 8; g += 4) REQUIRE(mz(r, g) + mz(r, g + 1) + mz(r, g + 2) + mz(r, g + 3) == 2);
  REQUIRE(mz(0, 1) == 1);
}

TEST_CASE("OutputChannels and InputChannels prune whole rows / columns by score sums", "[prune][pattern]") {
  const Matrix<float> w = rand_matrix(10, 14, 9);
  PruneOptions o;
  o.sparsity = 0.3;
  const PruneMask mo = Pruner<Magnitude, OutputChannels>(o).mask(w.view());
  const PruneMask mi = Pruner<Magnitude, InputChannels>(o).mask(w.view());
  std::vector<float> rs(10, 0), cs(14, 0);
  for (std::size_t r = 0; r < 10; ++r)
    for (std::size_t c = 0; c < 14; ++c) {
      rs[r] += std::fabs(w(r, c));
      cs[c] += std::fabs(w(r, c));
    }
  const auto kr = stable_keep(rs.data(), 10, 3), kc = stable_keep(cs.data(), 14, 4);
  for (std::size_t r = 0; r < 10; ++r)
    for (std::size_t c = 0; c < 14; ++c) {
      REQUIRE(mo(r, c) == kr[r]);
      REQUIRE(mi(r, c) == kc[c]);
    }
  REQUIRE(std::count(kr.begin(), kr.end(), 0) == 3);
  REQUIRE(std::count(kc.begin(), kc.end(), 0) == 4);
}

using MagU = Pruner<Magnitude, Unstructured>;
using Mag24 = Pruner<Magnitude, NM<2, 4>>;
using WandaU = Pruner<Wanda, Unstructured>;
using SarU = Pruner<SAR, Unstructured>;

TEST_CASE("bad input throws sparq::error naming the value", "[prune][errors]") {
  Matrix<float> w = rand_matrix(4, 10, 10);
  PruneOptions o;
  o.sparsity = 1.0;
  REQUIRE_THROWS_WITH(MagU(o), Catch::Contains("sparsity = 1") && Catch::Contains("[0, 1)"));
  o.sparsity = -0.1;
  REQUIRE_THROWS_WITH(MagU(o), Catch::Contains("sparsity = -0.1"));
  o.sparsity = std::nan("");
  REQUIRE_THROWS_AS(MagU(o), sparq::error);
  REQUIRE_THROWS_WITH(Mag24().prune(w.view()), Catch::Contains("cin = 10") && Catch::Contains("multiple of M = 4"));
  ColumnSquareSum sq(9);
  sq.add(rand_matrix(3, 9, 11).view());
  REQUIRE_THROWS_WITH(WandaU().prune(w.view(), sq), Catch::Contains("9 input channels") && Catch::Contains("cin = 10"));
  ColumnSquareSum empty(10);
  REQUIRE_THROWS_WITH(WandaU().prune(w.view(), empty), Catch::Contains("empty"));
  ColumnSquareSum sq10(10);
  sq10.add(rand_matrix(3, 10, 12).view());
  Matrix<float> bad = rand_matrix(5, 10, 13);
  bad(2, 4) = std::nanf("");
  REQUIRE_THROWS_WITH(SarU().prune(w.view(), SarStats(sq10, bad.view())),
                      Catch::Contains("non-finite") && Catch::Contains("nan"));
  const Matrix<float> narrow = rand_matrix(5, 8, 1);
  REQUIRE_THROWS_WITH(SarU().prune(w.view(), SarStats(sq10, narrow.view())), Catch::Contains("8 channels"));
  Matrix<float> wn = w;
  wn(1, 1) = INFINITY;
  REQUIRE_THROWS_WITH(MagU().prune(wn.view()), Catch::Contains("non-finite weight inf"));
}
