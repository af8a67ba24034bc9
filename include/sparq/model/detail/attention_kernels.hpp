// Vectorised pieces of the attention of model::Llama: score accumulation and softmax.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "sparq/simd/arch.hpp"

namespace sparq::model::detail {

SPARQ_TARGET_BEGIN

/// a[s] += c * row[s] for s < n.
template <class Arch = xsimd::default_arch>
inline void axpy(float c, const float* row, float* a, std::size_t n) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size;
  const B cv(c);
  std::size_t s = 0;
  for (; s + S <= n; s += S) xsimd::fma(cv, B::load_unaligned(row + s), B::load_unaligned(a + s)).store_unaligned(a + s);
  for (; s < n; ++s) a[s] += c * row[s];
}

/// sum_s a[s] * b[s] for s < n (four vector accumulators, then the tail in order).
template <class Arch = xsimd::default_arch>
inline float dot(const float* a, const float* b, std::size_t n) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size;
  B c0(0.0f), c1(0.0f), c2(0.0f), c3(0.0f);
  std::size_t s = 0;
  for (; s + 4 * S <= n; s += 4 * S) {
    c0 = xsimd::fma(B::load_unaligned(a + s), B::load_unaligned(b + s), c0);
    c1 = xsimd::fma(B::load_unaligned(a + s + S), B::load_unaligned(b + s + S), c1);
    c2 = xsimd::fma(B::load_unaligned(a + s + 2 * S), B::load_unaligned(b + s + 2 * S), c2);
    c3 = xsimd::fma(B::load_unaligned(a + s + 3 * S), B::load_unaligned(b + s + 3 * S), c3);
  }
  for (; s + S <= n; s += S) c0 = xsimd::fma(B::load_unaligned(a + s), B::load_unaligned(b + s), c0);
  float r = xsimd::hadd((c0 + c1) + (c2 + c3));
  for (; s < n; ++s) r += a[s] * b[s];
  return r;
}

/// In place a = softmax(a) over n > 0 values (max-subtracted; xsimd's exp in the vector body).
template <class Arch = xsimd::default_arch>
inline void softmax(float* a, std::size_t n) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size;
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
  B acc(0.0f);
  s = 0;
  for (; s + S <= n; s += S) {
    const B e = xsimd::exp(B::load_unaligned(a + s) - mv);
    e.store_unaligned(a + s);
    acc += e;
  }
  float sum = xsimd::hadd(acc);
  for (; s < n; ++s) {
    a[s] = std::exp(a[s] - mx);
    sum += a[s];
  }
  const float inv = 1.0f / sum;
  const B iv(inv);
  s = 0;
  for (; s + S <= n; s += S) (B::load_unaligned(a + s) * iv).store_unaligned(a + s);
  for (; s < n; ++s) a[s] *= inv;
}

SPARQ_TARGET_END

}  // namespace sparq::model::detail
