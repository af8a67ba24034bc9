// rANS decode kernels: the scalar N-state loop, the AVX-512 16-lane and the AVX2 8-lane loops (same
// stream, same output), and the probability resolution they decode at (12 bits; io/rans_table.hpp
// normalizes frequencies to it).
//
// Both decode the stream of io/rans.hpp (state i mod N decodes symbol i; a state that drops
// below L = 2^16 takes the next 16-bit word; states are visited in increasing order, so the
// words are consumed in that order). The AVX-512 loop keeps 16 states per zmm register: one
// gather of the 4096-entry LUT, one 32-bit multiply, and for the renormalisation a mask of the
// lanes below L whose words are spread into those lanes with vpexpandd — lane j receives the
// k-th next word when it is the k-th lane of the mask, exactly the scalar order. It runs only
// while at least 2N word bytes remain (it loads 32 bytes per 16 lanes unconditionally); the
// scalar loop finishes the tail with every read checked. Kernels are noexcept and check nothing:
// io/rans.hpp validates the table and states and checks the result.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/simd/arch.hpp"

#if SPARQ_X86 && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define SPARQ_RANS_AVX512 1
#else
#define SPARQ_RANS_AVX512 0
#endif
#if SPARQ_X86 && defined(__AVX2__)
#define SPARQ_RANS_AVX2 1
#else
#define SPARQ_RANS_AVX2 0
#endif

namespace sparq::kernels {

/// Frequencies are normalized to 2^rans_prob_bits (io::RansTable); the LUT has that many entries.
inline constexpr unsigned rans_prob_bits = 12;
inline constexpr std::uint32_t rans_prob_scale = 1u << rans_prob_bits;

SPARQ_TARGET_BEGIN

inline constexpr std::uint32_t rans_kernel_lower = 1u << 16;

/// One scalar decode step of state x (LUT entry: symbol | bias << 8 | (freq − 1) << 20). The word
/// at wp is read unconditionally: the caller guarantees 2 readable bytes there.
[[gnu::always_inline]] inline unsigned rans_step(const std::uint32_t* lut, std::uint32_t& x,
                                                 const std::uint8_t*& wp) noexcept {
  const std::uint32_t e = lut[x & (rans_prob_scale - 1)];
  std::uint32_t y = ((e >> 20) + 1) * (x >> rans_prob_bits) + ((e >> 8) & (rans_prob_scale - 1));
  std::uint16_t w;
  std::memcpy(&w, wp, 2);
  // Branch-free renormalisation (the branch would be unpredictable): c ∈ {0, 1}.
  const std::uint32_t c = y < rans_kernel_lower;
  y = (y << (c * 16)) | (w & (0u - c));
  wp += c * 2;
#if defined(__GNUC__)
  // Keeps each state in a general-purpose register: without it g++ 12 packs the N states into
  // vector registers (SLP) and shuttles them to and from GPRs, 3x slower.
  asm("" : "+r"(y));
#endif
  x = y;
  return e & 255u;
}

/// Scalar decoder: n_sym symbols (a multiple of 8 / B) into out[0 .. n_sym·B/8). Returns false when
/// the words run out. state[0..N) in/out, wp advanced past the consumed words.
template <unsigned B, unsigned N>
[[nodiscard]] bool rans_decode_scalar(const std::uint32_t* lut, std::uint32_t* state, const std::uint8_t*& wp,
                                      const std::uint8_t* wend, std::uint8_t* out, std::uint64_t n_sym) noexcept {
  static_assert((B == 2 || B == 4 || B == 8) && N >= 4 && N % (8 / B) == 0);
  constexpr unsigned per_byte = 8 / B;
  std::uint32_t x[N];
  for (unsigned j = 0; j < N; ++j) x[j] = state[j];
  const std::uint8_t* p = wp;
  std::uint64_t i = 0;
  while (n_sym - i >= N && static_cast<std::size_t>(wend - p) >= 2 * N) {
    unsigned s[N];
#pragma GCC unroll 32
    for (unsigned j = 0; j < N; ++j) s[j] = rans_step(lut, x[j], p);
    std::uint8_t* o = out + i / per_byte;
#pragma GCC unroll 32
    for (unsigned k = 0; k < N / per_byte; ++k) {
      unsigned v = 0;
      for (unsigned t = 0; t < per_byte; ++t) v |= s[k * per_byte + t] << (t * B);
      o[k] = static_cast<std::uint8_t>(v);
    }
    i += N;
  }
  // Tail: fewer than N symbols or fewer than 2N word bytes left; every word read is checked.
  unsigned v = 0;
  for (; i < n_sym; ++i) {
    std::uint32_t& xs = x[i % N];
    const std::uint32_t e = lut[xs & (rans_prob_scale - 1)];
    const std::uint32_t y = ((e >> 20) + 1) * (xs >> rans_prob_bits) + ((e >> 8) & (rans_prob_scale - 1));
    if (y < rans_kernel_lower) {
      if (wend - p < 2) return false;
      std::uint16_t w;
      std::memcpy(&w, p, 2);
      p += 2;
      xs = (y << 16) | w;
    } else {
      xs = y;
    }
    v |= (e & 255u) << ((i % per_byte) * B);
    if (i % per_byte == per_byte - 1) {
      out[i / per_byte] = static_cast<std::uint8_t>(v);
      v = 0;
    }
  }
  for (unsigned j = 0; j < N; ++j) state[j] = x[j];
  wp = p;
  return true;
}

#if SPARQ_RANS_AVX512
/// AVX-512 decoder for N = 16 or 32 states (one or two zmm registers); same contract as
/// rans_decode_scalar, whose loop finishes the tail.
template <unsigned B, unsigned N>
[[nodiscard]] bool rans_decode_avx512(const std::uint32_t* lut, std::uint32_t* state, const std::uint8_t*& wp,
                                      const std::uint8_t* wend, std::uint8_t* out, std::uint64_t n_sym) noexcept {
  static_assert(N == 16 || N == 32);
  constexpr unsigned V = N / 16;
  constexpr unsigned per_byte = 8 / B;
  __m512i x[V];
  for (unsigned v = 0; v < V; ++v) x[v] = _mm512_loadu_si512(state + 16 * v);
  const __m512i mask12 = _mm512_set1_epi32(static_cast<int>(rans_prob_scale - 1));
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i lower = _mm512_set1_epi32(static_cast<int>(rans_kernel_lower));
  const std::uint8_t* p = wp;
  std::uint64_t i = 0;
  while (n_sym - i >= N && static_cast<std::size_t>(wend - p) >= 2 * N) {
#pragma GCC unroll 2
    for (unsigned v = 0; v < V; ++v) {
      const __m512i e = _mm512_i32gather_epi32(_mm512_and_si512(x[v], mask12), lut, 4);
      const __m512i f = _mm512_add_epi32(_mm512_srli_epi32(e, 20), one);
      const __m512i bias = _mm512_and_si512(_mm512_srli_epi32(e, 8), mask12);
      __m512i y = _mm512_add_epi32(_mm512_mullo_epi32(f, _mm512_srli_epi32(x[v], rans_prob_bits)), bias);
      const __mmask16 m = _mm512_cmplt_epu32_mask(y, lower);
      // 16 next words widened to 32 bits; lane k of the mask takes word popcount(m below k).
      const __m512i w = _mm512_maskz_expand_epi32(
          m, _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
      y = _mm512_mask_or_epi32(y, m, _mm512_slli_epi32(y, 16), w);
      p += 2 * static_cast<unsigned>(__builtin_popcount(m));
      x[v] = y;
      const __m128i b = _mm512_cvtepi32_epi8(e);  // low byte of each entry = the symbol
      std::uint8_t* o = out + (i + 16 * v) / per_byte;
      if constexpr (B == 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o), b);
      } else if constexpr (B == 4) {
        // u16 lane = lo | hi << 8 with lo, hi < 16  ->  lo | hi << 4.
        const __m128i t = _mm_or_si128(_mm_and_si128(b, _mm_set1_epi16(0x00ff)), _mm_srli_epi16(b, 4));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o), _mm_packus_epi16(t, t));
      } else {
        // u32 lane = s0 | s1 << 8 | s2 << 16 | s3 << 24 with s < 4  ->  s0 | s1 << 2 | s2 << 4 | s3 << 6.
        const __m128i t = _mm_or_si128(
            _mm_or_si128(_mm_and_si128(b, _mm_set1_epi32(0x3)), _mm_and_si128(_mm_srli_epi32(b, 6), _mm_set1_epi32(0xc))),
            _mm_or_si128(_mm_and_si128(_mm_srli_epi32(b, 12), _mm_set1_epi32(0x30)),
                         _mm_and_si128(_mm_srli_epi32(b, 18), _mm_set1_epi32(0xc0))));
        const int packed = _mm_cvtsi128_si32(_mm_cvtepi32_epi8(t));
        std::memcpy(o, &packed, 4);
      }
    }
    i += N;
  }
  for (unsigned v = 0; v < V; ++v) _mm512_storeu_si512(state + 16 * v, x[v]);
  wp = p;
  return rans_decode_scalar<B, N>(lut, state, wp, wend, out + i / per_byte, n_sym - i);
}
#endif

#if SPARQ_RANS_AVX2
/// Word-rank table of the AVX2 decoder: entry m (a mask of the 8 lanes below L) holds, in nibble j,
/// the number of mask lanes below lane j — the index of the next word that lane j takes.
[[nodiscard]] inline const std::uint32_t* rans_avx2_rank_table() noexcept {
  static constexpr auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (unsigned m = 0; m < 256; ++m) {
      unsigned k = 0;
      for (unsigned j = 0; j < 8; ++j) {
        t[m] |= (k & 7u) << (4 * j);
        k += (m >> j) & 1u;
      }
    }
    return t;
  }();
  return table.data();
}

/// AVX2 decoder for N = 16 or 32 states (two or four ymm registers of 8 states); same contract
/// and same output as rans_decode_scalar, whose loop finishes the tail. Per 8 states: one vpgatherdd
/// of the LUT, one 32-bit multiply; the lanes below L form an 8-bit mask (vmovmskps of an unsigned
/// "y >> 16 == 0" compare), and the next 8 words, widened to 32 bits, are moved into those lanes
/// by vpermd with the control of rans_avx2_rank_table (lane j gets the word numbered by the mask
/// lanes below it: the scalar order), then blended in under the mask. Like the AVX-512 loop it runs
/// only while at least 2N word bytes remain (it loads 16 bytes per 8 lanes unconditionally).
template <unsigned B, unsigned N>
[[nodiscard]] bool rans_decode_avx2(const std::uint32_t* lut, std::uint32_t* state, const std::uint8_t*& wp,
                                    const std::uint8_t* wend, std::uint8_t* out, std::uint64_t n_sym) noexcept {
  static_assert(N == 16 || N == 32);
  constexpr unsigned V = N / 8;
  constexpr unsigned per_byte = 8 / B;
  const std::uint32_t* ranks = rans_avx2_rank_table();
  __m256i x[V];
  for (unsigned v = 0; v < V; ++v) x[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state + 8 * v));
  const __m256i mask12 = _mm256_set1_epi32(static_cast<int>(rans_prob_scale - 1));
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i nsh = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i lowbytes = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                            0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i gather04 = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
  const std::uint8_t* p = wp;
  std::uint64_t i = 0;
  while (n_sym - i >= N && static_cast<std::size_t>(wend - p) >= 2 * N) {
#pragma GCC unroll 4
    for (unsigned v = 0; v < V; ++v) {
      const __m256i e = _mm256_i32gather_epi32(reinterpret_cast<const int*>(lut), _mm256_and_si256(x[v], mask12), 4);
      const __m256i f = _mm256_add_epi32(_mm256_srli_epi32(e, 20), one);
      const __m256i bias = _mm256_and_si256(_mm256_srli_epi32(e, 8), mask12);
      __m256i y = _mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srli_epi32(x[v], rans_prob_bits)), bias);
      const __m256i below = _mm256_cmpeq_epi32(_mm256_srli_epi32(y, 16), zero);  // y < L, unsigned
      const unsigned m = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(below)));
      const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      const __m256i ctl = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(ranks[m])), nsh);  // vpermd reads bits 0-2
      const __m256i renorm = _mm256_or_si256(_mm256_slli_epi32(y, 16), _mm256_permutevar8x32_epi32(w, ctl));
      y = _mm256_blendv_epi8(y, renorm, below);
      p += 2 * static_cast<unsigned>(__builtin_popcount(m));
      x[v] = y;
      // the symbols (low byte of each entry) as 8 bytes, then packed B bits each
      const __m256i sb = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(e, lowbytes), gather04);
      std::uint64_t s = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm256_castsi256_si128(sb)));
      std::uint8_t* o = out + (i + 8 * v) / per_byte;
      if constexpr (B == 8) {
        std::memcpy(o, &s, 8);
      } else if constexpr (B == 4) {  // byte pairs -> nibbles
        s = (s | (s >> 4)) & 0x00ff00ff00ff00ffull;
        s = (s | (s >> 8)) & 0x0000ffff0000ffffull;
        s = (s | (s >> 16)) & 0xffffffffull;
        const auto o32 = static_cast<std::uint32_t>(s);
        std::memcpy(o, &o32, 4);
      } else {  // four bytes -> one byte of 2-bit symbols
        s = (s | (s >> 6)) & 0x000f000f000f000full;
        s = (s | (s >> 12)) & 0x000000ff000000ffull;
        s = (s | (s >> 24)) & 0xffffull;
        const auto o16 = static_cast<std::uint16_t>(s);
        std::memcpy(o, &o16, 2);
      }
    }
    i += N;
  }
  for (unsigned v = 0; v < V; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(state + 8 * v), x[v]);
  wp = p;
  return rans_decode_scalar<B, N>(lut, state, wp, wend, out + i / per_byte, n_sym - i);
}
#endif

/// The fastest decoder compiled in for this state count (for 16 and 32 states: AVX-512 when the
/// translation unit targets AVX-512, else AVX2 when it targets AVX2, scalar otherwise).
template <unsigned B>
[[nodiscard]] bool rans_decode_symbols(unsigned n_states, const std::uint32_t* lut, std::uint32_t* state,
                                       const std::uint8_t*& wp, const std::uint8_t* wend, std::uint8_t* out,
                                       std::uint64_t n_sym) noexcept {
  switch (n_states) {
    case 4: return rans_decode_scalar<B, 4>(lut, state, wp, wend, out, n_sym);
    case 8: return rans_decode_scalar<B, 8>(lut, state, wp, wend, out, n_sym);
#if SPARQ_RANS_AVX512
    case 16: return rans_decode_avx512<B, 16>(lut, state, wp, wend, out, n_sym);
    default: return rans_decode_avx512<B, 32>(lut, state, wp, wend, out, n_sym);
#elif SPARQ_RANS_AVX2
    case 16: return rans_decode_avx2<B, 16>(lut, state, wp, wend, out, n_sym);
    default: return rans_decode_avx2<B, 32>(lut, state, wp, wend, out, n_sym);
#else
    case 16: return rans_decode_scalar<B, 16>(lut, state, wp, wend, out, n_sym);
    default: return rans_decode_scalar<B, 32>(lut, state, wp, wend, out, n_sym);
#endif
  }
}

SPARQ_TARGET_END

}  // namespace sparq::kernels
