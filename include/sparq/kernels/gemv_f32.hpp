// Dense float GEMV y = W·x (decode) and its multi-token form Y = X·Wᵀ (prefill), W row-major.
//
// W is rows × cols row-major (row k = output channel k), y[k] = Σ_j W[k][j]·x[j].
// Per row the sum is taken in the canonical order of kernels/canonical.hpp (16 lanes, products
// rounded before the add, one fixed pairwise tree, tail as if zero-padded), so y is bit-identical
// on every SIMD target and equals dense_gemm's result for the same row (docs/kernels.md, "Same
// results on every target").
#pragma once

#include <algorithm>

#include <cmath>
#include <cstddef>
#include <cstring>

#include "sparq/kernels/canonical.hpp"
#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

/// Σ_j a[j]·b[j] for one row, in the canonical order (the same on every arch).
template <class Arch>
[[nodiscard]] inline float dot_f32(const float* a, const float* b, std::size_t n) noexcept {
  return canonical::dot<Arch>(a, b, n);
}

/// NR rows of w (row r at w + r·cols) against x at once, each row's sum exactly dot_f32's (same 16
/// canonical lanes, same order): the rows share the activation loads, and when `Prefetch` the same
/// cache lines of the NR rows after these are requested one 64-byte line per row per step, so the
/// next pass finds its rows in cache (software prefetch keeps NR independent streams in flight,
/// which one row at a time with the hardware prefetcher alone does not reach).
template <class Arch, std::size_t NR, bool Prefetch>
inline void dot_f32_rows(const float* w, std::size_t cols, const float* x, float* out) noexcept {
  using L = canonical::Lanes<float, Arch>;
  using B = typename L::B;
  constexpr std::size_t W = L::W, R = L::R, C = canonical::lanes;
  L acc[NR];
  std::size_t j = 0;
  for (; j + C <= cols; j += C) {
    if constexpr (Prefetch) {
      #pragma GCC unroll 8
      for (std::size_t r = 0; r < NR; ++r) __builtin_prefetch(w + (NR + r) * cols + j, 0, 3);
    }
    B xb[R];
    #pragma GCC unroll 16
    for (std::size_t q = 0; q < R; ++q) xb[q] = B::load_unaligned(x + j + q * W);
    #pragma GCC unroll 8
    for (std::size_t r = 0; r < NR; ++r) {
      #pragma GCC unroll 16
      for (std::size_t q = 0; q < R; ++q)
        acc[r].v[q] = acc[r].v[q] + canonical::mul(B::load_unaligned(w + r * cols + j + q * W), xb[q]);
    }
  }
  if (j < cols) {  // the tail, zero-padded as canonical::dot pads it
    alignas(64) float px[C] = {};
    std::memcpy(px, x + j, (cols - j) * sizeof(float));
    for (std::size_t r = 0; r < NR; ++r) {
      alignas(64) float pw[C] = {};
      std::memcpy(pw, w + r * cols + j, (cols - j) * sizeof(float));
      acc[r].add_products(pw, px);
    }
  }
  for (std::size_t r = 0; r < NR; ++r) out[r] = acc[r].reduce();
}

}  // namespace detail

/// y[k] = Σ_j W[k][j]·x[j] for k < rows. `w` rows × cols row-major; x has cols, y has rows entries.
/// Four rows per pass with the next pass's rows prefetched (the last pass of a block without);
/// every y[k] is detail::dot_f32 of its row, bit for bit.
template <class Arch = simd::dynamic>
void gemv_f32(const float* w, std::size_t rows, std::size_t cols, const float* x, float* y,
              int threads = 1) noexcept {
  constexpr std::size_t NR = 4;
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    std::size_t k = r0;
    for (; k + 2 * NR <= r1; k += NR) detail::dot_f32_rows<Arch, NR, true>(w + k * cols, cols, x, y + k);
    for (; k + NR <= r1; k += NR) detail::dot_f32_rows<Arch, NR, false>(w + k * cols, cols, x, y + k);
    for (; k < r1; ++k) y[k] = detail::dot_f32<Arch>(w + k * cols, x, cols);
  });
}

/// Scalar reference (double accumulation) of gemv_f32.
inline void gemv_f32_reference(const float* w, std::size_t rows, std::size_t cols, const float* x, float* y) noexcept {
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t j = 0; j < cols; ++j) s += static_cast<double>(w[k * cols + j]) * x[j];
    y[k] = static_cast<float>(s);
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_f32<simd::dynamic>(
    const float* w, std::size_t rows, std::size_t cols, const float* x, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_f32, (gemv_f32<xsimd::default_arch>), w, rows, cols, x, y, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
