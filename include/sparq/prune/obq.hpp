// obq_quantize: mask-preserving GPTQ on each row's kept weights, on sparq's symmetric RTN grid
// (the grid of Quantizer<Symmetric, PerChannel | PerGroup<G>, B> and of the packed int8 / int4 ops).
//
// Maths (docs/reconstruction.md#quantizing-the-kept-weights-obq): for one row w with kept set K (its
// non-zeros), the layer loss (w' − w)ᵀ H (w' − w) over w' supported on K is minimised greedily in
// column order, as GPTQ does, but on H_KK alone: with Hi = (H_KK)⁻¹ (dampened H as ExactOBS), for
// each kept column j in order, q_j = RTN(w_j), the not yet quantized kept weights absorb the error,
//   w_K ← w_K − ((w_j − q_j) / Hi_jj) · Hi[:, j],   Hi ← Hi − Hi[:, j] Hi[j, :] / Hi_jj.
// Pruned weights stay exactly 0 and receive no update (SparseGPT's joint sweep instead pushes
// error into columns it then zeroes). Grid: symmetric, s = max(absmax, 1e−5)/qmax, qmax = 2^(B−1) − 1,
// x̂ = s·nearbyint(clamp(x/s, −qmax, qmax)) with the float arithmetic of quant::GroupCoder; per
// channel, s comes from the row before the sweep; per group of G inputs (a shorter last group when
// G does not divide cin, as the Quantizer stage's tail_group), s comes from the group's current
// (already compensated) weights when the sweep reaches the group's first kept column, as GPTQ's
// dynamic groups. A weight may round to 0 (the mask only grows). Deterministic, double precision.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/prune/exact_obs.hpp"

namespace sparq {

struct ObqOptions {
  int bits = 8;                ///< 2..8
  std::size_t group_size = 0;  ///< inputs per scale (0 = one scale per output row)
  double dampening = 0.01;     ///< H_ii += dampening·mean(diag H)
  int cholesky_retries = 3;

  void validate() const {
    SPARQ_CHECK(bits >= 2 && bits <= 8, "ObqOptions: bits = ", bits, ", expected 2..8");
    SPARQ_CHECK(std::isfinite(dampening) && dampening >= 0.0, "ObqOptions: dampening = ", dampening,
                ", expected a finite value >= 0");
    SPARQ_CHECK(cholesky_retries >= 0, "ObqOptions: cholesky_retries = ", cholesky_retries, ", expected >= 0");
  }
};

namespace obq_detail {
struct SymGrid {
  float scale = 1.0f, inv = 1.0f, qmax = 127.0f;
  void fit(float absmax) {
    scale = std::max(absmax, 1e-5f) / qmax;
    inv = 1.0f / scale;
  }
  [[nodiscard]] float operator()(float x) const noexcept {
    return scale * std::nearbyint(std::min(std::max(x * inv, -qmax), qmax));
  }
};
}  // namespace obq_detail

/// Quantizes w (cout x cin) in place; h is the cin x cin Hessian of its input. Zeros stay zero.
inline void obq_quantize(MatrixView<float> w, MatrixView<const float> h, const ObqOptions& o) {
  o.validate();
  const std::size_t rows = w.rows(), n = w.cols();
  SPARQ_CHECK(h.rows() == n && h.cols() == n, "obq_quantize: Hessian is ", h.rows(), "x", h.cols(),
              ", expected cin x cin = ", n, "x", n);
  for (std::size_t i = 0; i < n; ++i) check_finite(h.row(i), n, "obq_quantize: Hessian");
  prune_detail::check_weights(w, "obq_quantize");
  const auto inv = obs_detail::damped_inverse(h, o.dampening, o.cholesky_retries, "obq_quantize");
  const std::size_t G = o.group_size == 0 || o.group_size >= n ? n : o.group_size;
  obq_detail::SymGrid grid;
  grid.qmax = static_cast<float>((1 << (o.bits - 1)) - 1);
  std::vector<std::size_t> kept;
  std::vector<double> hk, wk;
  for (std::size_t r = 0; r < rows; ++r) {
    float* wr = w.row(r);
    kept.clear();
    for (std::size_t c = 0; c < n; ++c)
      if (wr[c] != 0.0f) kept.push_back(c);
    const std::size_t k = kept.size();
    if (k == 0) continue;
    hk.assign(k * k, 0.0);
    for (std::size_t a = 0; a < k; ++a)
      for (std::size_t b = 0; b < k; ++b) hk[a * k + b] = inv.h[kept[a] * n + kept[b]];
    SPARQ_CHECK(obs_detail::spd_inverse(hk, k), "obq_quantize: the kept-set Hessian of row ", r,
                " is not positive definite");
    wk.resize(k);
    for (std::size_t a = 0; a < k; ++a) wk[a] = wr[kept[a]];
    std::size_t group = n;  // current group index (n = none yet)
    if (G == n) {
      float am = 0.0f;
      for (std::size_t c = 0; c < n; ++c) am = std::max(am, std::fabs(wr[c]));
      grid.fit(am);
      group = 0;
    }
    for (std::size_t a = 0; a < k; ++a) {
      const std::size_t c = kept[a];
      if (c / G != group) {  // first kept column of a new group: fit its scale on the current weights
        group = c / G;
        float am = 0.0f;
        for (std::size_t b = a; b < k && kept[b] / G == group; ++b) am = std::max(am, std::fabs(static_cast<float>(wk[b])));
        grid.fit(am);
      }
      const float x = static_cast<float>(wk[a]);
      const float q = grid(x);
      const double d = hk[a * k + a];
      const double e = (static_cast<double>(x) - q) / d;
      wr[c] = q;
      for (std::size_t b = a + 1; b < k; ++b) wk[b] -= e * hk[b * k + a];
      for (std::size_t i = a + 1; i < k; ++i) {
        const double ci = hk[i * k + a] / d;
        if (ci == 0.0) continue;
        double* hr = hk.data() + i * k;
        for (std::size_t j = a + 1; j < k; ++j) hr[j] -= ci * hk[a * k + j];
      }
    }
  }
}

}  // namespace sparq
