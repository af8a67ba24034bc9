// AwqScale: AWQ — activation-aware per-channel scaling and clipping before weight-only quantization
// (docs/algorithms.md#awq).
//
// Quantizer (docs/algorithms.md#awq-grid, awq_pseudo_quantize): per group of G consecutive inputs of a row (G = 128
// default; 0 = whole row), asymmetric min-max NOT forced to contain 0:
//     Δ = max(mx − mn, 1e−5)/(2^b − 1),  z = clamp(−round(mn/Δ), 0, 2^b − 1),
//     ŵ = (clamp(round(w/Δ) + z, 0, 2^b − 1) − z)·Δ                  (round half to even)
// (zero_point = false selects the symmetric variant, Δ = max|w|/(2^(b−1) − 1), unused upstream).
// Scale search (docs/algorithms.md#awq-scale-search) for a group of linears F reading the cached
// input X (tokens x cin):
//     x̄_j = mean_t |X_tj|;  for r ∈ {0, 1/n_grid, …, (n_grid−1)/n_grid} (20 points, 1 excluded):
//       s = max(x̄^r, 1e−4);  s ← s / sqrt(max(s)·min(s));
//       loss(r) = mean((o − ô)²), o = M(X; W^F), ô = M(X; Q(W^f·diag(s))·diag(s)⁻¹ for f ∈ F)
//     keep the s of the lowest loss (ties keep the smaller r). r = 0 gives s = 1, plain RTN, so the
//     chosen s is never worse than RTN on this loss. M is by default the concatenation of the
//     linears' outputs X·W^fᵀ (the "block output" of a norm → {linears} group); a module function
//     (e.g. the whole attention or MLP) may be supplied instead.
// Applying s: fold_scales (model/layer_group.hpp, through the ScaleGroup customisation points of
// quant/scale_group.hpp): the predecessor is divided by s, the linears' columns multiplied by s; the
// cached input is divided by s for the clip search.
// Clip search (docs/algorithms.md#awq-clip-search), for every linear except wq/wk (attention
// logits are too sensitive): per row and group, m0 = max|w|; for
// i = 0 … floor(max_shrink·n_grid) − 1 (10 candidates):
//     m = m0·(1 − i/n_grid), err(m) = mean_t (Σ_{j∈group} x_tj (Q(clamp(w, −m, m))_j − w_j))²
//   over tokens subsampled with stride max(1, floor(tokens/clip_tokens)) (the reference's stride
//   is 0 below 512 tokens: [REF-QUIRK] guarded to ≥ 1); keep the lowest; then W ← clamp(W, −m, m).
//   The error is evaluated as dᵀ G d with the group's Gram matrix G = X_gᵀX_g / T (the same
//   quantity as the reference's partial dot products, computed once per group). i = 0 is no clip,
//   so clipping never raises this error.
// AWQ does not propagate error: the next block's input is the float output before scaling.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/quant/detail/calib_grid.hpp"
#include "sparq/quant/detail/calib_linalg.hpp"
#include "sparq/quant/scale_group.hpp"

namespace sparq {

struct AwqOptions {
  int bits = 4;                  ///< 2..8
  std::size_t group_size = 128;  ///< G; 0 = one group per row
  bool zero_point = true;        ///< asymmetric (default) or the symmetric variant
  int n_grid = 20;               ///< scale-search grid: r = i/n_grid, i < n_grid
  bool clip = true;              ///< run the clip search after scaling
  float max_shrink = 0.5f;       ///< clip candidates: i < floor(max_shrink·clip_grid)
  int clip_grid = 20;
  std::size_t clip_tokens = 512; ///< subsample target for the clip search (stride ≥ 1)
};

/// AWQ-quantized weights: dequantized floats and codes u ∈ [0, 2^b − 1], ŵ = scale·(u − zero).
struct AwqQuantized {
  Matrix<float> weight;
  Matrix<std::uint8_t> codes;
  Matrix<float> scales;  ///< cout x ngroups
  Matrix<float> zeros;   ///< cout x ngroups
};

/// Result of the scale search of one group.
struct AwqSearch {
  std::vector<float> scales;  ///< s (cin), normalised
  double best_ratio = 0.0;    ///< r of the chosen s
  double best_loss = 0.0;
  std::vector<double> losses; ///< loss(r) for every grid point; losses[0] is round-to-nearest
};

/// Block output M(X; weights) used by the scale search; weights are cout_f x cin each.
using AwqModule =
    std::function<Matrix<float>(MatrixView<const float> x, std::span<const MatrixView<const float>> weights)>;

namespace detail {

inline void awq_check(const AwqOptions& o, std::size_t cin) {
  SPARQ_CHECK(o.bits >= 2 && o.bits <= 8, "AwqScale: bits = ", o.bits, ", expected 2..8");
  SPARQ_CHECK(o.group_size == 0 || cin % o.group_size == 0, "AwqScale: group size ", o.group_size,
              " does not divide cin = ", cin, " (cin % G = ", o.group_size ? cin % o.group_size : 0,
              "); use a divisor or 0 for one group per row");
  SPARQ_CHECK(o.n_grid >= 1 && o.n_grid <= 1000, "AwqScale: n_grid = ", o.n_grid, ", expected 1..1000");
  SPARQ_CHECK(o.clip_grid >= 1 && std::isfinite(o.max_shrink) && o.max_shrink >= 0.0f && o.max_shrink < 1.0f,
              "AwqScale: clip_grid = ", o.clip_grid, ", max_shrink = ", o.max_shrink,
              ", expected clip_grid >= 1 and max_shrink in [0, 1)");
  SPARQ_CHECK(o.clip_tokens >= 1, "AwqScale: clip_tokens = 0, expected >= 1");
}

inline void awq_check_finite(MatrixView<const float> m, const char* what) {
  for (std::size_t r = 0; r < m.rows(); ++r)
    for (std::size_t c = 0; c < m.cols(); ++c)
      if (!std::isfinite(m(r, c)))
        fail("AwqScale: non-finite ", what, " value ", m(r, c), " at (", r, ", ", c, "), expected finite values");
}

inline calib::GridParams awq_fit(const float* x, std::size_t n, const AwqOptions& o) noexcept {
  return o.zero_point ? calib::fit_awq(x, n, o.bits) : calib::fit_awq_symmetric(x, n, o.bits);
}

/// Fake-quantizes w (rows x cin) into out with the AWQ grid.
inline void awq_fake_quantize_into(MatrixView<const float> w, const AwqOptions& o, float* out) {
  const std::size_t cin = w.cols(), g = o.group_size ? o.group_size : cin;
  const float maxq = static_cast<float>((1 << o.bits) - 1);
  for (std::size_t r = 0; r < w.rows(); ++r) {
    const float* row = w.row(r);
    for (std::size_t c0 = 0; c0 < cin; c0 += g) {
      const auto p = awq_fit(row + c0, g, o);
      for (std::size_t c = c0; c < c0 + g; ++c) out[r * cin + c] = calib::fake_quantize(row[c], p, maxq);
    }
  }
}

inline Matrix<float> concat_outputs(MatrixView<const float> x, std::span<const MatrixView<const float>> ws) {
  std::size_t total = 0;
  for (const auto& w : ws) total += w.rows();
  Matrix<float> y(x.rows(), total);
  std::size_t off = 0;
  for (const auto& w : ws) {
    Matrix<float> wc(w.rows(), w.cols());
    for (std::size_t r = 0; r < w.rows(); ++r) std::copy(w.row(r), w.row(r) + w.cols(), wc.row(r));
    calib::gemm_abt(x.rows(), w.rows(), w.cols(), x.data(), x.stride(), wc.data(), w.cols(),
                    y.data() + off, total);
    off += w.rows();
  }
  return y;
}

}  // namespace detail

/// AWQ's pseudo_quantize_tensor with codes (docs/algorithms.md#awq-grid). Throws on bad bits / group / non-finite w.
[[nodiscard]] inline AwqQuantized awq_quantize(MatrixView<const float> w, const AwqOptions& o = {}) {
  detail::awq_check(o, w.cols());
  detail::awq_check_finite(w, "weight");
  const std::size_t cin = w.cols(), g = o.group_size ? o.group_size : cin, ng = cin / g;
  const float maxq = static_cast<float>((1 << o.bits) - 1);
  AwqQuantized q{Matrix<float>(w.rows(), cin), Matrix<std::uint8_t>(w.rows(), cin),
                 Matrix<float>(w.rows(), ng), Matrix<float>(w.rows(), ng)};
  for (std::size_t r = 0; r < w.rows(); ++r)
    for (std::size_t k = 0; k < ng; ++k) {
      const auto p = detail::awq_fit(w.row(r) + k * g, g, o);
      q.scales(r, k) = p.scale;
      q.zeros(r, k) = p.zero;
      for (std::size_t c = k * g; c < (k + 1) * g; ++c) {
        q.codes(r, c) = detail::calib::quantize_code(w(r, c), p, maxq);
        q.weight(r, c) = detail::calib::dequantize_code(q.codes(r, c), p);
      }
    }
  return q;
}

/// The AWQ stage.
class AwqScale {
  static std::size_t total_rows(std::span<const MatrixView<const float>> ws) noexcept {
    std::size_t n = 0;
    for (const auto& w : ws) n += w.rows();
    return n;
  }

 public:
  AwqScale() = default;
  explicit AwqScale(AwqOptions opt) : opt_(opt) {}
  [[nodiscard]] const AwqOptions& options() const noexcept { return opt_; }

  /// Scale search (docs/algorithms.md#awq-scale-search) for linears reading x. `module`
  /// (optional) replaces the concatenated linear outputs as the block output.
  [[nodiscard]] AwqSearch search_scales(MatrixView<const float> x,
                                        std::span<const MatrixView<const float>> linears,
                                        const AwqModule& module = {}) const {
    SPARQ_CHECK(!linears.empty(), "AwqScale: no linears to scale");
    const std::size_t cin = linears[0].cols();
    detail::awq_check(opt_, cin);
    SPARQ_CHECK(x.cols() == cin, "AwqScale: input has ", x.cols(), " channels, expected cin = ", cin);
    SPARQ_CHECK(x.rows() > 0, "AwqScale: no calibration tokens");
    detail::awq_check_finite(x, "activation");
    for (const auto& w : linears) {
      SPARQ_CHECK(w.cols() == cin, "AwqScale: a linear has cin = ", w.cols(), ", expected ", cin);
      detail::awq_check_finite(w, "weight");
    }
    auto run = [&](std::span<const MatrixView<const float>> ws) {
      return module ? module(x, ws) : detail::concat_outputs(x, ws);
    };
    // Reference output (only its shape is needed for the default module: the loss uses X(W − Ŵ)ᵀ).
    const Matrix<float> o = module ? run(linears) : Matrix<float>(x.rows(), total_rows(linears));
    // x̄_j = mean |x_j| in double.
    std::vector<double> xbar(cin, 0.0);
    for (std::size_t t = 0; t < x.rows(); ++t)
      for (std::size_t j = 0; j < cin; ++j) xbar[j] += std::fabs(static_cast<double>(x(t, j)));
    for (auto& v : xbar) v /= static_cast<double>(x.rows());

    AwqSearch res;
    res.best_loss = std::numeric_limits<double>::infinity();
    std::vector<Matrix<float>> cand(linears.size());
    for (std::size_t f = 0; f < linears.size(); ++f) cand[f] = Matrix<float>(linears[f].rows(), cin);
    std::vector<float> s(cin);
    for (int i = 0; i < opt_.n_grid; ++i) {
      const double ratio = static_cast<double>(i) / opt_.n_grid;
      float smax = 0.0f, smin = std::numeric_limits<float>::infinity();
      for (std::size_t j = 0; j < cin; ++j) {
        s[j] = static_cast<float>(std::max(std::pow(xbar[j], ratio), 1e-4));
        smax = std::max(smax, s[j]);
        smin = std::min(smin, s[j]);
      }
      const float norm = std::sqrt(smax * smin);
      for (auto& v : s) v /= norm;
      std::vector<MatrixView<const float>> views;
      for (std::size_t f = 0; f < linears.size(); ++f) {
        const auto& w = linears[f];
        Matrix<float> ws(w.rows(), cin);
        for (std::size_t r = 0; r < w.rows(); ++r)
          for (std::size_t j = 0; j < cin; ++j) ws(r, j) = w(r, j) * s[j];
        detail::awq_fake_quantize_into(ws.view(), opt_, cand[f].data());
        for (std::size_t r = 0; r < w.rows(); ++r)
          for (std::size_t j = 0; j < cin; ++j) {
            const float q = cand[f](r, j) / s[j];
            // Default block output: the loss only needs X·(W − Ŵ)ᵀ, one GEMM per candidate.
            cand[f](r, j) = module ? q : w(r, j) - q;
          }
        views.push_back(cand[f].view());
      }
      double loss = 0.0;
      if (module) {
        const Matrix<float> oq = run(views);
        SPARQ_CHECK(oq.rows() == o.rows() && oq.cols() == o.cols(), "AwqScale: module output is ",
                    oq.rows(), "x", oq.cols(), ", expected ", o.rows(), "x", o.cols());
        for (std::size_t k = 0; k < o.size(); ++k) {
          const double d = static_cast<double>(o.data()[k]) - oq.data()[k];
          loss += d * d;
        }
      } else {
        const Matrix<float> diff = detail::concat_outputs(x, views);
        for (float v : diff.storage()) loss += static_cast<double>(v) * v;
      }
      loss /= static_cast<double>(o.size());
      res.losses.push_back(loss);
      if (loss < res.best_loss) {
        res.best_loss = loss;
        res.best_ratio = ratio;
        res.scales = s;
      }
    }
    for (float v : res.scales)
      SPARQ_CHECK(std::isfinite(v) && v > 0.0f, "AwqScale: non-finite or zero scale ", v, " after search");
    return res;
  }

  /// Clip search (docs/algorithms.md#awq-clip-search) for one linear with its (already scaled)
  /// input x: the clip bound m per row and group (cout x ngroups).
  [[nodiscard]] Matrix<float> search_clip(MatrixView<const float> w, MatrixView<const float> x) const {
    const std::size_t cin = w.cols();
    detail::awq_check(opt_, cin);
    SPARQ_CHECK(x.cols() == cin, "AwqScale: clip input has ", x.cols(), " channels, expected cin = ", cin);
    SPARQ_CHECK(x.rows() > 0, "AwqScale: no calibration tokens for the clip search");
    detail::awq_check_finite(w, "weight");
    detail::awq_check_finite(x, "activation");
    const std::size_t g = opt_.group_size ? opt_.group_size : cin, ng = cin / g;
    const std::size_t stride = std::max<std::size_t>(1, x.rows() / opt_.clip_tokens);
    std::size_t T = 0;
    for (std::size_t t = 0; t < x.rows(); t += stride) ++T;
    const int ncand = static_cast<int>(std::floor(opt_.max_shrink * static_cast<float>(opt_.clip_grid)));
    const float maxq = static_cast<float>((1 << opt_.bits) - 1);
    Matrix<float> mval(w.rows(), ng);
    std::vector<double> gram(g * g);
    for (std::size_t k = 0; k < ng; ++k) {
      std::fill(gram.begin(), gram.end(), 0.0);
      for (std::size_t t = 0; t < x.rows(); t += stride) {
        const float* xr = x.row(t) + k * g;
        for (std::size_t a = 0; a < g; ++a) {
          const double xa = xr[a];
          for (std::size_t b = 0; b < g; ++b) gram[a * g + b] += xa * xr[b];
        }
      }
      for (auto& v : gram) v /= static_cast<double>(T);
      const long long rows = static_cast<long long>(w.rows());
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * static_cast<long long>(g * g) > 200000)
#endif
      for (long long rr = 0; rr < rows; ++rr) {
        const std::size_t r = static_cast<std::size_t>(rr);
        const float* wr = w.row(r) + k * g;
        float m0 = 0.0f;
        for (std::size_t a = 0; a < g; ++a) m0 = std::max(m0, std::fabs(wr[a]));
        std::vector<float> wc(g), d(g);
        std::vector<double> gd(g);
        double best = std::numeric_limits<double>::infinity();
        float best_m = m0;
        for (int i = 0; i < std::max(ncand, 1); ++i) {
          const float m = m0 * (1.0f - static_cast<float>(i) / static_cast<float>(opt_.clip_grid));
          for (std::size_t a = 0; a < g; ++a) wc[a] = std::clamp(wr[a], -m, m);
          const auto p = detail::awq_fit(wc.data(), g, opt_);
          for (std::size_t a = 0; a < g; ++a) d[a] = detail::calib::fake_quantize(wc[a], p, maxq) - wr[a];
          // e = dᵀ G d, with G d accumulated column-wise (axpy form: vectorises, no reduction).
          std::fill(gd.begin(), gd.end(), 0.0);
          for (std::size_t a = 0; a < g; ++a) {
            const double da = d[a];
            const double* gr = gram.data() + a * g;
            for (std::size_t b = 0; b < g; ++b) gd[b] += gr[b] * da;
          }
          double e = 0.0;
          for (std::size_t a = 0; a < g; ++a) e += d[a] * gd[a];
          if (e < best) {
            best = e;
            best_m = m;
          }
        }
        mval(r, k) = best_m;
      }
    }
    return mval;
  }

  /// W ← clamp(W, −m, m) per row and group (m from search_clip).
  void apply_clip(MatrixView<float> w, const Matrix<float>& mval) const {
    const std::size_t cin = w.cols(), g = opt_.group_size ? opt_.group_size : cin;
    SPARQ_CHECK(mval.rows() == w.rows() && mval.cols() * g == cin, "AwqScale: clip bounds are ",
                mval.rows(), "x", mval.cols(), ", expected ", w.rows(), "x", cin / g);
    for (std::size_t r = 0; r < w.rows(); ++r)
      for (std::size_t c = 0; c < cin; ++c) w(r, c) = std::clamp(w(r, c), -mval(r, c / g), mval(r, c / g));
  }

  /// Scales (and clips) one group of a block in place (e.g. a model::LlamaBlock and a LayerGroup
  /// of llama_awq_groups(cfg), model/layer_group.hpp). `x` is the cached input of the group's
  /// linears (tokens x cin); it is divided by s on return (what the scaled linears see). Consumers
  /// for which awq_may_clip(g, l) is false (a Llama block's wq and wk) are never clipped. Returns
  /// the search result.
  template <class Block, class Group>
    requires AwqScaleGroup<Block, Group>
  AwqSearch apply(Block& blk, const Group& g, Matrix<float>& x, const AwqModule& module = {}) const {
    const std::size_t cin = group_channels(std::as_const(blk), g);
    SPARQ_CHECK(x.cols() == cin, "AwqScale: cached input of group ", g.name(), " has ", x.cols(),
                " channels, expected cin = ", cin);
    std::vector<MatrixView<const float>> ws;
    for (const auto& l : g.linears) ws.push_back(std::as_const(blk).linear(l).view());
    AwqSearch res = search_scales(x.view(), ws, module);
    fold_scales(blk, g, res.scales);
    for (std::size_t t = 0; t < x.rows(); ++t)
      for (std::size_t j = 0; j < cin; ++j) x(t, j) /= res.scales[j];
    if (opt_.clip) {
      for (const auto& l : g.linears) {
        if (!awq_may_clip(g, l)) continue;
        auto& w = blk.linear(l);
        apply_clip(w.view(), search_clip(w.view(), x.view()));
      }
    }
    return res;
  }

 private:
  AwqOptions opt_{};
};

}  // namespace sparq
