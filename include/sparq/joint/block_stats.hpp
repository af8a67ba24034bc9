// BlockStats: the calibration statistics of one block's linear input groups, accumulating only what was requested.
//
// The layer-wise driver shows every window's input of each group (wq, wo, w1, w2 leaders) once;
// BlockStats::add feeds exactly the accumulators of the StatRequest for that group and counts
// every accumulator update (StatCounts, checked by the tests and reported by the compressor).
// When a smoothing stage folds a scale s into a group (its input becomes x / s), it records s
// here (smoothed_by); stages that run later read statistics of the smoothed input:
//   Hessian:  H ← S⁻¹ H S⁻¹ (smooth_hessian, docs/algorithms.md#statistics-after-smoothing)
//   abs-max / min / max: divided by s_j
// and mask-only metrics (Wanda, SAR) score the unsmoothed weights W ⊘ s with the raw statistics,
// which is the same score (|W_kj s_j|·‖x_j‖/s_j = |W_kj|·‖x_j‖; the SAR ranges of X Wᵀ are
// unchanged by the fold). AwqScale's linear → linear groups also divide the predecessor's rows by s
// (rows_divided_by), which LowRankCompensation needs to express the original W in the current
// coordinates.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/joint/stat_request.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq {

/// Number of accumulator updates (add calls) per statistic kind.
using StatCounts = std::array<std::size_t, stat_kind_count>;

class BlockStats {
 public:
  BlockStats() = default;
  explicit BlockStats(const StatRequest& req) : req_(req) {}

  [[nodiscard]] const StatRequest& request() const noexcept { return req_; }

  /// Adds one window's input `x` (tokens x cin) of the group led by `leader`.
  void add(model::Linear leader, MatrixView<const float> x) {
    Group& g = groups_[input_group_index(leader)];
    const std::size_t cin = x.cols();
    auto want = [&](StatKind k) { return req_.has(leader, k); };
    if (want(StatKind::column_sq)) {
      if (!g.sq) g.sq.emplace(cin);
      g.sq->add(x);
      ++counts_[static_cast<std::size_t>(StatKind::column_sq)];
    }
    if (want(StatKind::hessian)) {
      if (!g.h) g.h.emplace(cin);
      g.h->add(x);
      ++counts_[static_cast<std::size_t>(StatKind::hessian)];
    }
    if (want(StatKind::absmax)) {
      if (!g.absmax) g.absmax.emplace(cin);
      g.absmax->add(x);
      ++counts_[static_cast<std::size_t>(StatKind::absmax)];
    }
    if (want(StatKind::minmax)) {
      if (!g.minmax) g.minmax.emplace(cin);
      g.minmax->add(x);
      ++counts_[static_cast<std::size_t>(StatKind::minmax)];
    }
    if (want(StatKind::mean_sequence)) {
      if (!g.mean) g.mean.emplace(x.rows(), cin);
      g.mean->add(x);
      ++counts_[static_cast<std::size_t>(StatKind::mean_sequence)];
    }
    if (want(StatKind::tokens)) {
      for (std::size_t t = 0; t < x.rows(); ++t) {
        check_finite(x.row(t), cin, "BlockStats: calibration tokens");
        g.tokens.insert(g.tokens.end(), x.row(t), x.row(t) + cin);
      }
      g.token_cols = cin;
      ++counts_[static_cast<std::size_t>(StatKind::tokens)];
    }
  }

  /// Accumulator updates so far, per StatKind.
  [[nodiscard]] const StatCounts& counts() const noexcept { return counts_; }

  [[nodiscard]] const ColumnSquareSum& column_sq(model::Linear l) const {
    not_permuted(l, StatKind::column_sq);
    return need(group(l).sq, l, StatKind::column_sq);
  }
  /// The raw accumulator (no smoothing or permutation applied).
  [[nodiscard]] const HessianAccumulator& hessian_accumulator(model::Linear l) const {
    return need(group(l).h, l, StatKind::hessian);
  }
  [[nodiscard]] const ColumnAbsMax& absmax_accumulator(model::Linear l) const {
    not_permuted(l, StatKind::absmax);
    return need(group(l).absmax, l, StatKind::absmax);
  }
  [[nodiscard]] const ColumnMinMax& minmax_accumulator(model::Linear l) const {
    not_permuted(l, StatKind::minmax);
    return need(group(l).minmax, l, StatKind::minmax);
  }
  /// The mean sequence of the group (computed once, then cached).
  [[nodiscard]] const Matrix<float>& mean_sequence(model::Linear l) const {
    not_permuted(l, StatKind::mean_sequence);
    const Group& g = group(l);
    const MeanSequence& m = need(g.mean, l, StatKind::mean_sequence);
    if (!g.mean_cache) g.mean_cache = m.mean();
    return *g.mean_cache;
  }

  /// Every calibration input row of the group (tokens x cin, smoothing applied): a copy.
  [[nodiscard]] Matrix<float> tokens(model::Linear l) const {
    not_permuted(l, StatKind::tokens);
    const Group& g = group(l);
    if (g.token_cols == 0)
      detail::fail("BlockStats: the tokens statistic of the ", model::linear_name(l),
                   " input group was not collected (a stage read a statistic it did not request)");
    Matrix<float> x(g.tokens.size() / g.token_cols, g.token_cols);
    std::copy(g.tokens.begin(), g.tokens.end(), x.data());
    if (const auto* s = smoothing(l))
      for (std::size_t t = 0; t < x.rows(); ++t)
        for (std::size_t j = 0; j < x.cols(); ++j) x(t, j) /= (*s)[j];
    return x;
  }

  /// H of the group's current input (float, smoothing then permutation applied).
  [[nodiscard]] Matrix<float> hessian(model::Linear l) const {
    Matrix<float> h = hessian_accumulator(l).hessian();
    if (const auto* s = smoothing(l)) {
      for (std::size_t i = 0; i < h.rows(); ++i)
        for (std::size_t j = 0; j < h.cols(); ++j) h(i, j) = h(i, j) / (*s)[i] / (*s)[j];
    }
    return permuted_matrix(l, std::move(h));
  }
  /// H in double (smoothing then permutation applied).
  [[nodiscard]] Matrix<double> hessian_f64(model::Linear l) const {
    Matrix<double> h = hessian_accumulator(l).hessian_f64();
    if (const auto* s = smoothing(l)) {
      for (std::size_t i = 0; i < h.rows(); ++i)
        for (std::size_t j = 0; j < h.cols(); ++j)
          h(i, j) = h(i, j) / static_cast<double>((*s)[i]) / static_cast<double>((*s)[j]);
    }
    return permuted_matrix(l, std::move(h));
  }
  /// Records that the input channels of the group of `l` were reordered (new channel k = old
  /// channel perm[k]; cumulative), e.g. by the N:M permutation stage. Afterwards only the Hessian
  /// accessors (hessian, hessian_f64) may be read for this group; the others throw.
  void permuted_by(model::Linear l, const std::vector<std::size_t>& perm) {
    Group& g = groups_[input_group_index(l)];
    SPARQ_CHECK(g.smooth.empty(), "BlockStats::permuted_by: the ", model::linear_name(l),
                " group was smoothed; smoothing after or before a permutation of the same group is not supported");
    if (g.perm.empty()) {
      g.perm = perm;
    } else {
      SPARQ_CHECK(g.perm.size() == perm.size(), "BlockStats::permuted_by: ", perm.size(), " entries, expected ",
                  g.perm.size());
      std::vector<std::size_t> c(perm.size());
      for (std::size_t k = 0; k < perm.size(); ++k) c[k] = g.perm[perm[k]];
      g.perm = std::move(c);
    }
  }
  /// The cumulative permutation of the group of `l`, or nullptr.
  [[nodiscard]] const std::vector<std::size_t>* permutation(model::Linear l) const noexcept {
    const Group& g = group(l);
    return g.perm.empty() ? nullptr : &g.perm;
  }
  /// max |x_j| of the group's current input (smoothing applied).
  [[nodiscard]] std::vector<float> absmax(model::Linear l) const {
    std::vector<float> a = absmax_accumulator(l).values();
    if (const auto* s = smoothing(l))
      for (std::size_t j = 0; j < a.size(); ++j) a[j] /= (*s)[j];
    return a;
  }

  /// Records that the group of `l` was smoothed by `s` (its input is now x / s); cumulative.
  void smoothed_by(model::Linear l, const std::vector<float>& s) {
    Group& g = groups_[input_group_index(l)];
    SPARQ_CHECK(g.perm.empty(), "BlockStats::smoothed_by: the ", model::linear_name(l),
                " group was permuted; smoothing a permuted group is not supported");
    if (g.smooth.empty()) {
      g.smooth = s;
    } else {
      SPARQ_CHECK(g.smooth.size() == s.size(), "BlockStats::smoothed_by: ", s.size(), " scales, expected ",
                  g.smooth.size());
      for (std::size_t j = 0; j < s.size(); ++j) g.smooth[j] *= s[j];
    }
  }
  /// Records that the output rows of linear `l` were divided by `s` (AwqScale folds 1/s into the
  /// predecessor of a linear → linear group: wv for wo, w3 for w2); cumulative.
  void rows_divided_by(model::Linear l, const std::vector<float>& s) {
    std::vector<float>& d = row_div_[static_cast<std::size_t>(l)];
    if (d.empty()) {
      d = s;
    } else {
      SPARQ_CHECK(d.size() == s.size(), "BlockStats::rows_divided_by: ", s.size(), " scales, expected ", d.size());
      for (std::size_t j = 0; j < s.size(); ++j) d[j] *= s[j];
    }
  }
  /// The cumulative row divisors of linear `l`, or nullptr when its rows were not rescaled.
  [[nodiscard]] const std::vector<float>* row_divisors(model::Linear l) const noexcept {
    const std::vector<float>& d = row_div_[static_cast<std::size_t>(l)];
    return d.empty() ? nullptr : &d;
  }

  /// The cumulative smoothing scale of the group of `l`, or nullptr when it was not smoothed.
  [[nodiscard]] const std::vector<float>* smoothing(model::Linear l) const noexcept {
    const Group& g = group(l);
    return g.smooth.empty() ? nullptr : &g.smooth;
  }

 private:
  struct Group {
    std::optional<ColumnSquareSum> sq;
    std::optional<HessianAccumulator> h;
    std::optional<ColumnAbsMax> absmax;
    std::optional<ColumnMinMax> minmax;
    std::optional<MeanSequence> mean;
    mutable std::optional<Matrix<float>> mean_cache;
    std::vector<float> smooth;
    std::vector<std::size_t> perm;  ///< input channel order (new k = old perm[k]); empty = identity
    std::vector<float> tokens;
    std::size_t token_cols = 0;
  };

  [[nodiscard]] const Group& group(model::Linear l) const noexcept { return groups_[input_group_index(l)]; }

  void not_permuted(model::Linear l, StatKind k) const {
    if (!group(l).perm.empty())
      detail::fail("BlockStats: the ", stat_name(k), " statistic of the ", model::linear_name(l),
                   " input group was read after its channels were permuted; only the Hessian follows a permutation");
  }
  template <class M>
  [[nodiscard]] M permuted_matrix(model::Linear l, M h) const {
    const std::vector<std::size_t>& p = group(l).perm;
    if (p.empty()) return h;
    M out(h.rows(), h.cols());
    for (std::size_t i = 0; i < h.rows(); ++i)
      for (std::size_t j = 0; j < h.cols(); ++j) out(i, j) = h(p[i], p[j]);
    return out;
  }

  template <class T>
  static const T& need(const std::optional<T>& v, model::Linear l, StatKind k) {
    if (!v)
      detail::fail("BlockStats: the ", stat_name(k), " statistic of the ", model::linear_name(l),
                   " input group was not collected (a stage read a statistic it did not request, or no "
                   "calibration window reached the block)");
    return *v;
  }

  StatRequest req_{};
  std::array<Group, input_group_count> groups_{};
  std::array<std::vector<float>, 7> row_div_{};
  StatCounts counts_{};
};

}  // namespace sparq
