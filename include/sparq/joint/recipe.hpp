// RecipeSpec: run-time compression recipes — the recipe grammar (parse_recipe), its printer (to_string) and the executor compress(); the named recipes are in joint/named_recipes.hpp.
//
// Grammar (whitespace around tokens is ignored; names are lower case; see docs/jsq.md):
//   recipe  := stage (',' stage)*
//   stage   := edit | prune | smooth | quant | gptq | awq | lorc | lowrank | abits | embed
//   edit    := 'edit' [':' R] [':' ('tensor' | 'channel')]   Eq. 5 clamp, r = R ∈ [0, 0.5] (default 5e-5), per tensor (default) or per channel
//            | 'edit' ':' 'pct' [':' H]                       the reference's percentile clip, clip_h = H (default 0.01)
//   prune   := METRIC [':' S | ':' N ':' M] [':' PATTERN] [':lambda=' L] [':spread=' σ]
//              METRIC  ∈ magnitude | wanda | sar | sparsegpt | obs (exact greedy OBS, docs/reconstruction.md;
//                        σ ∈ [0, 1]: row allocation spread, obs only)
//              S       sparsity ∈ [0, 1) (default 0.5); N:M keeps N of every M inputs (1:2 2:4 4:8 1:4 2:8)
//              PATTERN ∈ row (per output row, default) | layer (one threshold per matrix) |
//                        outch (whole output rows) | inch (whole input columns); sparsegpt: row or N:M only
//              L       SAR's λ (default 2, the paper's; the reference code uses 2.1)
//   smooth  := 'smooth' [':' ALPHA]                           SmoothQuant, α ∈ [0, 1] (default 0.5)
//   quant   := 'w' B ['g' G] ['a' A] [':asym']                round-to-nearest weights: B bits (2,3,4,5,6,8), symmetric
//                                                             per output channel, or per group of G inputs; A = activation bits
//   gptq    := 'gptq' [':' 'w' B ['g' G] ['a' A]] [':sym']    GPTQ weights (default w4, asymmetric as GPTQ, per row)
//   obq     := 'obq' [':' 'w' B ['g' G] ['a' A]]              GPTQ on each row's kept weights, sparq's symmetric RTN
//                                                             grid (B ≤ 8, default w8; prune/obq.hpp)
//   perm    := 'perm'                                         N:M permutation of the FFN hidden units, before an
//                                                             N:M prune stage (takes its N:M; prune/nm_permutation.hpp)
//   awq     := 'awq' [':' 'w' B ['g' G]] [':noclip']          AWQ scale (+ clip) search for a B-bit, group-G grid
//                                                             (default w4g128); a smoothing stage, follow it by a quantizer
//   lorc    := 'lorc' [':' R] [':' FMT] [':' WH]              LowRankCompensation (last stage): rank R (default 8),
//                                                             factors FMT ∈ int8 (default) | f16 | bf16 | f32,
//                                                             whitening WH ∈ chol (default) | diag | plain
//   lowrank := 'lowrank' [':' ('r' R | 'e' E | 'b' B)] [':' WH]  LowRank W := A·B: rank R, energy E ∈ (0, 1] or
//                                                             parameter budget B ∈ (0, 1] (default b0.5); only a
//                                                             quantizer (of the factors) may follow it
//   abits   := 'a' A                                          per-token activation bits only (2..16; 0 = float)
//   embed   := 'embed' [':w8']                                token embedding and classifier rounded to per-row
//                                                             int8 after the blocks (model/embedding_quant.hpp)
// An N:M prune token with M = 8 may end in ':fallback' (sar:4:8:fallback): linears whose cin is not
// a multiple of 8 get (N/2):4 (NMFallback, joint/stages.hpp; LinearReport::nm_fallback).
// Examples: "edit:5e-5,sar:0.5,smooth:0.5,w8a8" (JSQ), "wanda:2:4,smooth,w8a8", "sparsegpt:0.6,gptq:w4g128",
// "w4a8", "magnitude:0.5". Stage-order rules are those of Compressor<Stages...> (check_stage_order).
// Bad strings throw sparq::error naming the token and what was expected.
//
// compress(model, windows, spec, options) runs the spec's stages through the same per-stage
// functions as Compressor<Stages...> (joint/stages.hpp; pruners are dispatched to the same
// Pruner<Metric, Pattern> instantiations), so a run-time recipe and its compile-time twin give
// bit-identical weights.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/joint/activation_edit.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/lowrank_stages.hpp"
#include "sparq/joint/stage_driver.hpp"
#include "sparq/joint/stage_traits.hpp"
#include "sparq/joint/stages.hpp"
#include "sparq/model/llama.hpp"

namespace sparq {

enum class PruneMetricKind : std::uint8_t { magnitude, wanda, sar, sparsegpt, obs };
enum class PrunePatternKind : std::uint8_t { unstructured, unstructured_layer, nm, output_channels, input_channels };

struct EditStageSpec {
  ActivationEditOptions options{EditMode::MinMaxTensor, 5e-5};
};
struct PruneStageSpec {
  PruneMetricKind metric = PruneMetricKind::wanda;
  PrunePatternKind pattern = PrunePatternKind::unstructured;
  std::size_t n = 0, m = 0;  ///< N:M (pattern == nm)
  bool nm_fallback = false;  ///< N:M with M = 8: (N/2):4 on linears whose cin % 8 != 0 (NMFallback)
  PruneOptions options{};
};
struct SmoothStageSpec {
  SmoothOptions options{};
};
/// Round-to-nearest weight quantization (what Quantizer<Scheme, Gran, Bits, MinMax> does).
struct QuantStageSpec {
  QuantConfig config{};
};
struct GptqStageSpec {
  GptqSpec spec{};
  GptqOptions options{};
};
/// N:M permutation of the FFN hidden units (NMPermute); n, m, fallback come from the N:M prune stage after it.
struct PermuteStageSpec {
  NMPermute options{};
};
/// Mask-preserving GPTQ on the kept weights, sparq's symmetric RTN grid (Obq, prune/obq.hpp).
struct ObqStageSpec {
  ObqOptions options{};
};
struct AwqStageSpec {
  AwqOptions options{};
};
/// LoRC (LowRankCompensation): rank, factor storage, whitening.
struct LorcStageSpec {
  lowrank::LowRankCompensationOptions options{};
};
/// LowRank replacement W := A·B: rank rule, whitening.
struct LowRankStageSpec {
  lowrank::LowRankOptions options{};
};
using StageSpec = std::variant<EditStageSpec, PruneStageSpec, SmoothStageSpec, QuantStageSpec, GptqStageSpec,
                               AwqStageSpec, LorcStageSpec, LowRankStageSpec, ObqStageSpec, PermuteStageSpec>;

/// A recipe built at run time.
struct RecipeSpec {
  std::string name;                    ///< the named recipe, or the parsed string
  std::vector<StageSpec> stages;       ///< in order
  std::optional<int> activation_bits;  ///< from 'aA' tokens; CompressOptions::activation_bits overrides
  std::optional<int> embedding_bits;   ///< 8 from an 'embed' token; CompressOptions::embedding_bits overrides
  bool search = false;                 ///< JSQ: search the per-block editing vector (joint/jsq_search.hpp)

  /// Pruning sparsity (1 − N/M for N:M; 0 without a pruner).
  [[nodiscard]] double sparsity() const {
    for (const auto& s : stages)
      if (const auto* p = std::get_if<PruneStageSpec>(&s))
        return p->pattern == PrunePatternKind::nm ? 1.0 - static_cast<double>(p->n) / static_cast<double>(p->m)
                                                  : p->options.sparsity;
    return 0.0;
  }
  /// Weight bits (32 without a quantizer).
  [[nodiscard]] int weight_bits() const {
    for (const auto& s : stages) {
      if (const auto* q = std::get_if<QuantStageSpec>(&s)) return q->config.bits;
      if (const auto* g = std::get_if<GptqStageSpec>(&s)) return g->spec.bits;
      if (const auto* o = std::get_if<ObqStageSpec>(&s)) return o->options.bits;
    }
    return 32;
  }
  [[nodiscard]] bool has_edit() const {
    return !stages.empty() && std::holds_alternative<EditStageSpec>(stages.front());
  }
  /// The LoRC stage, or nullptr.
  [[nodiscard]] const LorcStageSpec* lorc() const {
    for (const auto& s : stages)
      if (const auto* l = std::get_if<LorcStageSpec>(&s)) return l;
    return nullptr;
  }
  /// The LowRank stage, or nullptr.
  [[nodiscard]] const LowRankStageSpec* low_rank() const {
    for (const auto& s : stages)
      if (const auto* l = std::get_if<LowRankStageSpec>(&s)) return l;
    return nullptr;
  }
};

namespace recipe_detail {

[[nodiscard]] inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

[[nodiscard]] inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t p = 0;
  for (;;) {
    const std::size_t q = s.find(sep, p);
    out.push_back(trim(s.substr(p, q == std::string_view::npos ? std::string_view::npos : q - p)));
    if (q == std::string_view::npos) break;
    p = q + 1;
  }
  return out;
}

[[nodiscard]] inline std::optional<double> to_double(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}
[[nodiscard]] inline std::optional<std::size_t> to_size(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

[[noreturn]] inline void bad(std::string_view token, std::string_view expected) {
  detail::fail("parse_recipe: bad token '", token, "': expected ", expected);
}

/// 'w' B ['g' G] ['a' A]: returns {bits, group, abits (-1 = none)} or throws.
struct WeightToken {
  int bits = 8;
  std::size_t group = 0;
  int abits = -1;
};
[[nodiscard]] inline WeightToken parse_weight_token(std::string_view tok, std::string_view full) {
  WeightToken w;
  std::size_t i = 1;  // after 'w'
  auto number = [&](std::size_t& at) -> std::optional<std::size_t> {
    const std::size_t b = at;
    while (at < tok.size() && tok[at] >= '0' && tok[at] <= '9') ++at;
    return to_size(tok.substr(b, at - b));
  };
  const auto b = number(i);
  if (!b || !is_supported_int_bits(static_cast<int>(*b)))
    bad(full, "'w' followed by weight bits 2, 3, 4, 5, 6 or 8 (e.g. w8a8, w4g128, w4a8)");
  w.bits = static_cast<int>(*b);
  if (i < tok.size() && tok[i] == 'g') {
    ++i;
    const auto g = number(i);
    if (!g || *g == 0) bad(full, "a positive group size after 'g' (e.g. w4g128)");
    w.group = *g;
  }
  if (i < tok.size() && tok[i] == 'a') {
    ++i;
    const auto a = number(i);
    if (!a || !(*a == 0 || (*a >= 2 && *a <= 16))) bad(full, "activation bits 2..16 (or 0) after 'a' (e.g. w8a8)");
    w.abits = static_cast<int>(*a);
  }
  if (i != tok.size()) bad(full, "w<bits>[g<group>][a<bits>] (e.g. w8a8, w4g128, w4a8)");
  return w;
}

[[nodiscard]] inline PruneStageSpec parse_prune(PruneMetricKind metric, const std::vector<std::string_view>& parts,
                                               std::string_view full) {
  PruneStageSpec p;
  p.metric = metric;
  std::size_t i = 1;
  auto is_int = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (i + 1 < parts.size() && is_int(parts[i]) && is_int(parts[i + 1])) {
    const auto n = to_size(parts[i]), m = to_size(parts[i + 1]);
    const bool ok = (*n == 1 && *m == 2) || (*n == 2 && *m == 4) || (*n == 4 && *m == 8) || (*n == 1 && *m == 4) ||
                    (*n == 2 && *m == 8);
    if (!ok) bad(full, "an N:M pattern among 1:2, 2:4, 4:8, 1:4, 2:8 (N kept of every M)");
    p.pattern = PrunePatternKind::nm;
    p.n = *n;
    p.m = *m;
    i += 2;
  } else if (i < parts.size() && to_double(parts[i])) {
    const double s = *to_double(parts[i]);
    if (!(s >= 0.0 && s < 1.0)) bad(full, "a sparsity in [0, 1) (e.g. wanda:0.5)");
    p.options.sparsity = s;
    ++i;
  }
  for (; i < parts.size(); ++i) {
    const std::string_view a = parts[i];
    if (a == "row" && p.pattern != PrunePatternKind::nm) {
      p.pattern = PrunePatternKind::unstructured;
    } else if (a == "layer" && p.pattern != PrunePatternKind::nm) {
      p.pattern = PrunePatternKind::unstructured_layer;
    } else if (a == "outch" && p.pattern != PrunePatternKind::nm) {
      p.pattern = PrunePatternKind::output_channels;
    } else if (a == "inch" && p.pattern != PrunePatternKind::nm) {
      p.pattern = PrunePatternKind::input_channels;
    } else if (a == "fallback" && p.pattern == PrunePatternKind::nm) {
      if (!(p.m == 8 && p.n % 2 == 0)) bad(full, "':fallback' after 4:8 or 2:8 only (it falls back to 2:4 / 1:4)");
      p.nm_fallback = true;
    } else if (a.substr(0, 7) == "spread=" && metric == PruneMetricKind::obs && p.pattern != PrunePatternKind::nm) {
      const auto v = to_double(a.substr(7));
      if (!v || !(*v >= 0.0 && *v <= 1.0)) bad(full, "spread=<fraction of cin in [0, 1]> (e.g. obs:0.5:spread=0.25)");
      p.options.obs_spread = *v;
    } else if (a.substr(0, 7) == "lambda=") {
      const auto l = to_double(a.substr(7));
      if (!l || *l < 0.0) bad(full, "lambda=<non-negative number> (e.g. sar:0.5:lambda=2.1)");
      p.options.lambda = static_cast<float>(*l);
    } else {
      bad(full, "<metric>[:<sparsity> | :N:M[:fallback]][:row|layer|outch|inch][:lambda=<L>] (e.g. wanda:0.5, sar:2:4)");
    }
  }
  if ((metric == PruneMetricKind::sparsegpt || metric == PruneMetricKind::obs) &&
      p.pattern != PrunePatternKind::unstructured && p.pattern != PrunePatternKind::nm)
    bad(full, "sparsegpt / obs with the row (default) or an N:M pattern (they choose masks while reconstructing)");
  return p;
}

[[nodiscard]] inline StageInfo info_of(const StageSpec& s) {
  return std::visit(
      [](const auto& x) -> StageInfo {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, EditStageSpec>) return StageTraits<ActivationEdit>::info;
        else if constexpr (std::is_same_v<T, PruneStageSpec>) return StageTraits<Pruner<Magnitude, Unstructured>>::info;
        else if constexpr (std::is_same_v<T, SmoothStageSpec>) return StageTraits<Smooth>::info;
        else if constexpr (std::is_same_v<T, QuantStageSpec>)
          return StageTraits<Quantizer<Symmetric, PerChannel, 8>>::info;
        else if constexpr (std::is_same_v<T, AwqStageSpec>) return StageTraits<AwqScale>::info;
        else if constexpr (std::is_same_v<T, LorcStageSpec>) return StageTraits<LowRankCompensation>::info;
        else if constexpr (std::is_same_v<T, LowRankStageSpec>) return StageTraits<LowRank>::info;
        else if constexpr (std::is_same_v<T, ObqStageSpec>) return StageTraits<Obq>::info;
        else if constexpr (std::is_same_v<T, PermuteStageSpec>) return StageTraits<NMPermute>::info;
        else return StageTraits<Gptq<GptqGrid<4>>>::info;
      },
      s);
}

/// Calls f(Pruner<Metric, Pattern>(options)) for the run-time metric and pattern.
template <class Metric, class F>
void with_pattern(const PruneStageSpec& p, F&& f) {
  const PruneOptions& o = p.options;
  switch (p.pattern) {
    case PrunePatternKind::unstructured: f(Pruner<Metric, Unstructured>(o)); return;
    case PrunePatternKind::nm:
      if (p.n == 1 && p.m == 2) f(Pruner<Metric, NM<1, 2>>(o));
      else if (p.n == 2 && p.m == 4) f(Pruner<Metric, NM<2, 4>>(o));
      else if (p.n == 4 && p.m == 8) f(Pruner<Metric, NM<4, 8>>(o));
      else if (p.n == 1 && p.m == 4) f(Pruner<Metric, NM<1, 4>>(o));
      else if (p.n == 2 && p.m == 8) f(Pruner<Metric, NM<2, 8>>(o));
      else detail::fail("recipe: N:M pattern ", p.n, ":", p.m, " is not one of 1:2, 2:4, 4:8, 1:4, 2:8");
      return;
    default:
      if constexpr (std::is_same_v<Metric, SparseGPT> || std::is_same_v<Metric, ExactOBS>) {
        detail::fail("recipe: ", Metric::name(), " supports the row (unstructured) and N:M patterns only");
      } else {
        if (p.pattern == PrunePatternKind::unstructured_layer) f(Pruner<Metric, UnstructuredLayer>(o));
        else if (p.pattern == PrunePatternKind::output_channels) f(Pruner<Metric, OutputChannels>(o));
        else f(Pruner<Metric, InputChannels>(o));
      }
      return;
  }
}
template <class F>
void with_pruner(const PruneStageSpec& p, F&& f) {
  switch (p.metric) {
    case PruneMetricKind::magnitude: with_pattern<Magnitude>(p, f); return;
    case PruneMetricKind::wanda: with_pattern<Wanda>(p, f); return;
    case PruneMetricKind::sar: with_pattern<SAR>(p, f); return;
    case PruneMetricKind::sparsegpt: with_pattern<SparseGPT>(p, f); return;
    case PruneMetricKind::obs: with_pattern<ExactOBS>(p, f); return;
  }
}

/// Whitening words of the lorc / lowrank tokens.
[[nodiscard]] inline std::optional<lowrank::WhiteningKind> whitening_word(std::string_view s) {
  if (s == "chol") return lowrank::WhiteningKind::cholesky;
  if (s == "diag") return lowrank::WhiteningKind::diagonal;
  if (s == "plain") return lowrank::WhiteningKind::identity;
  return std::nullopt;
}
[[nodiscard]] inline std::string_view whitening_word(lowrank::WhiteningKind k) {
  return k == lowrank::WhiteningKind::cholesky ? "chol" : k == lowrank::WhiteningKind::diagonal ? "diag" : "plain";
}
[[nodiscard]] inline std::optional<lowrank::FactorFormat> format_word(std::string_view s) {
  if (s == "int8") return lowrank::FactorFormat::int8;
  if (s == "f16") return lowrank::FactorFormat::f16;
  if (s == "bf16") return lowrank::FactorFormat::bf16;
  if (s == "f32") return lowrank::FactorFormat::f32;
  return std::nullopt;
}

/// 'lorc' [':' R] [':' FORMAT] [':' WHITENING]
[[nodiscard]] inline LorcStageSpec parse_lorc(const std::vector<std::string_view>& parts, std::string_view full) {
  LorcStageSpec l;
  std::size_t i = 1;
  if (i < parts.size() && to_size(parts[i])) {
    const std::size_t r = *to_size(parts[i]);
    if (r == 0) bad(full, "a rank >= 1 after 'lorc:' (e.g. lorc:8)");
    l.options.rank = r;
    ++i;
  }
  if (i < parts.size() && format_word(parts[i])) l.options.format = *format_word(parts[i++]);
  if (i < parts.size() && whitening_word(parts[i])) l.options.whitening = *whitening_word(parts[i++]);
  if (i != parts.size()) bad(full, "lorc[:<rank>][:int8|f16|bf16|f32][:chol|diag|plain] (e.g. lorc:8, lorc:8:f16)");
  return l;
}

/// 'lowrank' [':' ('r' R | 'e' E | 'b' B)] [':' WHITENING]
[[nodiscard]] inline LowRankStageSpec parse_lowrank(const std::vector<std::string_view>& parts, std::string_view full) {
  LowRankStageSpec l;
  std::size_t i = 1;
  if (i < parts.size() && !parts[i].empty() && (parts[i][0] == 'r' || parts[i][0] == 'e' || parts[i][0] == 'b')) {
    const std::string_view v = parts[i].substr(1);
    if (parts[i][0] == 'r') {
      const auto r = to_size(v);
      if (!r || *r == 0) bad(full, "a rank >= 1 after 'r' (e.g. lowrank:r64)");
      l.options.rule.rank = *r;
    } else {
      const auto x = to_double(v);
      if (!x || !(*x > 0.0 && *x <= 1.0))
        bad(full, parts[i][0] == 'e' ? "an energy fraction in (0, 1] after 'e' (e.g. lowrank:e0.9)"
                                     : "a parameter budget in (0, 1] after 'b' (e.g. lowrank:b0.5)");
      if (parts[i][0] == 'e') l.options.rule.energy = *x;
      else l.options.rule.budget = *x;
    }
    ++i;
  }
  if (i < parts.size() && whitening_word(parts[i])) l.options.whitening = *whitening_word(parts[i++]);
  if (i != parts.size()) bad(full, "lowrank[:r<rank>|e<energy>|b<budget>][:chol|diag|plain] (e.g. lowrank:r64, lowrank:e0.9)");
  return l;
}

/// Gives every 'perm' stage the N:M of the first prune stage after it (sparq::error if there is none).
inline void bind_permutation(RecipeSpec& spec) {
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    auto* pm = std::get_if<PermuteStageSpec>(&spec.stages[i]);
    if (pm == nullptr) continue;
    const PruneStageSpec* p = nullptr;
    for (std::size_t j = i + 1; j < spec.stages.size() && p == nullptr; ++j) p = std::get_if<PruneStageSpec>(&spec.stages[j]);
    SPARQ_CHECK(p != nullptr && p->pattern == PrunePatternKind::nm, "recipe: 'perm' must come before an N:M prune "
                "stage (e.g. perm,obs:2:4), it chooses the channel order for that pattern");
    pm->options.n = p->n;
    pm->options.m = p->m;
    pm->options.fallback = p->nm_fallback;
  }
}

/// Shortest decimal form of a double that reads back to the same value.
[[nodiscard]] inline std::string number(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
/// Shortest %g form of a float that reads back (as a float) to the same value.
[[nodiscard]] inline std::string number(float v) {
  char buf[32];
  for (int prec = 1; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace recipe_detail

/// Parses a recipe string (grammar in the file comment). Throws sparq::error naming the bad token.
[[nodiscard]] inline RecipeSpec parse_recipe(std::string_view text) {
  using namespace recipe_detail;
  RecipeSpec spec;
  spec.name = std::string(trim(text));
  SPARQ_CHECK(!spec.name.empty(), "parse_recipe: empty recipe, expected stages such as 'wanda:0.5,smooth,w8a8'");
  for (std::string_view tok : split(text, ',')) {
    if (tok.empty())
      bad(tok, "a stage between commas (edit, magnitude, wanda, sar, sparsegpt, smooth, w<bits>, gptq, lorc, lowrank, a<bits>)");
    const auto parts = split(tok, ':');
    const std::string_view head = parts[0];
    if (head == "edit") {
      EditStageSpec e;
      std::size_t i = 1;
      if (i < parts.size() && parts[i] == "pct") {
        e.options.mode = EditMode::PercentileCompat;
        e.options.strength = 0.0;
        ++i;
        if (i < parts.size()) {
          const auto h = to_double(parts[i]);
          if (!h || !(*h >= 0.0 && *h < 1.0)) bad(tok, "edit:pct[:<clip fraction in [0, 1)>] (e.g. edit:pct:0.01)");
          e.options.clip_h = *h;
          ++i;
        }
      } else {
        if (i < parts.size() && to_double(parts[i])) {
          const double r = *to_double(parts[i]);
          if (!(r >= 0.0 && r <= 0.5)) bad(tok, "an editing strength r in [0, 0.5] (e.g. edit:5e-5)");
          e.options.strength = r;
          ++i;
        }
        if (i < parts.size() && (parts[i] == "tensor" || parts[i] == "channel")) {
          e.options.mode = parts[i] == "tensor" ? EditMode::MinMaxTensor : EditMode::MinMaxChannel;
          ++i;
        }
      }
      if (i != parts.size()) bad(tok, "edit[:<r>][:tensor|channel] or edit:pct[:<clip_h>]");
      spec.stages.emplace_back(e);
    } else if (head == "magnitude" || head == "wanda" || head == "sar" || head == "sparsegpt" || head == "obs") {
      const PruneMetricKind k = head == "magnitude"   ? PruneMetricKind::magnitude
                                : head == "wanda"     ? PruneMetricKind::wanda
                                : head == "sar"       ? PruneMetricKind::sar
                                : head == "sparsegpt" ? PruneMetricKind::sparsegpt
                                                      : PruneMetricKind::obs;
      spec.stages.emplace_back(parse_prune(k, parts, tok));
    } else if (head == "smooth") {
      SmoothStageSpec s;
      if (parts.size() > 2) bad(tok, "smooth[:<alpha in [0, 1]>]");
      if (parts.size() == 2) {
        const auto a = to_double(parts[1]);
        if (!a || !(*a >= 0.0 && *a <= 1.0)) bad(tok, "smooth[:<alpha in [0, 1]>] (e.g. smooth:0.5)");
        s.options.alpha = static_cast<float>(*a);
      }
      spec.stages.emplace_back(s);
    } else if (head == "awq") {
      AwqStageSpec a;
      for (std::size_t i = 1; i < parts.size(); ++i) {
        if (parts[i] == "noclip") {
          a.options.clip = false;
        } else if (!parts[i].empty() && parts[i][0] == 'w') {
          const WeightToken w = parse_weight_token(parts[i], tok);
          if (w.abits >= 0) bad(tok, "awq[:w<bits>[g<group>]][:noclip] (activation bits go on the quantizer)");
          a.options.bits = w.bits;
          a.options.group_size = w.group;
        } else {
          bad(tok, "awq[:w<bits>[g<group>]][:noclip] (e.g. awq:w4g128)");
        }
      }
      spec.stages.emplace_back(a);
    } else if (head == "lorc") {
      spec.stages.emplace_back(parse_lorc(parts, tok));
    } else if (head == "lowrank") {
      spec.stages.emplace_back(parse_lowrank(parts, tok));
    } else if (head == "perm") {
      if (parts.size() != 1) bad(tok, "perm (no arguments: it takes the N:M of the prune stage after it)");
      spec.stages.emplace_back(PermuteStageSpec{});
    } else if (head == "obq") {
      ObqStageSpec q;
      for (std::size_t i = 1; i < parts.size(); ++i) {
        if (!parts[i].empty() && parts[i][0] == 'w') {
          const WeightToken w = parse_weight_token(parts[i], tok);
          if (w.bits > 8) bad(tok, "obq weight bits 2..8");
          q.options.bits = w.bits;
          q.options.group_size = w.group;
          if (w.abits >= 0) spec.activation_bits = w.abits;
        } else {
          bad(tok, "obq[:w<bits>[g<group>][a<bits>]] (e.g. obq:w8, obq:w4g64a8)");
        }
      }
      spec.stages.emplace_back(q);
    } else if (head == "gptq") {
      GptqStageSpec g;
      g.spec.bits = 4;
      for (std::size_t i = 1; i < parts.size(); ++i) {
        if (parts[i] == "sym") {
          g.spec.symmetric = true;
        } else if (!parts[i].empty() && parts[i][0] == 'w') {
          const WeightToken w = parse_weight_token(parts[i], tok);
          g.spec.bits = w.bits;
          g.spec.group_size = w.group;
          if (w.abits >= 0) spec.activation_bits = w.abits;
        } else {
          bad(tok, "gptq[:w<bits>[g<group>][a<bits>]][:sym] (e.g. gptq:w4g128)");
        }
      }
      spec.stages.emplace_back(g);
    } else if (!head.empty() && head[0] == 'w') {
      const WeightToken w = parse_weight_token(head, tok);
      QuantStageSpec q;
      q.config.bits = w.bits;
      q.config.scheme = SchemeKind::symmetric;
      q.config.granularity = w.group ? GranularityKind::per_group : GranularityKind::per_channel;
      q.config.group_size = w.group;
      for (std::size_t i = 1; i < parts.size(); ++i) {
        if (parts[i] == "asym") q.config.scheme = SchemeKind::asymmetric;
        else bad(tok, "w<bits>[g<group>][a<bits>][:asym]");
      }
      if (w.abits >= 0) spec.activation_bits = w.abits;
      spec.stages.emplace_back(q);
    } else if (head == "embed") {
      if (parts.size() > 2 || (parts.size() == 2 && parts[1] != "w8"))
        bad(tok, "embed[:w8] (int8 token embedding and classifier, one scale per row)");
      spec.embedding_bits = 8;
    } else if (!head.empty() && head[0] == 'a' && parts.size() == 1 && to_size(head.substr(1))) {
      const std::size_t a = *to_size(head.substr(1));
      if (!(a == 0 || (a >= 2 && a <= 16))) bad(tok, "a<bits> with bits 2..16 or 0 (e.g. a8)");
      spec.activation_bits = static_cast<int>(a);
    } else {
      bad(tok, "a stage: edit, magnitude, wanda, sar, sparsegpt, smooth, awq, w<bits>[g<G>][a<A>], gptq[:w<bits>...], "
               "lorc[:<rank>...], lowrank[:r<rank>...], a<bits>, embed");
    }
  }
  std::vector<StageInfo> infos;
  for (const auto& s : spec.stages) infos.push_back(info_of(s));
  check_stage_order(infos);
  recipe_detail::bind_permutation(spec);
  return spec;
}

/// The canonical recipe string of a spec (parse_recipe(to_string(s)) gives the same stages).
[[nodiscard]] inline std::string to_string(const RecipeSpec& spec) {
  using recipe_detail::number;
  std::string out;
  auto add = [&](const std::string& t) {
    if (!out.empty()) out += ',';
    out += t;
  };
  for (const auto& st : spec.stages) {
    if (const auto* e = std::get_if<EditStageSpec>(&st)) {
      if (e->options.mode == EditMode::PercentileCompat) add("edit:pct:" + number(e->options.clip_h));
      else add("edit:" + number(e->options.strength) + (e->options.mode == EditMode::MinMaxChannel ? ":channel" : ""));
    } else if (const auto* p = std::get_if<PruneStageSpec>(&st)) {
      static constexpr const char* names[] = {"magnitude", "wanda", "sar", "sparsegpt", "obs"};
      std::string t = names[static_cast<int>(p->metric)];
      if (p->pattern == PrunePatternKind::nm) {
        t += ":" + std::to_string(p->n) + ":" + std::to_string(p->m);
        if (p->nm_fallback) t += ":fallback";
      } else {
        t += ":" + number(p->options.sparsity);
      }
      if (p->pattern == PrunePatternKind::unstructured_layer) t += ":layer";
      if (p->pattern == PrunePatternKind::output_channels) t += ":outch";
      if (p->pattern == PrunePatternKind::input_channels) t += ":inch";
      if (p->metric == PruneMetricKind::sar && p->options.lambda != jsq_paper_lambda)
        t += ":lambda=" + number(p->options.lambda);
      if (p->metric == PruneMetricKind::obs && p->pattern != PrunePatternKind::nm && p->options.obs_spread != 0.0)
        t += ":spread=" + number(p->options.obs_spread);
      add(t);
    } else if (std::holds_alternative<PermuteStageSpec>(st)) {
      add("perm");
    } else if (const auto* ob = std::get_if<ObqStageSpec>(&st)) {
      std::string t = "obq:w" + std::to_string(ob->options.bits);
      if (ob->options.group_size) t += "g" + std::to_string(ob->options.group_size);
      add(t);
    } else if (const auto* s = std::get_if<SmoothStageSpec>(&st)) {
      add("smooth:" + number(s->options.alpha));
    } else if (const auto* q = std::get_if<QuantStageSpec>(&st)) {
      std::string t = "w" + std::to_string(q->config.bits);
      if (q->config.granularity == GranularityKind::per_group) t += "g" + std::to_string(q->config.group_size);
      if (q->config.scheme == SchemeKind::asymmetric) t += ":asym";
      add(t);
    } else if (const auto* aw = std::get_if<AwqStageSpec>(&st)) {
      std::string t = "awq:w" + std::to_string(aw->options.bits);
      if (aw->options.group_size) t += "g" + std::to_string(aw->options.group_size);
      if (!aw->options.clip) t += ":noclip";
      add(t);
    } else if (const auto* lc = std::get_if<LorcStageSpec>(&st)) {
      std::string t = "lorc:" + std::to_string(lc->options.rank) + ":" +
                      std::string(lowrank::factor_format_name(lc->options.format));
      if (lc->options.whitening != lowrank::WhiteningKind::cholesky)
        t += ":" + std::string(recipe_detail::whitening_word(lc->options.whitening));
      add(t);
    } else if (const auto* lr = std::get_if<LowRankStageSpec>(&st)) {
      const lowrank::RankRule& rr = lr->options.rule;
      std::string t = rr.rank > 0 ? "lowrank:r" + std::to_string(rr.rank)
                      : rr.energy > 0 ? "lowrank:e" + number(rr.energy)
                                      : "lowrank:b" + number(rr.budget);
      if (lr->options.whitening != lowrank::WhiteningKind::cholesky)
        t += ":" + std::string(recipe_detail::whitening_word(lr->options.whitening));
      add(t);
    } else if (const auto* g = std::get_if<GptqStageSpec>(&st)) {
      std::string t = "gptq:w" + std::to_string(g->spec.bits);
      if (g->spec.group_size) t += "g" + std::to_string(g->spec.group_size);
      if (g->spec.symmetric) t += ":sym";
      add(t);
    }
  }
  if (spec.activation_bits) add("a" + std::to_string(*spec.activation_bits));
  if (spec.embedding_bits == 8) add("embed:w8");
  return out.empty() ? "dense" : out;
}

/// The StagePlan of a run-time recipe: each stage dispatches to the same functions as its
/// compile-time type (StageTraits<...>::request / apply). The plan owns a copy of the stages.
[[nodiscard]] inline StagePlan plan_of(const RecipeSpec& spec) {
  using namespace recipe_detail;
  StagePlan p;
  for (const auto& s : spec.stages) p.stages.push_back(info_of(s));
  check_stage_order(p.stages);
  for (const auto& s : spec.stages) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, EditStageSpec>) {
            ActivationEdit::validate(x.options);
            p.edit = x.options;
          } else if constexpr (std::is_same_v<T, PruneStageSpec>) {
            x.options.validate();
            with_pruner(x, [&](const auto& pr) { StageTraits<std::decay_t<decltype(pr)>>::request(pr, p.request); });
          } else if constexpr (std::is_same_v<T, SmoothStageSpec>) {
            StageTraits<Smooth>::request(Smooth(x.options), p.request);
          } else if constexpr (std::is_same_v<T, QuantStageSpec>) {
            x.config.validate();
          } else if constexpr (std::is_same_v<T, AwqStageSpec>) {
            StageTraits<AwqScale>::request(AwqScale(x.options), p.request);
          } else if constexpr (std::is_same_v<T, LorcStageSpec>) {
            StageTraits<LowRankCompensation>::request(LowRankCompensation(x.options), p.request);
          } else if constexpr (std::is_same_v<T, LowRankStageSpec>) {
            StageTraits<LowRank>::request(LowRank(x.options), p.request);
          } else if constexpr (std::is_same_v<T, ObqStageSpec>) {
            x.options.validate();
            StageTraits<Obq>::request(Obq{x.options}, p.request);
          } else if constexpr (std::is_same_v<T, PermuteStageSpec>) {
            StageTraits<NMPermute>::request(x.options, p.request);
          } else {
            p.request.add_all(StatKind::hessian);  // as StageTraits<Gptq<Q>>::request
          }
        },
        s);
  }
  auto stages = std::make_shared<const std::vector<StageSpec>>(spec.stages);
  p.run = [stages](BlockContext& ctx) {
    for (const auto& s : *stages) {
      std::visit(
          [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, PruneStageSpec>) {
              with_pruner(x, [&](const auto& pr) {
                using P = std::decay_t<decltype(pr)>;
                if constexpr (stage_ops::is_nm_pattern<typename P::pattern_type>::value) {
                  if (x.nm_fallback) {
                    StageTraits<NMFallback<P>>::apply(NMFallback<P>(pr), ctx);
                    return;
                  }
                }
                StageTraits<P>::apply(pr, ctx);
              });
            } else if constexpr (std::is_same_v<T, SmoothStageSpec>) {
              StageTraits<Smooth>::apply(Smooth(x.options), ctx);
            } else if constexpr (std::is_same_v<T, QuantStageSpec>) {
              stage_ops::quantize_block_rtn(x.config, ctx);
            } else if constexpr (std::is_same_v<T, GptqStageSpec>) {
              stage_ops::quantize_block_gptq(x.spec, x.options, ctx);
            } else if constexpr (std::is_same_v<T, AwqStageSpec>) {
              StageTraits<AwqScale>::apply(AwqScale(x.options), ctx);
            } else if constexpr (std::is_same_v<T, LorcStageSpec>) {
              StageTraits<LowRankCompensation>::apply(LowRankCompensation(x.options), ctx);
            } else if constexpr (std::is_same_v<T, LowRankStageSpec>) {
              StageTraits<LowRank>::apply(LowRank(x.options), ctx);
            } else if constexpr (std::is_same_v<T, ObqStageSpec>) {
              StageTraits<Obq>::apply(Obq{x.options}, ctx);
            } else if constexpr (std::is_same_v<T, PermuteStageSpec>) {
              StageTraits<NMPermute>::apply(x.options, ctx);
            }
            // EditStageSpec: works in the driver (StageDriver::on_linear_input)
          },
          s);
    }
  };
  return p;
}

/// CompressOptions with the spec's activation and embedding bits filled in where the options leave them unset.
[[nodiscard]] inline CompressOptions options_for(const RecipeSpec& spec, CompressOptions o) {
  if (!o.activation_bits && spec.activation_bits) o.activation_bits = spec.activation_bits;
  if (!o.embedding_bits && spec.embedding_bits) o.embedding_bits = spec.embedding_bits;
  return o;
}

/// Compresses `model` in place with a run-time recipe (the same stage functions as Compressor).
/// RecipeSpec::search is not acted on here: jsq_search (joint/jsq_search.hpp) does the search.
inline CompressReport compress(model::Llama& model, const std::vector<std::vector<int>>& windows,
                               const RecipeSpec& spec, const CompressOptions& options = {}) {
  const StagePlan p = plan_of(spec);
  CompressReport rep = run_compression(model, windows, p, options_for(spec, options));
  rep.recipe = to_string(spec);
  return rep;
}

}  // namespace sparq
