// Unstructured bitmask-sparse float GEMV: y[k] = Σ_{j : bit j of row k set} v[k][·]·x[j].
//
// Layout: per row a bitmask of cols bits, bit c = bit c%8 of byte c/8 of the row's mask (row
// stride ⌈cols/8⌉ bytes), and the kept values of all rows in column order in one array;
// row_offsets[k] .. row_offsets[k+1] are row k's values (row_offsets has rows + 1 entries,
// row_offsets[k+1] − row_offsets[k] = popcount of row k's mask). AVX-512: 16 columns at a time,
// vexpandps places the next popcount(m) values under the mask bits, then one FMA with x.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/kernels/gemv_common.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// y[k] = Σ_{j in mask row k} values[row_offsets[k] + rank(j)]·x[j].
template <class Arch = xsimd::default_arch>
void gemv_bitmask_f32(const std::uint8_t* mask, const float* values, const std::size_t* row_offsets, std::size_t rows,
                      std::size_t cols, const float* x, float* y, int threads = 1) noexcept {
  const std::size_t mb = (cols + 7) / 8;
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t k = r0; k < r1; ++k) {
      const std::uint8_t* mrow = mask + k * mb;
      const float* v = values + row_offsets[k];
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (detail::is_avx512bw_v<Arch>) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        std::size_t c = 0;
        for (; c + 32 <= cols; c += 32) {
          std::uint32_t m;
          std::memcpy(&m, mrow + c / 8, 4);
          const auto m0 = static_cast<__mmask16>(m & 0xffffu), m1 = static_cast<__mmask16>(m >> 16);
          acc0 = _mm512_fmadd_ps(_mm512_maskz_expandloadu_ps(m0, v), _mm512_loadu_ps(x + c), acc0);
          v += std::popcount(static_cast<unsigned>(m0));
          acc1 = _mm512_fmadd_ps(_mm512_maskz_expandloadu_ps(m1, v), _mm512_loadu_ps(x + c + 16), acc1);
          v += std::popcount(static_cast<unsigned>(m1));
        }
        for (; c < cols; c += 16) {
          const std::size_t left = cols - c;
          std::uint16_t m = 0;
          std::memcpy(&m, mrow + c / 8, left >= 16 ? 2 : (left + 7) / 8);
          const auto lm = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
          const auto mk = static_cast<__mmask16>(m & lm);
          acc0 = _mm512_fmadd_ps(_mm512_maskz_expandloadu_ps(mk, v), _mm512_maskz_loadu_ps(lm, x + c), acc0);
          v += std::popcount(static_cast<unsigned>(mk));
        }
        y[k] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        continue;
      }
#endif
      float s = 0.0f;
      for (std::size_t c = 0; c < cols; ++c) {
        if ((mrow[c / 8] >> (c % 8)) & 1u) s = std::fma(*v++, x[c], s);
      }
      y[k] = s;
    }
  });
}

SPARQ_TARGET_END

}  // namespace sparq::kernels
