// Quantization granularities: the Granularity concept and PerTensor, PerChannel, PerGroup<G>, PerToken.
//
// A granularity says which elements share one scale (and zero point) of a row-major matrix
// [rows × cols] (weights: rows = output channels, cols = inputs; activations: rows = tokens):
//   PerTensor    one scale for the whole matrix                    scales [1 × 1]
//   PerChannel   one scale per row (output channel)                scales [rows × 1]
//   PerGroup<G>  one scale per G consecutive inputs of a row       scales [rows × ceil(cols/G)]
//                (cols % G != 0 is an error unless QuantOptions::tail_group asks for a shorter
//                last group)
//   PerToken     one scale per row of an activation matrix, computed when quantizing (dynamic);
//                the same math as PerChannel.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace sparq {

/// Run-time identity of a granularity.
enum class GranularityKind : std::uint8_t { per_tensor, per_channel, per_group, per_token };

/// A granularity tag: kind, group size (0 unless PerGroup), whether scales are computed at run time.
template <class G>
concept Granularity = requires {
  { G::kind } -> std::convertible_to<GranularityKind>;
  { G::group_size } -> std::convertible_to<std::size_t>;
  { G::dynamic } -> std::convertible_to<bool>;
};

struct PerTensor {
  static constexpr GranularityKind kind = GranularityKind::per_tensor;
  static constexpr std::size_t group_size = 0;
  static constexpr bool dynamic = false;
};
static_assert(Granularity<PerTensor>);

struct PerChannel {
  static constexpr GranularityKind kind = GranularityKind::per_channel;
  static constexpr std::size_t group_size = 0;
  static constexpr bool dynamic = false;
};
static_assert(Granularity<PerChannel>);

template <std::size_t G>
struct PerGroup {
  static_assert(G > 0, "PerGroup<G>: the group size G must be positive (e.g. PerGroup<128>)");
  static constexpr GranularityKind kind = GranularityKind::per_group;
  static constexpr std::size_t group_size = G;
  static constexpr bool dynamic = false;
};
static_assert(Granularity<PerGroup<32>>);
static_assert(Granularity<PerGroup<64>>);
static_assert(Granularity<PerGroup<128>>);

struct PerToken {
  static constexpr GranularityKind kind = GranularityKind::per_token;
  static constexpr std::size_t group_size = 0;
  static constexpr bool dynamic = true;
};
static_assert(Granularity<PerToken>);

/// Short name of a granularity kind ("tensor", "channel", "group", "token").
[[nodiscard]] constexpr const char* granularity_name(GranularityKind k) noexcept {
  switch (k) {
    case GranularityKind::per_tensor: return "tensor";
    case GranularityKind::per_channel: return "channel";
    case GranularityKind::per_group: return "group";
    case GranularityKind::per_token: return "token";
  }
  return "?";
}

}  // namespace sparq
