// Compressor<Stages...>: a compression recipe as a type; runs its stages layer by layer, accumulating only the statistics they declare.
//
//   using Jsq = sparq::Compressor<sparq::ActivationEdit,                        // JSQ editor
//                                 sparq::Pruner<sparq::SAR, sparq::Unstructured>,
//                                 sparq::Smooth,
//                                 sparq::Quantizer<sparq::Symmetric, sparq::PerChannel, 8>>;
//   Jsq recipe{sparq::ActivationEdit({sparq::EditMode::MinMaxTensor, 5e-5}),
//              sparq::Pruner<sparq::SAR, sparq::Unstructured>({.sparsity = 0.5}),
//              sparq::Smooth({0.5f}), {}};
//   sparq::CompressReport rep = recipe.compress(model, windows);   // W8 + A8 per token at run time
//
// Every stage is a type with a StageTraits specialisation (joint/stage_traits.hpp; built-ins in
// joint/stages.hpp). The stage order is checked at compile time: ActivationEdit first, at most one
// weight quantizer (Quantizer / Gptq), nothing that needs float weights (Pruner, Smooth, LowRank)
// after it, at most one smoothing stage, LowRankCompensation last and after a pruner or quantizer,
// only a Quantizer after LowRank (joint/lowrank_stages.hpp). compress() runs model::run_layerwise with a StageDriver: per block,
// the union of the stages' statistic requests is accumulated from the block's calibration inputs,
// then the stages transform the block's linears in order (see stage_driver.hpp for the protocol).
#pragma once

#include <array>
#include <cstddef>
#include <tuple>
#include <utility>
#include <vector>

#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/lowrank_stages.hpp"
#include "sparq/joint/stage_driver.hpp"
#include "sparq/joint/stage_traits.hpp"
#include "sparq/joint/stages.hpp"
#include "sparq/model/llama.hpp"

namespace sparq {

template <CompressionStage... Stages>
class Compressor {
  static constexpr std::array<StageInfo, sizeof...(Stages)> infos_{StageTraits<Stages>::info...};
  static constexpr StageOrderError order_ = stage_order_error(std::span<const StageInfo>(infos_));
  static_assert(order_ != StageOrderError::edit_not_first,
                "Compressor<Stages...>: ActivationEdit must be the first stage (it edits the calibration "
                "activations before any statistic is taken)");
  static_assert(order_ != StageOrderError::two_quantizers,
                "Compressor<Stages...>: two quantizers (Quantizer / Gptq) in one recipe; keep exactly one "
                "weight quantizer, last");
  static_assert(order_ != StageOrderError::smooth_after_quantizer,
                "Compressor<Stages...>: smoothing after quantization; put Smooth / AwqScale before the quantizer");
  static_assert(order_ != StageOrderError::float_after_quantizer,
                "Compressor<Stages...>: a stage that needs float weights (Pruner) comes after a quantizer; "
                "prune before quantizing");
  static_assert(order_ != StageOrderError::two_smoothers,
                "Compressor<Stages...>: two smoothing stages (Smooth / AwqScale); keep one");
  static_assert(order_ != StageOrderError::compensation_not_last,
                "Compressor<Stages...>: a stage follows LowRankCompensation; LoRC must be the last stage, after the "
                "pruner / quantizer whose error it compensates");
  static_assert(order_ != StageOrderError::nothing_to_compensate,
                "Compressor<Stages...>: LowRankCompensation has nothing to compensate; put it after the pruner / "
                "quantizer whose error it corrects");
  static_assert(order_ != StageOrderError::after_low_rank,
                "Compressor<Stages...>: only a Quantizer (it then quantizes the factors) may follow LowRank; prune or "
                "smooth before LowRank");

 public:
  static constexpr std::size_t size = sizeof...(Stages);

  Compressor() = default;
  explicit Compressor(Stages... stages)
    requires(size > 0)
      : stages_(std::move(stages)...) {}

  template <std::size_t I>
  [[nodiscard]] const auto& stage() const noexcept { return std::get<I>(stages_); }
  template <std::size_t I>
  [[nodiscard]] auto& stage() noexcept { return std::get<I>(stages_); }

  /// The union of the stages' statistic requests.
  [[nodiscard]] StatRequest request() const {
    StatRequest r;
    std::apply([&](const auto&... s) { (StageTraits<std::remove_cvref_t<decltype(s)>>::request(s, r), ...); }, stages_);
    return r;
  }

  /// The type-erased plan the driver runs (the stages are referenced: keep *this alive).
  [[nodiscard]] StagePlan plan() const {
    StagePlan p;
    p.stages.assign(infos_.begin(), infos_.end());
    p.request = request();
    if constexpr (size > 0) {
      using First = std::tuple_element_t<0, std::tuple<Stages...>>;
      if constexpr (std::is_same_v<First, ActivationEdit>) p.edit = std::get<0>(stages_).options();
    }
    p.run = [this](BlockContext& ctx) {
      std::apply([&](const auto&... s) { (StageTraits<std::remove_cvref_t<decltype(s)>>::apply(s, ctx), ...); },
                 stages_);
    };
    return p;
  }

  /// Compresses `model` in place over the calibration windows (layer by layer, error propagation).
  CompressReport compress(model::Llama& model, const std::vector<std::vector<int>>& windows,
                          const CompressOptions& options = {}) const {
    const StagePlan p = plan();
    return run_compression(model, windows, p, options);
  }

 private:
  std::tuple<Stages...> stages_;
};

}  // namespace sparq
