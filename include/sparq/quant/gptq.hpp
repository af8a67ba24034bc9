// Gptq<Q>: GPTQ (docs/algorithms.md#gptq) — error-compensating, Hessian-aware weight quantization of one linear layer.
//
// Given W (cout x cin) and H = (2/nseq)·XᵀX (HessianAccumulator, docs/algorithms.md#hessian), GPTQ quantizes W column
// by column and pushes each column's quantization error onto the columns not yet quantized,
// weighted by the inverse Hessian, so that ‖XWᵀ − XŴᵀ‖ stays small:
//   1. Dead columns: H_ii = 0 → H_ii = 1 and W[:, i] = 0 (the input is always 0 there).
//   2. Act-order (optional): perm = argsort(diag H) descending (stable: ties keep index order);
//      columns of W and rows/columns of H are permuted, the inverse permutation restores the
//      original order at the end.
//   3. Dampening: H += λ·I with λ = percdamp · mean(diag H) (percdamp 0.01). If the Cholesky
//      factorisation fails, percdamp is multiplied by 10 and retried (`damp_retries` times);
//      after that the stage falls back to round-to-nearest (no error feedback) and says so in
//      GptqResult::warning (never on stderr).
//   4. U = upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU), computed in double, used in float.
//   5. Blocks of B = 128 columns, per block [i1, i2), per column c: q = Q(w_c),
//      e = (w_c − q)/U_cc, W[:, c+1:i2] −= e ⊗ U[c, c+1:i2] (inside the block), loss += (w−q)²/U_cc²/2;
//      after the block one GEMM applies the lazy update W[:, i2:] −= E · U[i1:i2, i2:].
// Quantizer grid (docs/algorithms.md#gptq-grid, detail/calib_grid.hpp): per row or per group of
// G inputs, min-max with the range forced to contain 0; asymmetric z = round(−xmin/Δ), or
// symmetric with GPTQ's full grid (zero (maxq+1)/2, Δ = 2·absmax/maxq); optional MSE clip search. Parameters:
//   - no groups: fitted once per row on the original W (before dead-column zeroing), as upstream;
//   - dynamic groups (default): refitted when the running (permuted) column index c hits c % G = 0,
//     on the global W slice [c, c+G) — which holds the lazy updates of earlier blocks but not
//     this block's in-block updates when G < B ([REF-QUIRK], kept for parity;
//     GptqOptions::exact_dynamic_groups fits on the current in-block values instead). With
//     act-order a group holds consecutive *permuted* columns, so inference needs g_idx;
//   - static groups: fitted up front per contiguous group of *original* columns (after dead-column
//     zeroing); column c uses group perm[c]/G, so g_idx[j] = j/G.
// Mask preservation (docs/algorithms.md#mask-preservation): when W is already sparse
// (MaskMode::preserve, or automatic with at least `mask_auto_threshold` of the weights exactly 0),
// error feedback is multiplied by the non-zero mask — in-block and lazy updates alike — so pruned
// weights stay exactly 0 and every zero survives quantization (0 is always on the grid). Errors are
// compensated by kept weights only.
// Outputs: dequantized float weights in the original column order, the unsigned codes
// u ∈ [0, 2^b − 1] with scales/zeros (x̂ = scale·(u − zero), zero integer-valued), g_idx, perm,
// the loss Σ(w−q)²/U_cc²/2 and diagnostics. Deterministic: rows are independent and every row is
// processed by the same operations whatever the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/quant/detail/calib_grid.hpp"
#include "sparq/quant/detail/calib_linalg.hpp"
#include "sparq/quant/calibrator.hpp"
#include "sparq/quant/granularity.hpp"
#include "sparq/quant/scheme.hpp"

namespace sparq {

/// Run-time description of GPTQ's weight grid (docs/algorithms.md#gptq-grid).
struct GptqSpec {
  int bits = 4;
  bool symmetric = false;       ///< GPTQ full-range symmetric grid; false = asymmetric (default)
  std::size_t group_size = 0;   ///< 0 = one grid per row; otherwise G consecutive inputs
  bool mse = false;             ///< MSE clip search (grid 100, maxshrink 0.8, norm 2.4)
  int mse_grid = 100;
  float mse_maxshrink = 0.8f;
  float mse_norm = 2.4f;
};

/// Weight-grid types Gptq<Q> accepts, and the GptqSpec each stands for (gptq_spec_of<Q>()):
/// Provided for (a) any type with `static constexpr GptqSpec gptq_spec` (e.g. GptqGrid below) and
/// (b) sparq::Quantizer<Symmetric|Asymmetric, PerChannel|PerGroup<G>, Bits, MinMax|MseClip>. For
/// Quantizer<Symmetric, ...> GPTQ uses its own full-range grid (docs/algorithms.md#gptq-grid: zero (maxq+1)/2, i.e.
/// QuantOptions::full_range), not the restricted default [−qmax, qmax]; MseClip maps to GPTQ's
/// MSE search with the default grid 100 / maxshrink 0.8 / norm 2.4.
// Declared here (defined in quant/quantizer.hpp) so that GPTQ does not pull in the SIMD quantizer kernels.
template <QuantScheme Scheme, Granularity Gran, unsigned Bits, RangeCalibrator Calibrator>
class Quantizer;

namespace detail {
template <class Q>
concept has_gptq_spec = requires {
  { Q::gptq_spec } -> std::convertible_to<GptqSpec>;
};
template <class Q>
struct QuantizerGptqSpec {
  static constexpr bool supported = false;
};
template <QuantScheme S, Granularity G, unsigned B, RangeCalibrator C>
struct QuantizerGptqSpec<Quantizer<S, G, B, C>> {
  static constexpr bool supported =
      (S::kind == SchemeKind::symmetric || S::kind == SchemeKind::asymmetric) &&
      (G::kind == GranularityKind::per_channel || G::kind == GranularityKind::per_group) &&
      (C::kind == CalibratorKind::minmax || C::kind == CalibratorKind::mse_clip) && B <= 8;
  [[nodiscard]] static constexpr GptqSpec get() noexcept {
    return GptqSpec{static_cast<int>(B), S::kind == SchemeKind::symmetric, G::group_size,
                    C::kind == CalibratorKind::mse_clip, 100, 0.8f, 2.4f};
  }
};
}  // namespace detail

/// A weight-grid type Gptq can use (see gptq_spec_of).
template <class Q>
concept GptqWeightQuantizer = detail::has_gptq_spec<Q> || detail::QuantizerGptqSpec<Q>::supported;

/// The GptqSpec a weight-grid type stands for.
template <GptqWeightQuantizer Q>
[[nodiscard]] consteval GptqSpec gptq_spec_of() noexcept {
  if constexpr (detail::has_gptq_spec<Q>) {
    return Q::gptq_spec;
  } else {
    return detail::QuantizerGptqSpec<Q>::get();
  }
}

/// The GPTQ min-max grid as a policy: Bits, symmetric or not, group size (0 = per row), MSE search.
template <int Bits, bool Sym = false, std::size_t Group = 0, bool Mse = false>
struct GptqGrid {
  static_assert(Bits >= 2 && Bits <= 8, "GptqGrid<Bits>: Bits must be in 2..8 (codes are stored in uint8)");
  static constexpr GptqSpec gptq_spec{Bits, Sym, Group, Mse, 100, 0.8f, 2.4f};
};
static_assert(GptqWeightQuantizer<GptqGrid<4>>);
static_assert(GptqWeightQuantizer<GptqGrid<3, true, 128, true>>);
static_assert(GptqWeightQuantizer<Quantizer<Asymmetric, PerGroup<128>, 4, MinMax>>);
static_assert(!GptqWeightQuantizer<Quantizer<NF4, PerGroup<64>, 4, MinMax>>);

/// How GPTQ treats zeros already present in W.
enum class MaskMode : std::uint8_t {
  automatic,  ///< preserve when ≥ mask_auto_threshold of W is exactly 0 (llm-compressor's old 5 % rule)
  preserve,   ///< always mask the error feedback with W != 0
  ignore      ///< plain GPTQ: updates may fill pruned positions
};

struct GptqOptions {
  float percdamp = 0.01f;          ///< λ = percdamp · mean(diag H)
  std::size_t blocksize = 128;     ///< B, columns per lazy-update block
  bool act_order = false;          ///< quantize columns by decreasing H_ii
  bool static_groups = false;      ///< groups fitted up front on original columns
  bool exact_dynamic_groups = false;  ///< fit dynamic groups on current in-block values (not the reference's stale slice)
  MaskMode mask = MaskMode::automatic;
  float mask_auto_threshold = 0.05f;
  int damp_retries = 3;            ///< retries of the Cholesky with 10× percdamp before the RTN fallback
};

/// Everything GPTQ produces for one linear layer (all in the ORIGINAL column order).
struct GptqResult {
  Matrix<float> weight;              ///< Ŵ (cout x cin), dequantized
  Matrix<std::uint8_t> codes;        ///< u ∈ [0, 2^bits − 1] (cout x cin)
  Matrix<float> scales;              ///< cout x ngroups
  Matrix<float> zeros;               ///< cout x ngroups, integer-valued
  std::vector<std::uint32_t> g_idx;  ///< cin entries: the group (column of scales/zeros) of each input
  std::vector<std::uint32_t> perm;   ///< act-order: position c was original column perm[c]; empty otherwise
  GptqSpec spec{};
  double loss = 0.0;                 ///< Σ (w − q)² / U_cc² / 2 over all weights (the reference's error)
  float percdamp_used = 0.0f;        ///< percdamp that factored (after retries)
  std::size_t dead_columns = 0;      ///< inputs with H_ii = 0 (their weights are set to 0)
  bool mask_preserved = false;       ///< error feedback was masked by the input's non-zeros
  std::size_t input_zeros = 0;       ///< exact zeros in the input W
  bool rtn_fallback = false;         ///< Cholesky failed after every retry: round-to-nearest was used
  std::string warning;               ///< non-empty when something was degraded (fallback)

  /// x̂ = scale · (u − zero) of element (r, c), recomputed from codes (equals weight(r, c)).
  [[nodiscard]] float dequantize(std::size_t r, std::size_t c) const noexcept {
    const std::size_t g = g_idx[c];
    return scales(r, g) * (static_cast<float>(codes(r, c)) - zeros(r, g));
  }
};

namespace detail {

inline void gptq_check(MatrixView<const float> w, std::size_t hrows, std::size_t hcols,
                       const GptqSpec& s, const GptqOptions& o) {
  SPARQ_CHECK(!w.empty(), "Gptq: weight is ", w.rows(), "x", w.cols(), ", expected a non-empty matrix");
  SPARQ_CHECK(hrows == w.cols() && hcols == w.cols(), "Gptq: Hessian is ", hrows, "x", hcols,
              ", expected cin x cin = ", w.cols(), "x", w.cols());
  SPARQ_CHECK(s.bits >= 2 && s.bits <= 8, "Gptq: bits = ", s.bits, ", expected 2..8");
  SPARQ_CHECK(s.group_size == 0 || w.cols() % s.group_size == 0, "Gptq: group size ", s.group_size,
              " does not divide cin = ", w.cols(), " (cin % G = ",
              s.group_size ? w.cols() % s.group_size : 0, ")");
  if (s.mse) {
    SPARQ_CHECK(s.mse_grid > 0 && s.mse_maxshrink > 0.0f && s.mse_maxshrink <= 1.0f &&
                    std::isfinite(s.mse_norm) && s.mse_norm > 0.0f,
                "Gptq: MSE search needs mse_grid > 0 (got ", s.mse_grid, "), mse_maxshrink in (0, 1] (got ",
                s.mse_maxshrink, ") and mse_norm > 0 (got ", s.mse_norm, ")");
  }
  SPARQ_CHECK(std::isfinite(o.percdamp) && o.percdamp > 0.0f, "Gptq: percdamp = ", o.percdamp,
              ", expected a positive finite value (default 0.01)");
  SPARQ_CHECK(o.blocksize > 0, "Gptq: blocksize = 0, expected a positive block size (default 128)");
  SPARQ_CHECK(o.damp_retries >= 0 && o.damp_retries <= 10, "Gptq: damp_retries = ", o.damp_retries,
              ", expected 0..10");
  SPARQ_CHECK(o.mask_auto_threshold >= 0.0f && o.mask_auto_threshold <= 1.0f,
              "Gptq: mask_auto_threshold = ", o.mask_auto_threshold, ", expected [0, 1]");
  for (std::size_t r = 0; r < w.rows(); ++r) {
    const float* row = w.row(r);
    for (std::size_t c = 0; c < w.cols(); ++c)
      if (!std::isfinite(row[c]))
        fail("Gptq: non-finite weight ", row[c], " at (", r, ", ", c, "), expected finite values");
  }
}

/// The GPTQ sweep on a double Hessian `hd` (cin x cin, modified: dead columns, permutation).
inline GptqResult gptq_run(MatrixView<const float> w_in, LargeVector<double> hd, const GptqSpec& spec,
                           const GptqOptions& opt) {
  using namespace calib;
  const std::size_t rows = w_in.rows(), n = w_in.cols();
  for (std::size_t i = 0; i < n * n; ++i)
    SPARQ_CHECK(std::isfinite(hd[i]), "Gptq: non-finite Hessian entry ", hd[i], " at (", i / n, ", ",
                i % n, "), expected finite statistics");
  const GptqGridSpec grid{spec.bits, spec.symmetric, spec.mse, spec.mse_grid, spec.mse_maxshrink,
                          spec.mse_norm};
  const float maxq = static_cast<float>(grid.maxq());
  const std::size_t G = spec.group_size;
  const std::size_t ngroups = G ? n / G : 1;

  GptqResult res;
  res.spec = spec;
  Matrix<float> W(rows, n);
  for (std::size_t r = 0; r < rows; ++r) std::copy(w_in.row(r), w_in.row(r) + n, W.row(r));

  // Mask of the input's non-zeros.
  for (float v : W.storage()) res.input_zeros += (v == 0.0f);
  const bool preserve =
      opt.mask == MaskMode::preserve ||
      (opt.mask == MaskMode::automatic &&
       static_cast<double>(res.input_zeros) >= static_cast<double>(opt.mask_auto_threshold) *
                                                   static_cast<double>(W.size()) &&
       res.input_zeros > 0);
  res.mask_preserved = preserve;

  res.scales = Matrix<float>(rows, ngroups);
  res.zeros = Matrix<float>(rows, ngroups);
  // Per-row parameters on the original W, before dead-column zeroing (upstream order).
  if (G == 0) {
    for (std::size_t r = 0; r < rows; ++r) {
      const GridParams p = fit_gptq(W.row(r), n, 1, grid);
      res.scales(r, 0) = p.scale;
      res.zeros(r, 0) = p.zero;
    }
  }
  // Dead columns.
  for (std::size_t i = 0; i < n; ++i) {
    if (hd[i * n + i] == 0.0) {
      hd[i * n + i] = 1.0;
      for (std::size_t r = 0; r < rows; ++r) W(r, i) = 0.0f;
      ++res.dead_columns;
    }
  }
  if (G != 0 && opt.static_groups) {
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t g = 0; g < ngroups; ++g) {
        const GridParams p = fit_gptq(W.row(r) + g * G, G, 1, grid);
        res.scales(r, g) = p.scale;
        res.zeros(r, g) = p.zero;
      }
  }
  // Act-order permutation.
  std::vector<std::uint32_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0u);
  if (opt.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](std::uint32_t a, std::uint32_t b) {
      return hd[a * n + a] > hd[b * n + b];
    });
    res.perm = perm;
  }
  // Without act-order the permutation is the identity: W and H are used in place (no n x n copies).
  Matrix<float> Wp;
  Matrix<std::uint8_t> M;  // permuted non-zero mask (1 = kept)
  if (preserve) M = Matrix<std::uint8_t>(rows, n);
  if (opt.act_order) {
    Wp = Matrix<float>(rows, n);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < n; ++c) Wp(r, c) = W(r, perm[c]);
    W = Matrix<float>();
  } else {
    Wp = std::move(W);
  }
  if (preserve)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < n; ++c) M(r, c) = w_in(r, perm[c]) != 0.0f;
  LargeVector<double> hp;
  if (opt.act_order) {
    hp.resize(n * n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) hp[i * n + j] = hd[perm[i] * n + perm[j]];
    hd = LargeVector<double>();
  } else {
    hp = std::move(hd);
  }
  std::vector<double> diag(n);  // the undamped diagonal: each attempt damps it afresh, in place
  double mean_diag = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    diag[i] = hp[i * n + i];
    mean_diag += diag[i];
  }
  mean_diag /= static_cast<double>(n);

  // Dampen and factor, with retries.
  LargeVector<double> ud(n * n);
  double pd = opt.percdamp;
  bool ok = false;
  for (int attempt = 0; attempt <= opt.damp_retries; ++attempt, pd *= 10.0) {
    const double lambda = pd * mean_diag;
    for (std::size_t i = 0; i < n; ++i) hp[i * n + i] = diag[i] + lambda;
    if (calib::inverse_upper_factor(hp.data(), n, ud.data()) == n) {
      ok = true;
      bool finite = true;
      for (double v : ud) finite = finite && std::isfinite(v);
      ok = finite;
    }
    if (ok) {
      res.percdamp_used = static_cast<float>(pd);
      break;
    }
  }
  hp = LargeVector<double>();
  LargeVector<float> U(n * n, 0.0f);
  if (ok) {
    for (std::size_t i = 0; i < n * n; ++i) U[i] = static_cast<float>(ud[i]);
  } else {
    for (std::size_t i = 0; i < n; ++i) U[i * n + i] = 1.0f;
    res.rtn_fallback = true;
    res.percdamp_used = 0.0f;
    res.warning = concat("Gptq: Cholesky of the dampened Hessian failed with percdamp up to ",
                         pd / 10.0, " (", opt.damp_retries + 1,
                         " attempts); fell back to round-to-nearest without error feedback");
  }

  // Sweep.
  Matrix<std::uint8_t> Cp(rows, n);
  std::vector<std::uint32_t> gcol(n, 0);  // group index used at permuted position c
  for (std::size_t c = 0; c < n; ++c)
    gcol[c] = G == 0 ? 0u : static_cast<std::uint32_t>(opt.static_groups ? perm[c] / G : c / G);
  std::vector<double> row_loss(rows, 0.0);
  const std::size_t B = opt.blocksize;
  std::vector<float> E(rows * B);
  const bool dynamic_groups = G != 0 && !opt.static_groups;
  for (std::size_t i1 = 0; i1 < n; i1 += B) {
    const std::size_t i2 = std::min(n, i1 + B), bw = i2 - i1;
    const long long nrows = static_cast<long long>(rows);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * bw * bw > 100000)
#endif
    for (long long rr = 0; rr < nrows; ++rr) {
      const std::size_t r = static_cast<std::size_t>(rr);
      float w1[1024];  // blocksize is capped at 1024 by gptq_quantize
      float* wrow = Wp.row(r);
      std::copy(wrow + i1, wrow + i2, w1);
      const std::uint8_t* mrow = preserve ? M.row(r) : nullptr;
      float* erow = E.data() + r * B;
      double lsum = 0.0;
      for (std::size_t c = 0; c < bw; ++c) {
        const std::size_t col = i1 + c;
        if (dynamic_groups && col % G == 0) {
          GridParams p;
          if (opt.exact_dynamic_groups) {
            float tmp[1024 + 1];
            std::vector<float> big;
            float* buf = tmp;
            if (G > 1024) {
              big.resize(G);
              buf = big.data();
            }
            for (std::size_t k = 0; k < G; ++k)
              buf[k] = (col + k < i2) ? w1[c + k] : wrow[col + k];
            p = fit_gptq(buf, G, 1, grid);
          } else {
            p = fit_gptq(wrow + col, G, 1, grid);
          }
          res.scales(r, col / G) = p.scale;
          res.zeros(r, col / G) = p.zero;
        }
        const GridParams p{res.scales(r, gcol[col]), res.zeros(r, gcol[col])};
        const float wv = w1[c];
        std::uint8_t code;
        float q;
        if (mrow && !mrow[col]) {
          code = quantize_code(0.0f, p, maxq);
          q = 0.0f;
        } else {
          code = quantize_code(wv, p, maxq);
          q = dequantize_code(code, p);
        }
        Cp(r, col) = code;
        const float d = U[col * n + col];
        const float e = (wv - q) / d;
        lsum += static_cast<double>(wv - q) * (wv - q) / (static_cast<double>(d) * d) / 2.0;
        const float* urow = U.data() + col * n;
        if (mrow) {
          for (std::size_t k = c + 1; k < bw; ++k)
            w1[k] -= mrow[i1 + k] ? e * urow[i1 + k] : 0.0f;
        } else {
          for (std::size_t k = c + 1; k < bw; ++k) w1[k] -= e * urow[i1 + k];
        }
        w1[c] = q;
        erow[c] = e;
      }
      std::copy(w1, w1 + bw, wrow + i1);
      row_loss[r] += lsum;
    }
    if (i2 < n) {
      calib::gemm_acc(rows, n - i2, bw, -1.0f, E.data(), B, U.data() + i1 * n + i2, n,
                      Wp.data() + i2, n);
      if (preserve) {
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = i2; c < n; ++c)
            if (!M(r, c)) Wp(r, c) = 0.0f;
      }
    }
  }
  for (double l : row_loss) res.loss += l;

  // Back to the original column order.
  res.g_idx.assign(n, 0);
  for (std::size_t c = 0; c < n; ++c) res.g_idx[perm[c]] = gcol[c];
  if (!opt.act_order) {
    res.weight = std::move(Wp);
    res.codes = std::move(Cp);
    return res;
  }
  res.weight = Matrix<float>(rows, n);
  res.codes = Matrix<std::uint8_t>(rows, n);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < n; ++c) {
      res.weight(r, perm[c]) = Wp(r, c);
      res.codes(r, perm[c]) = Cp(r, c);
    }
  return res;
}

template <class T>
LargeVector<double> hessian_to_double(MatrixView<const T> h) {
  LargeVector<double> hd(h.rows() * h.cols());
  for (std::size_t i = 0; i < h.rows(); ++i)
    for (std::size_t j = 0; j < h.cols(); ++j) hd[i * h.cols() + j] = static_cast<double>(h(i, j));
  return hd;
}

}  // namespace detail

/// GPTQ with a run-time grid: quantizes W (cout x cin) given H (cin x cin, float or double).
/// Throws sparq::error on shape mismatch, non-finite W or H, unsupported bits (2..8), a group size
/// that does not divide cin, or invalid options.
template <class T>
  requires(std::same_as<std::remove_const_t<T>, float> || std::same_as<std::remove_const_t<T>, double>)
[[nodiscard]] GptqResult gptq_quantize(MatrixView<const float> w, MatrixView<T> h,
                                       const GptqSpec& spec, const GptqOptions& opt = {}) {
  detail::gptq_check(w, h.rows(), h.cols(), spec, opt);
  SPARQ_CHECK(opt.blocksize <= 1024, "Gptq: blocksize = ", opt.blocksize, ", expected at most 1024");
  return detail::gptq_run(w, detail::hessian_to_double(MatrixView<const std::remove_const_t<T>>(h)),
                          spec, opt);
}

/// Same, with the Hessian taken from an accumulator (H = (2/nseq)·XᵀX in double).
[[nodiscard]] inline GptqResult gptq_quantize(MatrixView<const float> w, const HessianAccumulator& acc,
                                              const GptqSpec& spec, const GptqOptions& opt = {}) {
  SPARQ_CHECK(acc.channels() == w.cols(), "Gptq: Hessian accumulator has ", acc.channels(),
              " channels, expected cin = ", w.cols());
  Matrix<double> h = acc.hessian_f64();
  detail::gptq_check(w, h.rows(), h.cols(), spec, opt);
  SPARQ_CHECK(opt.blocksize <= 1024, "Gptq: blocksize = ", opt.blocksize, ", expected at most 1024");
  return detail::gptq_run(w, std::move(h.storage()), spec, opt);  // the accumulator's double H, not copied
}

/// The GPTQ stage: `Gptq<GptqGrid<4, false, 128>>` etc. (the quantizer type names the grid).
template <class Q>
class Gptq {
  static_assert(GptqWeightQuantizer<Q>,
                "Gptq<Q>: Q must be an integer min-max grid GPTQ can drive: "
                "Quantizer<Symmetric|Asymmetric, PerChannel|PerGroup<G>, Bits, MinMax|MseClip> or "
                "GptqGrid<Bits, Sym, G, Mse> (NF4, FP8, PerTensor, Percentile are not GPTQ grids)");

 public:
  using quantizer_type = Q;
  static constexpr GptqSpec spec = gptq_spec_of<Q>();

  Gptq() = default;
  explicit Gptq(GptqOptions opt) : opt_(opt) {}

  [[nodiscard]] const GptqOptions& options() const noexcept { return opt_; }
  [[nodiscard]] GptqOptions& options() noexcept { return opt_; }

  /// Quantizes one linear layer's weights given its input Hessian.
  template <class T>
  [[nodiscard]] GptqResult quantize(MatrixView<const float> w, MatrixView<T> h) const {
    return gptq_quantize(w, h, spec, opt_);
  }
  [[nodiscard]] GptqResult quantize(MatrixView<const float> w, const HessianAccumulator& acc) const {
    return gptq_quantize(w, acc, spec, opt_);
  }

 private:
  GptqOptions opt_{};
};

}  // namespace sparq
