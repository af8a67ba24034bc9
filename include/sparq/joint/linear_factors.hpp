// LinearFactors: the low-rank factors a compression stage produced for one linear (LoRC correction or LowRank replacement) and the op that runs them.
//
// Two roles:
//   compensation  (LowRankCompensation) Ŵ + Â·B̂ ≈ W: the block's float weights hold Ŵ, the
//                 runtime op is model::CompensatedLinear(op of Ŵ, Â, B̂), y = Ŵx + Â(B̂x).
//   replacement   (LowRank) W := A·B: the block's float weights hold the product (decoded
//                 factors, double accumulation), the runtime op is model::LowRankLinear(A, B).
// A is cout x r and B is r x cin, stored as lowrank::StoredFactor (f32, per-row int8, f16, bf16;
// the format is a.format() == b.format()). The factors are given in the coordinates of the
// linear's current input: after a smoothing stage (Smooth / AwqScale) that is x / s, exactly
// what the linear's op receives at run time (the scales are folded into the RMSNorm weights or
// the preceding linear).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "sparq/core/error.hpp"
#include "sparq/lowrank/low_rank_compensation.hpp"
#include "sparq/lowrank/stored_factor.hpp"
#include "sparq/lowrank/whitening.hpp"
#include "sparq/model/linear_op.hpp"
#include "sparq/model/lowrank_linear.hpp"

namespace sparq {

/// What a linear's factors mean (see the file comment).
enum class FactorRole : std::uint8_t {
  compensation,  ///< LoRC: y = Ŵx + A(Bx)
  replacement,   ///< LowRank: y = A(Bx)
};

[[nodiscard]] constexpr std::string_view factor_role_name(FactorRole r) noexcept {
  return r == FactorRole::compensation ? "lorc" : "lowrank";
}

struct LinearFactors {
  FactorRole role = FactorRole::compensation;
  lowrank::StoredFactor a;  ///< cout x r
  lowrank::StoredFactor b;  ///< r x cin
  lowrank::WhiteningKind whitening = lowrank::WhiteningKind::identity;  ///< how they were fitted

  [[nodiscard]] std::size_t rank() const noexcept { return a.cols(); }
  [[nodiscard]] lowrank::FactorFormat format() const noexcept { return a.format(); }
  /// Bytes as stored (values + int8 row scales) of both factors.
  [[nodiscard]] std::size_t bytes() const noexcept { return a.bytes() + b.bytes(); }
  /// A copy as a lowrank::Compensation (what model::CompensatedLinear takes).
  [[nodiscard]] lowrank::Compensation compensation() const { return lowrank::Compensation{a, b, whitening}; }

  /// The runtime op: compensation → CompensatedLinear(inner, factors) (inner must not be null);
  /// replacement → LowRankLinear(factors) (inner, if any, is dropped).
  [[nodiscard]] std::unique_ptr<model::LinearOp> make_op(std::unique_ptr<model::LinearOp> inner) const {
    if (role == FactorRole::replacement) return std::make_unique<model::LowRankLinear>(a, b);
    SPARQ_CHECK(inner != nullptr, "LinearFactors::make_op: a LoRC correction needs the op of the compressed weights");
    return std::make_unique<model::CompensatedLinear>(std::move(inner), compensation());
  }
};

}  // namespace sparq
