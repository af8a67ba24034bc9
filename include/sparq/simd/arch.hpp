// The one header that includes xsimd and <immintrin.h>: SIMD targets, their identity, detection.
//
// Kernels are templates on an xsimd architecture tag (`xsimd::sse2`, `xsimd::avx2`,
// `xsimd::avx512bw`, ...). The default is `xsimd::default_arch`, which follows the -m flags of the
// translation unit that instantiates them: sparq adds no ISA flag of its own. Kernels live in an
// inline namespace named after the compile-time target (SPARQ_TARGET_NS), so two translation
// units built with different flags never share a symbol, and the linker cannot pick the AVX-512
// copy of a kernel for a caller compiled for SSE2.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC's name; clang has no such group
#endif
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SPARQ_X86 1
#else
#define SPARQ_X86 0
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace sparq::simd {

/// Arch tag of the run-time dispatched entry points: `kernels::gemv_q4_f32(...)` (Arch defaults to
/// `dynamic`) runs the most capable target compiled into the program that this CPU supports, chosen
/// once and cached (see kernels/dispatch.hpp); `kernels::gemv_q4_f32<xsimd::avx2>(...)` runs that
/// target's code as compiled into the calling translation unit.
struct dynamic {
  static constexpr const char* name() noexcept { return "dynamic"; }
};

/// True for the dispatching tag.
template <class Arch>
inline constexpr bool is_dynamic_v = std::is_same_v<Arch, dynamic>;

}  // namespace sparq::simd

// Compile-time target of this translation unit (most capable first).
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define SPARQ_TARGET_NS target_avx512vnni
#elif defined(__AVX512BW__)
#define SPARQ_TARGET_NS target_avx512bw
#elif defined(__AVX2__) && defined(__FMA__)
#define SPARQ_TARGET_NS target_avx2fma
#elif defined(__AVX2__)
#define SPARQ_TARGET_NS target_avx2
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define SPARQ_TARGET_NS target_neon
#elif defined(__SSE2__)
#define SPARQ_TARGET_NS target_sse2
#else
#define SPARQ_TARGET_NS target_scalar
#endif

/// Opens/closes the per-target namespace that every kernel definition sits in.
#define SPARQ_TARGET_BEGIN inline namespace SPARQ_TARGET_NS {
#define SPARQ_TARGET_END }

namespace sparq::simd {

SPARQ_TARGET_BEGIN

/// The architecture kernels use when the caller names none.
using default_arch = xsimd::default_arch;

/// Archs this translation unit can instantiate (subset of what xsimd was compiled for).
/// Listed most capable first; scalar code paths are tested separately.
using compiled_archs = xsimd::supported_architectures;

SPARQ_TARGET_END

/// Run-time CPU check for an xsimd arch tag (xsimd 8.1's own detection misreads AVX on some
/// CPUs and skips the OS check, so this uses the compiler's __builtin_cpu_supports).
template <class Arch>
[[nodiscard]] inline bool cpu_supports() noexcept {
#if SPARQ_X86 && defined(__GNUC__)
  if constexpr (std::is_same_v<Arch, xsimd::avx512bw>) {
    return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd");
  } else if constexpr (std::is_same_v<Arch, xsimd::avx512dq> || std::is_same_v<Arch, xsimd::avx512cd> ||
                       std::is_same_v<Arch, xsimd::avx512f>) {
    return __builtin_cpu_supports("avx512f");
  } else if constexpr (std::is_same_v<Arch, xsimd::fma3<xsimd::avx2>>) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  } else if constexpr (std::is_same_v<Arch, xsimd::avx2>) {
    return __builtin_cpu_supports("avx2");
  } else if constexpr (std::is_same_v<Arch, xsimd::fma3<xsimd::avx>> || std::is_same_v<Arch, xsimd::avx>) {
    return __builtin_cpu_supports("avx");
  } else if constexpr (std::is_same_v<Arch, xsimd::sse4_2> || std::is_same_v<Arch, xsimd::fma3<xsimd::sse4_2>>) {
    return __builtin_cpu_supports("sse4.2");
  } else if constexpr (std::is_same_v<Arch, xsimd::sse4_1>) {
    return __builtin_cpu_supports("sse4.1");
  } else if constexpr (std::is_same_v<Arch, xsimd::ssse3>) {
    return __builtin_cpu_supports("ssse3");
  } else if constexpr (std::is_same_v<Arch, xsimd::sse3>) {
    return __builtin_cpu_supports("sse3");
  } else {
    return true;  // sse2 is baseline on x86-64
  }
#else
  return true;
#endif
}

/// True when the CPU has AVX-512 VNNI (vpdpbusd), which xsimd 8.1 does not model as an arch.
[[nodiscard]] inline bool cpu_has_avx512vnni() noexcept {
#if SPARQ_X86 && defined(__GNUC__)
  return __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

/// Human-readable name of an xsimd arch tag.
template <class Arch>
[[nodiscard]] constexpr const char* arch_name() noexcept {
  return Arch::name();
}

}  // namespace sparq::simd
