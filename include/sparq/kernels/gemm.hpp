// Blocked, packed dense GEMM (f32 and f64) on xsimd: C = beta*C + alpha*op(A)*op(B).
//
// Layout: every matrix is row-major with a leading dimension (row stride in elements).
//   op(A) is m x k: A itself (Trans::no, A stored m x k) or A^T (Trans::yes, A stored k x m).
//   op(B) is k x n: B itself (Trans::no, B stored k x n) or B^T (Trans::yes, B stored n x k).
// So the three products the pruning algorithms need are
//   C = A * B    : gemm(Trans::no,  Trans::no,  ...)
//   C = A * B^T  : gemm(Trans::no,  Trans::yes, ...)   (Y = X W^T, L L^T updates)
//   C = A^T * B  : gemm(Trans::yes, Trans::no,  ...)   (X^T X Hessians)
//
// Algorithm (the classic Goto/BLIS structure): loop over NC-wide column panels of op(B) and
// KC-deep slices of k; pack the KC x NC panel of op(B) into NR-wide strips; for each MC-tall row
// block of op(A) pack it into MR-tall strips and run an MR x NR register-tiled micro-kernel
// (broadcast of A times vectors of B, FMA into MR*NR/W accumulators). Ragged edges are handled
// by zero-padding the packed panels and writing only the valid part of the tile.
//
// Same results on every target (docs/kernels.md): each C element accumulates its k products in
// order, one KC = 192 slice at a time (KC does not depend on the arch), starting from 0; every
// product a·b is rounded before it is added (canonical::mul, never fused, also where the compiler
// would contract a*b + c), and after each slice C = C + alpha·acc with alpha·acc rounded first, in
// the vector path and the edge-tile path alike. MR, NR and the vector width only decide which
// elements are computed together, not how, so the result is bit-identical on every SIMD target
// (kernels/canonical.hpp).
//
// Threads: with OpenMP (`_OPENMP`), packing strips and MC row blocks are shared among threads by
// static partitioning. Every element of C is computed by the same sequence of floating-point
// operations (same k slices, same micro-kernel, same order) whatever the thread count, so the
// result is bit-identical for 1 or many threads. Without OpenMP the header compiles and runs
// single-threaded.
//
// Kernels check nothing (callers check shapes); the MatrixView overload `gemm(...)` below checks
// shapes and throws sparq::error. The kernel allocates its packing buffers (std::bad_alloc is the
// only exception it can raise).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/canonical.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

/// Whether a GEMM operand is used as stored or transposed.
enum class Trans : unsigned char { no, yes };

SPARQ_TARGET_BEGIN

namespace gemm_detail {

/// Blocking parameters for value type T on Arch.
template <class T, class Arch>
struct Config {
  using batch = xsimd::batch<T, Arch>;
  static constexpr std::size_t W = batch::size;
  static constexpr std::size_t NV = 2;            // vectors per micro-tile row
  static constexpr std::size_t NR = NV * W;       // micro-tile width
  // 32 vector registers on AVX-512 allow 12 x 2 accumulators; 16 registers allow 6 x 2.
  static constexpr std::size_t MR = (W * sizeof(T) >= 64) ? 12 : 6;
  static constexpr std::size_t KC = 192;          // packed B strip KC x NR stays in L1
  static constexpr std::size_t MC = MR * 12;      // packed A block MC x KC stays in L2
  static constexpr std::size_t NC = 4096;         // packed B panel KC x NC in L2/L3
};

template <class T>
using aligned_vector = std::vector<T, xsimd::aligned_allocator<T, 64>>;

/// Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) into MR-tall strips: strip s holds, for
/// each p, the MR values op(A)[i0+s*MR+r, p0+p] (zero past the last row).
template <std::size_t MR, class T>
inline void pack_a(Trans ta, const T* A, std::size_t lda, std::size_t i0, std::size_t mc,
                   std::size_t p0, std::size_t kc, T* out) noexcept {
  for (std::size_t s = 0; s < mc; s += MR) {
    const std::size_t mr = std::min(MR, mc - s);
    T* dst = out + s * kc;
    if (ta == Trans::no) {
      for (std::size_t p = 0; p < kc; ++p) {
        for (std::size_t r = 0; r < mr; ++r) dst[p * MR + r] = A[(i0 + s + r) * lda + p0 + p];
        for (std::size_t r = mr; r < MR; ++r) dst[p * MR + r] = T(0);
      }
    } else {
      for (std::size_t p = 0; p < kc; ++p) {
        const T* src = A + (p0 + p) * lda + i0 + s;
        for (std::size_t r = 0; r < mr; ++r) dst[p * MR + r] = src[r];
        for (std::size_t r = mr; r < MR; ++r) dst[p * MR + r] = T(0);
      }
    }
  }
}

/// Packs one NR-wide strip: columns [j0, j0+nr) x depth [p0, p0+kc) of op(B), for each p the NR
/// values op(B)[p0+p, j0+c] (zero past the last column).
template <std::size_t NR, class T>
inline void pack_b_strip(Trans tb, const T* B, std::size_t ldb, std::size_t j0, std::size_t nr,
                         std::size_t p0, std::size_t kc, T* dst) noexcept {
  if (tb == Trans::no) {
    for (std::size_t p = 0; p < kc; ++p) {
      const T* src = B + (p0 + p) * ldb + j0;
      for (std::size_t c = 0; c < nr; ++c) dst[p * NR + c] = src[c];
      for (std::size_t c = nr; c < NR; ++c) dst[p * NR + c] = T(0);
    }
  } else {
    for (std::size_t c = 0; c < nr; ++c) {
      const T* src = B + (j0 + c) * ldb + p0;
      for (std::size_t p = 0; p < kc; ++p) dst[p * NR + c] = src[p];
    }
    for (std::size_t c = nr; c < NR; ++c)
      for (std::size_t p = 0; p < kc; ++p) dst[p * NR + c] = T(0);
  }
}

/// MR x NR micro-kernel: C[0..mr, 0..nr) += alpha * (packed A strip) * (packed B strip).
template <class Arch, class T>
inline void micro_kernel(std::size_t kc, const T* a, const T* b, T alpha, T* C, std::size_t ldc,
                         std::size_t mr, std::size_t nr) noexcept {
  using Cfg = Config<T, Arch>;
  using batch = typename Cfg::batch;
  constexpr std::size_t MR = Cfg::MR, NV = Cfg::NV, W = Cfg::W, NR = Cfg::NR;
  batch acc[MR][NV];
#pragma GCC unroll 16
  for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v) acc[r][v] = batch(T(0));
  for (std::size_t p = 0; p < kc; ++p) {
    batch bv[NV];
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v) bv[v] = batch::load_aligned(b + p * NR + v * W);
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      const batch av(a[p * MR + r]);
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = acc[r][v] + canonical::mul(av, bv[v]);
    }
  }
  const batch va(alpha);
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      T* c = C + r * ldc;
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) {
        const batch cv = batch::load_unaligned(c + v * W);
        (cv + canonical::mul(va, acc[r][v])).store_unaligned(c + v * W);
      }
    }
  } else {
    alignas(64) T tile[MR * NR];
    for (std::size_t r = 0; r < MR; ++r)
      for (std::size_t v = 0; v < NV; ++v) acc[r][v].store_aligned(tile + r * NR + v * W);
    for (std::size_t r = 0; r < mr; ++r)
      for (std::size_t c = 0; c < nr; ++c) C[r * ldc + c] = C[r * ldc + c] + canonical::mul(alpha, tile[r * NR + c]);
  }
}

inline int max_threads() noexcept {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_id() noexcept {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace gemm_detail

/// C (m x n, ldc) = beta*C + alpha * op(A) * op(B), op(A) m x k, op(B) k x n (see the file
/// comment for layouts). beta == 0 overwrites C without reading it (NaNs in C do not leak).
/// T is float or double. Deterministic for any thread count.
template <class Arch = simd::dynamic, class T>
void gemm(Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "sparq::kernels::gemm supports float and double");
  using Cfg = gemm_detail::Config<T, Arch>;
  constexpr std::size_t MR = Cfg::MR, NR = Cfg::NR, KC = Cfg::KC, MC = Cfg::MC, NC = Cfg::NC;
  if (m == 0 || n == 0) return;
  // C = beta * C first (exactly 0 when beta == 0).
  if (beta != T(1)) {
    for (std::size_t i = 0; i < m; ++i) {
      T* c = C + i * ldc;
      if (beta == T(0)) {
        std::fill(c, c + n, T(0));
      } else {
        for (std::size_t j = 0; j < n; ++j) c[j] *= beta;
      }
    }
  }
  if (k == 0 || alpha == T(0)) return;

  const int nthreads = gemm_detail::max_threads();
  const std::size_t nc_max = std::min(NC, (n + NR - 1) / NR * NR);
  const std::size_t kc_max = std::min(KC, k);
  gemm_detail::aligned_vector<T> bpack(kc_max * nc_max);
  std::vector<gemm_detail::aligned_vector<T>> apacks(static_cast<std::size_t>(nthreads));
  const std::size_t mc_max = std::min(MC, (m + MR - 1) / MR * MR);
  for (auto& a : apacks) a.resize(mc_max * kc_max);

  for (std::size_t j0 = 0; j0 < n; j0 += NC) {
    const std::size_t nc = std::min(NC, n - j0);
    const std::size_t nstrips = (nc + NR - 1) / NR;
    for (std::size_t p0 = 0; p0 < k; p0 += KC) {
      const std::size_t kc = std::min(KC, k - p0);
      const std::size_t nblocks = (m + MC - 1) / MC;
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && m * n * kc > 32768)
#endif
      {
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (std::size_t s = 0; s < nstrips; ++s) {
          const std::size_t jj = s * NR;
          gemm_detail::pack_b_strip<NR>(tb, B, ldb, j0 + jj, std::min(NR, nc - jj), p0, kc,
                                        bpack.data() + jj * kc);
        }
        T* apack = apacks[static_cast<std::size_t>(gemm_detail::thread_id())].data();
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (std::size_t blk = 0; blk < nblocks; ++blk) {
          const std::size_t i0 = blk * MC;
          const std::size_t mc = std::min(MC, m - i0);
          gemm_detail::pack_a<MR>(ta, A, lda, i0, mc, p0, kc, apack);
          for (std::size_t jj = 0; jj < nc; jj += NR) {
            const std::size_t nr = std::min(NR, nc - jj);
            const T* bp = bpack.data() + jj * kc;
            for (std::size_t ii = 0; ii < mc; ii += MR) {
              const std::size_t mr = std::min(MR, mc - ii);
              gemm_detail::micro_kernel<Arch>(kc, apack + ii * kc, bp, alpha,
                                              C + (i0 + ii) * ldc + j0 + jj, ldc, mr, nr);
            }
          }
        }
      }
    }
  }
}

/// Checked form: C = beta*C + alpha*op(A)*op(B) on MatrixViews. Throws sparq::error when the
/// shapes do not agree (naming them).
template <class Arch = simd::dynamic, class TA, class TB, class T>
  requires(std::is_same_v<std::remove_const_t<TA>, T> && std::is_same_v<std::remove_const_t<TB>, T> &&
           !std::is_const_v<T>)
void gemm(Trans ta, Trans tb, MatrixView<TA> A, MatrixView<TB> B, MatrixView<T> C, T alpha = T(1),
          T beta = T(0)) {
  const std::size_t m = ta == Trans::no ? A.rows() : A.cols();
  const std::size_t ka = ta == Trans::no ? A.cols() : A.rows();
  const std::size_t kb = tb == Trans::no ? B.rows() : B.cols();
  const std::size_t n = tb == Trans::no ? B.cols() : B.rows();
  SPARQ_CHECK(ka == kb, "gemm: op(A) is ", m, "x", ka, " but op(B) is ", kb, "x", n,
              " (inner dimensions must agree)");
  SPARQ_CHECK(C.rows() == m && C.cols() == n, "gemm: C is ", C.rows(), "x", C.cols(),
              ", expected ", m, "x", n);
  gemm<Arch>(ta, tb, m, n, ka, alpha, A.data(), A.stride(), B.data(), B.stride(), beta, C.data(),
             C.stride());
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemm<simd::dynamic, float>(
    Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* A,
    std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) {
  SPARQ_DISPATCH_CALL(gemm_f32, (gemm<xsimd::default_arch, float>), ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
template <>
inline void gemm<simd::dynamic, double>(
    Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* A,
    std::size_t lda, const double* B, std::size_t ldb, double beta, double* C, std::size_t ldc) {
  SPARQ_DISPATCH_CALL(gemm_f64, (gemm<xsimd::default_arch, double>), ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
