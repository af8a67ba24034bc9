// Smooth: SmoothQuant (docs/algorithms.md#smoothquant) — migrate activation outliers into the weights before W8A8.
//
// For a group F of linears that read the same input x (LayerGroup: norm → {linears}), with the
// per-channel activation statistic collected at that input:
//   SmoothStatistic::absmax (the paper and its reference code, default):
//       a_j = max over tokens |x_j|                                   (ColumnAbsMax)
//       w_j = max(max over f ∈ F, k of |W^f_kj|, 1e−5)
//       s_j = max(a_j^α / w_j^(1−α), 1e−5)
//   SmoothStatistic::range (llm-compressor's SmoothQuantModifier, docs/algorithms.md#range-statistic-variant):
//       a_j = max_t x_j − min_t x_j                                   (ColumnMinMax)
//       w_j = 2 · max over f, k of |W^f_kj|
//       s_j = max(a_j^α / w_j^(1−α), 1e−5), and s_j = max(a_j, 1e−5) where w_j = 0
// α ∈ [0, 1] (default 0.5; README values 0.8–0.9 for Llama) may be overridden per call. The powers
// are evaluated in double and s is rounded to float once (the model dtype here) before folding.
// Folding (fold_scales in model/layer_group.hpp): γ_j ← γ_j / s_j, W^f[:, j] ← W^f[:, j] · s_j, so the
// float function is unchanged; the activations the linears see become x_j / s_j (outlier channels
// shrink), and their weights' columns grow by s_j.
// W8A8 (docs/algorithms.md#w8a8) then quantizes weights per output channel (symmetric absmax, q_max = 127) and
// activations per token, dynamically, at run time (model runtime's input-quantizing LinearOp);
// fake_quantize_per_token / fake_quantize_per_channel below are the same math for tests.
// If the Hessian of the group's input was accumulated before smoothing, smooth_hessian turns it
// into the Hessian of the smoothed input: H ← S⁻¹ H S⁻¹ (docs/algorithms.md#statistics-after-smoothing).
// Smooth::apply works on any block and group that model the ScaleGroup concept (quant/scale_group.hpp);
// include model/layer_group.hpp for a Llama block's groups (LayerGroup, llama_smooth_groups).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/scale_group.hpp"

namespace sparq {

enum class SmoothStatistic : std::uint8_t {
  absmax,  ///< max |x_j| and max |W| (SmoothQuant reference)
  range    ///< max x_j − min x_j and 2·max |W| (llm-compressor)
};

struct SmoothOptions {
  float alpha = 0.5f;                                ///< migration strength α ∈ [0, 1]
  SmoothStatistic statistic = SmoothStatistic::absmax;
};

namespace detail {
inline void smooth_check_alpha(float alpha) {
  SPARQ_CHECK(std::isfinite(alpha) && alpha >= 0.0f && alpha <= 1.0f, "Smooth: alpha = ", alpha,
              ", expected a value in [0, 1]");
}
inline void smooth_check_stat(std::span<const float> a, std::size_t cin, const char* what) {
  SPARQ_CHECK(a.size() == cin, "Smooth: ", what, " has ", a.size(), " channels, expected cin = ", cin);
  for (std::size_t j = 0; j < cin; ++j)
    SPARQ_CHECK(std::isfinite(a[j]) && a[j] >= 0.0f, "Smooth: ", what, " value ", a[j],
                " at channel ", j, ", expected a finite non-negative statistic");
}
/// max over linears and rows of |W_kj| per column j.
inline std::vector<float> weight_col_absmax(std::span<const MatrixView<const float>> ws) {
  SPARQ_CHECK(!ws.empty(), "Smooth: no linears in the group");
  const std::size_t cin = ws[0].cols();
  std::vector<float> m(cin, 0.0f);
  for (const auto& w : ws) {
    SPARQ_CHECK(w.cols() == cin, "Smooth: a linear of the group has cin = ", w.cols(), ", expected ", cin);
    for (std::size_t r = 0; r < w.rows(); ++r) {
      const float* row = w.row(r);
      for (std::size_t j = 0; j < cin; ++j) {
        SPARQ_CHECK(std::isfinite(row[j]), "Smooth: non-finite weight ", row[j], " at (", r, ", ", j, ")");
        m[j] = std::max(m[j], std::fabs(row[j]));
      }
    }
  }
  return m;
}
}  // namespace detail

/// SmoothQuant's s from max|x| (absmax statistic) and the group's weights.
[[nodiscard]] inline std::vector<float> smooth_scales_absmax(std::span<const float> act_absmax,
                                                             std::span<const MatrixView<const float>> weights,
                                                             float alpha) {
  detail::smooth_check_alpha(alpha);
  const auto wmax = detail::weight_col_absmax(weights);
  detail::smooth_check_stat(act_absmax, wmax.size(), "activation abs-max");
  std::vector<float> s(wmax.size());
  for (std::size_t j = 0; j < s.size(); ++j) {
    const double w = std::max(static_cast<double>(wmax[j]), 1e-5);
    const double v = std::pow(static_cast<double>(act_absmax[j]), alpha) / std::pow(w, 1.0 - alpha);
    s[j] = static_cast<float>(std::max(v, 1e-5));
  }
  return s;
}

/// llm-compressor's s from the activation range (max − min) and 2·max|W|.
[[nodiscard]] inline std::vector<float> smooth_scales_range(std::span<const float> act_min,
                                                            std::span<const float> act_max,
                                                            std::span<const MatrixView<const float>> weights,
                                                            float alpha) {
  detail::smooth_check_alpha(alpha);
  const auto wmax = detail::weight_col_absmax(weights);
  const std::size_t cin = wmax.size();
  SPARQ_CHECK(act_min.size() == cin && act_max.size() == cin, "Smooth: activation min/max have ",
              act_min.size(), "/", act_max.size(), " channels, expected cin = ", cin);
  std::vector<float> s(cin);
  for (std::size_t j = 0; j < cin; ++j) {
    SPARQ_CHECK(std::isfinite(act_min[j]) && std::isfinite(act_max[j]) && act_max[j] >= act_min[j],
                "Smooth: activation range [", act_min[j], ", ", act_max[j], "] at channel ", j,
                ", expected finite min <= max");
    const double a = static_cast<double>(act_max[j]) - act_min[j];
    const double w = 2.0 * wmax[j];
    const double v = w == 0.0 ? a : std::pow(a, alpha) / std::pow(w, 1.0 - alpha);
    s[j] = static_cast<float>(std::max(v, 1e-5));
  }
  return s;
}

/// H ← S⁻¹ H S⁻¹ (H of the unsmoothed input → H of x / s). Throws on a size mismatch.
inline void smooth_hessian(MatrixView<float> h, std::span<const float> s) {
  SPARQ_CHECK(h.rows() == s.size() && h.cols() == s.size(), "smooth_hessian: H is ", h.rows(), "x",
              h.cols(), ", expected ", s.size(), "x", s.size());
  for (std::size_t i = 0; i < s.size(); ++i)
    for (std::size_t j = 0; j < s.size(); ++j) h(i, j) = h(i, j) / s[i] / s[j];
}

/// The SmoothQuant stage.
class Smooth {
 public:
  Smooth() = default;
  explicit Smooth(SmoothOptions opt) : opt_(opt) { detail::smooth_check_alpha(opt.alpha); }

  [[nodiscard]] const SmoothOptions& options() const noexcept { return opt_; }

  /// s for a group from max|x| (absmax statistic; alpha overrides the option when given).
  [[nodiscard]] std::vector<float> scales(const ColumnAbsMax& act,
                                          std::span<const MatrixView<const float>> weights,
                                          std::optional<float> alpha = std::nullopt) const {
    SPARQ_CHECK(opt_.statistic == SmoothStatistic::absmax,
                "Smooth: the range statistic needs ColumnMinMax, got ColumnAbsMax");
    SPARQ_CHECK(act.tokens() > 0, "Smooth: the activation statistic saw no tokens");
    return smooth_scales_absmax(act.values(), weights, alpha.value_or(opt_.alpha));
  }
  /// s for a group from per-channel min/max (range statistic; with the absmax option the abs-max
  /// max(|min|, |max|) is used instead).
  [[nodiscard]] std::vector<float> scales(const ColumnMinMax& act,
                                          std::span<const MatrixView<const float>> weights,
                                          std::optional<float> alpha = std::nullopt) const {
    SPARQ_CHECK(act.tokens() > 0, "Smooth: the activation statistic saw no tokens");
    const float a = alpha.value_or(opt_.alpha);
    if (opt_.statistic == SmoothStatistic::range)
      return smooth_scales_range(act.min(), act.max(), weights, a);
    std::vector<float> am(act.channels());
    for (std::size_t j = 0; j < am.size(); ++j)
      am[j] = std::max(std::fabs(act.min()[j]), std::fabs(act.max()[j]));
    return smooth_scales_absmax(am, weights, a);
  }

  /// Smooths one group of a block in place (e.g. a model::LlamaBlock and a LayerGroup of
  /// llama_smooth_groups(), model/layer_group.hpp) given the statistic of the group's input
  /// (ColumnAbsMax or ColumnMinMax collected at the norm's output); returns s.
  template <class Block, class Group, class Stat>
    requires ScaleGroup<Block, Group>
  std::vector<float> apply(Block& blk, const Group& g, const Stat& act,
                           std::optional<float> alpha = std::nullopt) const {
    SPARQ_CHECK(g.from_norm(), "Smooth: group ", g.name(),
                " is fed by a linear; SmoothQuant folds only into norms (rms_att, rms_ffn)");
    const std::size_t cin = group_channels(std::as_const(blk), g);
    SPARQ_CHECK(act.channels() == cin, "Smooth: statistic for group ", g.name(), " has ",
                act.channels(), " channels, expected cin = ", cin);
    std::vector<MatrixView<const float>> ws;
    for (const auto& l : g.linears) ws.push_back(std::as_const(blk).linear(l).view());
    auto s = scales(act, ws, alpha);
    fold_scales(blk, g, s);
    return s;
  }

 private:
  SmoothOptions opt_{};
};

/// Per-token dynamic symmetric fake quantization of activations (docs/algorithms.md#w8a8): for each row x,
/// Δ = max(max|x|, 1e−5)/q_max, x̂ = clamp(nearbyint(x/Δ), −q_max, q_max)·Δ, q_max = 2^(b−1) − 1.
[[nodiscard]] inline Matrix<float> fake_quantize_per_token(MatrixView<const float> x, int bits = 8) {
  SPARQ_CHECK(bits >= 2 && bits <= 16, "fake_quantize_per_token: bits = ", bits, ", expected 2..16");
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  Matrix<float> out(x.rows(), x.cols());
  for (std::size_t t = 0; t < x.rows(); ++t) {
    const float* r = x.row(t);
    float amax = 0.0f;
    for (std::size_t j = 0; j < x.cols(); ++j) amax = std::max(amax, std::fabs(r[j]));
    const float d = std::max(amax, 1e-5f) / qmax;
    for (std::size_t j = 0; j < x.cols(); ++j)
      out(t, j) = std::clamp(std::nearbyint(r[j] / d), -qmax, qmax) * d;
  }
  return out;
}

/// Per-output-channel symmetric absmax fake quantization of weights (docs/algorithms.md#w8a8, same formula per row).
[[nodiscard]] inline Matrix<float> fake_quantize_per_channel(MatrixView<const float> w, int bits = 8) {
  return fake_quantize_per_token(w, bits);
}

}  // namespace sparq
