// Model runtime throughput: prefill and decode tokens/s on the real stories260K model, and on a
// synthetic model with LLaMA-7B-sized blocks (dim 4096, FFN 11008, 32 heads, 2 blocks, vocab 256),
// where the per-block time is reported as a counter.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <sparq/io/llama2c.hpp>
#include <sparq/model/llama.hpp>

#include "synthetic_llama.hpp"

using namespace sparq::model;

namespace {

const Llama* real_model() {
  static std::unique_ptr<Llama> m = [] {
    const std::string p = std::string(SPARQ_DATA_DIR) + "/models/stories260K.bin";
    return std::filesystem::exists(p) ? std::make_unique<Llama>(sparq::io::read_llama2c(p)) : nullptr;
  }();
  return m.get();
}

const Llama* synthetic_7b() {
  static std::unique_ptr<Llama> m = std::make_unique<Llama>(bench_model::synthetic_7b_weights());
  return m.get();
}

std::vector<int> tokens(std::size_t n, std::size_t vocab) {
  std::vector<int> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<int>((i * 131 + 1) % vocab);
  return t;
}

void run_prefill(benchmark::State& state, const Llama* m, std::size_t n) {
  if (!m) {
    state.SkipWithError("model data not found");
    return;
  }
  const auto& c = m->config();
  LlamaState st(c);
  const auto t = tokens(n, c.vocab_size);
  sparq::Matrix<float> logits(1, c.vocab_size);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    st.reset();
    m->prefill(t, st, logits.view());
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["wall_ms_per_block"] = 1e3 * secs / static_cast<double>(state.iterations() * c.n_layers);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m->linear_weight_bytes()));
}

void run_decode(benchmark::State& state, const Llama* m, std::size_t ctx) {
  if (!m) {
    state.SkipWithError("model data not found");
    return;
  }
  const auto& c = m->config();
  LlamaState st(c);
  const auto t = tokens(ctx, c.vocab_size);
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (st.length() == ctx) {
      st.reset();
      i = 0;
    }
    benchmark::DoNotOptimize(m->decode(t[i++], st));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["wall_ms_per_block"] = 1e3 * secs / static_cast<double>(state.iterations() * c.n_layers);
  // Every decode step streams all decoder weights once.
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m->linear_weight_bytes()));
}

void BM_prefill_stories(benchmark::State& s) { run_prefill(s, real_model(), 512); }
void BM_decode_stories(benchmark::State& s) { run_decode(s, real_model(), 512); }
void BM_prefill_7b_blocks(benchmark::State& s) { run_prefill(s, synthetic_7b(), static_cast<std::size_t>(s.range(0))); }
void BM_decode_7b_blocks(benchmark::State& s) { run_decode(s, synthetic_7b(), 64); }

}  // namespace

BENCHMARK(BM_prefill_stories)->Name("forward/prefill/stories260K/512")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_decode_stories)->Name("forward/decode/stories260K")->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_prefill_7b_blocks)->Name("forward/prefill/7b_blocks")->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_decode_7b_blocks)->Name("forward/decode/7b_blocks")->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
