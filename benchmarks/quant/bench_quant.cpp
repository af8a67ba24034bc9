// Quantize / dequantize throughput on a 4096×4096 float matrix, single thread, against memcpy.
//
// Names: quantize/<scheme>/<bits>/<granularity>, dequantize/<...> (whole matrix into a 64 MiB
// float buffer: bound by memory writes), dequantize_row/<...> (each row into one reused 16 KiB
// buffer, as a fused dequantize→GEMM consumer would: bound by compute), memcpy/4096x4096.
// Counters: items/s = matrix elements per second; bytes/s = bytes read + written.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "sparq/quant/quantize.hpp"

namespace {

constexpr std::size_t N = 4096;

const std::vector<float>& matrix() {
  static const std::vector<float> w = [] {
    std::vector<float> v(N * N);
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.02f);
    for (auto& x : v) x = d(rng);
    return v;
  }();
  return w;
}

sparq::QuantConfig cfg(sparq::SchemeKind s, int bits, std::size_t group) {
  sparq::QuantConfig c;
  c.scheme = s;
  c.bits = bits;
  c.granularity = group == 0 ? sparq::GranularityKind::per_channel
                  : group == 1 ? sparq::GranularityKind::per_tensor
                               : sparq::GranularityKind::per_group;
  c.group_size = group > 1 ? group : 0;
  return c;
}

void set_counters(benchmark::State& st, double bytes_per_iter) {
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(N * N));
  st.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(st.iterations()) * bytes_per_iter));
}

void bm_quantize(benchmark::State& st, sparq::QuantConfig c) {
  const sparq::MatrixView<const float> w(matrix().data(), N, N);
  sparq::QuantizedTensor q;
  sparq::quant::quantize_into(w, c, q);  // allocate once
  for (auto _ : st) {
    sparq::quant::quantize_into(w, c, q);
    benchmark::DoNotOptimize(q.codes());
    benchmark::ClobberMemory();
  }
  set_counters(st, 4.0 * N * N + static_cast<double>(q.byte_size()));
}

void bm_dequantize(benchmark::State& st, sparq::QuantConfig c) {
  const sparq::QuantizedTensor q = sparq::quant::quantize(sparq::MatrixView<const float>(matrix().data(), N, N), c);
  std::vector<float> out(N * N);
  std::vector<std::uint8_t> ubuf;
  for (auto _ : st) {
    for (std::size_t r = 0; r < N; ++r) sparq::quant::dequantize_row(q, r, out.data() + r * N, ubuf);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(st, 4.0 * N * N + static_cast<double>(q.byte_size()));
}

void bm_dequantize_row(benchmark::State& st, sparq::QuantConfig c) {
  const sparq::QuantizedTensor q = sparq::quant::quantize(sparq::MatrixView<const float>(matrix().data(), N, N), c);
  std::vector<float> out(N);
  std::vector<std::uint8_t> ubuf;
  for (auto _ : st) {
    for (std::size_t r = 0; r < N; ++r) {
      sparq::quant::dequantize_row(q, r, out.data(), ubuf);
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
  }
  set_counters(st, 4.0 * N * N + static_cast<double>(q.byte_size()));
}

void bm_memcpy(benchmark::State& st) {
  const std::vector<float>& w = matrix();
  std::vector<float> out(N * N);
  std::memcpy(out.data(), w.data(), N * N * sizeof(float));
  for (auto _ : st) {
    std::memcpy(out.data(), w.data(), N * N * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(st, 8.0 * N * N);
}

struct Case {
  const char* name;
  sparq::SchemeKind scheme;
  int bits;
  std::size_t group;  // 0 = per channel, 1 = per tensor, else group size
};

const Case cases[] = {
    {"sym/8/channel", sparq::SchemeKind::symmetric, 8, 0},
    {"sym/8/tensor", sparq::SchemeKind::symmetric, 8, 1},
    {"asym/8/channel", sparq::SchemeKind::asymmetric, 8, 0},
    {"sym/8/g128", sparq::SchemeKind::symmetric, 8, 128},
    {"sym/4/g32", sparq::SchemeKind::symmetric, 4, 32},
    {"sym/4/g64", sparq::SchemeKind::symmetric, 4, 64},
    {"sym/4/g128", sparq::SchemeKind::symmetric, 4, 128},
    {"asym/4/g32", sparq::SchemeKind::asymmetric, 4, 32},
    {"asym/4/g128", sparq::SchemeKind::asymmetric, 4, 128},
    {"sym/3/g128", sparq::SchemeKind::symmetric, 3, 128},
    {"sym/2/g64", sparq::SchemeKind::symmetric, 2, 64},
    {"nf4/4/g64", sparq::SchemeKind::nf4, 4, 64},
    {"fp8/8/channel", sparq::SchemeKind::fp8_e4m3, 8, 0},
};

const int registered = [] {
  benchmark::RegisterBenchmark("memcpy/4096x4096", bm_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();
  for (const Case& c : cases) {
    const auto q = cfg(c.scheme, c.bits, c.group);
    benchmark::RegisterBenchmark((std::string("quantize/") + c.name).c_str(), bm_quantize, q)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("dequantize/") + c.name).c_str(), bm_dequantize, q)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("dequantize_row/") + c.name).c_str(), bm_dequantize_row, q)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
