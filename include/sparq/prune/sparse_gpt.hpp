// SparseGPT: OBS pruning with weight updates (Hessian, inverse Cholesky factor, blocked lazy sweep), optional joint RTN.
//
// Algorithm (docs/algorithms.md#sparsegpt, Frantar & Alistarh 2023), for W (cout x cin) and H = (2/nseq) X^T X:
//  1. Dead inputs: H_ii == 0 -> H_ii = 1 and column i of W set to 0.
//  2. Dampening: H_ii += dampening * mean(diag H) (percdamp 0.01).
//  3. U = upper Cholesky factor of H^-1 (H^-1 = U^T U), kernels::inverse_upper_factor, in FP32 or
//     FP64. If the factorisation fails, retry with 10x the damping (cholesky_retries times); as a
//     last resort use U = I (magnitude pruning inside blocks). The result reports what happened.
//  4. For each block of B columns [i1, i2): choose the block's mask (unstructured: scores
//     W1_kc^2 / U_cc^2 pooled over the whole cout x B block, exactly floor(cout*B*s) pruned, ties
//     by row-major position; or, with inclusive_threshold, every score <= the floor(numel*s)-th
//     smallest as the reference; NM<N, M>: at every group start c, from the *updated* W1, keep the
//     N highest W1^2/U_cc^2 of the M columns), then for each column c: q = masked (and optionally
//     quantized) w, err = (w - q)/U_cc, W1[:, c+1:] -= err * U[c, c+1:]; write q back, then the lazy
//     update W[:, i2:] -= E1 * U[i1:i2, i2:] (one GEMM).
// Within a block every row is independent, so rows are processed in parallel (static partition,
// deterministic). Pruned entries are written as exactly 0.0f and never touched again (later updates
// only reach later columns). With a ColumnQuantizer (fitted on the full pre-pruning W, before
// dead-column zeroing, docs/algorithms.md#joint-quantization-in-the-sweep), kept entries are
// quantized in the same sweep; zeros stay zero.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/kernels/cholesky.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/prune/nm.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/prune/row_quantizer.hpp"
#include "sparq/prune/unstructured.hpp"

namespace sparq {

/// H = (2/nseq) X^T X (cin x cin) from a token matrix X (tokens x cin) with one GEMM: the same
/// quantity as HessianAccumulator::hessian(), accumulated in FP32 by the blocked GEMM (fast for
/// large cin). Throws on non-finite activations or nseq == 0.
template <class Arch = simd::dynamic>
[[nodiscard]] Matrix<float> hessian_from_tokens(MatrixView<const float> x, std::size_t nseq) {
  SPARQ_CHECK(nseq > 0, "hessian_from_tokens: nseq must be positive, got 0");
  SPARQ_CHECK(x.cols() > 0, "hessian_from_tokens: activations have no columns");
  for (std::size_t t = 0; t < x.rows(); ++t) check_finite(x.row(t), x.cols(), "hessian_from_tokens: activations");
  Matrix<float> h(x.cols(), x.cols());
  kernels::gemm<Arch>(kernels::Trans::yes, kernels::Trans::no, x.cols(), x.cols(), x.rows(),
                      static_cast<float>(2.0 / static_cast<double>(nseq)), x.data(), x.stride(), x.data(),
                      x.stride(), 0.0f, h.data(), x.cols());
  return h;
}

/// The statistics SparseGPT needs: a view of the cin x cin Hessian (symmetric; only the lower
/// triangle and diagonal are read).
struct HessianView {
  MatrixView<const float> h;
  HessianView(MatrixView<const float> hessian) : h(hessian) {}  // NOLINT: implicit on purpose
  HessianView(const Matrix<float>& hessian) : h(hessian.view()) {}  // NOLINT
};

/// What the sweep did (for logs and reports).
struct SparseGptReport {
  PruneMask mask;                 ///< 1 kept, 0 pruned
  double loss = 0.0;              ///< sum of (w - q)^2 / U_cc^2 / 2 (the OBS loss estimate)
  double damping = 0.0;           ///< absolute damping added to diag H in the factorisation used
  int cholesky_retries = 0;       ///< how many times the damping was raised
  bool identity_fallback = false; ///< U = I was used (every factorisation failed)
  std::size_t dead_inputs = 0;    ///< columns with H_ii == 0 (zeroed)
};

/// SparseGPT metric tag. Its standalone score is the OBS saliency W_kj^2 / U_jj^2 with the
/// factor of the full (dampened) Hessian; Pruner<SparseGPT, P> runs the full sweep with updates.
struct SparseGPT {
  using stats_type = HessianView;
  static constexpr bool updates_weights = true;
  [[nodiscard]] static std::string name() { return "sparsegpt"; }

  static void check(MatrixView<const float> w, const HessianView& st) {
    SPARQ_CHECK(st.h.rows() == w.cols() && st.h.cols() == w.cols(), "SparseGPT: Hessian is ", st.h.rows(), "x",
                st.h.cols(), ", expected cin x cin = ", w.cols(), "x", w.cols());
    for (std::size_t i = 0; i < st.h.rows(); ++i) check_finite(st.h.row(i), st.h.cols(), "SparseGPT: Hessian");
  }

  /// Steps 1-3 of the file comment: returns U (cin x cin) and fills the report's factorisation
  /// fields; zeroes dead columns of `w` when it is not null.
  template <class Arch = simd::dynamic>
  static Matrix<float> inverse_factor(MatrixView<const float> hv, const PruneOptions& o, float* w, std::size_t ldw,
                                      std::size_t rows, SparseGptReport& rep) {
    const std::size_t n = hv.rows();
    // H's diagonal in double with dead inputs set to 1; the off-diagonal entries are read from hv as
    // each attempt needs them (no n x n double copy: 254 MB for a 5632-wide down_proj).
    std::vector<double> diag(n);
    double mean_diag = 0;
    for (std::size_t i = 0; i < n; ++i) {
      diag[i] = hv(i, i);
      if (diag[i] == 0.0) {
        diag[i] = 1.0;
        ++rep.dead_inputs;
        if (w != nullptr)
          for (std::size_t r = 0; r < rows; ++r) w[r * ldw + i] = 0.0f;
      }
      mean_diag += diag[i];
    }
    mean_diag /= static_cast<double>(n);
    double damp = o.dampening * mean_diag;
    Matrix<float> u(n, n);
    for (int attempt = 0; attempt <= o.cholesky_retries; ++attempt) {
      bool ok;
      if (o.fp64_cholesky) {
        Matrix<double> hd(n, n), ud(n, n);
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t j = 0; j < n; ++j) hd(i, j) = i == j ? diag[i] + damp : static_cast<double>(hv(i, j));
        ok = kernels::inverse_upper_factor<Arch>(hd.data(), n, n, ud.data(), n) == n;
        for (std::size_t i = 0; ok && i < n * n; ++i) u.data()[i] = static_cast<float>(ud.data()[i]);
      } else {
        Matrix<float> hf(n, n);
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t j = 0; j < n; ++j)  // "+ 0.0" as before: a -0.0 entry becomes +0.0
            hf(i, j) = static_cast<float>(i == j ? diag[i] + damp : static_cast<double>(hv(i, j)) + 0.0);
        ok = kernels::inverse_upper_factor<Arch>(hf.data(), n, n, u.data(), n) == n;
      }
      for (std::size_t i = 0; ok && i < n * n; ++i) ok = std::isfinite(u.data()[i]);
      if (ok) {
        rep.damping = damp;
        rep.cholesky_retries = attempt;
        return u;
      }
      damp = damp > 0 ? damp * 10.0 : 0.01 * mean_diag;
    }
    rep.identity_fallback = true;
    rep.cholesky_retries = o.cholesky_retries;
    rep.damping = damp;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) u(i, j) = i == j ? 1.0f : 0.0f;
    return u;
  }

  static void score(MatrixView<const float> w, const HessianView& st, const PruneOptions& o, MatrixView<float> s) {
    check(w, st);
    SparseGptReport rep;
    const Matrix<float> u = inverse_factor(st.h, o, nullptr, 0, 0, rep);
    for (std::size_t r = 0; r < w.rows(); ++r)
      for (std::size_t c = 0; c < w.cols(); ++c) {
        const float d = u(c, c);
        s(r, c) = w(r, c) * w(r, c) / (d * d);
      }
  }
};
static_assert(PruneMetric<SparseGPT>);

namespace prune_detail {
template <class P>
inline constexpr bool is_nm = false;
template <std::size_t N, std::size_t M>
inline constexpr bool is_nm<NM<N, M>> = true;

/// No quantization in the sweep.
struct NoQuantizer {
  void fit(MatrixView<const float>) {}
  [[nodiscard]] float quantize(float x, std::size_t) const noexcept { return x; }
};
}  // namespace prune_detail

/// SparseGPT pruner: Pruner<SparseGPT, Unstructured> (per-block pooled adaptive mask) or
/// Pruner<SparseGPT, NM<N, M>> (masks chosen on the fly from updated weights). See sparse_gpt.hpp.
template <SparsityPattern Pattern>
class Pruner<SparseGPT, Pattern> {
  static_assert(std::is_same_v<Pattern, Unstructured> || prune_detail::is_nm<Pattern>,
                "Pruner<SparseGPT, Pattern>: SparseGPT chooses masks inside its sweep and supports Unstructured "
                "(per-block pooled) and NM<N, M>; use Magnitude or Wanda for the other patterns");

 public:
  using metric_type = SparseGPT;
  using pattern_type = Pattern;
  using stats_type = HessianView;
  using options_type = PruneOptions;

  Pruner() = default;
  explicit Pruner(const PruneOptions& options) : options_(options) { options_.validate(); }
  [[nodiscard]] const PruneOptions& options() const noexcept { return options_; }

  /// OBS saliency W^2 / U_jj^2 (before any update).
  [[nodiscard]] Matrix<float> score(MatrixView<const float> w, const HessianView& h) const {
    validate(w, h);
    Matrix<float> s(w.rows(), w.cols());
    SparseGPT::score(w, h, options_, s.view());
    return s;
  }

  /// The mask the sweep chooses (runs it on a copy of w).
  [[nodiscard]] PruneMask mask(MatrixView<const float> w, const HessianView& h) const {
    Matrix<float> copy(w.rows(), w.cols());
    for (std::size_t r = 0; r < w.rows(); ++r) std::copy(w.row(r), w.row(r) + w.cols(), copy.row(r));
    return run(copy.view(), h).mask;
  }

  static void apply(MatrixView<float> w, const PruneMask& mask) { Pruner<Magnitude, Pattern>::apply(w, mask); }

  /// Prunes w in place with OBS updates of the kept weights; returns the mask.
  PruneMask prune(MatrixView<float> w, const HessianView& h) const { return run(w, h).mask; }
  PruneMask prune(MatrixView<float> w, const HessianAccumulator& acc) const {
    const Matrix<float> h = acc.hessian();
    return run(w, h).mask;
  }
  /// Joint prune + quantize (docs/algorithms.md#joint-quantization-in-the-sweep): q is fitted
  /// on the full pre-pruning w, kept weights are quantized in the sweep, pruned ones are exactly 0.
  template <ColumnQuantizer Q>
  PruneMask prune(MatrixView<float> w, const HessianView& h, Q& quantizer) const {
    return run(w, h, quantizer).mask;
  }

  /// The full sweep with its report.
  template <class Arch = simd::dynamic>
  SparseGptReport run(MatrixView<float> w, const HessianView& h) const {
    prune_detail::NoQuantizer q;
    return run_impl<Arch, false>(w, h, q);
  }
  template <class Arch = simd::dynamic, ColumnQuantizer Q>
  SparseGptReport run(MatrixView<float> w, const HessianView& h, Q& quantizer) const {
    return run_impl<Arch, true>(w, h, quantizer);
  }

 private:
  void validate(MatrixView<const float> w, const HessianView& h) const {
    options_.validate();
    prune_detail::check_weights(w, "Pruner<SparseGPT>");
    Pattern::validate(w.rows(), w.cols());
    SparseGPT::check(w, h);
    if constexpr (prune_detail::is_nm<Pattern>) {
      SPARQ_CHECK(options_.block_size % Pattern::group == 0, "Pruner<SparseGPT, ", Pattern::name(),
                  ">: block_size = ", options_.block_size, " must be a multiple of M = ", Pattern::group);
    }
  }

  template <class Arch, bool Quantize, class Q>
  SparseGptReport run_impl(MatrixView<float> w, const HessianView& hv, Q& quantizer) const {
    validate(w, hv);
    const std::size_t rows = w.rows(), cin = w.cols(), ldw = w.stride();
    if constexpr (Quantize) quantizer.fit(MatrixView<const float>(w));  // before dead-column zeroing
    SparseGptReport rep;
    const Matrix<float> u = SparseGPT::inverse_factor<Arch>(hv.h, options_, w.data(), ldw, rows, rep);
    rep.mask = PruneMask(rows, cin, 1);
    const std::size_t B = options_.block_size;
    std::vector<float> w1, e1, sc;
    std::vector<std::uint8_t> m1;
    prune_detail::SelectScratch idx;
    std::vector<double> row_loss(rows, 0.0);
    for (std::size_t i1 = 0; i1 < cin; i1 += B) {
      const std::size_t i2 = std::min(cin, i1 + B), cnt = i2 - i1;
      w1.resize(rows * cnt);
      e1.resize(rows * cnt);
      m1.assign(rows * cnt, 1);
      for (std::size_t r = 0; r < rows; ++r) std::copy(w.row(r) + i1, w.row(r) + i2, w1.data() + r * cnt);
      if constexpr (std::is_same_v<Pattern, Unstructured>) {
        sc.resize(rows * cnt);
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = 0; c < cnt; ++c) {
            const float d = u(i1 + c, i1 + c);
            const float v = w1[r * cnt + c];
            sc[r * cnt + c] = v * v / (d * d);
          }
        const std::size_t k = prune_count(options_.sparsity, rows * cnt);
        if (options_.inclusive_threshold && options_.sparsity > 0.0) {
          std::vector<float> tmp = sc;
          std::nth_element(tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(k), tmp.end());
          const float tau = tmp[k];
          for (std::size_t i = 0; i < sc.size(); ++i) m1[i] = sc[i] <= tau ? 0 : 1;
        } else {
          prune_detail::prune_k_smallest(
              rows * cnt, k, [&](std::uint32_t i) { return sc[i]; }, m1.data(), 1, idx);
        }
      }
      const long long nrows = static_cast<long long>(rows);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
      for (long long rr = 0; rr < nrows; ++rr) {
        const std::size_t r = static_cast<std::size_t>(rr);
        float* wr = w1.data() + r * cnt;
        float* er = e1.data() + r * cnt;
        std::uint8_t* mr = m1.data() + r * cnt;
        float* out = w.row(r) + i1;
        double loss = 0.0;
        for (std::size_t c = 0; c < cnt; ++c) {
          if constexpr (prune_detail::is_nm<Pattern>) {
            constexpr std::size_t M = Pattern::group;
            if (c % M == 0) {
              float gs[M];
              for (std::size_t i = 0; i < M; ++i) {
                const float d = u(i1 + c + i, i1 + c + i);
                gs[i] = wr[c + i] * wr[c + i] / (d * d);
              }
              Pattern::select_group(gs, mr + c);
            }
          }
          const float wv = wr[c];
          const float d = u(i1 + c, i1 + c);
          float q = 0.0f;
          if (mr[c] != 0) {
            q = wv;
            if constexpr (Quantize) q = static_cast<float>(quantizer.quantize(wv, r));
          }
          out[c] = q;
          const float err = (wv - q) / d;
          er[c] = err;
          loss += static_cast<double>(wv - q) * (wv - q) / (static_cast<double>(d) * d) / 2.0;
          const float* urow = u.row(i1 + c);
          for (std::size_t c2 = c + 1; c2 < cnt; ++c2) wr[c2] -= err * urow[i1 + c2];
        }
        row_loss[r] += loss;
        std::uint8_t* gm = rep.mask.row(r) + i1;
        std::copy(mr, mr + cnt, gm);
      }
      if (i2 < cin)
        kernels::gemm<Arch>(kernels::Trans::no, kernels::Trans::no, rows, cin - i2, cnt, -1.0f, e1.data(), cnt,
                            u.data() + i1 * cin + i2, cin, 1.0f, w.data() + i2, ldw);
    }
    for (double l : row_loss) rep.loss += l;
    return rep;
  }

  PruneOptions options_{};
};

}  // namespace sparq
