// Unstructured bitmask-sparse float GEMV: y[k] = Σ_{j : bit j of row k set} v[k][·]·x[j].
//
// Layout: per row a bitmask of cols bits, bit c = bit c%8 of byte c/8 of the row's mask (row
// stride ⌈cols/8⌉ bytes), and the kept values of all rows in column order in one array;
// row_offsets[k] .. row_offsets[k+1] are row k's values (row_offsets has rows + 1 entries,
// row_offsets[k+1] − row_offsets[k] = popcount of row k's mask). AVX-512: 16 columns at a time,
// vexpandps places the next popcount(m) values under the mask bits, then one FMA with x. AVX2:
// 8 columns per mask byte, the expand emulated with a table-driven vpermps (detail::bitmask_expand8).
// SSE2 / generic: scalar loop.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

#if defined(__AVX2__) && defined(__FMA__)
namespace detail {

/// AVX2 has no vexpandps; it is emulated per mask byte m (8 columns): load the next 8 values
/// (a plain unaligned load while 8 values remain before the end of the values array, else a masked
/// load of the popcount(m) that belong to this byte, so no read goes past the array), vpermps moves
/// value r to the lane of the r-th set bit, and an and with the set-bit lanes clears the others.
/// bitmask_lut.src[m] holds the 8 lane sources as bytes, bitmask_lut.keep[m] 0xff per set bit.
/// (Always using the masked load measured about 2x slower streaming from memory on an AMD EPYC.)
struct BitmaskLut {
  std::uint64_t src[256];
  std::uint64_t keep[256];
  constexpr BitmaskLut() noexcept : src{}, keep{} {
    for (unsigned m = 0; m < 256; ++m) {
      unsigned r = 0;
      for (unsigned lane = 0; lane < 8; ++lane) {
        if ((m >> lane) & 1u) {
          src[m] |= static_cast<std::uint64_t>(r++) << (8 * lane);
          keep[m] |= std::uint64_t{0xff} << (8 * lane);
        }
      }
    }
  }
};
inline constexpr BitmaskLut bitmask_lut{};

/// 8 floats: the next popcount(m) values of v expanded under the set bits of m (m < 256), 0
/// elsewhere; `left` = values remaining in the array from v.
[[nodiscard]] inline __m256 bitmask_expand8(unsigned m, const float* v, std::ptrdiff_t left) noexcept {
  __m256 packed;
  if (left >= 8) {
    packed = _mm256_loadu_ps(v);
  } else {
    const int pc = std::popcount(m);
    const __m256i take = _mm256_cmpgt_epi32(_mm256_set1_epi32(pc), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    packed = _mm256_maskload_ps(v, take);
  }
  const __m256i idx = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bitmask_lut.src[m])));
  const __m256i keep = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bitmask_lut.keep[m])));
  return _mm256_and_ps(_mm256_permutevar8x32_ps(packed, idx), _mm256_castsi256_ps(keep));
}

}  // namespace detail
#endif

/// y[k] = Σ_{j in mask row k} values[row_offsets[k] + rank(j)]·x[j].
template <class Arch = simd::dynamic>
void gemv_bitmask_f32(const std::uint8_t* mask, const float* values, const std::size_t* row_offsets, std::size_t rows,
                      std::size_t cols, const float* x, float* y, int threads = 1) noexcept {
  const std::size_t mb = (cols + 7) / 8;
  [[maybe_unused]] const float* const vend = values + row_offsets[rows];  // end of the kept values
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
#if defined(__AVX2__) && defined(__FMA__)
      if constexpr (detail::is_avx2_v<Arch> && !detail::is_avx512bw_v<Arch>) {
        // 32 columns (4 mask bytes) per step into four accumulators, then 8-column steps with the
        // mask bits and the x lanes past cols cleared (masked loads: no read past x or the mask row).
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        std::size_t c = 0;
        for (; c + 32 <= cols; c += 32) {
          std::uint32_t m;
          std::memcpy(&m, mrow + c / 8, 4);
          for (int i = 0; i < 4; ++i) {
            const unsigned mi = (m >> (8 * i)) & 0xffu;
            acc[i] = _mm256_fmadd_ps(detail::bitmask_expand8(mi, v, vend - v), _mm256_loadu_ps(x + c + 8 * i), acc[i]);
            v += std::popcount(mi);
          }
        }
        for (int i = 0; c < cols; c += 8, i = (i + 1) % 4) {
          const std::size_t left = cols - c;
          const unsigned lm = left >= 8 ? 0xffu : (1u << left) - 1u;
          const unsigned mi = mrow[c / 8] & lm;
          const __m256i xin = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left >= 8 ? 8 : left)),
                                                 _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
          acc[i] = _mm256_fmadd_ps(detail::bitmask_expand8(mi, v, vend - v), _mm256_maskload_ps(x + c, xin), acc[i]);
          v += std::popcount(mi);
        }
        const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        y[k] = _mm_cvtss_f32(h);
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

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_bitmask_f32<simd::dynamic>(
    const std::uint8_t* mask, const float* values, const std::size_t* row_offsets, std::size_t rows,
    std::size_t cols, const float* x, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_bitmask_f32, (gemv_bitmask_f32<xsimd::default_arch>), mask, values, row_offsets, rows, cols, x, y, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
