// Synthetic model with two LLaMA-7B-shaped blocks (dim 4096, FFN 11008, 32 heads, vocab 256) for the
// model benchmarks: random weights from a cheap deterministic LCG, so every decode step streams the
// block weights from memory. Shared by bench_model and bench_packed_model.
#pragma once

#include <cstddef>
#include <cstdint>

#include <sparq/model/llama_weights.hpp>

namespace bench_model {

using sparq::model::Linear;
using sparq::model::LlamaConfig;
using sparq::model::LlamaWeights;
using sparq::model::all_linears;

/// Cheap deterministic fill (64-bit LCG mapped to [-s, s)).
inline void fill(float* p, std::size_t n, float s, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = s * (static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f);
  }
}

inline LlamaWeights synthetic_7b_weights() {
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
    for (Linear l : all_linears) fill(b.linear(l).data(), b.linear(l).size(), 1.0f / 64.0f, seed++);
  }
  w.rms_final.assign(c.dim, 1.0f);
  return w;
}

}  // namespace bench_model
