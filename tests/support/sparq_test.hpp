// Test helpers: the SIMD targets to test on this CPU, real-data paths, random matrices.
#pragma once

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <unistd.h>

#include "sparq/simd/arch.hpp"

namespace sparq_test {

/// The targets every kernel test runs on: each one compiled into this test binary (its -m flags)
/// and supported by the running CPU. Add more as kernels gain specialisations.
/// (fma3<avx2> is the default arch of an -mavx2 -mfma unit, i.e. what the avx2 dispatch table runs;
/// neon64 is the aarch64 one.) xsimd wants the most capable first.
using test_archs =
    xsimd::arch_list<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::avx2, xsimd::sse2, xsimd::neon64>;

namespace detail {
template <class Arch, class F>
void call_if_supported(F& f) {
  if constexpr (xsimd::supported_architectures::template contains<Arch>()) {
    if (sparq::simd::cpu_supports<Arch>()) f(Arch{});
  }
}
template <class F, class... Archs>
void for_each(F& f, xsimd::arch_list<Archs...>) {
  (call_if_supported<Archs>(f), ...);
}
}  // namespace detail

/// A fresh directory under the temp dir (named by `tag`, the process id and a counter), removed with
/// everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "sparq") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string str() const { return path.string(); }
};

/// Calls f(Arch{}) for every arch in test_archs that is compiled in and supported by this CPU.
template <class F>
void for_each_arch(F&& f) {
  detail::for_each(f, test_archs{});
}

/// True when running under CI (the CI environment variable is set and not "false"/"0").
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) != "" && std::string(ci) != "false" && std::string(ci) != "0";
}

/// Absolute path of a file under ../shared/data (models/..., text/...). If it is missing: in CI the
/// test fails loudly (CI always has the data); elsewhere a warning says where it is expected and
/// an empty string is returned so the caller returns early.
inline std::string data_path(const std::string& rel) {
  const std::filesystem::path p = std::filesystem::path(SPARQ_DATA_DIR) / rel;
  if (std::filesystem::exists(p)) return p.string();
  if (in_ci()) {
    FAIL("real data file " << p.string() << " is missing (CI must have ../shared/data)");
  }
  WARN("skipping: real data file " << p.string() << " not found (expected ../shared/data beside the project)");
  return {};
}

/// Deterministic normal(0, sigma) floats.
inline std::vector<float> randn(std::size_t n, unsigned seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace sparq_test
