// End-to-end decode through the packed kernels: tokens/s, decoder-linear and resident weight bytes for
// dense f32 vs W8A8 vs 2:4+W8 vs W4 g32 (sym, RTN) vs W4 g32 + LoRC r8 int8 on stories260K and on a synthetic model with two
// LLaMA-7B-shaped blocks (dim 4096, FFN 11008, 32 heads, vocab 256, random weights), where every
// decode step streams the block weights from memory.
//
// Each variant is built the way the compression pipeline builds it: fake quantization / pruning of
// the float weights (RTN, magnitude 2:4), InputQuantLinear(…, 8) for A8, then model::pack_model.
// Counters: tokens/s; linear_MB = decoder-linear bytes as held by the ops (codes + scales + zeros +
// indices, padding included; the dense row is the f32 matrices); bytes_per_second = linear bytes
// streamed per second; resident_MB = model::resident_weight_bytes of the model as benchmarked (every
// weight array it holds: embedding, norms, ops; the packed variants run with
// PackOptions::release_float_weights, so the float copies of the packed linears are freed);
// kept_MB = what it would hold without the release (the float block matrices stay next to the
// packed ops: pack_model's default). Kernel threads = 1 (single-threaded decode).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <sparq/io/llama2c.hpp>
#include <sparq/model/input_quant_linear.hpp>
#include <sparq/lowrank/low_rank_compensation.hpp>
#include <sparq/lowrank/stored_factor.hpp>
#include <sparq/model/llama.hpp>
#include <sparq/model/lowrank_linear.hpp>
#include <sparq/model/pack_model.hpp>
#include <sparq/prune/magnitude.hpp>
#include <sparq/prune/nm.hpp>
#include <sparq/prune/pruner.hpp>
#include <sparq/quant/quantizer.hpp>

#include "synthetic_llama.hpp"

using namespace sparq;
using namespace sparq::model;

namespace {

enum class Variant { dense, w8a8, nm24_w8, w4_g32, w4_g32_lorc };

using bench_model::synthetic_7b_weights;

std::size_t released_bytes = 0;  ///< float bytes freed by the last compress()

/// Compresses `m` as `v` (fake quantization / pruning of the floats, then pack_model releasing the
/// float copies of the packed linears). w4_g32_lorc: W4 g32 plus a rank-8 LoRC correction with
/// int8 factors (random values: only the decode cost is measured) on every linear,
/// CompensatedLinear(Q4Linear, A, B).
void compress(Llama& m, Variant v) {
  released_bytes = 0;
  if (v == Variant::dense) return;
  QuantOptions tail;
  tail.tail_group = true;
  const bool w4 = v == Variant::w4_g32 || v == Variant::w4_g32_lorc;
  for (std::size_t b = 0; b < m.config().n_layers; ++b) {
    for (Linear l : all_linears) {
      auto& w = m.block_weights(b).linear(l);
      if (v == Variant::nm24_w8) (void)Pruner<Magnitude, NM<2, 4>>{}.prune(w.view());
      if (w4) w = Quantizer<Symmetric, PerGroup<32>, 4>(tail).fake_quantize(w.view());
      else w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(w.view());
    }
    m.refresh_block(b);
    if (v == Variant::w8a8)
      for (Linear l : all_linears) m.set_linear(b, l, std::make_unique<InputQuantLinear>(m.take_linear(b, l), 8));
    if (v == Variant::w4_g32_lorc) {
      constexpr std::size_t r = 8;
      for (Linear l : all_linears) {
        const auto [rows, cols] = m.expected_shape(l);
        Matrix<float> a(rows, r), bm(r, cols);
        for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<float>((i * 37 % 101) - 50) * 1e-4f;
        for (std::size_t i = 0; i < bm.size(); ++i) bm.data()[i] = static_cast<float>((i * 53 % 97) - 48) * 1e-2f;
        lowrank::Compensation c;
        c.a = lowrank::StoredFactor::encode(a.view(), lowrank::FactorFormat::int8);
        c.b = lowrank::StoredFactor::encode(bm.view(), lowrank::FactorFormat::int8);
        m.set_linear(b, l, std::make_unique<CompensatedLinear>(m.take_linear(b, l), std::move(c)));
      }
    }
  }
  PackOptions o;
  o.format = v == Variant::w8a8 ? PackFormat::w8 : v == Variant::nm24_w8 ? PackFormat::nm_w8 : PackFormat::w4;
  o.group_size = 32;
  o.release_float_weights = true;
  released_bytes = pack_model(m, o).released_bytes;
}

/// One model at a time (the 7B-shaped ones hold ~1.2 GB of floats each).
const Llama* model_for(bool big, Variant v) {
  static std::unique_ptr<Llama> cur;
  static int key = -1;
  const int k = (big ? 100 : 0) + static_cast<int>(v);
  if (k != key) {
    cur.reset();
    key = k;
    if (big) {
      cur = std::make_unique<Llama>(synthetic_7b_weights());
    } else {
      const std::string p = std::string(SPARQ_DATA_DIR) + "/models/stories260K.bin";
      if (!std::filesystem::exists(p)) return nullptr;
      cur = std::make_unique<Llama>(io::read_llama2c(p));
    }
    compress(*cur, v);
  }
  return cur.get();
}

void run_decode(benchmark::State& state, bool big, Variant v) {
  const Llama* m = model_for(big, v);
  if (!m) {
    state.SkipWithError("model data not found");
    return;
  }
  const auto& c = m->config();
  const std::size_t ctx = big ? 64 : 256;
  LlamaState st(c, ctx);
  std::size_t i = 0;
  for (auto _ : state) {
    if (st.length() == ctx) {
      st.reset();
      i = 0;
    }
    benchmark::DoNotOptimize(m->decode(static_cast<int>((i++ * 131 + 1) % c.vocab_size), st));
  }
  const auto bytes = m->linear_weight_bytes();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["linear_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["resident_MB"] = static_cast<double>(resident_weight_bytes(*m)) / 1e6;
  state.counters["kept_MB"] = static_cast<double>(resident_weight_bytes(*m) + released_bytes) / 1e6;
  state.SetLabel(m->linear(0, Linear::w2).describe());
}

}  // namespace

BENCHMARK_CAPTURE(run_decode, stories_dense, false, Variant::dense)->Name("decode/stories260K/dense_f32")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_decode, stories_w8a8, false, Variant::w8a8)->Name("decode/stories260K/w8a8")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_decode, stories_nm24, false, Variant::nm24_w8)->Name("decode/stories260K/nm24_w8")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_decode, stories_w4, false, Variant::w4_g32)->Name("decode/stories260K/w4_g32")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_decode, stories_w4_lorc, false, Variant::w4_g32_lorc)->Name("decode/stories260K/w4_g32_lorc_r8")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run_decode, big_dense, true, Variant::dense)->Name("decode/7b_blocks/dense_f32")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_decode, big_w8a8, true, Variant::w8a8)->Name("decode/7b_blocks/w8a8")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_decode, big_nm24, true, Variant::nm24_w8)->Name("decode/7b_blocks/nm24_w8")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_decode, big_w4, true, Variant::w4_g32)->Name("decode/7b_blocks/w4_g32")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(run_decode, big_w4_lorc, true, Variant::w4_g32_lorc)->Name("decode/7b_blocks/w4_g32_lorc_r8")->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
