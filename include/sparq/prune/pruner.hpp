// Pruner<Metric, Pattern>: score weights with a PruneMetric, select a mask with a SparsityPattern, apply it.
#pragma once

#include <cstddef>
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/prune/magnitude.hpp"
#include "sparq/prune/nm.hpp"
#include "sparq/prune/output_channels.hpp"
#include "sparq/prune/prune_options.hpp"
#include "sparq/prune/sar.hpp"
#include "sparq/prune/input_channels.hpp"
#include "sparq/prune/unstructured.hpp"
#include "sparq/prune/unstructured_layer.hpp"
#include "sparq/prune/wanda.hpp"

namespace sparq {

namespace prune_detail {
inline void check_weights(MatrixView<const float> w, const char* who) {
  SPARQ_CHECK(w.rows() > 0 && w.cols() > 0, who, ": empty weight matrix ", w.rows(), "x", w.cols());
  for (std::size_t r = 0; r < w.rows(); ++r) {
    const float* wr = w.row(r);
    for (std::size_t c = 0; c < w.cols(); ++c)
      if (!std::isfinite(wr[c]))
        detail::fail(who, ": non-finite weight ", wr[c], " at row ", r, ", column ", c, " (expected finite values)");
  }
}
/// A metric whose score of a block of rows depends on those rows of W only (and on statistics of
/// the inputs), and a pattern whose selection in a row depends on that row's scores only: both
/// declare `static constexpr bool row_local = true`. Pruner then scores, selects and applies in
/// blocks of rows, in parallel, without the cout x cin score matrix (docs/pruning.md#row-blocks).
template <class T>
concept RowLocal = requires {
  { T::row_local } -> std::convertible_to<bool>;
} && T::row_local;

/// score -> select (-> apply when `w_out` is not empty) for blocks of kRowBlock rows, in parallel.
/// The same mask as scoring the whole matrix first: every row's scores and selection are computed
/// by the same code on the same values. Inputs were validated by the caller (nothing here throws
/// but std::bad_alloc).
template <class Metric, class Pattern>
void score_select_rows(MatrixView<const float> w, const typename Metric::stats_type& stats, const PruneOptions& o,
                       MatrixView<std::uint8_t> mask, MatrixView<float> w_out) {
  constexpr std::size_t kRowBlock = 16;
  const std::size_t rows = w.rows(), cols = w.cols();
  const long long nblocks = static_cast<long long>((rows + kRowBlock - 1) / kRowBlock);
#ifdef _OPENMP
#pragma omp parallel
#endif
  {
    std::vector<float> s(kRowBlock * cols);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (long long b = 0; b < nblocks; ++b) {
      const std::size_t r0 = static_cast<std::size_t>(b) * kRowBlock, nr = std::min(kRowBlock, rows - r0);
      MatrixView<float> sb(s.data(), nr, cols);
      Metric::score(w.rows_range(r0, nr), stats, o, sb);
      const MatrixView<std::uint8_t> mb = mask.rows_range(r0, nr);
      Pattern::select(MatrixView<const float>(sb), o, mb);
      if (!w_out.empty()) {
        for (std::size_t r = r0; r < r0 + nr; ++r) {
          float* wr = w_out.row(r);
          const std::uint8_t* mr = mask.row(r);
          for (std::size_t c = 0; c < cols; ++c)
            if (mr[c] == 0) wr[c] = 0.0f;
        }
      }
    }
  }
}

}  // namespace prune_detail

/// Prunes one cout x cin weight matrix (rows = outputs): `score` gives the metric's importance of
/// every weight, `mask` the pattern's selection (1 kept, 0 pruned), `apply` sets pruned weights to
/// exactly 0.0f, and `prune` does all three and returns the mask. Metrics that rewrite the kept
/// weights (SparseGPT) have their own specialisation (sparse_gpt.hpp).
///
///   Pruner<Wanda, Unstructured> p({.sparsity = 0.5});
///   PruneMask m = p.prune(w.view(), column_sq);   // every row of w now has floor(0.5*cin) zeros
template <PruneMetric Metric, SparsityPattern Pattern>
class Pruner {
 public:
  using metric_type = Metric;
  using pattern_type = Pattern;
  using stats_type = typename Metric::stats_type;
  using options_type = PruneOptions;

  Pruner() = default;
  explicit Pruner(const PruneOptions& options) : options_(options) { options_.validate(); }

  [[nodiscard]] const PruneOptions& options() const noexcept { return options_; }

  /// Importance of every weight (cout x cin). Throws on bad shapes, non-finite weights/statistics.
  [[nodiscard]] Matrix<float> score(MatrixView<const float> w, const stats_type& stats) const {
    validate(w, stats);
    Matrix<float> s(w.rows(), w.cols());
    Metric::score(w, stats, options_, s.view());
    return s;
  }

  /// The keep mask the pattern selects from the scores.
  [[nodiscard]] PruneMask mask(MatrixView<const float> w, const stats_type& stats) const {
    PruneMask m(w.rows(), w.cols());
    if constexpr (prune_detail::RowLocal<Metric> && prune_detail::RowLocal<Pattern>) {
      validate(w, stats);
      prune_detail::score_select_rows<Metric, Pattern>(w, stats, options_, m.view(), MatrixView<float>());
    } else {
      const Matrix<float> s = score(w, stats);
      Pattern::select(s.view(), options_, m.view());
    }
    return m;
  }

  /// Sets w(r, c) = 0.0f wherever mask(r, c) == 0. Throws on a shape mismatch.
  static void apply(MatrixView<float> w, const PruneMask& mask) {
    SPARQ_CHECK(mask.rows() == w.rows() && mask.cols() == w.cols(), "Pruner::apply: mask is ", mask.rows(),
                "x", mask.cols(), ", weights are ", w.rows(), "x", w.cols());
    for (std::size_t r = 0; r < w.rows(); ++r) {
      float* wr = w.row(r);
      const std::uint8_t* mr = mask.row(r);
      for (std::size_t c = 0; c < w.cols(); ++c)
        if (mr[c] == 0) wr[c] = 0.0f;
    }
  }

  /// score + mask + apply; returns the mask.
  PruneMask prune(MatrixView<float> w, const stats_type& stats) const {
    if constexpr (prune_detail::RowLocal<Metric> && prune_detail::RowLocal<Pattern>) {
      validate(w, stats);
      PruneMask m(w.rows(), w.cols());
      prune_detail::score_select_rows<Metric, Pattern>(w, stats, options_, m.view(), w);
      return m;
    } else {
      PruneMask m = mask(w, stats);
      apply(w, m);
      return m;
    }
  }

  /// For metrics without statistics (Magnitude).
  PruneMask prune(MatrixView<float> w) const
    requires std::is_same_v<stats_type, NoStats>
  {
    return prune(w, NoStats{});
  }
  [[nodiscard]] PruneMask mask(MatrixView<const float> w) const
    requires std::is_same_v<stats_type, NoStats>
  {
    return mask(w, NoStats{});
  }

 private:
  void validate(MatrixView<const float> w, const stats_type& stats) const {
    options_.validate();
    prune_detail::check_weights(w, "Pruner");
    Pattern::validate(w.rows(), w.cols());
    Metric::check(w, stats);
  }

  PruneOptions options_{};
};

}  // namespace sparq
