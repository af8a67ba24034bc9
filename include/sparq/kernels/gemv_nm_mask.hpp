// 2:4-sparse int4 GEMV (W4A8) on a presence-mask tile layout: kept codes expanded into dense byte lanes.
//
// The compact 2:4 format (gemv_nm.hpp: per row nk = cols/2 kept values in column order plus two
// 2-bit in-group positions per group of 4 inputs) stays the storage format. These kernels run on a
// re-packed copy (pack_nm24m_q4) whose index part is a PRESENCE MASK: bit j set iff input j is
// kept. A group of 4 inputs costs 4 mask bits instead of 2 × 2 index bits: the same bytes.
//
// Activations (NmMaskQ8): int8 per block of 64 inputs, x[j] ≈ a[b]·qx[j], a[b] = max_{j in b}|x_j|/127,
// qx = round-half-even(x/a[b]) ∈ [−127, 127] (a = 0, qx = 0 for an all-zero block), csum[b] =
// Σ_{j in b} qx[j]. A block of 64 inputs holds exactly 32 kept values: one int4 group of G = 32
// kept values (G = 64, 128: 2, 4 blocks). Inputs are taken per chunk of 1024 (16 blocks) as 16
// "lane vectors" Z_t (t = 4p + q; p, q < 4) of 64 bytes; 128-bit lane L of Z_t holds the 16 inputs
// 256p + 64L + 16q + e (e < 16) of the chunk. Every lane of Z_{p,q} belongs to block 4p + L, so
// vpdpbusd sums accumulated over q stay per block in their lane, and four accumulators reduce to
// the 16 block sums with the in-lane transpose-add of gemv_q4. The activation buffer stores Z_t at
// bytes [64t, 64t + 64) of its chunk (nm24m_q8_position); it covers nm24m_padded(cols) inputs.
//
// Weights per row: ⌈cols/1024⌉ tiles of 384 bytes (= 6 bits per kept value, as the compact format):
//   bytes [0, 256):   8 pairs of 32 code bytes; pair s: byte i low nibble = kept value i of Z_{2s},
//                     high nibble = kept value i of Z_{2s+1} (the kept values of a Z in lane order)
//   bytes [256, 384): 16 little-endian uint64 presence masks, mask t bit 16L + e set iff input
//                     256p + 64L + 16q + e of the chunk is kept (t = 4p + q)
// Past cols masks and codes are 0. Scales (f32; or fp16 bit patterns: the "h" forms) and optional
// uint8 zero points stay the compact per-kept-group arrays, rows × (cols/2)/G.
//
// Method: vpexpandb (AVX512-VBMI2) spreads the 32 kept codes of Z_t into its 64 byte lanes under
// mask t, filling the non-kept lanes with the group's zero point z (8 if symmetric); then
//   d[b] = Σ_{lanes j of b} e_j·qx_j = Σ_{kept j} u_j·qx_j + z·Σ_{not kept j} qx_j
//   y[k] = Σ_b s[k][g(b)]·a[b]·(d[b] − z[k][g(b)]·csum[b])        (= Σ_{kept j}(u_j − z)·a[b]·qx_j)
// so the zero-point correction only needs the activation block sums (computed once per vector).
// Bytes per dense weight at G = 32: 0.25 codes + 0.125 masks + scales (0.0625 f32, 0.031 fp16)
// versus 0.625 / 0.5625 for dense int4 g32. 4 rows per pass, rows two passes ahead prefetched.
// VBMI2 is not in the project's AVX-512 flag set: the kernel is compiled with a target attribute
// and chosen at run time (__builtin_cpu_supports); without it the AVX2 kernel runs. AVX2
// (nm24m_q4_rows_avx2) gathers the kept activations with vpshufb (controls from the mask nibbles)
// instead of expanding the codes. All paths compute the same integer sums per block (float
// rounding differs).
// Preconditions (callers check): cols % 64 == 0, group ∈ {32, 64, 128}, (cols/2) % group == 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "sparq/core/half.hpp"
#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

/// Rows that one pass of the int4 mask kernel computes together.
inline constexpr int nm24m_rows = 4;

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// int4 on presence-mask tiles, int8 activations
// ------------------------------------------------------------------------------------------------

SPARQ_TARGET_END

// Layout helpers and the NmMaskQ8 view are plain data, the same for every target (they appear in
// the run-time dispatch table's signatures), so they sit outside the target namespace.

/// Inputs covered by the mask-tile layouts and NmMaskQ8 buffers (multiple of 1024).
[[nodiscard]] constexpr std::size_t nm24m_padded(std::size_t cols) noexcept { return (cols + 1023) / 1024 * 1024; }

/// Bytes of one row of int4 mask tiles.
[[nodiscard]] constexpr std::size_t nm24m_q4_row_bytes(std::size_t cols) noexcept { return nm24m_padded(cols) / 1024 * 384; }

/// Position of input j inside its chunk's lane vectors: Z_{4p+q} byte 16L + e (see the header).
[[nodiscard]] constexpr std::size_t nm24m_q8_position(std::size_t j) noexcept {
  const std::size_t r = j % 1024;
  return j - r + (r / 256) * 256 + ((r % 64) / 16) * 64 + ((r % 256) / 64) * 16 + r % 16;
}

/// Bytes of workspace an NmMaskQ8 over `cols` inputs needs (plus 64 for alignment).
[[nodiscard]] constexpr std::size_t nm24m_q8_workspace_bytes(std::size_t cols) noexcept {
  const std::size_t p = nm24m_padded(cols);
  return p + (p / 64) * (sizeof(float) + sizeof(std::int32_t)) + 64;
}

/// int8 activations per block of 64 inputs in lane-vector order, over caller-owned memory.
struct NmMaskQ8 {
  std::int8_t* q = nullptr;     ///< nm24m_padded(cols) values at nm24m_q8_position(j)
  float* scale = nullptr;       ///< a[b], one per 64 inputs
  std::int32_t* sum = nullptr;  ///< csum[b] = Σ_{j in b} qx[j]
  std::size_t cols = 0;

  /// Carves the arrays out of `work` (nm24m_q8_workspace_bytes(cols) bytes, any alignment).
  [[nodiscard]] static NmMaskQ8 carve(void* work, std::size_t cols) noexcept {
    auto p = reinterpret_cast<std::uintptr_t>(work);
    p = (p + 63) & ~std::uintptr_t{63};
    const std::size_t padded = nm24m_padded(cols);
    NmMaskQ8 v;
    v.q = reinterpret_cast<std::int8_t*>(p);
    v.scale = reinterpret_cast<float*>(p + padded);
    v.sum = reinterpret_cast<std::int32_t*>(p + padded + (padded / 64) * sizeof(float));
    v.cols = cols;
    return v;
  }
};

SPARQ_TARGET_BEGIN

/// Quantizes x[0..cols) per block of 64 inputs into `out` (cols % 64 == 0; padding zeroed).
inline void quantize_nm24m_q8(const float* x, std::size_t cols, const NmMaskQ8& out) noexcept {
  const std::size_t padded = nm24m_padded(cols), nb = cols / 64;
  for (std::size_t b = 0; b < nb; ++b) {
    float amax = 0.0f;
    for (std::size_t j = 0; j < 64; ++j) amax = std::max(amax, std::fabs(x[b * 64 + j]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    std::int32_t s = 0;
    for (std::size_t j = 0; j < 64; ++j) {
      const auto q = static_cast<std::int8_t>(std::clamp(std::nearbyint(x[b * 64 + j] * inv), -127.0f, 127.0f));
      out.q[nm24m_q8_position(b * 64 + j)] = q;
      s += q;
    }
    out.scale[b] = amax / 127.0f;
    out.sum[b] = s;
  }
  for (std::size_t j = nb * 64; j < padded; ++j) out.q[nm24m_q8_position(j)] = 0;
  for (std::size_t b = nb; b < padded / 64; ++b) {
    out.scale[b] = 0.0f;
    out.sum[b] = 0;
  }
}

/// Fills `out` from int8 per-token activations x ≈ sx·qx (cols % 64 == 0): one scale for every block.
inline void nm24m_q8_from_per_token(const std::int8_t* qx, float sx, std::size_t cols, const NmMaskQ8& out) noexcept {
  const std::size_t padded = nm24m_padded(cols), nb = cols / 64;
  for (std::size_t b = 0; b < nb; ++b) {
    std::int32_t s = 0;
    for (std::size_t j = b * 64; j < b * 64 + 64; ++j) {
      out.q[nm24m_q8_position(j)] = qx[j];
      s += qx[j];
    }
    out.scale[b] = sx;
    out.sum[b] = s;
  }
  for (std::size_t j = nb * 64; j < padded; ++j) out.q[nm24m_q8_position(j)] = 0;
  for (std::size_t b = nb; b < padded / 64; ++b) {
    out.scale[b] = 0.0f;
    out.sum[b] = 0;
  }
}

/// Re-packs compact 2:4 int4 weights (codes rows × cols/4 bytes, kept i in the low nibble of byte
/// i/2 if i is even; idx rows × cols/8) into mask tiles, out rows × nm24m_q4_row_bytes(cols)
/// (layout in the header). cols % 4 == 0.
inline void pack_nm24m_q4(const std::uint8_t* codes, const std::uint8_t* idx, std::size_t rows, std::size_t cols,
                          std::uint8_t* out) noexcept {
  const std::size_t nk = cols / 2, cb = (nk + 1) / 2, ib = nm_index_row_bytes(nk, 4), rb = nm24m_q4_row_bytes(cols);
  for (std::size_t k = 0; k < rows; ++k) {
    std::uint8_t* o = out + k * rb;
    std::memset(o, 0, rb);
    const std::uint8_t* c = codes + k * cb;
    const std::uint8_t* ip = idx + k * ib;
    std::size_t fill[64] = {};  // kept values placed so far per lane vector of the current chunk
    std::size_t chunk = 0;
    for (std::size_t i = 0; i < nk; ++i) {
      const std::size_t j = 4 * (i / 2) + nm_index(ip, i, 4);
      if (j / 1024 != chunk) {
        chunk = j / 1024;
        std::fill(fill, fill + 64, std::size_t{0});
      }
      const std::size_t r = j % 1024, t = (r / 256) * 4 + (r % 64) / 16, lane = ((r % 256) / 64) * 16 + r % 16;
      std::uint8_t* tile = o + chunk * 384;
      const unsigned u = (c[i / 2] >> (4 * (i % 2))) & 15u;
      const std::size_t slot = fill[t]++;  // kept values arrive in column order = lane order within Z_t
      tile[32 * (t / 2) + slot] = static_cast<std::uint8_t>(tile[32 * (t / 2) + slot] | u << (4 * (t % 2)));
      tile[256 + 8 * t + lane / 8] = static_cast<std::uint8_t>(tile[256 + 8 * t + lane / 8] | 1u << (lane % 8));
    }
  }
}

namespace detail {

#if defined(__AVX512BW__) && defined(__AVX512VL__)
#if defined(__AVX512VBMI2__)
#define SPARQ_NM24M_VBMI2
#else
#define SPARQ_NM24M_VBMI2 __attribute__((target("avx512vbmi2")))
#endif

/// The little-endian 64-bit mask at p.
[[nodiscard]] inline __mmask64 nm24m_mask64(const std::uint8_t* p) noexcept {
  std::uint64_t m;
  std::memcpy(&m, p, 8);
  return _cvtu64_mask64(m);
}

/// R rows (k .. k+R−1) of the int4 mask kernel. Needs VBMI2 at run time. Prefetch: the same chunk
/// of the rows `Passes` passes (Passes·R rows) ahead (1 to 8 measured alike); prefetches never fault.
template <bool Asym, bool Vnni, class S, int R, bool Prefetch, int Passes = 2>
SPARQ_NM24M_VBMI2 void nm24m_q4_rows_vbmi2(const std::uint8_t* tiles, const S* scales, const std::uint8_t* zeros,
                                           std::size_t group, std::size_t k, std::size_t cols, const NmMaskQ8& act,
                                           float* y) noexcept {
  const std::size_t r = group / 32, ng = cols / 2 / group, rb = nm24m_q4_row_bytes(cols);
  const std::size_t nchunk = nm24m_padded(cols) / 1024, full = cols / 1024, gpc = 16 / r;
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i expand = r == 1   ? _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                         : r == 2 ? _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)
                                  : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const auto gmask = static_cast<__mmask16>((1u << gpc) - 1);
  const __m512i fill8 = _mm512_set1_epi8(8);
  const __m512i ones16 = _mm512_set1_epi16(1);
  __m512 accf[R];
  for (int i = 0; i < R; ++i) accf[i] = _mm512_setzero_ps();
  for (std::size_t ch = 0; ch < nchunk; ++ch) {
    // scales / zeros of this chunk's 16 blocks (tail chunk: copied, padding 0)
    const S* sw[R];
    const std::uint8_t* zw[R];
    S sbuf[R][16];
    std::uint8_t zbuf[R][16];
    for (int i = 0; i < R; ++i) {
      sw[i] = scales + (k + i) * ng + ch * gpc;
      zw[i] = Asym ? zeros + (k + i) * ng + ch * gpc : nullptr;
      if (ch >= full) {
        const std::size_t left = ng - ch * gpc;
        std::memset(sbuf[i], 0, sizeof(sbuf[i]));
        std::memset(zbuf[i], 0, sizeof(zbuf[i]));
        std::memcpy(sbuf[i], sw[i], left * sizeof(S));
        if constexpr (Asym) std::memcpy(zbuf[i], zw[i], left);
        sw[i] = sbuf[i];
        zw[i] = zbuf[i];
      }
    }
    if constexpr (Prefetch) {
      for (int i = 0; i < R; ++i) {
        const std::size_t ka = k + Passes * R + i;
        const auto* pt = reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(tiles) + ka * rb + ch * 384);
        for (int l = 0; l < 6; ++l) _mm_prefetch(pt + 64 * l, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(scales) + (ka * ng + ch * gpc) * sizeof(S)),
                     _MM_HINT_T0);
        if constexpr (Asym)
          _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(zeros) + ka * ng + ch * gpc), _MM_HINT_T0);
      }
    }
    __m512i zfill[R][4];
    __m512i z32[R];
    if constexpr (Asym) {
      for (int i = 0; i < R; ++i) {
        alignas(16) std::uint8_t zb[16];
        for (std::size_t b = 0; b < 16; ++b) zb[b] = zw[i][b / r];
        const __m128i zv = _mm_load_si128(reinterpret_cast<const __m128i*>(zb));
        z32[i] = _mm512_cvtepu8_epi32(zv);
        const __m512i zb4 = _mm512_broadcast_i32x4(zv);
        for (int p = 0; p < 4; ++p) {
          const char l0 = static_cast<char>(4 * p), l1 = static_cast<char>(4 * p + 1), l2 = static_cast<char>(4 * p + 2),
                     l3 = static_cast<char>(4 * p + 3);
          zfill[i][p] = _mm512_shuffle_epi8(zb4, _mm512_set_epi8(l3, l3, l3, l3, l3, l3, l3, l3, l3, l3, l3, l3, l3, l3, l3, l3,  //
                                                                 l2, l2, l2, l2, l2, l2, l2, l2, l2, l2, l2, l2, l2, l2, l2, l2,  //
                                                                 l1, l1, l1, l1, l1, l1, l1, l1, l1, l1, l1, l1, l1, l1, l1, l1,  //
                                                                 l0, l0, l0, l0, l0, l0, l0, l0, l0, l0, l0, l0, l0, l0, l0, l0));
        }
      }
    }
    const std::int8_t* xq = act.q + ch * 1024;
    __m512i acc[R][4];
    for (int p = 0; p < 4; ++p) {
      const __m512i x0 = _mm512_load_si512(xq + 256 * p), x1 = _mm512_load_si512(xq + 256 * p + 64);
      const __m512i x2 = _mm512_load_si512(xq + 256 * p + 128), x3 = _mm512_load_si512(xq + 256 * p + 192);
      for (int i = 0; i < R; ++i) {
        const std::uint8_t* t = tiles + (k + i) * rb + ch * 384;
        const __m512i fill = Asym ? zfill[i][p] : fill8;
        // pair 2p (Z_{4p}, Z_{4p+1}) in bytes 0-31, pair 2p + 1 in bytes 32-63: vshufi64x2 moves it down
        const __m512i w = _mm512_loadu_si512(t + 64 * p);
        const __m512i lo = _mm512_and_si512(w, nib), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), nib);
        const __m512i e0 = _mm512_mask_expand_epi8(fill, nm24m_mask64(t + 256 + 32 * p), lo);
        const __m512i e1 = _mm512_mask_expand_epi8(fill, nm24m_mask64(t + 264 + 32 * p), hi);
        const __m512i e2 = _mm512_mask_expand_epi8(fill, nm24m_mask64(t + 272 + 32 * p), _mm512_shuffle_i64x2(lo, lo, 0xEE));
        const __m512i e3 = _mm512_mask_expand_epi8(fill, nm24m_mask64(t + 280 + 32 * p), _mm512_shuffle_i64x2(hi, hi, 0xEE));
        if constexpr (Vnni) {
#if defined(__AVX512VNNI__)
          acc[i][p] = _mm512_dpbusd_epi32(
              _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), e0, x0), e1, x1), e2, x2),
              e3, x3);
#endif
        } else {  // maddubs: 2·15·127 < 32767, no saturation
          const __m512i s01 = _mm512_add_epi16(_mm512_maddubs_epi16(e0, x0), _mm512_maddubs_epi16(e1, x1));
          const __m512i s23 = _mm512_add_epi16(_mm512_maddubs_epi16(e2, x2), _mm512_maddubs_epi16(e3, x3));
          acc[i][p] = _mm512_add_epi32(_mm512_madd_epi16(s01, ones16), _mm512_madd_epi16(s23, ones16));
        }
      }
    }
    const __m512i cs = _mm512_loadu_si512(act.sum + ch * 16);
    const __m512 as = _mm512_loadu_ps(act.scale + ch * 16);
    for (int i = 0; i < R; ++i) {
      const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[i][0], acc[i][1]), _mm512_unpackhi_epi32(acc[i][0], acc[i][1]));
      const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[i][2], acc[i][3]), _mm512_unpackhi_epi32(acc[i][2], acc[i][3]));
      const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
      __m512i d = _mm512_permutexvar_epi32(perm, u);  // natural block order
      if constexpr (Asym) {
        d = _mm512_sub_epi32(d, _mm512_mullo_epi32(z32[i], cs));
      } else {
        d = _mm512_sub_epi32(d, _mm512_slli_epi32(cs, 3));
      }
      const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(d), as);
      __m512 s;
      if constexpr (std::is_same_v<S, float>) {
        s = r == 1 ? _mm512_loadu_ps(sw[i]) : _mm512_permutexvar_ps(expand, _mm512_maskz_loadu_ps(gmask, sw[i]));
      } else {  // fp16 scales, widened exactly
        s = r == 1 ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sw[i])))
                   : _mm512_permutexvar_ps(expand, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(gmask, sw[i])));
      }
      accf[i] = _mm512_fmadd_ps(f, s, accf[i]);
    }
  }
  for (int i = 0; i < R; ++i) y[k + i] = _mm512_reduce_add_ps(accf[i]);
}

/// Rows [k0, k1): nm24m_rows per pass, then single rows.
template <bool Asym, bool Vnni, class S, int NR = nm24m_rows, int Passes = 2>
SPARQ_NM24M_VBMI2 void nm24m_q4_range_vbmi2(const std::uint8_t* tiles, const S* scales, const std::uint8_t* zeros,
                                            std::size_t group, std::size_t k0, std::size_t k1, std::size_t cols,
                                            const NmMaskQ8& act, float* y) noexcept {
  std::size_t k = k0;
  for (; k + NR <= k1; k += NR) nm24m_q4_rows_vbmi2<Asym, Vnni, S, NR, true, Passes>(tiles, scales, zeros, group, k, cols, act, y);
  for (; k < k1; ++k) nm24m_q4_rows_vbmi2<Asym, Vnni, S, 1, false>(tiles, scales, zeros, group, k, cols, act, y);
}
#undef SPARQ_NM24M_VBMI2
#endif

#if defined(__AVX2__) && defined(__FMA__)
/// R rows (k .. k+R−1) of the int4 mask kernel, AVX2. AVX2 has no vpexpandb, so this path works
/// in the compact domain instead: it gathers the activation of every kept code with vpshufb and
/// never touches the non-kept inputs (tile layout: this header's comment; docs/kernels.md).
/// Per pair s of lane vectors (Z_a = Z_{2s}, Z_b = Z_{2s+1}; 64 kept values, one 32-byte code load):
///  - codes: lo / hi nibbles of the pair's 32 bytes are Z_a's / Z_b's kept values in lane order;
///    vpunpcklqdq / vpunpckhqdq give w02 = [Z_a.L0, Z_b.L0 | Z_a.L2, Z_b.L2] and w13 (lanes 1, 3),
///    8 kept values per 64-bit half (a 16-input lane holds 4 groups of 2:4 = 8 kept values).
///  - shuffle controls: in 2:4 every mask nibble (one group of 4 inputs) has exactly two bits set,
///    and the group's two kept values are adjacent slots. The nibbles are spread to one byte each
///    (vpshufb + 16-bit shift + unpack), duplicated to the two slots of their group, and one
///    16-entry vpshufb table maps (nibble of an even slot) to the position of its first set bit and
///    (nibble XOR 1 of an odd slot) to the position of its second: the six valid nibbles {3, 5, 6,
///    9, 10, 12} and their XOR-1 images {2, 4, 7, 8, 11, 13} do not overlap. Adding 4·(group in lane)
///    gives the byte of each kept value inside its 16-input lane.
///  - activations: per chunk, the lane vectors are regrouped once (vperm2i128, shared by the R rows)
///    into [Z.L0 | Z.L2] and [Z.L1 | Z.L3]; per row, vpshufb on Z_a's and on Z_b's and a dword blend
///    give the 16 kept activations of each 128-bit lane in code order.
///  - sums: Σ (u − z)·qx = maddubs(w, x) − maddubs(z, x) per 16-bit lane (≤ 2·15·127 each; two pairs
///    summed stay < 32767), then vpmaddwd. Each 128-bit lane stays in one block of 64 inputs, so the
///    transpose-add of gemv_q4 (with the lane order (0, 2 | 1, 3) undone by its final vpermd) gives
///    the block sums; y += s·a·d. No block-sum correction is needed (csum is unused here).
/// Same integers as the AVX-512 kernel; only the float summation order differs. Each row runs the
/// same sequence for any R. Prefetch as in the VBMI2 kernel.
template <bool Asym, class S, int R, bool Prefetch, int Passes = 2>
inline void nm24m_q4_rows_avx2(const std::uint8_t* tiles, const S* scales, const std::uint8_t* zeros, std::size_t group,
                               std::size_t k, std::size_t cols, const NmMaskQ8& act, float* y) noexcept {
  const std::size_t r = group / 32, ng = cols / 2 / group, rb = nm24m_q4_row_bytes(cols);
  const std::size_t nchunk = nm24m_padded(cols) / 1024, full = cols / 1024, gpc = 16 / r, gph = 8 / r;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i perm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);  // transpose-add output -> block order
  const __m256i expand = r == 1   ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                         : r == 2 ? _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)
                                  : _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const __m256i gmask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(gph)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  // mask bytes [ma | mb] (broadcast) -> lane 0: ma bytes 0-3, mb bytes 0-3; lane 1: bytes 4-7 of each
  const __m256i mgather = _mm256_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                           4, 5, 6, 7, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i dup02 = _mm256_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 8, 8, 9, 9, 10, 10, 11, 11,  //
                                         0, 0, 1, 1, 2, 2, 3, 3, 8, 8, 9, 9, 10, 10, 11, 11);
  const __m256i dup13 = _mm256_add_epi8(dup02, _mm256_set1_epi8(4));
  const __m256i parity = _mm256_set1_epi16(0x0100);
  const __m256i base = _mm256_setr_epi8(0, 0, 4, 4, 8, 8, 12, 12, 0, 0, 4, 4, 8, 8, 12, 12,  //
                                        0, 0, 4, 4, 8, 8, 12, 12, 0, 0, 4, 4, 8, 8, 12, 12);
  // position of the first set bit of a valid nibble n (index n) / of the second (index n ^ 1)
  const __m256i lut = _mm256_setr_epi8(0, 0, 1, 0, 2, 0, 1, 2, 3, 0, 1, 3, 2, 3, 0, 0,  //
                                       0, 0, 1, 0, 2, 0, 1, 2, 3, 0, 1, 3, 2, 3, 0, 0);
  auto load_scales = [&](const S* p) {
    if constexpr (std::is_same_v<S, float>) {
      return r == 1 ? _mm256_loadu_ps(p) : _mm256_permutevar8x32_ps(_mm256_maskload_ps(p, gmask), expand);
    } else {
#if defined(__F16C__)
      if (r == 1) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      std::uint64_t h = 0;
      std::memcpy(&h, p, gph * sizeof(S));
      return _mm256_permutevar8x32_ps(_mm256_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(h))), expand);
#else
      alignas(32) float t[8] = {};
      for (std::size_t g = 0; g < gph; ++g) t[g] = fp16_to_float(p[g]);
      return _mm256_permutevar8x32_ps(_mm256_load_ps(t), expand);
#endif
    }
  };
  __m256 accf[R];
  for (int i = 0; i < R; ++i) accf[i] = _mm256_setzero_ps();
  alignas(32) std::int8_t xs[32][32];  // per pair s: Z_a [L0|L2], Z_b [L0|L2], Z_a [L1|L3], Z_b [L1|L3]
  for (std::size_t ch = 0; ch < nchunk; ++ch) {
    const S* sw[R];
    const std::uint8_t* zw[R];
    S sbuf[R][16];
    std::uint8_t zbuf[R][16];
    for (int i = 0; i < R; ++i) {
      sw[i] = scales + (k + i) * ng + ch * gpc;
      zw[i] = Asym ? zeros + (k + i) * ng + ch * gpc : nullptr;
      if (ch >= full) {  // tail chunk: scales / zeros copied, padding 0 (the tile row itself is padded)
        const std::size_t left = ng - ch * gpc;
        std::memset(sbuf[i], 0, sizeof(sbuf[i]));
        std::memset(zbuf[i], 0, sizeof(zbuf[i]));
        std::memcpy(sbuf[i], sw[i], left * sizeof(S));
        if constexpr (Asym) std::memcpy(zbuf[i], zw[i], left);
        sw[i] = sbuf[i];
        zw[i] = zbuf[i];
      }
    }
    if constexpr (Prefetch) {
      for (int i = 0; i < R; ++i) {
        const std::size_t ka = k + Passes * R + i;
        const auto* pt = reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(tiles) + ka * rb + ch * 384);
        for (int l = 0; l < 6; ++l) _mm_prefetch(pt + 64 * l, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(scales) + (ka * ng + ch * gpc) * sizeof(S)),
                     _MM_HINT_T0);
        if constexpr (Asym)
          _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(zeros) + ka * ng + ch * gpc), _MM_HINT_T0);
      }
    }
    const std::int8_t* xq = act.q + ch * 1024;
    for (int t = 0; t < 16; ++t) {  // Z_t = [L0 L1 | L2 L3] -> [L0 | L2], [L1 | L3]
      const __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + 64 * t));
      const __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + 64 * t + 32));
      _mm256_store_si256(reinterpret_cast<__m256i*>(xs[4 * (t / 2) + t % 2]), _mm256_permute2x128_si256(a, b, 0x20));
      _mm256_store_si256(reinterpret_cast<__m256i*>(xs[4 * (t / 2) + 2 + t % 2]), _mm256_permute2x128_si256(a, b, 0x31));
    }
    for (int i = 0; i < R; ++i) {
      const std::uint8_t* tl = tiles + (k + i) * rb + ch * 384;
      for (int h = 0; h < 2; ++h) {  // blocks 8h .. 8h + 7 = p ∈ {2h, 2h + 1}
        __m256i a[4];
        for (int pp = 0; pp < 2; ++pp) {
          const int p = 2 * h + pp;
          __m256i z02, z13;
          if constexpr (Asym) {  // lane L of w02: block 4p + 2L; of w13: block 4p + 2L + 1
            auto zb = [&](int b) { return _mm_set1_epi8(static_cast<char>(zw[i][static_cast<std::size_t>(b) / r])); };
            z02 = _mm256_set_m128i(zb(4 * p + 2), zb(4 * p));
            z13 = _mm256_set_m128i(zb(4 * p + 3), zb(4 * p + 1));
          } else {
            z02 = z13 = _mm256_set1_epi8(8);
          }
          __m256i d02 = _mm256_setzero_si256(), d13 = _mm256_setzero_si256();
          for (int q2 = 0; q2 < 2; ++q2) {
            const int s = 2 * p + q2;  // pair s: Z_{2s}, Z_{2s+1}
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tl + 32 * s));
            const __m256i lo = _mm256_and_si256(w, nib), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib);
            const __m256i w02 = _mm256_unpacklo_epi64(lo, hi), w13 = _mm256_unpackhi_epi64(lo, hi);
            const __m256i mm = _mm256_shuffle_epi8(
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tl + 256 + 16 * s))), mgather);
            const __m256i nibs = _mm256_and_si256(_mm256_unpacklo_epi8(mm, _mm256_srli_epi16(mm, 4)), nib);
            const __m256i c02 = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(_mm256_shuffle_epi8(nibs, dup02), parity)), base);
            const __m256i c13 = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(_mm256_shuffle_epi8(nibs, dup13), parity)), base);
            const std::int8_t* xp = xs[4 * s];
            const __m256i x02 = _mm256_blend_epi32(
                _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(xp)), c02),
                _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 32)), c02), 0xCC);
            const __m256i x13 = _mm256_blend_epi32(
                _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 64)), c13),
                _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(xp + 96)), c13), 0xCC);
            d02 = _mm256_add_epi16(d02, _mm256_sub_epi16(_mm256_maddubs_epi16(w02, x02), _mm256_maddubs_epi16(z02, x02)));
            d13 = _mm256_add_epi16(d13, _mm256_sub_epi16(_mm256_maddubs_epi16(w13, x13), _mm256_maddubs_epi16(z13, x13)));
          }
          a[2 * pp] = _mm256_madd_epi16(d02, ones16);
          a[2 * pp + 1] = _mm256_madd_epi16(d13, ones16);
        }
        const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(a[0], a[1]), _mm256_unpackhi_epi32(a[0], a[1]));
        const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(a[2], a[3]), _mm256_unpackhi_epi32(a[2], a[3]));
        const __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
        const __m256i d = _mm256_permutevar8x32_epi32(u, perm);
        const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_loadu_ps(act.scale + ch * 16 + 8 * h));
        accf[i] = _mm256_fmadd_ps(f, load_scales(sw[i] + gph * static_cast<std::size_t>(h)), accf[i]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    __m128 hs = _mm_add_ps(_mm256_castps256_ps128(accf[i]), _mm256_extractf128_ps(accf[i], 1));
    hs = _mm_add_ps(hs, _mm_movehl_ps(hs, hs));
    hs = _mm_add_ss(hs, _mm_movehdup_ps(hs));
    y[k + i] = _mm_cvtss_f32(hs);
  }
}

/// Rows [k0, k1): nm24m_rows per pass (prefetching two passes ahead), then single rows.
template <bool Asym, class S>
inline void nm24m_q4_range_avx2(const std::uint8_t* tiles, const S* scales, const std::uint8_t* zeros, std::size_t group,
                                std::size_t k0, std::size_t k1, std::size_t cols, const NmMaskQ8& act, float* y) noexcept {
  constexpr int NR = nm24m_rows;
  std::size_t k = k0;
  for (; k + NR <= k1; k += NR) nm24m_q4_rows_avx2<Asym, S, NR, true>(tiles, scales, zeros, group, k, cols, act, y);
  for (; k < k1; ++k) nm24m_q4_rows_avx2<Asym, S, 1, false>(tiles, scales, zeros, group, k, cols, act, y);
}
#endif

/// One row of the int4 mask tiles, portable: the same integer sums per block of 64 inputs.
template <bool Asym, class S>
[[nodiscard]] inline float nm24m_q4_row_generic(const std::uint8_t* tile_row, const S* sw, const std::uint8_t* zp,
                                                std::size_t group, std::size_t cols, const NmMaskQ8& act) noexcept {
  const std::size_t r = group / 32;
  float acc = 0.0f;
  for (std::size_t b = 0; b < cols / 64; ++b) {
    const std::uint8_t* t = tile_row + b / 16 * 384;
    const std::size_t p = (b % 16) / 4, lane = b % 4;
    std::int32_t d = 0;
    for (std::size_t q = 0; q < 4; ++q) {  // Z_{p,q}, lane `lane`: count the kept values of the lanes before it
      const std::size_t zt = 4 * p + q;
      std::uint64_t m;
      std::memcpy(&m, t + 256 + 8 * zt, 8);
      std::size_t slot = 0;
      for (std::size_t l = 0; l < 16 * lane; ++l) slot += (m >> l) & 1u;
      for (std::size_t e = 0; e < 16; ++e) {
        const std::size_t l = 16 * lane + e;
        if (!((m >> l) & 1u)) continue;
        const int u = (t[32 * (zt / 2) + slot] >> (4 * (zt % 2))) & 15;
        ++slot;
        d += u * act.q[b / 16 * 1024 + 64 * zt + l];
      }
    }
    const std::size_t g = b / r;
    const std::int32_t z = Asym ? zp[g] : 8;
    // Σ_kept u·qx − z·Σ_kept qx = Σ_kept u·qx + z·Σ_notkept qx − z·csum: same integer as the AVX-512 path
    std::int32_t kept_sum = 0;
    for (std::size_t q = 0; q < 4; ++q) {
      const std::size_t zt = 4 * p + q;
      std::uint64_t m;
      std::memcpy(&m, t + 256 + 8 * zt, 8);
      for (std::size_t e = 0; e < 16; ++e) {
        const std::size_t l = 16 * lane + e;
        if ((m >> l) & 1u) kept_sum += act.q[b / 16 * 1024 + 64 * zt + l];
      }
    }
    float sg;
    if constexpr (std::is_same_v<S, float>) {
      sg = sw[g];
    } else {
      sg = fp16_to_float(sw[g]);
    }
    acc += sg * (static_cast<float>(d - z * kept_sum) * act.scale[b]);
  }
  return acc;
}

/// True when this process may run the VBMI2 int4 mask kernel (checked once).
[[nodiscard]] inline bool nm24m_cpu_has_vbmi2() noexcept {
#if SPARQ_X86 && defined(__GNUC__)
  static const bool ok = __builtin_cpu_supports("avx512vbmi2");
  return ok;
#else
  return false;
#endif
}

template <class Arch, bool Vnni, class S>
inline void nm24m_q4_range(const std::uint8_t* tiles, const S* scales, const std::uint8_t* zeros, std::size_t group,
                           std::size_t k0, std::size_t k1, std::size_t cols, const NmMaskQ8& act, float* y) noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (is_avx512bw_v<Arch>) {
    if (nm24m_cpu_has_vbmi2()) {
      constexpr bool V = Vnni && has_vnni;
      if (zeros != nullptr) {
        nm24m_q4_range_vbmi2<true, V, S>(tiles, scales, zeros, group, k0, k1, cols, act, y);
      } else {
        nm24m_q4_range_vbmi2<false, V, S>(tiles, scales, nullptr, group, k0, k1, cols, act, y);
      }
      return;
    }
  }
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (is_avx2_v<Arch> || is_avx512bw_v<Arch>) {  // also AVX-512 CPUs without VBMI2
    if (zeros != nullptr) {
      nm24m_q4_range_avx2<true, S>(tiles, scales, zeros, group, k0, k1, cols, act, y);
    } else {
      nm24m_q4_range_avx2<false, S>(tiles, scales, nullptr, group, k0, k1, cols, act, y);
    }
    return;
  }
#endif
  const std::size_t ng = cols / 2 / group, rb = nm24m_q4_row_bytes(cols);
  for (std::size_t k = k0; k < k1; ++k) {
    y[k] = zeros != nullptr ? nm24m_q4_row_generic<true, S>(tiles + k * rb, scales + k * ng, zeros + k * ng, group, cols, act)
                            : nm24m_q4_row_generic<false, S>(tiles + k * rb, scales + k * ng, nullptr, group, cols, act);
  }
}

}  // namespace detail

/// 2:4 W4A8 GEMV on mask tiles: y[k] = Σ_b s[k][g(b)]·a[b]·Σ_{kept j in b}(u_kj − z[k][g(b)])·qx[j].
/// tiles rows × nm24m_q4_row_bytes(cols) (pack_nm24m_q4), scales (zeros or nullptr) rows × (cols/2)/group,
/// group ∈ {32, 64, 128}, cols % 64 == 0, (cols/2) % group == 0; `act` built for the same cols.
template <class Arch = simd::dynamic, bool Vnni = detail::has_vnni>
void gemv_nm24m_q4_a8(const std::uint8_t* tiles, const float* scales, const std::uint8_t* zeros, std::size_t group,
                      std::size_t rows, std::size_t cols, const NmMaskQ8& act, float* y, int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    detail::nm24m_q4_range<Arch, Vnni, float>(tiles, scales, zeros, group, r0, r1, cols, act, y);
  });
}

/// Scalar reference of gemv_nm24m_q4_a8 on the COMPACT layout (codes + 2-bit indices), double
/// accumulation over the same int8 activations; scales given as floats (widen fp16 ones first).
inline void gemv_nm24m_q4_a8_reference(const std::uint8_t* codes, const float* scales, const std::uint8_t* zeros,
                                       std::size_t group, const std::uint8_t* idx, std::size_t rows, std::size_t cols,
                                       const NmMaskQ8& act, float* y) noexcept {
  const std::size_t nk = cols / 2, ng = nk / group;
  for (std::size_t k = 0; k < rows; ++k) {
    double s = 0.0;
    for (std::size_t i = 0; i < nk; ++i) {
      const int u = (codes[k * (nk / 2) + i / 2] >> (4 * (i % 2))) & 15;
      const int z = zeros != nullptr ? zeros[k * ng + i / group] : 8;
      const std::size_t j = 4 * (i / 2) + ((idx[k * (nk / 4) + i / 4] >> (2 * (i % 4))) & 3u);
      s += static_cast<double>(scales[k * ng + i / group]) * (u - z) * act.scale[j / 64] * act.q[nm24m_q8_position(j)];
    }
    y[k] = static_cast<float>(s);
  }
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void gemv_nm24m_q4_a8<simd::dynamic, detail::has_vnni>(
    const std::uint8_t* tiles, const float* scales, const std::uint8_t* zeros, std::size_t group,
    std::size_t rows, std::size_t cols, const NmMaskQ8& act, float* y, int threads) noexcept {
  SPARQ_DISPATCH_CALL(gemv_nm24m_q4_a8, (gemv_nm24m_q4_a8<xsimd::default_arch, detail::has_vnni>), tiles, scales, zeros, group, rows, cols, act, y, threads);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END

}  // namespace sparq::kernels
