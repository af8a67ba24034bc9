// Quantization kernels over one row: per-group abs-max and min/max, symmetric scales, and
// float → integer code conversion (round half to even), each with its scalar reference.
//
// A row of n floats is split into groups of `group` consecutive elements (the last one may be
// shorter); group g uses inv[g] = 1/scale[g] and zero z_g (zeros[g], or zero_const when zeros is
// null). The stored code of x is
//     u = nearbyint(clamp(x · inv[g], lo − z_g, hi − z_g)) + z_g        ∈ [lo, hi]
// (or q = u − z_g when `signed_store`, the two's-complement byte of 8-bit symmetric codes).
// Clamping before rounding equals rounding before clamping because lo − z_g and hi − z_g are
// integers, and it keeps the float → int conversion in range for any finite x. The product x·inv is
// one IEEE multiply in both paths and nearbyint / cvtps2dq both round half to even, so the scalar
// references and the SIMD paths agree bit for bit. Kernels are noexcept and check nothing.
// Same results on every SIMD target (docs/kernels.md): only element-wise IEEE operations, integer
// maxima and exact min/max, no sums and no fused multiply-add, so every target gives the same codes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <bit>

#include "sparq/kernels/quant_isa.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {
SPARQ_TARGET_BEGIN

/// Number of groups of `group` elements covering n (the last may be shorter).
[[nodiscard]] constexpr std::size_t group_count(std::size_t n, std::size_t group) noexcept {
  return (n + group - 1) / group;
}

// ---------------------------------------------------------------------------------------------
// Scalar references
// ---------------------------------------------------------------------------------------------

/// out[g] = max |x_i| over group g. Computed on the IEEE bits with the sign cleared (for finite
/// floats their integer order is their magnitude order), which also detects NaN/Inf: returns false
/// if any x_i is not finite (out is then unspecified).
inline bool group_absmax_scalar(const float* x, std::size_t n, std::size_t group, float* out) noexcept {
  std::int32_t all = 0;
  for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
    const std::size_t i1 = std::min(n, i0 + group);
    std::int32_t m = 0;
    for (std::size_t i = i0; i < i1; ++i) m = std::max(m, std::bit_cast<std::int32_t>(x[i]) & 0x7FFFFFFF);
    out[g] = std::bit_cast<float>(m);
    all = std::max(all, m);
  }
  return all <= 0x7F7FFFFF;
}

/// mn[g], mx[g] = min, max of x over group g.
inline void group_minmax_scalar(const float* x, std::size_t n, std::size_t group, float* mn,
                                float* mx) noexcept {
  for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
    const std::size_t i1 = std::min(n, i0 + group);
    float a = x[i0], b = x[i0];
    for (std::size_t i = i0 + 1; i < i1; ++i) {
      a = std::min(a, x[i]);
      b = std::max(b, x[i]);
    }
    mn[g] = a;
    mx[g] = b;
  }
}

/// Restricted-range symmetric scales (docs/algorithms.md#w8a8): scale = max(absmax, 1e−5)/qmax, inv = 1/scale.
inline void symmetric_scales_scalar(const float* absmax, std::size_t ng, float qmax, float* scale,
                                    float* inv) noexcept {
  for (std::size_t g = 0; g < ng; ++g) {
    const float s = std::max(absmax[g], 1e-5f) / qmax;
    scale[g] = s;
    inv[g] = 1.0f / s;
  }
}

/// Asymmetric (docs/algorithms.md#symmetric-and-asymmetric-grids) parameters from group min/max:
/// lo = min(mn, 0), hi = max(mx, 0)
/// (both 0 → [−1, 1]), scale = max((hi − lo)/maxq, FLT_MIN), zero = clamp(nearbyint(−lo/scale),
/// 0, maxq), inv = 1/scale.
inline void asymmetric_params_scalar(const float* mn, const float* mx, std::size_t ng, float maxq,
                                     float* scale, float* inv, std::uint8_t* zero) noexcept {
  for (std::size_t g = 0; g < ng; ++g) {
    float lo = std::min(mn[g], 0.0f), hi = std::max(mx[g], 0.0f);
    if (lo == 0.0f && hi == 0.0f) {
      lo = -1.0f;
      hi = 1.0f;
    }
    const float s = std::max((hi - lo) / maxq, 1.17549435e-38f);
    const float z = std::min(std::max(std::nearbyint(-lo / s), 0.0f), maxq);
    scale[g] = s;
    inv[g] = 1.0f / s;
    zero[g] = static_cast<std::uint8_t>(static_cast<int>(z));
  }
}

/// Nearest-level codes of a 16-level table given its 15 ascending midpoints `mid` (NF4): for
/// v = clamp(x·inv[g], −1, 1), u = #{k : mid[k] < v} + #{k odd : mid[k] == v} (a tie goes to the
/// even code).
inline void table16_codes_scalar(const float* x, std::size_t n, std::size_t group, const float* inv,
                                 const float* mid, std::uint8_t* out) noexcept {
  for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
    const std::size_t i1 = std::min(n, i0 + group);
    for (std::size_t i = i0; i < i1; ++i) {
      const float v = std::min(std::max(x[i] * inv[g], -1.0f), 1.0f);
      unsigned u = 0;
      for (unsigned k = 0; k < 15; ++k) u += (k & 1u) ? (mid[k] <= v) : (mid[k] < v);
      out[i] = static_cast<std::uint8_t>(u);
    }
  }
}

/// Codes of one row (see the header comment); one byte per code.
inline void quantize_codes_scalar(const float* x, std::size_t n, std::size_t group, const float* inv,
                                  const std::uint8_t* zeros, int zero_const, int lo, int hi,
                                  bool signed_store, std::uint8_t* out) noexcept {
  for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
    const std::size_t i1 = std::min(n, i0 + group);
    const int z = zeros ? zeros[g] : zero_const;
    const float flo = static_cast<float>(lo - z), fhi = static_cast<float>(hi - z);
    const float s = inv[g];
    const int add = signed_store ? 0 : z;
    for (std::size_t i = i0; i < i1; ++i) {
      const float v = std::min(std::max(x[i] * s, flo), fhi);
      const int q = static_cast<int>(std::nearbyint(v)) + add;
      out[i] = static_cast<std::uint8_t>(q & 0xFF);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SIMD
// ---------------------------------------------------------------------------------------------

/// True when every x[i] is finite: the IEEE bits with the sign cleared are ≤ 0x7F7FFFFF exactly for
/// finite floats (integer max, so NaN cannot hide).
template <class Arch = simd::dynamic>
[[nodiscard]] inline bool all_finite(const float* x, std::size_t n) noexcept {
  std::size_t i = 0;
  std::int32_t m = 0;
  if constexpr (quant_isa::has_simd<Arch>) {
    using I = xsimd::batch<std::int32_t, Arch>;
    constexpr std::size_t W = I::size;
    const I mask = I::broadcast(0x7FFFFFFF);
    I a = I::broadcast(0), b = I::broadcast(0);
    const auto* xi = reinterpret_cast<const std::int32_t*>(x);
    for (; i + 2 * W <= n; i += 2 * W) {
      a = xsimd::max(a, I::load_unaligned(xi + i) & mask);
      b = xsimd::max(b, I::load_unaligned(xi + i + W) & mask);
    }
    alignas(64) std::int32_t t[W];
    xsimd::max(a, b).store_aligned(t);
    for (std::size_t k = 0; k < W; ++k) m = std::max(m, t[k]);
  }
  const float* tail = x + i;
  for (std::size_t k = 0, rest = n - i; k < rest; ++k) {
    m = std::max(m, std::bit_cast<std::int32_t>(tail[k]) & 0x7FFFFFFF);
  }
  return m <= 0x7F7FFFFF;
}

/// out[g] = max |x_i| over group g; false if some x_i is NaN/Inf (see group_absmax_scalar).
template <class Arch = simd::dynamic>
inline bool group_absmax(const float* x, std::size_t n, std::size_t group, float* out) noexcept {
  if constexpr (!quant_isa::has_simd<Arch>) {
    return group_absmax_scalar(x, n, group, out);
  } else {
    using I = xsimd::batch<std::int32_t, Arch>;
    constexpr std::size_t W = I::size;
    const auto* xi = reinterpret_cast<const std::int32_t*>(x);
    const I mask = I::broadcast(0x7FFFFFFF);
    std::int32_t all = 0;
    for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
      const std::size_t i1 = std::min(n, i0 + group);
      std::size_t i = i0;
      std::int32_t m = 0;
      if (i1 - i0 >= W) {
        I a = I::load_unaligned(xi + i) & mask;
        i += W;
        if (i + 3 * W <= i1) {  // long groups: four independent chains
          I b = I::load_unaligned(xi + i) & mask, c = I::load_unaligned(xi + i + W) & mask,
            d = I::load_unaligned(xi + i + 2 * W) & mask;
          for (i += 3 * W; i + 4 * W <= i1; i += 4 * W) {
            a = xsimd::max(a, I::load_unaligned(xi + i) & mask);
            b = xsimd::max(b, I::load_unaligned(xi + i + W) & mask);
            c = xsimd::max(c, I::load_unaligned(xi + i + 2 * W) & mask);
            d = xsimd::max(d, I::load_unaligned(xi + i + 3 * W) & mask);
          }
          a = xsimd::max(xsimd::max(a, b), xsimd::max(c, d));
        }
        for (; i + W <= i1; i += W) a = xsimd::max(a, I::load_unaligned(xi + i) & mask);
        m = quant_isa::hmax<Arch>(a);
      }
      for (; i < i1; ++i) m = std::max(m, std::bit_cast<std::int32_t>(x[i]) & 0x7FFFFFFF);
      out[g] = std::bit_cast<float>(m);
      all = std::max(all, m);
    }
    return all <= 0x7F7FFFFF;
  }
}

/// mn[g], mx[g] = min, max of x over group g.
template <class Arch = simd::dynamic>
inline void group_minmax(const float* x, std::size_t n, std::size_t group, float* mn, float* mx) noexcept {
  if constexpr (!quant_isa::has_simd<Arch>) {
    group_minmax_scalar(x, n, group, mn, mx);
  } else {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
      const std::size_t i1 = std::min(n, i0 + group);
      std::size_t i = i0;
      float a = x[i0], b = x[i0];
      if (i1 - i0 >= W) {
        B va = B::load_unaligned(x + i), vb = va;
        for (i += W; i + W <= i1; i += W) {
          const B v = B::load_unaligned(x + i);
          va = xsimd::min(va, v);
          vb = xsimd::max(vb, v);
        }
        a = quant_isa::hmin<Arch>(va);
        b = quant_isa::hmax<Arch>(vb);
      }
      for (; i < i1; ++i) {
        a = std::min(a, x[i]);
        b = std::max(b, x[i]);
      }
      mn[g] = a;
      mx[g] = b;
    }
  }
}

/// Restricted-range symmetric scales: scale = max(absmax, 1e−5)/qmax, inv = 1/scale (IEEE division
/// in both paths, so bit-identical to symmetric_scales_scalar).
template <class Arch = simd::dynamic>
inline void symmetric_scales(const float* absmax, std::size_t ng, float qmax, float* scale,
                             float* inv) noexcept {
  std::size_t g = 0;
  if constexpr (quant_isa::has_simd<Arch>) {
    using B = xsimd::batch<float, Arch>;
    const B eps = B::broadcast(1e-5f), q = B::broadcast(qmax), one = B::broadcast(1.0f);
    for (; g + B::size <= ng; g += B::size) {
      const B s = xsimd::max(B::load_unaligned(absmax + g), eps) / q;
      s.store_unaligned(scale + g);
      (one / s).store_unaligned(inv + g);
    }
  }
  symmetric_scales_scalar(absmax + g, ng - g, qmax, scale + g, inv + g);
}

/// Nearest-level codes of a 16-level table (see table16_codes_scalar); SIMD compares and counts.
template <class Arch = simd::dynamic>
inline void table16_codes(const float* x, std::size_t n, std::size_t group, const float* inv,
                          const float* mid, std::uint8_t* out) noexcept {
  if constexpr (!quant_isa::has_simd<Arch>) {
    table16_codes_scalar(x, n, group, inv, mid, out);
  } else {
    using B = xsimd::batch<float, Arch>;
    constexpr std::size_t W = B::size;
    B m[15];
    for (unsigned k = 0; k < 15; ++k) m[k] = B::broadcast(mid[k]);
    const B lo = B::broadcast(-1.0f), hi = B::broadcast(1.0f);
    const B one = B::broadcast(1.0f), zero = B::broadcast(0.0f);
    for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
      const std::size_t i1 = std::min(n, i0 + group);
      const B s = B::broadcast(inv[g]);
      std::size_t i = i0;
      for (; i + W <= i1; i += W) {
        const B v = xsimd::min(xsimd::max(B::load_unaligned(x + i) * s, lo), hi);
        B u = zero;  // the count, exact in float
        for (unsigned k = 0; k < 15; ++k) {
          const auto c = (k & 1u) ? (m[k] <= v) : (m[k] < v);
          u += xsimd::select(c, one, zero);
        }
        quant_isa::store_low_bytes<Arch>(xsimd::nearbyint_as_int(u), out + i);
      }
      if (i < i1) {
        const float sg = inv[g];
        table16_codes_scalar(x + i, i1 - i, i1 - i, &sg, mid, out + i);
      }
    }
  }
}

/// Asymmetric parameters from group min/max (see asymmetric_params_scalar; IEEE operations only,
/// so bit-identical to it).
template <class Arch = simd::dynamic>
inline void asymmetric_params(const float* mn, const float* mx, std::size_t ng, float maxq, float* scale,
                              float* inv, std::uint8_t* zero) noexcept {
  std::size_t g = 0;
  if constexpr (quant_isa::has_simd<Arch>) {
    using B = xsimd::batch<float, Arch>;
    const B z0 = B::broadcast(0.0f), one = B::broadcast(1.0f), q = B::broadcast(maxq),
            tiny = B::broadcast(1.17549435e-38f);
    for (; g + B::size <= ng; g += B::size) {
      B lo = xsimd::min(B::load_unaligned(mn + g), z0), hi = xsimd::max(B::load_unaligned(mx + g), z0);
      const auto degenerate = (lo == z0) && (hi == z0);
      lo = xsimd::select(degenerate, -one, lo);
      hi = xsimd::select(degenerate, one, hi);
      const B s = xsimd::max((hi - lo) / q, tiny);
      const B z = xsimd::min(xsimd::max(xsimd::nearbyint(-lo / s), z0), q);
      s.store_unaligned(scale + g);
      (one / s).store_unaligned(inv + g);
      quant_isa::store_low_bytes<Arch>(xsimd::nearbyint_as_int(z), zero + g);
    }
  }
  asymmetric_params_scalar(mn + g, mx + g, ng - g, maxq, scale + g, inv + g, zero + g);
}

/// Codes of one row (see the header comment); one byte per code. `prefetch` (optional) is the
/// next row to be processed: its lines are prefetched while this row is converted, so memory
/// streaming overlaps the arithmetic.
template <class Arch = simd::dynamic>
inline void quantize_codes(const float* x, std::size_t n, std::size_t group, const float* inv,
                           const std::uint8_t* zeros, int zero_const, int lo, int hi, bool signed_store,
                           std::uint8_t* out, const float* prefetch = nullptr) noexcept {
  if constexpr (!quant_isa::has_simd<Arch>) {
    quantize_codes_scalar(x, n, group, inv, zeros, zero_const, lo, hi, signed_store, out);
  } else {
    using B = xsimd::batch<float, Arch>;
    using I = xsimd::batch<std::int32_t, Arch>;
    constexpr std::size_t W = B::size;
    for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
      const std::size_t i1 = std::min(n, i0 + group);
      const int z = zeros ? zeros[g] : zero_const;
      const float flo = static_cast<float>(lo - z), fhi = static_cast<float>(hi - z);
      const int add = signed_store ? 0 : z;
      const B s = B::broadcast(inv[g]), vlo = B::broadcast(flo), vhi = B::broadcast(fhi);
      const I vadd = I::broadcast(add);
      std::size_t i = i0;
      for (; i + W <= i1; i += W) {
        if (prefetch) __builtin_prefetch(prefetch + i);
        const B v = xsimd::min(xsimd::max(B::load_unaligned(x + i) * s, vlo), vhi);
        quant_isa::store_low_bytes<Arch>(xsimd::nearbyint_as_int(v) + vadd, out + i);
      }
      for (; i < i1; ++i) {
        const float v = std::min(std::max(x[i] * inv[g], flo), fhi);
        out[i] = static_cast<std::uint8_t>((static_cast<int>(std::nearbyint(v)) + add) & 0xFF);
      }
    }
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline bool all_finite<simd::dynamic>(
    const float* x, std::size_t n) noexcept {
  SPARQ_DISPATCH_CALL(all_finite, (all_finite<xsimd::default_arch>), x, n);
}
template <>
inline bool group_absmax<simd::dynamic>(
    const float* x, std::size_t n, std::size_t group, float* out) noexcept {
  SPARQ_DISPATCH_CALL(group_absmax, (group_absmax<xsimd::default_arch>), x, n, group, out);
}
template <>
inline void group_minmax<simd::dynamic>(
    const float* x, std::size_t n, std::size_t group, float* mn, float* mx) noexcept {
  SPARQ_DISPATCH_CALL(group_minmax, (group_minmax<xsimd::default_arch>), x, n, group, mn, mx);
}
template <>
inline void symmetric_scales<simd::dynamic>(
    const float* absmax, std::size_t ng, float qmax, float* scale, float* inv) noexcept {
  SPARQ_DISPATCH_CALL(symmetric_scales, (symmetric_scales<xsimd::default_arch>), absmax, ng, qmax, scale, inv);
}
template <>
inline void table16_codes<simd::dynamic>(
    const float* x, std::size_t n, std::size_t group, const float* inv, const float* mid, std::uint8_t* out) noexcept {
  SPARQ_DISPATCH_CALL(table16_codes, (table16_codes<xsimd::default_arch>), x, n, group, inv, mid, out);
}
template <>
inline void asymmetric_params<simd::dynamic>(
    const float* mn, const float* mx, std::size_t ng, float maxq, float* scale, float* inv, std::uint8_t* zero) noexcept {
  SPARQ_DISPATCH_CALL(asymmetric_params, (asymmetric_params<xsimd::default_arch>), mn, mx, ng, maxq, scale, inv, zero);
}
template <>
inline void quantize_codes<simd::dynamic>(
    const float* x, std::size_t n, std::size_t group, const float* inv, const std::uint8_t* zeros,
    int zero_const, int lo, int hi, bool signed_store, std::uint8_t* out, const float* prefetch) noexcept {
  SPARQ_DISPATCH_CALL(quantize_codes, (quantize_codes<xsimd::default_arch>), x, n, group, inv, zeros, zero_const, lo, hi, signed_store, out, prefetch);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END
}  // namespace sparq::kernels
