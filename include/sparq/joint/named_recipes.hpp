// The named recipes: the JSQ paper's comparison (dense, magnitude, Wanda, SparseGPT, W8A8,
// SmoothQuant, their joint rows, JSQ and its ablations) and sparq's own jsq+, each a RecipeSpec built
// from a few NamedRecipeOptions (docs/compress.md#recipes, docs/jsq.md, docs/reconstruction.md).
// The grammar, the printer and the executor of recipes are in joint/recipe.hpp; a named recipe is
// nothing but a RecipeSpec, so to_string(named_recipe(...)) is the string that runs the same stages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/joint/activation_edit.hpp"
#include "sparq/joint/recipe.hpp"
#include "sparq/quant/smooth.hpp"

namespace sparq {

/// jsq+'s row allocation spread (PruneOptions::obs_spread), fixed in the recipe (docs/reconstruction.md).
inline constexpr double jsq_plus_obs_spread = 0.0;

/// Overrides of the named recipes (the paper's comparison at one matched compression).
struct NamedRecipeOptions {
  double sparsity = 0.5;            ///< unstructured sparsity of the pruning stage (N:M variants: 1 − N/M)
  int weight_bits = 8;              ///< 2, 3, 4, 5, 6, 8
  std::size_t group_size = 0;       ///< weight quantization group (0 = per output channel; e.g. 128)
  int activation_bits = 8;          ///< per-token activation bits (0 = weight-only, e.g. "W4 g128")
  bool gptq = false;                ///< GPTQ instead of round-to-nearest weights (paper Table 4)
  double edit_strength = 5e-5;      ///< r of the ActivationEdit stage (the search's start value)
  float alpha = 0.5f;               ///< SmoothQuant α
  float lambda = jsq_paper_lambda;  ///< SAR λ
};

/// Names named_recipe accepts (base names; every one with a pruner also takes a "-2:4" or "-4:8"
/// suffix, and every one but dense a "+lorc" suffix after it, e.g. "jsq-4:8+lorc").
[[nodiscard]] inline std::vector<std::string> named_recipe_names() {
  return {"dense", "magnitude", "wanda", "sparsegpt", "w8a8", "smoothquant", "wanda+smoothquant",
          "sparsegpt+smoothquant", "jsq", "jsq-nosar", "jsq-noedit", "jsq-nosearch", "jsq+"};
}

/// The paper's methods as recipes:
///   dense                  no stage
///   magnitude / wanda / sparsegpt   Pruner<Magnitude|Wanda|SparseGPT, Unstructured> (float weights)
///   w8a8                   weight quantization only (bits/group/GPTQ from the options) + A bits
///   smoothquant            smooth:α, weights, A bits
///   wanda+smoothquant / sparsegpt+smoothquant   prune, smooth, weights, A bits
///   jsq                    edit:r, sar, smooth, weights, A bits, search = true (SA over V)
///   jsq-nosar              jsq with Wanda instead of SAR (search on)
///   jsq-noedit             sar, smooth, weights (no editing, hence nothing to search)
///   jsq-nosearch           jsq with the fixed strength r in every block
///   jsq+                   smooth, obs (exact greedy OBS), obq (mask-preserving GPTQ, RTN grid), A bits; with
///                          -2:4 / -4:8 a perm stage (N:M channel permutation) before obs (docs/reconstruction.md)
/// A "-2:4" / "-4:8" suffix replaces the unstructured pattern of the pruning stage by N:M ("-4:8"
/// with the NMFallback: 2:4 on linears whose cin is not a multiple of 8, reported per linear).
/// A final "+lorc" suffix appends LowRankCompensation with its defaults (rank 8, int8 factors,
/// Cholesky whitening): "jsq+lorc", "w8a8+lorc" (with weight_bits 4, group_size 128,
/// activation_bits 0: W4 g128 + LoRC), "wanda+lorc".
/// Throws sparq::error on an unknown name.
[[nodiscard]] inline RecipeSpec named_recipe(std::string_view name, const NamedRecipeOptions& o = {}) {
  std::string_view base = name;
  bool lorc = false;
  if (const std::string_view suf = "+lorc"; base.size() > suf.size() && base.substr(base.size() - suf.size()) == suf) {
    base = base.substr(0, base.size() - suf.size());
    lorc = true;
  }
  std::size_t n = 0, m = 0;
  for (const auto& [suf, nn, mm] : {std::tuple{"-2:4", 2, 4}, std::tuple{"-4:8", 4, 8}}) {
    const std::string_view s(suf);
    if (base.size() > s.size() && base.substr(base.size() - s.size()) == s) {
      base = base.substr(0, base.size() - s.size());
      n = static_cast<std::size_t>(nn);
      m = static_cast<std::size_t>(mm);
    }
  }
  auto prune = [&](PruneMetricKind k) {
    PruneStageSpec p;
    p.metric = k;
    p.options.sparsity = o.sparsity;
    p.options.lambda = o.lambda;
    if (n) {
      p.pattern = PrunePatternKind::nm;
      p.n = n;
      p.m = m;
      p.nm_fallback = m == 8;  // 4:8 → 2:4 on linears whose cin % 8 != 0 (reported per linear)
    }
    SPARQ_CHECK(o.sparsity >= 0.0 && o.sparsity < 1.0, "named_recipe: sparsity = ", o.sparsity,
                ", expected a value in [0, 1)");
    return StageSpec(p);
  };
  auto smooth = [&] {
    SmoothStageSpec s;
    s.options.alpha = o.alpha;
    detail::smooth_check_alpha(o.alpha);
    return StageSpec(s);
  };
  auto weights = [&] {
    SPARQ_CHECK(is_supported_int_bits(o.weight_bits), "named_recipe: weight_bits = ", o.weight_bits,
                ", expected 2, 3, 4, 5, 6 or 8");
    if (o.gptq) {
      GptqStageSpec g;
      g.spec.bits = o.weight_bits;
      g.spec.group_size = o.group_size;
      return StageSpec(g);
    }
    QuantStageSpec q;
    q.config.bits = o.weight_bits;
    q.config.granularity = o.group_size ? GranularityKind::per_group : GranularityKind::per_channel;
    q.config.group_size = o.group_size;
    return StageSpec(q);
  };
  auto edit = [&] {
    EditStageSpec e;
    e.options.strength = o.edit_strength;
    ActivationEdit::validate(e.options);
    return StageSpec(e);
  };
  RecipeSpec r;
  r.name = std::string(name);
  const bool quant = base == "w8a8" || base == "smoothquant" || base.find("smoothquant") != std::string_view::npos ||
                     base.substr(0, 3) == "jsq";
  bool pruned = true;
  if (base == "dense") {
    pruned = false;
  } else if (base == "magnitude") {
    r.stages = {prune(PruneMetricKind::magnitude)};
  } else if (base == "wanda") {
    r.stages = {prune(PruneMetricKind::wanda)};
  } else if (base == "sparsegpt") {
    r.stages = {prune(PruneMetricKind::sparsegpt)};
  } else if (base == "w8a8") {
    pruned = false;
    r.stages = {weights()};
  } else if (base == "smoothquant") {
    pruned = false;
    r.stages = {smooth(), weights()};
  } else if (base == "wanda+smoothquant") {
    r.stages = {prune(PruneMetricKind::wanda), smooth(), weights()};
  } else if (base == "sparsegpt+smoothquant") {
    r.stages = {prune(PruneMetricKind::sparsegpt), smooth(), weights()};
  } else if (base == "jsq") {
    r.stages = {edit(), prune(PruneMetricKind::sar), smooth(), weights()};
    r.search = true;
  } else if (base == "jsq-nosar") {
    r.stages = {edit(), prune(PruneMetricKind::wanda), smooth(), weights()};
    r.search = true;
  } else if (base == "jsq-noedit") {
    r.stages = {prune(PruneMetricKind::sar), smooth(), weights()};
  } else if (base == "jsq-nosearch") {
    r.stages = {edit(), prune(PruneMetricKind::sar), smooth(), weights()};
  } else if (base == "jsq+") {
    StageSpec p = prune(PruneMetricKind::obs);
    std::get<PruneStageSpec>(p).options.obs_spread = jsq_plus_obs_spread;
    SPARQ_CHECK(is_supported_int_bits(o.weight_bits) && o.weight_bits <= 8, "named_recipe: weight_bits = ",
                o.weight_bits, ", expected 2..8 for jsq+ (obq)");
    ObqStageSpec q;
    q.options.bits = o.weight_bits;
    q.options.group_size = o.group_size;
    if (n) {  // N:M: the channel permutation of the FFN hidden units for that pattern first
      r.stages = {smooth(), StageSpec(PermuteStageSpec{}), p, StageSpec(q)};
      recipe_detail::bind_permutation(r);
    } else {
      r.stages = {smooth(), p, StageSpec(q)};
    }
  } else {
    std::string known;
    for (const auto& k : named_recipe_names()) known += " " + k;
    detail::fail("named_recipe: unknown recipe '", name, "', expected one of:", known,
                 " (pruning recipes also with a -2:4 or -4:8 suffix)");
  }
  SPARQ_CHECK(!n || pruned, "named_recipe: '", name, "' has no pruning stage for an N:M suffix");
  if (lorc) {
    SPARQ_CHECK(!r.stages.empty(), "named_recipe: '", name, "': nothing to compensate with +lorc (no pruning or quantization)");
    r.stages.emplace_back(LorcStageSpec{});  // rank 8, int8 factors, Cholesky whitening
  }
  if (quant) {
    SPARQ_CHECK(o.activation_bits == 0 || (o.activation_bits >= 2 && o.activation_bits <= 16),
                "named_recipe: activation_bits = ", o.activation_bits, ", expected 0 (off) or 2..16");
    r.activation_bits = o.activation_bits;
  }
  return r;
}

}  // namespace sparq
