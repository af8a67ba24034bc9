// Dequantization kernels over one row: integer codes → floats (scale · (u − zero)) and table
// codes (NF4 / FP8) → floats (scale · table[u]), each with its scalar reference.
//
// Group g of `group` consecutive elements uses scale[g] and zero z_g (zeros[g], or zero_const when
// zeros is null). Integer codes: x̂ = scale[g] · float(u − z_g), or for `signed_codes` (8-bit
// symmetric, the byte is the two's-complement q) x̂ = scale[g] · float(q). The integer difference
// is exact, and the result is one IEEE multiply in every path (no fused multiply-add), so scalar and
// SIMD agree bit for bit. Kernels are noexcept and check nothing. The same holds between SIMD
// targets (docs/kernels.md, "Same results on every target").
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "sparq/kernels/quant_isa.hpp"
#include "sparq/simd/arch.hpp"
#include "sparq/kernels/dispatch.hpp"

namespace sparq::kernels {
SPARQ_TARGET_BEGIN

/// Scalar reference for dequantize_codes.
inline void dequantize_codes_scalar(const std::uint8_t* u, std::size_t n, std::size_t group,
                                    const float* scale, const std::uint8_t* zeros, int zero_const,
                                    bool signed_codes, float* out) noexcept {
  for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
    const std::size_t i1 = std::min(n, i0 + group);
    const int z = signed_codes ? 0 : (zeros ? zeros[g] : zero_const);
    const float s = scale[g];
    for (std::size_t i = i0; i < i1; ++i) {
      const int c = signed_codes ? static_cast<int>(static_cast<std::int8_t>(u[i])) : static_cast<int>(u[i]);
      out[i] = s * static_cast<float>(c - z);
    }
  }
}

/// Scalar reference for dequantize_table: out = scale[g] · table[u].
inline void dequantize_table_scalar(const std::uint8_t* u, std::size_t n, std::size_t group,
                                    const float* scale, const float* table, float* out) noexcept {
  for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
    const std::size_t i1 = std::min(n, i0 + group);
    for (std::size_t i = i0; i < i1; ++i) out[i] = scale[g] * table[u[i]];
  }
}

namespace detail {
template <class Arch, bool Signed>
inline void dequantize_codes_simd(const std::uint8_t* u, std::size_t n, std::size_t group,
                                  const float* scale, const std::uint8_t* zeros, int zero_const,
                                  float* out) noexcept {
  using B = xsimd::batch<float, Arch>;
  using I = xsimd::batch<std::int32_t, Arch>;
  constexpr std::size_t W = B::size;
  for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
    const std::size_t i1 = std::min(n, i0 + group);
    const int z = Signed ? 0 : (zeros ? zeros[g] : zero_const);
    const B s = B::broadcast(scale[g]);
    const I vz = I::broadcast(z);
    std::size_t i = i0;
    for (; i + W <= i1; i += W) {
      const I c = quant_isa::load_bytes_as_i32<Arch, Signed>(u + i) - vz;
      (s * xsimd::batch_cast<float>(c)).store_unaligned(out + i);
    }
    for (; i < i1; ++i) {
      const int c = Signed ? static_cast<int>(static_cast<std::int8_t>(u[i])) : static_cast<int>(u[i]);
      out[i] = scale[g] * static_cast<float>(c - z);
    }
  }
}
}  // namespace detail

/// Integer codes of one row (one byte per code) → floats.
template <class Arch = simd::dynamic>
inline void dequantize_codes(const std::uint8_t* u, std::size_t n, std::size_t group, const float* scale,
                             const std::uint8_t* zeros, int zero_const, bool signed_codes,
                             float* out) noexcept {
  if constexpr (!quant_isa::has_simd<Arch>) {
    dequantize_codes_scalar(u, n, group, scale, zeros, zero_const, signed_codes, out);
  } else if (signed_codes) {
    detail::dequantize_codes_simd<Arch, true>(u, n, group, scale, zeros, zero_const, out);
  } else {
    detail::dequantize_codes_simd<Arch, false>(u, n, group, scale, zeros, zero_const, out);
  }
}

/// Table codes of one row (one byte per code, u < table size) → scale[g] · table[u]. `table_size`
/// is 16 (NF4: AVX-512 uses a 16-entry permute) or 256 (FP8: gathers).
template <class Arch = simd::dynamic>
inline void dequantize_table(const std::uint8_t* u, std::size_t n, std::size_t group, const float* scale,
                             const float* table, [[maybe_unused]] std::size_t table_size, float* out) noexcept {
  if constexpr (quant_isa::isa_of<Arch>() == quant_isa::Isa::avx512bw) {
#if defined(__AVX512BW__)
    const __m512 t16 = table_size == 16 ? _mm512_loadu_ps(table) : _mm512_setzero_ps();
    for (std::size_t g = 0, i0 = 0; i0 < n; ++g, i0 += group) {
      const std::size_t i1 = std::min(n, i0 + group);
      const __m512 s = _mm512_set1_ps(scale[g]);
      std::size_t i = i0;
      for (; i + 16 <= i1; i += 16) {
        const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u + i)));
        const __m512 v = table_size == 16 ? _mm512_permutexvar_ps(idx, t16) : _mm512_i32gather_ps(idx, table, 4);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(s, v));
      }
      for (; i < i1; ++i) out[i] = scale[g] * table[u[i]];
    }
    return;
#endif
  }
  dequantize_table_scalar(u, n, group, scale, table, out);
}

// ---- run-time dispatch ----
// Arch = simd::dynamic: the entry points above run the active target's table (kernels/dispatch.hpp).
template <>
inline void dequantize_codes<simd::dynamic>(
    const std::uint8_t* u, std::size_t n, std::size_t group, const float* scale, const std::uint8_t* zeros,
    int zero_const, bool signed_codes, float* out) noexcept {
  SPARQ_DISPATCH_CALL(dequantize_codes, (dequantize_codes<xsimd::default_arch>), u, n, group, scale, zeros, zero_const, signed_codes, out);
}
template <>
inline void dequantize_table<simd::dynamic>(
    const std::uint8_t* u, std::size_t n, std::size_t group, const float* scale, const float* table,
    std::size_t table_size, float* out) noexcept {
  SPARQ_DISPATCH_CALL(dequantize_table, (dequantize_table<xsimd::default_arch>), u, n, group, scale, table, table_size, out);
}
// ---- end run-time dispatch ----

SPARQ_TARGET_END
}  // namespace sparq::kernels
