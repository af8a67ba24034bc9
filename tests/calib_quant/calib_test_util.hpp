// Shared helpers of the calibration-quantization tests: synthetic outlier activations, layer errors, RTN.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"

namespace calib_test {

using sparq::Matrix;

/// Outlier-heavy activations (tokens x cin), the generator every test states:
///   Z ~ N(0, 1) iid; X = Z · (I + 0.5·R/√cin) with R ~ N(0, 1) (correlated channels, so the Hessian
///   is far from diagonal); then every channel j with j % outlier_every == outlier_phase is
///   multiplied by `outlier_scale` (a few huge channels, like LLM activation outliers).
inline Matrix<float> outlier_activations(std::size_t tokens, std::size_t cin, unsigned seed,
                                         std::size_t outlier_every = 16, float outlier_scale = 20.0f,
                                         std::size_t outlier_phase = 3) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Matrix<float> z(tokens, cin), mix(cin, cin);
  for (auto& v : z.storage()) v = nd(rng);
  const float k = 0.5f / std::sqrt(static_cast<float>(cin));
  for (std::size_t i = 0; i < cin; ++i)
    for (std::size_t j = 0; j < cin; ++j) mix(i, j) = (i == j ? 1.0f : 0.0f) + k * nd(rng);
  Matrix<float> x(tokens, cin);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < cin; ++i) {
      const float zi = z(t, i);
      for (std::size_t j = 0; j < cin; ++j) x(t, j) += zi * mix(i, j);
    }
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t j = 0; j < cin; ++j)
      if (outlier_every && j % outlier_every == outlier_phase) x(t, j) *= outlier_scale;
  return x;
}

inline Matrix<float> random_matrix(std::size_t rows, std::size_t cols, unsigned seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  Matrix<float> m(rows, cols);
  for (auto& v : m.storage()) v = nd(rng);
  return m;
}

/// ‖X Aᵀ − X Bᵀ‖_F² in double (A, B: cout x cin; X: tokens x cin).
inline double output_error(const Matrix<float>& x, sparq::MatrixView<const float> a,
                           sparq::MatrixView<const float> b) {
  double err = 0.0;
  for (std::size_t t = 0; t < x.rows(); ++t)
    for (std::size_t o = 0; o < a.rows(); ++o) {
      double d = 0.0;
      for (std::size_t j = 0; j < x.cols(); ++j)
        d += static_cast<double>(x(t, j)) * (static_cast<double>(a(o, j)) - b(o, j));
      err += d * d;
    }
  return err;
}

/// XᵀX in double (cin x cin), for fast repeated output errors.
inline Matrix<double> gram_of(const Matrix<float>& x) {
  const std::size_t n = x.cols();
  Matrix<double> g(n, n);
  for (std::size_t t = 0; t < x.rows(); ++t)
    for (std::size_t i = 0; i < n; ++i) {
      const double xi = x(t, i);
      for (std::size_t j = 0; j < n; ++j) g(i, j) += xi * x(t, j);
    }
  return g;
}

/// ‖X Aᵀ − X Bᵀ‖_F² = Σ_o d_oᵀ (XᵀX) d_o with d_o = a_o − b_o (same quantity as output_error).
inline double output_error_gram(const Matrix<double>& g, sparq::MatrixView<const float> a,
                                sparq::MatrixView<const float> b) {
  const std::size_t n = a.cols();
  std::vector<double> d(n);
  double err = 0.0;
  for (std::size_t o = 0; o < a.rows(); ++o) {
    for (std::size_t j = 0; j < n; ++j) d[j] = static_cast<double>(a(o, j)) - b(o, j);
    for (std::size_t i = 0; i < n; ++i) {
      double gi = 0.0;
      for (std::size_t j = 0; j < n; ++j) gi += g(i, j) * d[j];
      err += d[i] * gi;
    }
  }
  return err;
}

inline sparq::HessianAccumulator hessian_of(const Matrix<float>& x) {
  sparq::HessianAccumulator acc(x.cols());
  acc.add(x.view());
  return acc;
}

/// Independent scalar statement of GPTQ's grid (docs/algorithms.md#gptq-grid, no MSE): returns (scale, zero).
inline std::pair<float, float> gptq_grid(const float* x, std::size_t n, int bits, bool sym) {
  const float maxq = static_cast<float>((1 << bits) - 1);
  float lo = 0.0f, hi = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (sym) {
    hi = std::max(-lo, hi);
    if (lo < 0) lo = -hi;
  }
  if (lo == 0.0f && hi == 0.0f) {
    lo = -1.0f;
    hi = 1.0f;
  }
  const float scale = (hi - lo) / maxq;
  const float zero = sym ? (maxq + 1.0f) / 2.0f : std::nearbyint(-lo / scale);
  return {scale, zero};
}

/// Round-to-nearest with GPTQ's grid per row (group = 0) or per group: the baseline.
inline Matrix<float> rtn(const Matrix<float>& w, int bits, bool sym, std::size_t group) {
  const float maxq = static_cast<float>((1 << bits) - 1);
  Matrix<float> out(w.rows(), w.cols());
  const std::size_t g = group ? group : w.cols();
  for (std::size_t r = 0; r < w.rows(); ++r)
    for (std::size_t c0 = 0; c0 < w.cols(); c0 += g) {
      const auto [s, z] = gptq_grid(w.row(r) + c0, g, bits, sym);
      for (std::size_t c = c0; c < c0 + g; ++c) {
        const float u = std::clamp(std::nearbyint(w(r, c) / s) + z, 0.0f, maxq);
        out(r, c) = s * (u - z);
      }
    }
  return out;
}

}  // namespace calib_test
