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
// AwqScale: at most one, never after quantization). Built-in stages are specialised in
// joint/stages.hpp; a new stage (e.g. low-rank compensation) adds its own specialisation next to
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
};

/// What a stage's apply() sees for one block.
struct BlockContext {
  std::size_t block;
  model::LlamaBlock& weights;         ///< the block's float weights (edit in place)
  const model::LlamaConfig& config;
  BlockStats& stats;                  ///< statistics of the block's inputs (the union requested)
  std::array<LinearReport, 7>& linears;  ///< per model::Linear (index = static_cast<size_t>(l))

  [[nodiscard]] LinearReport& report(model::Linear l) noexcept { return linears[static_cast<std::size_t>(l)]; }
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
};

/// The first problem of a stage order, or none. Usable at compile time.
[[nodiscard]] constexpr StageOrderError stage_order_error(std::span<const StageInfo> st) noexcept {
  bool quantized = false, smoothed = false;
  for (std::size_t i = 0; i < st.size(); ++i) {
    const StageInfo& s = st[i];
    if (s.edits_activations && i != 0) return StageOrderError::edit_not_first;
    if (s.quantizes_weights && quantized) return StageOrderError::two_quantizers;
    if (s.smooths && quantized) return StageOrderError::smooth_after_quantizer;
    if (s.needs_float_weights && quantized) return StageOrderError::float_after_quantizer;
    if (s.smooths && smoothed) return StageOrderError::two_smoothers;
    quantized = quantized || s.quantizes_weights;
    smoothed = smoothed || s.smooths;
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
  }
}

}  // namespace sparq
