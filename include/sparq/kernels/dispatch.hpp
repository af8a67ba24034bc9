// Run-time target selection: one table of kernel pointers per compiled SIMD target, the best one
// the CPU supports chosen once and cached.
//
// How code for a target comes to exist. Kernels are templates on an xsimd arch tag; their
// hand-written paths are guarded by the ISA macros of the translation unit that instantiates them
// (`__AVX2__`, `__AVX512BW__`, ...). So the kernels of a target are compiled in a translation unit
// built with that target's flags, and every definition there sits in an inline namespace named
// after the target (SPARQ_TARGET_NS, simd/arch.hpp), so the copies never collide at link time. One
// such unit per target (the file `sparq/kernels/dispatch_target.hpp` included by a .cpp, built with
// each flag set; CMake: `sparq_add_dispatch(<name>)`) defines a KernelTable of its instantiations
// under the target's name (kernel_table_avx2, ...). The tables are constant-initialised (no code of
// a target runs at start-up) and declared weak below, so a table that is not linked is a null
// address rather than a link error.
//
// How a call finds it. Every public kernel entry point defaults its Arch parameter to
// simd::dynamic; that specialisation (at the end of each kernel header) calls through
// active_table(), which holds the most capable linked table whose target the running CPU supports
// (__builtin_cpu_supports; xsimd 8.1's own detection misreads AVX on some CPUs). A program that
// registers no table still works: each entry point then runs its instantiation for the calling
// unit's own flags (`xsimd::default_arch`), exactly as a plain header-only build would.
// `kernels::gemv_q4_f32<xsimd::avx2>(...)` names a target explicitly (tests, benchmarks), and
// select_target() pins the table for the whole program (tools' --target, ISA-independence checks).
//
// Safety of the link. Inline functions outside the target namespaces (the standard library's
// templates, core/) can be emitted by several of these units; the linker keeps one copy. Units are
// linked least capable first (sparq_add_dispatch does this), and GNU ld keeps the first copy, so a
// shared out-of-line function is never taken from a more capable unit than the caller's.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sparq/core/error.hpp"
#include "sparq/simd/arch.hpp"

#if SPARQ_X86 && defined(__GNUC__)
#include <cpuid.h>
#endif

namespace sparq::kernels {

/// SIMD targets a kernel table can be compiled for, least capable first.
///  - sse2:       x86-64 baseline (no flags)
///  - avx2:       AVX2 + FMA + F16C (-mavx2 -mfma -mf16c), e.g. Haswell, AMD Zen 1-3
///  - avx512:     AVX-512 F/CD/DQ/BW/VL + the AVX2 set
///  - avx512vnni: avx512 + VNNI (VBMI2 kernels inside are chosen per call by a CPU check)
///  - neon:       aarch64 Advanced SIMD (always present on aarch64)
enum class Target : int { scalar = 0, sse2, avx2, avx512, avx512vnni, neon };
inline constexpr std::size_t target_count = 6;

/// Name of a target ("avx512vnni", ...).
[[nodiscard]] constexpr const char* target_name(Target t) noexcept {
  constexpr const char* names[] = {"scalar", "sse2", "avx2", "avx512", "avx512vnni", "neon"};
  const int i = static_cast<int>(t);
  return i >= 0 && i < static_cast<int>(target_count) ? names[i] : "unknown";
}

/// The target named `name`, or false when no target has that name.
[[nodiscard]] constexpr bool target_from_name(std::string_view name, Target& out) noexcept {
  for (std::size_t i = 0; i < target_count; ++i) {
    if (name == target_name(static_cast<Target>(i))) {
      out = static_cast<Target>(i);
      return true;
    }
  }
  return false;
}

#if SPARQ_X86 && defined(__GNUC__)
namespace detail {
/// F16C (CPUID leaf 1, ECX bit 29), read directly: clang before 16 rejects
/// __builtin_cpu_supports("f16c") at compile time. The AVX state check it would need is already
/// made by the "avx2" query it is always combined with.
[[nodiscard]] inline bool cpu_has_f16c() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
}
}  // namespace detail
#endif

/// True when the running CPU (and OS: libgcc checks XCR0 for AVX state) can execute code compiled
/// for target t.
[[nodiscard]] inline bool cpu_supports_target(Target t) noexcept {
#if SPARQ_X86 && defined(__GNUC__)
  __builtin_cpu_init();  // idempotent; needed when called from a static initialiser that runs first
  switch (t) {
    case Target::scalar:
    case Target::sse2: return true;
    case Target::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && detail::cpu_has_f16c();
    case Target::avx512:
      return cpu_supports_target(Target::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd");
    case Target::avx512vnni: return cpu_supports_target(Target::avx512) && __builtin_cpu_supports("avx512vnni");
    case Target::neon: return false;
  }
  return false;
#elif defined(__aarch64__)
  return t == Target::scalar || t == Target::neon;
#else
  return t == Target::scalar;
#endif
}

SPARQ_TARGET_BEGIN
/// The target this translation unit is compiled for (matches SPARQ_TARGET_NS). A unit with some but
/// not all flags of a target is classed with the more capable one, whose CPU check is the stricter.
[[nodiscard]] constexpr Target this_target() noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
  return Target::avx512vnni;
#elif defined(__AVX512F__)
  return Target::avx512;
#elif defined(__AVX2__) || defined(__FMA__) || defined(__F16C__)
  return Target::avx2;
#elif defined(__aarch64__) && defined(__ARM_NEON)
  return Target::neon;
#elif defined(__SSE2__)
  return Target::sse2;
#else
  return Target::scalar;
#endif
}
SPARQ_TARGET_END

// Types named by the table's signatures (defined in their kernel headers, outside the target
// namespaces because they are plain data, the same for every target).
struct BlockQ8;
struct NmMaskQ8;
enum class Trans : unsigned char;

/// One target's instantiations of every dispatched entry point (see each kernel header for the
/// contract of each function). A null entry means "not compiled for this target".
struct KernelTable {
  Target target = Target::scalar;
  // dense float / half (gemv_f32.hpp, gemm_dense.hpp, attention.hpp, gemv_half.hpp)
  void (*gemv_f32)(const float*, std::size_t, std::size_t, const float*, float*, int) noexcept = nullptr;
  void (*dense_gemm)(const float*, std::size_t, std::size_t, const float*, std::size_t, std::size_t, std::size_t, float*,
                     std::size_t) noexcept = nullptr;
  void (*attn_axpy)(float, const float*, float*, std::size_t) noexcept = nullptr;
  float (*attn_dot)(const float*, const float*, std::size_t) noexcept = nullptr;
  void (*softmax)(float*, std::size_t) noexcept = nullptr;
  void (*attn_head)(const float*, float, const float*, const float*, std::size_t, std::size_t, std::size_t, float*,
                    float*) noexcept = nullptr;
  void (*gemv_bf16)(const std::uint16_t*, std::size_t, std::size_t, const float*, float*, int) noexcept = nullptr;
  void (*gemv_f16)(const std::uint16_t*, std::size_t, std::size_t, const float*, float*, int) noexcept = nullptr;
  // int8 (gemv_q8.hpp, gemm_q.hpp)
  void (*gemv_q8_f32)(const std::int8_t*, const float*, std::size_t, std::size_t, const float*, float*, int) noexcept =
      nullptr;
  void (*gemv_q8_a8)(const std::int8_t*, const float*, std::size_t, std::size_t, const std::int8_t*, float, float*,
                     int) noexcept = nullptr;
  void (*gemm_q8_f32)(const std::int8_t*, const float*, std::size_t, std::size_t, const float*, std::size_t, float*,
                      int) noexcept = nullptr;
  void (*gemm_q8_a8)(const std::int8_t*, const float*, std::size_t, std::size_t, const std::int8_t*, const float*,
                     std::size_t, float*, int) noexcept = nullptr;
  // int4 per group (gemv_q4.hpp, gemm_q.hpp)
  void (*gemv_q4_a8)(const std::uint8_t*, const float*, const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                     const BlockQ8&, float*, int) noexcept = nullptr;
  void (*gemv_q4_f32)(const std::uint8_t*, const float*, const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                      const float*, float*, void*, int) noexcept = nullptr;
  void (*gemm_q4_f32)(const std::uint8_t*, const float*, const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                      const float*, std::size_t, float*, void*, int) noexcept = nullptr;
  // N:M sparse (gemv_nm.hpp, gemv_nm_mask.hpp) and bitmask sparse (gemv_bitmask.hpp, gemv_bitmask_q.hpp)
  void (*gemv_nm_f32)(const float*, const std::uint8_t*, std::size_t, std::size_t, std::size_t, std::size_t,
                      const float*, float*, int) noexcept = nullptr;
  void (*gemv_nm_q8)(const std::int8_t*, const float*, const std::uint8_t*, std::size_t, std::size_t, std::size_t,
                     std::size_t, const float*, float*, int) noexcept = nullptr;
  void (*gemv_nm_q4)(const std::uint8_t*, const float*, const std::uint8_t*, std::size_t, const std::uint8_t*,
                     std::size_t, std::size_t, std::size_t, std::size_t, const float*, float*, int) noexcept = nullptr;
  void (*gemv_nm24m_q4_a8)(const std::uint8_t*, const float*, const std::uint8_t*, std::size_t, std::size_t,
                           std::size_t, const NmMaskQ8&, float*, int) noexcept = nullptr;
  void (*gemv_bitmask_f32)(const std::uint8_t*, const float*, const std::size_t*, std::size_t, std::size_t,
                           const float*, float*, int) noexcept = nullptr;
  void (*gemv_bitmask_q8_a8)(const std::uint8_t*, const std::int8_t*, const std::size_t*, const float*, std::size_t,
                             std::size_t, const std::int8_t*, float, float*, int) noexcept = nullptr;
  void (*gemv_bitmask_q8_f32)(const std::uint8_t*, const std::int8_t*, const std::size_t*, const float*, std::size_t,
                              std::size_t, const float*, float*, int) noexcept = nullptr;
  void (*gemv_bitmask_q4_a8)(const std::uint8_t*, const std::uint8_t*, const std::size_t*, const float*,
                             const std::uint8_t*, std::size_t, std::size_t, std::size_t, const BlockQ8&, float*,
                             int) noexcept = nullptr;
  void (*gemv_bitmask_q4_f32)(const std::uint8_t*, const std::uint8_t*, const std::size_t*, const float*,
                              const std::uint8_t*, std::size_t, std::size_t, std::size_t, const float*, float*, void*,
                              int) noexcept = nullptr;
  // quantize / dequantize / pack (quantize.hpp, dequantize.hpp, pack.hpp)
  // statistics (hessian.hpp)
  void (*hessian_accumulate)(const float*, std::size_t, std::size_t, std::size_t, double*) = nullptr;
  bool (*all_finite)(const float*, std::size_t) noexcept = nullptr;
  bool (*group_absmax)(const float*, std::size_t, std::size_t, float*) noexcept = nullptr;
  void (*group_minmax)(const float*, std::size_t, std::size_t, float*, float*) noexcept = nullptr;
  void (*symmetric_scales)(const float*, std::size_t, float, float*, float*) noexcept = nullptr;
  void (*table16_codes)(const float*, std::size_t, std::size_t, const float*, const float*, std::uint8_t*) noexcept =
      nullptr;
  void (*asymmetric_params)(const float*, const float*, std::size_t, float, float*, float*, std::uint8_t*) noexcept =
      nullptr;
  void (*quantize_codes)(const float*, std::size_t, std::size_t, const float*, const std::uint8_t*, int, int, int, bool,
                         std::uint8_t*, const float*) noexcept = nullptr;
  void (*dequantize_codes)(const std::uint8_t*, std::size_t, std::size_t, const float*, const std::uint8_t*, int, bool,
                           float*) noexcept = nullptr;
  void (*dequantize_table)(const std::uint8_t*, std::size_t, std::size_t, const float*, const float*, std::size_t,
                           float*) noexcept = nullptr;
  void (*pack_codes)(const std::uint8_t*, std::size_t, unsigned, std::uint8_t*) noexcept = nullptr;
  void (*unpack_codes)(const std::uint8_t*, std::size_t, unsigned, std::uint8_t*) noexcept = nullptr;
  // blocked GEMM and Cholesky (gemm.hpp, cholesky.hpp); may allocate, so not noexcept
  void (*gemm_f32)(Trans, Trans, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t, const float*,
                   std::size_t, float, float*, std::size_t) = nullptr;
  void (*gemm_f64)(Trans, Trans, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                   const double*, std::size_t, double, double*, std::size_t) = nullptr;
  std::size_t (*cholesky_lower_f32)(float*, std::size_t, std::size_t) = nullptr;
  std::size_t (*cholesky_lower_f64)(double*, std::size_t, std::size_t) = nullptr;
  void (*invert_lower_f32)(const float*, std::size_t, std::size_t, float*, std::size_t) = nullptr;
  void (*invert_lower_f64)(const double*, std::size_t, std::size_t, double*, std::size_t) = nullptr;
  std::size_t (*inverse_upper_factor_f32)(const float*, std::size_t, std::size_t, float*, std::size_t) = nullptr;
  std::size_t (*inverse_upper_factor_f64)(const double*, std::size_t, std::size_t, double*, std::size_t) = nullptr;
};

// The tables, one per target, each defined (constant-initialised: no code of a target runs before
// its CPU check) by the unit that includes dispatch_target.hpp with that target's flags. The
// declarations are weak: a program that links no table for a target sees a null address.
extern const KernelTable kernel_table_sse2 __attribute__((weak));
extern const KernelTable kernel_table_avx2 __attribute__((weak));
extern const KernelTable kernel_table_avx512 __attribute__((weak));
extern const KernelTable kernel_table_avx512vnni __attribute__((weak));
extern const KernelTable kernel_table_neon __attribute__((weak));
extern const KernelTable kernel_table_scalar __attribute__((weak));

namespace detail {
/// The table calls go through; null until the first call (or after reset_target).
inline std::atomic<const KernelTable*> active_kernel_table{nullptr};
/// Entry points whose pointer is null run their caller's own instantiation.
inline constexpr KernelTable empty_kernel_table{};
}  // namespace detail

/// The table compiled for t and linked into this program, or nullptr.
[[nodiscard]] inline const KernelTable* registered_table(Target t) noexcept {
  const KernelTable* p = nullptr;
  switch (t) {
    case Target::scalar: p = &kernel_table_scalar; break;
    case Target::sse2: p = &kernel_table_sse2; break;
    case Target::avx2: p = &kernel_table_avx2; break;
    case Target::avx512: p = &kernel_table_avx512; break;
    case Target::avx512vnni: p = &kernel_table_avx512vnni; break;
    case Target::neon: p = &kernel_table_neon; break;
  }
  return p;
}

/// True when a table for t is registered and the CPU runs it.
[[nodiscard]] inline bool target_available(Target t) noexcept {
  return registered_table(t) != nullptr && cpu_supports_target(t);
}

/// The most capable registered table the CPU supports, or nullptr when none is registered.
[[nodiscard]] inline const KernelTable* best_table() noexcept {
  for (std::size_t i = target_count; i-- > 0;) {
    const auto t = static_cast<Target>(i);
    if (target_available(t)) return registered_table(t);
  }
  return nullptr;
}

/// The table dispatched calls use (cached; the empty table when nothing is registered).
[[nodiscard]] inline const KernelTable& active_table() noexcept {
  const KernelTable* t = detail::active_kernel_table.load(std::memory_order_acquire);
  if (t == nullptr) {
    t = best_table();
    if (t == nullptr) t = &detail::empty_kernel_table;
    detail::active_kernel_table.store(t, std::memory_order_release);
  }
  return *t;
}

/// True when some table is registered (so dispatched calls do not run the caller's own code).
[[nodiscard]] inline bool dispatch_enabled() noexcept { return &active_table() != &detail::empty_kernel_table; }

/// Pins dispatched calls to target t for the whole program. Returns false (and changes nothing)
/// when t is not registered or the CPU cannot run it. Call it before kernels run concurrently.
inline bool select_target(Target t) noexcept {
  if (!target_available(t)) return false;
  detail::active_kernel_table.store(registered_table(t), std::memory_order_release);
  return true;
}

/// Undoes select_target: back to the best available table.
inline void reset_target() noexcept { detail::active_kernel_table.store(nullptr, std::memory_order_release); }

/// Pins the target named `name` for the whole program ("" or "auto": the best available one).
/// Throws sparq::error naming the value and the targets this program can run when it is not one.
inline void select_target_by_name(std::string_view name) {
  if (name.empty() || name == "auto") {
    reset_target();
    return;
  }
  Target t{};
  std::string choices;
  for (std::size_t i = 0; i < target_count; ++i) {
    if (!target_available(static_cast<Target>(i))) continue;
    choices += choices.empty() ? "" : ", ";
    choices += target_name(static_cast<Target>(i));
  }
  SPARQ_CHECK(target_from_name(name, t), "kernel target '", std::string(name),
              "' is not a target name; expected auto or one of: ", choices.empty() ? "(none linked)" : choices);
  SPARQ_CHECK(registered_table(t) != nullptr, "kernel target '", std::string(name),
              "' is not compiled into this program; expected auto or one of: ", choices);
  SPARQ_CHECK(select_target(t), "kernel target '", std::string(name),
              "' needs instructions this CPU lacks; expected auto or one of: ", choices);
}

SPARQ_TARGET_BEGIN
/// One line for logs: the active target and what else is compiled in / runnable, e.g.
/// "avx512vnni (compiled: sse2 avx2 avx512 avx512vnni; this CPU runs: sse2 avx2 avx512 avx512vnni)"
/// or "inline sse2 (no dispatch tables linked)".
[[nodiscard]] inline std::string dispatch_summary() {
  if (!dispatch_enabled()) {
    return std::string("inline ") + target_name(this_target()) + " (no dispatch tables linked)";
  }
  std::string s = target_name(active_table().target);
  std::string compiled, runs;
  for (std::size_t i = 0; i < target_count; ++i) {
    const auto t = static_cast<Target>(i);
    if (registered_table(t) == nullptr) continue;
    compiled += compiled.empty() ? "" : " ";
    compiled += target_name(t);
    if (cpu_supports_target(t)) {
      runs += runs.empty() ? "" : " ";
      runs += target_name(t);
    }
  }
  return s + " (compiled: " + compiled + "; this CPU runs: " + runs + ")";
}
SPARQ_TARGET_END

}  // namespace sparq::kernels

/// Body of a `simd::dynamic` specialisation: call the active table's entry, or, when no table has
/// one, the calling unit's own instantiation. Used at the end of each kernel header.
#define SPARQ_DISPATCH_CALL(entry, impl, ...)                                              \
  do {                                                                                     \
    if (auto* sparq_fn_ = ::sparq::kernels::active_table().entry) return sparq_fn_(__VA_ARGS__); \
    return impl(__VA_ARGS__);                                                              \
  } while (false)
