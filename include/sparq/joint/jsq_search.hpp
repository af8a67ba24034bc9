// jsq_search: JSQ's simulated-annealing search over the per-block activation-editing vector V
// (paper §3.3, docs/algorithms.md#simulated-annealing-search).
//
// State: V = [r_0 … r_{n−1}], one ActivationEdit strength per block, each from `choices`
// (default {0, 4e−5, 5e−5, 6e−5, 7e−5}, the paper's). Objective: the recipe is run with V
// (layer-wise compression of the dense model, error propagation) and the compressed model's
// perplexity is measured on a held-out token stream (a slice of the calibration text not used by
// the calibration windows); the score maximised is
//     P(V) = −objective_scale · ln(perplexity)      (objective_scale = 1e4: basis points)
// so a 1 % perplexity change is ≈ 100 units: at T = 300 such a worsening is accepted with
// probability ≈ 0.72, at T = 10 with ≈ 5·10⁻⁵ (with raw nats every move would be accepted).
// Moves (sparq::anneal): one block chosen uniformly, its value replaced by a different choice;
// Metropolis acceptance; T geometric from 300 to 10 over `anneal.steps`; revisited states are
// memoised; the best V seen is kept (never worse than the start). Deterministic for a seed.
// Cost: one compression + one evaluation per new state, and less: an EditVectorCompressor reuses
// the compressed blocks and calibration states of the longest cached V-prefix, so a move at block
// b recompresses blocks b … n−1 only. Progress goes to stderr, one line per step.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/joint/annealing.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/edit_vector_compressor.hpp"
#include "sparq/joint/recipe.hpp"
#include "sparq/joint/stage_driver.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/perplexity.hpp"

namespace sparq {

struct JsqSearchOptions {
  std::vector<double> choices{0.0, 4e-5, 5e-5, 6e-5, 7e-5};  ///< values each r_b may take, each in [0, 0.5]
  /// Start vector (one value of `choices` per block). Empty: the recipe's edit strength in every
  /// block (it must be one of the choices).
  std::vector<double> start;
  AnnealOptions anneal{};               ///< t_initial 300, t_final 10, steps 50, seed 0
  double objective_scale = 1e4;         ///< P(V) = −scale · ln(ppl)
  model::PerplexityOptions eval{};      ///< held-out scoring (max_tokens, window length)
  bool reuse_prefix = true;             ///< reuse blocks of cached V-prefixes
  std::size_t cache_entries = 256;      ///< V-prefixes kept
  bool progress = true;                 ///< one line per step on stderr
};

struct JsqStep {
  std::size_t step = 0;          ///< 0 = the start vector, then 1 … steps
  std::vector<double> v;
  double temperature = 0.0;      ///< 0 for the start
  double perplexity = 0.0;       ///< held-out perplexity of v
  double score = 0.0;            ///< −scale · ln(perplexity)
  bool accepted = true;
  bool memoised = false;         ///< v was evaluated before (no compression, no evaluation)
  std::size_t reused_blocks = 0; ///< blocks taken from the prefix cache
  double seconds = 0.0;
};

struct JsqSearchResult {
  std::vector<double> best, start;
  double best_perplexity = 0.0, start_perplexity = 0.0;
  std::vector<JsqStep> steps;        ///< the start, then one per annealing step
  std::size_t evaluations = 0;       ///< distinct vectors compressed and evaluated (start included)
  std::size_t memo_hits = 0;         ///< steps that revisited an evaluated vector
  std::size_t prefix_hits = 0;       ///< evaluations that reused at least one cached block
  std::size_t blocks_compressed = 0; ///< block compressions actually run
  std::size_t blocks_reused = 0;     ///< block compressions saved by the prefix cache
  double seconds = 0.0;
};

namespace jsq_detail {
inline std::string format_v(const std::vector<double>& v) {
  std::string s = "[";
  char buf[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%g", i ? " " : "", v[i]);
    s += buf;
  }
  return s + "]";
}
}  // namespace jsq_detail

/// Searches V for the recipe `plan` (which must start with an ActivationEdit) on the dense weights.
inline JsqSearchResult jsq_search(const model::LlamaWeights& dense, const std::vector<std::vector<int>>& windows,
                                  std::span<const int> heldout, const StagePlan& plan, const CompressOptions& options,
                                  const JsqSearchOptions& so = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t nb = dense.config.n_layers;
  SPARQ_CHECK(!so.choices.empty(), "jsq_search: no editing-strength choices");
  for (double c : so.choices)
    SPARQ_CHECK(std::isfinite(c) && c >= 0.0 && c <= 0.5, "jsq_search: choice ", c, ", expected a value in [0, 0.5]");
  SPARQ_CHECK(std::isfinite(so.objective_scale) && so.objective_scale > 0, "jsq_search: objective_scale = ",
              so.objective_scale, ", expected a positive value");
  SPARQ_CHECK(plan.edit.has_value(), "jsq_search: the recipe has no ActivationEdit (edit) stage: nothing to search");
  auto index_of = [&](double r) {
    for (std::size_t i = 0; i < so.choices.size(); ++i)
      if (so.choices[i] == r) return i;
    detail::fail("jsq_search: start value ", r, " is not one of the choices ", jsq_detail::format_v(so.choices));
  };
  std::vector<std::size_t> start;
  if (so.start.empty()) {
    start.assign(nb, index_of(plan.edit->strength));
  } else {
    SPARQ_CHECK(so.start.size() == nb, "jsq_search: start has ", so.start.size(), " values, expected one per block (",
                nb, ")");
    for (double r : so.start) start.push_back(index_of(r));
  }
  auto values = [&](const std::vector<std::size_t>& idx) {
    std::vector<double> v(idx.size());
    for (std::size_t i = 0; i < idx.size(); ++i) v[i] = so.choices[idx[i]];
    return v;
  };

  EditVectorCompressor ec(dense, windows, plan, options, so.reuse_prefix, so.cache_entries);
  JsqSearchResult res;
  JsqStep pending;  // filled by the objective, completed by on_step
  auto objective = [&](const std::vector<std::size_t>& idx) {
    const auto s0 = std::chrono::steady_clock::now();
    const std::vector<double> v = values(idx);
    const model::Llama m = ec.compress(v);
    const double ppl = model::perplexity(m, heldout, so.eval).perplexity;
    SPARQ_CHECK(std::isfinite(ppl) && ppl > 0, "jsq_search: held-out perplexity ", ppl, " for V = ",
                jsq_detail::format_v(v));
    pending.perplexity = ppl;
    pending.reused_blocks = ec.last_reused_blocks();
    pending.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    if (pending.reused_blocks > 0) ++res.prefix_hits;
    return -so.objective_scale * std::log(ppl);
  };
  auto on_step = [&](const AnnealStep& a) {
    JsqStep st;
    st.step = a.step + 1;
    st.v = values(a.proposal);
    st.temperature = a.temperature;
    st.score = a.score;
    st.perplexity = std::exp(-a.score / so.objective_scale);
    st.accepted = a.accepted;
    st.memoised = a.cached;
    if (!a.cached) {
      st.perplexity = pending.perplexity;
      st.reused_blocks = pending.reused_blocks;
      st.seconds = pending.seconds;
    } else {
      ++res.memo_hits;
      for (const auto& prev : res.steps)
        if (!prev.memoised && prev.v == st.v) st.perplexity = prev.perplexity;
    }
    if (so.progress)
      std::fprintf(stderr, "jsq-search: step %zu/%zu T=%.1f V=%s ppl %.4f score %.1f %s%s reused %zu blocks %.2fs\n",
                   st.step, so.anneal.steps, st.temperature, jsq_detail::format_v(st.v).c_str(), st.perplexity,
                   st.score, st.accepted ? "accepted" : "rejected", st.memoised ? " (memoised)" : "",
                   st.reused_blocks, st.seconds);
    res.steps.push_back(std::move(st));
  };

  // The start vector is evaluated first by anneal(); record it as step 0.
  bool first = true;
  auto objective_first = [&](const std::vector<std::size_t>& idx) {
    const double s = objective(idx);
    if (first) {
      first = false;
      JsqStep st;
      st.v = values(idx);
      st.perplexity = pending.perplexity;
      st.score = s;
      st.seconds = pending.seconds;
      if (so.progress)
        std::fprintf(stderr, "jsq-search: start V=%s ppl %.4f score %.1f %.2fs\n", jsq_detail::format_v(st.v).c_str(),
                     st.perplexity, s, st.seconds);
      res.steps.push_back(std::move(st));
    }
    return s;
  };
  const AnnealResult ar = anneal(start, so.choices.size(), objective_first, so.anneal, on_step);
  res.start = values(ar.start);
  res.best = values(ar.best);
  res.start_perplexity = res.steps.front().perplexity;
  res.best_perplexity = std::exp(-ar.best_score / so.objective_scale);
  for (const auto& st : res.steps)
    if (!st.memoised && st.v == res.best) res.best_perplexity = st.perplexity;  // exact, not via exp(log)
  res.evaluations = ar.evaluations;
  res.blocks_compressed = ec.blocks_compressed();
  res.blocks_reused = ec.blocks_reused();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (so.progress)
    std::fprintf(stderr,
                 "jsq-search: best V=%s ppl %.4f (start %.4f); %zu evaluations, %zu memoised, %zu prefix hits, "
                 "%zu blocks compressed, %zu reused, %.1fs\n",
                 jsq_detail::format_v(res.best).c_str(), res.best_perplexity, res.start_perplexity, res.evaluations,
                 res.memo_hits, res.prefix_hits, res.blocks_compressed, res.blocks_reused, res.seconds);
  return res;
}

/// The same for a run-time recipe (its activation bits filled into the options).
inline JsqSearchResult jsq_search(const model::LlamaWeights& dense, const std::vector<std::vector<int>>& windows,
                                  std::span<const int> heldout, const RecipeSpec& spec, const CompressOptions& options,
                                  const JsqSearchOptions& so = {}) {
  const StagePlan plan = plan_of(spec);
  return jsq_search(dense, windows, heldout, plan, options_for(spec, options), so);
}

/// Result of jsq_compress: the search and the final compression with the best V.
struct JsqCompressResult {
  JsqSearchResult search;
  CompressReport report;
};

/// JSQ end to end: searches V on `model`'s (dense) weights, then compresses `model` in place with
/// the best V (report.edit_strengths = best V; seconds include the search).
inline JsqCompressResult jsq_compress(model::Llama& model, const std::vector<std::vector<int>>& windows,
                                      std::span<const int> heldout, const RecipeSpec& spec,
                                      const CompressOptions& options = {}, const JsqSearchOptions& so = {}) {
  JsqCompressResult r;
  r.search = jsq_search(model.weights(), windows, heldout, spec, options, so);
  CompressOptions o = options;
  o.edit_strengths = r.search.best;
  r.report = compress(model, windows, spec, o);
  r.report.seconds += r.search.seconds;
  return r;
}

}  // namespace sparq
