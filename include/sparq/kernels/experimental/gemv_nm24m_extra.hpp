// EXPERIMENTAL: 2:4 int4 mask-tile GEMV variants: fp16 scales (gemv_nm24m_q4h_a8 / _f32) and the
// float-activation entry point gemv_nm24m_q4_f32.
//
// Not used by the library: no LinearOp packs this layout and the kernels are in no dispatch table
// (kernels/dispatch.hpp). They are kept, tested against their scalar references on every target
// (tests/kernels) and benchmarked, as measured alternatives: NMLinear runs gemv_nm24m_q4_a8 on
// activations it quantizes itself, and stores f32 scales. Call them with an explicit Arch from code
// compiled for that target (the default is the translation unit's own, xsimd::default_arch).
// docs/kernels.md, "Experimental kernels".
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparq/kernels/gemv_nm_mask.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// gemv_nm24m_q4_a8 with fp16 group scales (IEEE binary16 bit patterns): 0.031 instead of 0.0625
/// bytes per dense weight at G = 32. Scales widen exactly: equal to gemv_nm24m_q4_a8 on the widened scales.
template <class Arch = xsimd::default_arch, bool Vnni = detail::has_vnni>
void gemv_nm24m_q4h_a8(const std::uint8_t* tiles, const std::uint16_t* scales_f16, const std::uint8_t* zeros,
                       std::size_t group, std::size_t rows, std::size_t cols, const NmMaskQ8& act, float* y,
                       int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    detail::nm24m_q4_range<Arch, Vnni, std::uint16_t>(tiles, scales_f16, zeros, group, r0, r1, cols, act, y);
  });
}

/// Float-activation form: quantizes x per block of 64 into `work` (nm24m_q8_workspace_bytes(cols)).
/// Error versus the exact float product |Δy[k]| ≤ Σ_j |W[k][j]|·a[b(j)]/2 (plus float rounding).
template <class Arch = xsimd::default_arch>
void gemv_nm24m_q4_f32(const std::uint8_t* tiles, const float* scales, const std::uint8_t* zeros, std::size_t group,
                       std::size_t rows, std::size_t cols, const float* x, float* y, void* work, int threads = 1) noexcept {
  const NmMaskQ8 act = NmMaskQ8::carve(work, cols);
  quantize_nm24m_q8(x, cols, act);
  gemv_nm24m_q4_a8<Arch>(tiles, scales, zeros, group, rows, cols, act, y, threads);
}

/// Float-activation form of gemv_nm24m_q4h_a8 (workspace nm24m_q8_workspace_bytes(cols)).
template <class Arch = xsimd::default_arch>
void gemv_nm24m_q4h_f32(const std::uint8_t* tiles, const std::uint16_t* scales_f16, const std::uint8_t* zeros,
                        std::size_t group, std::size_t rows, std::size_t cols, const float* x, float* y, void* work,
                        int threads = 1) noexcept {
  const NmMaskQ8 act = NmMaskQ8::carve(work, cols);
  quantize_nm24m_q8(x, cols, act);
  gemv_nm24m_q4h_a8<Arch>(tiles, scales_f16, zeros, group, rows, cols, act, y, threads);
}


SPARQ_TARGET_END

}  // namespace sparq::kernels
