// stories260K with real calibration activations: activation-aware SVD beats plain SVD on every linear; LoRC rank 8 lowers
// the layer-output error of W4 g128 and of 50% SAR + W8 on every linear, and the perplexity of the W4 model.
#include <cmath>
#include <cstdio>
#include <vector>

#include <catch2/catch.hpp>

#include "../../examples/lowrank/lowrank_harness.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/lowrank/layer_error.hpp"
#include "sparq/lowrank/low_rank_factors.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/model/tokenizer.hpp"
#include "sparq_test.hpp"

using namespace sparq::model;
using namespace sparq::lowrank;
using lowrank_harness::Recipe;

namespace {

struct Fixture {
  bool ok = false;
  LlamaWeights weights;
  std::vector<std::vector<int>> calib;
  std::vector<int> eval;
  std::size_t seqlen = 0;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    const auto mpath = sparq_test::data_path("models/stories260K.bin");
    const auto tpath = sparq_test::data_path("models/tok512.bin");
    const auto train = sparq_test::data_path("text/tinystories_train_head.txt");
    const auto valid = sparq_test::data_path("text/tinystories_valid_head.txt");
    if (mpath.empty() || tpath.empty() || train.empty() || valid.empty()) return x;
    x.weights = sparq::io::read_llama2c(mpath);
    const auto tok = Tokenizer::read_llama2c(tpath, x.weights.config.vocab_size);
#if defined(__SANITIZE_ADDRESS__)
    const std::size_t nwin = 2, eval_tokens = 512;
    x.seqlen = 64;
#else
    const std::size_t nwin = 4, eval_tokens = 2048;
    x.seqlen = 128;
#endif
    x.calib = calibration_windows(document_token_stream_file(train, tok, nwin * x.seqlen), nwin, x.seqlen);
    x.eval = document_token_stream_file(valid, tok, eval_tokens);
    x.ok = true;
    return x;
  }();
  return f;
}

}  // namespace

TEST_CASE("stories260K: activation-aware factorization and LoRC on every linear", "[lowrank][real]") {
  const Fixture& fx = fixture();
  if (!fx.ok) return;
  Llama model{LlamaWeights(fx.weights)};
  lowrank_harness::StatsCollector sc(fx.seqlen);
  (void)run_layerwise(model, fx.calib, sc);
  std::size_t n = 0, aware_wins = 0, lorc_w4 = 0, lorc_sar = 0;
  double worst_ratio = 0;
  for (std::size_t b = 0; b < fx.weights.config.n_layers; ++b) {
    for (Linear l : all_linears) {
      const auto& w = fx.weights.blocks[b].linear(l);
      const auto& s = sc.of(b, l);
      const auto h = s.h.hessian_f64();
      ++n;
      // Equal rank 8: plain SVD vs Cholesky-whitened SVD, error on the layer outputs.
      FactorizeOptions fo;
      fo.rule.rank = 8;
      const double plain = relative_output_error(w.view(), factorize(w.view(), Whitening::identity(w.cols()), fo).product().view(), h.view());
      const double aware = relative_output_error(w.view(), factorize(w.view(), Whitening::cholesky(s.h), fo).product().view(), h.view());
      CHECK(aware < plain);
      aware_wins += aware < plain;
      worst_ratio = std::max(worst_ratio, aware / plain);
      // LoRC rank 8 (int8 factors, activation-aware) after each recipe.
      for (Recipe r : {Recipe::w4g128, Recipe::sar50_w8}) {
        const auto w_hat = lowrank_harness::compress(w, r, s);
        const double before = relative_output_error(w.view(), w_hat.view(), h.view());
        auto corrected = w_hat;
        LowRankCompensation().apply(w.view(), w_hat.view(), s.h).add_to(corrected.view());
        const double after = relative_output_error(w.view(), corrected.view(), h.view());
        CHECK(after < before);
        (r == Recipe::w4g128 ? lorc_w4 : lorc_sar) += after < before;
      }
    }
  }
  CHECK(n == 35);
  WARN("aware < plain on " << aware_wins << "/" << n << " (worst aware/plain " << worst_ratio << "); LoRC lowers W4g128 on "
                           << lorc_w4 << "/" << n << ", SAR50+W8 on " << lorc_sar << "/" << n);
}

TEST_CASE("stories260K: LoRC rank 8 lowers the perplexity of the W4 g128 model", "[lowrank][real][ppl]") {
  const Fixture& fx = fixture();
  if (!fx.ok) return;
  PerplexityOptions po;
  po.max_tokens = fx.eval.size();
  double ppl[2] = {0, 0};
  std::size_t bytes = 0;
  for (int with = 0; with < 2; ++with) {
    Llama model{LlamaWeights(fx.weights)};
    lowrank_harness::RecipeCompressor rc(Recipe::w4g128, fx.seqlen, with ? 8 : 0, FactorFormat::int8);
    (void)run_layerwise(model, fx.calib, rc);
    CHECK(rc.linears == 35);
    if (with) {
      bytes = rc.added_bytes;
      for (std::size_t b = 0; b < 5; ++b)
        for (Linear l : all_linears) CHECK(dynamic_cast<const CompensatedLinear*>(&model.linear(b, l)) != nullptr);
    }
    ppl[with] = perplexity(model, fx.eval, po).perplexity;
  }
  // int8 factors: r·(out + in) codes + 4·(out + r) scale bytes per linear.
  std::size_t expect = 0;
  for (const auto& blk : fx.weights.blocks)
    for (Linear l : all_linears) expect += 8 * (blk.linear(l).rows() + blk.linear(l).cols()) + 4 * (blk.linear(l).rows() + 8);
  CHECK(bytes == expect);
  WARN("W4 g128 ppl " << ppl[0] << " -> with LoRC r8 " << ppl[1] << " (" << fx.eval.size() << " tokens, +" << bytes << " bytes)");
  CHECK(std::isfinite(ppl[1]));
  CHECK(ppl[1] < ppl[0]);
}
