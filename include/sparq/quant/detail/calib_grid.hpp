// Private min-max integer grids of the calibration stages: GPTQ's and AWQ's
// (docs/algorithms.md#gptq-grid, docs/algorithms.md#awq-grid).
//
// Both map a real x to an unsigned code u ∈ [0, maxq], maxq = 2^b − 1, and back:
//     u = clamp(nearbyint(x / Δ) + z, 0, maxq),   x̂ = Δ · (u − z)
// GPTQ (`fit_gptq`): the range always contains 0 (xmin = min(min x, 0), xmax = max(max x, 0));
//   asymmetric z = nearbyint(−xmin/Δ); symmetric uses xmax = max(|xmin|, xmax), the full grid
//   Δ = 2·xmax/maxq and the constant zero (maxq + 1)/2; a degenerate all-zero range becomes [−1, 1].
//   Because z is an integer in [0, maxq], an exact 0 quantizes to exactly 0 (sparsity survives).
//   Optional MSE clip search (docs/algorithms.md#mse-clip-search): shrink both bounds by p = 1 − i/grid for
//   i < floor(maxshrink·grid), keep the lowest Σ|x̂ − x|^norm (ties keep the earlier candidate).
// AWQ (`fit_awq`): range NOT forced to contain 0; Δ = max(mx − mn, 1e−5)/maxq,
//   z = clamp(−nearbyint(mn/Δ), 0, maxq). Rounding is half-to-even (std::nearbyint) everywhere.
// Division x/Δ is used (as the references do), not a multiplication by 1/Δ.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace sparq::detail::calib {

/// Scale and zero point of one grid (one row, or one group of a row).
struct GridParams {
  float scale = 1.0f;
  float zero = 0.0f;  ///< integer-valued, in [0, maxq]
};

/// Options of the GPTQ grid (docs/algorithms.md#gptq-grid).
struct GptqGridSpec {
  int bits = 4;
  bool symmetric = false;
  bool mse = false;
  int mse_grid = 100;
  float mse_maxshrink = 0.8f;
  float mse_norm = 2.4f;
  [[nodiscard]] int maxq() const noexcept { return (1 << bits) - 1; }
};

[[nodiscard]] inline std::uint8_t quantize_code(float x, GridParams p, float maxq) noexcept {
  const float u = std::clamp(std::nearbyint(x / p.scale) + p.zero, 0.0f, maxq);
  return static_cast<std::uint8_t>(u);
}
[[nodiscard]] inline float dequantize_code(std::uint8_t u, GridParams p) noexcept {
  return p.scale * (static_cast<float>(u) - p.zero);
}
[[nodiscard]] inline float fake_quantize(float x, GridParams p, float maxq) noexcept {
  return dequantize_code(quantize_code(x, p, maxq), p);
}

/// GPTQ parameters from the bounds [xmin, xmax] (already containing 0).
[[nodiscard]] inline GridParams gptq_params_from_range(float xmin, float xmax,
                                                       const GptqGridSpec& s) noexcept {
  const float maxq = static_cast<float>(s.maxq());
  if (s.symmetric) {
    xmax = std::max(std::fabs(xmin), xmax);
    if (xmin < 0.0f) xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) {
    xmin = -1.0f;
    xmax = 1.0f;
  }
  GridParams p;
  p.scale = (xmax - xmin) / maxq;
  p.zero = s.symmetric ? (maxq + 1.0f) / 2.0f : std::nearbyint(-xmin / p.scale);
  return p;
}

/// Fits the GPTQ grid to x[0], x[stride], ..., x[(n−1)·stride].
[[nodiscard]] inline GridParams fit_gptq(const float* x, std::size_t n, std::size_t stride,
                                         const GptqGridSpec& s) noexcept {
  float xmin = 0.0f, xmax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    xmin = std::min(xmin, x[i * stride]);
    xmax = std::max(xmax, x[i * stride]);
  }
  GridParams best = gptq_params_from_range(xmin, xmax, s);
  if (!s.mse) return best;
  const float maxq = static_cast<float>(s.maxq());
  const int steps = static_cast<int>(std::floor(s.mse_maxshrink * static_cast<float>(s.mse_grid)));
  double best_err = std::numeric_limits<double>::infinity();
  for (int i = 0; i < steps; ++i) {
    const float p = 1.0f - static_cast<float>(i) / static_cast<float>(s.mse_grid);
    GridParams c = gptq_params_from_range(p * xmin, p * xmax, s);
    if (s.symmetric) c.zero = (maxq + 1.0f) / 2.0f;
    double err = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      const float v = x[k * stride];
      err += std::pow(static_cast<double>(std::fabs(fake_quantize(v, c, maxq) - v)),
                      static_cast<double>(s.mse_norm));
    }
    if (err < best_err) {
      best_err = err;
      best = c;
    }
  }
  return best;
}

/// AWQ's pseudo_quantize_tensor parameters (zero_point = true) for x[0..n).
[[nodiscard]] inline GridParams fit_awq(const float* x, std::size_t n, int bits) noexcept {
  float mn = x[0], mx = x[0];
  for (std::size_t i = 1; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  const float maxq = static_cast<float>((1 << bits) - 1);
  GridParams p;
  p.scale = std::max(mx - mn, 1e-5f) / maxq;
  p.zero = std::clamp(-std::nearbyint(mn / p.scale), 0.0f, maxq);
  return p;
}

/// AWQ's symmetric variant (zero_point = false; marked unused upstream, kept for completeness):
/// Δ = max(max|x|, 1e−5)/(2^(b−1) − 1), codes in [−2^(b−1), 2^(b−1) − 1] stored with zero 2^(b−1).
[[nodiscard]] inline GridParams fit_awq_symmetric(const float* x, std::size_t n, int bits) noexcept {
  float amax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  GridParams p;
  p.scale = std::max(amax, 1e-5f) / static_cast<float>((1 << (bits - 1)) - 1);
  p.zero = static_cast<float>(1 << (bits - 1));
  return p;
}

}  // namespace sparq::detail::calib
