// GEMV/GEMM kernel benchmarks: K = 4096 inputs, 65,536 output rows (weights streamed from memory),
// next to a memcpy and a STREAM-triad yardstick measured in the same binary.
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "sparq/kernels/gemm_dense.hpp"
#include "sparq/kernels/gemm_q.hpp"
#include "sparq/kernels/gemv_bitmask.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/gemv_half.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/gemv_nm_mask.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/kernels/gemv_q8.hpp"

namespace sk = sparq::kernels;

namespace {

constexpr std::size_t K = 4096;
constexpr std::size_t R = 65536;
constexpr std::size_t kCopyBytes = std::size_t{256} << 20;

// 64-byte aligned, untouched-until-filled buffer.
template <class T>
struct Buf {
  std::unique_ptr<T[], void (*)(T*)> p{nullptr, [](T* q) { std::free(q); }};
  std::size_t n = 0;
  explicit Buf(std::size_t count) : n(count) {
    p.reset(static_cast<T*>(std::aligned_alloc(64, (count * sizeof(T) + 63) / 64 * 64)));
  }
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
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t v = next(seed);
    std::memcpy(d + i, &v, 8);
  }
  for (; i < n; ++i) d[i] = static_cast<unsigned char>(next(seed));
}
void fill_floats(float* d, std::size_t n, std::uint64_t seed, float lo, float hi) {
  for (std::size_t i = 0; i < n; ++i) d[i] = lo + (hi - lo) * static_cast<float>(next(seed) >> 40) / 16777216.0f;
}
void fill_i8(std::int8_t* d, std::size_t n, std::uint64_t seed) {
  fill_bytes(d, n, seed);
  for (std::size_t i = 0; i < n; ++i)
    if (d[i] == -128) d[i] = -127;
}

void counters(benchmark::State& st, double bytes_per_call, double weights_per_call) {
  st.SetBytesProcessed(static_cast<std::int64_t>(bytes_per_call * static_cast<double>(st.iterations())));
  st.SetItemsProcessed(static_cast<std::int64_t>(weights_per_call * static_cast<double>(st.iterations())));
  st.counters["weights/s"] = benchmark::Counter(weights_per_call * static_cast<double>(st.iterations()),
                                                benchmark::Counter::kIsRate);
}

void bm_memcpy(benchmark::State& st) {
  Buf<char> a(kCopyBytes), b(kCopyBytes);
  fill_bytes(a.data(), kCopyBytes, 1);
  std::memset(b.data(), 0, kCopyBytes);
  for (auto _ : st) {
    std::memcpy(b.data(), a.data(), kCopyBytes);
    benchmark::ClobberMemory();
  }
  // bytes moved = read + write
  st.SetBytesProcessed(static_cast<std::int64_t>(2 * kCopyBytes * st.iterations()));
}

void bm_triad(benchmark::State& st) {
  const std::size_t n = kCopyBytes / sizeof(float);
  Buf<float> a(n), b(n), c(n);
  fill_floats(b.data(), n, 2, -1, 1);
  fill_floats(c.data(), n, 3, -1, 1);
  std::memset(a.data(), 0, n * sizeof(float));
  float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  for (auto _ : st) {
    for (std::size_t i = 0; i < n; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(3 * n * sizeof(float) * st.iterations()));
}

void bm_f32(benchmark::State& st) {
  const int threads = static_cast<int>(st.range(0));
  Buf<float> w(K * R), x(K), y(R);
  fill_floats(w.data(), K * R, 4, -1, 1);
  fill_floats(x.data(), K, 5, -1, 1);
  for (auto _ : st) {
    sk::gemv_f32(w.data(), R, K, x.data(), y.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  counters(st, 4.0 * K * R, static_cast<double>(K) * R);
}

void bm_q8(benchmark::State& st, bool a8) {
  const int threads = static_cast<int>(st.range(0));
  Buf<std::int8_t> q(K * R), qx(K);
  Buf<float> s(R), x(K), y(R);
  fill_i8(q.data(), K * R, 6);
  fill_floats(s.data(), R, 7, 0.001f, 0.01f);
  fill_floats(x.data(), K, 8, -1, 1);
  for (auto _ : st) {
    if (a8) {
      const float sx = sk::quantize_per_token_q8(x.data(), K, qx.data());  // dynamic per-token, in the timing
      sk::gemv_q8_a8(q.data(), s.data(), R, K, qx.data(), sx, y.data(), threads);
    } else {
      sk::gemv_q8_f32(q.data(), s.data(), R, K, x.data(), y.data(), threads);
    }
    benchmark::DoNotOptimize(y.data());
  }
  counters(st, (1.0 * K + 4.0) * R, static_cast<double>(K) * R);
}

void bm_q4(benchmark::State& st, std::size_t group, bool asym) {
  const int threads = static_cast<int>(st.range(0));
  const std::size_t ng = K / group;
  Buf<std::uint8_t> codes(K / 2 * R), zeros(ng * R), work(sk::block_q8_workspace_bytes(K));
  Buf<float> s(ng * R), x(K), y(R);
  fill_bytes(codes.data(), K / 2 * R, 9);
  fill_bytes(zeros.data(), ng * R, 10);
  for (std::size_t i = 0; i < ng * R; ++i) zeros.data()[i] &= 15;
  fill_floats(s.data(), ng * R, 11, 0.001f, 0.01f);
  fill_floats(x.data(), K, 12, -1, 1);
  for (auto _ : st) {
    sk::gemv_q4_f32(codes.data(), s.data(), asym ? zeros.data() : nullptr, R, K, group, x.data(), y.data(),
                    work.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  counters(st, (0.5 * K + (4.0 + (asym ? 1.0 : 0.0)) * static_cast<double>(ng)) * R, static_cast<double>(K) * R);
}

// Read-only bandwidth yardstick: sums all 256 MiB with eight independent vector accumulators (the
// GEMV kernels only read their weights, so this is their memory limit). Every float is loaded (a
// loop touching one float per cache line measured ~35 % below the float GEMV on Zen 3: too few
// loads in flight to cover the memory latency).
void bm_read(benchmark::State& st) {
  using B = xsimd::batch<float>;  // this TU's baseline width; 8 accumulators keep the adds off the critical path
  constexpr std::size_t S = B::size, U = 8;
  const std::size_t n = kCopyBytes / sizeof(float);
  Buf<float> a(n);
  fill_floats(a.data(), n, 2, -1, 1);
  const float* pa = a.data();
  for (auto _ : st) {
    B acc[U];
    for (auto& v : acc) v = B(0.0f);
    for (std::size_t i = 0; i + U * S <= n; i += U * S) {
      for (std::size_t u = 0; u < U; ++u) acc[u] += B::load_unaligned(pa + i + u * S);
    }
    B t = acc[0];
    for (std::size_t u = 1; u < U; ++u) t += acc[u];
    float s = xsimd::hadd(t);
    benchmark::DoNotOptimize(s);
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(n * sizeof(float) * st.iterations()));
}

// 2:4 (n=2, m=4) or 4:8 sparse; fmt 0 = f32 values, 1 = int4 g32 values (float gather), 5 = int4 g32
// on presence-mask tiles with int8 activations (what NMLinear runs: quantize_nm24m_q8 + the dispatched
// gemv_nm24m_q4_a8). The experimental layouts (compact 2:4 W4A8, tiled, fp16 scales) are measured by
// bench_nm_avx2. Dense-equivalent weights/s; bytes/s counts the stored bytes of the layout the kernel reads.
void bm_nm(benchmark::State& st, std::size_t n, std::size_t m, int fmt) {
  const int threads = static_cast<int>(st.range(0));
  const std::size_t nk = K / m * n, ib = sk::nm_index_row_bytes(nk, m), ng = nk / 32;
  Buf<std::uint8_t> idx(ib * R);
  fill_bytes(idx.data(), ib * R, 13);
  if (m == 4) {  // make every byte a valid 2:4 pattern: two groups, each with positions a < b
    const std::uint8_t pairs[6] = {0 | 1 << 2, 0 | 2 << 2, 0 | 3 << 2, 1 | 2 << 2, 1 | 3 << 2, 2 | 3 << 2};
    for (std::size_t i = 0; i < ib * R; ++i) {
      const std::uint8_t r = idx.data()[i];
      idx.data()[i] = static_cast<std::uint8_t>(pairs[(r & 15) % 6] | pairs[(r >> 4) % 6] << 4);
    }
  }
  Buf<float> x(K), y(R);
  fill_floats(x.data(), K, 14, -1, 1);
  double bytes = static_cast<double>(ib) * R;
  if (fmt == 0) {
    Buf<float> v(nk * R);
    fill_floats(v.data(), nk * R, 15, -1, 1);
    for (auto _ : st) {
      sk::gemv_nm_f32(v.data(), idx.data(), R, K, n, m, x.data(), y.data(), threads);
      benchmark::DoNotOptimize(y.data());
    }
    bytes += 4.0 * nk * R;
  } else if (fmt == 5) {
    Buf<std::uint8_t> codes(nk / 2 * R), work(sk::nm24m_q8_workspace_bytes(K)), tiles(sk::nm24m_q4_row_bytes(K) * R);
    Buf<float> s(ng * R);
    fill_bytes(codes.data(), nk / 2 * R, 16);
    fill_floats(s.data(), ng * R, 17, 0.001f, 0.01f);
    sk::pack_nm24m_q4(codes.data(), idx.data(), R, K, tiles.data());
    for (auto _ : st) {
      const sk::NmMaskQ8 act = sk::NmMaskQ8::carve(work.data(), K);
      sk::quantize_nm24m_q8(x.data(), K, act);
      sk::gemv_nm24m_q4_a8(tiles.data(), s.data(), nullptr, 32, R, K, act, y.data(), threads);
      benchmark::DoNotOptimize(y.data());
    }
    bytes = (static_cast<double>(sk::nm24m_q4_row_bytes(K)) + 4.0 * ng) * R;
  } else {
    Buf<std::uint8_t> codes(nk / 2 * R);
    Buf<float> s(ng * R);
    fill_bytes(codes.data(), nk / 2 * R, 16);
    fill_floats(s.data(), ng * R, 17, 0.001f, 0.01f);
    for (auto _ : st) {
      sk::gemv_nm_q4(codes.data(), s.data(), nullptr, 32, idx.data(), R, K, n, m, x.data(), y.data(), threads);
      benchmark::DoNotOptimize(y.data());
    }
    bytes += (0.5 * nk + 4.0 * ng) * R;
  }
  counters(st, bytes, static_cast<double>(K) * R);
}

// bf16 (bf16 = true) or fp16 weights.
void bm_half(benchmark::State& st, bool bf16) {
  const int threads = static_cast<int>(st.range(0));
  Buf<std::uint16_t> w(K * R);
  Buf<float> x(K), y(R);
  fill_bytes(w.data(), 2 * K * R, 18);
  for (std::size_t i = 0; i < K * R; ++i) w.data()[i] &= bf16 ? 0xbfff : 0xbbff;  // finite values
  fill_floats(x.data(), K, 19, -1, 1);
  for (auto _ : st) {
    if (bf16) {
      sk::gemv_bf16(w.data(), R, K, x.data(), y.data(), threads);
    } else {
      sk::gemv_f16(w.data(), R, K, x.data(), y.data(), threads);
    }
    benchmark::DoNotOptimize(y.data());
  }
  counters(st, 2.0 * K * R, static_cast<double>(K) * R);
}

// Unstructured bitmask-sparse f32 at 50% density (random mask); bytes = mask + kept values.
void bm_bitmask(benchmark::State& st) {
  const int threads = static_cast<int>(st.range(0));
  const std::size_t mb = K / 8;
  Buf<std::uint8_t> mask(mb * R);
  fill_bytes(mask.data(), mb * R, 25);
  std::vector<std::size_t> off(R + 1, 0);
  for (std::size_t k = 0; k < R; ++k) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < mb; ++i) n += static_cast<std::size_t>(std::popcount(mask.data()[k * mb + i]));
    off[k + 1] = off[k] + n;
  }
  Buf<float> v(off[R] + 1), x(K), y(R);
  fill_floats(v.data(), off[R] + 1, 26, -1, 1);
  fill_floats(x.data(), K, 27, -1, 1);
  for (auto _ : st) {
    sk::gemv_bitmask_f32(mask.data(), v.data(), off.data(), R, K, x.data(), y.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  counters(st, static_cast<double>(mb * R) + 4.0 * static_cast<double>(off[R]), static_cast<double>(K) * R);
}

// Prefill GEMM: 512 tokens x 4096 inputs x 4096 outputs; fmt 0 = f32 (kernels::dense_gemm, the
// model's prefill; it runs on one thread whatever the row's thread count), 1 = int8 (W8A8), 2 = int4 g32.
void bm_gemm(benchmark::State& st, int fmt) {
  constexpr std::size_t T = 512, N = 4096;
  const int threads = static_cast<int>(st.range(0));
  Buf<float> x(T * K), y(T * N), s(N * (K / 32)), sx(T);
  fill_floats(x.data(), T * K, 20, -1, 1);
  fill_floats(s.data(), N * (K / 32), 21, 0.001f, 0.01f);
  if (fmt == 0) {
    Buf<float> w(N * K);
    fill_floats(w.data(), N * K, 22, -1, 1);
    for (auto _ : st) {
      sk::dense_gemm(x.data(), K, T, w.data(), K, N, K, y.data(), N);  // the model's prefill (DenseLinear)
      benchmark::DoNotOptimize(y.data());
    }
  } else if (fmt == 1) {
    Buf<std::int8_t> q(N * K), qx(T * K);
    fill_i8(q.data(), N * K, 23);
    for (auto _ : st) {
      for (std::size_t t = 0; t < T; ++t) sx.data()[t] = sk::quantize_per_token_q8(x.data() + t * K, K, qx.data() + t * K);
      sk::gemm_q8_a8(q.data(), s.data(), N, K, qx.data(), sx.data(), T, y.data(), threads);
      benchmark::DoNotOptimize(y.data());
    }
  } else {
    Buf<std::uint8_t> codes(N * K / 2), work(sk::gemm_q4_workspace_bytes(K, T));
    fill_bytes(codes.data(), N * K / 2, 24);
    for (auto _ : st) {
      sk::gemm_q4_f32(codes.data(), s.data(), nullptr, N, K, 32, x.data(), T, y.data(), work.data(), threads);
      benchmark::DoNotOptimize(y.data());
    }
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * T * N * K * static_cast<double>(st.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

const std::string kShape = "/4096x65536";

int reg = [] {
  benchmark::RegisterBenchmark("yardstick/memcpy/256MiB", bm_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("yardstick/triad/256MiB", bm_triad)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("yardstick/read/256MiB", bm_read)->Unit(benchmark::kMillisecond)->UseRealTime();
  auto th = [](benchmark::internal::Benchmark* b) {
    b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
  };
  th(benchmark::RegisterBenchmark(("gemv/f32" + kShape).c_str(), bm_f32));
  th(benchmark::RegisterBenchmark(("gemv/int8_a32" + kShape).c_str(), bm_q8, false));
  th(benchmark::RegisterBenchmark(("gemv/int8_a8" + kShape).c_str(), bm_q8, true));
  th(benchmark::RegisterBenchmark(("gemv/int4_g32" + kShape).c_str(), bm_q4, 32, false));
  th(benchmark::RegisterBenchmark(("gemv/int4_g32_asym" + kShape).c_str(), bm_q4, 32, true));
  th(benchmark::RegisterBenchmark(("gemv/int4_g128" + kShape).c_str(), bm_q4, 128, false));
  th(benchmark::RegisterBenchmark(("gemv/nm24_f32" + kShape).c_str(), bm_nm, 2, 4, 0));
  th(benchmark::RegisterBenchmark(("gemv/nm48_f32" + kShape).c_str(), bm_nm, 4, 8, 0));
  th(benchmark::RegisterBenchmark(("gemv/nm24_int4_g32" + kShape).c_str(), bm_nm, 2, 4, 1));
  th(benchmark::RegisterBenchmark(("gemv/nm24_int4_g32_mask_a8" + kShape).c_str(), bm_nm, 2, 4, 5));
  th(benchmark::RegisterBenchmark(("gemv/bf16" + kShape).c_str(), bm_half, true));
  th(benchmark::RegisterBenchmark(("gemv/f16" + kShape).c_str(), bm_half, false));
  th(benchmark::RegisterBenchmark(("gemv/bitmask50_f32" + kShape).c_str(), bm_bitmask));
  th(benchmark::RegisterBenchmark("gemm/f32/512x4096x4096", bm_gemm, 0));
  th(benchmark::RegisterBenchmark("gemm/int8_a8/512x4096x4096", bm_gemm, 1));
  th(benchmark::RegisterBenchmark("gemm/int4_g32/512x4096x4096", bm_gemm, 2));
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
