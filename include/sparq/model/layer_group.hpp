// LayerGroup: which op feeds which linears inside a Llama block, and how per-channel scales fold into them.
//
// SmoothQuant and AWQ (docs/algorithms.md#scale-folding) migrate difficulty between a linear's input and its weights
// with a per-input-channel scale s (length = cin of the consumers):
//     consumers:   W^f[:, j] ← W^f[:, j] · s_j        for every linear f of the group
//     predecessor: RMSNorm γ_j ← γ_j / s_j           (norm → linears), or
//                  rows of the producing linear:  P[r, :] ← P[r, :] / s_{r − (rows − len s)}
//                  for its last len(s) rows          (linear → linear, AWQ's scale_fc_fc)
// so that, in exact arithmetic, the block computes the same function (the consumers see
// x / s and multiply by s). Groups of a Llama block (model::LlamaBlock):
//     rms_att → {wq, wk, wv}     smoothing and AWQ
//     rms_ffn → {w1, w3}         smoothing and AWQ (gate and up)
//     wv      → {wo}             AWQ only, and only without grouped-query attention (kv_dim == dim):
//                                attention mixes positions but not channels, so v's channel j
//                                reaches wo's input channel j unchanged in scale
//     w3      → {w2}             AWQ only: h = silu(w1 x) ⊙ (w3 x) is linear in w3's rows
// o_proj (wo) and down (w2) are never smoothed by SmoothQuant (docs/algorithms.md#scale-folding).
//
// This is the Llama side of scale folding: quant/ holds the maths (smooth.hpp, awq.hpp) and knows no
// model; Smooth::apply and AwqScale::apply reach the functions below through the customisation points
// of quant/scale_group.hpp (argument-dependent lookup on LayerGroup). The names stay in namespace
// sparq, where they were when this header lived in quant/.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/llama_weights.hpp"
#include "sparq/quant/scale_group.hpp"

namespace sparq {

/// What produces a group's shared input.
enum class GroupSource : std::uint8_t {
  rms_att,  ///< the attention RMSNorm (LlamaBlock::rms_att)
  rms_ffn,  ///< the FFN RMSNorm (LlamaBlock::rms_ffn)
  linear    ///< another linear of the block (LayerGroup::prev)
};

/// One smoothing / scaling point of a block: a predecessor and the linears reading its output.
struct LayerGroup {
  GroupSource source = GroupSource::rms_att;
  model::Linear prev = model::Linear::wv;  ///< the producing linear when source == linear
  std::vector<model::Linear> linears;      ///< consumers (same cin); the first is where stats are taken

  /// "rms_att->{wq,wk,wv}" style name.
  [[nodiscard]] std::string name() const {
    std::string s = source == GroupSource::rms_att   ? "rms_att"
                    : source == GroupSource::rms_ffn ? "rms_ffn"
                                                     : std::string(model::linear_name(prev));
    s += "->{";
    for (std::size_t i = 0; i < linears.size(); ++i) {
      if (i) s += ",";
      s += model::linear_name(linears[i]);
    }
    return s + "}";
  }
  [[nodiscard]] bool from_norm() const noexcept { return source != GroupSource::linear; }
};

/// SmoothQuant's groups for a Llama block: rms_att → {wq, wk, wv}, rms_ffn → {w1, w3}.
[[nodiscard]] inline std::vector<LayerGroup> llama_smooth_groups() {
  using model::Linear;
  return {LayerGroup{GroupSource::rms_att, Linear::wv, {Linear::wq, Linear::wk, Linear::wv}},
          LayerGroup{GroupSource::rms_ffn, Linear::wv, {Linear::w1, Linear::w3}}};
}

/// AWQ's groups for a Llama block of configuration `cfg`: the smoothing groups, wv → {wo} when
/// there is no grouped-query attention (kv_dim == dim), and w3 → {w2}.
[[nodiscard]] inline std::vector<LayerGroup> llama_awq_groups(const model::LlamaConfig& cfg) {
  using model::Linear;
  auto g = llama_smooth_groups();
  if (cfg.kv_dim() == cfg.dim) g.push_back(LayerGroup{GroupSource::linear, Linear::wv, {Linear::wo}});
  g.push_back(LayerGroup{GroupSource::linear, Linear::w3, {Linear::w2}});
  return g;
}

/// Input width (cin) shared by the group's linears; throws sparq::error if the group is empty,
/// the consumers disagree, or the predecessor does not produce that many channels.
[[nodiscard]] inline std::size_t group_channels(const model::LlamaBlock& blk, const LayerGroup& g) {
  SPARQ_CHECK(!g.linears.empty(), "LayerGroup ", g.name(), ": no consumer linears");
  const std::size_t cin = blk.linear(g.linears[0]).cols();
  for (auto l : g.linears)
    SPARQ_CHECK(blk.linear(l).cols() == cin, "LayerGroup ", g.name(), ": ", model::linear_name(l),
                " has cin = ", blk.linear(l).cols(), ", expected ", cin, " like ",
                model::linear_name(g.linears[0]));
  const std::size_t produced = g.source == GroupSource::rms_att   ? blk.rms_att.size()
                               : g.source == GroupSource::rms_ffn ? blk.rms_ffn.size()
                                                                  : blk.linear(g.prev).rows();
  SPARQ_CHECK(produced == cin, "LayerGroup ", g.name(), ": the predecessor produces ", produced,
              " channels but the consumers read cin = ", cin,
              g.from_norm() ? "" : " (wv -> wo needs kv_dim == dim: no grouped-query attention)");
  return cin;
}

/// Folds s into the block (see the file comment): predecessor ÷ s, consumers' columns × s.
/// Throws sparq::error if s has the wrong length or a value that is not positive and finite.
inline void fold_scales(model::LlamaBlock& blk, const LayerGroup& g, std::span<const float> s) {
  const std::size_t cin = group_channels(blk, g);
  SPARQ_CHECK(s.size() == cin, "fold_scales ", g.name(), ": ", s.size(), " scales, expected cin = ", cin);
  for (std::size_t j = 0; j < cin; ++j)
    SPARQ_CHECK(std::isfinite(s[j]) && s[j] > 0.0f, "fold_scales ", g.name(), ": scale ", s[j],
                " at channel ", j, ", expected a positive finite value");
  if (g.from_norm()) {
    auto& gamma = g.source == GroupSource::rms_att ? blk.rms_att : blk.rms_ffn;
    for (std::size_t j = 0; j < cin; ++j) gamma[j] /= s[j];
  } else {
    auto& p = blk.linear(g.prev);
    const std::size_t r0 = p.rows() - cin;
    for (std::size_t r = 0; r < cin; ++r) {
      float* row = p.row(r0 + r);
      for (std::size_t c = 0; c < p.cols(); ++c) row[c] /= s[r];
    }
  }
  for (auto l : g.linears) {
    auto& w = blk.linear(l);
    for (std::size_t r = 0; r < w.rows(); ++r) {
      float* row = w.row(r);
      for (std::size_t j = 0; j < cin; ++j) row[j] *= s[j];
    }
  }
}

/// Whether AWQ's clip search may clip consumer `l` of `g`: never the query and key projections
/// (attention logits are too sensitive to clipping; docs/algorithms.md#awq-clip-search).
[[nodiscard]] constexpr bool awq_may_clip(const LayerGroup& g, model::Linear l) noexcept {
  (void)g;
  return l != model::Linear::wq && l != model::Linear::wk;
}

static_assert(AwqScaleGroup<model::LlamaBlock, LayerGroup>,
              "LayerGroup must provide what Smooth::apply and AwqScale::apply need (quant/scale_group.hpp)");

}  // namespace sparq
