// JSQ search: the prefix cache is exact, the search is deterministic and never worse than its start,
// and a full JSQ run on stories260K stays within the CI budget.
#include <chrono>
#include <span>
#include <vector>

#include "joint_fixture.hpp"
#include "sparq/joint/edit_vector_compressor.hpp"
#include "sparq/joint/jsq_search.hpp"
#include "sparq/joint/named_recipes.hpp"
#include "sparq/joint/recipe.hpp"

using namespace sparq;

namespace {
struct Setup {
  std::vector<std::vector<int>> windows;
  std::span<const int> heldout;
};
Setup small(const joint_test::Data& d) {
  Setup s;
  // AddressSanitizer (-O1) is ~10x slower: fewer and shorter windows there.
  const std::size_t n = joint_test::sanitized ? 2 : 4, len = joint_test::sanitized ? 32 : 64;
  s.windows = model::calibration_windows(d.calib, n, len);
  s.heldout = std::span<const int>(d.calib).subspan(n * len, joint_test::sanitized ? 256 : 1024);  // after the windows
  return s;
}
JsqSearchOptions quick(std::size_t steps, std::uint64_t seed, bool reuse) {
  JsqSearchOptions o;
  o.anneal.steps = steps;
  o.anneal.seed = seed;
  o.reuse_prefix = reuse;
  o.eval.max_tokens = 0;
  o.eval.seq_len = joint_test::sanitized ? 128 : 256;
  o.progress = false;
  // Strengths large enough to change the statistics of a 4 x 64-token calibration set.
  o.choices = {0.0, 1e-3, 1e-2, 5e-2};
  return o;
}
}  // namespace

TEST_CASE("EditVectorCompressor: cached prefixes give the bits of a fresh compression", "[joint][jsq]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto s = small(*d);
  const RecipeSpec spec = named_recipe("jsq");
  const StagePlan plan = plan_of(spec);
  const CompressOptions copt = options_for(spec, {});
  EditVectorCompressor ec(d->weights, s.windows, plan, copt);
  const std::vector<double> v1{1e-2, 1e-2, 1e-2, 1e-2, 1e-2}, v2{1e-2, 1e-2, 1e-2, 0.0, 5e-2};
  CompressReport r1, r2;
  const auto m1 = ec.compress(v1, &r1);
  CHECK(ec.last_reused_blocks() == 0);
  const auto m2 = ec.compress(v2, &r2);
  CHECK(ec.last_reused_blocks() == 3);  // first difference at block 3
  CHECK(ec.blocks_compressed() == 5 + 2);
  for (const auto* v : {&v1, &v2}) {
    auto fresh = joint_test::fresh_model(*d);
    CompressOptions o;
    o.edit_strengths = *v;
    const auto rf = compress(fresh, s.windows, spec, o);  // model::run_layerwise
    const auto& mc = v == &v1 ? m1 : m2;
    const auto& rc = v == &v1 ? r1 : r2;
    CHECK(joint_test::same_weights(fresh, mc));
    CHECK(rf.nnz == rc.nnz);
    CHECK(rf.stat_updates == rc.stat_updates);
    CHECK(rc.attention_bits == 8);
    CHECK(model::perplexity(fresh, s.heldout).perplexity == model::perplexity(mc, s.heldout).perplexity);
  }
  CHECK_FALSE(joint_test::same_weights(m1, m2));  // the editing vector matters
  CHECK_THROWS_AS(ec.compress({1e-2, 1e-2}), sparq::error);  // one value per block
}

TEST_CASE("jsq_search: deterministic, cache-exact, never worse than its start", "[joint][jsq]") {
  const auto* d = joint_test::data();
  if (!d) return;
  const auto s = small(*d);
  const RecipeSpec spec = named_recipe("jsq");
  const std::size_t steps = joint_test::sanitized ? 2 : 6;
  JsqSearchOptions o = quick(steps, 7, true);
  o.start = {1e-2, 1e-2, 1e-2, 1e-2, 1e-2};
  const auto a = jsq_search(d->weights, s.windows, s.heldout, spec, {}, o);
  const auto b = jsq_search(d->weights, s.windows, s.heldout, spec, {}, o);
  o.reuse_prefix = false;
  const auto c = jsq_search(d->weights, s.windows, s.heldout, spec, {}, o);
  REQUIRE(a.steps.size() == steps + 1);
  REQUIRE(c.steps.size() == a.steps.size());
  for (std::size_t i = 0; i < a.steps.size(); ++i) {
    CHECK(a.steps[i].v == b.steps[i].v);
    CHECK(a.steps[i].perplexity == b.steps[i].perplexity);  // bit for bit
    CHECK(a.steps[i].v == c.steps[i].v);
    CHECK(a.steps[i].perplexity == c.steps[i].perplexity);  // cached == uncached
    CHECK(a.steps[i].accepted == c.steps[i].accepted);
  }
  CHECK(a.best == b.best);
  CHECK(a.best == c.best);
  CHECK(a.best_perplexity <= a.start_perplexity);
  CHECK(a.start == o.start);
  CHECK(c.blocks_reused == 0);
  CHECK(a.blocks_reused > 0);  // moves after block 0 reuse the start's blocks
  CHECK(a.blocks_compressed + a.blocks_reused == 5 * a.evaluations);
  CHECK(c.blocks_compressed == 5 * c.evaluations);
  // The best V is the minimum over the evaluated steps.
  for (const auto& st : a.steps) CHECK(a.best_perplexity <= st.perplexity);
  // Bad input.
  JsqSearchOptions bad = quick(1, 0, true);
  bad.start = {3e-5, 0, 0, 0, 0};
  CHECK_THROWS_WITH(jsq_search(d->weights, s.windows, s.heldout, spec, {}, bad), Catch::Contains("not one of the choices"));
  CHECK_THROWS_WITH(jsq_search(d->weights, s.windows, s.heldout, named_recipe("jsq-noedit"), {}, quick(1, 0, true)),
                    Catch::Contains("no ActivationEdit"));
  // A different seed explores differently.
  if (joint_test::sanitized) return;
  JsqSearchOptions o2 = quick(steps, 8, true);
  o2.start = o.start;
  const auto e = jsq_search(d->weights, s.windows, s.heldout, spec, {}, o2);
  bool differs = false;
  for (std::size_t i = 1; i < e.steps.size(); ++i) differs = differs || e.steps[i].v != a.steps[i].v;
  CHECK(differs);
}

TEST_CASE("full JSQ on stories260K (32 x 256 calibration, 8 SA steps) within the CI budget", "[joint][jsq][real]") {
  const auto* d = joint_test::data();
  if (!d) return;
  if (joint_test::sanitized) {
    WARN("skipped under AddressSanitizer: the full-protocol JSQ run is timed in the Release build");
    return;
  }
  const auto windows = model::calibration_windows(d->calib, 32, 256);
  const auto heldout = std::span<const int>(d->calib).subspan(32 * 256, 8192);  // held-out calibration slice
  JsqSearchOptions so;
  so.anneal.steps = 8;
  so.anneal.seed = 0;
  so.progress = true;
  auto m = joint_test::fresh_model(*d);
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = jsq_compress(m, windows, heldout, named_recipe("jsq"), {}, so);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ppl = model::perplexity(m, d->eval).perplexity;
  WARN("jsq (search, 8 steps): " << secs << " s, " << r.search.evaluations << " evaluations, "
                                 << r.search.blocks_compressed << " blocks compressed, " << r.search.blocks_reused
                                 << " reused; held-out ppl " << r.search.start_perplexity << " -> "
                                 << r.search.best_perplexity << "; eval ppl " << ppl << ", sparsity "
                                 << r.report.sparsity());
  CHECK(secs < 300.0);
  CHECK(r.search.best_perplexity <= r.search.start_perplexity);
  CHECK(r.report.edit_strengths == r.search.best);
  CHECK(r.report.sparsity() >= 0.5);
  CHECK(r.report.activation_bits == 8);
}
