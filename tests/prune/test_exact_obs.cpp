// ExactOBS (prune/exact_obs.hpp) and obq_quantize (prune/obq.hpp), the reconstruction stages of jsq+:
// the least-squares optimum for the chosen mask, brute force on a tiny row, N:M validity, counts
// and allocation, the RTN grid and zeros of obq, the recipe tokens, and jsq+ on stories260K.
#include <algorithm>
#include <cmath>
#include <vector>

#include "sparq/joint/compressor.hpp"
#include "sparq/joint/named_recipes.hpp"
#include "sparq/joint/recipe.hpp"
#include "sparq/prune/exact_obs.hpp"
#include "sparq/prune/sparse_gpt.hpp"
#include "sparq/prune/obq.hpp"
#include "sparq/quant/quantize.hpp"
#include "../joint/joint_fixture.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {

Matrix<float> rand_matrix(std::size_t r, std::size_t c, unsigned seed, float sigma = 1.0f) {
  Matrix<float> m(r, c);
  const auto v = sparq_test::randn(r * c, seed, sigma);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

// Correlated inputs with a few large channels: X = Z (I + 0.6 G / sqrt(cin)), channels 0, 5, 11 x 8.
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
    for (std::size_t j : {0u, 5u, 11u})
      if (j < cin) x(t, j) *= 8.0f;
  return x;
}

// (w' - w)^T H (w' - w) summed over rows, in double.
double hloss(const Matrix<float>& h, const Matrix<float>& w, const Matrix<float>& wh) {
  const std::size_t n = w.cols();
  double e = 0;
  for (std::size_t r = 0; r < w.rows(); ++r)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        e += (double(wh(r, i)) - w(r, i)) * double(h(i, j)) * (double(wh(r, j)) - w(r, j));
  return e;
}

// Solves A x = b (n x n, dense, partial pivoting) — independent of the library's Cholesky.
std::vector<double> solve(std::vector<double> a, std::vector<double> b) {
  const std::size_t n = b.size();
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r * n + c]) > std::abs(a[p * n + c])) p = r;
    for (std::size_t k = 0; k < n; ++k) std::swap(a[c * n + k], a[p * n + k]);
    std::swap(b[c], b[p]);
    for (std::size_t r = c + 1; r < n; ++r) {
      const double f = a[r * n + c] / a[c * n + c];
      for (std::size_t k = c; k < n; ++k) a[r * n + k] -= f * a[c * n + k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (std::size_t i = n; i-- > 0;) {
    double s = b[i];
    for (std::size_t k = i + 1; k < n; ++k) s -= a[i * n + k] * x[k];
    x[i] = s / a[i * n + i];
  }
  return x;
}

// The least-squares optimum of row w for the kept set K: w'_K = w_K + H_KK^-1 H_KP w_P, w'_P = 0.
std::vector<double> ls_optimum(const Matrix<float>& h, const float* w, const std::vector<std::size_t>& kept) {
  const std::size_t n = h.rows(), k = kept.size();
  std::vector<std::uint8_t> in(n, 0);
  for (auto c : kept) in[c] = 1;
  std::vector<double> a(k * k), b(k, 0.0);
  for (std::size_t i = 0; i < k; ++i) {
    for (std::size_t j = 0; j < k; ++j) a[i * k + j] = h(kept[i], kept[j]);
    for (std::size_t p = 0; p < n; ++p)
      if (!in[p]) b[i] += double(h(kept[i], p)) * w[p];
  }
  const std::vector<double> d = solve(a, b);
  std::vector<double> out(n, 0.0);
  for (std::size_t i = 0; i < k; ++i) out[kept[i]] = w[kept[i]] + d[i];
  return out;
}

}  // namespace

TEST_CASE("ExactOBS: the kept weights are the least-squares optimum of their mask", "[prune][obs]") {
  const std::size_t cout = 12, cin = 24, T = 300;
  const Matrix<float> x = correlated_tokens(T, cin, 11);
  const Matrix<float> w = rand_matrix(cout, cin, 12);
  const Matrix<float> h = hessian_from_tokens(x.view(), 1);
  PruneOptions o;
  o.dampening = 0.0;  // the optimum of the plain H
  for (double s : {0.25, 0.5, 0.75}) {
    o.sparsity = s;
    Matrix<float> wp = w;
    const ExactObsReport rep = Pruner<ExactOBS, Unstructured>(o).run(wp.view(), h);
    const std::size_t k = prune_count(s, cin);
    double loss = 0;
    for (std::size_t r = 0; r < cout; ++r) {
      std::vector<std::size_t> kept;
      for (std::size_t c = 0; c < cin; ++c) {
        if (rep.mask(r, c)) kept.push_back(c);
        else REQUIRE(wp(r, c) == 0.0f);
      }
      REQUIRE(kept.size() == cin - k);  // s * cin is an integer: every row prunes exactly k
      const std::vector<double> opt = ls_optimum(h, w.row(r), kept);
      double scale = 0;
      for (std::size_t c = 0; c < cin; ++c) scale = std::max(scale, std::abs(opt[c]));
      for (std::size_t c = 0; c < cin; ++c) REQUIRE(std::abs(wp(r, c) - opt[c]) <= 2e-3 * (1.0 + scale));
    }
    loss = hloss(h, w, wp) / 2.0;
    INFO("s = " << s << " report loss " << rep.loss << " measured " << loss);
    REQUIRE(std::abs(rep.loss - loss) <= 1e-3 * (1.0 + loss));  // the tracked ΔE sum is the true loss
  }
}

TEST_CASE("ExactOBS: greedy reaches a low loss among all masks of a tiny row, beats SparseGPT and Wanda-like pruning",
          "[prune][obs]") {
  const std::size_t cin = 8, T = 200;
  const Matrix<float> x = correlated_tokens(T, cin, 21);
  const Matrix<float> h = hessian_from_tokens(x.view(), 1);
  PruneOptions o;
  o.sparsity = 0.5;
  o.dampening = 0.0;
  std::size_t optimal = 0;
  for (unsigned seed = 0; seed < 20; ++seed) {
    const Matrix<float> w = rand_matrix(1, cin, 100 + seed);
    Matrix<float> wp = w;
    (void)Pruner<ExactOBS, Unstructured>(o).prune(wp.view(), h);
    const double greedy = hloss(h, w, wp);
    double best = 1e300;
    for (unsigned m = 0; m < (1u << cin); ++m) {  // every mask keeping 4 of 8
      if (__builtin_popcount(m) != 4) continue;
      std::vector<std::size_t> kept;
      for (std::size_t c = 0; c < cin; ++c)
        if (m & (1u << c)) kept.push_back(c);
      const std::vector<double> opt = ls_optimum(h, w.row(0), kept);
      Matrix<float> wo(1, cin);
      for (std::size_t c = 0; c < cin; ++c) wo(0, c) = float(opt[c]);
      best = std::min(best, hloss(h, w, wo));
    }
    REQUIRE(greedy >= best * (1 - 1e-4) - 1e-9);  // no mask beats the brute-force optimum
    optimal += greedy <= best * (1 + 1e-4) + 1e-9;
  }
  INFO("greedy found the optimal mask in " << optimal << " of 20 rows");
  REQUIRE(optimal >= 10);  // greedy OBS is optimal on most tiny rows

  const std::size_t cout = 32, n = 64;
  const Matrix<float> x2 = correlated_tokens(400, n, 31);
  const Matrix<float> w2 = rand_matrix(cout, n, 32);
  const Matrix<float> h2 = hessian_from_tokens(x2.view(), 1);
  PruneOptions p;
  p.sparsity = 0.5;
  Matrix<float> wo = w2, ws = w2;
  (void)Pruner<ExactOBS, Unstructured>(p).prune(wo.view(), h2);
  (void)Pruner<SparseGPT, Unstructured>(p).prune(ws.view(), h2);
  const double eo = hloss(h2, w2, wo), es = hloss(h2, w2, ws);
  INFO("ExactOBS " << eo << " SparseGPT " << es);
  REQUIRE(eo < es);
}

TEST_CASE("ExactOBS: N:M groups, total count and allocation bounds, dead inputs", "[prune][obs]") {
  const std::size_t cout = 10, cin = 40;
  const Matrix<float> x = correlated_tokens(250, cin, 41);
  const Matrix<float> w = rand_matrix(cout, cin, 42);
  Matrix<float> h = hessian_from_tokens(x.view(), 1);
  PruneOptions o;
  {
    Matrix<float> wn = w;
    const ExactObsReport rep = Pruner<ExactOBS, NM<2, 4>>(o).run(wn.view(), h);
    for (std::size_t r = 0; r < cout; ++r)
      for (std::size_t g = 0; g < cin; g += 4) {
        std::size_t kept = 0, nz = 0;
        for (std::size_t i = 0; i < 4; ++i) {
          kept += rep.mask(r, g + i);
          nz += wn(r, g + i) != 0.0f;
          if (!rep.mask(r, g + i)) REQUIRE(wn(r, g + i) == 0.0f);
        }
        REQUIRE(kept == 2);
        REQUIRE(nz <= 2);
      }
    Matrix<float> w8 = w;
    (void)Pruner<ExactOBS, NM<4, 8>>(o).prune(w8.view(), h);
    for (std::size_t r = 0; r < cout; ++r)
      for (std::size_t g = 0; g < cin; g += 8)
        REQUIRE(std::count_if(w8.row(r) + g, w8.row(r) + g + 8, [](float v) { return v != 0.0f; }) <= 4);
    Matrix<float> bad(cout, 42);
    Matrix<float> hb(42, 42);
    for (std::size_t i = 0; i < 42; ++i) hb(i, i) = 1.0f;
    REQUIRE_THROWS_AS((Pruner<ExactOBS, NM<2, 4>>(o).prune(bad.view(), hb)), sparq::error);
  }
  // 0.6 * 40 = 24 per row, 0.6 * 400 = 240 in total; 0.63: 25 per row, 252 in total (2 rows prune 26)
  for (double s : {0.6, 0.63}) {
    for (double spread : {0.0, 0.2}) {
      o.sparsity = s;
      o.obs_spread = spread;
      Matrix<float> wp = w;
      const ExactObsReport rep = Pruner<ExactOBS, Unstructured>(o).run(wp.view(), h);
      const std::size_t zeros = std::size_t(std::count(rep.mask.data(), rep.mask.data() + rep.mask.size(), 0));
      REQUIRE(zeros == prune_count(s, cout * cin));
      const std::size_t k = prune_count(s, cin), d = std::size_t(std::floor(spread * cin));
      REQUIRE(rep.min_row_pruned >= k - d);
      REQUIRE(rep.max_row_pruned <= k + std::max<std::size_t>(d, 1));
      if (spread == 0.0) REQUIRE(rep.max_row_pruned - rep.min_row_pruned <= 1);
    }
  }
  // A dead input (H_ii = 0) is zeroed and costs nothing.
  for (std::size_t i = 0; i < cin; ++i) h(3, i) = h(i, 3) = 0.0f;
  o.sparsity = 0.5;
  o.obs_spread = 0.0;
  Matrix<float> wd = w;
  const ExactObsReport rd = Pruner<ExactOBS, Unstructured>(o).run(wd.view(), h);
  REQUIRE(rd.dead_inputs == 1);
  for (std::size_t r = 0; r < cout; ++r) REQUIRE(wd(r, 3) == 0.0f);
  // Bad options and statistics are errors naming the value.
  o.obs_spread = 1.5;
  REQUIRE_THROWS_WITH((Pruner<ExactOBS, Unstructured>(o)), Catch::Contains("obs_spread = 1.5"));
  o.obs_spread = 0.0;
  Matrix<float> hs(cin - 1, cin - 1);
  REQUIRE_THROWS_WITH((Pruner<ExactOBS, Unstructured>(o).prune(wd.view(), hs)), Catch::Contains("39x39"));
}

TEST_CASE("obq_quantize: on the symmetric RTN grid, zeros kept, RTN when H is diagonal, lower error than RTN",
          "[quant][obq]") {
  const std::size_t cout = 16, cin = 48;
  const Matrix<float> x = correlated_tokens(300, cin, 51);
  const Matrix<float> h = hessian_from_tokens(x.view(), 1);
  Matrix<float> w = rand_matrix(cout, cin, 52);
  PruneOptions po;
  (void)Pruner<ExactOBS, Unstructured>(po).prune(w.view(), h);  // 50 % zeros
  for (std::size_t g : {std::size_t(0), std::size_t(16), std::size_t(20)}) {
    for (int bits : {4, 8}) {
      Matrix<float> q = w;
      ObqOptions o;
      o.bits = bits;
      o.group_size = g;
      obq_quantize(q.view(), h.view(), o);
      const float qmax = float((1 << (bits - 1)) - 1);
      const std::size_t G = g == 0 ? cin : g;
      for (std::size_t r = 0; r < cout; ++r)
        for (std::size_t c0 = 0; c0 < cin; c0 += G) {
          const std::size_t c1 = std::min(cin, c0 + G);
          float am = 0;
          for (std::size_t c = c0; c < c1; ++c) am = std::max(am, std::abs(q(r, c)));
          if (am == 0) continue;
          // some scale s with every value = s * integer in [-qmax, qmax]: the largest code k gives s = am / k
          bool found = false;
          for (int k = int(qmax); k >= 1 && !found; --k) {
            const float s = am / float(k);
            bool ok = true;
            for (std::size_t c = c0; c < c1 && ok; ++c) {
              const float v = q(r, c) / s;
              ok = std::abs(v - std::nearbyint(v)) <= 1e-3f && std::abs(v) <= qmax + 1e-3f;
            }
            found = ok;
          }
          REQUIRE(found);
        }
      for (std::size_t i = 0; i < w.size(); ++i)
        if (w.data()[i] == 0.0f) REQUIRE(q.data()[i] == 0.0f);
      if (g == 0 && bits == 4) {  // lower layer loss than round-to-nearest on correlated inputs
        QuantConfig cfg;
        cfg.bits = 4;
        const Matrix<float> rtn = quant::fake_quantize(std::as_const(w).view(), cfg);
        const double eo = hloss(h, w, q), er = hloss(h, w, rtn);
        INFO("obq " << eo << " rtn " << er);
        REQUIRE(eo < er);
      }
    }
  }
  // Diagonal H: nothing to compensate, so obq = per-channel RTN bit for bit.
  Matrix<float> hd(cin, cin);
  for (std::size_t i = 0; i < cin; ++i) hd(i, i) = 1.0f + float(i);
  Matrix<float> q = w;
  ObqOptions o;
  obq_quantize(q.view(), hd.view(), o);
  QuantConfig cfg;
  cfg.bits = 8;
  const Matrix<float> rtn = quant::fake_quantize(std::as_const(w).view(), cfg);
  REQUIRE(q.storage() == rtn.storage());
  o.bits = 9;
  REQUIRE_THROWS_WITH(obq_quantize(q.view(), hd.view(), o), Catch::Contains("bits = 9"));
  o.bits = 8;
  Matrix<float> hs(cin + 1, cin + 1);
  REQUIRE_THROWS_WITH(obq_quantize(q.view(), hs.view(), o), Catch::Contains("49x49"));
}

TEST_CASE("Recipe tokens obs / obq and the named jsq+ recipes", "[joint][recipe][obs]") {
  const RecipeSpec r = parse_recipe("smooth:0.5,obs:0.6:spread=0.1,obq:w4g64a8");
  REQUIRE(r.stages.size() == 3);
  const auto& p = std::get<PruneStageSpec>(r.stages[1]);
  CHECK(p.metric == PruneMetricKind::obs);
  CHECK(p.options.obs_spread == 0.1);
  CHECK(std::get<ObqStageSpec>(r.stages[2]).options.group_size == 64);
  CHECK(r.weight_bits() == 4);
  CHECK(r.activation_bits == 8);
  CHECK(to_string(r) == "smooth:0.5,obs:0.6:spread=0.1,obq:w4g64,a8");
  CHECK(to_string(parse_recipe(to_string(r))) == to_string(r));
  REQUIRE_THROWS_WITH(parse_recipe("obs:0.5:spread=2"), Catch::Contains("spread=2"));
  REQUIRE_THROWS_WITH(parse_recipe("obs:0.5:inch"), Catch::Contains("obs:0.5:inch"));
  REQUIRE_THROWS_WITH(parse_recipe("obs:0.5,obq:w8,w8"), Catch::Contains("two quantizers"));
  const RecipeSpec j = named_recipe("jsq+-2:4");
  REQUIRE(j.stages.size() == 4);
  CHECK(std::get<PruneStageSpec>(j.stages[2]).pattern == PrunePatternKind::nm);
  CHECK(std::get<PermuteStageSpec>(j.stages[1]).options.n == 2);
  CHECK(std::get<PermuteStageSpec>(j.stages[1]).options.m == 4);
  CHECK(std::get<PermuteStageSpec>(named_recipe("jsq+-4:8").stages[1]).options.fallback);
  CHECK(named_recipe("jsq+").stages.size() == 3);
  CHECK(to_string(j) == "smooth:0.5,perm,obs:2:4,obq:w8,a8");
  CHECK(std::get<PruneStageSpec>(named_recipe("jsq+-4:8").stages[2]).nm_fallback);
}

TEST_CASE("jsq+ on stories260K: lower held-out calibration perplexity than SparseGPT + SmoothQuant", "[real][obs]") {
  const joint_test::Data* d = joint_test::data();
  if (d == nullptr) return;
  const auto windows = model::calibration_windows(d->calib, 8, 128);
  // held-out: calibration tokens after the windows (never the evaluation text)
  const std::vector<int> held(d->calib.begin() + 8 * 128, d->calib.begin() + 8 * 128 + 2048);
  auto ppl = [&](const char* name) {
    model::Llama m = joint_test::fresh_model(*d);
    (void)compress(m, windows, named_recipe(name));
    return model::perplexity(m, held).perplexity;
  };
  const double plus = ppl("jsq+"), sgsq = ppl("sparsegpt+smoothquant");
  INFO("jsq+ " << plus << " sparsegpt+smoothquant " << sgsq);
  REQUIRE(plus < 0.95 * sgsq);
  // The compile-time twin of jsq+ gives bit-identical weights.
  model::Llama a = joint_test::fresh_model(*d), b = joint_test::fresh_model(*d);
  (void)compress(a, windows, named_recipe("jsq+"));
  const Compressor<Smooth, Pruner<ExactOBS, Unstructured>, Obq> c{Smooth(), Pruner<ExactOBS, Unstructured>(), Obq{}};
  CompressOptions co;
  co.activation_bits = 8;
  (void)c.compress(b, windows, co);
  CHECK(joint_test::same_weights(a, b));
}

TEST_CASE("nm_permutation: a permutation, never below the identity, separates clustered saliency", "[prune][perm]") {
  // Rows 0..7, 16 inputs: the large scores sit in pairs 0-1, 4-5, 8-9, 12-13 of the same 2:4 groups,
  // plus a third large one per group (2, 6, 10, 14): the identity must prune one large score per group.
  Matrix<float> s(8, 16);
  for (std::size_t r = 0; r < 8; ++r)
    for (std::size_t c = 0; c < 16; ++c) s(r, c) = (c % 4 < 3) ? 10.0f + float(r + c) * 0.01f : 0.1f;
  std::vector<std::size_t> id(16);
  for (std::size_t k = 0; k < 16; ++k) id[k] = k;
  const std::vector<std::size_t> p = nm_permutation(s.view(), 2, 4);
  check_permutation(p, 16, "test");
  const double r0 = nm_retained_score(s.view(), id, 2, 4), r1 = nm_retained_score(s.view(), p, 2, 4);
  INFO("identity " << r0 << " permuted " << r1);
  REQUIRE(r1 >= r0);
  // 12 large scores and 8 kept slots per row: the best keeps 8 large ones; the identity keeps 8 as well
  // here (2 per group), so build a case where it cannot: large scores in groups 0 and 1 only.
  Matrix<float> s2(4, 16, 0.0f);
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t c = 0; c < 8; ++c) s2(r, c) = 5.0f + float(c);
  const std::vector<std::size_t> p2 = nm_permutation(s2.view(), 2, 4);
  const double a0 = nm_retained_score(s2.view(), id, 2, 4), a1 = nm_retained_score(s2.view(), p2, 2, 4);
  INFO("identity " << a0 << " permuted " << a1);
  REQUIRE(a1 > a0 * 1.3);  // identity keeps 4 of the 8 large scores per row, a permutation all 8
  // N:M validity after the permutation: prune the permuted weights, every group keeps 2 of 4.
  const Matrix<float> w = rand_matrix(6, 16, 61);
  const Matrix<float> x = correlated_tokens(120, 16, 62);
  const Matrix<float> h = hessian_from_tokens(x.view(), 1);
  const Matrix<float> wp = permute_columns(w.view(), p2.size() == 16 ? p2 : id);
  Matrix<float> hp(16, 16);
  for (std::size_t i = 0; i < 16; ++i)
    for (std::size_t j = 0; j < 16; ++j) hp(i, j) = h(p2[i], p2[j]);
  Matrix<float> wq = wp;
  (void)Pruner<ExactOBS, NM<2, 4>>().prune(wq.view(), hp);
  for (std::size_t r = 0; r < 6; ++r)
    for (std::size_t g = 0; g < 16; g += 4)
      REQUIRE(std::count_if(wq.row(r) + g, wq.row(r) + g + 4, [](float v) { return v != 0.0f; }) <= 2);
  REQUIRE_THROWS_WITH(check_permutation({0, 1, 1}, 3, "t"), Catch::Contains("entry 2 = 1"));
  REQUIRE_THROWS_WITH((void)nm_permutation(s.view().rows_range(0, 2), 2, 3), Catch::Contains("cin = 16"));
}

TEST_CASE("permute_ffn_hidden: the permuted stories260K computes the same logits; perm,obs:2:4 keeps w2 2:4",
          "[real][perm]") {
  const joint_test::Data* d = joint_test::data();
  if (d == nullptr) return;
  model::Llama a = joint_test::fresh_model(*d), b = joint_test::fresh_model(*d);
  const std::size_t hid = a.config().hidden_dim, n = 64, vocab = a.config().vocab_size;
  std::vector<std::size_t> perm(hid);
  for (std::size_t k = 0; k < hid; ++k) perm[k] = (k * 37 + 11) % hid;  // 37 is prime to 172
  check_permutation(perm, hid, "test");
  for (std::size_t blk = 0; blk < b.config().n_layers; ++blk) {
    permute_ffn_hidden(b.block_weights(blk), perm);
    b.refresh_block(blk);
  }
  REQUIRE_FALSE(joint_test::same_weights(a, b));
  const std::vector<int> toks(d->eval.begin(), d->eval.begin() + static_cast<std::ptrdiff_t>(n));
  Matrix<float> la(n, vocab), lb(n, vocab);
  model::LlamaState sa(a.config(), n, a.config().n_layers), sb(b.config(), n, b.config().n_layers);
  a.prefill(toks, sa, la.view());
  b.prefill(toks, sb, lb.view());
  double worst = 0;
  for (std::size_t i = 0; i < la.size(); ++i)
    worst = std::max(worst, double(std::abs(la.data()[i] - lb.data()[i])) / (1.0 + std::abs(la.data()[i])));
  INFO("largest relative logit difference " << worst);
  REQUIRE(worst <= 1e-4);  // only the summation order of w2's dot products changed

  // The recipe: w2 of every block is 2:4 after 'perm' reordered it (and the order differs from the input).
  model::Llama c = joint_test::fresh_model(*d);
  const auto windows = model::calibration_windows(d->calib, 8, 128);
  (void)compress(c, windows, parse_recipe("smooth,perm,obs:2:4,obq:w8,a8"));
  for (std::size_t blk = 0; blk < c.config().n_layers; ++blk) {
    const Matrix<float>& w2 = c.weights().blocks[blk].w2;
    for (std::size_t r = 0; r < w2.rows(); ++r)
      for (std::size_t g = 0; g < w2.cols(); g += 4)
        REQUIRE(std::count_if(w2.row(r) + g, w2.row(r) + g + 4, [](float v) { return v != 0.0f; }) <= 2);
  }
  REQUIRE_THROWS_WITH(parse_recipe("perm,obs:0.5"), Catch::Contains("N:M prune"));
  CHECK(to_string(parse_recipe("smooth,perm,obs:4:8:fallback,obq:w8,a8")) == "smooth:0.5,perm,obs:4:8:fallback,obq:w8,a8");
}
