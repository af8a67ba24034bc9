// rANS entropy coder throughput on a LLaMA-7B-shaped layer (4096×4096 Gaussian weights), single thread.
//
// Streams: int8 per-channel symmetric codes (1 byte per code), int4 per-group-128 symmetric codes
// (packed nibbles, 2 codes per byte) and the 2-bit in-group indices of a 2:4 magnitude-pruned copy
// (NMCompressed<2,4>: 4 indices = 2 groups per byte). Names: decode/<stream>/rans<b>/<states>,
// encode/<stream>/rans<b>, memcpy/<bytes> (the yardstick, same binary, same sizes).
// Counters: bytes/s = DECODED bytes written per second (packed layout: int4 = 2 codes per byte,
// 2:4 indices = 4 indices per byte); items/s = decoded CODES (or indices) per second;
// coded_bits_per_code = stream bits (table and states included) per code.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "sparq/io/entropy.hpp"
#include "sparq/io/rans.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/quant/quantizer.hpp"

namespace {

constexpr std::size_t N = 4096;

struct Streams {
  std::vector<std::uint8_t> int8, int4, nm24;
};

const Streams& streams() {
  static const Streams s = [] {
    sparq::Matrix<float> w(N, N);
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.02f);
    for (std::size_t r = 0; r < N; ++r)
      for (std::size_t c = 0; c < N; ++c) w(r, c) = d(rng);
    Streams out;
    out.int8 = sparq::Quantizer<sparq::Symmetric, sparq::PerChannel, 8>{}.quantize(w.view()).code_storage();
    out.int4 = sparq::Quantizer<sparq::Symmetric, sparq::PerGroup<128>, 4>{}.quantize(w.view()).code_storage();
    (void)sparq::Pruner<sparq::Magnitude, sparq::NM<2, 4>>{}.prune(w.view());
    out.nm24 = sparq::NMCompressed<2, 4>::from_dense(w.view()).indices();
    return out;
  }();
  return s;
}

const std::vector<std::uint8_t>& pick(int which) {
  const auto& s = streams();
  return which == 0 ? s.int8 : which == 1 ? s.int4 : s.nm24;
}
double codes_per_byte(int which) { return which == 0 ? 1.0 : which == 1 ? 2.0 : 4.0; }

void decode(benchmark::State& st, int which, unsigned bits, unsigned states) {
  const auto& in = pick(which);
  const auto enc = sparq::io::rans_encode(in.data(), in.size(), bits, states);
  std::vector<std::uint8_t> out(in.size());
  for (auto _ : st) {
    sparq::io::rans_decode_into(enc.data(), enc.size(), out.data(), out.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (out != in) st.SkipWithError("round trip failed");
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * in.size()));
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * in.size() * codes_per_byte(which)));
  st.counters["coded_bits_per_code"] = 8.0 * double(enc.size()) / (double(in.size()) * codes_per_byte(which));
}

void encode(benchmark::State& st, int which, unsigned bits) {
  const auto& in = pick(which);
  std::size_t size = 0;
  for (auto _ : st) {
    auto enc = sparq::io::rans_encode(in.data(), in.size(), bits);
    size = enc.size();
    benchmark::DoNotOptimize(enc.data());
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * in.size()));
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * in.size() * codes_per_byte(which)));
  st.counters["coded_bits_per_code"] = 8.0 * double(size) / (double(in.size()) * codes_per_byte(which));
}

void copy(benchmark::State& st, int which) {
  const auto& in = pick(which);
  std::vector<std::uint8_t> out(in.size());
  for (auto _ : st) {
    std::memcpy(out.data(), in.data(), in.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations() * in.size()));
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * in.size() * codes_per_byte(which)));
}

const char* stream_name(int which) { return which == 0 ? "int8_perchannel" : which == 1 ? "int4_g128" : "nm24_indices"; }

const bool registered = [] {
  for (int which = 0; which < 3; ++which) {
    const std::string s = stream_name(which);
    benchmark::RegisterBenchmark(("memcpy/" + s).c_str(), copy, which)->Unit(benchmark::kMillisecond);
    for (unsigned bits : {8u, 4u, 2u}) {
      if (which == 0 && bits == 2) continue;
      for (unsigned states : {8u, 16u, 32u})
        benchmark::RegisterBenchmark(("decode/" + s + "/rans" + std::to_string(bits) + "/" + std::to_string(states)).c_str(),
                                     decode, which, bits, states)
            ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("encode/" + s + "/rans" + std::to_string(bits)).c_str(), encode, which, bits)
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
