// PruneOptions, PruneMask and the PruneMetric / SparsityPattern concepts shared by every pruner.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq {

/// Keep/prune mask of a cout x cin weight matrix: 1 = kept, 0 = pruned (set to exactly 0.0f).
using PruneMask = Matrix<std::uint8_t>;

/// The lambda of the JSQ paper (Eq. 4 uses λ = 2 in its experiments): the sparq default.
inline constexpr float jsq_paper_lambda = 2.0f;
/// The ρ of the released JSQ code (`main.py --rho 2.1`): use it to reproduce reference numbers.
inline constexpr float jsq_reference_lambda = 2.1f;

/// Options of every Pruner<Metric, Pattern> (fields a metric or pattern does not use are ignored).
struct PruneOptions {
  /// Fraction of weights set to zero, in [0, 1). Unstructured: floor(sparsity*cin) per output row;
  /// UnstructuredLayer: one threshold per matrix; OutputChannels/InputChannels: floor(sparsity*rows
  /// or cols) whole rows/columns. NM<N, M> ignores it (its sparsity is 1 - N/M).
  double sparsity = 0.5;

  // --- SAR (JSQ) -----------------------------------------------------------------------------
  /// S = I + lambda * A. Paper: 2; released code: 2.1 (jsq_reference_lambda).
  float lambda = jsq_paper_lambda;
  /// Reference-compat (docs/algorithms.md#sar): round activations and weights to bf16 before
  /// the range scan, and the per-output max/min and the range A to bf16 (round_to_bf16), as the
  /// reference's bf16 matmuls and bf16 A tensor do. Off: exact FP32 (the library default).
  bool bf16_compat = false;
  /// Safeguard: non-finite ranges (+Inf from overflow, NaN from Inf - Inf) are replaced by this.
  float nonfinite_range = 100.0f;
  /// Tokens per chunk when SAR ranges are computed over many tokens (bounds the Y buffer).
  std::size_t sar_chunk_tokens = 2048;

  // --- SparseGPT ------------------------------------------------------------------------------
  /// Columns per block of the OBS sweep (lazy updates between blocks). Must be a multiple of M
  /// for NM<N, M>.
  std::size_t block_size = 128;
  /// Relative dampening: H_ii += dampening * mean(diag H) (percdamp).
  double dampening = 0.01;
  /// Factor the Hessian in double (slower, more robust for ill-conditioned H).
  bool fp64_cholesky = false;
  /// Cholesky retries, each with 10x the previous dampening, before the identity fallback.
  int cholesky_retries = 3;
  /// Reference-compat: prune every score <= tau (tau = sorted[floor(numel*s)]) in a block, which
  /// prunes at least one weight more than floor(numel*s). Off: exactly floor(numel*s) per block.
  bool inclusive_threshold = false;

  // --- ExactOBS (exact_obs.hpp) -----------------------------------------------------------------
  /// Unstructured ExactOBS: the matrix prunes prune_count(sparsity, rows*cin) weights in total; a row
  /// may prune up to floor(obs_spread*cin) weights more or fewer than floor(sparsity*cin), allocated
  /// by the OBS loss (docs/reconstruction.md). 0: floor(sparsity*cin) per row, plus one in the rows of
  /// least extra loss when the total needs it. In [0, 1].
  double obs_spread = 0.0;

  /// Throws sparq::error unless 0 <= sparsity < 1 and the other fields are usable.
  void validate() const {
    SPARQ_CHECK(std::isfinite(sparsity) && sparsity >= 0.0 && sparsity < 1.0,
                "PruneOptions: sparsity = ", sparsity, ", expected a value in [0, 1)");
    SPARQ_CHECK(std::isfinite(lambda) && lambda >= 0.0f, "PruneOptions: lambda = ", lambda,
                ", expected a finite value >= 0");
    SPARQ_CHECK(std::isfinite(nonfinite_range), "PruneOptions: nonfinite_range = ", nonfinite_range,
                ", expected a finite value");
    SPARQ_CHECK(sar_chunk_tokens > 0, "PruneOptions: sar_chunk_tokens must be positive, got 0");
    SPARQ_CHECK(block_size > 0, "PruneOptions: block_size must be positive, got 0");
    SPARQ_CHECK(std::isfinite(dampening) && dampening >= 0.0, "PruneOptions: dampening = ",
                dampening, ", expected a finite value >= 0");
    SPARQ_CHECK(std::isfinite(obs_spread) && obs_spread >= 0.0 && obs_spread <= 1.0,
                "PruneOptions: obs_spread = ", obs_spread, ", expected a value in [0, 1]");
    SPARQ_CHECK(cholesky_retries >= 0, "PruneOptions: cholesky_retries = ", cholesky_retries,
                ", expected >= 0");
  }
};

/// Floor of s * n as the references compute it (int(n * s)).
[[nodiscard]] inline std::size_t prune_count(double s, std::size_t n) noexcept {
  return static_cast<std::size_t>(std::floor(s * static_cast<double>(n)));
}

/// A pruning metric: a tag type with a name, the calibration statistics it needs (`stats_type`),
/// whether it rewrites kept weights (`updates_weights`, SparseGPT), and a scoring function writing
/// the importance of every weight (higher = more important, pruned last) into a cout x cin matrix.
/// `check(W, stats)` throws sparq::error on shape mismatch or non-finite statistics.
template <class M>
concept PruneMetric =
    requires { typename M::stats_type; } &&
    requires(MatrixView<const float> w, const typename M::stats_type& st, const PruneOptions& o,
             MatrixView<float> s) {
      { M::name() } -> std::convertible_to<std::string>;
      { M::updates_weights } -> std::convertible_to<bool>;
      M::check(w, st);
      M::score(w, st, o, s);
    };

/// A sparsity pattern: a tag type that validates a shape and selects the mask from scores.
/// `select(S, options, mask)` writes 1 (kept) / 0 (pruned) for every entry of `mask`.
template <class P>
concept SparsityPattern = requires(MatrixView<const float> s, const PruneOptions& o,
                                   MatrixView<std::uint8_t> m, std::size_t n) {
  { P::name() } -> std::convertible_to<std::string>;
  P::validate(n, n);
  P::select(s, o, m);
};

}  // namespace sparq
