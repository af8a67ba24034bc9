// Bitmask-sparse int8 GEMV (gemv_bitmask_q8_a8 / _f32) next to the dense int8 GEMV it replaces
// (gemv_q8_a8 / gemv_q8_f32), and bitmask-sparse int4 g32 symmetric (gemv_bitmask_q4_a8 / _f32) next
// to the dense int4 GEMV (gemv_q4_a8 / gemv_q4_f32; its zero code 8 at the cleared bits), through the
// run-time dispatch (SPARQ_TARGET pins a target), 1 thread.
// Shapes rows x cols: 4096x4096 and 2048x5632 (an FFN down projection); random unstructured masks at
// 50 % and 70 % sparsity (each column kept with probability 0.5 / 0.3). Rate: dense-equivalent
// weights/s (rows·cols per call), so bitmask / dense is the speed-up at equal model size; bytes/s
// counts what the call streams (mask + kept codes + scales, or the dense codes + scales).
//   --benchmark_min_time=0.2 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "sparq/kernels/gemv_bitmask_q.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"

namespace sk = sparq::kernels;

namespace {

std::uint64_t next(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

struct Problem {
  std::size_t rows, cols;
  std::vector<std::uint8_t> mask;
  std::vector<std::int8_t> codes, dense;
  std::vector<std::size_t> off;
  std::vector<float> scale, x;
  std::vector<std::int8_t> qx;
};

// density = kept fraction; codes uniform in [−127, 127] \ {0}
Problem make(std::size_t rows, std::size_t cols, double density) {
  Problem p{rows, cols, {}, {}, {}, {}, {}, {}, {}};
  const std::size_t mb = (cols + 7) / 8;
  p.mask.assign(rows * mb, 0);
  p.dense.assign(rows * cols, 0);
  p.off.assign(1, 0);
  std::uint64_t s = 0x9e3779b97f4a7c15ull;
  const auto keep_below = static_cast<std::uint64_t>(density * 4294967296.0);
  for (std::size_t k = 0; k < rows; ++k) {
    for (std::size_t c = 0; c < cols; ++c) {
      const std::uint64_t r = next(s);
      if ((r >> 32) >= keep_below) continue;
      auto q = static_cast<std::int8_t>(static_cast<int>(r % 254) - 127);
      if (q == 0) q = 1;
      p.mask[k * mb + c / 8] = static_cast<std::uint8_t>(p.mask[k * mb + c / 8] | (1u << (c % 8)));
      p.codes.push_back(q);
      p.dense[k * cols + c] = q;
    }
    p.off.push_back(p.codes.size());
  }
  p.scale.assign(rows, 0.01f);
  p.x.resize(cols);
  for (auto& v : p.x) v = static_cast<float>(static_cast<int>(next(s) % 2001) - 1000) * 1e-3f;
  p.qx.resize(cols);
  (void)sk::quantize_per_token_q8(p.x.data(), cols, p.qx.data());
  return p;
}

void rate(benchmark::State& st, const Problem& p, double bytes) {
  st.counters["Gw/s"] = benchmark::Counter(1e-9 * static_cast<double>(p.rows * p.cols) * static_cast<double>(st.iterations()),
                                           benchmark::Counter::kIsRate);
  st.SetBytesProcessed(static_cast<std::int64_t>(bytes * static_cast<double>(st.iterations())));
}

// kind: 0 dense A8, 1 bitmask A8, 2 dense A32, 3 bitmask A32
void bm(benchmark::State& st, std::size_t rows, std::size_t cols, double density, int kind) {
  const Problem p = make(rows, cols, density);
  std::vector<float> y(rows);
  for (auto _ : st) {
    switch (kind) {
      case 0: sk::gemv_q8_a8(p.dense.data(), p.scale.data(), rows, cols, p.qx.data(), 0.01f, y.data()); break;
      case 1:
        sk::gemv_bitmask_q8_a8(p.mask.data(), p.codes.data(), p.off.data(), p.scale.data(), rows, cols, p.qx.data(), 0.01f,
                               y.data());
        break;
      case 2: sk::gemv_q8_f32(p.dense.data(), p.scale.data(), rows, cols, p.x.data(), y.data()); break;
      default:
        sk::gemv_bitmask_q8_f32(p.mask.data(), p.codes.data(), p.off.data(), p.scale.data(), rows, cols, p.x.data(),
                                y.data());
        break;
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const bool sparse = kind == 1 || kind == 3;
  rate(st, p, sparse ? static_cast<double>(p.mask.size() + p.codes.size() + 4 * rows + 8 * (rows + 1))
                     : static_cast<double>(rows * cols + 4 * rows));
}

// int4 g32 symmetric: the same masks; kept codes uniform in [0, 15] \ {8} as nibbles per row,
// the dense codes 8 at the cleared bits. Activations: block-int8 (A8) or float quantized by the call (A32).
struct Problem4 {
  std::size_t rows, cols;
  std::vector<std::uint8_t> mask, codes, dense;
  std::vector<std::size_t> off;
  std::vector<float> scale, x;
  std::vector<unsigned char> act_work, work;
};

Problem4 make4(std::size_t rows, std::size_t cols, double density) {
  Problem4 p{rows, cols, {}, {}, {}, {}, {}, {}, {}, {}};
  const std::size_t mb = cols / 8;
  p.mask.assign(rows * mb, 0);
  p.dense.assign(rows * cols / 2, 0x88);
  p.off.assign(1, 0);
  std::uint64_t s = 0x9e3779b97f4a7c15ull;
  const auto keep_below = static_cast<std::uint64_t>(density * 4294967296.0);
  for (std::size_t k = 0; k < rows; ++k) {
    std::size_t n = 0;
    for (std::size_t c = 0; c < cols; ++c) {
      const std::uint64_t r = next(s);
      if ((r >> 32) >= keep_below) continue;
      auto u = static_cast<unsigned>(r % 15);
      if (u >= 8) ++u;  // not the zero code
      p.mask[k * mb + c / 8] = static_cast<std::uint8_t>(p.mask[k * mb + c / 8] | (1u << (c % 8)));
      if (n++ % 2 == 0) p.codes.push_back(static_cast<std::uint8_t>(u));
      else p.codes.back() = static_cast<std::uint8_t>(p.codes.back() | (u << 4));
      std::uint8_t& d = p.dense[k * cols / 2 + c / 2];
      d = static_cast<std::uint8_t>(c % 2 == 0 ? (d & 0xf0) | u : (d & 0x0f) | (u << 4));
    }
    p.off.push_back(p.codes.size());
  }
  p.scale.assign(rows * cols / 32, 0.01f);
  p.x.resize(cols);
  for (auto& v : p.x) v = static_cast<float>(static_cast<int>(next(s) % 2001) - 1000) * 1e-3f;
  p.act_work.resize(sk::block_q8_workspace_bytes(cols));
  p.work.resize(sk::block_q8_workspace_bytes(cols));
  sk::quantize_block_q8(p.x.data(), cols, sk::BlockQ8::carve(p.act_work.data(), cols));
  return p;
}

// kind: 0 dense A8, 1 bitmask A8, 2 dense A32, 3 bitmask A32
void bm4(benchmark::State& st, std::size_t rows, std::size_t cols, double density, int kind) {
  Problem4 p = make4(rows, cols, density);
  const sk::BlockQ8 act = sk::BlockQ8::carve(p.act_work.data(), cols);
  std::vector<float> y(rows);
  for (auto _ : st) {
    switch (kind) {
      case 0: sk::gemv_q4_a8(p.dense.data(), p.scale.data(), nullptr, rows, cols, 32, act, y.data()); break;
      case 1:
        sk::gemv_bitmask_q4_a8(p.mask.data(), p.codes.data(), p.off.data(), p.scale.data(), nullptr, rows, cols, 32, act,
                               y.data());
        break;
      case 2: sk::gemv_q4_f32(p.dense.data(), p.scale.data(), nullptr, rows, cols, 32, p.x.data(), y.data(), p.work.data()); break;
      default:
        sk::gemv_bitmask_q4_f32(p.mask.data(), p.codes.data(), p.off.data(), p.scale.data(), nullptr, rows, cols, 32,
                                p.x.data(), y.data(), p.work.data());
        break;
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.counters["Gw/s"] = benchmark::Counter(1e-9 * static_cast<double>(rows * cols) * static_cast<double>(st.iterations()),
                                           benchmark::Counter::kIsRate);
  const bool sparse = kind == 1 || kind == 3;
  const double bytes = sparse ? static_cast<double>(p.mask.size() + p.codes.size() + 4 * p.scale.size() + 8 * (rows + 1))
                              : static_cast<double>(p.dense.size() + 4 * p.scale.size());
  st.SetBytesProcessed(static_cast<std::int64_t>(bytes * static_cast<double>(st.iterations())));
}

int reg = [] {
  struct Shape {
    std::size_t rows, cols;
  };
  for (const Shape sh : {Shape{4096, 4096}, Shape{2048, 5632}}) {
    const std::string dims = std::to_string(sh.rows) + "x" + std::to_string(sh.cols);
    for (int a8 : {1, 0}) {
      const std::string act = a8 ? "a8" : "a32";
      benchmark::RegisterBenchmark(("dense_q8_" + act + "/" + dims).c_str(), bm, sh.rows, sh.cols, 1.0, a8 ? 0 : 2)
          ->Unit(benchmark::kMicrosecond)->UseRealTime();
      for (int sp : {50, 70}) {
        benchmark::RegisterBenchmark(("bitmask_q8_" + act + "/" + dims + "/sparsity" + std::to_string(sp)).c_str(), bm,
                                     sh.rows, sh.cols, 1.0 - sp / 100.0, a8 ? 1 : 3)
            ->Unit(benchmark::kMicrosecond)->UseRealTime();
      }
      benchmark::RegisterBenchmark(("dense_q4_" + act + "/" + dims).c_str(), bm4, sh.rows, sh.cols, 1.0, a8 ? 0 : 2)
          ->Unit(benchmark::kMicrosecond)->UseRealTime();
      for (int sp : {50, 70}) {
        benchmark::RegisterBenchmark(("bitmask_q4_" + act + "/" + dims + "/sparsity" + std::to_string(sp)).c_str(), bm4,
                                     sh.rows, sh.cols, 1.0 - sp / 100.0, a8 ? 1 : 3)
            ->Unit(benchmark::kMicrosecond)->UseRealTime();
      }
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
