// Optional run-time target selection: a table of kernel pointers filled by per-target translation units.
//
// Compile-time selection (the kernels' default Arch = xsimd::default_arch, i.e. the -m flags of
// the TU) stays the default and costs nothing. To ship one binary that runs the best kernel on any
// x86-64 CPU, compile the same small registration file several times with different ISA flags
// (e.g. none, -mavx2 -mfma -mf16c, the AVX-512 set with -mavx512vnni). Every kernel instantiation
// lives in the inline namespace of its TU's target (SPARQ_TARGET_NS), so the copies never collide
// at link time. Each TU registers its instantiation under its compile-time target:
//
//   // table.hpp (shared)
//   using GemvF32 = void(const float*, std::size_t, std::size_t, const float*, float*, int);
//   inline sparq::kernels::Dispatcher<GemvF32> gemv_table;   // constant-initialized, one instance
//   // gemv_avx2.cpp (compiled with -mavx2 -mfma -mf16c), and the same file for each other target:
//   static const bool registered = gemv_table.add(sparq::kernels::this_target(), &sparq::kernels::gemv_f32<>);
//   // caller:
//   gemv_table.best()(w, rows, cols, x, y, 1);
//
// best() picks the most capable registered target the running CPU supports, checked with
// __builtin_cpu_supports (xsimd 8.1's own detection is not used). Registration happens during
// static initialization; the table is constant-initialized, so it is valid before any of it runs.
#pragma once

#include <array>
#include <cstddef>

#include "sparq/simd/arch.hpp"

namespace sparq::kernels {

/// SIMD targets a kernel can be registered for, least capable first.
enum class Target : int { scalar = 0, sse2, avx2, avx2fma, avx512bw, avx512vnni };
inline constexpr std::size_t target_count = 6;

/// Name of a target ("avx512vnni", ...).
[[nodiscard]] constexpr const char* target_name(Target t) noexcept {
  constexpr const char* names[] = {"scalar", "sse2", "avx2", "avx2fma", "avx512bw", "avx512vnni"};
  return names[static_cast<int>(t)];
}

/// True when the running CPU can execute code compiled for target t.
[[nodiscard]] inline bool cpu_supports_target(Target t) noexcept {
#if SPARQ_X86 && defined(__GNUC__)
  switch (t) {
    case Target::scalar:
    case Target::sse2: return true;
    case Target::avx2: return __builtin_cpu_supports("avx2");
    case Target::avx2fma: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Target::avx512bw: return simd::cpu_supports<xsimd::avx512bw>() && __builtin_cpu_supports("fma");
    case Target::avx512vnni: return simd::cpu_supports<xsimd::avx512bw>() && __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return t == Target::scalar;
#endif
}

SPARQ_TARGET_BEGIN
/// The target this translation unit is compiled for (matches SPARQ_TARGET_NS).
[[nodiscard]] constexpr Target this_target() noexcept {
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
  return Target::avx512vnni;
#elif defined(__AVX512BW__)
  return Target::avx512bw;
#elif defined(__AVX2__) && defined(__FMA__)
  return Target::avx2fma;
#elif defined(__AVX2__)
  return Target::avx2;
#elif defined(__SSE2__)
  return Target::sse2;
#else
  return Target::scalar;
#endif
}
SPARQ_TARGET_END

/// Function-pointer table for one kernel signature Fn (a function type), one slot per Target.
template <class Fn>
class Dispatcher {
 public:
  constexpr Dispatcher() noexcept = default;

  /// Registers f for target t (replaces an earlier one). Returns true, for `static const bool` use.
  bool add(Target t, Fn* f) noexcept {
    fns_[static_cast<std::size_t>(t)] = f;
    return true;
  }
  /// The kernel registered for t, or nullptr.
  [[nodiscard]] Fn* get(Target t) const noexcept { return fns_[static_cast<std::size_t>(t)]; }
  /// The most capable registered target the CPU supports; Target::scalar with no kernel if none.
  [[nodiscard]] Target best_target() const noexcept {
    for (std::size_t i = target_count; i-- > 0;) {
      const auto t = static_cast<Target>(i);
      if (fns_[i] != nullptr && cpu_supports_target(t)) return t;
    }
    return Target::scalar;
  }
  /// The kernel of best_target() (nullptr when nothing usable is registered).
  [[nodiscard]] Fn* best() const noexcept { return get(best_target()); }

 private:
  std::array<Fn*, target_count> fns_{};
};

}  // namespace sparq::kernels
