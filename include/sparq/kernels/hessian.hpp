// Hessian accumulation: sums[i, j] += sum_t x_ti * x_tj in double, every element summed over the
// tokens in order (the statistic of GPTQ, SparseGPT and low-rank whitening, docs/core.md#hessian).
//
//   hessian_accumulate(x, tokens, ldx, n, sums)   x: tokens x n floats (row stride ldx);
//                                                 sums: n x n doubles, row-major; the lower
//                                                 triangle (j <= i) is updated (blocks on the
//                                                 diagonal also update some j > i, with the same
//                                                 symmetric sums).
//
// Same bits on every SIMD target, for any thread count and any split of the tokens into calls:
// the product of two floats is exact in double (24 + 24 significand bits <= 53), so a fused
// multiply-add rounds exactly once, as the separate add does, and each element receives its
// products one token at a time in token order, starting from its previous value. Register
// blocking, vector width and threads only decide which elements are computed together.
//
// Layout: tokens are taken in chunks of 256 and packed as doubles into panels of 8 channels
// ([panel][t][8], zero padded past n). An RB x 8 block of sums (RB = the vector width in doubles:
// 8 rows on AVX-512, 4 on AVX2, 2 on SSE2/NEON; 8 accumulator vectors on each) is loaded into registers, gets the chunk's
// products, and is stored back. Row blocks are shared among OpenMP threads cyclically (their work
// grows with the row index).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "sparq/kernels/dispatch.hpp"
#include "sparq/simd/arch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace hessian_detail {

inline constexpr std::size_t kChunk = 256, kPanel = 8;

/// sums[i0 + a, j0 + c] += sum_t pi[t * 8 + a] * pj[t * 8 + c] for a < ib, c < jb (RB x 8 tile).
template <class Arch, std::size_t RB>
inline void tile(const double* pi, const double* pj, std::size_t tc, double* sums, std::size_t n, std::size_t i0,
                 std::size_t j0, std::size_t ib, std::size_t jb) noexcept {
  using batch = xsimd::batch<double, Arch>;
  constexpr std::size_t W = batch::size, NV = kPanel / W;
  static_assert(kPanel % W == 0, "hessian: the panel width must be a whole number of vectors");
  batch acc[RB][NV];
  alignas(64) double buf[RB * kPanel] = {};
  const bool full = ib == RB && jb == kPanel;
  for (std::size_t a = 0; a < RB; ++a) {
    if (full) {
      for (std::size_t v = 0; v < NV; ++v) acc[a][v] = batch::load_unaligned(sums + (i0 + a) * n + j0 + v * W);
    } else {
      for (std::size_t c = 0; a < ib && c < jb; ++c) buf[a * kPanel + c] = sums[(i0 + a) * n + j0 + c];
      for (std::size_t v = 0; v < NV; ++v) acc[a][v] = batch::load_aligned(buf + a * kPanel + v * W);
    }
  }
  for (std::size_t t = 0; t < tc; ++t) {
    const double* xi = pi + t * kPanel;
    batch xj[NV];
    for (std::size_t v = 0; v < NV; ++v) xj[v] = batch::load_aligned(pj + t * kPanel + v * W);
    for (std::size_t a = 0; a < RB; ++a) {
      const batch xa(xi[a]);
      for (std::size_t v = 0; v < NV; ++v) acc[a][v] = xsimd::fma(xa, xj[v], acc[a][v]);
    }
  }
  for (std::size_t a = 0; a < RB; ++a) {
    if (full) {
      for (std::size_t v = 0; v < NV; ++v) acc[a][v].store_unaligned(sums + (i0 + a) * n + j0 + v * W);
    } else {
      for (std::size_t v = 0; v < NV; ++v) acc[a][v].store_aligned(buf + a * kPanel + v * W);
      for (std::size_t c = 0; a < ib && c < jb; ++c) sums[(i0 + a) * n + j0 + c] = buf[a * kPanel + c];
    }
  }
}

}  // namespace hessian_detail

/// sums (n x n, row-major) += XᵀX over the `tokens` rows of x (row stride ldx), lower triangle;
/// see the file comment. Checks nothing (HessianAccumulator checks shapes and finiteness).
template <class Arch = simd::dynamic>
void hessian_accumulate(const float* x, std::size_t tokens, std::size_t ldx, std::size_t n, double* sums) {
  using namespace hessian_detail;
  using batch = xsimd::batch<double, Arch>;
  constexpr std::size_t RB = batch::size;  // RB x (8 / W) = 8 accumulator vectors on every target
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  std::vector<double, xsimd::aligned_allocator<double, 64>> xp(panels * kChunk * kPanel);
  const long long nblocks = static_cast<long long>((n + RB - 1) / RB);
  for (std::size_t t0 = 0; t0 < tokens; t0 += kChunk) {
    const std::size_t tc = std::min(kChunk, tokens - t0);
    const long long npanels = static_cast<long long>(panels);
#ifdef _OPENMP
#pragma omp parallel if (n * n * tc > 1000000)
#endif
    {
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
      for (long long pp = 0; pp < npanels; ++pp) {
        const std::size_t p = static_cast<std::size_t>(pp), c0 = p * kPanel, cw = std::min(kPanel, n - c0);
        double* dst = xp.data() + p * tc * kPanel;
        for (std::size_t t = 0; t < tc; ++t) {
          const float* r = x + (t0 + t) * ldx + c0;
          std::size_t c = 0;
          for (; c < cw; ++c) dst[t * kPanel + c] = static_cast<double>(r[c]);
          for (; c < kPanel; ++c) dst[t * kPanel + c] = 0.0;
        }
      }
#ifdef _OPENMP
#pragma omp for schedule(static, 1)
#endif
      for (long long bb = 0; bb < nblocks; ++bb) {
        const std::size_t i0 = static_cast<std::size_t>(bb) * RB, ib = std::min(RB, n - i0);
        const double* pi = xp.data() + (i0 / kPanel) * tc * kPanel + i0 % kPanel;
        for (std::size_t j0 = 0; j0 < i0 + ib; j0 += kPanel) {  // tiles touching the lower triangle
          const double* pj = xp.data() + (j0 / kPanel) * tc * kPanel;
          tile<Arch, RB>(pi, pj, tc, sums, n, i0, j0, ib, std::min(kPanel, n - j0));
        }
      }
    }
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void hessian_accumulate<simd::dynamic>(const float* x, std::size_t tokens, std::size_t ldx, std::size_t n,
                                              double* sums) {
  SPARQ_DISPATCH_CALL(hessian_accumulate, (hessian_accumulate<xsimd::default_arch>), x, tokens, ldx, n, sums);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
