// LowRank: the compression stage that replaces a weight matrix W by a rank-r product A·B (plain or activation-aware).
//
// Usage (a plain class; joint::Compressor wraps it as one of its stages):
//   sparq::lowrank::LowRank lr({.rule = {.rank = 16}, .whitening = WhiteningKind::cholesky});
//   LowRankFactors f = lr.apply(w.view(), hessian);   // w := A·B in place, returns A and B
// Statistics needed (per linear, from its calibration inputs X):
//   whitening cholesky  a HessianAccumulator (H ∝ XᵀX, the GPTQ/SparseGPT statistic);
//   whitening diagonal  a ColumnSquareSum (Wanda's statistic) or a HessianAccumulator;
//   whitening identity  nothing (apply(w) without statistics: plain truncated SVD).
// Needs FLOAT weights (it is a change of the weight values, like pruning): run it before
// quantization. apply() overwrites W with the float product A·B (so later stages and the dense
// runtime see the factored layer) and returns the factors, which model::LowRankLinear runs as two
// products (y = A(Bx)) in r·(cout + cin) multiply-adds instead of cout·cin.
// Defaults (LowRankOptions): rank rule = budget 0.5 (A and B hold at most half of W's
// parameters), whitening = cholesky with damp 0.01 (λ = 1 % of mean diag H, as GPTQ), SVD method
// automatic (Jacobi up to min(cout, cin) = 256, randomized with p = 10, q = 2 above).
// The math is in low_rank_factors.hpp and whitening.hpp; docs/lowrank.md has measured results.
#pragma once

#include <cstddef>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/lowrank/low_rank_factors.hpp"
#include "sparq/lowrank/whitening.hpp"

namespace sparq::lowrank {

struct LowRankOptions {
  RankRule rule{};                                  ///< default: budget 0.5
  WhiteningKind whitening = WhiteningKind::cholesky;  ///< used by apply(w, stats); apply(w) is plain
  double damp = 0.01;                               ///< λ = damp · mean(diag H)
  SvdMethod method = SvdMethod::automatic;
  RandomizedSvdOptions randomized{};
};

class LowRank {
 public:
  LowRank() = default;
  explicit LowRank(const LowRankOptions& o) : o_(o) {
    SPARQ_CHECK(o.damp >= 0, "LowRank: damp = ", o.damp, ", expected >= 0");
  }
  [[nodiscard]] const LowRankOptions& options() const noexcept { return o_; }

  /// Plain truncated SVD (weight error): W := A·B.
  LowRankFactors apply(MatrixView<float> w) const { return run(w, Whitening::identity(w.cols())); }

  /// Activation-aware with a Hessian (options().whitening: cholesky or diagonal; identity = plain).
  LowRankFactors apply(MatrixView<float> w, const HessianAccumulator& h) const {
    check_cin(w, h.channels());
    switch (o_.whitening) {
      case WhiteningKind::cholesky: return run(w, Whitening::cholesky(h, o_.damp));
      case WhiteningKind::diagonal: return run(w, Whitening::diagonal(h, o_.damp));
      case WhiteningKind::identity: break;
    }
    return apply(w);
  }

  /// Activation-aware with per-channel scales (diagonal whitening whatever options().whitening says,
  /// except identity).
  LowRankFactors apply(MatrixView<float> w, const ColumnSquareSum& sq) const {
    check_cin(w, sq.channels());
    if (o_.whitening == WhiteningKind::identity) return apply(w);
    return run(w, Whitening::diagonal(sq, o_.damp));
  }

  /// With a ready whitening (any kind).
  LowRankFactors apply(MatrixView<float> w, const Whitening& wh) const { return run(w, wh); }

 private:
  static void check_cin(MatrixView<float> w, std::size_t cin) {
    SPARQ_CHECK(w.cols() == cin, "LowRank::apply: W has cin = ", w.cols(), " but the statistics have ", cin,
                " channels");
  }
  LowRankFactors run(MatrixView<float> w, const Whitening& wh) const {
    FactorizeOptions fo;
    fo.rule = o_.rule;
    fo.method = o_.method;
    fo.randomized = o_.randomized;
    LowRankFactors f = factorize(w, wh, fo);
    f.add_to(w, 0.0f);
    return f;
  }

  LowRankOptions o_{};
};

}  // namespace sparq::lowrank
