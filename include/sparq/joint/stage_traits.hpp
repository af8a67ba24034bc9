// StageTraits<S>: what makes a type a compression stage of Compressor<Stages...> (the extension point).
//
// A stage is any type S with a specialisation of StageTraits<S> providing
//
//   static constexpr StageInfo info{...};                      // name and order properties
//   static void request(const S&, StatRequest&);               // statistics it reads, per input group
//   static void apply(const S&, BlockContext&);                // transform one block's linears
//
// `info` says whether the stage edits the calibration activations (only ActivationEdit: it must
// come first), needs float weights (pruners, smoothing/scaling: they cannot follow a quantizer),
// quantizes weights (Quantizer, Gptq: at most one), or folds scales into the block (Smooth,
// AwqScale: at most one, never after quantization), compensates the error of earlier stages
// (LowRankCompensation: last, after a pruner or quantizer), or replaces W by factors (LowRank:
// only a Quantizer, which then quantizes the factors, may follow). Built-in stages are specialised in
// joint/stages.hpp and joint/lowrank_stages.hpp; a new stage adds its own specialisation next to
// its type and works in Compressor<...> and in check_stage_order unchanged. Stages run, in order,
// once per block after the block's statistics were accumulated; `apply` may edit the float
// weights (ctx.weights) in place, read ctx.stats, and fill ctx.linears (bits, group size).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/joint/block_stats.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/stat_request.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq {

/// Order-relevant properties of a stage.
struct StageInfo {
  std::string_view name;
  bool edits_activations = false;    ///< edits calibration inputs before statistics (must be first)
  bool needs_float_weights = false;  ///< reads/changes float weights: may not follow a quantizer
  bool quantizes_weights = false;    ///< produces quantized weights (at most one such stage)
  bool smooths = false;              ///< folds per-channel scales into the block (at most one)
  bool compensates = false;          ///< corrects the error of earlier stages (LowRankCompensation): last,
                                     ///< after a stage that prunes or quantizes
  bool factorizes = false;           ///< replaces W by factors A·B (LowRank): only a factor quantizer may follow
  bool quantizes_factors = false;    ///< after a factorizing stage, quantizes its factors (Quantizer)
};

/// What a stage's apply() sees for one block.
struct BlockContext {
  std::size_t block;
  model::LlamaBlock& weights;         ///< the block's float weights (edit in place)
  const model::LlamaConfig& config;
  BlockStats& stats;                  ///< statistics of the block's inputs (the union requested)
  std::array<LinearReport, 7>& linears;  ///< per model::Linear (index = static_cast<size_t>(l))
  /// The block's float weights before any stage of this block ran; set only when a stage asked
  /// for them (StatRequest::keep_original_weights), else nullptr.
  const model::LlamaBlock* original = nullptr;

  [[nodiscard]] LinearReport& report(model::Linear l) noexcept { return linears[static_cast<std::size_t>(l)]; }
  /// The original float weights of linear l (see `original`). Throws if they were not kept.
  [[nodiscard]] const Matrix<float>& original_linear(model::Linear l) const {
    if (original == nullptr)
      detail::fail("BlockContext: the original weights of block ", block, " were not kept (a stage read them "
                   "without StatRequest::keep_original_weights)");
    return original->linear(l);
  }
};

/// Primary template: not a stage. Specialise it (see the file comment).
template <class S>
struct StageTraits {
  static constexpr bool is_stage = false;
};

/// A type with a StageTraits specialisation.
template <class S>
concept CompressionStage = requires(const S& s, StatRequest& r, BlockContext& c) {
  { StageTraits<S>::info } -> std::convertible_to<StageInfo>;
  StageTraits<S>::request(s, r);
  StageTraits<S>::apply(s, c);
};

/// What is wrong with a stage order (none = valid).
enum class StageOrderError {
  none,
  edit_not_first,          ///< ActivationEdit somewhere other than first
  two_quantizers,          ///< two stages quantize weights
  smooth_after_quantizer,  ///< Smooth / AwqScale after a quantizer
  float_after_quantizer,   ///< a stage needing float weights (pruner) after a quantizer
  two_smoothers,           ///< two smoothing/scaling stages
  compensation_not_last,   ///< a stage follows LowRankCompensation
  nothing_to_compensate,   ///< LowRankCompensation without an earlier pruner / quantizer
  after_low_rank,          ///< a stage other than a (factor) Quantizer follows LowRank
};

/// The first problem of a stage order, or none. Usable at compile time.
[[nodiscard]] constexpr StageOrderError stage_order_error(std::span<const StageInfo> st) noexcept {
  bool quantized = false, smoothed = false, lossy = false, compensated = false, factored = false;
  for (std::size_t i = 0; i < st.size(); ++i) {
    const StageInfo& s = st[i];
    if (s.edits_activations && i != 0) return StageOrderError::edit_not_first;
    if (compensated) return StageOrderError::compensation_not_last;
    if (factored && !s.quantizes_factors) return StageOrderError::after_low_rank;
    if (s.compensates && !lossy) return StageOrderError::nothing_to_compensate;
    if (s.quantizes_weights && quantized) return StageOrderError::two_quantizers;
    if (s.smooths && quantized) return StageOrderError::smooth_after_quantizer;
    if (s.needs_float_weights && quantized) return StageOrderError::float_after_quantizer;
    if (s.smooths && smoothed) return StageOrderError::two_smoothers;
    quantized = quantized || s.quantizes_weights;
    smoothed = smoothed || s.smooths;
    // Lossy: quantizers, and float-weight stages that are not lossless rescalings (pruners, LowRank).
    lossy = lossy || s.quantizes_weights || (s.needs_float_weights && !s.smooths);
    compensated = compensated || s.compensates;
    factored = factored || s.factorizes;
  }
  return StageOrderError::none;
}

/// Throws sparq::error describing the first problem of a stage order (run-time recipes).
inline void check_stage_order(std::span<const StageInfo> st) {
  std::string names;
  for (const auto& s : st) {
    if (!names.empty()) names += ',';
    names.append(s.name);
  }
  switch (stage_order_error(st)) {
    case StageOrderError::none: return;
    case StageOrderError::edit_not_first:
      detail::fail("recipe '", names, "': ActivationEdit (edit) must be the first stage: it edits the calibration "
                   "activations before any statistic is taken");
    case StageOrderError::two_quantizers:
      detail::fail("recipe '", names, "': two quantizers (Quantizer/Gptq); use exactly one weight quantizer");
    case StageOrderError::smooth_after_quantizer:
      detail::fail("recipe '", names, "': smoothing after quantization; put Smooth/AwqScale before the quantizer");
    case StageOrderError::float_after_quantizer:
      detail::fail("recipe '", names, "': a stage that needs float weights (a pruner) follows a quantizer; "
                   "prune before quantizing");
    case StageOrderError::two_smoothers:
      detail::fail("recipe '", names, "': two smoothing stages (Smooth/AwqScale); use one");
    case StageOrderError::compensation_not_last:
      detail::fail("recipe '", names, "': a stage follows LowRankCompensation (lorc); it must be the last stage, "
                   "after the pruner/quantizer whose error it compensates");
    case StageOrderError::nothing_to_compensate:
      detail::fail("recipe '", names, "': LowRankCompensation (lorc) has nothing to compensate; put it after the "
                   "pruner/quantizer whose error it corrects");
    case StageOrderError::after_low_rank:
      detail::fail("recipe '", names, "': only a Quantizer (it then quantizes the factors) may follow LowRank "
                   "(lowrank); prune or smooth before LowRank");
  }
}

}  // namespace sparq
