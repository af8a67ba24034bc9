// Dense float Y = X · Wᵀ for the model runtime's DenseLinear (register-tiled, xsimd-vectorised).
//
// Each output element is one dot product over the input dimension, computed the same way wherever
// it sits in a tile: vector lanes accumulate k = 0, S, 2S, ... with FMA, a horizontal add, then the
// k tail in order. So a token's result is bit-identical whether it is computed alone (GEMV) or as
// part of a prefill GEMM, for a given SIMD target.
#pragma once

#include <algorithm>
#include <cstddef>

#include "sparq/simd/arch.hpp"

namespace sparq::model::detail {

SPARQ_TARGET_BEGIN

/// One NT x NO tile: Y[t][o] = dot(X row t, W row o) over cin.
template <class Arch, int NT, int NO>
inline void dense_tile(const float* X, std::size_t ldx, const float* W, std::size_t ldw,
                       std::size_t cin, float* Y, std::size_t ldy) noexcept {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t S = B::size;
  B acc[NT][NO];
  for (int t = 0; t < NT; ++t)
    for (int o = 0; o < NO; ++o) acc[t][o] = B(0.0f);
  std::size_t k = 0;
  for (; k + S <= cin; k += S) {
    B xv[NT];
    for (int t = 0; t < NT; ++t) xv[t] = B::load_unaligned(X + static_cast<std::size_t>(t) * ldx + k);
    for (int o = 0; o < NO; ++o) {
      const B wv = B::load_unaligned(W + static_cast<std::size_t>(o) * ldw + k);
      for (int t = 0; t < NT; ++t) acc[t][o] = xsimd::fma(xv[t], wv, acc[t][o]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int o = 0; o < NO; ++o) {
      float s = xsimd::hadd(acc[t][o]);
      const float* xr = X + static_cast<std::size_t>(t) * ldx;
      const float* wr = W + static_cast<std::size_t>(o) * ldw;
      for (std::size_t kk = k; kk < cin; ++kk) s += xr[kk] * wr[kk];
      Y[static_cast<std::size_t>(t) * ldy + static_cast<std::size_t>(o)] = s;
    }
  }
}

template <class Arch, int NT>
inline void dense_tile_rows(const float* X, std::size_t ldx, const float* W, std::size_t ldw,
                            std::size_t cin, float* Y, std::size_t ldy, std::size_t no) noexcept {
  switch (no) {
    case 1: dense_tile<Arch, NT, 1>(X, ldx, W, ldw, cin, Y, ldy); break;
    case 2: dense_tile<Arch, NT, 2>(X, ldx, W, ldw, cin, Y, ldy); break;
    case 3: dense_tile<Arch, NT, 3>(X, ldx, W, ldw, cin, Y, ldy); break;
    default: dense_tile<Arch, NT, 4>(X, ldx, W, ldw, cin, Y, ldy); break;
  }
}

/// Y[n x cout] = X[n x cin] · W[cout x cin]ᵀ. Tokens are blocked so that a block of X stays in
/// cache (about 256 KiB) while every weight row streams past it once per block.
template <class Arch = xsimd::default_arch>
inline void dense_gemm(const float* X, std::size_t ldx, std::size_t n, const float* W,
                       std::size_t ldw, std::size_t cout, std::size_t cin, float* Y,
                       std::size_t ldy) noexcept {
  constexpr std::size_t TO = 4, TT = 4;
  const std::size_t block_bytes = std::size_t{256} * 1024;
  std::size_t tb = std::max<std::size_t>(TT, block_bytes / (std::max<std::size_t>(cin, 1) * sizeof(float)));
  tb = tb / TT * TT;
  for (std::size_t t0 = 0; t0 < n; t0 += tb) {
    const std::size_t t1 = std::min(n, t0 + tb);
    for (std::size_t o = 0; o < cout; o += TO) {
      const std::size_t no = std::min(TO, cout - o);
      const float* wr = W + o * ldw;
      std::size_t t = t0;
      for (; t + TT <= t1; t += TT) dense_tile_rows<Arch, 4>(X + t * ldx, ldx, wr, ldw, cin, Y + t * ldy + o, ldy, no);
      switch (t1 - t) {
        case 3: dense_tile_rows<Arch, 3>(X + t * ldx, ldx, wr, ldw, cin, Y + t * ldy + o, ldy, no); break;
        case 2: dense_tile_rows<Arch, 2>(X + t * ldx, ldx, wr, ldw, cin, Y + t * ldy + o, ldy, no); break;
        case 1: dense_tile_rows<Arch, 1>(X + t * ldx, ldx, wr, ldw, cin, Y + t * ldy + o, ldy, no); break;
        default: break;
      }
    }
  }
}

SPARQ_TARGET_END

}  // namespace sparq::model::detail
