// StatKind / StatRequest: which calibration statistics a compression stage needs, per linear input group.
//
// A Llama block has four linear input groups, each reported once by the layer-wise driver under
// its leader (model::input_group_leader): wq for {wq, wk, wv}, wo, w1 for {w1, w3}, w2. A stage
// declares, per group, the statistics it reads; the compressor accumulates the union of its
// stages' requests and nothing else. A stage may also ask for the block's ORIGINAL float weights
// (before any stage of the block ran: LowRankCompensation needs W next to the compressed Ŵ);
// the driver copies the block only when some stage asked (keep_original_weights), so other
// recipes pay nothing. That request needs no calibration pass (empty() ignores it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sparq/model/llama_weights.hpp"

namespace sparq {

/// One calibration statistic of a linear's input x (tokens x cin), see core/stats.hpp.
enum class StatKind : std::uint8_t {
  column_sq,      ///< ColumnSquareSum: Σ_t x_tj² per channel (Wanda, SAR's importance term)
  hessian,        ///< HessianAccumulator: H = (2/nseq) XᵀX (SparseGPT, GPTQ)
  absmax,         ///< ColumnAbsMax: max_t |x_tj| (SmoothQuant absmax statistic)
  minmax,         ///< ColumnMinMax: min_t / max_t x_tj (SmoothQuant range statistic)
  mean_sequence,  ///< MeanSequence: position-wise mean over windows (SAR's range term)
  tokens,         ///< every calibration input row, concatenated (AWQ's cached input)
};
inline constexpr std::size_t stat_kind_count = 6;

[[nodiscard]] constexpr std::string_view stat_name(StatKind k) noexcept {
  switch (k) {
    case StatKind::column_sq: return "column_sq";
    case StatKind::hessian: return "hessian";
    case StatKind::absmax: return "absmax";
    case StatKind::minmax: return "minmax";
    case StatKind::mean_sequence: return "mean_sequence";
    case StatKind::tokens: return "tokens";
  }
  return "?";
}

/// Index 0..3 of a linear's input group (wq/wk/wv → 0, wo → 1, w1/w3 → 2, w2 → 3).
[[nodiscard]] constexpr std::size_t input_group_index(model::Linear l) noexcept {
  switch (l) {
    case model::Linear::wq: case model::Linear::wk: case model::Linear::wv: return 0;
    case model::Linear::wo: return 1;
    case model::Linear::w1: case model::Linear::w3: return 2;
    case model::Linear::w2: return 3;
  }
  return 0;
}
inline constexpr std::size_t input_group_count = 4;
/// The leaders of the four groups, in index order.
inline constexpr model::Linear input_group_leaders[input_group_count] = {
    model::Linear::wq, model::Linear::wo, model::Linear::w1, model::Linear::w2};

/// A set of statistics per input group (bit k of bits[g] = StatKind k needed at group g).
struct StatRequest {
  std::array<std::uint8_t, input_group_count> bits{};
  bool original_weights = false;  ///< keep a copy of the block's float weights before its stages run

  /// Requests the block's original float weights (BlockContext::original_linear).
  constexpr StatRequest& keep_original_weights() noexcept {
    original_weights = true;
    return *this;
  }
  /// Requests `k` at the group of linear `l`.
  constexpr StatRequest& add(model::Linear l, StatKind k) noexcept {
    bits[input_group_index(l)] = static_cast<std::uint8_t>(bits[input_group_index(l)] | (1u << static_cast<unsigned>(k)));
    return *this;
  }
  /// Requests `k` at every group.
  constexpr StatRequest& add_all(StatKind k) noexcept {
    for (auto l : input_group_leaders) add(l, k);
    return *this;
  }
  constexpr StatRequest& merge(const StatRequest& o) noexcept {
    for (std::size_t g = 0; g < input_group_count; ++g) bits[g] = static_cast<std::uint8_t>(bits[g] | o.bits[g]);
    original_weights = original_weights || o.original_weights;
    return *this;
  }
  [[nodiscard]] constexpr bool has(model::Linear l, StatKind k) const noexcept {
    return (bits[input_group_index(l)] >> static_cast<unsigned>(k)) & 1u;
  }
  [[nodiscard]] constexpr bool any(model::Linear l) const noexcept { return bits[input_group_index(l)] != 0; }
  /// No calibration statistic requested (original_weights needs no calibration pass).
  [[nodiscard]] constexpr bool empty() const noexcept {
    for (auto b : bits)
      if (b) return false;
    return true;
  }
  friend constexpr bool operator==(const StatRequest&, const StatRequest&) = default;
};

}  // namespace sparq
