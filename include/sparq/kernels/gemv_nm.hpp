// N:M-sparse GEMV (2:4 and 4:8; values float, int8 per-row or int4 per-group), float activations.
//
// Layout (the JSQ output format): for each row and each group g of M consecutive inputs exactly N
// values are kept, in increasing column order: values[row][g·N + i], i < N. Per kept value an
// index, its position inside its group (0..M−1), packed per row, each row starting on a byte:
//   M = 4: 2 bits per index, index i at bits [2(i%4), 2(i%4)+2) of byte i/4  (row bytes ⌈nk/4⌉)
//   M = 8: 4 bits per index, index i in the low nibble of byte i/2 if i is even, else the high one
//          (row bytes ⌈nk/2⌉)
// with nk = cols·N/M kept values per row. y[k] = Σ_i v[k][i]·x[M·⌊i/N⌋ + idx[k][i]], with v:
//   gemv_nm_f32: v float;  gemv_nm_q8: v = scale[k]·q (int8 codes, per-row scale);
//   gemv_nm_q4:  v = s[k][g]·(u − z[k][g]) with the kept values packed as int4 (gemv_q4.hpp layout)
//                over the nk kept values, groups of G counted over kept values (G | nk).
// AVX-512 with N/M = 1/2: 16 kept values cover 32 inputs; their indices become lane offsets
// (index + M·group) and one vpermt2ps gathers the 16 activations from two registers. 2:4 f32
// computes 4 rows per pass (shared activation loads, the next pass's rows software-prefetched;
// each row's sum is formed in the same order as alone). AVX2 with N/M = 1/2: 8 kept values span
// 16 inputs; two permutes (2:4: in-lane vpermilps on windows regrouped per group of 4, the raw
// indices as control; 4:8: vpermps per 8-input window) and a blend gather their activations, 4 rows
// per pass with shared activation loads (nm_rows_avx2). Other archs and other N:M ratios use the
// portable loop. cols % M == 0 (callers check). The 2:4 int4 W4A8 kernels are in gemv_nm_mask.hpp
// (presence-mask tiles, the fastest; what NMLinear runs) and experimental/gemv_nm_a8.hpp (this layout).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// Bytes of one row's packed indices for `kept` kept values of an N:M pattern with group size m.
[[nodiscard]] constexpr std::size_t nm_index_row_bytes(std::size_t kept, std::size_t m) noexcept {
  return m == 4 ? (kept + 3) / 4 : (kept + 1) / 2;
}

/// The in-group position of kept value i of a row's packed index array.
[[nodiscard]] inline unsigned nm_index(const std::uint8_t* row_idx, std::size_t i, std::size_t m) noexcept {
  if (m == 4) return (row_idx[i / 4] >> (2 * (i % 4))) & 3u;
  return (i % 2 == 0) ? (row_idx[i / 2] & 15u) : (row_idx[i / 2] >> 4);
}

namespace detail {

#if defined(__AVX512BW__) && defined(__AVX512VL__)
/// Offsets (relative to the first of 32 inputs) of 16 kept values whose packed indices start at
/// `ip` (4 bytes for M = 4, 8 bytes for M = 8; the caller guarantees they are readable).
template <std::size_t M>
[[nodiscard]] inline __m512i nm_offsets16(const std::uint8_t* ip) noexcept {
  if constexpr (M == 4) {
    std::uint32_t w;
    std::memcpy(&w, ip, 4);
    const __m512i sh = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i base = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
    const __m512i v = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(w)), sh), _mm512_set1_epi32(3));
    return _mm512_add_epi32(v, base);
  } else {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(ip));
    const __m512i dup = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b));  // byte i/2 in lane i
    const __m512i sh = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    const __m512i base = _mm512_setr_epi32(0, 0, 0, 0, 8, 8, 8, 8, 16, 16, 16, 16, 24, 24, 24, 24);
    return _mm512_add_epi32(_mm512_and_si512(_mm512_srlv_epi32(dup, sh), _mm512_set1_epi32(15)), base);
  }
}

/// Σ over one row of v(i)·x[...] for N/M = 1/2, where load_v(i0, mask) gives 16 float values.
template <std::size_t M, class LoadV>
[[nodiscard]] inline float nm_row_avx512(const std::uint8_t* idx, std::size_t cols, const float* x,
                                         LoadV&& load_v) noexcept {
  const std::size_t nk = cols / 2;
  const std::size_t ib = nm_index_row_bytes(nk, M);
  constexpr std::size_t step_bytes = M == 4 ? 4 : 8;  // index bytes per 16 kept values
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= nk; i += 32) {
    const std::size_t c = 2 * i;
    const __m512 x0 = _mm512_permutex2var_ps(_mm512_loadu_ps(x + c), nm_offsets16<M>(idx + i / 16 * step_bytes),
                                             _mm512_loadu_ps(x + c + 16));
    const __m512 x1 = _mm512_permutex2var_ps(_mm512_loadu_ps(x + c + 32),
                                             nm_offsets16<M>(idx + (i + 16) / 16 * step_bytes),
                                             _mm512_loadu_ps(x + c + 48));
    acc0 = _mm512_fmadd_ps(load_v(i, __mmask16(0xffff)), x0, acc0);
    acc1 = _mm512_fmadd_ps(load_v(i + 16, __mmask16(0xffff)), x1, acc1);
  }
  for (; i < nk; i += 16) {
    const std::size_t left = nk - i;
    const auto vm = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    std::uint8_t ibuf[8] = {};
    std::memcpy(ibuf, idx + i / 16 * step_bytes, std::min(step_bytes, ib - i / 16 * step_bytes));
    const std::size_t c = 2 * i, xl = cols - c;
    const auto m0 = xl >= 16 ? __mmask16(0xffff) : __mmask16((1u << xl) - 1);
    const auto m1 = xl >= 32 ? __mmask16(0xffff) : xl <= 16 ? __mmask16(0) : __mmask16((1u << (xl - 16)) - 1);
    const __m512 xv = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, x + c), nm_offsets16<M>(ibuf),
                                             _mm512_maskz_loadu_ps(m1, x + c + 16));
    acc0 = _mm512_fmadd_ps(load_v(i, vm), xv, acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}
/// 2:4 f32, NR rows at once (row r: values v + r·nk, indices idx + r·ib): the rows share the
/// activation loads; each row's sum is formed exactly as nm_row_avx512<4> forms it (same lanes, same
/// order), so the result does not depend on NR. Offsets: (index bits) | (4·⌊lane/2⌋) in one
/// vpternlogd. Prefetch: the same kept values of the rows `Passes` passes (Passes·NR rows) ahead
/// (one pass measured best, 2 and 8-row passes slightly slower).
template <int NR, bool Prefetch, int Passes = 1>
inline void nm24_f32_rows_avx512(const float* v, const std::uint8_t* idx, std::size_t cols, const float* x,
                                 float* out) noexcept {
  const std::size_t nk = cols / 2, ib = nm_index_row_bytes(nk, 4);
  const __m512i sh = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i base = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
  const __m512i three = _mm512_set1_epi32(3);
  auto offsets = [&](const std::uint8_t* ip) {
    std::uint32_t w;
    std::memcpy(&w, ip, 4);
    // (a & b) | c with a = shifted bits, b = 3, c = base: imm 0xEA
    return _mm512_ternarylogic_epi32(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(w)), sh), three, base, 0xEA);
  };
  __m512 acc0[NR], acc1[NR];
  for (int r = 0; r < NR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= nk; i += 32) {
    if constexpr (Prefetch) {
      const std::uintptr_t vp = reinterpret_cast<std::uintptr_t>(v) + (Passes * NR * nk + i) * sizeof(float);
      const std::uintptr_t ipf = reinterpret_cast<std::uintptr_t>(idx) + Passes * NR * ib + i / 4;
      for (int r = 0; r < NR; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(vp + r * nk * sizeof(float)), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(vp + r * nk * sizeof(float) + 64), _MM_HINT_T0);
        if (i % 256 == 0) _mm_prefetch(reinterpret_cast<const char*>(ipf + r * ib), _MM_HINT_T0);
      }
    }
    const std::size_t c = 2 * i;
    const __m512 xa = _mm512_loadu_ps(x + c), xb = _mm512_loadu_ps(x + c + 16);
    const __m512 xc = _mm512_loadu_ps(x + c + 32), xd = _mm512_loadu_ps(x + c + 48);
    for (int r = 0; r < NR; ++r) {
      const std::uint8_t* ip = idx + r * ib + i / 4;
      const float* vr = v + r * nk + i;
      acc0[r] = _mm512_fmadd_ps(_mm512_loadu_ps(vr), _mm512_permutex2var_ps(xa, offsets(ip), xb), acc0[r]);
      acc1[r] = _mm512_fmadd_ps(_mm512_loadu_ps(vr + 16), _mm512_permutex2var_ps(xc, offsets(ip + 4), xd), acc1[r]);
    }
  }
  for (; i < nk; i += 16) {  // tail, as in nm_row_avx512
    const std::size_t left = nk - i;
    const auto vm = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    const std::size_t c = 2 * i, xl = cols - c;
    const auto m0 = xl >= 16 ? __mmask16(0xffff) : __mmask16((1u << xl) - 1);
    const auto m1 = xl >= 32 ? __mmask16(0xffff) : xl <= 16 ? __mmask16(0) : __mmask16((1u << (xl - 16)) - 1);
    const __m512 xa = _mm512_maskz_loadu_ps(m0, x + c), xb = _mm512_maskz_loadu_ps(m1, x + c + 16);
    for (int r = 0; r < NR; ++r) {
      std::uint8_t ibuf[4] = {};
      std::memcpy(ibuf, idx + r * ib + i / 4, std::min<std::size_t>(4, ib - i / 4));
      acc0[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(vm, v + r * nk + i), _mm512_permutex2var_ps(xa, offsets(ibuf), xb),
                                acc0[r]);
    }
  }
  for (int r = 0; r < NR; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/// AVX2, N/M = 1/2: 8 kept values span 16 inputs, loaded as two 8-float windows xa = x[c, c+8),
/// xb = x[c+8, c+16) (layout: docs/kernels.md, "N:M sparse").
///  - 2:4: the windows are regrouped once for all rows of a pass into X1 = [group 0 | group 2] and
///    X2 = [group 1 | group 3] (vperm2f128; one 128-bit lane = one group of 4 inputs). The raw 2-bit
///    indices of kept values 0..7, one per dword, are then a vpermilps control as they stand
///    (vpermilps reads bits 0-1 and stays in its lane): X1 permuted gives groups 0 and 2 in dwords
///    0-1 of each lane, X2 permuted gives groups 1 and 3 in dwords 2-3, and a blend interleaves them
///    into kept order 0..7. Per row: one vpsrlvd, two in-lane permutes, one blend per 8 kept values.
///  - 4:8: kept values 0-3 lie in xa, 4-7 in xb, at offsets idx (< 8): two vpermps (one per window,
///    the indices w >> 4l as control: vpermps reads bits 0-2) and a blend of the halves.
template <std::size_t M>
[[nodiscard]] inline __m256i nm_offsets8_avx2(__m256i w, __m256i sh) noexcept {
  return _mm256_srlv_epi32(w, sh);  // bits above the index are ignored by the permutes
}

/// The windows x[c, c+8), x[c+8, c+16) as the gather below wants them (2:4: regrouped per group).
template <std::size_t M>
inline void nm_windows_avx2(const float* xc, __m256& wa, __m256& wb) noexcept {
  const __m256 xa = _mm256_loadu_ps(xc), xb = _mm256_loadu_ps(xc + 8);
  if constexpr (M == 4) {
    wa = _mm256_permute2f128_ps(xa, xb, 0x20);  // [group 0 | group 2]
    wb = _mm256_permute2f128_ps(xa, xb, 0x31);  // [group 1 | group 3]
  } else {
    wa = xa;
    wb = xb;
  }
}

/// The 8 activations of kept values [i, i+8) from nm_windows_avx2's windows and the lane offsets.
template <std::size_t M>
[[nodiscard]] inline __m256 nm_gather8_avx2(__m256 wa, __m256 wb, __m256i off) noexcept {
  if constexpr (M == 4) {
    return _mm256_blend_ps(_mm256_permutevar_ps(wa, off), _mm256_permutevar_ps(wb, off), 0xCC);
  } else {
    return _mm256_blend_ps(_mm256_permutevar8x32_ps(wa, off), _mm256_permutevar8x32_ps(wb, off), 0xF0);
  }
}

/// NR rows (row r: indices idx + r·ib) of an N/M = 1/2 product with kept values given by
/// load_v(r, i) (8 floats, kept [i, i+8)) and scalar_v(r, i) (one float). Main loop: 16 kept values
/// (32 inputs, windows loaded and regrouped once for the NR rows) into two accumulators per row; then one step
/// of 8 kept values into the first accumulator, then single kept values into a scalar, added after
/// the horizontal sum. Every row runs exactly that sequence whatever NR is, so a row's result does
/// not depend on the rows computed with it (nor on the thread count). pf(i) may prefetch.
template <std::size_t M, int NR, class LoadV, class ScalarV, class Pf>
inline void nm_rows_avx2(const std::uint8_t* idx, std::size_t ib, std::size_t cols, const float* x, LoadV&& load_v,
                         ScalarV&& scalar_v, Pf&& pf, float* out) noexcept {
  const std::size_t nk = cols / 2;
  constexpr std::size_t step_bytes = M == 4 ? 4 : 8;  // index bytes per 16 kept values
  const __m256i sh0 = M == 4 ? _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14) : _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i sh1 = _mm256_add_epi32(sh0, _mm256_set1_epi32(16));  // 2:4: second 8 kept of the same word
  __m256 acc0[NR], acc1[NR];
  for (int r = 0; r < NR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= nk; i += 16) {
    pf(i);
    const std::size_t c = 2 * i;
    __m256 xa, xb, xc, xd;
    nm_windows_avx2<M>(x + c, xa, xb);
    nm_windows_avx2<M>(x + c + 16, xc, xd);
    for (int r = 0; r < NR; ++r) {
      const std::uint8_t* ip = idx + r * ib + i / 16 * step_bytes;
      __m256i o0, o1;
      if constexpr (M == 4) {
        std::uint32_t w;
        std::memcpy(&w, ip, 4);
        const __m256i wv = _mm256_set1_epi32(static_cast<int>(w));
        o0 = nm_offsets8_avx2<4>(wv, sh0);
        o1 = nm_offsets8_avx2<4>(wv, sh1);
      } else {
        std::uint32_t w0, w1;
        std::memcpy(&w0, ip, 4);
        std::memcpy(&w1, ip + 4, 4);
        o0 = nm_offsets8_avx2<8>(_mm256_set1_epi32(static_cast<int>(w0)), sh0);
        o1 = nm_offsets8_avx2<8>(_mm256_set1_epi32(static_cast<int>(w1)), sh0);
      }
      acc0[r] = _mm256_fmadd_ps(load_v(r, i), nm_gather8_avx2<M>(xa, xb, o0), acc0[r]);
      acc1[r] = _mm256_fmadd_ps(load_v(r, i + 8), nm_gather8_avx2<M>(xc, xd, o1), acc1[r]);
    }
  }
  if (i + 8 <= nk) {  // 8 kept values: 16 inputs and 2 (2:4) or 4 (4:8) index bytes, all in bounds
    const std::size_t c = 2 * i;
    __m256 xa, xb;
    nm_windows_avx2<M>(x + c, xa, xb);
    for (int r = 0; r < NR; ++r) {
      const std::uint8_t* ip = idx + r * ib + (M == 4 ? i / 4 : i / 2);
      std::uint32_t w = 0;
      std::memcpy(&w, ip, M == 4 ? 2 : 4);
      const __m256i o = nm_offsets8_avx2<M>(_mm256_set1_epi32(static_cast<int>(w)), sh0);
      acc0[r] = _mm256_fmadd_ps(load_v(r, i), nm_gather8_avx2<M>(xa, xb, o), acc0[r]);
    }
    i += 8;
  }
  for (int r = 0; r < NR; ++r) {
    float t = 0.0f;  // fewer than 8 kept values left
    for (std::size_t j = i; j < nk; ++j) t = std::fma(scalar_v(r, j), x[M * (j / (M / 2)) + nm_index(idx + r * ib, j, M)], t);
    const __m256 a = _mm256_add_ps(acc0[r], acc1[r]);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    out[r] = _mm_cvtss_f32(h) + t;
  }
}

/// Rows [r0, r1) of an N/M = 1/2 product on AVX2: 4 rows per pass (activation loads shared), then
/// single rows. lv(k, i) / sv(k, i): 8 values / one value of row k at kept i. pf_bytes > 0
/// prefetches that many value bytes per 16 kept values of the rows one pass ahead (values at vbase,
/// vstride bytes per row) and their index bytes; prefetches never fault.
template <std::size_t M, class LoadV, class ScalarV>
inline void nm_range_avx2(const std::uint8_t* idx, std::size_t ib, std::size_t cols, const float* x, std::size_t r0,
                          std::size_t r1, LoadV&& lv, ScalarV&& sv, const void* vbase, std::size_t vstride,
                          std::size_t pf_bytes, float* y) noexcept {
  constexpr int NR = 4;
  std::size_t k = r0;
  for (; k + NR <= r1; k += NR) {
    auto lvr = [&](int r, std::size_t i) { return lv(k + static_cast<std::size_t>(r), i); };
    auto svr = [&](int r, std::size_t i) { return sv(k + static_cast<std::size_t>(r), i); };
    auto pf = [&](std::size_t i) {
      if (pf_bytes == 0) return;
      const std::uintptr_t vp = reinterpret_cast<std::uintptr_t>(vbase) + (k + NR) * vstride + i / 16 * pf_bytes;
      const std::uintptr_t ipf = reinterpret_cast<std::uintptr_t>(idx) + (k + NR) * ib + i / 16 * (M == 4 ? 4 : 8);
      for (int r = 0; r < NR; ++r) {
        for (std::size_t b = 0; b < pf_bytes; b += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(vp + r * vstride + b), _MM_HINT_T0);
        }
        if (i % 256 == 0) _mm_prefetch(reinterpret_cast<const char*>(ipf + r * ib), _MM_HINT_T0);
      }
    };
    nm_rows_avx2<M, NR>(idx + k * ib, ib, cols, x, lvr, svr, pf, y + k);
  }
  for (; k < r1; ++k) {
    auto lvr = [&](int, std::size_t i) { return lv(k, i); };
    auto svr = [&](int, std::size_t i) { return sv(k, i); };
    nm_rows_avx2<M, 1>(idx + k * ib, ib, cols, x, lvr, svr, [](std::size_t) {}, y + k);
  }
}
#endif

/// N/M = 1/2 patterns with a vector path (2:4 and 4:8).
[[nodiscard]] constexpr bool nm_half(std::size_t n, std::size_t m) noexcept { return (n == 2 && m == 4) || (n == 4 && m == 8); }

template <class Arch>
[[nodiscard]] constexpr bool nm_fast(std::size_t n, std::size_t m) noexcept {
  return is_avx512bw_v<Arch> && ((n == 2 && m == 4) || (n == 4 && m == 8));
}

}  // namespace detail

/// y[k] = Σ_i values[k][i]·x[M·⌊i/N⌋ + idx[k][i]] (float values, rows × nk row-major).
template <class Arch = simd::dynamic>
void gemv_nm_f32(const float* values, const std::uint8_t* idx, std::size_t rows, std::size_t cols, std::size_t n,
                 std::size_t m, const float* x, float* y, int threads = 1) noexcept {
  const std::size_t nk = cols / m * n, ib = nm_index_row_bytes(nk, m);
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    if constexpr (detail::is_avx512bw_v<Arch>) {
      if (n == 2 && m == 4) {  // 4 rows per pass, prefetched; per-row result independent of the grouping
        std::size_t k = r0;
        for (; k + 4 <= r1; k += 4) detail::nm24_f32_rows_avx512<4, true>(values + k * nk, idx + k * ib, cols, x, y + k);
        for (; k < r1; ++k) detail::nm24_f32_rows_avx512<1, false>(values + k * nk, idx + k * ib, cols, x, y + k);
        return;
      }
    }
#endif
#if defined(__AVX2__) && defined(__FMA__)
    if constexpr (detail::is_avx2_v<Arch> && !detail::is_avx512bw_v<Arch>) {
      if (detail::nm_half(n, m)) {  // 4 rows per pass, the next pass prefetched (64 value bytes per 16 kept)
        auto lv = [&](std::size_t k, std::size_t i) { return _mm256_loadu_ps(values + k * nk + i); };
        auto sv = [&](std::size_t k, std::size_t i) { return values[k * nk + i]; };
        if (m == 4) {
          detail::nm_range_avx2<4>(idx, ib, cols, x, r0, r1, lv, sv, values, nk * sizeof(float), 64, y);
        } else {
          detail::nm_range_avx2<8>(idx, ib, cols, x, r0, r1, lv, sv, values, nk * sizeof(float), 64, y);
        }
        return;
      }
    }
#endif
    for (std::size_t k = r0; k < r1; ++k) {
      const float* v = values + k * nk;
      const std::uint8_t* ip = idx + k * ib;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (detail::is_avx512bw_v<Arch>) {
        if (detail::nm_fast<Arch>(n, m)) {
          auto lv = [v](std::size_t i, __mmask16 mk) { return _mm512_maskz_loadu_ps(mk, v + i); };
          y[k] = m == 4 ? detail::nm_row_avx512<4>(ip, cols, x, lv) : detail::nm_row_avx512<8>(ip, cols, x, lv);
          continue;
        }
      }
#endif
      float s = 0.0f;
      for (std::size_t i = 0; i < nk; ++i) s = std::fma(v[i], x[m * (i / n) + nm_index(ip, i, m)], s);
      y[k] = s;
    }
  });
}

/// y[k] = scale[k]·Σ_i q[k][i]·x[M·⌊i/N⌋ + idx[k][i]] (int8 codes, one scale per row).
template <class Arch = simd::dynamic>
void gemv_nm_q8(const std::int8_t* q, const float* scale, const std::uint8_t* idx, std::size_t rows, std::size_t cols,
                std::size_t n, std::size_t m, const float* x, float* y, int threads = 1) noexcept {
  const std::size_t nk = cols / m * n, ib = nm_index_row_bytes(nk, m);
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
#if defined(__AVX2__) && defined(__FMA__)
    if constexpr (detail::is_avx2_v<Arch> && !detail::is_avx512bw_v<Arch>) {
      if (detail::nm_half(n, m)) {  // int8 codes widened to float, then as gemv_nm_f32
        auto lv = [&](std::size_t k, std::size_t i) {
          return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + k * nk + i))));
        };
        auto sv = [&](std::size_t k, std::size_t i) { return static_cast<float>(q[k * nk + i]); };
        if (m == 4) {
          detail::nm_range_avx2<4>(idx, ib, cols, x, r0, r1, lv, sv, q, nk, 0, y);
        } else {
          detail::nm_range_avx2<8>(idx, ib, cols, x, r0, r1, lv, sv, q, nk, 0, y);
        }
        for (std::size_t k = r0; k < r1; ++k) y[k] = scale[k] * y[k];
        return;
      }
    }
#endif
    for (std::size_t k = r0; k < r1; ++k) {
      const std::int8_t* v = q + k * nk;
      const std::uint8_t* ip = idx + k * ib;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (detail::is_avx512bw_v<Arch>) {
        if (detail::nm_fast<Arch>(n, m)) {
          auto lv = [v](std::size_t i, __mmask16 mk) {
            return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, v + i)));
          };
          y[k] = scale[k] * (m == 4 ? detail::nm_row_avx512<4>(ip, cols, x, lv) : detail::nm_row_avx512<8>(ip, cols, x, lv));
          continue;
        }
      }
#endif
      float s = 0.0f;
      for (std::size_t i = 0; i < nk; ++i) s = std::fma(static_cast<float>(v[i]), x[m * (i / n) + nm_index(ip, i, m)], s);
      y[k] = scale[k] * s;
    }
  });
}

/// int4 kept values: y[k] = Σ_i s[k][i/G]·(u[k][i] − z[k][i/G])·x[M·⌊i/N⌋ + idx[k][i]], codes rows ×
/// nk/2 bytes, scales/zeros rows × nk/G (zeros nullptr = symmetric, z = 8). G ∈ {32, 64, 128}, G | nk.
template <class Arch = simd::dynamic>
void gemv_nm_q4(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t group,
                const std::uint8_t* idx, std::size_t rows, std::size_t cols, std::size_t n, std::size_t m,
                const float* x, float* y, int threads = 1) noexcept {
  const std::size_t nk = cols / m * n, ib = nm_index_row_bytes(nk, m), ng = nk / group;
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
#if defined(__AVX2__) && defined(__FMA__)
    if constexpr (detail::is_avx2_v<Arch> && !detail::is_avx512bw_v<Arch>) {
      if (detail::nm_half(n, m)) {  // 8 nibbles widened to float and scaled by their group (G ≥ 32 ⊇ 8 kept)
        auto lv = [&](std::size_t k, std::size_t i) {
          std::uint32_t w;
          std::memcpy(&w, codes + k * (nk / 2) + i / 2, 4);
          const __m128i b = _mm_cvtsi32_si128(static_cast<int>(w));
          const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
          const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
          const __m256i u = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
          const std::size_t g = k * ng + i / group;
          const int z = zeros != nullptr ? zeros[g] : 8;
          return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(u, _mm256_set1_epi32(z))), _mm256_set1_ps(scales[g]));
        };
        auto sv = [&](std::size_t k, std::size_t i) {
          const std::uint8_t cb = codes[k * (nk / 2) + i / 2];
          const int u = (i % 2 == 0) ? (cb & 15) : (cb >> 4);
          const std::size_t g = k * ng + i / group;
          const int z = zeros != nullptr ? zeros[g] : 8;
          return scales[g] * static_cast<float>(u - z);
        };
        if (m == 4) {
          detail::nm_range_avx2<4>(idx, ib, cols, x, r0, r1, lv, sv, codes, nk / 2, 0, y);
        } else {
          detail::nm_range_avx2<8>(idx, ib, cols, x, r0, r1, lv, sv, codes, nk / 2, 0, y);
        }
        return;
      }
    }
#endif
    for (std::size_t k = r0; k < r1; ++k) {
      const std::uint8_t* c = codes + k * (nk / 2);
      const float* sw = scales + k * ng;
      const std::uint8_t* zr = zeros != nullptr ? zeros + k * ng : nullptr;
      const std::uint8_t* ip = idx + k * ib;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
      if constexpr (detail::is_avx512bw_v<Arch>) {
        if (detail::nm_fast<Arch>(n, m)) {
          // values are scaled per kept-group: fold s·(u − z) into the 16 loaded values
          auto lv = [&](std::size_t i, __mmask16) {
            const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + i / 2));
            const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
            const __m512i u = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
            const std::size_t g = i / group;
            const int z = zr != nullptr ? zr[g] : 8;
            const __m512 uf = _mm512_cvtepi32_ps(_mm512_sub_epi32(u, _mm512_set1_epi32(z)));
            return _mm512_mul_ps(uf, _mm512_set1_ps(sw[g]));
          };
          y[k] = m == 4 ? detail::nm_row_avx512<4>(ip, cols, x, lv) : detail::nm_row_avx512<8>(ip, cols, x, lv);
          continue;
        }
      }
#endif
      float s = 0.0f;
      for (std::size_t i = 0; i < nk; ++i) {
        const int u = (i % 2 == 0) ? (c[i / 2] & 15) : (c[i / 2] >> 4);
        const int z = zr != nullptr ? zr[i / group] : 8;
        s = std::fma(sw[i / group] * static_cast<float>(u - z), x[m * (i / n) + nm_index(ip, i, m)], s);
      }
      y[k] = s;
    }
  });
}

/// Scalar reference (double accumulation) over an explicit value accessor v(k, i).
template <class V>
void gemv_nm_reference(V&& v, const std::uint8_t* idx, std::size_t rows, std::size_t cols, std::size_t n,
                       std::size_t m, const float* x, float* y) {
  const std::size_t nk = cols / m * n, ib = nm_index_row_bytes(nk, m);
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t i = 0; i < nk; ++i) s += static_cast<double>(v(k, i)) * x[m * (i / n) + nm_index(idx + k * ib, i, m)];
    y[k] = static_cast<float>(s);
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_nm_f32<simd::dynamic>(
    const float* values, const std::uint8_t* idx, std::size_t rows, std::size_t cols, std::size_t n,
    std::size_t m, const float* x, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_nm_f32, (gemv_nm_f32<xsimd::default_arch>), values, idx, rows, cols, n, m, x, y, threads);
}
template <>
inline void gemv_nm_q8<simd::dynamic>(
    const std::int8_t* q, const float* scale, const std::uint8_t* idx, std::size_t rows, std::size_t cols,
    std::size_t n, std::size_t m, const float* x, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_nm_q8, (gemv_nm_q8<xsimd::default_arch>), q, scale, idx, rows, cols, n, m, x, y, threads);
}
template <>
inline void gemv_nm_q4<simd::dynamic>(
    const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros, std::size_t group,
    const std::uint8_t* idx, std::size_t rows, std::size_t cols, std::size_t n, std::size_t m, const float* x,
    float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_nm_q4, (gemv_nm_q4<xsimd::default_arch>), codes, scales, zeros, group, idx, rows, cols, n, m, x, y, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
