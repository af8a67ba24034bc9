// LowRank / LowRankCompensation as Compressor stages and recipe tokens, the N:M fallback of the prune stage:
// order rules, grammar, compile-time = run-time bits, factors = a direct LowRankCompensation call on the same
// inputs, install_low_rank, and LoRC lowering the perplexity of W4 g128 and of 50 % SAR + W8 on stories260K.
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "joint_fixture.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/joint/compressor.hpp"
#include "sparq/joint/edit_vector_compressor.hpp"
#include "sparq/joint/named_recipes.hpp"
#include "sparq/joint/recipe.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/quant/quantize.hpp"

using namespace sparq;
using model::Linear;

namespace {

// Test stages: one asks for the block's original weights and checks them, one reads them without asking.
struct OriginalProbe {
  mutable int checked = 0;
};
struct OriginalThief {};

}  // namespace

template <>
struct sparq::StageTraits<OriginalProbe> {
  static constexpr StageInfo info{"origprobe", false, true, false, false};
  static void request(const OriginalProbe&, StatRequest& r) { r.keep_original_weights(); }
  static void apply(const OriginalProbe& s, BlockContext& ctx) {
    const auto* d = joint_test::data();
    for (Linear l : model::all_linears) {
      const auto& o = ctx.original_linear(l);
      const auto& dense = d->weights.blocks[ctx.block].linear(l);
      // The pruner ran before this stage: the original is the dense matrix, the current one is not.
      if (std::memcmp(o.data(), dense.data(), o.size() * sizeof(float)) == 0 &&
          std::memcmp(ctx.weights.linear(l).data(), dense.data(), o.size() * sizeof(float)) != 0)
        ++s.checked;
    }
  }
};
template <>
struct sparq::StageTraits<OriginalThief> {
  static constexpr StageInfo info{"thief", false, true, false, false};
  static void request(const OriginalThief&, StatRequest&) {}
  static void apply(const OriginalThief&, BlockContext& ctx) { (void)ctx.original_linear(Linear::wq); }
};

namespace {

using W4g128 = Quantizer<Symmetric, PerGroup<128>, 4>;
using W8 = Quantizer<Symmetric, PerChannel, 8>;

std::string error_of(std::string_view s) {
  try {
    (void)parse_recipe(s);
  } catch (const sparq::error& e) {
    return e.what();
  }
  return "";
}

constexpr StageOrderError order_of(std::initializer_list<StageInfo> l) {
  return stage_order_error(std::span<const StageInfo>(l.begin(), l.size()));
}

constexpr StageInfo prune_i = StageTraits<Pruner<Wanda, Unstructured>>::info;
constexpr StageInfo w8_i = StageTraits<W8>::info;
constexpr StageInfo gptq_i = StageTraits<Gptq<GptqGrid<4>>>::info;
constexpr StageInfo smooth_i = StageTraits<Smooth>::info;
constexpr StageInfo lorc_i = StageTraits<LowRankCompensation>::info;
constexpr StageInfo lr_i = StageTraits<LowRank>::info;

static_assert(order_of({prune_i, w8_i, lorc_i}) == StageOrderError::none);
static_assert(order_of({prune_i, lorc_i}) == StageOrderError::none);
static_assert(order_of({smooth_i, gptq_i, lorc_i}) == StageOrderError::none);
static_assert(order_of({lorc_i}) == StageOrderError::nothing_to_compensate);
static_assert(order_of({smooth_i, lorc_i}) == StageOrderError::nothing_to_compensate);
static_assert(order_of({lorc_i, w8_i}) == StageOrderError::nothing_to_compensate);
static_assert(order_of({prune_i, lorc_i, w8_i}) == StageOrderError::compensation_not_last);
static_assert(order_of({w8_i, lorc_i, lorc_i}) == StageOrderError::compensation_not_last);
static_assert(order_of({lr_i}) == StageOrderError::none);
static_assert(order_of({smooth_i, lr_i, w8_i}) == StageOrderError::none);
static_assert(order_of({lr_i, gptq_i}) == StageOrderError::after_low_rank);
static_assert(order_of({lr_i, prune_i}) == StageOrderError::after_low_rank);
static_assert(order_of({lr_i, w8_i, lorc_i}) == StageOrderError::after_low_rank);
static_assert(order_of({w8_i, lr_i}) == StageOrderError::float_after_quantizer);
static_assert(CompressionStage<LowRank> && CompressionStage<LowRankCompensation> &&
              CompressionStage<NMFallback<Pruner<SAR, NM<4, 8>>>>);

std::vector<std::vector<int>> small_windows(const joint_test::Data& d) {
  return model::calibration_windows(d.calib, joint_test::sanitized ? 2 : 4, joint_test::sanitized ? 32 : 64);
}

bool same_factor(const lowrank::StoredFactor& x, const lowrank::StoredFactor& y) {
  if (x.rows() != y.rows() || x.cols() != y.cols() || x.format() != y.format() || x.bytes() != y.bytes()) return false;
  const Matrix<float> a = x.decode(), b = y.decode();
  return std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// Same weights and bit-identical factors (present on the same linears).
bool same_factors(const CompressReport& a, const CompressReport& b) {
  if (a.linears.size() != b.linears.size()) return false;
  for (std::size_t i = 0; i < a.linears.size(); ++i) {
    const auto& x = a.linears[i];
    const auto& y = b.linears[i];
    if (x.factors.has_value() != y.factors.has_value()) return false;
    if (!x.factors) continue;
    if (x.factors->role != y.factors->role || !same_factor(x.factors->a, y.factors->a) ||
        !same_factor(x.factors->b, y.factors->b))
      return false;
  }
  return true;
}

}  // namespace

TEST_CASE("recipe tokens lorc / lowrank / :fallback, canonical strings and errors", "[joint][recipe][lowrank]") {
  const auto r = parse_recipe("sar:0.5,w4g128a0,lorc:8:f16");
  REQUIRE(r.lorc() != nullptr);
  CHECK(r.lorc()->options.rank == 8);
  CHECK(r.lorc()->options.format == lowrank::FactorFormat::f16);
  CHECK(r.lorc()->options.whitening == lowrank::WhiteningKind::cholesky);
  CHECK(to_string(r) == "sar:0.5,w4g128,lorc:8:f16,a0");
  const auto d = parse_recipe("w8,lorc");  // defaults: rank 8, int8, Cholesky
  CHECK(d.lorc()->options.rank == 8);
  CHECK(d.lorc()->options.format == lowrank::FactorFormat::int8);
  CHECK(parse_recipe("w8,lorc:4:diag").lorc()->options.whitening == lowrank::WhiteningKind::diagonal);
  CHECK(parse_recipe("lowrank:r64").low_rank()->options.rule.rank == 64);
  CHECK(parse_recipe("lowrank:e0.9:plain").low_rank()->options.rule.energy == 0.9);
  CHECK(parse_recipe("lowrank:e0.9:plain").low_rank()->options.whitening == lowrank::WhiteningKind::identity);
  CHECK(parse_recipe("lowrank").low_rank()->options.rule.budget == 0.5);
  const auto fb = parse_recipe("sar:4:8:fallback,w8a8");
  CHECK(std::get<PruneStageSpec>(fb.stages[0]).nm_fallback);
  CHECK_FALSE(std::get<PruneStageSpec>(parse_recipe("sar:4:8").stages[0]).nm_fallback);
  for (const char* s : {"sar:0.5,w4g128,lorc:8:int8,a0", "wanda:2:4,w8,lorc:16:bf16:diag", "lowrank:r8",
                        "lowrank:e0.9:diag,w8", "lowrank:b0.25:plain", "sar:4:8:fallback,smooth:0.5,w8,lorc:8:f32:plain,a8",
                        "magnitude:0.5,lorc:4:int8"}) {
    INFO(s);
    CHECK(to_string(parse_recipe(s)) == s);
  }
  struct Bad {
    const char* recipe;
    const char* token;
  };
  for (const Bad b : {Bad{"w8,lorc:0", "lorc:0"}, Bad{"w8,lorc:8:q4", "lorc:8:q4"}, Bad{"w8,lorc:8:int8:chol:x", "lorc:8:int8:chol:x"},
                      Bad{"lowrank:r0", "lowrank:r0"}, Bad{"lowrank:e1.5", "lowrank:e1.5"}, Bad{"lowrank:b0", "lowrank:b0"},
                      Bad{"lowrank:x3", "lowrank:x3"}, Bad{"lowrank:r8:int8", "lowrank:r8:int8"},
                      Bad{"sar:2:4:fallback", "sar:2:4:fallback"}, Bad{"wanda:0.5:fallback", "wanda:0.5:fallback"}}) {
    const std::string e = error_of(b.recipe);
    INFO(b.recipe << " -> " << e);
    CHECK(e.find("parse_recipe: bad token '" + std::string(b.token) + "': expected") != std::string::npos);
  }
  CHECK(error_of("lorc,w8").find("nothing to compensate") != std::string::npos);
  CHECK(error_of("smooth,lorc").find("nothing to compensate") != std::string::npos);
  CHECK(error_of("wanda:0.5,lorc,w8").find("must be the last stage") != std::string::npos);
  CHECK(error_of("lowrank:r8,wanda:0.5").find("only a Quantizer") != std::string::npos);
  CHECK(error_of("lowrank:r8,gptq:w4").find("only a Quantizer") != std::string::npos);
  CHECK(error_of("w8,lowrank:r8").find("needs float weights") != std::string::npos);
}

TEST_CASE("named recipes with +lorc, and -4:8 with the N:M fallback", "[joint][recipe][lowrank]") {
  CHECK(to_string(named_recipe("jsq+lorc")) == "edit:5e-05,sar:0.5,smooth:0.5,w8,lorc:8:int8,a8");
  CHECK(named_recipe("jsq+lorc").search);
  NamedRecipeOptions o;
  o.weight_bits = 4;
  o.group_size = 128;
  o.activation_bits = 0;
  CHECK(to_string(named_recipe("w8a8+lorc", o)) == "w4g128,lorc:8:int8,a0");
  CHECK(to_string(named_recipe("wanda+lorc")) == "wanda:0.5,lorc:8:int8");
  CHECK(to_string(named_recipe("jsq-4:8+lorc")) == "edit:5e-05,sar:4:8:fallback,smooth:0.5,w8,lorc:8:int8,a8");
  CHECK(to_string(named_recipe("wanda-2:4")) == "wanda:2:4");
  for (const auto& n : named_recipe_names())
    if (n != "dense") CHECK_NOTHROW(named_recipe(n + "+lorc"));
  CHECK_THROWS_WITH(named_recipe("dense+lorc"), Catch::Contains("nothing to compensate"));
}

TEST_CASE("LoRC stage: statistics, ops, compile-time = run-time, factors = a direct call", "[joint][lowrank][real]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = small_windows(*d);
  const std::size_t L = d->weights.config.n_layers, W = win.size();
  CompressOptions a0;
  a0.activation_bits = 0;

  SECTION("SAR 50 % + W4 g128 + LoRC: Compressor and recipe give the same weights and factors") {
    using C = Compressor<Pruner<SAR, Unstructured>, W4g128, LowRankCompensation>;
    const C c{Pruner<SAR, Unstructured>({.sparsity = 0.5}), W4g128{}, LowRankCompensation{}};
    CHECK(c.request().original_weights);
    auto m1 = joint_test::fresh_model(*d);
    auto m2 = joint_test::fresh_model(*d);
    const auto r1 = c.compress(m1, win, a0);
    const auto r2 = compress(m2, win, parse_recipe("sar:0.5,w4g128a0,lorc:8"));
    CHECK(joint_test::same_weights(m1, m2));
    CHECK(same_factors(r1, r2));
    CHECK(r1.stat_updates == r2.stat_updates);
    // Hessians (LoRC) + square sums and mean sequences (SAR), at the four groups.
    CHECK(r1.stat_updates[static_cast<std::size_t>(StatKind::hessian)] == 4 * L * W);
    CHECK(r1.stat_updates[static_cast<std::size_t>(StatKind::column_sq)] == 4 * L * W);
    CHECK(r1.recipe == "prune,quantize,lorc");
    std::size_t expect_bytes = 0;
    for (const auto& lr : r1.linears) {
      REQUIRE(lr.factors.has_value());
      CHECK(lr.factors->role == FactorRole::compensation);
      CHECK(lr.factors->rank() == 8);
      CHECK(lr.factors->format() == lowrank::FactorFormat::int8);
      CHECK(lr.factors->a.rows() == lr.rows);
      CHECK(lr.factors->b.cols() == lr.cols);
      CHECK(lr.weight_bits == 4);
      expect_bytes += 8 * (lr.rows + lr.cols) + 4 * (lr.rows + 8);
      const auto* op = dynamic_cast<const model::CompensatedLinear*>(&m1.linear(lr.block, lr.linear));
      REQUIRE(op != nullptr);
      CHECK(dynamic_cast<const model::DenseLinear*>(&op->inner()) != nullptr);
    }
    CHECK(r1.factor_bytes() == expect_bytes);
    CHECK(r1.sparsity() >= 0.5);  // Ŵ stays as compressed: LoRC does not touch the weights
  }

  SECTION("the factors equal LowRankCompensation::apply on the same Ŵ and Hessian (hand-written chain)") {
    // The chain: Hessian of each group's inputs, RTN W4 g128 (tail group), LoRC r8 int8 Cholesky on
    // (W, Ŵ, H) by a direct call, CompensatedLinear installed so the next block sees the corrected block.
    struct Direct final : model::LayerwiseCallbacks {
      std::map<Linear, HessianAccumulator> h;
      std::vector<lowrank::Compensation> out;
      void on_linear_input(std::size_t, Linear leader, MatrixView<const float> x, std::size_t) override {
        h.try_emplace(leader, x.cols()).first->second.add(x);
      }
      void compress_block(std::size_t b, model::LlamaBlock& blk, model::Llama& model) override {
        QuantOptions qo;
        qo.tail_group = true;
        const W4g128 q(qo);
        for (Linear l : model::all_linears) {
          auto& w = blk.linear(l);
          const Matrix<float> orig = w;
          const auto fq = q.fake_quantize(std::as_const(w).view());
          std::copy(fq.data(), fq.data() + fq.size(), w.data());
          out.push_back(LowRankCompensation().apply(orig.view(), std::as_const(w).view(), h.at(model::input_group_leader(l))));
        }
        model.refresh_block(b);
        for (std::size_t i = 0; i < 7; ++i)
          model.set_linear(b, model::all_linears[i],
                           std::make_unique<model::CompensatedLinear>(model.take_linear(b, model::all_linears[i]),
                                                                      out[out.size() - 7 + i]));
        h.clear();
      }
    } direct;
    auto m1 = joint_test::fresh_model(*d);
    (void)model::run_layerwise(m1, win, direct);
    auto m2 = joint_test::fresh_model(*d);
    const auto r = compress(m2, win, parse_recipe("w4g128a0,lorc:8:int8"));
    CHECK(joint_test::same_weights(m1, m2));
    REQUIRE(r.linears.size() == direct.out.size());
    std::size_t same = 0;
    for (std::size_t i = 0; i < r.linears.size(); ++i)
      same += same_factor(r.linears[i].factors->a, direct.out[i].a) && same_factor(r.linears[i].factors->b, direct.out[i].b);
    CHECK(same == r.linears.size());
  }

  SECTION("install_low_rank on a model rebuilt from the compressed weights runs the same function") {
    auto m1 = joint_test::fresh_model(*d);
    const auto r = compress(m1, win, parse_recipe("wanda:0.5,w8a0,lorc:8"));
    model::Llama m2{model::LlamaWeights(m1.weights())};
    CHECK(install_low_rank(m2, r) == 7 * L);
    const std::vector<int> toks(d->eval.begin(), d->eval.begin() + 300);
    model::PerplexityOptions po;
    po.max_tokens = toks.size();
    CHECK(model::perplexity(m1, toks, po).perplexity == model::perplexity(m2, toks, po).perplexity);
    // Without install (CompressOptions::install_low_rank = false) the model keeps plain dense views.
    auto m3 = joint_test::fresh_model(*d);
    CompressOptions no;
    no.install_low_rank = false;
    const auto r3 = compress(m3, win, parse_recipe("wanda:0.5,w8a0,lorc:8"), no);
    CHECK(r3.factor_bytes() == r.factor_bytes());
    CHECK(dynamic_cast<const model::DenseLinear*>(&m3.linear(0, Linear::wq)) != nullptr);
  }

  SECTION("W8A8 + LoRC: correction outside the input quantizer; diagonal whitening requests square sums") {
    auto m = joint_test::fresh_model(*d);
    const auto r = compress(m, win, parse_recipe("smooth,w8a8,lorc:4:f16:diag"));
    CHECK(r.stat_updates[static_cast<std::size_t>(StatKind::column_sq)] == 4 * L * W);
    CHECK(r.stat_updates[static_cast<std::size_t>(StatKind::hessian)] == 0);
    const auto* op = dynamic_cast<const model::CompensatedLinear*>(&m.linear(2, Linear::w1));
    REQUIRE(op != nullptr);
    CHECK(dynamic_cast<const model::InputQuantLinear*>(&op->inner()) != nullptr);
    CHECK(r.linears.front().factors->format() == lowrank::FactorFormat::f16);
    CHECK(r.linears.front().factors->whitening == lowrank::WhiteningKind::diagonal);
  }
}

TEST_CASE("LowRank stage: W := A·B, LowRankLinear ops, a following Quantizer quantizes the factors", "[joint][lowrank][real]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = small_windows(*d);
  auto m1 = joint_test::fresh_model(*d);
  auto m2 = joint_test::fresh_model(*d);
  lowrank::LowRankOptions lo;
  lo.rule.rank = 8;
  const auto r1 = Compressor<LowRank>{LowRank(lo)}.compress(m1, win);
  const auto r2 = compress(m2, win, parse_recipe("lowrank:r8"));
  CHECK(joint_test::same_weights(m1, m2));
  CHECK(same_factors(r1, r2));
  CHECK(r1.activation_bits == 0);
  for (const auto& lr : r1.linears) {
    REQUIRE(lr.factors.has_value());
    CHECK(lr.factors->role == FactorRole::replacement);
    CHECK(lr.factors->rank() == 8);
    CHECK(lr.weight_bits == 32);
    const auto* op = dynamic_cast<const model::LowRankLinear*>(&m1.linear(lr.block, lr.linear));
    REQUIRE(op != nullptr);
    CHECK(op->weight_bytes() == 4 * 8 * (lr.rows + lr.cols));
  }
  // W8 after LowRank: the factors are the LowRank factors fake-quantized per row (8 bits) and W is
  // their product; the ops are InputQuantLinear(LowRankLinear) with the default A8.
  auto m3 = joint_test::fresh_model(*d);
  const auto r3 = Compressor<LowRank, W8>{LowRank(lo), W8{}}.compress(m3, win);
  auto m4 = joint_test::fresh_model(*d);
  const auto r4 = compress(m4, win, parse_recipe("lowrank:r8,w8"));
  CHECK(joint_test::same_weights(m3, m4));
  CHECK(same_factors(r3, r4));
  CHECK(r3.activation_bits == 8);
  const QuantConfig cfg = W8{}.config();
  for (std::size_t i = 0; i < r3.linears.size(); ++i) {
    const auto& lr = r3.linears[i];
    CHECK(lr.weight_bits == 8);
    const Matrix<float> a = lr.factors->a.decode(), b = lr.factors->b.decode();
    if (lr.block == 0) {  // same inputs as the float run in block 0: the factors are its factors, fake-quantized
      const Matrix<float> fa = r1.linears[i].factors->a.decode(), fb = r1.linears[i].factors->b.decode();
      const Matrix<float> qa = quant::fake_quantize(fa.view(), cfg), qb = quant::fake_quantize(fb.view(), cfg);
      CHECK(std::memcmp(a.data(), qa.data(), a.size() * sizeof(float)) == 0);
      CHECK(std::memcmp(b.data(), qb.data(), b.size() * sizeof(float)) == 0);
    }
    lowrank::LowRankFactors f;
    f.a = a;
    f.b = b;
    const Matrix<float> p = f.product();
    const auto& w = m3.weights().blocks[lr.block].linear(lr.linear);
    CHECK(std::memcmp(p.data(), w.data(), p.size() * sizeof(float)) == 0);
    const auto* op = dynamic_cast<const model::InputQuantLinear*>(&m3.linear(lr.block, lr.linear));
    REQUIRE(op != nullptr);
  }
  // The factors differ from the float ones (quantization happened).
  CHECK_FALSE(same_factors(r1, r3));
}

TEST_CASE("N:M fallback: 4:8 on stories260K prunes w2 (cin 172) 2:4, reported per linear", "[joint][prune][real]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = small_windows(*d);
  {
    auto m = joint_test::fresh_model(*d);
    CHECK_THROWS_WITH(compress(m, win, parse_recipe("sar:4:8,w8a8")), Catch::Contains("cin = 172"));
  }
  auto m1 = joint_test::fresh_model(*d);
  using F = NMFallback<Pruner<SAR, NM<4, 8>>>;
  const auto r1 = Compressor<F, W8>{F({.sparsity = 0.5}), W8{}}.compress(m1, win);
  auto m2 = joint_test::fresh_model(*d);
  const auto r2 = compress(m2, win, parse_recipe("sar:4:8:fallback,w8a8"));
  CHECK(joint_test::same_weights(m1, m2));
  std::size_t fallbacks = 0;
  for (const auto& lr : r2.linears) {
    const bool fb = lr.cols % 8 != 0;
    CHECK(lr.nm_fallback == fb);
    CHECK(lr.nm_n == (fb ? 2u : 4u));
    CHECK(lr.nm_m == (fb ? 4u : 8u));
    fallbacks += lr.nm_fallback;
    // Every group of nm_m consecutive inputs keeps at most nm_n weights.
    const auto& w = m2.weights().blocks[lr.block].linear(lr.linear);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < w.rows(); ++i)
      for (std::size_t g = 0; g < w.cols(); g += lr.nm_m) {
        std::size_t nz = 0;
        for (std::size_t j = g; j < g + lr.nm_m; ++j) nz += w(i, j) != 0.0f;
        bad += nz > lr.nm_n;
      }
    CHECK(bad == 0);
  }
  CHECK(fallbacks == d->weights.config.n_layers);  // w2 of every block
  for (std::size_t i = 0; i < r1.linears.size(); ++i) CHECK(r1.linears[i].nm_fallback == r2.linears[i].nm_fallback);
  CHECK(r2.sparsity() >= 0.5);
  // Plain N:M reports its pattern too; unstructured reports none.
  auto m3 = joint_test::fresh_model(*d);
  const auto r3 = compress(m3, win, parse_recipe("magnitude:2:4"));
  CHECK(r3.linears.front().nm_n == 2);
  CHECK_FALSE(r3.linears.front().nm_fallback);
  CHECK(r1.linears.front().nm_n == 4);
}

TEST_CASE("stories260K: LoRC r8 lowers the perplexity of W4 g128 and of 50 % SAR + W8", "[joint][lowrank][real][ppl]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = model::calibration_windows(d->calib, joint_test::sanitized ? 2 : 4, joint_test::sanitized ? 64 : 128);
  const std::vector<int> eval(d->eval.begin(), d->eval.begin() + (joint_test::sanitized ? 512 : 2048));
  model::PerplexityOptions po;
  po.max_tokens = eval.size();
  const double dense = model::perplexity(joint_test::fresh_model(*d), eval, po).perplexity;
  for (const char* base : {"w4g128a0", "sar:0.5,w8a0"}) {
    auto m0 = joint_test::fresh_model(*d);
    (void)compress(m0, win, parse_recipe(base));
    auto m1 = joint_test::fresh_model(*d);
    const auto r1 = compress(m1, win, parse_recipe(std::string(base) + ",lorc:8:int8"));
    const double p0 = model::perplexity(m0, eval, po).perplexity;
    const double p1 = model::perplexity(m1, eval, po).perplexity;
    WARN(base << ": ppl " << p0 << " -> with LoRC r8 int8 " << p1 << " (dense " << dense << ", " << eval.size()
              << " tokens, +" << r1.factor_bytes() << " factor bytes)");
    CHECK(std::isfinite(p1));
    CHECK(p1 < p0);
    CHECK(p1 > dense * 0.98);  // a correction, not a better-than-dense model
  }
}

TEST_CASE("LoRC after smoothing (Smooth, AwqScale): the original W in the current coordinates", "[joint][lowrank][real]") {
  // LoRC fits W·diag(s) − Ŵ (and rows ÷ s for AWQ's w3 → w2 fold). A stage that compared the
  // unsmoothed W with the smoothed Ŵ would fit a large, wrong error and raise the perplexity.
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = small_windows(*d);
  const std::vector<int> eval(d->eval.begin(), d->eval.begin() + (joint_test::sanitized ? 256 : 1024));
  model::PerplexityOptions po;
  po.max_tokens = eval.size();
  for (const char* base : {"smooth:0.8,w4g32a0", "awq:w4g32:noclip,w4g32:asym,a0"}) {
    auto m0 = joint_test::fresh_model(*d);
    (void)compress(m0, win, parse_recipe(base));
    auto m1 = joint_test::fresh_model(*d);
    const auto r1 = compress(m1, win, parse_recipe(std::string(base) + ",lorc:8"));
    const double p0 = model::perplexity(m0, eval, po).perplexity;
    const double p1 = model::perplexity(m1, eval, po).perplexity;
    INFO(base << ": " << p0 << " -> " << p1);
    CHECK(p1 < p0);
    CHECK(r1.factor_bytes() > 0);
  }
}

TEST_CASE("EditVectorCompressor with LoRC: cached prefixes reinstall the corrections", "[joint][lowrank][jsq]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = small_windows(*d);
  const RecipeSpec spec = parse_recipe("edit:1e-2,sar:0.5,w8a8,lorc:4");
  const StagePlan plan = plan_of(spec);
  const CompressOptions copt = options_for(spec, {});
  EditVectorCompressor ec(d->weights, win, plan, copt);
  const std::vector<double> v1{1e-2, 1e-2, 1e-2, 1e-2, 1e-2}, v2{1e-2, 1e-2, 1e-2, 0.0, 5e-2};
  (void)ec.compress(v1);
  CompressReport rc;
  const auto mc = ec.compress(v2, &rc);
  CHECK(ec.last_reused_blocks() == 3);
  auto fresh = joint_test::fresh_model(*d);
  CompressOptions o = copt;
  o.edit_strengths = v2;
  const auto rf = compress(fresh, win, spec, o);
  CHECK(joint_test::same_weights(fresh, mc));
  CHECK(same_factors(rf, rc));
  CHECK(dynamic_cast<const model::CompensatedLinear*>(&mc.linear(0, Linear::w2)) != nullptr);
  const std::vector<int> toks(d->eval.begin(), d->eval.begin() + 256);
  model::PerplexityOptions po;
  po.max_tokens = toks.size();
  CHECK(model::perplexity(fresh, toks, po).perplexity == model::perplexity(mc, toks, po).perplexity);
}

TEST_CASE("original weights: kept only on request, equal to the block before its stages", "[joint][lowrank][real]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = small_windows(*d);
  const std::size_t L = d->weights.config.n_layers;
  auto m = joint_test::fresh_model(*d);
  const Compressor<Pruner<Magnitude, Unstructured>, OriginalProbe> c;
  CHECK(c.request().original_weights);
  CHECK(c.request().empty());  // no calibration statistic: no calibration pass needed
  const auto r = c.compress(m, win);
  CHECK(c.stage<1>().checked == static_cast<int>(7 * L));
  for (std::size_t k = 0; k < stat_kind_count; ++k) CHECK(r.stat_updates[k] == 0);
  auto m2 = joint_test::fresh_model(*d);
  CHECK_THROWS_WITH((Compressor<Pruner<Magnitude, Unstructured>, OriginalThief>{}.compress(m2, win)),
                    Catch::Contains("original weights of block 0 were not kept"));
  CHECK_FALSE(Compressor<Pruner<Magnitude, Unstructured>, W8>{}.request().original_weights);
  // Determinism: the same inputs give bit-identical factors.
  auto a = joint_test::fresh_model(*d);
  auto b = joint_test::fresh_model(*d);
  const auto ra = compress(a, win, parse_recipe("magnitude:0.5,w4g128a0,lorc:8"));
  const auto rb = compress(b, win, parse_recipe("magnitude:0.5,w4g128a0,lorc:8"));
  CHECK(same_factors(ra, rb));
  CHECK(ra.factor_bytes() > 0);
}

TEST_CASE("SAR 50 % + W8 + LoRC: block 0's factors equal a direct LowRankCompensation call", "[joint][lowrank][real]") {
  // Block 0's calibration inputs are the embeddings whatever the recipe, so the Hessians of its four
  // groups can be taken from an uncompressed pass; Ŵ is the compressed model's block 0.
  const auto* d = joint_test::data();
  if (!d) return;
  const auto win = small_windows(*d);
  struct Collect final : model::LayerwiseCallbacks {
    std::map<Linear, HessianAccumulator> h;
    void on_linear_input(std::size_t b, Linear leader, MatrixView<const float> x, std::size_t) override {
      if (b == 0) h.try_emplace(leader, x.cols()).first->second.add(x);
    }
    void compress_block(std::size_t, model::LlamaBlock&, model::Llama&) override {}
  } col;
  auto dense = joint_test::fresh_model(*d);
  (void)model::run_layerwise(dense, win, col);
  auto m = joint_test::fresh_model(*d);
  const auto r = compress(m, win, parse_recipe("sar:0.5,w8a0,lorc:8"));
  std::size_t same = 0;
  for (Linear l : model::all_linears) {
    const auto* lr = r.find(0, l);
    REQUIRE(lr != nullptr);
    const auto c = LowRankCompensation().apply(d->weights.blocks[0].linear(l).view(),
                                               m.weights().blocks[0].linear(l).view(),
                                               col.h.at(model::input_group_leader(l)));
    same += same_factor(lr->factors->a, c.a) && same_factor(lr->factors->b, c.b);
  }
  CHECK(same == 7);
}
