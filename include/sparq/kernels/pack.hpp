// Dense bit packing of quantization codes (one code per byte ↔ b-bit little-endian bit stream).
//
// Packed row layout (the contract QuantizedTensor and the GEMV kernels rely on): a row of n codes of
// b bits takes ceil(n·b/8) bytes; code i occupies bits [i·b, (i+1)·b) of the row, bit 0 being the
// least significant bit of byte 0 (a little-endian bit stream). Hence
//   b = 8: one byte per code;
//   b = 4: code 2i in the LOW nibble of byte i, code 2i+1 in the HIGH nibble;
//   b = 2: code 4i+k at bits [2k, 2k+2) of byte i;
//   b = 3, 5, 6: codes straddle bytes as the bit stream says.
// Unused high bits of the last byte are zero. Codes given to pack_codes must be < 2^b (higher bits
// are ignored by the scalar reference and the SIMD paths alike).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sparq/kernels/quant_isa.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {
SPARQ_TARGET_BEGIN

/// Bytes of a packed row of n codes of `bits` bits.
[[nodiscard]] constexpr std::size_t packed_row_bytes(std::size_t n, unsigned bits) noexcept {
  return (n * bits + 7) / 8;
}

/// Scalar reference: packs n codes (one per byte, low `bits` bits used) into the bit stream `out`
/// (packed_row_bytes(n, bits) bytes, all written). bits ∈ [1, 8].
inline void pack_codes_scalar(const std::uint8_t* codes, std::size_t n, unsigned bits,
                              std::uint8_t* out) noexcept {
  const std::size_t nb = packed_row_bytes(n, bits);
  std::memset(out, 0, nb);
  const unsigned mask = (1u << bits) - 1u;
  std::size_t bit = 0;
  for (std::size_t i = 0; i < n; ++i, bit += bits) {
    const unsigned v = (codes[i] & mask) << (bit & 7u);
    out[bit >> 3] = static_cast<std::uint8_t>(out[bit >> 3] | (v & 0xFFu));
    if ((bit & 7u) + bits > 8) out[(bit >> 3) + 1] = static_cast<std::uint8_t>(out[(bit >> 3) + 1] | (v >> 8));
  }
}

/// Scalar reference: unpacks n codes of `bits` bits from the bit stream into one byte each.
inline void unpack_codes_scalar(const std::uint8_t* packed, std::size_t n, unsigned bits,
                                std::uint8_t* codes) noexcept {
  const unsigned mask = (1u << bits) - 1u;
  std::size_t bit = 0;
  for (std::size_t i = 0; i < n; ++i, bit += bits) {
    unsigned v = packed[bit >> 3];
    if ((bit & 7u) + bits > 8) v |= static_cast<unsigned>(packed[(bit >> 3) + 1]) << 8;
    codes[i] = static_cast<std::uint8_t>((v >> (bit & 7u)) & mask);
  }
}

namespace detail {

/// 4-bit packing of the first `pairs` code pairs with SIMD; returns how many pairs it did.
template <class Arch>
inline std::size_t pack4_simd(const std::uint8_t* c, std::size_t pairs, std::uint8_t* out) noexcept {
  using quant_isa::Isa;
  constexpr Isa isa = quant_isa::isa_of<Arch>();
  std::size_t p = 0;
  (void)c, (void)pairs, (void)out;  // unused on targets without a SIMD path (aarch64 today)
  if constexpr (isa == Isa::avx512bw) {
#if defined(__AVX512BW__)
    // As 16-bit lanes w = even | odd << 8: (w | w >> 4) has even | odd << 4 in its low byte.
    const __m512i m = _mm512_set1_epi16(0x0F0F);
    for (; p + 32 <= pairs; p += 32) {
      const __m512i w = _mm512_and_si512(_mm512_loadu_si512(c + 2 * p), m);
      const __m512i t = _mm512_or_si512(w, _mm512_srli_epi16(w, 4));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p), _mm512_cvtepi16_epi8(t));
    }
#endif
  } else if constexpr (isa == Isa::avx2) {
#if defined(__AVX2__)
    const __m256i m = _mm256_set1_epi16(0x0F0F), lo = _mm256_set1_epi16(0x00FF);
    for (; p + 32 <= pairs; p += 32) {
      __m256i a = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 2 * p)), m);
      __m256i b = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 2 * p + 32)), m);
      a = _mm256_and_si256(_mm256_or_si256(a, _mm256_srli_epi16(a, 4)), lo);
      b = _mm256_and_si256(_mm256_or_si256(b, _mm256_srli_epi16(b, 4)), lo);
      // packus interleaves 128-bit lanes: a0 b0 a1 b1 → reorder to a0 a1 b0 b1.
      const __m256i r = _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p), r);
    }
#endif
  } else if constexpr (isa == Isa::sse2) {
#if defined(__SSE2__)
    const __m128i m = _mm_set1_epi16(0x0F0F), lo = _mm_set1_epi16(0x00FF);
    for (; p + 16 <= pairs; p += 16) {
      __m128i a = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 2 * p)), m);
      __m128i b = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 2 * p + 16)), m);
      a = _mm_and_si128(_mm_or_si128(a, _mm_srli_epi16(a, 4)), lo);
      b = _mm_and_si128(_mm_or_si128(b, _mm_srli_epi16(b, 4)), lo);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + p), _mm_packus_epi16(a, b));
    }
#endif
  }
  return p;
}

/// 4-bit unpacking of the first `bytes` packed bytes with SIMD; returns how many it did.
template <class Arch>
inline std::size_t unpack4_simd(const std::uint8_t* in, std::size_t bytes, std::uint8_t* c) noexcept {
  using quant_isa::Isa;
  constexpr Isa isa = quant_isa::isa_of<Arch>();
  std::size_t p = 0;
  (void)in, (void)bytes, (void)c;  // unused on targets without a SIMD path (aarch64 today)
  if constexpr (isa == Isa::avx512bw) {
#if defined(__AVX512BW__)
    // Byte b widened to a 16-bit lane becomes (b & 0x0F) | (b & 0xF0) << 4: low code, high code.
    const __m512i lo = _mm512_set1_epi16(0x000F), hi = _mm512_set1_epi16(0x00F0);
    for (; p + 32 <= bytes; p += 32) {
      const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + p)));
      const __m512i r = _mm512_or_si512(_mm512_and_si512(w, lo), _mm512_slli_epi16(_mm512_and_si512(w, hi), 4));
      _mm512_storeu_si512(c + 2 * p, r);
    }
#endif
  } else if constexpr (isa == Isa::avx2) {
#if defined(__AVX2__)
    const __m256i lo = _mm256_set1_epi16(0x000F), hi = _mm256_set1_epi16(0x00F0);
    for (; p + 16 <= bytes; p += 16) {
      const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + p)));
      const __m256i r = _mm256_or_si256(_mm256_and_si256(w, lo), _mm256_slli_epi16(_mm256_and_si256(w, hi), 4));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 2 * p), r);
    }
#endif
  } else if constexpr (isa == Isa::sse2) {
#if defined(__SSE2__)
    const __m128i lo = _mm_set1_epi16(0x000F), hi = _mm_set1_epi16(0x00F0), z = _mm_setzero_si128();
    for (; p + 8 <= bytes; p += 8) {
      const __m128i w = _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + p)), z);
      const __m128i r = _mm_or_si128(_mm_and_si128(w, lo), _mm_slli_epi16(_mm_and_si128(w, hi), 4));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + 2 * p), r);
    }
#endif
  }
  return p;
}

}  // namespace detail

/// Packs n codes (one per byte) into the b-bit row layout above; writes packed_row_bytes(n, bits)
/// bytes. SIMD for b = 4, memcpy for b = 8, the scalar bit stream otherwise. bits ∈ [1, 8].
template <class Arch = simd::dynamic>
inline void pack_codes(const std::uint8_t* codes, std::size_t n, unsigned bits, std::uint8_t* out) noexcept {
  if (bits == 8) {
    if (n) std::memcpy(out, codes, n);
    return;
  }
  if (bits == 4) {
    const std::size_t done = detail::pack4_simd<Arch>(codes, n / 2, out);
    pack_codes_scalar(codes + 2 * done, n - 2 * done, 4, out + done);
    return;
  }
  pack_codes_scalar(codes, n, bits, out);
}

/// Unpacks n codes of `bits` bits into one byte each (inverse of pack_codes).
template <class Arch = simd::dynamic>
inline void unpack_codes(const std::uint8_t* packed, std::size_t n, unsigned bits, std::uint8_t* codes) noexcept {
  if (bits == 8) {
    if (n) std::memcpy(codes, packed, n);
    return;
  }
  if (bits == 4) {
    const std::size_t done = detail::unpack4_simd<Arch>(packed, n / 2, codes);
    unpack_codes_scalar(packed + done, n - 2 * done, 4, codes + 2 * done);
    return;
  }
  unpack_codes_scalar(packed, n, bits, codes);
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void pack_codes<simd::dynamic>(
    const std::uint8_t* codes, std::size_t n, unsigned bits, std::uint8_t* out) noexcept {
  SPARQ_DISPATCH_CALL(pack_codes, (pack_codes<xsimd::default_arch>), codes, n, bits, out);
}
template <>
inline void unpack_codes<simd::dynamic>(
    const std::uint8_t* packed, std::size_t n, unsigned bits, std::uint8_t* codes) noexcept {
  SPARQ_DISPATCH_CALL(unpack_codes, (unpack_codes<xsimd::default_arch>), packed, n, bits, codes);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END
}  // namespace sparq::kernels
