// StageTraits specialisations of the built-in stages (ActivationEdit, Pruner, Smooth, Quantizer, Gptq, Obq, NMPermute) and their per-block work.
//
// Each stage's work on one block is a plain function in sparq::stage_ops, called by both the
// compile-time Compressor<Stages...> (through StageTraits<S>::apply) and the run-time recipe
// executor (joint/recipe.hpp), so the two produce bit-identical weights.
//
//   ActivationEdit      requests nothing; its clamp runs in the driver on every input before the
//                       statistics (Compressor), so it must be the first stage.
//   Pruner<M, P>        Magnitude: nothing; Wanda: column_sq; SAR: column_sq + mean_sequence
//                       (ranges over the mean sequence, reference mode); SparseGPT: hessian. Every
//                       group. Prunes all seven linears with PruneOptions (sparsity, λ, ...).
//                       After a Smooth stage, Wanda/SAR score W ⊘ s with the raw statistics (same
//                       score, see block_stats.hpp) and SparseGPT uses S⁻¹HS⁻¹.
//   Smooth              absmax (or minmax for SmoothStatistic::range) at the wq and w1 groups;
//                       folds s into rms_att → {wq, wk, wv} and rms_ffn → {w1, w3} (α option).
//   AwqScale            tokens (the cached inputs) at wq, wo, w1, w2; scale search + fold (+ clip
//                       search) on llama_awq_groups: rms_att → {wq, wk, wv}, rms_ffn → {w1, w3},
//                       wv → {wo} (only without grouped-query attention), w3 → {w2}. A smoothing
//                       stage: put a Quantizer (the bits/group of AwqOptions) after it. A group
//                       size that does not divide cin → one group per row for that group.
//   NMFallback<Pruner<M, NM<N, K>>>  as the Pruner, but a linear whose cin is not a multiple of K
//                       is pruned (N/2):(K/2) instead (same density; only K = 8 with N even and
//                       cin % 4 == 0: 4:8 → 2:4, 2:8 → 1:4), else sparq::error. Reported per linear
//                       (LinearReport::nm_n, nm_m, nm_fallback). stories260K's w2 (cin 172) needs it.
//   Quantizer<S,G,B,C>  requests nothing; fake-quantizes every linear in place (quantize →
//                       dequantize floats). PerGroup<G> with cin % G != 0 uses a shorter last group
//                       (QuantOptions::tail_group is switched on by the stage). After LowRank it
//                       quantizes the factors A and B instead (same grid, rows of A and of B) and
//                       sets W := Â·B̂.
//   Pruner<ExactOBS, P> hessian at every group; exact greedy OBS with reconstruction (prune/exact_obs.hpp,
//                       docs/reconstruction.md), row or N:M; after a Smooth stage on S⁻¹HS⁻¹.
//   Obq                 hessian at every group; GPTQ on each row's kept weights on the symmetric RTN grid
//                       (prune/obq.hpp), zeros preserved; the quantizer of jsq+.
//   NMPermute           hessian at w2; reorders the FFN hidden units (w1/w3 rows, w2 columns) for the
//                       N:M of the pruner after it (prune/nm_permutation.hpp) and records the order in
//                       BlockStats (later stages read w2's Hessian permuted); not with LoRC.
//   Gptq<Q>             hessian at every group; GPTQ on every linear (zeros of a pruned W are
//                       preserved, MaskMode::automatic). GPTQ's groups must divide cin: a group size
//                       G that does not (or G ≥ cin) becomes one group per row for that linear
//                       (reported as LinearReport::group_size = 0; stories260K's w2 has cin = 172).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/lowrank/low_rank_factors.hpp"
#include "sparq/joint/activation_edit.hpp"
#include "sparq/joint/linear_factors.hpp"
#include "sparq/joint/stage_traits.hpp"
#include "sparq/model/layer_group.hpp"
#include "sparq/prune/exact_obs.hpp"
#include "sparq/prune/nm_permutation.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/prune/sparse_gpt.hpp"
#include "sparq/quant/awq.hpp"
#include "sparq/quant/gptq.hpp"
#include "sparq/prune/obq.hpp"
#include "sparq/quant/quantize.hpp"
#include "sparq/quant/quantizer.hpp"
#include "sparq/quant/smooth.hpp"

namespace sparq {

/// Reorders the FFN hidden units of a block: rows of w1 and w3, columns of w2; the block computes the
/// same function (prune/nm_permutation.hpp, docs/reconstruction.md#nm-channel-permutation).
inline void permute_ffn_hidden(model::LlamaBlock& blk, const std::vector<std::size_t>& perm) {
  check_permutation(perm, blk.w2.cols(), "permute_ffn_hidden");
  SPARQ_CHECK(blk.w1.rows() == perm.size() && blk.w3.rows() == perm.size(), "permute_ffn_hidden: w1/w3 have ",
              blk.w1.rows(), "/", blk.w3.rows(), " rows, w2 has ", blk.w2.cols(), " columns");
  auto assign = [](Matrix<float>& dst, const Matrix<float>& src) {
    std::copy(src.data(), src.data() + src.size(), dst.data());  // in place: views stay valid
  };
  assign(blk.w1, permute_rows(std::as_const(blk.w1).view(), perm));
  assign(blk.w3, permute_rows(std::as_const(blk.w3).view(), perm));
  assign(blk.w2, permute_columns(std::as_const(blk.w2).view(), perm));
}

namespace stage_ops {

using Clock = std::chrono::steady_clock;

[[nodiscard]] inline double seconds_since(Clock::time_point t0) noexcept {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Statistics a pruning metric reads, at every input group.
template <class Metric>
void request_prune(StatRequest& r) {
  if constexpr (std::is_same_v<Metric, Wanda>) {
    r.add_all(StatKind::column_sq);
  } else if constexpr (std::is_same_v<Metric, SAR>) {
    r.add_all(StatKind::column_sq).add_all(StatKind::mean_sequence);
  } else if constexpr (std::is_same_v<Metric, SparseGPT> || std::is_same_v<Metric, ExactOBS>) {
    r.add_all(StatKind::hessian);
  } else {
    static_assert(std::is_same_v<Metric, Magnitude>,
                  "Compressor: Pruner<Metric, Pattern> stages support the Magnitude, Wanda, SAR, SparseGPT and ExactOBS "
                  "metrics");
  }
}

/// N:M pattern properties (is_nm_pattern<NM<N, M>>::value, ::n, ::m).
template <class Pattern>
struct is_nm_pattern : std::false_type {};
template <std::size_t N, std::size_t M>
struct is_nm_pattern<NM<N, M>> : std::true_type {
  static constexpr std::size_t n = N, m = M;
};

/// Prunes linear `l` of the block with pruner `p` (N:M patterns are recorded in its LinearReport).
template <class Metric, class Pattern>
void prune_linear(const Pruner<Metric, Pattern>& p, BlockContext& ctx, model::Linear l) {
  if constexpr (is_nm_pattern<Pattern>::value) {
    ctx.report(l).nm_n = Pattern::kept;
    ctx.report(l).nm_m = Pattern::group;
  }
  Matrix<float>& w = ctx.weights.linear(l);
  const MatrixView<float> view = w.view();
  if constexpr (std::is_same_v<Metric, Magnitude>) {
    (void)p.prune(view);
  } else if constexpr (std::is_same_v<Metric, SparseGPT> || std::is_same_v<Metric, ExactOBS>) {
    const Matrix<float> h = ctx.stats.hessian(l);  // S⁻¹HS⁻¹ after a Smooth stage
    (void)p.prune(view, HessianView(h));
  } else {
    auto run = [&](const auto& st) {
      const std::vector<float>* s = ctx.stats.smoothing(l);
      if (s == nullptr) {
        (void)p.prune(view, st);
        return;
      }
      Matrix<float> raw(w.rows(), w.cols());  // W ⊘ s: the weights the raw statistics belong to
      for (std::size_t r = 0; r < w.rows(); ++r)
        for (std::size_t c = 0; c < w.cols(); ++c) raw(r, c) = w(r, c) / (*s)[c];
      Pruner<Metric, Pattern>::apply(view, p.mask(std::as_const(raw).view(), st));
    };
    if constexpr (std::is_same_v<Metric, Wanda>) {
      run(ctx.stats.column_sq(l));
    } else {
      run(SarStats(ctx.stats.column_sq(l), ctx.stats.mean_sequence(l).view()));
    }
  }
}

/// Prunes all seven linears.
template <class Metric, class Pattern>
void prune_block(const Pruner<Metric, Pattern>& p, BlockContext& ctx) {
  for (model::Linear l : model::all_linears) {
    const auto t0 = Clock::now();
    prune_linear(p, ctx, l);
    ctx.report(l).seconds += seconds_since(t0);
  }
}

/// Statistics Smooth reads: at the inputs of its groups (wq and w1).
inline void request_smooth(const SmoothOptions& o, StatRequest& r) {
  for (const auto& g : llama_smooth_groups())
    r.add(g.linears[0], o.statistic == SmoothStatistic::absmax ? StatKind::absmax : StatKind::minmax);
}

/// SmoothQuant on rms_att → {wq, wk, wv} and rms_ffn → {w1, w3}; records s in ctx.stats.
inline void smooth_block(const Smooth& sm, BlockContext& ctx) {
  for (const auto& g : llama_smooth_groups()) {
    const auto t0 = Clock::now();
    const model::Linear lead = g.linears[0];
    std::vector<MatrixView<const float>> ws;
    for (auto l : g.linears) ws.push_back(std::as_const(ctx.weights).linear(l).view());
    std::vector<float> s;
    if (sm.options().statistic == SmoothStatistic::absmax) {
      s = smooth_scales_absmax(ctx.stats.absmax(lead), ws, sm.options().alpha);
    } else {
      const ColumnMinMax& mm = ctx.stats.minmax_accumulator(lead);
      SPARQ_CHECK(ctx.stats.smoothing(lead) == nullptr, "Smooth: the ", model::linear_name(lead),
                  " group was already smoothed");
      s = smooth_scales_range(mm.min(), mm.max(), ws, sm.options().alpha);
    }
    fold_scales(ctx.weights, g, s);
    ctx.stats.smoothed_by(lead, s);
    const double dt = seconds_since(t0) / static_cast<double>(g.linears.size());
    for (auto l : g.linears) ctx.report(l).seconds += dt;
  }
}

/// Round-to-nearest fake quantization of every linear with a run-time QuantConfig.
inline void quantize_block_rtn(QuantConfig cfg, BlockContext& ctx) {
  SPARQ_CHECK(cfg.granularity != GranularityKind::per_token,
              "Quantizer stage: PerToken is an activation granularity; weights need PerTensor, PerChannel or PerGroup");
  if (cfg.granularity == GranularityKind::per_group) cfg.options.tail_group = true;
  cfg.validate();
  for (model::Linear l : model::all_linears) {
    const auto t0 = Clock::now();
    Matrix<float>& w = ctx.weights.linear(l);
    LinearReport& rep = ctx.report(l);
    if (rep.factors && rep.factors->role == FactorRole::replacement) {
      // After LowRank: quantize the factors A and B (rows of A: cout x r; rows of B: r x cin) with
      // the same grid; W := Â·B̂. The factors keep f32 storage of the on-grid values.
      LinearFactors& f = *rep.factors;
      const Matrix<float> a = f.a.decode(), b = f.b.decode();
      lowrank::LowRankFactors q;
      q.a = quant::fake_quantize(a.view(), cfg);
      q.b = quant::fake_quantize(b.view(), cfg);
      q.add_to(w.view(), 0.0f);
      f.a = lowrank::StoredFactor::encode(q.a.view(), lowrank::FactorFormat::f32);
      f.b = lowrank::StoredFactor::encode(q.b.view(), lowrank::FactorFormat::f32);
    } else {
      const Matrix<float> fq = quant::fake_quantize(std::as_const(w).view(), cfg);
      std::copy(fq.data(), fq.data() + fq.size(), w.data());  // in place: dense views stay valid
    }
    rep.weight_bits = cfg.bits;
    rep.group_size = cfg.granularity == GranularityKind::per_group ? std::min(cfg.group_size, w.cols()) : 0;
    rep.seconds += seconds_since(t0);
  }
}

/// The GPTQ group size used for a row of `cin` inputs (see the file comment).
[[nodiscard]] inline std::size_t gptq_group_for(std::size_t g, std::size_t cin) noexcept {
  return g == 0 || g >= cin || cin % g != 0 ? 0 : g;
}

/// GPTQ on every linear with a run-time grid.
inline void quantize_block_gptq(const GptqSpec& spec, const GptqOptions& opt, BlockContext& ctx) {
  for (model::Linear l : model::all_linears) {
    const auto t0 = Clock::now();
    Matrix<float>& w = ctx.weights.linear(l);
    GptqSpec s = spec;
    s.group_size = gptq_group_for(spec.group_size, w.cols());
    const Matrix<double> h = ctx.stats.hessian_f64(l);
    const GptqResult res = gptq_quantize(std::as_const(w).view(), h.view(), s, opt);
    std::copy(res.weight.data(), res.weight.data() + res.weight.size(), w.data());
    LinearReport& rep = ctx.report(l);
    rep.weight_bits = s.bits;
    rep.group_size = s.group_size;
    rep.seconds += seconds_since(t0);
  }
}

/// Mask-preserving GPTQ on the kept weights (prune/obq.hpp) of every linear; H after smoothing.
inline void quantize_block_obq(const ObqOptions& o, BlockContext& ctx) {
  for (model::Linear l : model::all_linears) {
    const auto t0 = Clock::now();
    Matrix<float>& w = ctx.weights.linear(l);
    const Matrix<float> h = ctx.stats.hessian(l);
    obq_quantize(w.view(), h.view(), o);
    LinearReport& rep = ctx.report(l);
    rep.weight_bits = o.bits;
    rep.group_size = o.group_size == 0 ? 0 : std::min(o.group_size, w.cols());
    rep.seconds += seconds_since(t0);
  }
}

/// The N:M permutation of the FFN hidden units (prune/nm_permutation.hpp) for a pruner keeping n of
/// every m (with m = 8 and `fallback`, (n/2):4 when w2's cin is not a multiple of 8). Returns the
/// permutation applied (empty: identity, nothing changed).
inline std::vector<std::size_t> permute_block_nm(std::size_t n, std::size_t m, bool fallback, BlockContext& ctx) {
  const auto t0 = Clock::now();
  SPARQ_CHECK(ctx.original == nullptr, "NMPermute: block ", ctx.block, " keeps its original weights for a later stage "
              "(lorc); the permutation would reorder w2's inputs under it");
  const Matrix<float>& w2 = ctx.weights.w2;
  const std::size_t cin = w2.cols();
  if (cin % m != 0) {
    SPARQ_CHECK(fallback && m == 8 && n % 2 == 0 && cin % 4 == 0, "NMPermute ", n, ":", m, ": w2 of block ",
                ctx.block, " has cin = ", cin, ", not a multiple of ", m, " (and no (N/2):4 fallback)");
    n /= 2;
    m = 4;
  }
  const Matrix<float> h = ctx.stats.hessian(model::Linear::w2);
  PruneOptions po;
  const auto inv = obs_detail::damped_inverse(h.view(), po.dampening, po.cholesky_retries, "NMPermute");
  Matrix<float> sc(w2.rows(), cin);
  for (std::size_t r = 0; r < w2.rows(); ++r)
    for (std::size_t c = 0; c < cin; ++c)
      sc(r, c) = static_cast<float>(static_cast<double>(w2(r, c)) * w2(r, c) / inv.hinv[c * cin + c]);
  std::vector<std::size_t> perm = nm_permutation(std::as_const(sc).view(), n, m, /*passes=*/1);
  bool identity = true;
  for (std::size_t k = 0; k < perm.size() && identity; ++k) identity = perm[k] == k;
  if (!identity) {
    // Keep the order only if ExactOBS's N:M reconstruction loss of w2 on the calibration Hessian is
    // lower with it than without (the proxy R can disagree with the loss), measured on every 4th row.
    // Rows 0, 4, 8, ... only (a quarter of the cost; rows are independent, so this is the loss of those rows).
    auto obs_loss = [&](MatrixView<const float> w, const Matrix<float>& hh) {
      Matrix<float> c((w.rows() + 3) / 4, w.cols());
      for (std::size_t r = 0; r < c.rows(); ++r) std::copy(w.row(4 * r), w.row(4 * r) + w.cols(), c.row(r));
      double loss = -1.0;
      auto run = [&](auto pr) { loss = pr.run(c.view(), HessianView(hh)).loss; };
      if (n == 2 && m == 4) run(Pruner<ExactOBS, NM<2, 4>>(po));
      else if (n == 4 && m == 8) run(Pruner<ExactOBS, NM<4, 8>>(po));
      else if (n == 1 && m == 4) run(Pruner<ExactOBS, NM<1, 4>>(po));
      else if (n == 2 && m == 8) run(Pruner<ExactOBS, NM<2, 8>>(po));
      else if (n == 1 && m == 2) run(Pruner<ExactOBS, NM<1, 2>>(po));
      else detail::fail("NMPermute: N:M = ", n, ":", m, " is not one of 1:2, 2:4, 4:8, 1:4, 2:8");
      return loss;
    };
    Matrix<float> hp(cin, cin);
    for (std::size_t i = 0; i < cin; ++i)
      for (std::size_t j = 0; j < cin; ++j) hp(i, j) = h(perm[i], perm[j]);
    const Matrix<float> wp = permute_columns(w2.view(), perm);
    identity = !(obs_loss(wp.view(), hp) < obs_loss(w2.view(), h));
  }
  if (!identity) {
    permute_ffn_hidden(ctx.weights, perm);
    ctx.stats.permuted_by(model::Linear::w2, perm);
  } else {
    perm.clear();
  }
  const double dt = seconds_since(t0) / 3.0;
  for (auto l : {model::Linear::w1, model::Linear::w2, model::Linear::w3}) ctx.report(l).seconds += dt;
  return perm;
}

/// Statistics AwqScale reads: the inputs of every group it may scale (wo is used only without GQA).
inline void request_awq(StatRequest& r) { r.add_all(StatKind::tokens); }

/// AWQ scale (and clip) search on every AWQ group of the block; records s in ctx.stats.
inline void awq_block(const AwqScale& awq, BlockContext& ctx) {
  for (const auto& g : llama_awq_groups(ctx.config)) {
    const auto t0 = Clock::now();
    const model::Linear lead = g.linears[0];
    Matrix<float> x = ctx.stats.tokens(lead);
    AwqOptions o = awq.options();  // as GPTQ: a group size that does not divide cin → one group per row
    o.group_size = gptq_group_for(o.group_size, x.cols());
    const AwqSearch res = AwqScale(o).apply(ctx.weights, g, x);
    ctx.stats.smoothed_by(lead, res.scales);
    if (!g.from_norm()) ctx.stats.rows_divided_by(g.prev, res.scales);  // predecessor rows ÷ s
    const double dt = seconds_since(t0) / static_cast<double>(g.linears.size());
    for (auto l : g.linears) ctx.report(l).seconds += dt;
  }
}

}  // namespace stage_ops

template <>
struct StageTraits<ActivationEdit> {
  static constexpr StageInfo info{"edit", true, false, false, false};
  static void request(const ActivationEdit&, StatRequest&) noexcept {}
  static void apply(const ActivationEdit&, BlockContext&) noexcept {}  // works in the driver
};

template <PruneMetric Metric, SparsityPattern Pattern>
struct StageTraits<Pruner<Metric, Pattern>> {
  static constexpr StageInfo info{"prune", false, true, false, false};
  static void request(const Pruner<Metric, Pattern>&, StatRequest& r) { stage_ops::request_prune<Metric>(r); }
  static void apply(const Pruner<Metric, Pattern>& p, BlockContext& ctx) { stage_ops::prune_block(p, ctx); }
};

/// The prune stage with a per-linear N:M fallback (see the file comment and NMFallback below).
template <class P>
class NMFallback;

template <PruneMetric Metric, std::size_t N, std::size_t M>
class NMFallback<Pruner<Metric, NM<N, M>>> {
 public:
  using pruner_type = Pruner<Metric, NM<N, M>>;
  NMFallback() = default;
  explicit NMFallback(const PruneOptions& o) : p_(o) {}
  explicit NMFallback(pruner_type p) : p_(std::move(p)) {}
  [[nodiscard]] const pruner_type& pruner() const noexcept { return p_; }
  [[nodiscard]] const PruneOptions& options() const noexcept { return p_.options(); }

  /// True when a linear of `cin` inputs gets the fallback pattern (cin % M != 0).
  [[nodiscard]] static constexpr bool falls_back(std::size_t cin) noexcept { return cin % M != 0; }

  /// Prunes linear l: N:M when cin % M == 0, else (N/2):(M/2) when allowed, else throws.
  void prune_linear(BlockContext& ctx, model::Linear l) const {
    const std::size_t cin = ctx.weights.linear(l).cols();
    if (!falls_back(cin)) {
      stage_ops::prune_linear(p_, ctx, l);
      return;
    }
    if constexpr (M == 8 && N % 2 == 0) {
      SPARQ_CHECK(cin % 4 == 0, "NMFallback ", N, ":", M, ": ", model::linear_name(l), " of block ", ctx.block,
                  " has cin = ", cin, ", a multiple of neither 8 nor 4 (no N:M pattern fits)");
      stage_ops::prune_linear(Pruner<Metric, NM<N / 2, 4>>(p_.options()), ctx, l);
      ctx.report(l).nm_fallback = true;
    } else {
      detail::fail("NMFallback ", N, ":", M, ": ", model::linear_name(l), " of block ", ctx.block, " has cin = ", cin,
                   ", not a multiple of ", M, ", and only M = 8 with an even N has a fallback (to (N/2):4)");
    }
  }

 private:
  pruner_type p_{};
};

template <PruneMetric Metric, std::size_t N, std::size_t M>
struct StageTraits<NMFallback<Pruner<Metric, NM<N, M>>>> {
  static constexpr StageInfo info{"prune", false, true, false, false};
  static void request(const NMFallback<Pruner<Metric, NM<N, M>>>&, StatRequest& r) {
    stage_ops::request_prune<Metric>(r);
  }
  static void apply(const NMFallback<Pruner<Metric, NM<N, M>>>& p, BlockContext& ctx) {
    for (model::Linear l : model::all_linears) {
      const auto t0 = stage_ops::Clock::now();
      p.prune_linear(ctx, l);
      ctx.report(l).seconds += stage_ops::seconds_since(t0);
    }
  }
};

template <>
struct StageTraits<Smooth> {
  static constexpr StageInfo info{"smooth", false, true, false, true};
  static void request(const Smooth& s, StatRequest& r) { stage_ops::request_smooth(s.options(), r); }
  static void apply(const Smooth& s, BlockContext& ctx) { stage_ops::smooth_block(s, ctx); }
};

template <>
struct StageTraits<AwqScale> {
  static constexpr StageInfo info{"awq", false, true, false, true};
  static void request(const AwqScale&, StatRequest& r) { stage_ops::request_awq(r); }
  static void apply(const AwqScale& a, BlockContext& ctx) { stage_ops::awq_block(a, ctx); }
};

template <QuantScheme Scheme, Granularity Gran, unsigned Bits, RangeCalibrator Calibrator>
struct StageTraits<Quantizer<Scheme, Gran, Bits, Calibrator>> {
  static_assert(!Gran::dynamic, "Compressor: a Quantizer stage quantizes weights; PerToken is the activation "
                                "granularity (set CompressOptions::activation_bits instead)");
  static constexpr StageInfo info{"quantize", false, false, true, false, false, false, /*quantizes_factors*/ true};
  static void request(const Quantizer<Scheme, Gran, Bits, Calibrator>&, StatRequest&) noexcept {}
  static void apply(const Quantizer<Scheme, Gran, Bits, Calibrator>& q, BlockContext& ctx) {
    stage_ops::quantize_block_rtn(q.config(), ctx);
  }
};

/// N:M input-channel permutation of the FFN hidden units (w2's inputs, folded into w1/w3's rows;
/// prune/nm_permutation.hpp), chosen for the N:M of the pruner that follows, and kept only when
/// ExactOBS's N:M loss of w2 on the calibration Hessian is lower with it than without. Requests the Hessian
/// of w2's input; later stages read that group's Hessian permuted (BlockStats::permuted_by).
struct NMPermute {
  std::size_t n = 2, m = 4;
  bool fallback = false;  ///< m = 8: (n/2):4 when w2's cin is not a multiple of 8
};

template <>
struct StageTraits<NMPermute> {
  static constexpr StageInfo info{"perm", false, true, false, false};
  static void request(const NMPermute&, StatRequest& r) { r.add(model::Linear::w2, StatKind::hessian); }
  static void apply(const NMPermute& p, BlockContext& ctx) { (void)stage_ops::permute_block_nm(p.n, p.m, p.fallback, ctx); }
};

/// Mask-preserving GPTQ on sparq's symmetric RTN grid (prune/obq.hpp): the quantizer of jsq+.
struct Obq {
  ObqOptions options{};
};

template <>
struct StageTraits<Obq> {
  static constexpr StageInfo info{"obq", false, false, true, false};
  static void request(const Obq&, StatRequest& r) { r.add_all(StatKind::hessian); }
  static void apply(const Obq& q, BlockContext& ctx) { stage_ops::quantize_block_obq(q.options, ctx); }
};

template <class Q>
struct StageTraits<Gptq<Q>> {
  static constexpr StageInfo info{"gptq", false, false, true, false};
  static void request(const Gptq<Q>&, StatRequest& r) { r.add_all(StatKind::hessian); }
  static void apply(const Gptq<Q>& g, BlockContext& ctx) {
    stage_ops::quantize_block_gptq(Gptq<Q>::spec, g.options(), ctx);
  }
};

}  // namespace sparq
