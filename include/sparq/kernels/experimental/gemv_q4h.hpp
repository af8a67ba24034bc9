// EXPERIMENTAL: int4 GEMV with fp16 group scales (gemv_q4h_a8 / gemv_q4h_f32).
//
// Not used by the library: no LinearOp packs this layout and the kernels are in no dispatch table
// (kernels/dispatch.hpp). They are kept, tested against their scalar references on every target
// (tests/kernels) and benchmarked, as measured alternatives: 4.5 instead of 5 bits per weight at G
// = 32, bit-identical to gemv_q4_a8 on the widened scales; sparq's Q4Linear keeps f32 scales. Call
// them with an explicit Arch from code compiled for that target (the default is the translation
// unit's own, xsimd::default_arch). docs/kernels.md, "Experimental kernels".
#pragma once

#include <cstddef>
#include <cstdint>

#include "sparq/kernels/gemv_q4.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// gemv_q4_a8 with fp16 scales (`scales_f16`: IEEE binary16 bit patterns, rows × cols/group; 2 bytes
/// per group instead of 4, i.e. 4.5 instead of 5 bits per weight at G = 32). The scales widen to
/// float exactly, so on every target (AVX-512, AVX2, SSE2) the result equals gemv_q4_a8 on the
/// widened scales bit for bit.
template <class Arch = xsimd::default_arch, bool Vnni = detail::has_vnni>
void gemv_q4h_a8(const std::uint8_t* codes, const std::uint16_t* scales_f16, const std::uint8_t* zeros,
                 std::size_t rows, std::size_t cols, std::size_t group, const BlockQ8& act, float* y,
                 int threads = 1) noexcept {
  for_each_row_block(rows, threads, [&](std::size_t r0, std::size_t r1) {
    detail::q4_rows_range<Arch, Vnni, true>(codes, scales_f16, zeros, r0, r1, cols, group, act, y);
  });
}

/// Float-activation form of gemv_q4h_a8 (workspace block_q8_workspace_bytes(cols)).
template <class Arch = xsimd::default_arch>
void gemv_q4h_f32(const std::uint8_t* codes, const std::uint16_t* scales_f16, const std::uint8_t* zeros,
                  std::size_t rows, std::size_t cols, std::size_t group, const float* x, float* y, void* work,
                  int threads = 1) noexcept {
  const BlockQ8 act = BlockQ8::carve(work, cols);
  quantize_block_q8(x, cols, act);
  gemv_q4h_a8<Arch>(codes, scales_f16, zeros, rows, cols, group, act, y, threads);
}


SPARQ_TARGET_END

}  // namespace sparq::kernels
