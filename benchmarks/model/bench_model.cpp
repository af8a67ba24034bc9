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

using namespace sparq::model;

namespace {

const Llama* real_model() {
  static std::unique_ptr<Llama> m = [] {
    const std::string p = std::string(SPARQ_DATA_DIR) + "/models/stories260K.bin";
    return std::filesystem::exists(p) ? std::make_unique<Llama>(sparq::io::read_llama2c(p)) : nullptr;
  }();
  return m.get();
}

/// Cheap deterministic fill (a 64-bit LCG mapped to [-s, s)): 400M weights in well under a second.
void fill(float* p, std::size_t n, float s, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = s * (static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f);
  }
}

const Llama* synthetic_7b() {
  static std::unique_ptr<Llama> m = [] {
    LlamaConfig c;
    c.dim = 4096;
    c.hidden_dim = 11008;
    c.n_layers = 2;
    c.n_heads = 32;
    c.n_kv_heads = 32;
    c.vocab_size = 256;
    c.seq_len = 512;
    auto w = LlamaWeights::zeros(c);
    std::uint64_t seed = 1;
    fill(w.token_embedding.data(), w.token_embedding.size(), 1.0f, seed++);
    for (auto& b : w.blocks) {
      b.rms_att.assign(c.dim, 1.0f);
      b.rms_ffn.assign(c.dim, 1.0f);
      for (Linear l : all_linears) {
        auto& mat = b.linear(l);
        fill(mat.data(), mat.size(), 1.0f / 64.0f, seed++);
      }
    }
    w.rms_final.assign(c.dim, 1.0f);
    return std::make_unique<Llama>(std::move(w));
  }();
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
