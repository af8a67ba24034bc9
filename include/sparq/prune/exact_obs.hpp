// ExactOBS: greedy one-weight-at-a-time Optimal Brain Surgeon per output row (OBC), with the
// row's inverse Hessian downdated after every removal, optional per-matrix allocation of the
// pruned count over rows, and N:M; the reconstruction stage of the jsq+ recipe.
//
// Maths (docs/reconstruction.md): for one row w (cin) and the layer Hessian H = (2/n) XᵀX
// (dampened: H_ii += dampening·mean(diag H); dead inputs H_ii = 0 → H_ii = 1 and w_i = 0 as in
// SparseGPT), the loss of a row is E(w') = (w' − w)ᵀ H (w' − w) / 2. With F the still-free inputs
// and Hi = (H_FF)⁻¹ embedded in cin x cin (zeros outside F):
//   removing p ∈ F costs   ΔE_p = w_p² / (2 Hi_pp)                       (OBS saliency)
//   and is compensated by  w ← w − (w_p / Hi_pp) · Hi[:, p]   (w_p becomes exactly 0)
//   then                   Hi ← Hi − Hi[:, p] Hi[p, :] / Hi_pp          (the inverse of H over F∖{p})
// Each step removes the free weight of least ΔE (ties: lowest column). After k steps the kept
// weights are the exact least-squares optimum of E for that mask (the update is the closed-form
// minimiser with w_p = 0, and the downdate keeps Hi = (H_FF)⁻¹), which SparseGPT's one-pass
// sweep only approximates (it never revisits a column and fixes its mask from the initial
// saliency of a whole block).
//
// Allocation (Unstructured): the matrix prunes exactly P = prune_count(s, rows·cin) weights
// (SparseGPT's count; k·rows ≤ P < (k+1)·rows with k = ⌊s·cin⌋). Every row runs up to
// k + max(⌊σ·cin⌋, [P > k·rows]) steps (σ = PruneOptions::obs_spread) recording its cumulative
// loss; each row then prunes between k − ⌊σ·cin⌋ and that maximum, chosen greedily by the smallest
// next loss increment (increments made non-decreasing per row by a running max, ties by row).
// σ = 0: every row prunes k, and the P − k·rows rows of least extra loss one more (none when s·cin
// is an integer, e.g. 50 % of an even cin). NM<N, M>: a free weight may be
// removed only while its group has fewer than M − N removals; every row ends with exactly N kept of
// every M (or fewer non-zeros if kept weights are exactly 0).
//
// Cost: O(rows · k · cin²) (k removals per row) — the OBC regime: fine for the small layers of the
// models sparq evaluates (stories260K: ~0.1 s per block), cubic per row on large layers, where
// SparseGPT's sweep is the scalable choice. Rows are independent and processed in order, in double
// precision, so the result is deterministic.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <queue>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/prune/nm.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/prune/sparse_gpt.hpp"
#include "sparq/prune/unstructured.hpp"

namespace sparq {

namespace obs_detail {

/// In-place inverse of a symmetric positive definite n x n matrix (row-major, double) through
/// its Cholesky factor. Returns false if the matrix is not positive definite.
[[nodiscard]] inline bool spd_inverse(std::vector<double>& a, std::size_t n) {
  // L Lᵀ = A (lower, in place)
  for (std::size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0.0) || !std::isfinite(d)) return false;
    d = std::sqrt(d);
    a[j * n + j] = d;
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
  }
  // L⁻¹ (lower, in place)
  for (std::size_t j = 0; j < n; ++j) {
    a[j * n + j] = 1.0 / a[j * n + j];
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = 0.0;
      for (std::size_t k = j; k < i; ++k) s -= a[i * n + k] * a[k * n + j];
      a[i * n + j] = s / a[i * n + i];
    }
  }
  // A⁻¹ = L⁻ᵀ L⁻¹ (symmetric, full)
  std::vector<double> inv(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (std::size_t k = i; k < n; ++k) s += a[k * n + i] * a[k * n + j];
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  a = std::move(inv);
  return true;
}

/// The dampened Hessian (double, full) and its inverse; `dead` marks inputs with H_ii == 0.
/// Raises the damping 10x (up to `retries` times) when H + δI is not positive definite.
struct DampedInverse {
  std::vector<double> h, hinv;
  std::vector<std::uint8_t> dead;
  double damping = 0.0;
};
[[nodiscard]] inline DampedInverse damped_inverse(MatrixView<const float> hv, double dampening, int retries,
                                                  const char* who) {
  const std::size_t n = hv.rows();
  DampedInverse r;
  r.h.assign(n * n, 0.0);
  r.dead.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) r.h[i * n + j] = 0.5 * (static_cast<double>(hv(i, j)) + hv(j, i));
  double mean = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (r.h[i * n + i] == 0.0) {
      r.dead[i] = 1;
      r.h[i * n + i] = 1.0;
    }
    mean += r.h[i * n + i];
  }
  mean /= static_cast<double>(n);
  double damp = dampening * mean;
  for (int attempt = 0; attempt <= retries; ++attempt) {
    r.hinv = r.h;
    for (std::size_t i = 0; i < n; ++i) r.hinv[i * n + i] += damp;
    if (spd_inverse(r.hinv, n)) {
      for (std::size_t i = 0; i < n; ++i) r.h[i * n + i] += damp;
      r.damping = damp;
      return r;
    }
    damp = damp > 0.0 ? damp * 10.0 : 0.01 * mean;
  }
  detail::fail(who, ": the dampened Hessian is not positive definite after ", retries,
               " damping increases (last damping ", damp, ")");
}

/// Greedy OBS on one row. `w` (cin, double) and `hi` (cin x cin, the inverse over the free set,
/// modified in place) are updated; `free_` marks free inputs (1) and is updated. Removes `steps`
/// weights; `allowed(p)` says whether p may be removed now, `on_remove(p)` is told each removal;
/// after step t (1-based) `after(t, loss_t)` is called with the cumulative loss.
template <class Allowed, class OnRemove, class After>
void greedy_row(std::vector<double>& w, std::vector<double>& hi, std::vector<std::uint8_t>& free_, std::size_t steps,
                Allowed&& allowed, OnRemove&& on_remove, After&& after) {
  const std::size_t n = w.size();
  double loss = 0.0;
  std::vector<double> col(n);
  for (std::size_t t = 1; t <= steps; ++t) {
    std::size_t best = n;
    double best_s = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
      if (!free_[j] || !allowed(j)) continue;
      const double s = w[j] * w[j] / hi[j * n + j];
      if (s < best_s) {
        best_s = s;
        best = j;
      }
    }
    SPARQ_CHECK(best < n, "ExactOBS: no removable weight left at step ", t, " of ", steps);
    const std::size_t p = best;
    const double d = hi[p * n + p];
    loss += 0.5 * best_s;
    const double f = w[p] / d;
    for (std::size_t j = 0; j < n; ++j) col[j] = hi[j * n + p];
    for (std::size_t j = 0; j < n; ++j)
      if (free_[j]) w[j] -= f * col[j];
    w[p] = 0.0;
    free_[p] = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!free_[i]) continue;
      const double ci = col[i] / d;
      double* hr = hi.data() + i * n;
      for (std::size_t j = 0; j < n; ++j) hr[j] -= ci * col[j];
    }
    for (std::size_t j = 0; j < n; ++j) {  // p leaves the free set: its row and column become 0
      hi[p * n + j] = 0.0;
      hi[j * n + p] = 0.0;
    }
    on_remove(p);
    after(t, loss);
  }
}

}  // namespace obs_detail

/// What ExactOBS did on one matrix.
struct ExactObsReport {
  PruneMask mask;           ///< 1 kept, 0 pruned
  double loss = 0.0;        ///< Σ over rows of the OBS loss of the chosen mask (sum of ΔE)
  double damping = 0.0;     ///< absolute damping added to diag H
  std::size_t dead_inputs = 0;
  std::size_t min_row_pruned = 0, max_row_pruned = 0;  ///< allocation spread actually used
};

/// ExactOBS metric tag: the score is the OBS saliency w² / [H⁻¹]_jj of the full dampened Hessian
/// (before any removal); Pruner<ExactOBS, P> runs the greedy reconstruction.
struct ExactOBS {
  using stats_type = HessianView;
  static constexpr bool updates_weights = true;
  [[nodiscard]] static std::string name() { return "obs"; }

  static void check(MatrixView<const float> w, const HessianView& st) {
    SPARQ_CHECK(st.h.rows() == w.cols() && st.h.cols() == w.cols(), "ExactOBS: Hessian is ", st.h.rows(), "x",
                st.h.cols(), ", expected cin x cin = ", w.cols(), "x", w.cols());
    for (std::size_t i = 0; i < st.h.rows(); ++i) check_finite(st.h.row(i), st.h.cols(), "ExactOBS: Hessian");
  }

  static void score(MatrixView<const float> w, const HessianView& st, const PruneOptions& o, MatrixView<float> s) {
    check(w, st);
    const auto inv = obs_detail::damped_inverse(st.h, o.dampening, o.cholesky_retries, "ExactOBS");
    const std::size_t n = w.cols();
    for (std::size_t r = 0; r < w.rows(); ++r)
      for (std::size_t c = 0; c < n; ++c)
        s(r, c) = static_cast<float>(static_cast<double>(w(r, c)) * w(r, c) / inv.hinv[c * n + c]);
  }
};
static_assert(PruneMetric<ExactOBS>);

/// Pruner<ExactOBS, Unstructured> (with the per-matrix allocation of PruneOptions::obs_spread) or
/// Pruner<ExactOBS, NM<N, M>>. See the file comment.
template <SparsityPattern Pattern>
class Pruner<ExactOBS, Pattern> {
  static_assert(std::is_same_v<Pattern, Unstructured> || prune_detail::is_nm<Pattern>,
                "Pruner<ExactOBS, Pattern>: supports Unstructured (per row, with allocation over rows) and NM<N, M>");

 public:
  using metric_type = ExactOBS;
  using pattern_type = Pattern;
  using stats_type = HessianView;
  using options_type = PruneOptions;

  Pruner() = default;
  explicit Pruner(const PruneOptions& options) : options_(options) { options_.validate(); }
  [[nodiscard]] const PruneOptions& options() const noexcept { return options_; }

  [[nodiscard]] Matrix<float> score(MatrixView<const float> w, const HessianView& h) const {
    validate(w, h);
    Matrix<float> s(w.rows(), w.cols());
    ExactOBS::score(w, h, options_, s.view());
    return s;
  }
  /// The mask the greedy reconstruction chooses (on a copy of w).
  [[nodiscard]] PruneMask mask(MatrixView<const float> w, const HessianView& h) const {
    Matrix<float> copy(w.rows(), w.cols());
    for (std::size_t r = 0; r < w.rows(); ++r) std::copy(w.row(r), w.row(r) + w.cols(), copy.row(r));
    return run(copy.view(), h).mask;
  }
  static void apply(MatrixView<float> w, const PruneMask& mask) { Pruner<Magnitude, Pattern>::apply(w, mask); }
  /// Prunes w in place and reconstructs the kept weights; returns the mask.
  PruneMask prune(MatrixView<float> w, const HessianView& h) const { return run(w, h).mask; }

  /// The full reconstruction with its report.
  ExactObsReport run(MatrixView<float> w, const HessianView& hv) const {
    validate(w, hv);
    const std::size_t rows = w.rows(), n = w.cols();
    const auto inv = obs_detail::damped_inverse(hv.h, options_.dampening, options_.cholesky_retries, "ExactOBS");
    ExactObsReport rep;
    rep.damping = inv.damping;
    for (auto d : inv.dead) rep.dead_inputs += d;
    rep.mask = PruneMask(rows, n, 1);
    std::vector<double> wr(n), hi;
    std::vector<std::uint8_t> free_(n);
    auto start_row = [&](std::size_t r) {
      for (std::size_t c = 0; c < n; ++c) {
        wr[c] = inv.dead[c] ? 0.0 : static_cast<double>(w(r, c));
        free_[c] = 1;
      }
      hi = inv.hinv;
    };
    auto finish_row = [&](std::size_t r, const double* v) {
      for (std::size_t c = 0; c < n; ++c) {
        w(r, c) = free_[c] ? static_cast<float>(v[c]) : 0.0f;  // removed: exactly 0
        rep.mask(r, c) = free_[c];
      }
    };
    if constexpr (prune_detail::is_nm<Pattern>) {
      constexpr std::size_t M = Pattern::group, N = Pattern::kept;
      std::vector<std::size_t> removed(n / M);
      for (std::size_t r = 0; r < rows; ++r) {
        start_row(r);
        std::fill(removed.begin(), removed.end(), 0);
        double loss = 0.0;
        obs_detail::greedy_row(
            wr, hi, free_, (n / M) * (M - N), [&](std::size_t j) { return removed[j / M] < M - N; },
            [&](std::size_t p) { ++removed[p / M]; }, [&](std::size_t, double l) { loss = l; });
        finish_row(r, wr.data());
        rep.loss += loss;
      }
      rep.min_row_pruned = rep.max_row_pruned = (n / M) * (M - N);
    } else {
      const std::size_t k = prune_count(options_.sparsity, n);
      const std::size_t spread = static_cast<std::size_t>(std::floor(options_.obs_spread * static_cast<double>(n)));
      const std::size_t total = prune_count(options_.sparsity, rows * n);  // >= k * rows, < (k + 1) * rows
      const std::size_t kmin = spread >= k ? 0 : k - spread;
      const std::size_t kmax = std::min(n, k + std::max<std::size_t>(spread, total > k * rows ? 1 : 0));
      const std::size_t span = kmax - kmin + 1;
      // snapshots[r][t - kmin] = row r after t removals; losses[r][t] cumulative
      std::vector<double> snaps(rows * span * n);
      std::vector<double> losses(rows * (kmax + 1), 0.0);
      std::vector<std::uint8_t> removed_mask(rows * span * n);
      for (std::size_t r = 0; r < rows; ++r) {
        start_row(r);
        auto snap = [&](std::size_t t) {
          if (t < kmin) return;
          std::copy(wr.begin(), wr.end(), snaps.begin() + static_cast<std::ptrdiff_t>((r * span + (t - kmin)) * n));
          std::copy(free_.begin(), free_.end(),
                    removed_mask.begin() + static_cast<std::ptrdiff_t>((r * span + (t - kmin)) * n));
        };
        snap(0);
        obs_detail::greedy_row(
            wr, hi, free_, kmax, [](std::size_t) { return true; }, [](std::size_t) {},
            [&](std::size_t t, double l) {
              losses[r * (kmax + 1) + t] = l;
              snap(t);
            });
      }
      // allocation: every row starts at kmin, then the smallest next increments
      std::vector<std::size_t> t_r(rows, kmin);
      std::vector<double> last(rows, 0.0);  // running max of the increments taken so far
      std::size_t left = total - kmin * rows;
      SPARQ_CHECK(total >= kmin * rows && total <= kmax * rows, "ExactOBS: cannot prune ", total, " weights with ",
                  rows, " rows of ", kmin, "..", kmax);
      using Item = std::pair<double, std::size_t>;
      std::priority_queue<Item, std::vector<Item>, std::greater<>> pq;
      auto inc = [&](std::size_t r) {
        const std::size_t t = t_r[r];
        const double d = losses[r * (kmax + 1) + t + 1] - losses[r * (kmax + 1) + t];
        return std::max(d, last[r]);
      };
      if (left > 0)
        for (std::size_t r = 0; r < rows; ++r)
          if (t_r[r] < kmax) pq.emplace(inc(r), r);
      while (left > 0) {
        const auto [d, r] = pq.top();
        pq.pop();
        last[r] = d;
        ++t_r[r];
        --left;
        if (t_r[r] < kmax) pq.emplace(inc(r), r);
      }
      rep.min_row_pruned = n;
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t t = t_r[r];
        const std::size_t off = (r * span + (t - kmin)) * n;
        std::copy(removed_mask.begin() + static_cast<std::ptrdiff_t>(off),
                  removed_mask.begin() + static_cast<std::ptrdiff_t>(off + n), free_.begin());
        finish_row(r, snaps.data() + off);
        rep.loss += losses[r * (kmax + 1) + t];
        rep.min_row_pruned = std::min(rep.min_row_pruned, t);
        rep.max_row_pruned = std::max(rep.max_row_pruned, t);
      }
    }
    return rep;
  }

 private:
  void validate(MatrixView<const float> w, const HessianView& h) const {
    options_.validate();
    prune_detail::check_weights(w, "Pruner<ExactOBS>");
    Pattern::validate(w.rows(), w.cols());
    ExactOBS::check(w, h);
  }

  PruneOptions options_{};
};

}  // namespace sparq
