// Vectorised pieces of the attention of model::Llama: score accumulation and softmax.
//
// Same results on every target (kernels/canonical.hpp, docs/kernels.md): attn_axpy rounds c·row[s]
// before adding it (never fused); attn_dot sums in the canonical 16-lane order; softmax takes the
// max (exact in any order), exp(a − max) by canonical::exp in the body and the tail alike (the tail
// runs the same vector code on a copy padded with −inf, whose exp is +0), their sum in the
// canonical 16-lane order, and multiplies by 1/sum.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "sparq/kernels/canonical.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// a[s] += c * row[s] for s < n.
template <class Arch = simd::dynamic>
inline void attn_axpy(float c, const float* row, float* a, std::size_t n) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size;
  const B cv(c);
  std::size_t s = 0;
  for (; s + S <= n; s += S)
    (B::load_unaligned(a + s) + canonical::mul(cv, B::load_unaligned(row + s))).store_unaligned(a + s);
  for (; s < n; ++s) a[s] = a[s] + canonical::mul(c, row[s]);
}

/// sum_s a[s] * b[s] for s < n, in the canonical order (kernels/canonical.hpp).
template <class Arch = simd::dynamic>
inline float attn_dot(const float* a, const float* b, std::size_t n) noexcept {
  return canonical::dot<Arch>(a, b, n);
}

/// In place a = softmax(a) over n > 0 values (max-subtracted; canonical exp and sum, see above).
template <class Arch = simd::dynamic>
inline void softmax(float* a, std::size_t n) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size, L = canonical::lanes;
  float mx = a[0];
  std::size_t s = 0;
  if (n >= S) {
    B m = B::load_unaligned(a);
    for (s = S; s + S <= n; s += S) m = xsimd::max(m, B::load_unaligned(a + s));
    alignas(64) float lanes[S];
    m.store_aligned(lanes);
    for (std::size_t l = 0; l < S; ++l) mx = std::max(mx, lanes[l]);
  }
  for (; s < n; ++s) mx = std::max(mx, a[s]);
  const B mv(mx);
  // e = exp(a - max) for 16 values at p, stored back, added to the 16 canonical lanes.
  canonical::Lanes<float, Arch> acc;
  const auto block = [&](float* p) {
    for (std::size_t r = 0; r < L / S; ++r) canonical::exp<Arch>(B::load_unaligned(p + r * S) - mv).store_unaligned(p + r * S);
    acc.add(p);
  };
  s = 0;
  for (; s + L <= n; s += L) block(a + s);
  if (s < n) {
    alignas(64) float pad[L];
    std::fill(pad, pad + L, -std::numeric_limits<float>::infinity());
    std::copy(a + s, a + n, pad);
    block(pad);
    std::copy(pad, pad + (n - s), a + s);
  }
  const float inv = 1.0f / acc.reduce();
  const B iv(inv);
  s = 0;
  for (; s + S <= n; s += S) (B::load_unaligned(a + s) * iv).store_unaligned(a + s);
  for (; s < n; ++s) a[s] *= inv;
}

/// One attention head for one query position, in one call (model::Llama calls it per head):
///   a[s]   = Σ_d mul(mul(q[d], scale), k[d·ld + s])   for s < len, d = 0, 1, … in order, from +0
///   a      = softmax(a)                               (as softmax above)
///   out[d] = attn_dot(a, v + d·ld, len)               for d < hd
/// k and v hold hd rows of ld ≥ len floats (the transposed key/value cache); a is scratch for len
/// floats. The scores are exactly what hd calls of attn_axpy give (same products, same order), but
/// each block of positions stays in registers across the hd rows instead of being loaded and
/// stored hd times.
template <class Arch = simd::dynamic>
inline void attn_head(const float* q, float scale, const float* k, const float* v, std::size_t ld, std::size_t hd,
                      std::size_t len, float* a, float* out) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size, U = 4;
  std::size_t s = 0;
  for (; s + U * S <= len; s += U * S) {
    B acc[U];
    for (std::size_t u = 0; u < U; ++u) acc[u] = B(0.0f);
    for (std::size_t d = 0; d < hd; ++d) {
      const B c(canonical::mul(q[d], scale));
      const float* row = k + d * ld + s;
      for (std::size_t u = 0; u < U; ++u) acc[u] = acc[u] + canonical::mul(c, B::load_unaligned(row + u * S));
    }
    for (std::size_t u = 0; u < U; ++u) acc[u].store_unaligned(a + s + u * S);
  }
  for (; s + S <= len; s += S) {
    B acc(0.0f);
    for (std::size_t d = 0; d < hd; ++d)
      acc = acc + canonical::mul(B(canonical::mul(q[d], scale)), B::load_unaligned(k + d * ld + s));
    acc.store_unaligned(a + s);
  }
  for (; s < len; ++s) {
    float acc = 0.0f;
    for (std::size_t d = 0; d < hd; ++d) acc = acc + canonical::mul(canonical::mul(q[d], scale), k[d * ld + s]);
    a[s] = acc;
  }
  softmax<Arch>(a, len);
  for (std::size_t d = 0; d < hd; ++d) out[d] = canonical::dot<Arch>(a, v + d * ld, len);
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void attn_axpy<simd::dynamic>(
    float c, const float* row, float* a, std::size_t n) noexcept {
  SPARQ_DISPATCH_CALL(attn_axpy, (attn_axpy<xsimd::default_arch>), c, row, a, n);
}
template <>
inline float attn_dot<simd::dynamic>(
    const float* a, const float* b, std::size_t n) noexcept {
  SPARQ_DISPATCH_CALL(attn_dot, (attn_dot<xsimd::default_arch>), a, b, n);
}
template <>
inline void softmax<simd::dynamic>(
    float* a, std::size_t n) noexcept {
  SPARQ_DISPATCH_CALL(softmax, (softmax<xsimd::default_arch>), a, n);
}
template <>
inline void attn_head<simd::dynamic>(
    const float* q, float scale, const float* k, const float* v, std::size_t ld, std::size_t hd, std::size_t len,
    float* a, float* out) noexcept {
  SPARQ_DISPATCH_CALL(attn_head, (attn_head<xsimd::default_arch>), q, scale, k, v, ld, hd, len, a, out);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
