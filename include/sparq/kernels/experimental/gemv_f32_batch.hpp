// EXPERIMENTAL: float GEMM as a batch of GEMV dot products (gemv_f32_batch).
//
// Not used by the library: no LinearOp packs this layout and the kernels are in no dispatch table
// (kernels/dispatch.hpp). They are kept, tested against their scalar references on every target
// (tests/kernels) and benchmarked, as measured alternatives: Y's row t equals gemv_f32(W, X[t]) bit
// for bit; the model's prefill uses kernels::dense_gemm (register-tiled, faster). Call them with an
// explicit Arch from code compiled for that target (the default is the translation unit's own,
// xsimd::default_arch). docs/kernels.md, "Experimental kernels".
#pragma once

#include <algorithm>
#include <cstddef>

#include "sparq/kernels/gemv_f32.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// Prefill: Y[t][k] = Σ_j X[t][j]·W[k][j] (Y = X·Wᵀ), X tokens × cols, Y tokens × rows, row-major.
/// Cache-blocked over 16 weight rows at a time (reused across all tokens, also on one thread); each Y entry is the same
/// dot product as gemv_f32 computes, so Y's row t equals gemv_f32(W, X[t]) bit for bit.
template <class Arch = xsimd::default_arch>
void gemv_f32_batch(const float* w, std::size_t rows, std::size_t cols, const float* x, std::size_t tokens,
                    float* y, int threads = 1) noexcept {
  constexpr std::size_t block = 16;  // 16 rows x cols floats (256 KiB at 4096 inputs) stay in L2 for all tokens
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t b0 = r0; b0 < r1; b0 += block) {
      const std::size_t b1 = std::min(r1, b0 + block);
      for (std::size_t t = 0; t < tokens; ++t) {
        for (std::size_t k = b0; k < b1; ++k) y[t * rows + k] = detail::dot_f32<Arch>(w + k * cols, x + t * cols, cols);
      }
    }
  });
}


SPARQ_TARGET_END

}  // namespace sparq::kernels
