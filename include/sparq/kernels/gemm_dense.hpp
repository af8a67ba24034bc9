// Dense float Y = X · Wᵀ for the model runtime's DenseLinear (register-tiled, xsimd-vectorised).
//
// Each output element is one dot product over the input dimension in the canonical order of
// kernels/canonical.hpp: 16 lanes (lane l takes k ≡ l mod 16), every product rounded before it is
// added (never fused), the k tail as if zero-padded to 16, the lanes combined by one fixed pairwise
// tree. A tile keeps NT x NO such 16-lane accumulators (16/W registers each), so the result is the
// same on every SIMD target, wherever the element sits in a tile, and equal to gemv_f32's and
// attn_dot's value for the same vectors (docs/kernels.md, "Same results on every target").
#pragma once

#include <algorithm>
#include <cstddef>

#include "sparq/kernels/canonical.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace dense_detail {

/// Register tile of Arch: NT tokens x NO weight rows, NT·NO·(16/W) accumulators, at most half the
/// vector registers (32 on AVX-512 and aarch64, 16 on SSE2/AVX2).
template <class Arch>
struct Tiling {
  static constexpr std::size_t W = xsimd::batch<float, Arch>::size;
  static constexpr std::size_t R = canonical::lanes / W;
  static constexpr std::size_t regs = (W >= 16 || !SPARQ_X86) ? 32 : 16;
  static constexpr std::size_t NT = W >= 16 ? 4 : 2;
  static constexpr std::size_t NO = std::max<std::size_t>(1, regs / 2 / (NT * R));
};

/// acc[t][o] (16 lanes in R registers) += X row t · W row o over 16 values at x / w.
template <class Arch, std::size_t NT, std::size_t NO>
inline void tile_step(const float* x, std::size_t ldx, const float* w, std::size_t ldw,
                      xsimd::batch<float, Arch> (&acc)[NT][NO][Tiling<Arch>::R]) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size, R = Tiling<Arch>::R;
#pragma GCC unroll 16
  for (std::size_t r = 0; r < R; ++r) {
    B xv[NT];
#pragma GCC unroll 16
    for (std::size_t t = 0; t < NT; ++t) xv[t] = B::load_unaligned(x + t * ldx + r * S);
#pragma GCC unroll 16
    for (std::size_t o = 0; o < NO; ++o) {
      const B wv = B::load_unaligned(w + o * ldw + r * S);
#pragma GCC unroll 16
      for (std::size_t t = 0; t < NT; ++t) acc[t][o][r] = acc[t][o][r] + canonical::mul(xv[t], wv);
    }
  }
}

/// One NT x NO tile: Y[t][o] = dot(X row t, W row o) over cin, canonical order.
template <class Arch, std::size_t NT, std::size_t NO>
inline void tile(const float* X, std::size_t ldx, const float* W, std::size_t ldw, std::size_t cin, float* Y,
                 std::size_t ldy) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t R = Tiling<Arch>::R, L = canonical::lanes;
  B acc[NT][NO][R];
#pragma GCC unroll 16
  for (std::size_t t = 0; t < NT; ++t)
#pragma GCC unroll 16
    for (std::size_t o = 0; o < NO; ++o)
#pragma GCC unroll 16
      for (std::size_t r = 0; r < R; ++r) acc[t][o][r] = B(0.0f);
  std::size_t k = 0;
  for (; k + L <= cin; k += L) tile_step<Arch, NT, NO>(X + k, ldx, W + k, ldw, acc);
  if (k < cin) {  // the tail, zero-padded to 16 (no read past any row)
    alignas(64) float xp[NT][L] = {}, wp[NO][L] = {};
    for (std::size_t t = 0; t < NT; ++t) std::copy(X + t * ldx + k, X + t * ldx + cin, xp[t]);
    for (std::size_t o = 0; o < NO; ++o) std::copy(W + o * ldw + k, W + o * ldw + cin, wp[o]);
    tile_step<Arch, NT, NO>(xp[0], L, wp[0], L, acc);
  }
#pragma GCC unroll 16
  for (std::size_t t = 0; t < NT; ++t) {
#pragma GCC unroll 16
    for (std::size_t o = 0; o < NO; ++o) Y[t * ldy + o] = canonical::reduce_lanes<float, Arch, R>(acc[t][o]);
  }
}

/// tile<Arch, nt, no> for run-time nt <= NT, no <= NO.
template <class Arch, std::size_t NT, std::size_t NO>
inline void tile_any(std::size_t nt, std::size_t no, const float* X, std::size_t ldx, const float* W,
                     std::size_t ldw, std::size_t cin, float* Y, std::size_t ldy) noexcept {
  if constexpr (NT > 1) {
    if (nt < NT) return tile_any<Arch, NT - 1, NO>(nt, no, X, ldx, W, ldw, cin, Y, ldy);
  }
  if constexpr (NO > 1) {
    if (no < NO) return tile_any<Arch, NT, NO - 1>(nt, no, X, ldx, W, ldw, cin, Y, ldy);
  }
  tile<Arch, NT, NO>(X, ldx, W, ldw, cin, Y, ldy);
}

}  // namespace dense_detail

/// Y[n x cout] = X[n x cin] · W[cout x cin]ᵀ. Tokens are blocked so that a block of X stays in
/// cache (about 256 KiB) while every weight row streams past it once per block.
template <class Arch = simd::dynamic>
inline void dense_gemm(const float* X, std::size_t ldx, std::size_t n, const float* W,
                       std::size_t ldw, std::size_t cout, std::size_t cin, float* Y,
                       std::size_t ldy) noexcept {
  using Tl = dense_detail::Tiling<Arch>;
  constexpr std::size_t TO = Tl::NO, TT = Tl::NT;
  const std::size_t block_bytes = std::size_t{256} * 1024;
  std::size_t tb = std::max<std::size_t>(TT, block_bytes / (std::max<std::size_t>(cin, 1) * sizeof(float)));
  tb = tb / TT * TT;
  for (std::size_t t0 = 0; t0 < n; t0 += tb) {
    const std::size_t t1 = std::min(n, t0 + tb);
    for (std::size_t o = 0; o < cout; o += TO) {
      const std::size_t no = std::min(TO, cout - o);
      const float* wr = W + o * ldw;
      for (std::size_t t = t0; t < t1; t += TT)
        dense_detail::tile_any<Arch, TT, TO>(std::min(TT, t1 - t), no, X + t * ldx, ldx, wr, ldw, cin,
                                             Y + t * ldy + o, ldy);
    }
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void dense_gemm<simd::dynamic>(
    const float* X, std::size_t ldx, std::size_t n, const float* W, std::size_t ldw, std::size_t cout,
    std::size_t cin, float* Y, std::size_t ldy) noexcept {
  SPARQ_DISPATCH_CALL(dense_gemm, (dense_gemm<xsimd::default_arch>), X, ldx, n, W, ldw, cout, cin, Y, ldy);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
