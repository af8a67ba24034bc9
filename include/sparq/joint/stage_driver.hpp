// StageDriver: the model::LayerwiseCallbacks that accumulates a recipe's statistics and runs its stages block by block.
//
// Shared by Compressor<Stages...> (compile-time stages), the run-time recipe executor and the JSQ
// search's resumable loop, so all three compute the same thing. Per block b:
//   on_linear_input: if some stage requested statistics of this input group, the input (edited by
//     the ActivationEdit of strength r_b first, when the recipe starts with one and r_b > 0; the
//     forward pass itself is never edited) feeds exactly the requested accumulators (BlockStats);
//   compress_block: runs the stages in order on the block's float weights (BlockContext), counts
//     non-zeros, refreshes the block's dense views and, with activation bits a > 0, wraps every
//     linear in model::InputQuantLinear(a) (per-token dynamic fake quantization of its input);
//     low-rank factors of LowRank / LowRankCompensation stages become their ops (LowRankLinear
//     inside, CompensatedLinear outside the wrapper; CompressOptions::install_low_rank), so the
//     next block's calibration inputs come from the compressed block (error propagation).
//     A copy of the block's original float weights is kept for the stages only when one asked
//     (StatRequest::original_weights).
// After the model: run_compression sets the attention-input bits (q/k/v outputs) when requested.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/joint/activation_edit.hpp"
#include "sparq/joint/block_stats.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/stage_traits.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/embedding_quant.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"

namespace sparq {

/// Everything the driver needs to know about a recipe, independent of how its stages are typed.
struct StagePlan {
  std::vector<StageInfo> stages;              ///< in order (for names and order checks)
  StatRequest request;                        ///< union of the stages' statistics
  std::optional<ActivationEditOptions> edit;  ///< the leading ActivationEdit, if any
  std::function<void(BlockContext&)> run;     ///< runs every stage on one block, in order

  [[nodiscard]] bool quantizes_weights() const noexcept {
    for (const auto& s : stages)
      if (s.quantizes_weights) return true;
    return false;
  }
  [[nodiscard]] std::string name() const {
    std::string n;
    for (const auto& s : stages) {
      if (!n.empty()) n += ',';
      n.append(s.name);
    }
    return n.empty() ? "dense" : n;
  }
};

/// Activation bits a compression installs (CompressOptions::activation_bits resolved).
[[nodiscard]] inline int resolved_activation_bits(const StagePlan& plan, const CompressOptions& o) {
  const int a = o.activation_bits.value_or(plan.quantizes_weights() ? 8 : 0);
  SPARQ_CHECK(a == 0 || (a >= 2 && a <= 16), "CompressOptions: activation_bits = ", a, ", expected 0 (off) or 2..16");
  return a;
}

/// Per-block edit strengths (CompressOptions::edit_strengths resolved; empty without an edit stage).
[[nodiscard]] inline std::vector<double> resolved_edit_strengths(const StagePlan& plan, const CompressOptions& o,
                                                                 std::size_t n_blocks) {
  if (!plan.edit) {
    SPARQ_CHECK(o.edit_strengths.empty(), "CompressOptions: edit_strengths given (", o.edit_strengths.size(),
                " values) but the recipe has no ActivationEdit stage");
    return {};
  }
  if (o.edit_strengths.empty()) return std::vector<double>(n_blocks, plan.edit->strength);
  SPARQ_CHECK(o.edit_strengths.size() == n_blocks, "CompressOptions: edit_strengths has ", o.edit_strengths.size(),
              " values, expected one per block (", n_blocks, ")");
  SPARQ_CHECK(plan.edit->mode != EditMode::PercentileCompat,
              "CompressOptions: edit_strengths set the Eq. 5 strength r, which EditMode::PercentileCompat does not use");
  for (std::size_t b = 0; b < n_blocks; ++b) {
    ActivationEditOptions e = *plan.edit;
    e.strength = o.edit_strengths[b];
    ActivationEdit::validate(e);
  }
  return o.edit_strengths;
}

class StageDriver final : public model::LayerwiseCallbacks {
 public:
  /// `strengths`: r_b per block (ignored without an edit stage); `act_bits`: 0 or 2..16.
  /// `install_low_rank`: install the ops of the stages' low-rank factors (CompressOptions::install_low_rank).
  StageDriver(const StagePlan& plan, std::vector<double> strengths, int act_bits, CompressReport& report,
              bool install_low_rank = true)
      : plan_(plan), strengths_(std::move(strengths)), act_bits_(act_bits), install_low_rank_(install_low_rank),
        report_(report), stats_(plan.request) {}

  void on_linear_input(std::size_t block, model::Linear leader, MatrixView<const float> x, std::size_t) override {
    if (!plan_.request.any(leader)) return;
    if (plan_.edit && (plan_.edit->mode == EditMode::PercentileCompat || strengths_.at(block) > 0.0)) {
      ActivationEditOptions e = *plan_.edit;
      e.strength = strengths_.at(block);
      const Matrix<float> edited = ActivationEdit(e).edited(x);
      stats_.add(leader, edited.view());
    } else {
      stats_.add(leader, x);
    }
  }

  void compress_block(std::size_t b, model::LlamaBlock& blk, model::Llama& model) override {
    std::array<LinearReport, 7> lr{};
    for (model::Linear l : model::all_linears) {
      LinearReport& r = lr[static_cast<std::size_t>(l)];
      r.block = b;
      r.linear = l;
      r.rows = blk.linear(l).rows();
      r.cols = blk.linear(l).cols();
    }
    std::optional<model::LlamaBlock> original;  // only when a stage asked (LowRankCompensation)
    if (plan_.request.original_weights) original = blk;
    BlockContext ctx{b, blk, model.config(), stats_, lr, original ? &*original : nullptr};
    if (plan_.run) plan_.run(ctx);
    for (model::Linear l : model::all_linears) {
      LinearReport& r = lr[static_cast<std::size_t>(l)];
      const Matrix<float>& w = blk.linear(l);
      r.nnz = static_cast<std::size_t>(std::count_if(w.data(), w.data() + w.size(), [](float v) { return v != 0.0f; }));
      r.activation_bits = act_bits_;
      report_.params += r.rows * r.cols;
      report_.nnz += r.nnz;
      report_.linears.push_back(r);
    }
    for (std::size_t k = 0; k < stat_kind_count; ++k) report_.stat_updates[k] += stats_.counts()[k];
    install_block(model, b, act_bits_, install_low_rank_ ? std::span<const LinearReport>(lr) : std::span<const LinearReport>());
    stats_ = BlockStats(plan_.request);
  }

  /// Refreshes block b's dense views; installs the low-rank factors of `linears` (LowRank:
  /// LowRankLinear instead of the dense view), with act_bits > 0 wraps each linear in
  /// InputQuantLinear, then wraps LoRC corrections (CompensatedLinear) around the result.
  static void install_block(model::Llama& model, std::size_t b, int act_bits,
                            std::span<const LinearReport> linears = {}) {
    model.refresh_block(b);
    for (const LinearReport& r : linears)
      if (r.factors && r.factors->role == FactorRole::replacement) model.set_linear(b, r.linear, r.factors->make_op(nullptr));
    if (act_bits > 0)
      for (model::Linear l : model::all_linears)
        model.set_linear(b, l, std::make_unique<model::InputQuantLinear>(model.take_linear(b, l), act_bits));
    for (const LinearReport& r : linears)
      if (r.factors && r.factors->role == FactorRole::compensation)
        model.set_linear(b, r.linear, r.factors->make_op(model.take_linear(b, r.linear)));
  }

 private:
  const StagePlan& plan_;
  std::vector<double> strengths_;
  int act_bits_;
  bool install_low_rank_;
  CompressReport& report_;
  BlockStats stats_;
};

/// Compresses `model` in place with `plan` over the calibration windows (model::run_layerwise;
/// without any statistic request the blocks are compressed directly, no forward pass needed).
inline CompressReport run_compression(model::Llama& model, const std::vector<std::vector<int>>& windows,
                                      const StagePlan& plan, const CompressOptions& opt) {
  check_stage_order(plan.stages);
  const int emb_bits = opt.embedding_bits.value_or(32);
  SPARQ_CHECK(emb_bits == 0 || emb_bits == 8 || emb_bits == 32, "CompressOptions: embedding_bits = ", emb_bits,
              ", expected 8 (int8 per row) or 0/32 (float)");
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t nb = model.config().n_layers;
  CompressReport rep;
  rep.recipe = plan.name();
  rep.edit_strengths = resolved_edit_strengths(plan, opt, nb);
  rep.activation_bits = resolved_activation_bits(plan, opt);
  StageDriver drv(plan, rep.edit_strengths, rep.activation_bits, rep, opt.install_low_rank);
  // Forwards to the driver and reports each finished block (CompressOptions::progress).
  struct Progress final : model::LayerwiseCallbacks {
    StageDriver& drv;
    const CompressOptions& opt;
    std::chrono::steady_clock::time_point t0;
    std::size_t nb;
    Progress(StageDriver& d, const CompressOptions& o, std::chrono::steady_clock::time_point t, std::size_t n,
             const CompressReport& r)
        : drv(d), opt(o), t0(t), nb(n), rep(r) {}
    void on_linear_input(std::size_t b, model::Linear l, MatrixView<const float> x, std::size_t w) override {
      drv.on_linear_input(b, l, x, w);
    }
    void compress_block(std::size_t b, model::LlamaBlock& blk, model::Llama& m) override {
      drv.compress_block(b, blk, m);
    }
    void before_block(std::size_t b, model::Llama& m) override {
      if (opt.load_block) opt.load_block(b, m);
    }
    void after_block(std::size_t b, model::Llama& m) override {
      if (opt.block_done) opt.block_done(b, m, rep);
      if (opt.progress)
        opt.progress(b + 1, nb, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const CompressReport& rep;
  } cb(drv, opt, t0, nb, rep);
  if (plan.request.empty()) {
    for (std::size_t b = 0; b < nb; ++b) {
      cb.before_block(b, model);
      cb.compress_block(b, model.block_weights(b), model);
      cb.after_block(b, model);
    }
  } else {
    model::LayerwiseOptions lo;
    lo.propagate_compressed = opt.propagate_compressed;
    (void)model::run_layerwise(model, windows, cb, lo);
  }
  rep.attention_bits = rep.activation_bits > 0 && opt.quantize_attention_inputs ? rep.activation_bits : 0;
  model.set_attention_input_bits(rep.attention_bits);
  model::quantize_embeddings(model, emb_bits);  // after the blocks: no calibration pass sees it
  rep.embedding_bits = emb_bits == 8 ? 8 : 32;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace sparq
