// SAR: JSQ's Saliency with Activation Range metric, S = |W|*sqrt(scaler) + lambda * A.
#pragma once

#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "sparq/core/stats.hpp"
#include "sparq/prune/prune_options.hpp"
#include "sparq/kernels/sar_range.hpp"
#include "sparq/prune/wanda.hpp"

namespace sparq {

/// Statistics of the SAR metric: the Wanda column statistic (for I) and the token set of the range
/// term A: either a token matrix (the mean sequence: reference behaviour, default; or all
/// calibration tokens: the paper's definition, processed in chunks of
/// PruneOptions::sar_chunk_tokens), or ranges accumulated beforehand with a SarRangeAccumulator
/// (for token streams that never sit in memory at once). The referenced objects must outlive it.
class SarStats {
 public:
  /// Reference mode: ranges over the position-wise mean sequence (JSQ's `inp_sum / inp_num`).
  SarStats(const ColumnSquareSum& column_sq, const MeanSequence& mean)
      : sq_(&column_sq), owned_(std::make_shared<const Matrix<float>>(mean.mean())), tokens_(owned_->view()) {}
  /// Ranges over the rows of `tokens` (a mean sequence, or all calibration tokens).
  SarStats(const ColumnSquareSum& column_sq, MatrixView<const float> tokens)
      : sq_(&column_sq), tokens_(tokens) {}
  /// Ranges accumulated elsewhere (must be for the same dense W and bf16 mode).
  SarStats(const ColumnSquareSum& column_sq, const Matrix<float>& ranges)
      : sq_(&column_sq), ranges_(&ranges) {}

  [[nodiscard]] const ColumnSquareSum& column_sq() const noexcept { return *sq_; }
  [[nodiscard]] MatrixView<const float> tokens() const noexcept { return tokens_; }
  [[nodiscard]] const Matrix<float>* ranges() const noexcept { return ranges_; }

 private:
  const ColumnSquareSum* sq_;
  std::shared_ptr<const Matrix<float>> owned_;  // the mean sequence when built from MeanSequence
  MatrixView<const float> tokens_{};
  const Matrix<float>* ranges_ = nullptr;
};

/// SAR (JSQ paper §3.2, docs/algorithms.md#sar): S_kj = |W_kj| * sqrt(scaler_j) + lambda * A_kj with
/// A_kj = max_t - min_t of (Y_tk - X_tj W_kj), Y = X W^T, computed exactly by
/// SarRangeAccumulator in O(T*cin*cout). lambda = PruneOptions::lambda (paper 2, reference 2.1);
/// bf16_compat and nonfinite_range are the reference-compat switches of docs/algorithms.md#sar. Reference pattern:
/// per row (Pruner<SAR, Unstructured>).
struct SAR {
  using stats_type = SarStats;
  static constexpr bool updates_weights = false;
  [[nodiscard]] static std::string name() { return "sar"; }

  static void check(MatrixView<const float> w, const SarStats& st) {
    (void)prune_detail::checked_norms(st.column_sq(), w.cols(), "SAR");
    if (st.ranges() != nullptr) {
      const Matrix<float>& a = *st.ranges();
      SPARQ_CHECK(a.rows() == w.rows() && a.cols() == w.cols(), "SAR: ranges are ", a.rows(), "x",
                  a.cols(), ", expected the weight shape ", w.rows(), "x", w.cols());
      check_finite(a.data(), a.size(), "SAR: ranges");
    } else {
      SPARQ_CHECK(st.tokens().cols() == w.cols(), "SAR: tokens have ", st.tokens().cols(),
                  " channels but the weights have cin = ", w.cols());
      SPARQ_CHECK(st.tokens().rows() > 0, "SAR: the token set is empty (expected at least one token)");
      for (std::size_t t = 0; t < st.tokens().rows(); ++t)
        check_finite(st.tokens().row(t), st.tokens().cols(), "SAR: tokens");
    }
  }

  /// A for W over the statistics' token set (or the given ranges).
  template <class Arch = xsimd::default_arch>
  [[nodiscard]] static Matrix<float> ranges(MatrixView<const float> w, const SarStats& st, const PruneOptions& o) {
    if (st.ranges() != nullptr) return *st.ranges();
    SarRangeAccumulator<Arch> acc(w, o.bf16_compat, o.sar_chunk_tokens);
    acc.add(st.tokens());
    return acc.ranges(o.nonfinite_range);
  }

  static void score(MatrixView<const float> w, const SarStats& st, const PruneOptions& o, MatrixView<float> s) {
    check(w, st);
    const std::vector<float> norms = prune_detail::checked_norms(st.column_sq(), w.cols(), "SAR");
    const Matrix<float> a = ranges(w, st, o);
    for (std::size_t r = 0; r < w.rows(); ++r) {
      const float* wr = w.row(r);
      const float* ar = a.row(r);
      float* sr = s.row(r);
      for (std::size_t c = 0; c < w.cols(); ++c) sr[c] = std::fabs(wr[c]) * norms[c] + o.lambda * ar[c];
    }
  }
};
static_assert(PruneMetric<SAR>);

}  // namespace sparq
