// gemm/f32/MxNxK: sparq's packed GEMM vs OpenBLAS cblas_sgemm (comparison only, never in the library).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <random>
#include <vector>

#include "sparq/kernels/gemm.hpp"

namespace {

struct Operands {
  std::size_t m, n, k;
  std::vector<float> A, B, C;
  Operands(std::size_t m_, std::size_t n_, std::size_t k_) : m(m_), n(n_), k(k_), A(m_ * k_), B(k_ * n_), C(m_ * n_) {
    std::mt19937 rng(1);
    std::normal_distribution<float> d;
    for (auto& x : A) x = d(rng);
    for (auto& x : B) x = d(rng);
  }
};

void report(benchmark::State& st, const Operands& o) {
  const double flops = 2.0 * double(o.m) * double(o.n) * double(o.k);
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9 * double(st.iterations()), benchmark::Counter::kIsRate);
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(flops / 2));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) *
                       static_cast<int64_t>(4 * (o.m * o.k + o.k * o.n + o.m * o.n)));
}

void BM_sparq_gemm(benchmark::State& st) {
  Operands o(st.range(0), st.range(1), st.range(2));
  for (auto _ : st) {
    sparq::kernels::gemm(sparq::kernels::Trans::no, sparq::kernels::Trans::no, o.m, o.n, o.k, 1.0f, o.A.data(), o.k,
                         o.B.data(), o.n, 0.0f, o.C.data(), o.n);
    benchmark::DoNotOptimize(o.C.data());
  }
  report(st, o);
}

void BM_sparq_gemm_nt(benchmark::State& st) {
  Operands o(st.range(0), st.range(1), st.range(2));
  for (auto _ : st) {
    sparq::kernels::gemm(sparq::kernels::Trans::no, sparq::kernels::Trans::yes, o.m, o.n, o.k, 1.0f, o.A.data(), o.k,
                         o.B.data(), o.k, 0.0f, o.C.data(), o.n);
    benchmark::DoNotOptimize(o.C.data());
  }
  report(st, o);
}

void BM_openblas_sgemm(benchmark::State& st) {
  Operands o(st.range(0), st.range(1), st.range(2));
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(o.m), int(o.n), int(o.k), 1.0f, o.A.data(), int(o.k),
                o.B.data(), int(o.n), 0.0f, o.C.data(), int(o.n));
    benchmark::DoNotOptimize(o.C.data());
  }
  report(st, o);
}

const int registered = [] {
  auto reg = [](const char* name, void (*fn)(benchmark::State&), int64_t m, int64_t n, int64_t k, int it) {
    auto* b = benchmark::RegisterBenchmark(name, fn)->Args({m, n, k})->Unit(benchmark::kMillisecond)->UseRealTime();
    if (it > 0) b->Iterations(it);
  };
  reg("gemm/f32/2048x4096x4096", BM_sparq_gemm, 2048, 4096, 4096, 2);
  reg("gemm/f32/2048x4096x4096/openblas", BM_openblas_sgemm, 2048, 4096, 4096, 2);
  reg("gemm/f32_nt/2048x4096x4096", BM_sparq_gemm_nt, 2048, 4096, 4096, 2);
  reg("gemm/f32/512x512x512", BM_sparq_gemm, 512, 512, 512, 0);
  reg("gemm/f32/512x512x512/openblas", BM_openblas_sgemm, 512, 512, 512, 0);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
