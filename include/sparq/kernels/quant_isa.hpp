// Small per-ISA helpers shared by the quantization kernels: ISA of an xsimd arch, byte narrowing
// and widening, horizontal min/max.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "sparq/simd/arch.hpp"

namespace sparq::kernels {
SPARQ_TARGET_BEGIN

namespace quant_isa {

/// Instruction family a kernel instantiated for Arch uses for its integer narrowing/widening.
enum class Isa { scalar, sse2, avx2, avx512bw };

template <class Arch>
[[nodiscard]] constexpr Isa isa_of() noexcept {
#if defined(__AVX512BW__)
  if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) return Isa::avx512bw;
#endif
#if defined(__AVX2__)
  if constexpr (std::is_base_of_v<xsimd::avx2, Arch>) return Isa::avx2;
#endif
#if defined(__SSE2__)
  if constexpr (std::is_base_of_v<xsimd::sse2, Arch>) return Isa::sse2;
#endif
  return Isa::scalar;
}

/// True when Arch has the float batch ops and the integer helpers below.
template <class Arch>
inline constexpr bool has_simd = isa_of<Arch>() != Isa::scalar;

/// Stores the low byte of every int32 lane of v (batch::size bytes, truncating).
template <class Arch>
inline void store_low_bytes(const xsimd::batch<std::int32_t, Arch>& v, std::uint8_t* out) noexcept {
  constexpr Isa isa = isa_of<Arch>();
  if constexpr (isa == Isa::avx512bw) {
#if defined(__AVX512BW__)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(v));
#endif
  } else if constexpr (isa == Isa::avx2) {
#if defined(__AVX2__)
    const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i t = _mm256_shuffle_epi8(v, pick);
    const __m128i r = _mm_unpacklo_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), r);
#endif
  } else if constexpr (isa == Isa::sse2) {
#if defined(__SSE2__)
    const __m128i m = _mm_and_si128(v, _mm_set1_epi32(0xFF));  // so the saturating packs truncate
    const __m128i p = _mm_packus_epi16(_mm_packs_epi32(m, m), _mm_setzero_si128());
    const int word = _mm_cvtsi128_si32(p);
    std::memcpy(out, &word, 4);
#endif
  }
}

/// Loads batch::size bytes and widens them to int32 lanes (zero- or sign-extended).
template <class Arch, bool Signed>
[[nodiscard]] inline xsimd::batch<std::int32_t, Arch> load_bytes_as_i32(const std::uint8_t* p) noexcept {
  using B = xsimd::batch<std::int32_t, Arch>;
  constexpr Isa isa = isa_of<Arch>();
  if constexpr (isa == Isa::avx512bw) {
#if defined(__AVX512BW__)
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return B(Signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
#endif
  } else if constexpr (isa == Isa::avx2) {
#if defined(__AVX2__)
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return B(Signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b));
#endif
  } else if constexpr (isa == Isa::sse2) {
#if defined(__SSE2__)
    int word;
    std::memcpy(&word, p, 4);
    const __m128i b = _mm_cvtsi32_si128(word);
    if constexpr (Signed) {
      const __m128i w = _mm_unpacklo_epi8(b, b);                // byte in both halves of each word
      return B(_mm_srai_epi32(_mm_unpacklo_epi16(w, w), 24));  // top byte, arithmetic shift
    } else {
      const __m128i z = _mm_setzero_si128();
      return B(_mm_unpacklo_epi16(_mm_unpacklo_epi8(b, z), z));
    }
#endif
  }
  return B(0);
}

/// Horizontal maximum / minimum of a float batch (exact: order does not matter for max/min).
template <class Arch>
[[nodiscard]] inline float hmax(const xsimd::batch<float, Arch>& v) noexcept {
  if constexpr (isa_of<Arch>() == Isa::avx512bw) {
#if defined(__AVX512BW__)
    return _mm512_reduce_max_ps(v);
#endif
  }
  alignas(64) float t[xsimd::batch<float, Arch>::size];
  v.store_aligned(t);
  float m = t[0];
  for (std::size_t i = 1; i < xsimd::batch<float, Arch>::size; ++i) m = t[i] > m ? t[i] : m;
  return m;
}

/// Horizontal maximum of an int32 batch.
template <class Arch>
[[nodiscard]] inline std::int32_t hmax(const xsimd::batch<std::int32_t, Arch>& v) noexcept {
  if constexpr (isa_of<Arch>() == Isa::avx512bw) {
#if defined(__AVX512BW__)
    return _mm512_reduce_max_epi32(v);
#endif
  }
  alignas(64) std::int32_t t[xsimd::batch<std::int32_t, Arch>::size];
  v.store_aligned(t);
  std::int32_t m = t[0];
  for (std::size_t i = 1; i < xsimd::batch<std::int32_t, Arch>::size; ++i) m = t[i] > m ? t[i] : m;
  return m;
}

template <class Arch>
[[nodiscard]] inline float hmin(const xsimd::batch<float, Arch>& v) noexcept {
  if constexpr (isa_of<Arch>() == Isa::avx512bw) {
#if defined(__AVX512BW__)
    return _mm512_reduce_min_ps(v);
#endif
  }
  alignas(64) float t[xsimd::batch<float, Arch>::size];
  v.store_aligned(t);
  float m = t[0];
  for (std::size_t i = 1; i < xsimd::batch<float, Arch>::size; ++i) m = t[i] < m ? t[i] : m;
  return m;
}

}  // namespace quant_isa

SPARQ_TARGET_END
}  // namespace sparq::kernels
