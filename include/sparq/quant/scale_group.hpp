// ScaleGroup: what SmoothQuant (Smooth::apply) and AWQ (AwqScale::apply) need from a model to fold a
// per-input-channel scale into a group of linears that read one input (docs/algorithms.md#scale-folding).
//
// quant/ knows no model (it sits below model/ in the layers of include/sparq/, see README.md "Layout"):
// the block type B and the group type G come from the caller, and the free functions below are found
// by argument-dependent lookup on them. model/layer_group.hpp provides everything for a Llama block
// (model::LlamaBlock with LayerGroup, llama_smooth_groups, llama_awq_groups):
//   g.linears                 the consumers, a range of keys; blk.linear(key) is a consumer's weight
//                             (cout x cin, with .view())
//   g.name(), g.from_norm()   a printable name; whether the input comes from a norm (SmoothQuant folds
//                             only into norms)
//   group_channels(blk, g)    the cin the consumers share; throws sparq::error when g does not fit blk
//   fold_scales(blk, g, s)    predecessor ÷ s, consumers' columns × s
//   awq_may_clip(g, key)      AwqScaleGroup only: whether AWQ's clip search may clip that consumer
#pragma once

#include <concepts>
#include <cstddef>
#include <ranges>
#include <span>
#include <string>
#include <utility>

#include "sparq/core/matrix_view.hpp"

namespace sparq {

/// The key type of a group's consumers (model::Linear for LayerGroup).
template <class G>
using scale_group_key_t = std::ranges::range_value_t<decltype(std::declval<const G&>().linears)>;

/// A group G of linears of block B into which a per-channel scale can be folded (see the file comment).
template <class B, class G>
concept ScaleGroup =
    std::ranges::input_range<decltype(std::declval<const G&>().linears)> &&
    requires(B& blk, const B& cblk, const G& g, const scale_group_key_t<G>& key, std::span<const float> s) {
      { g.name() } -> std::convertible_to<std::string>;
      { g.from_norm() } -> std::convertible_to<bool>;
      { group_channels(cblk, g) } -> std::convertible_to<std::size_t>;
      fold_scales(blk, g, s);
      { cblk.linear(key).view() } -> std::convertible_to<MatrixView<const float>>;
      { blk.linear(key).view() } -> std::convertible_to<MatrixView<float>>;
    };

/// A ScaleGroup that also says which consumers AWQ's clip search may clip.
template <class B, class G>
concept AwqScaleGroup = ScaleGroup<B, G> && requires(const G& g, const scale_group_key_t<G>& key) {
  { awq_may_clip(g, key) } -> std::convertible_to<bool>;
};

}  // namespace sparq
