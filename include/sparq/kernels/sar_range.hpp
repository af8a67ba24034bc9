// SarRangeAccumulator: JSQ's auxiliary saliency A_kj (output range after removing W_kj), exact, O(T*cin*cout).
//
// Definition (JSQ Eq. 3, docs/algorithms.md#sar): with Y = X W^T over a set of tokens t,
//   A_kj = max_t (Y_tk - X_tj W_kj) - min_t (Y_tk - X_tj W_kj),
// the range of output channel k once the single weight W_kj is zeroed. The reference computes it
// with one full GEMM per input channel (O(T*cin^2*cout)); here Y is computed once by GEMM and
// every (k, j) scans t with one multiply and one subtract, so the cost is O(T*cin*cout) element
// operations and the result equals the definition up to FP32 rounding of Y.
//
// Same results on every SIMD target (docs/kernels.md): Y comes from kernels::gemm (target-
// independent), v = Y_tk - round(X_tj·W_kj) with the product rounded first (kernels::canonical::mul,
// never fused), and max/min are exact; the tile width 2W only groups independent elements.
//
// Token sets: feed the position-wise mean sequence once (the reference behaviour, `MeanSequence`)
// or every calibration token, chunk by chunk (the paper's definition); running max/min per (k, j)
// are kept between chunks, so any split gives the same result.
//
// Kernel layout: X^T (cin x T) and W^T (cin x cout, padded to whole tiles) so that the scan for one
// input channel j reads X_tj sequentially and updates KT consecutive outputs k with vector ops; Y
// is copied tile by tile (T x KT, contiguous) so it stays in L2 while all j are scanned. Threads
// share the k tiles (static), so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/canonical.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/simd/arch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// Running max/min update of the SAR scan for one k tile [k0, k0 + 2W) (W = batch size):
/// for every j in [0, cin) and t in [0, T): v = ytile[t][0..2W) - xt[j][t] * wt[j][k0..k0+2W),
/// mx[j][k0..] = max(mx, v), mn[j][k0..] = min(mn, v). `ytile` is T x 2W contiguous; xt, wt, mx, mn
/// are row-major with leading dimensions ldx, ldw (= ldm). All k columns of the tile must exist in
/// wt/mx/mn (padded). noexcept, no checks.
template <class Arch = xsimd::default_arch>
void sar_range_tile(const float* ytile, std::size_t T, const float* xt, std::size_t ldx,
                    const float* wt, float* mx, float* mn, std::size_t ldw, std::size_t cin,
                    std::size_t k0) noexcept {
  using batch = xsimd::batch<float, Arch>;
  constexpr std::size_t W = batch::size;
  constexpr std::size_t JB = W >= 16 ? 4 : 2;  // input channels per pass (register budget)
  std::size_t j = 0;
  for (; j + JB <= cin; j += JB) {
    batch w0[JB], w1[JB], hi0[JB], hi1[JB], lo0[JB], lo1[JB];
    const float* xr[JB];
    for (std::size_t q = 0; q < JB; ++q) {
      const std::size_t o = (j + q) * ldw + k0;
      w0[q] = batch::load_unaligned(wt + o);
      w1[q] = batch::load_unaligned(wt + o + W);
      hi0[q] = batch::load_unaligned(mx + o);
      hi1[q] = batch::load_unaligned(mx + o + W);
      lo0[q] = batch::load_unaligned(mn + o);
      lo1[q] = batch::load_unaligned(mn + o + W);
      xr[q] = xt + (j + q) * ldx;
    }
    for (std::size_t t = 0; t < T; ++t) {
      const batch y0 = batch::load_aligned(ytile + t * 2 * W);
      const batch y1 = batch::load_aligned(ytile + t * 2 * W + W);
#pragma GCC unroll 4
      for (std::size_t q = 0; q < JB; ++q) {
        const batch x(xr[q][t]);
        const batch v0 = y0 - kernels::canonical::mul(x, w0[q]);  // y - x*w, product rounded first
        const batch v1 = y1 - kernels::canonical::mul(x, w1[q]);
        hi0[q] = xsimd::max(hi0[q], v0);
        hi1[q] = xsimd::max(hi1[q], v1);
        lo0[q] = xsimd::min(lo0[q], v0);
        lo1[q] = xsimd::min(lo1[q], v1);
      }
    }
    for (std::size_t q = 0; q < JB; ++q) {
      const std::size_t o = (j + q) * ldw + k0;
      hi0[q].store_unaligned(mx + o);
      hi1[q].store_unaligned(mx + o + W);
      lo0[q].store_unaligned(mn + o);
      lo1[q].store_unaligned(mn + o + W);
    }
  }
  for (; j < cin; ++j) {
    const std::size_t o = j * ldw + k0;
    const batch w0 = batch::load_unaligned(wt + o), w1 = batch::load_unaligned(wt + o + W);
    batch hi0 = batch::load_unaligned(mx + o), hi1 = batch::load_unaligned(mx + o + W);
    batch lo0 = batch::load_unaligned(mn + o), lo1 = batch::load_unaligned(mn + o + W);
    const float* xr = xt + j * ldx;
    for (std::size_t t = 0; t < T; ++t) {
      const batch x(xr[t]);
      const batch v0 = batch::load_aligned(ytile + t * 2 * W) - kernels::canonical::mul(x, w0);
      const batch v1 = batch::load_aligned(ytile + t * 2 * W + W) - kernels::canonical::mul(x, w1);
      hi0 = xsimd::max(hi0, v0);
      hi1 = xsimd::max(hi1, v1);
      lo0 = xsimd::min(lo0, v0);
      lo1 = xsimd::min(lo1, v1);
    }
    hi0.store_unaligned(mx + o);
    hi1.store_unaligned(mx + o + W);
    lo0.store_unaligned(mn + o);
    lo1.store_unaligned(mn + o + W);
  }
}

SPARQ_TARGET_END

}  // namespace sparq::kernels

namespace sparq {

/// Accumulates A (see the file comment) for one dense weight matrix W (cout x cin) over tokens fed
/// in any number of chunks. `Arch` picks the SIMD target of the scan and the GEMM.
template <class Arch = xsimd::default_arch>
class SarRangeAccumulator {
  using batch = xsimd::batch<float, Arch>;
  static constexpr std::size_t KT = 2 * batch::size;  // outputs per tile

 public:
  /// Copies W (transposed and tile-padded). bf16_compat rounds W, then every token, to bf16 first
  /// and the final max/min/range to bf16 (docs/algorithms.md#sar). Throws on non-finite W.
  explicit SarRangeAccumulator(MatrixView<const float> w, bool bf16_compat = false,
                               std::size_t chunk_tokens = 2048)
      : cout_(w.rows()), cin_(w.cols()), ld_((w.rows() + KT - 1) / KT * KT), bf16_(bf16_compat),
        chunk_(chunk_tokens == 0 ? 2048 : chunk_tokens), w_(w.rows(), w.cols()), wt_(cin_ * ld_, 0.0f),
        mx_(cin_ * ld_, -std::numeric_limits<float>::infinity()),
        mn_(cin_ * ld_, std::numeric_limits<float>::infinity()) {
    SPARQ_CHECK(cout_ > 0 && cin_ > 0, "SarRangeAccumulator: empty weight matrix ", cout_, "x", cin_);
    for (std::size_t k = 0; k < cout_; ++k) {
      check_finite(w.row(k), cin_, "SarRangeAccumulator: weights");
      for (std::size_t j = 0; j < cin_; ++j) {
        const float v = bf16_ ? round_to_bf16(w(k, j)) : w(k, j);
        w_(k, j) = v;
        wt_[j * ld_ + k] = v;
      }
    }
  }

  [[nodiscard]] std::size_t rows() const noexcept { return cout_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cin_; }
  [[nodiscard]] std::size_t tokens() const noexcept { return tokens_; }

  /// Adds tokens x (T x cin). Throws on a column mismatch or non-finite activations.
  void add(MatrixView<const float> x) {
    SPARQ_CHECK(x.cols() == cin_, "SarRangeAccumulator::add: activations have ", x.cols(),
                " columns, expected cin = ", cin_);
    for (std::size_t t = 0; t < x.rows(); ++t) check_finite(x.row(t), cin_, "SarRangeAccumulator::add: activations");
    for (std::size_t t0 = 0; t0 < x.rows(); t0 += chunk_) add_chunk(x.rows_range(t0, std::min(chunk_, x.rows() - t0)));
    tokens_ += x.rows();
  }

  /// A (cout x cin): max - min per (k, j); non-finite entries become `nonfinite`. Throws if no
  /// token was added.
  [[nodiscard]] Matrix<float> ranges(float nonfinite = 100.0f) const {
    SPARQ_CHECK(tokens_ > 0, "SarRangeAccumulator::ranges: no tokens were added");
    Matrix<float> a(cout_, cin_);
    for (std::size_t j = 0; j < cin_; ++j)
      for (std::size_t k = 0; k < cout_; ++k) {
        float hi = mx_[j * ld_ + k], lo = mn_[j * ld_ + k];
        float r;
        if (bf16_) {
          r = round_to_bf16(round_to_bf16(hi) - round_to_bf16(lo));
        } else {
          r = hi - lo;
        }
        a(k, j) = std::isfinite(r) ? r : nonfinite;
      }
    return a;
  }

 private:
  void add_chunk(MatrixView<const float> x) {
    const std::size_t T = x.rows();
    // X^T (cin x T), bf16-rounded in compat mode, and X itself for the GEMM.
    std::vector<float> xt(cin_ * T), xr(T * cin_);
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t j = 0; j < cin_; ++j) {
        const float v = bf16_ ? round_to_bf16(x(t, j)) : x(t, j);
        xt[j * T + t] = v;
        xr[t * cin_ + j] = v;
      }
    // Y = X W^T (T x cout).
    std::vector<float> y(T * cout_);
    kernels::gemm<Arch>(kernels::Trans::no, kernels::Trans::yes, T, cout_, cin_, 1.0f, xr.data(), cin_,
                        w_.data(), cin_, 0.0f, y.data(), cout_);
    const long long ntiles = static_cast<long long>(ld_ / KT);
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
      std::vector<float, xsimd::aligned_allocator<float, 64>> tile(T * KT);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
      for (long long ti = 0; ti < ntiles; ++ti) {
        const std::size_t k0 = static_cast<std::size_t>(ti) * KT;
        const std::size_t kn = std::min(KT, cout_ - k0);
        for (std::size_t t = 0; t < T; ++t) {
          const float* yr = y.data() + t * cout_ + k0;
          float* dst = tile.data() + t * KT;
          for (std::size_t c = 0; c < kn; ++c) dst[c] = yr[c];
          for (std::size_t c = kn; c < KT; ++c) dst[c] = 0.0f;
        }
        kernels::sar_range_tile<Arch>(tile.data(), T, xt.data(), T, wt_.data(), mx_.data(), mn_.data(), ld_,
                                      cin_, k0);
      }
    }
  }

  std::size_t cout_, cin_, ld_;
  bool bf16_;
  std::size_t chunk_;
  Matrix<float> w_;
  std::vector<float> wt_, mx_, mn_;
  std::size_t tokens_ = 0;
};

}  // namespace sparq
