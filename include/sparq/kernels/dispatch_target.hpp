// Compiles every dispatched kernel for this translation unit's target and defines its table.
//
// Include this header in exactly one .cpp per target and build that file with the target's flags
// (CMake: sparq_add_dispatch(<your target>) does it for every target of the machine's architecture,
// see docs/kernels.md "Run-time dispatch"). Nothing else belongs in that file: whatever else it
// instantiated could be shared, by the linker, with code that runs on a less capable CPU.
//
//   sse2        (no flags)
//   avx2        -mavx2 -mfma -mf16c
//   avx512      -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma -mf16c
//   avx512vnni  the avx512 set + -mavx512vnni
//   neon        (no flags, aarch64)
//
// Each kernel is taken as `name<xsimd::default_arch>`, which is this unit's target; the VNNI
// variants follow detail::has_vnni (the -mavx512vnni flag).
#pragma once

#include "sparq/kernels/attention.hpp"
#include "sparq/kernels/cholesky.hpp"
#include "sparq/kernels/dequantize.hpp"
#include "sparq/kernels/dispatch.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/kernels/gemm_dense.hpp"
#include "sparq/kernels/gemm_q.hpp"
#include "sparq/kernels/gemv_bitmask.hpp"
#include "sparq/kernels/gemv_bitmask_q.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_half.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/gemv_nm_mask.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"
#include "sparq/kernels/hessian.hpp"
#include "sparq/kernels/pack.hpp"
#include "sparq/kernels/quantize.hpp"

namespace sparq::kernels {

SPARQ_TARGET_BEGIN

/// This unit's instantiation of every dispatched entry point.
[[nodiscard]] constexpr KernelTable make_kernel_table() noexcept {
  using A = xsimd::default_arch;
  constexpr bool V = detail::has_vnni;
  KernelTable t;
  t.target = this_target();
  t.gemv_f32 = &gemv_f32<A>;
  t.dense_gemm = &dense_gemm<A>;
  t.attn_axpy = &attn_axpy<A>;
  t.attn_dot = &attn_dot<A>;
  t.softmax = &softmax<A>;
  t.attn_head = &attn_head<A>;
  t.gemv_bf16 = &gemv_bf16<A>;
  t.gemv_f16 = &gemv_f16<A>;
  t.gemv_q8_f32 = &gemv_q8_f32<A>;
  t.gemv_q8_a8 = &gemv_q8_a8<A, V>;
  t.gemm_q8_f32 = &gemm_q8_f32<A>;
  t.gemm_q8_a8 = &gemm_q8_a8<A, V>;
  t.gemv_q4_a8 = &gemv_q4_a8<A, V>;
  t.gemv_q4_f32 = &gemv_q4_f32<A>;
  t.gemm_q4_f32 = &gemm_q4_f32<A>;
  t.gemv_nm_f32 = &gemv_nm_f32<A>;
  t.gemv_nm_q8 = &gemv_nm_q8<A>;
  t.gemv_nm_q4 = &gemv_nm_q4<A>;
  t.gemv_nm24m_q4_a8 = &gemv_nm24m_q4_a8<A, V>;
  t.gemv_bitmask_f32 = &gemv_bitmask_f32<A>;
  t.gemv_bitmask_q8_a8 = &gemv_bitmask_q8_a8<A, V>;
  t.gemv_bitmask_q8_f32 = &gemv_bitmask_q8_f32<A>;
  t.gemv_bitmask_q4_a8 = &gemv_bitmask_q4_a8<A, V>;
  t.gemv_bitmask_q4_f32 = &gemv_bitmask_q4_f32<A>;
  t.hessian_accumulate = &hessian_accumulate<A>;
  t.all_finite = &all_finite<A>;
  t.group_absmax = &group_absmax<A>;
  t.group_minmax = &group_minmax<A>;
  t.symmetric_scales = &symmetric_scales<A>;
  t.table16_codes = &table16_codes<A>;
  t.asymmetric_params = &asymmetric_params<A>;
  t.quantize_codes = &quantize_codes<A>;
  t.dequantize_codes = &dequantize_codes<A>;
  t.dequantize_table = &dequantize_table<A>;
  t.pack_codes = &pack_codes<A>;
  t.unpack_codes = &unpack_codes<A>;
  t.gemm_f32 = &gemm<A, float>;
  t.gemm_f64 = &gemm<A, double>;
  t.cholesky_lower_f32 = &cholesky_lower<A, float>;
  t.cholesky_lower_f64 = &cholesky_lower<A, double>;
  t.invert_lower_f32 = &invert_lower<A, float>;
  t.invert_lower_f64 = &invert_lower<A, double>;
  t.inverse_upper_factor_f32 = &inverse_upper_factor<A, float>;
  t.inverse_upper_factor_f64 = &inverse_upper_factor<A, double>;
  return t;
}

SPARQ_TARGET_END

}  // namespace sparq::kernels

// This unit's table under its target's name (declared weak in dispatch.hpp). Constant-initialised:
// defining it runs no code, so nothing compiled for this target executes before the CPU check.
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define SPARQ_THIS_KERNEL_TABLE kernel_table_avx512vnni
#elif defined(__AVX512F__)
#define SPARQ_THIS_KERNEL_TABLE kernel_table_avx512
#elif defined(__AVX2__) || defined(__FMA__) || defined(__F16C__)
#define SPARQ_THIS_KERNEL_TABLE kernel_table_avx2
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define SPARQ_THIS_KERNEL_TABLE kernel_table_neon
#elif defined(__SSE2__)
#define SPARQ_THIS_KERNEL_TABLE kernel_table_sse2
#else
#define SPARQ_THIS_KERNEL_TABLE kernel_table_scalar
#endif

namespace sparq::kernels {
constinit const KernelTable SPARQ_THIS_KERNEL_TABLE = make_kernel_table();
static_assert(make_kernel_table().target == this_target(), "the table's name must match this_target()");
}  // namespace sparq::kernels

#undef SPARQ_THIS_KERNEL_TABLE
