// N:M-sparse GEMV next to the dense kernels they replace, for one compile-time target (the -m flags
// of this file: built with -mavx2 -mfma -mf16c it measures the AVX2 paths on any x86-64 CPU that has
// them). K = 4096 inputs; 65,536 rows for the int4 formats, 16,384 for the f32 ones (weights
// streamed from memory either way). Rate: dense-equivalent weights/s (rows·K per call), so the ratio
// of a sparse row to its dense row is the speed-up at equal model size.
//   --benchmark_min_time=0.2 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "sparq/core/half.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/experimental/gemv_nm24m_extra.hpp"
#include "sparq/kernels/experimental/gemv_nm_a8.hpp"
#include "sparq/kernels/gemv_nm_mask.hpp"
#include "sparq/kernels/gemv_q4.hpp"

namespace sk = sparq::kernels;

namespace {

using A = xsimd::default_arch;  // this translation unit's target
constexpr std::size_t K = 4096;
constexpr std::size_t R4 = 65536;  // rows of the int4 rows
constexpr std::size_t RF = 16384;  // rows of the f32 rows

template <class T>
struct Buf {
  std::unique_ptr<T[], void (*)(T*)> p{nullptr, [](T* q) { std::free(q); }};
  explicit Buf(std::size_t count) { p.reset(static_cast<T*>(std::aligned_alloc(64, (count * sizeof(T) + 63) / 64 * 64))); }
  T* data() { return p.get(); }
};

std::uint64_t next(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}
void fill_bytes(void* dst, std::size_t n, std::uint64_t seed) {
  auto* d = static_cast<unsigned char*>(dst);
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<unsigned char>(next(seed) >> 24);
}
void fill_floats(float* d, std::size_t n, std::uint64_t seed, float lo, float hi) {
  for (std::size_t i = 0; i < n; ++i) d[i] = lo + (hi - lo) * static_cast<float>(next(seed) >> 40) / 16777216.0f;
}
void rate(benchmark::State& st, std::size_t rows) {
  st.counters["Gw/s"] = benchmark::Counter(1e-9 * static_cast<double>(K * rows) * static_cast<double>(st.iterations()),
                                           benchmark::Counter::kIsRate);
}

// valid packed indices: 2:4 bytes hold two groups with positions a < b; 4:8 nibbles are < 8 (the
// kernels do not need sorted 4:8 positions)
void fill_idx(std::uint8_t* idx, std::size_t n, std::size_t m) {
  fill_bytes(idx, n, 13);
  const std::uint8_t pairs[6] = {0 | 1 << 2, 0 | 2 << 2, 0 | 3 << 2, 1 | 2 << 2, 1 | 3 << 2, 2 | 3 << 2};
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t r = idx[i];
    idx[i] = m == 4 ? static_cast<std::uint8_t>(pairs[(r & 15) % 6] | pairs[(r >> 4) % 6] << 4)
                    : static_cast<std::uint8_t>(r & 0x77);
  }
}

void bm_f32(benchmark::State& st) {
  const int threads = static_cast<int>(st.range(0));
  Buf<float> w(K * RF), x(K), y(RF);
  fill_floats(w.data(), K * RF, 4, -1, 1);
  fill_floats(x.data(), K, 5, -1, 1);
  for (auto _ : st) {
    sk::gemv_f32<A>(w.data(), RF, K, x.data(), y.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  rate(st, RF);
}

void bm_q4(benchmark::State& st) {
  const int threads = static_cast<int>(st.range(0));
  constexpr std::size_t ng = K / 32;
  Buf<std::uint8_t> codes(K / 2 * R4), work(sk::block_q8_workspace_bytes(K));
  Buf<float> s(ng * R4), x(K), y(R4);
  fill_bytes(codes.data(), K / 2 * R4, 9);
  fill_floats(s.data(), ng * R4, 11, 0.001f, 0.01f);
  fill_floats(x.data(), K, 12, -1, 1);
  for (auto _ : st) {
    sk::gemv_q4_f32<A>(codes.data(), s.data(), nullptr, R4, K, 32, x.data(), y.data(), work.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  rate(st, R4);
}

// fmt 0: f32 values (gemv_nm_f32), 1: int4 g32 float gather (gemv_nm_q4), 2: int4 g32 W4A8 compact
// (gemv_nm24_q4_f32), 3: the same tiled, 4: presence-mask tiles (gemv_nm24m_q4_f32), 5: the same
// with fp16 scales.
void bm_nm(benchmark::State& st, std::size_t n, std::size_t m, int fmt) {
  const int threads = static_cast<int>(st.range(0));
  const std::size_t rows = fmt == 0 ? RF : R4;
  const std::size_t nk = K / m * n, ib = sk::nm_index_row_bytes(nk, m), ng = nk / 32;
  Buf<std::uint8_t> idx(ib * rows);
  fill_idx(idx.data(), ib * rows, m);
  Buf<float> x(K), y(rows);
  fill_floats(x.data(), K, 14, -1, 1);
  if (fmt == 0) {
    Buf<float> v(nk * rows);
    fill_floats(v.data(), nk * rows, 15, -1, 1);
    for (auto _ : st) {
      sk::gemv_nm_f32<A>(v.data(), idx.data(), rows, K, n, m, x.data(), y.data(), threads);
      benchmark::DoNotOptimize(y.data());
    }
    rate(st, rows);
    return;
  }
  Buf<std::uint8_t> codes(nk / 2 * rows);
  Buf<float> s(ng * rows);
  fill_bytes(codes.data(), nk / 2 * rows, 16);
  fill_floats(s.data(), ng * rows, 17, 0.001f, 0.01f);
  if (fmt == 4 || fmt == 5) {
    Buf<std::uint8_t> work(sk::nm24m_q8_workspace_bytes(K)), tiles(sk::nm24m_q4_row_bytes(K) * rows);
    Buf<std::uint16_t> sh(ng * rows);
    for (std::size_t i = 0; i < ng * rows; ++i) sh.data()[i] = sparq::float_to_fp16(s.data()[i]);
    sk::pack_nm24m_q4(codes.data(), idx.data(), rows, K, tiles.data());
    for (auto _ : st) {
      if (fmt == 5) {
        sk::gemv_nm24m_q4h_f32<A>(tiles.data(), sh.data(), nullptr, 32, rows, K, x.data(), y.data(), work.data(), threads);
      } else {
        sk::gemv_nm24m_q4_f32<A>(tiles.data(), s.data(), nullptr, 32, rows, K, x.data(), y.data(), work.data(), threads);
      }
      benchmark::DoNotOptimize(y.data());
    }
  } else {
    Buf<std::uint8_t> work(sk::nm_q8_workspace_bytes(K));
    Buf<std::uint8_t> tiles(fmt == 3 ? sk::nm24_q4_tile_row_bytes(K) * rows : 1);
    if (fmt == 3) sk::pack_nm24_q4_tiles(codes.data(), idx.data(), rows, K, tiles.data());
    for (auto _ : st) {
      if (fmt == 3) {
        sk::gemv_nm24_q4_tiled_f32<A>(tiles.data(), s.data(), nullptr, 32, rows, K, x.data(), y.data(), work.data(), threads);
      } else if (fmt == 2) {
        sk::gemv_nm24_q4_f32<A>(codes.data(), s.data(), nullptr, 32, idx.data(), rows, K, x.data(), y.data(), work.data(),
                                threads);
      } else {
        sk::gemv_nm_q4<A>(codes.data(), s.data(), nullptr, 32, idx.data(), rows, K, n, m, x.data(), y.data(), threads);
      }
      benchmark::DoNotOptimize(y.data());
    }
  }
  rate(st, rows);
}

int reg = [] {
  auto th = [](benchmark::internal::Benchmark* b) {
    b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
  };
  const std::string t = std::string("/") + A::name();
  th(benchmark::RegisterBenchmark(("nm/dense_f32" + t).c_str(), bm_f32));
  th(benchmark::RegisterBenchmark(("nm/dense_int4_g32" + t).c_str(), bm_q4));
  th(benchmark::RegisterBenchmark(("nm/nm24_f32" + t).c_str(), bm_nm, 2, 4, 0));
  th(benchmark::RegisterBenchmark(("nm/nm48_f32" + t).c_str(), bm_nm, 4, 8, 0));
  th(benchmark::RegisterBenchmark(("nm/nm24_int4_g32_gather" + t).c_str(), bm_nm, 2, 4, 1));
  th(benchmark::RegisterBenchmark(("nm/nm48_int4_g32_gather" + t).c_str(), bm_nm, 4, 8, 1));
  th(benchmark::RegisterBenchmark(("nm/nm24_int4_g32_a8" + t).c_str(), bm_nm, 2, 4, 2));
  th(benchmark::RegisterBenchmark(("nm/nm24_int4_g32_tiled_a8" + t).c_str(), bm_nm, 2, 4, 3));
  th(benchmark::RegisterBenchmark(("nm/nm24_int4_g32_mask_a8" + t).c_str(), bm_nm, 2, 4, 4));
  th(benchmark::RegisterBenchmark(("nm/nm24_int4_g32_f16scale_mask_a8" + t).c_str(), bm_nm, 2, 4, 5));
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
