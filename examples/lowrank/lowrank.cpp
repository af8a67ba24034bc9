// sparq-lowrank: the low-rank acceptance measurements on a real model (default stories260K), printed as tables.
//
// Table 1  per linear: relative layer-output error ||(W − AB)Xᵀ|| / ||WXᵀ|| at equal rank for plain
//          SVD, diagonal (per-channel scale) whitening and Cholesky whitening, on the calibration
//          activations and on held-out windows (the next windows of the calibration text).
// Table 2  per linear: layer-output error of W4 g128 and of 50 % SAR + W8, without and with LoRC
//          (rank r, int8 factors, Cholesky whitening).
// Table 3  perplexity (docs/evaluation.md#perplexity protocol) of the compressed models without/with LoRC at
//          several ranks and formats, bytes added (fake-quantized Ŵ, and packed Q4Linear/Q8Linear
//          rows whose op_bytes are the LinearOps' weight_bytes); and of LowRank replacement (budget 0.5) plain
//          vs activation-aware. Compression runs through the layer-wise driver with error
//          propagation (model/calibration.hpp run_layerwise).
// Table 4  the LoRC rows of Table 3 through the library's compression path: run-time recipes
//          (joint/recipe.hpp, "w4g128a0,lorc:8:int8", ...) executed by the same stage driver as
//          Compressor<Stages...>, whose LoRC stage calls lowrank::LowRankCompensation; printed next
//          to the Table 3 (hand-written layer-wise harness) perplexity of the same configuration.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <sparq/io/llama2c.hpp>
#include <sparq/joint/recipe.hpp>
#include <sparq/lowrank/layer_error.hpp>
#include <sparq/lowrank/low_rank.hpp>
#include <sparq/lowrank/low_rank_factors.hpp>
#include <sparq/model/calibration.hpp>
#include <sparq/model/lowrank_linear.hpp>
#include <sparq/model/perplexity.hpp>
#include <sparq/model/tokenizer.hpp>

#include "lowrank_harness.hpp"
#include "tool_cli.hpp"

using namespace sparq::model;
using namespace sparq::lowrank;
using lowrank_harness::Recipe;

namespace {

struct Args {  // as parsed (examples/common/tool_cli.hpp)
  std::string model, tokenizer, calib, eval;
  long long nsamples = 32, seqlen = 256, max_tokens = 60000, rank = 8;
  bool no_layers = false, no_ppl = false;
};

struct Options {  // as run
  std::string model, tokenizer, calib, eval;
  std::size_t nsamples, seqlen, max_tokens, rank;
  bool layers, ppl;
};

double ppl_of(const Llama& m, const std::vector<int>& eval, std::size_t max_tokens) {
  PerplexityOptions po;
  po.max_tokens = max_tokens;
  return perplexity(m, eval, po).perplexity;
}


int run(const Options& a) {
  const LlamaWeights dense = sparq::io::read_llama2c(a.model);
  const auto& cfg = dense.config;
  const auto tok = Tokenizer::read_llama2c(a.tokenizer, cfg.vocab_size);
  const auto stream = document_token_stream_file(a.calib, tok, 2 * a.nsamples * a.seqlen);
  const auto all = calibration_windows(stream, 2 * a.nsamples, a.seqlen);
  const std::vector<std::vector<int>> calib(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(a.nsamples));
  const std::vector<std::vector<int>> heldout(all.begin() + static_cast<std::ptrdiff_t>(a.nsamples), all.end());
  std::printf("sparq-lowrank: %s (dim %zu, hidden %zu, %zu layers); calibration %zu x %zu tokens of %s "
              "(held-out: the next %zu windows)\n\n",
              a.model.c_str(), cfg.dim, cfg.hidden_dim, cfg.n_layers, a.nsamples, a.seqlen, a.calib.c_str(), a.nsamples);

  if (a.layers) {
    // Dense activations (nothing is compressed, so error propagation does not apply here).
    lowrank_harness::StatsCollector sc(a.seqlen), sh(a.seqlen);
    {
      Llama m{LlamaWeights(dense)};
      (void)run_layerwise(m, calib, sc);
      Llama m2{LlamaWeights(dense)};
      (void)run_layerwise(m2, heldout, sh);
    }
    std::printf("Table 1: relative layer-output error at rank %zu (calibration | held-out)\n", a.rank);
    std::printf("%-3s %-3s %-8s | %8s %8s %8s | %8s %8s %8s | %s\n", "blk", "lin", "shape", "plain", "diag", "chol",
                "plain", "diag", "chol", "chol<plain");
    std::size_t wins = 0, wins_h = 0, n = 0;
    double sum[6] = {0, 0, 0, 0, 0, 0};
    for (std::size_t b = 0; b < cfg.n_layers; ++b)
      for (Linear l : all_linears) {
        const auto& w = dense.blocks[b].linear(l);
        const auto& s = sc.of(b, l);
        const auto h = s.h.hessian_f64(), hh = sh.of(b, l).h.hessian_f64();
        FactorizeOptions fo;
        fo.rule.rank = a.rank;
        const sparq::Matrix<float> p[3] = {factorize(w.view(), Whitening::identity(w.cols()), fo).product(),
                                    factorize(w.view(), Whitening::diagonal(s.h), fo).product(),
                                    factorize(w.view(), Whitening::cholesky(s.h), fo).product()};
        double e[6];
        for (int k = 0; k < 3; ++k) {
          e[k] = relative_output_error(w.view(), p[k].view(), h.view());
          e[3 + k] = relative_output_error(w.view(), p[k].view(), hh.view());
          sum[k] += e[k];
          sum[3 + k] += e[3 + k];
        }
        wins += e[2] < e[0];
        wins_h += e[5] < e[3];
        ++n;
        char shape[32];
        std::snprintf(shape, sizeof shape, "%zux%zu", w.rows(), w.cols());
        std::printf("%-3zu %-3s %-8s | %8.4f %8.4f %8.4f | %8.4f %8.4f %8.4f | %s\n", b, linear_name(l).data(), shape,
                    e[0], e[1], e[2], e[3], e[4], e[5], e[2] < e[0] ? (e[5] < e[3] ? "yes/yes" : "yes/no") : "NO");
      }
    std::printf("%-16s | %8.4f %8.4f %8.4f | %8.4f %8.4f %8.4f | %zu/%zu calib, %zu/%zu held-out\n\n", "mean",
                sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n, sum[4] / n, sum[5] / n, wins, n, wins_h, n);

    std::printf("Table 2: relative layer-output error without / with LoRC rank %zu (int8 factors, Cholesky "
                "whitening), calibration activations\n", a.rank);
    std::printf("%-3s %-3s %-8s | %9s %9s %7s | %9s %9s %7s\n", "blk", "lin", "shape", "W4g128", "+LoRC", "ratio",
                "SAR+W8", "+LoRC", "ratio");
    std::size_t lw[2] = {0, 0};
    double rs[2] = {0, 0};
    for (std::size_t b = 0; b < cfg.n_layers; ++b)
      for (Linear l : all_linears) {
        const auto& w = dense.blocks[b].linear(l);
        const auto& s = sc.of(b, l);
        const auto h = s.h.hessian_f64();
        double e[4];
        for (int k = 0; k < 2; ++k) {
          const auto w_hat = lowrank_harness::compress(w, k == 0 ? Recipe::w4g128 : Recipe::sar50_w8, s);
          LowRankCompensationOptions o;
          o.rank = a.rank;
          auto c = w_hat;
          LowRankCompensation(o).apply(w.view(), w_hat.view(), s.h).add_to(c.view());
          e[2 * k] = relative_output_error(w.view(), w_hat.view(), h.view());
          e[2 * k + 1] = relative_output_error(w.view(), c.view(), h.view());
          lw[k] += e[2 * k + 1] < e[2 * k];
          rs[k] += e[2 * k + 1] / e[2 * k];
        }
        char shape[32];
        std::snprintf(shape, sizeof shape, "%zux%zu", w.rows(), w.cols());
        std::printf("%-3zu %-3s %-8s | %9.5f %9.5f %7.3f | %9.5f %9.5f %7.3f\n", b, linear_name(l).data(), shape, e[0],
                    e[1], e[1] / e[0], e[2], e[3], e[3] / e[2]);
      }
    std::printf("LoRC lowers the error on %zu/35 (W4g128) and %zu/35 (SAR+W8) linears; mean ratio %.3f / %.3f\n\n",
                lw[0], lw[1], rs[0] / 35.0, rs[1] / 35.0);
  }

  if (a.ppl) {
    const auto eval = document_token_stream_file(a.eval, tok, a.max_tokens);
    std::printf("Table 3: perplexity, %zu tokens of %s, windows of %zu (layer-wise compression with error "
                "propagation; fake-quantized Ŵ + LoRC factors run by CompensatedLinear)\n",
                eval.size(), a.eval.c_str(), cfg.seq_len);
    std::printf("%-40s %10s %12s %8s %12s %8s\n", "model", "ppl", "bytes_added", "%dense", "op_bytes", "secs");
    double dense_bytes = 0;
    for (const auto& blk : dense.blocks)
      for (Linear l : all_linears) dense_bytes += 4.0 * static_cast<double>(blk.linear(l).size());
    {
      const Llama m{LlamaWeights(dense)};
      std::printf("%-40s %10.4f %12d %8s %12.0f %8s\n", "dense f32", ppl_of(m, eval, a.max_tokens), 0, "-", dense_bytes, "-");
    }
    std::map<std::string, double> harness_ppl;  // Table 3 rows by name, for Table 4
    struct Cfg { Recipe r; std::size_t rank; FactorFormat f; bool packed = false; };
    const Cfg rows[] = {{Recipe::w4g128, 0, FactorFormat::int8},  {Recipe::w4g128, 4, FactorFormat::int8},
                        {Recipe::w4g128, 8, FactorFormat::int8},  {Recipe::w4g128, 8, FactorFormat::f16},
                        {Recipe::w4g128, 16, FactorFormat::int8}, {Recipe::sar50_w8, 0, FactorFormat::int8},
                        {Recipe::sar50_w8, 4, FactorFormat::int8}, {Recipe::sar50_w8, 8, FactorFormat::int8},
                        {Recipe::sar50_w8, 8, FactorFormat::f16},  {Recipe::sar50_w8, 16, FactorFormat::int8},
                        {Recipe::w4g128, 0, FactorFormat::int8, true}, {Recipe::w4g128, 8, FactorFormat::int8, true},
                        {Recipe::sar50_w8, 0, FactorFormat::int8, true}, {Recipe::sar50_w8, 8, FactorFormat::int8, true}};
    for (const Cfg& c : rows) {
      const auto t0 = std::chrono::steady_clock::now();
      Llama m{LlamaWeights(dense)};
      lowrank_harness::RecipeCompressor rc(c.r, a.seqlen, c.rank, c.f, c.packed);
      (void)run_layerwise(m, calib, rc);
      const double p = ppl_of(m, eval, a.max_tokens);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char name[80];
      const char* base = c.packed ? (c.r == Recipe::w4g128 ? "W4 g128 packed Q4Linear" : "SAR50%+W8 packed Q8Linear")
                                  : lowrank_harness::recipe_name(c.r);
      if (c.rank == 0) std::snprintf(name, sizeof name, "%s", base);
      else std::snprintf(name, sizeof name, "%s + LoRC r%zu %s", base, c.rank, factor_format_name(c.f).data());
      char ob[32] = "-";
      if (c.packed) {  // bytes of the ops as run (packed codes + scales + factors), all 35 linears
        double bytes = 0;
        for (std::size_t b = 0; b < cfg.n_layers; ++b)
          for (Linear l : all_linears) bytes += static_cast<double>(m.linear(b, l).weight_bytes());
        std::snprintf(ob, sizeof ob, "%.0f", bytes);
      }
      harness_ppl[name] = p;
      std::printf("%-40s %10.4f %12zu %7.2f%% %12s %8.1f\n", name, p, rc.added_bytes,
                  100.0 * static_cast<double>(rc.added_bytes) / dense_bytes, ob, secs);
      std::fflush(stdout);
    }
    // LowRank replacement: every linear W := A·B at half the parameters (budget 0.5).
    struct LrCompressor : LayerwiseCallbacks {
      WhiteningKind kind;
      std::map<Linear, sparq::HessianAccumulator> h;
      std::size_t params = 0;
      explicit LrCompressor(WhiteningKind k) : kind(k) {}
      void on_linear_input(std::size_t, Linear leader, sparq::MatrixView<const float> x, std::size_t) override {
        h.try_emplace(leader, x.cols()).first->second.add(x);
      }
      void compress_block(std::size_t b, LlamaBlock& blk, Llama& model) override {
        LowRankOptions o;
        o.whitening = kind;
        for (Linear l : all_linears) {
          const auto f = LowRank(o).apply(blk.linear(l).view(), h.at(input_group_leader(l)));
          params += f.parameters();
          model.set_linear(b, l, std::make_unique<LowRankLinear>(f));
        }
        h.clear();
      }
    };
    for (WhiteningKind k : {WhiteningKind::identity, WhiteningKind::diagonal, WhiteningKind::cholesky}) {
      const auto t0 = std::chrono::steady_clock::now();
      Llama m{LlamaWeights(dense)};
      LrCompressor lc(k);
      (void)run_layerwise(m, calib, lc);
      const double p = ppl_of(m, eval, a.max_tokens);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char name[64];
      std::snprintf(name, sizeof name, "LowRank budget 0.5, %s", whitening_name(k).data());
      double bytes = 0;
      for (std::size_t b = 0; b < cfg.n_layers; ++b)
        for (Linear l : all_linears) bytes += static_cast<double>(m.linear(b, l).weight_bytes());
      std::printf("%-40s %10.4f %12s %7.2f%% %12.0f %8.1f\n", name, p, "-", 100.0 * bytes / dense_bytes, bytes, secs);
      std::fflush(stdout);
    }

    // Table 4: the same LoRC rows through sparq::compress(model, windows, parse_recipe(...)).
    std::printf("\nTable 4: LoRC through the library (joint/ run-time recipes = Compressor<...> stages), same "
                "protocol; harness = Table 3\n");
    std::printf("%-34s %-28s %10s %10s %12s %8s\n", "recipe", "table 3 row", "ppl", "harness", "factor_bytes", "secs");
    struct LibRow { const char* recipe; const char* row; };
    const LibRow lib[] = {{"w4g128a0", "W4 g128"},
                          {"w4g128a0,lorc:8:int8", "W4 g128 + LoRC r8 int8"},
                          {"w4g128a0,lorc:8:f16", "W4 g128 + LoRC r8 f16"},
                          {"sar:0.5,w8a0", "SAR50%+W8"},
                          {"sar:0.5,w8a0,lorc:8:int8", "SAR50%+W8 + LoRC r8 int8"},
                          {"sar:0.5,w8a0,lorc:16:int8", "SAR50%+W8 + LoRC r16 int8"}};
    for (const LibRow& r : lib) {
      const auto t0 = std::chrono::steady_clock::now();
      Llama m{LlamaWeights(dense)};
      const sparq::CompressReport rep = sparq::compress(m, calib, sparq::parse_recipe(r.recipe));
      const double p = ppl_of(m, eval, a.max_tokens);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto h = harness_ppl.find(r.row);
      std::printf("%-34s %-28s %10.4f %10.4f %12zu %8.1f\n", rep.recipe.c_str(), r.row, p, h == harness_ppl.end() ? 0.0 : h->second, rep.factor_bytes(), secs);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  const std::string data = sparq_tools::data_dir(SPARQ_DATA_DIR);
  a.model = data + "/models/stories260K.bin";
  a.tokenizer = data + "/models/tok512.bin";
  a.calib = data + "/text/tinystories_train_head.txt";
  a.eval = data + "/text/tinystories_valid_head.txt";
  sparq_tools::Cli cli("sparq-lowrank",
                       "Low-rank factorization of stories260K's linears: layer-output error of plain, diagonal and\n"
                       "whitened SVD (tables 1-2) and perplexity of the low-rank recipes (table 3).");
  cli.text("--model", "PATH", &a.model, "llama2.c model (default <data>/models/stories260K.bin)")
      .text("--tokenizer", "PATH", &a.tokenizer, "llama2.c tokenizer (default <data>/models/tok512.bin)")
      .text("--calib", "PATH", &a.calib, "calibration text (default <data>/text/tinystories_train_head.txt)")
      .text("--eval", "PATH", &a.eval, "evaluation text (default <data>/text/tinystories_valid_head.txt)")
      .integer("--nsamples", &a.nsamples, 1, 1LL << 20, "calibration windows (default 32; held-out: the next N windows)")
      .integer("--seqlen", &a.seqlen, 2, 1LL << 20, "tokens per window (default 256)")
      .integer("--max-tokens", &a.max_tokens, 1, 1LL << 40, "evaluation tokens (default 60000)")
      .integer("--rank", &a.rank, 1, 1LL << 20, "rank of tables 1 and 2 (default 8)")
      .flag("--no-layers", &a.no_layers, "skip tables 1-2")
      .flag("--no-ppl", &a.no_ppl, "skip table 3")
      .note("(data dir <data>: $SPARQ_DATA_DIR, else " + data + ")");
  return sparq_tools::run(cli, argc, argv, [&] {
    const auto z = [](long long v) { return static_cast<std::size_t>(v); };
    return run({a.model, a.tokenizer, a.calib, a.eval, z(a.nsamples), z(a.seqlen), z(a.max_tokens), z(a.rank),
                !a.no_layers, !a.no_ppl});
  });
}
