// Run-time quantization: sparq::quant::fit / quantize / dequantize / fake_quantize for a QuantConfig.
//
// This is the core every Quantizer<Scheme, Granularity, Bits, Calibrator> compiles down to. Rows
// are processed one at a time: the row's ranges are computed (SIMD abs-max or min/max per group,
// then the scalar scale formula of quant/scheme.hpp), then its codes (SIMD multiply by 1/scale,
// clamp, round half to even, narrow, pack), so the row is still in L1 for the second pass.
// Inputs are validated (shape, finiteness, bit width, group size) and errors name the value.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/dequantize.hpp"
#include "sparq/kernels/pack.hpp"
#include "sparq/kernels/quantize.hpp"
#include "sparq/quant/fp8_e4m3.hpp"
#include "sparq/quant/nf4.hpp"
#include "sparq/quant/quant_config.hpp"
#include "sparq/quant/quant_params.hpp"
#include "sparq/quant/quantized_tensor.hpp"

namespace sparq::quant {

namespace detail {

/// A scale and (Asymmetric) zero point of one group.
struct ScaleZero {
  float scale = 1.0f;
  std::uint8_t zero = 0;
};

/// Contiguous pieces of one group (one piece for row groups, one per row for PerTensor).
struct Piece {
  const float* p;
  std::size_t n;
};

/// Throws unless w is non-empty (finiteness is checked row by row with check_row).
inline void check_shape(MatrixView<const float> w, const char* who) {
  SPARQ_CHECK(!w.empty(), who, ": empty matrix ", w.rows(), "x", w.cols(),
              " (expected at least one row and one column)");
  SPARQ_CHECK(w.data() != nullptr, who, ": null data for a ", w.rows(), "x", w.cols(), " matrix");
}

/// Throws naming the row and column of the first NaN/Inf of row r.
inline void check_row(MatrixView<const float> w, std::size_t r, const char* who) {
  const float* x = w.row(r);
  if (kernels::all_finite(x, w.cols())) return;
  for (std::size_t c = 0; c < w.cols(); ++c) {
    if (!std::isfinite(x[c])) {
      sparq::detail::fail(who, ": non-finite value ", x[c], " at row ", r, ", column ", c,
                          " (expected finite weights/activations)");
    }
  }
}

inline void check_input(MatrixView<const float> w, const char* who) {
  check_shape(w, who);
  for (std::size_t r = 0; r < w.rows(); ++r) check_row(w, r, who);
}

/// Scale from an abs-max (Symmetric, NF4, FP8), following quant/scheme.hpp.
[[nodiscard]] inline ScaleZero from_absmax(const QuantConfig& c, float a) noexcept {
  ScaleZero s;
  switch (c.scheme) {
    case SchemeKind::symmetric:
      if (c.options.full_range) {
        const float m = a > 0.0f ? a : 1.0f;  // GPTQ degenerate range [−1, 1]
        s.scale = std::max((m + m) / static_cast<float>((1 << c.bits) - 1), FLT_MIN);
      } else {
        s.scale = std::max(a, 1e-5f) / static_cast<float>((1 << (c.bits - 1)) - 1);
      }
      break;
    case SchemeKind::nf4:
      s.scale = a > 0.0f ? std::max(a, FLT_MIN) : 1.0f;
      break;
    case SchemeKind::fp8_e4m3:
      s.scale = a > 0.0f ? std::max(a / fp8::e4m3_max, FLT_MIN) : 1.0f;
      break;
    case SchemeKind::asymmetric:  // not reached: asymmetric goes through from_minmax
      break;
  }
  return s;
}

/// Scale and zero from a min/max (Asymmetric: the range is widened to contain 0;
/// docs/algorithms.md#symmetric-and-asymmetric-grids).
[[nodiscard]] inline ScaleZero from_minmax(const QuantConfig& c, float mn, float mx) noexcept {
  ScaleZero s;
  float inv = 0.0f;
  kernels::asymmetric_params_scalar(&mn, &mx, 1, static_cast<float>((1 << c.bits) - 1), &s.scale, &inv, &s.zero);
  return s;
}

/// Fake-quantizes one value with a group's parameters: exactly what quantize + dequantize give.
struct GroupCoder {
  SchemeKind scheme;
  float scale, inv, flo, fhi;
  GroupCoder(const QuantParams& p, ScaleZero sz) noexcept
      : scheme(p.config.scheme), scale(sz.scale), inv(1.0f / sz.scale), flo(0), fhi(0) {
    const int z = p.config.scheme == SchemeKind::asymmetric ? sz.zero : p.symmetric_zero();
    flo = static_cast<float>(p.code_lo() - z);
    fhi = static_cast<float>(p.code_hi() - z);
  }
  [[nodiscard]] float operator()(float x) const noexcept {
    switch (scheme) {
      case SchemeKind::nf4:
        return scale * nf4::decode(nf4::encode(std::min(std::max(x * inv, -1.0f), 1.0f)));
      case SchemeKind::fp8_e4m3:
        return scale * fp8::decode_e4m3(fp8::encode_e4m3(x * inv));
      default:
        return scale * std::nearbyint(std::min(std::max(x * inv, flo), fhi));
    }
  }
};

/// Σ |x̂ − x|^norm over a group (double, in element order).
[[nodiscard]] inline double group_error(const QuantParams& p, std::span<const Piece> g, ScaleZero sz,
                                        double norm) {
  const GroupCoder f(p, sz);
  double e = 0.0;
  for (const Piece& pc : g) {
    for (std::size_t i = 0; i < pc.n; ++i) {
      const double d = std::fabs(static_cast<double>(f(pc.p[i])) - static_cast<double>(pc.p[i]));
      e += norm == 2.0 ? d * d : std::pow(d, norm);
    }
  }
  return e;
}

/// Calibrated scale/zero of one group (any calibrator).
[[nodiscard]] inline ScaleZero calibrate(const QuantParams& p, std::span<const Piece> g,
                                         std::vector<float>& scratch) {
  const QuantConfig& c = p.config;
  const bool asym = c.scheme == SchemeKind::asymmetric;
  float mn = g[0].p[0], mx = g[0].p[0], a = 0.0f;
  for (const Piece& pc : g) {
    for (std::size_t i = 0; i < pc.n; ++i) {
      mn = std::min(mn, pc.p[i]);
      mx = std::max(mx, pc.p[i]);
      a = std::max(a, std::fabs(pc.p[i]));
    }
  }
  switch (c.calibrator) {
    case CalibratorKind::minmax:
      return asym ? from_minmax(c, mn, mx) : from_absmax(c, a);
    case CalibratorKind::percentile: {
      scratch.clear();
      for (const Piece& pc : g)
        for (std::size_t i = 0; i < pc.n; ++i) scratch.push_back(std::fabs(pc.p[i]));
      const double rank = std::ceil(static_cast<double>(c.options.percentile) / 100.0 *
                                    static_cast<double>(scratch.size()));
      const std::size_t k = static_cast<std::size_t>(std::clamp(rank, 1.0, double(scratch.size()))) - 1;
      std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(k), scratch.end());
      const float clip = scratch[k];
      return asym ? from_minmax(c, std::max(mn, -clip), std::min(mx, clip)) : from_absmax(c, clip);
    }
    case CalibratorKind::mse_clip: {
      // docs/algorithms.md#mse-clip-search. The degenerate range is fixed first, as the reference does.
      float lo = std::min(mn, 0.0f), hi = std::max(mx, 0.0f);
      if (lo == 0.0f && hi == 0.0f) {
        lo = -1.0f;
        hi = 1.0f;
      }
      const int grid = c.options.mse_grid;
      const int steps = static_cast<int>(std::floor(static_cast<double>(c.options.mse_maxshrink) * grid));
      ScaleZero best = asym ? from_minmax(c, lo, hi) : from_absmax(c, a);
      double best_err = group_error(p, g, best, c.options.mse_norm);
      for (int i = 1; i < steps; ++i) {
        const float shrink = static_cast<float>(1.0 - static_cast<double>(i) / grid);
        const ScaleZero cand = asym ? from_minmax(c, shrink * lo, shrink * hi) : from_absmax(c, shrink * a);
        const double err = group_error(p, g, cand, c.options.mse_norm);
        if (err < best_err) {
          best_err = err;
          best = cand;
        }
      }
      return best;
    }
  }
  return {};
}

/// True when fit_row checks finiteness itself (abs-max based MinMax: the integer abs-max does it).
[[nodiscard]] inline bool fit_row_checks_finite(const QuantConfig& c) noexcept {
  return c.calibrator == CalibratorKind::minmax && c.scheme != SchemeKind::asymmetric;
}

/// Fits the parameters of row r (row granularities) into p; fills inv[g] = 1/scale[g]. Returns
/// false if it saw a NaN/Inf (only detected when fit_row_checks_finite; others must check first).
inline bool fit_row(QuantParams& p, std::size_t r, const float* x, float* inv, std::vector<float>& tmp,
                    std::vector<float>& scratch) {
  const QuantConfig& c = p.config;
  const std::size_t n = p.cols, G = p.group(), ng = p.groups_per_row;
  float* scale = p.row_scales(r);
  std::uint8_t* zero = p.row_zeros(r);
  if (c.calibrator == CalibratorKind::minmax) {
    tmp.resize(2 * ng);
    if (c.scheme == SchemeKind::asymmetric) {
      kernels::group_minmax(x, n, G, tmp.data(), tmp.data() + ng);
      kernels::asymmetric_params(tmp.data(), tmp.data() + ng, ng, static_cast<float>((1 << c.bits) - 1),
                                 scale, inv, zero);
      return true;
    } else {
      if (!kernels::group_absmax(x, n, G, tmp.data())) return false;
      if (c.scheme == SchemeKind::symmetric && !c.options.full_range) {
        kernels::symmetric_scales(tmp.data(), ng, static_cast<float>((1 << (c.bits - 1)) - 1), scale, inv);
        return true;
      }
      for (std::size_t g = 0; g < ng; ++g) scale[g] = from_absmax(c, tmp[g]).scale;
    }
  } else {
    for (std::size_t g = 0; g < ng; ++g) {
      const Piece pc{x + g * G, std::min(G, n - g * G)};
      const ScaleZero sz = calibrate(p, std::span<const Piece>(&pc, 1), scratch);
      scale[g] = sz.scale;
      if (zero) zero[g] = sz.zero;
    }
  }
  for (std::size_t g = 0; g < ng; ++g) inv[g] = 1.0f / scale[g];
  return true;
}

/// Encodes row r of a tensor whose parameters are set; inv = 1/scale per group of the row.
inline void encode_row(QuantizedTensor& q, std::size_t r, const float* x, const float* inv,
                       std::vector<std::uint8_t>& ubuf, const float* prefetch = nullptr) {
  const QuantParams& p = q.params();
  const std::size_t n = p.cols, G = p.group();
  const unsigned bits = static_cast<unsigned>(p.bits());
  std::uint8_t* out = q.row_codes(r);
  std::uint8_t* u = bits == 8 ? out : (ubuf.resize(n), ubuf.data());
  switch (p.config.scheme) {
    case SchemeKind::symmetric:
    case SchemeKind::asymmetric:
      kernels::quantize_codes(x, n, G, inv, p.row_zeros(r), p.symmetric_zero(), p.code_lo(),
                              p.code_hi(), p.signed_codes(), u, prefetch);
      break;
    case SchemeKind::nf4:  // nearest level, the same rule as nf4::encode
      kernels::table16_codes(x, n, G, inv, nf4::midpoints.data(), u);
      break;
    case SchemeKind::fp8_e4m3:
      for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += G) {
        const float s = inv[g];
        for (std::size_t i = i0, i1 = std::min(n, i0 + G); i < i1; ++i) u[i] = fp8::encode_e4m3(x[i] * s);
      }
      break;
  }
  if (bits != 8) kernels::pack_codes(u, n, bits, out);
}

}  // namespace detail

/// Fits scales (and zero points) of w under cfg. Throws sparq::error on bad config or input.
[[nodiscard]] inline QuantParams fit(MatrixView<const float> w, const QuantConfig& cfg) {
  cfg.validate();
  detail::check_input(w, "quant::fit");
  QuantParams p = QuantParams::make(cfg, w.rows(), w.cols());
  std::vector<float> tmp, scratch, inv(p.groups_per_row);
  if (cfg.granularity == GranularityKind::per_tensor && cfg.calibrator == CalibratorKind::minmax) {
    // One range over all rows, from the SIMD row kernels (max/min are exact in any order).
    float a = 0.0f, mn = w.row(0)[0], mx = w.row(0)[0], t0 = 0.0f, t1 = 0.0f;
    for (std::size_t r = 0; r < w.rows(); ++r) {
      if (cfg.scheme == SchemeKind::asymmetric) {
        kernels::group_minmax(w.row(r), w.cols(), w.cols(), &t0, &t1);
        mn = std::min(mn, t0);
        mx = std::max(mx, t1);
      } else {
        (void)kernels::group_absmax(w.row(r), w.cols(), w.cols(), &t0);
        a = std::max(a, t0);
      }
    }
    const detail::ScaleZero sz =
        cfg.scheme == SchemeKind::asymmetric ? detail::from_minmax(cfg, mn, mx) : detail::from_absmax(cfg, a);
    p.scales[0] = sz.scale;
    if (!p.zeros.empty()) p.zeros[0] = sz.zero;
    return p;
  }
  if (cfg.granularity == GranularityKind::per_tensor) {
    std::vector<detail::Piece> pieces;
    for (std::size_t r = 0; r < w.rows(); ++r) pieces.push_back({w.row(r), w.cols()});
    const detail::ScaleZero sz = detail::calibrate(p, pieces, scratch);
    p.scales[0] = sz.scale;
    if (!p.zeros.empty()) p.zeros[0] = sz.zero;
    return p;
  }
  for (std::size_t r = 0; r < w.rows(); ++r) (void)detail::fit_row(p, r, w.row(r), inv.data(), tmp, scratch);
  return p;
}

namespace detail {
/// Encodes every row of w with the parameters already in q (checking each row for NaN/Inf unless
/// the caller has already done so).
inline void encode_all(MatrixView<const float> w, QuantizedTensor& q, bool check = true) {
  const QuantParams& params = q.params();
  std::vector<float> inv(params.groups_per_row);
  std::vector<std::uint8_t> ubuf;
  for (std::size_t r = 0; r < w.rows(); ++r) {
    const float* s = params.row_scales(r);
    for (std::size_t g = 0; g < inv.size(); ++g) inv[g] = 1.0f / s[g];
    if (check) check_row(w, r, "quant::quantize");
    encode_row(q, r, w.row(r), inv.data(), ubuf, r + 1 < w.rows() ? w.row(r + 1) : nullptr);
  }
}
}  // namespace detail

/// Quantizes w with given parameters (shape must match; values are validated).
[[nodiscard]] inline QuantizedTensor quantize(MatrixView<const float> w, const QuantParams& params) {
  params.validate();
  detail::check_shape(w, "quant::quantize");
  SPARQ_CHECK(w.rows() == params.rows && w.cols() == params.cols, "quant::quantize: matrix is ",
              w.rows(), "x", w.cols(), " but the parameters were fitted for ", params.rows, "x",
              params.cols);
  QuantizedTensor q(params);
  detail::encode_all(w, q);
  return q;
}

/// Fits and quantizes w under cfg into q, reusing q's storage when its shape and configuration
/// already match (every code, scale and zero is rewritten). One pass per row for row granularities.
inline void quantize_into(MatrixView<const float> w, const QuantConfig& cfg, QuantizedTensor& q) {
  cfg.validate();
  detail::check_shape(w, "quant::quantize");
  const QuantConfig& have = q.config();
  const bool reuse = q.rows() == w.rows() && q.cols() == w.cols() && have.scheme == cfg.scheme &&
                     have.bits == cfg.bits && have.granularity == cfg.granularity &&
                     have.group_size == cfg.group_size &&
                     have.options.tail_group == cfg.options.tail_group;
  if (cfg.granularity == GranularityKind::per_tensor) {
    QuantParams p = fit(w, cfg);  // one range over the whole matrix first
    if (reuse) {
      q.params() = std::move(p);
    } else {
      q = QuantizedTensor(std::move(p));
    }
    detail::encode_all(w, q, /*check=*/false);  // fit() checked every value
    return;
  }
  if (reuse) {
    q.params().config = cfg;
  } else {
    q = QuantizedTensor(QuantParams::make(cfg, w.rows(), w.cols()));
  }
  std::vector<float> tmp, scratch, inv(q.params().groups_per_row);
  std::vector<std::uint8_t> ubuf;
  // Finiteness is checked row by row, while the row is in cache; on error q is left unspecified.
  const bool fused_check = detail::fit_row_checks_finite(cfg);
  for (std::size_t r = 0; r < w.rows(); ++r) {
    if (!fused_check) detail::check_row(w, r, "quant::quantize");
    if (!detail::fit_row(q.params(), r, w.row(r), inv.data(), tmp, scratch)) {
      detail::check_row(w, r, "quant::quantize");  // throws, naming the value
    }
    // Prefetch distance (measured, 4096x4096, one thread): 8-bit rows encode fast, so the row after
    // next is fetched (6.2-6.7 vs 5.6-5.9 G elements/s); packed widths spend longer per row and do
    // best fetching the next one (5.8 vs 5.2 G elements/s at int4 g32).
    const std::size_t ahead = q.params().bits() == 8 ? 2 : 1;
    detail::encode_row(q, r, w.row(r), inv.data(), ubuf, r + ahead < w.rows() ? w.row(r + ahead) : nullptr);
  }
}

/// Fits and quantizes w under cfg (one pass per row for row granularities).
[[nodiscard]] inline QuantizedTensor quantize(MatrixView<const float> w, const QuantConfig& cfg) {
  QuantizedTensor q;
  quantize_into(w, cfg, q);
  return q;
}

/// Dequantizes row r of q into out[0 .. cols) (no checks: r < rows, out has cols floats).
/// `ubuf` is scratch (resized to cols).
inline void dequantize_row(const QuantizedTensor& q, std::size_t r, float* out,
                           std::vector<std::uint8_t>& ubuf) {
  const QuantParams& p = q.params();
  const std::size_t n = p.cols, G = p.group();
  const unsigned bits = static_cast<unsigned>(p.bits());
  const std::uint8_t* u = q.row_codes(r);
  if (bits != 8) {
    ubuf.resize(n);
    kernels::unpack_codes(u, n, bits, ubuf.data());
    u = ubuf.data();
  }
  switch (p.config.scheme) {
    case SchemeKind::symmetric:
    case SchemeKind::asymmetric:
      kernels::dequantize_codes(u, n, G, p.row_scales(r), p.row_zeros(r), p.symmetric_zero(),
                                p.signed_codes(), out);
      break;
    case SchemeKind::nf4:
      kernels::dequantize_table(u, n, G, p.row_scales(r), nf4::levels.data(), 16, out);
      break;
    case SchemeKind::fp8_e4m3:
      kernels::dequantize_table(u, n, G, p.row_scales(r), fp8::e4m3_table.data(), 256, out);
      break;
  }
}

/// Dequantizes q into out (same shape).
inline void dequantize(const QuantizedTensor& q, MatrixView<float> out) {
  SPARQ_CHECK(q.rows() > 0 && q.cols() > 0, "quant::dequantize: empty quantized tensor");
  SPARQ_CHECK(out.rows() == q.rows() && out.cols() == q.cols(), "quant::dequantize: output is ",
              out.rows(), "x", out.cols(), ", expected ", q.rows(), "x", q.cols());
  SPARQ_CHECK(out.data() != nullptr, "quant::dequantize: null output");
  std::vector<std::uint8_t> ubuf;
  for (std::size_t r = 0; r < q.rows(); ++r) dequantize_row(q, r, out.row(r), ubuf);
}

[[nodiscard]] inline Matrix<float> dequantize(const QuantizedTensor& q) {
  Matrix<float> m(q.rows(), q.cols());
  dequantize(q, m.view());
  return m;
}

/// quantize then dequantize through the real packed path.
inline void fake_quantize(MatrixView<const float> w, const QuantConfig& cfg, MatrixView<float> out) {
  SPARQ_CHECK(out.rows() == w.rows() && out.cols() == w.cols(), "quant::fake_quantize: output is ",
              out.rows(), "x", out.cols(), ", expected ", w.rows(), "x", w.cols());
  dequantize(quantize(w, cfg), out);
}

[[nodiscard]] inline Matrix<float> fake_quantize(MatrixView<const float> w, const QuantConfig& cfg) {
  return dequantize(quantize(w, cfg));
}

}  // namespace sparq::quant
