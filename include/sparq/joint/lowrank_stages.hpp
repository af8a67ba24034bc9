// StageTraits of the low-rank stages (LowRank, LowRankCompensation) and install_low_rank(): their factors in Compressor<Stages...> and in a model.
//
//   using namespace sparq;
//   using Recipe = Compressor<Pruner<SAR, Unstructured>, Quantizer<Symmetric, PerGroup<128>, 4>,
//                             LowRankCompensation>;                      // LoRC r8 int8 (defaults)
//   CompressReport rep = Recipe{}.compress(model, windows);
//   rep.linears[i].factors   // A, B (lowrank::StoredFactor), role compensation, format int8
//
// LowRankCompensation (LoRC, lowrank/low_rank_compensation.hpp), the last stage:
//   requests  the block's ORIGINAL float weights (StatRequest::keep_original_weights) and, for
//             the activation-aware fit, `hessian` (whitening cholesky, default) or `column_sq`
//             (diagonal) at every group; nothing more for whitening identity (plain LoRC);
//   applies   per linear: W = the original weights expressed in the coordinates of the current
//             ones (columns × s after Smooth/AwqScale, rows ÷ s for AwqScale's predecessors wv/w3),
//             Ŵ = the current (pruned / fake-quantized) float weights, whitening from the
//             statistics of the current input (S⁻¹HS⁻¹ after smoothing), then
//             lowrank::LowRankCompensation(options).apply(W, Ŵ, whitening): exactly the call a user
//             makes directly (same bits, tested). Ŵ is left unchanged; the factors go to
//             LinearReport::factors (FactorRole::compensation).
// LowRank (lowrank/low_rank.hpp): replaces W by a rank-r product.
//   requests  `hessian` (cholesky) or `column_sq` (diagonal) at every group, nothing for identity;
//   applies   per linear LowRank(options).apply(W, whitening): W := A·B in place; the f32 factors
//             go to LinearReport::factors (FactorRole::replacement). A Quantizer after it
//             quantizes A and B (joint/stages.hpp); nothing else may follow it.
// Runtime: with CompressOptions::install_low_rank (default) the driver installs the ops block by
// block, so error propagation sees them: LoRC → model::CompensatedLinear(op, Â, B̂) around the
// linear's op (outermost: the correction reads the float input, also under InputQuantLinear);
// LowRank → model::LowRankLinear(A, B) (inside InputQuantLinear when activations are quantized).
// install_low_rank(model, report) does the same later on any model of the same shape (e.g. after
// packing its float weights into integer ops).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/joint/block_stats.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/linear_factors.hpp"
#include "sparq/joint/stage_traits.hpp"
#include "sparq/joint/stages.hpp"
#include "sparq/lowrank/low_rank.hpp"
#include "sparq/lowrank/low_rank_compensation.hpp"
#include "sparq/lowrank/whitening.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"

namespace sparq {

using lowrank::LowRank;
using lowrank::LowRankCompensation;

namespace stage_ops {

/// Statistics a whitening of `kind` reads, at every group.
inline void request_whitening(lowrank::WhiteningKind kind, StatRequest& r) {
  if (kind == lowrank::WhiteningKind::cholesky) r.add_all(StatKind::hessian);
  else if (kind == lowrank::WhiteningKind::diagonal) r.add_all(StatKind::column_sq);
}

/// The whitening of linear l's current input (smoothing applied): cholesky from H (double),
/// diagonal from the column square sums divided by s², identity.
[[nodiscard]] inline lowrank::Whitening whitening_of(const BlockStats& st, model::Linear l, lowrank::WhiteningKind kind,
                                                     double damp, std::size_t cin) {
  switch (kind) {
    case lowrank::WhiteningKind::cholesky: {
      const Matrix<double> h = st.hessian_f64(l);
      return lowrank::Whitening::cholesky(h.view(), damp);
    }
    case lowrank::WhiteningKind::diagonal: {
      std::vector<double> d = st.column_sq(l).sums();
      if (const auto* s = st.smoothing(l))
        for (std::size_t j = 0; j < d.size(); ++j) d[j] /= static_cast<double>((*s)[j]) * static_cast<double>((*s)[j]);
      return lowrank::Whitening::diagonal(d, damp);
    }
    case lowrank::WhiteningKind::identity: break;
  }
  return lowrank::Whitening::identity(cin);
}

/// The original weights of linear l in the coordinates of its current weights: W₀(i, j)·s_j
/// after smoothing of its input group, divided by the row divisors of AwqScale's predecessor fold.
[[nodiscard]] inline Matrix<float> original_in_current_coordinates(const BlockContext& ctx, model::Linear l) {
  Matrix<float> w = ctx.original_linear(l);
  const std::vector<float>* s = ctx.stats.smoothing(l);
  const std::vector<float>* rdiv = ctx.stats.row_divisors(l);
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j) {
      if (s) w(i, j) *= (*s)[j];
      if (rdiv) w(i, j) /= (*rdiv)[i];
    }
  return w;
}

/// LoRC on every linear of the block (see the file comment).
inline void compensate_block(const LowRankCompensation& c, BlockContext& ctx) {
  const auto& o = c.options();
  for (model::Linear l : model::all_linears) {
    const auto t0 = Clock::now();
    const Matrix<float>& w_hat = ctx.weights.linear(l);
    const Matrix<float> w = original_in_current_coordinates(ctx, l);
    const lowrank::Whitening wh = whitening_of(ctx.stats, l, o.whitening, o.damp, w_hat.cols());
    lowrank::Compensation comp = c.apply(w.view(), w_hat.view(), wh);
    LinearReport& rep = ctx.report(l);
    rep.factors = LinearFactors{FactorRole::compensation, std::move(comp.a), std::move(comp.b), comp.whitening};
    rep.seconds += seconds_since(t0);
  }
}

/// LowRank on every linear of the block: W := A·B (see the file comment).
inline void low_rank_block(const LowRank& lr, BlockContext& ctx) {
  const auto& o = lr.options();
  for (model::Linear l : model::all_linears) {
    const auto t0 = Clock::now();
    Matrix<float>& w = ctx.weights.linear(l);
    const lowrank::Whitening wh = whitening_of(ctx.stats, l, o.whitening, o.damp, w.cols());
    const lowrank::LowRankFactors f = lr.apply(w.view(), wh);
    LinearReport& rep = ctx.report(l);
    rep.factors = LinearFactors{FactorRole::replacement,
                                lowrank::StoredFactor::encode(f.a.view(), lowrank::FactorFormat::f32),
                                lowrank::StoredFactor::encode(f.b.view(), lowrank::FactorFormat::f32), f.whitening};
    rep.seconds += seconds_since(t0);
  }
}

}  // namespace stage_ops

template <>
struct StageTraits<LowRankCompensation> {
  static constexpr StageInfo info{"lorc", false, false, false, false, /*compensates*/ true};
  static void request(const LowRankCompensation& c, StatRequest& r) {
    stage_ops::request_whitening(c.options().whitening, r);
    r.keep_original_weights();
  }
  static void apply(const LowRankCompensation& c, BlockContext& ctx) { stage_ops::compensate_block(c, ctx); }
};

template <>
struct StageTraits<LowRank> {
  static constexpr StageInfo info{"lowrank", false, true, false, false, false, /*factorizes*/ true};
  static void request(const LowRank& lr, StatRequest& r) { stage_ops::request_whitening(lr.options().whitening, r); }
  static void apply(const LowRank& lr, BlockContext& ctx) { stage_ops::low_rank_block(lr, ctx); }
};

/// Installs the factors of linear (b, l) around / instead of its current op: compensation →
/// CompensatedLinear(current op, factors); replacement → LowRankLinear(factors), wrapped in
/// InputQuantLinear(activation_bits) when activation_bits > 0. No-op without factors.
inline void install_linear_factors(model::Llama& model, std::size_t b, model::Linear l, const LinearReport& r,
                                   int activation_bits) {
  if (!r.factors) return;
  if (r.factors->role == FactorRole::compensation) {
    model.set_linear(b, l, r.factors->make_op(model.take_linear(b, l)));
  } else {
    std::unique_ptr<model::LinearOp> op = r.factors->make_op(nullptr);
    if (activation_bits > 0) op = std::make_unique<model::InputQuantLinear>(std::move(op), activation_bits);
    model.set_linear(b, l, std::move(op));
  }
}

/// Installs every linear's factors of `report` into `model` (same shapes). Use it on a model whose
/// ops were rebuilt after compress() (e.g. packed from its float weights), or after a compression
/// with CompressOptions::install_low_rank = false; on the model compress() returned with the
/// default options the ops are already installed (installing twice would add the correction twice).
/// Returns the number of linears changed. Throws sparq::error on a block/shape mismatch.
inline std::size_t install_low_rank(model::Llama& model, const CompressReport& report) {
  std::size_t n = 0;
  for (const auto& r : report.linears) {
    if (!r.factors) continue;
    SPARQ_CHECK(r.block < model.config().n_layers, "install_low_rank: block ", r.block, " of the report, the model has ",
                model.config().n_layers, " blocks");
    install_linear_factors(model, r.block, r.linear, r, report.activation_bits);
    ++n;
  }
  return n;
}

}  // namespace sparq
