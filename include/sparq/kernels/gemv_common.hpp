// Shared pieces of the GEMV/GEMM kernels: arch traits, the row-parallel driver, block-int8 activations.
//
// Threading: every kernel takes `threads` (1 = run on the calling thread, the default; 0 = every
// OpenMP thread; n > 1 = n OpenMP threads). Rows are split into fixed blocks of 16 output rows and
// each output row is computed by one thread with a summation order that depends only on the arch,
// never on the thread count, so results are bit-identical for any `threads`. Without OpenMP
// (`_OPENMP` undefined) `threads` is ignored.
//
// Block-int8 activations (used by the int4 kernels with float activations, "W4A8" inner products):
// x is quantized per block of 32 inputs, x[j] ≈ a[b]·qx[j] with a[b] = max_{j in b}|x[j]| / 127 and
// qx = round-half-even(x / a[b]) ∈ [−127, 127] (a[b] = 0 and qx = 0 for an all-zero block). The
// int8 values are stored nibble-ordered: per 128 inputs, first the 64 even-indexed then the 64
// odd-indexed ones, so that the low and high nibbles of 64 packed int4 bytes meet their activations
// in two contiguous 64-byte vectors. `sum[b]` = Σ_{j in b} qx[j] (for the offset-binary correction).
// The buffers cover `block_q8_padded(cols)` inputs (a multiple of 512); padding is zero.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "sparq/simd/arch.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

namespace detail {

/// True when Arch is (derived from) xsimd::avx512bw and this TU may use AVX-512BW intrinsics.
template <class Arch>
inline constexpr bool is_avx512bw_v =
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    std::is_base_of_v<xsimd::avx512bw, Arch>;
#else
    false;
#endif

/// True when Arch is (derived from) xsimd::avx2 and this TU may use AVX2 intrinsics.
template <class Arch>
inline constexpr bool is_avx2_v =
#if defined(__AVX2__)
    std::is_base_of_v<xsimd::avx2, Arch>;
#else
    false;
#endif

/// True when Arch is at least SSE2 (x86-64 baseline) and this TU may use SSE2 intrinsics.
template <class Arch>
inline constexpr bool is_sse2_v =
#if defined(__SSE2__)
    std::is_base_of_v<xsimd::sse2, Arch> || is_avx2_v<Arch> || is_avx512bw_v<Arch>;
#else
    false;
#endif

/// VNNI (vpdpbusd) is used by the AVX-512 paths when the TU is compiled with -mavx512vnni.
inline constexpr bool has_vnni =
#if defined(__AVX512VNNI__)
    true;
#else
    false;
#endif

/// Rows per parallel work item.
inline constexpr std::size_t row_block = 16;

}  // namespace detail

/// Calls f(row_begin, row_end) over [0, rows) in blocks of 16 rows, on `threads` OpenMP threads
/// (1 = serial, 0 = all). Each row is handled by exactly one call, so per-row results do not depend
/// on the thread count.
template <class F>
inline void for_each_row_block(std::size_t rows, int threads, F&& f) noexcept {
#ifdef _OPENMP
  if (threads != 1 && rows > detail::row_block && !omp_in_parallel()) {
    const int nt = threads > 0 ? threads : omp_get_max_threads();
    const auto nblocks = static_cast<std::ptrdiff_t>((rows + detail::row_block - 1) / detail::row_block);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (std::ptrdiff_t b = 0; b < nblocks; ++b) {
      const std::size_t r0 = static_cast<std::size_t>(b) * detail::row_block;
      f(r0, std::min(rows, r0 + detail::row_block));
    }
    return;
  }
#else
  (void)threads;
#endif
  f(std::size_t{0}, rows);
}

SPARQ_TARGET_END

// Layout helpers and the BlockQ8 view are plain data, the same for every target (they appear in
// the run-time dispatch table's signatures, see dispatch.hpp), so they sit outside the target namespace.

/// Inputs covered by a block-int8 activation buffer for `cols` inputs (multiple of 512).
[[nodiscard]] constexpr std::size_t block_q8_padded(std::size_t cols) noexcept { return (cols + 511) / 512 * 512; }

/// Bytes of workspace a BlockQ8 view over `cols` inputs needs (plus 64 for alignment).
[[nodiscard]] constexpr std::size_t block_q8_workspace_bytes(std::size_t cols) noexcept {
  const std::size_t p = block_q8_padded(cols);
  return p + (p / 32) * (sizeof(float) + sizeof(std::int32_t)) + 64;
}

/// Position in the nibble-ordered buffer of input j (see the header comment).
[[nodiscard]] constexpr std::size_t block_q8_position(std::size_t j) noexcept {
  const std::size_t r = j % 128;
  return j - r + ((r & 1u) ? 64 + r / 2 : r / 2);
}

/// Block-int8 activations over caller-owned memory (see the header comment for the layout).
struct BlockQ8 {
  std::int8_t* q = nullptr;     ///< block_q8_padded(cols) nibble-ordered int8 values
  float* scale = nullptr;       ///< a[b], one per 32 inputs (padded_cols / 32)
  std::int32_t* sum = nullptr;  ///< Σ qx per block of 32
  std::size_t cols = 0;

  /// Carves the three arrays out of `work` (block_q8_workspace_bytes(cols) bytes, any alignment).
  [[nodiscard]] static BlockQ8 carve(void* work, std::size_t cols) noexcept {
    auto p = reinterpret_cast<std::uintptr_t>(work);
    p = (p + 63) & ~std::uintptr_t{63};
    const std::size_t padded = block_q8_padded(cols);
    BlockQ8 v;
    v.q = reinterpret_cast<std::int8_t*>(p);
    v.scale = reinterpret_cast<float*>(p + padded);
    v.sum = reinterpret_cast<std::int32_t*>(p + padded + (padded / 32) * sizeof(float));
    v.cols = cols;
    return v;
  }
};

SPARQ_TARGET_BEGIN

/// Quantizes x[0..cols) per block of 32 into `out` (cols must be a multiple of 32; padding zeroed).
inline void quantize_block_q8(const float* x, std::size_t cols, const BlockQ8& out) noexcept {
  const std::size_t padded = block_q8_padded(cols);
  const std::size_t nb = cols / 32;
  for (std::size_t b = 0; b < nb; ++b) {
    float amax = 0.0f;
    for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float a = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    std::int32_t s = 0;
    for (std::size_t j = 0; j < 32; ++j) {
      const float v = std::nearbyint(x[b * 32 + j] * inv);
      const auto qv = static_cast<std::int8_t>(std::clamp(v, -127.0f, 127.0f));
      out.q[block_q8_position(b * 32 + j)] = qv;
      s += qv;
    }
    out.scale[b] = a;
    out.sum[b] = s;
  }
  for (std::size_t j = nb * 32; j < padded; ++j) out.q[block_q8_position(j)] = 0;
  for (std::size_t b = nb; b < padded / 32; ++b) {
    out.scale[b] = 0.0f;
    out.sum[b] = 0;
  }
}

/// Fills `out` from int8 per-token activations x ≈ sx·qx (cols a multiple of 32): same scale per block.
inline void block_q8_from_per_token(const std::int8_t* qx, float sx, std::size_t cols, const BlockQ8& out) noexcept {
  const std::size_t padded = block_q8_padded(cols);
  const std::size_t nb = cols / 32;
  for (std::size_t b = 0; b < nb; ++b) {
    std::int32_t s = 0;
    for (std::size_t j = 0; j < 32; ++j) {
      out.q[block_q8_position(b * 32 + j)] = qx[b * 32 + j];
      s += qx[b * 32 + j];
    }
    out.scale[b] = sx;
    out.sum[b] = s;
  }
  for (std::size_t j = nb * 32; j < padded; ++j) out.q[block_q8_position(j)] = 0;
  for (std::size_t b = nb; b < padded / 32; ++b) {
    out.scale[b] = 0.0f;
    out.sum[b] = 0;
  }
}

SPARQ_TARGET_END

}  // namespace sparq::kernels
