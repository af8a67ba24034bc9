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
// ([panel][t][8], zero padded past n). An RB x (NJ·8) block of sums (RB = the vector width in
// doubles: 8 rows on AVX-512, 4 on AVX2, 2 on SSE2/NEON; NJ = 3 panels on AVX-512, i.e. 24
// accumulator vectors, 1 elsewhere, 8 accumulator vectors) is loaded into registers, gets the
// chunk's products, and is stored back. Row blocks are shared among OpenMP threads cyclically (their work
// grows with the row index).
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
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

/// a·b + c with one rounding. a·b is a product of two floats, exact in double, so this is also
/// a·b + c with the product rounded first: the same bits whichever instruction runs it. xsimd 8.1
/// spells fma on AVX-512 as a multiply and an add (twice the instructions), hence the intrinsic.
template <class Arch>
inline xsimd::batch<double, Arch> fmadd(xsimd::batch<double, Arch> a, xsimd::batch<double, Arch> b,
                                        xsimd::batch<double, Arch> c) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) return _mm512_fmadd_pd(a, b, c);
#endif
  return xsimd::fma(a, b, c);
}

/// Panels of 8 channels whose tiles one register block covers: 3 on AVX-512 (8 rows x 24 columns,
/// 24 accumulators of the 32 registers), 1 where registers are fewer (AVX2 / SSE2 / NEON).
template <class Arch>
inline constexpr std::size_t kPanelsPerTile = xsimd::batch<double, Arch>::size >= 8 ? 3 : 1;

/// c[a * ldc + col] += sum_t pi[t * 8 + a] * pj[...] for a full RB x NJ·8 tile of accumulators
/// (column col lies in panel col / 8, panels pj_stride doubles apart). Fully unrolled, so the
/// accumulators stay in registers.
template <class Arch, std::size_t RB, std::size_t NJ>
inline void tile_kernel(const double* pi, const double* pj, std::size_t pj_stride, std::size_t tc, double* c,
                        std::size_t ldc) noexcept {
  using batch = xsimd::batch<double, Arch>;
  constexpr std::size_t W = batch::size, NV = kPanel / W, NA = NJ * NV;
  static_assert(kPanel % W == 0, "hessian: the panel width must be a whole number of vectors");
  batch acc[RB][NA];
#pragma GCC unroll 16
  for (std::size_t a = 0; a < RB; ++a)
#pragma GCC unroll 8
    for (std::size_t v = 0; v < NA; ++v) acc[a][v] = batch::load_unaligned(c + a * ldc + v * W);
  for (std::size_t t = 0; t < tc; ++t) {
    const double* xi = pi + t * kPanel;
    batch xj[NA];
#pragma GCC unroll 4
    for (std::size_t q = 0; q < NJ; ++q)
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) xj[q * NV + v] = batch::load_aligned(pj + q * pj_stride + t * kPanel + v * W);
#pragma GCC unroll 16
    for (std::size_t a = 0; a < RB; ++a) {
      const batch xa(xi[a]);
#pragma GCC unroll 8
      for (std::size_t v = 0; v < NA; ++v) acc[a][v] = fmadd<Arch>(xa, xj[v], acc[a][v]);
    }
  }
#pragma GCC unroll 16
  for (std::size_t a = 0; a < RB; ++a)
#pragma GCC unroll 8
    for (std::size_t v = 0; v < NA; ++v) acc[a][v].store_unaligned(c + a * ldc + v * W);
}

/// sums[i0 + a, j0 + c] += sum_t pi[t * 8 + a] * pj[...] for a < ib, c < jb: tile_kernel on sums
/// itself, or on a zero-padded copy of the tile when it is cut by the matrix edge.
template <class Arch, std::size_t RB, std::size_t NJ>
inline void tile(const double* pi, const double* pj, std::size_t pj_stride, std::size_t tc, double* sums,
                 std::size_t n, std::size_t i0, std::size_t j0, std::size_t ib, std::size_t jb) noexcept {
  constexpr std::size_t TW = NJ * kPanel;
  if (ib == RB && jb == TW) {
    tile_kernel<Arch, RB, NJ>(pi, pj, pj_stride, tc, sums + i0 * n + j0, n);
    return;
  }
  alignas(64) double buf[RB * TW] = {};
  for (std::size_t a = 0; a < ib; ++a)
    for (std::size_t c = 0; c < jb; ++c) buf[a * TW + c] = sums[(i0 + a) * n + j0 + c];
  tile_kernel<Arch, RB, NJ>(pi, pj, pj_stride, tc, buf, TW);
  for (std::size_t a = 0; a < ib; ++a)
    for (std::size_t c = 0; c < jb; ++c) sums[(i0 + a) * n + j0 + c] = buf[a * TW + c];
}

}  // namespace hessian_detail

/// sums (n x n, row-major) += XᵀX over the `tokens` rows of x (row stride ldx), lower triangle;
/// see the file comment. Checks nothing (HessianAccumulator checks shapes and finiteness).
template <class Arch = simd::dynamic>
void hessian_accumulate(const float* x, std::size_t tokens, std::size_t ldx, std::size_t n, double* sums) {
  using namespace hessian_detail;
  using batch = xsimd::batch<double, Arch>;
  constexpr std::size_t RB = batch::size;  // rows per register block (see tile_kernel)
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  std::vector<double, xsimd::aligned_allocator<double, 64>> xp(panels * kChunk * kPanel);
  const long long nblocks = static_cast<long long>((n + RB - 1) / RB);
  // Column tiles: NJ panels wide over [0, wide_end), single panels after it, the same partition
  // for every row block (each element is in exactly one tile; the grouping does not change sums).
  constexpr std::size_t NJ = kPanelsPerTile<Arch>, kGroup = 8;
  const std::size_t wide_end = NJ > 1 ? n / (NJ * kPanel) * (NJ * kPanel) : 0;
  const long long ngroups = (nblocks + static_cast<long long>(kGroup) - 1) / static_cast<long long>(kGroup);
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
      for (long long gg = 0; gg < ngroups; ++gg) {
        // A group of kGroup row blocks walks the column tiles together, so each packed column panel
        // is read from memory once per group and reused from cache by its row blocks.
        const std::size_t b_lo = static_cast<std::size_t>(gg) * kGroup;
        const std::size_t b_hi = std::min(static_cast<std::size_t>(nblocks), b_lo + kGroup);
        const std::size_t row_end = std::min(n, b_hi * RB);
        for (std::size_t j0 = 0; j0 < row_end;) {
          const bool wide = j0 < wide_end;
          const double* pj = xp.data() + (j0 / kPanel) * tc * kPanel;
          for (std::size_t b = b_lo; b < b_hi; ++b) {
            const std::size_t i0 = b * RB, ib = std::min(RB, n - i0);
            if (j0 >= i0 + ib) continue;  // the tile lies above the diagonal of these rows
            const double* pi = xp.data() + (i0 / kPanel) * tc * kPanel + i0 % kPanel;
            if (wide)
              tile<Arch, RB, NJ>(pi, pj, tc * kPanel, tc, sums, n, i0, j0, ib, NJ * kPanel);
            else
              tile<Arch, RB, 1>(pi, pj, tc * kPanel, tc, sums, n, i0, j0, ib, std::min(kPanel, n - j0));
          }
          j0 += wide ? NJ * kPanel : kPanel;
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
