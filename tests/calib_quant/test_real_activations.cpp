// GPTQ, Smooth and AWQ on stories260K with REAL activations from the layer-wise calibration driver.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "calib_test_util.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/io/load.hpp"
#include "sparq/model/layer_group.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/quant/awq.hpp"
#include "sparq/quant/gptq.hpp"
#include "sparq/quant/smooth.hpp"
#include "sparq_test.hpp"

using namespace calib_test;
using sparq::Matrix;
using sparq::model::Linear;

namespace {

/// Caches every linear group's input (all windows stacked) and, per block: measures Smooth and AWQ
/// on copies of the block, then quantizes every linear with GPTQ in place (error propagates).
struct Callbacks : sparq::model::LayerwiseCallbacks {
  std::map<Linear, Matrix<float>> inputs;
  double gptq_sum[2] = {0, 0}, rtn_sum[2] = {0, 0};
  int gptq_wins = 0, gptq_layers = 0;

  void on_linear_input(std::size_t, Linear leader, sparq::MatrixView<const float> x, std::size_t) override {
    auto& m = inputs[leader];
    Matrix<float> grown(m.rows() + x.rows(), x.cols());
    std::copy(m.data(), m.data() + m.size(), grown.data());
    for (std::size_t t = 0; t < x.rows(); ++t) std::copy(x.row(t), x.row(t) + x.cols(), grown.row(m.rows() + t));
    m = std::move(grown);
  }

  static Linear leader_of(Linear l) {
    switch (l) {
      case Linear::wq: case Linear::wk: case Linear::wv: return Linear::wq;
      case Linear::w1: case Linear::w3: return Linear::w1;
      default: return l;
    }
  }

  void compress_block(std::size_t b, sparq::model::LlamaBlock& blk, sparq::model::Llama&) override {
    // Smooth: the function is kept and the W8A8 error falls, on the real norm outputs.
    for (const auto& g : sparq::llama_smooth_groups()) {
      const auto& x = inputs.at(g.linears[0]);
      auto copy = blk;
      sparq::ColumnAbsMax stat(x.cols());
      stat.add(x.view());
      const auto s = sparq::Smooth(sparq::SmoothOptions{0.5f}).apply(copy, g, stat);
      Matrix<float> xs = x;
      for (std::size_t t = 0; t < xs.rows(); ++t)
        for (std::size_t j = 0; j < xs.cols(); ++j) xs(t, j) /= s[j];
      for (auto l : g.linears) {
        const double dev = output_error(x, blk.linear(l).view(), blk.linear(l).view());
        CHECK(dev == 0.0);
        double num = 0, den = 0;
        for (std::size_t t = 0; t < x.rows(); t += 7)
          for (std::size_t o = 0; o < blk.linear(l).rows(); ++o) {
            double y0 = 0, y1 = 0;
            for (std::size_t j = 0; j < x.cols(); ++j) {
              y0 += static_cast<double>(x(t, j)) * blk.linear(l)(o, j);
              y1 += static_cast<double>(xs(t, j)) * copy.linear(l)(o, j);
            }
            num += (y0 - y1) * (y0 - y1);
            den += y0 * y0;
          }
        INFO("block " << b << " " << sparq::model::linear_name(l));
        CHECK(std::sqrt(num / den) <= 1e-5);
      }
    }
    // AWQ: never worse than RTN on its calibration loss (r = 0 is in the grid).
    for (const auto& g : sparq::llama_awq_groups(sparq::model::LlamaConfig{64, 172, 5, 8, 4, 512, 512})) {
      const auto& x = inputs.at(leader_of(g.linears[0]));
      std::vector<sparq::MatrixView<const float>> ws;
      for (auto l : g.linears) ws.push_back(std::as_const(blk).linear(l).view());
      const auto res = sparq::AwqScale(sparq::AwqOptions{4, 0}).search_scales(x.view(), ws);
      INFO("block " << b << " " << g.name() << " r " << res.best_ratio);
      CHECK(res.best_loss <= res.losses[0]);
    }
    // GPTQ in place, 4 and 3 bits measured, 4-bit weights kept.
    for (auto l : sparq::model::all_linears) {
      auto& w = blk.linear(l);
      const auto& x = inputs.at(leader_of(l));
      const auto gram = gram_of(x);
      sparq::HessianAccumulator acc(x.cols());
      acc.add(x.view());
      Matrix<float> keep;
      for (int i = 0; i < 2; ++i) {
        const int bits = i == 0 ? 4 : 3;
        const auto r = sparq::gptq_quantize(w.view(), acc, sparq::GptqSpec{bits, false, 0});
        const double eg = output_error_gram(gram, w.view(), r.weight.view());
        const double er = output_error_gram(gram, w.view(), rtn(w, bits, false, 0).view());
        gptq_sum[i] += eg;
        rtn_sum[i] += er;
        gptq_wins += eg < er;
        ++gptq_layers;
        if (bits == 4) keep = r.weight;
      }
      w = std::move(keep);
    }
    inputs.clear();
  }
};

}  // namespace

TEST_CASE("Calibration stages on stories260K with real activations (tinystories_train_head.txt)",
          "[real][driver]") {
  const std::string model_path = sparq_test::data_path("models/stories260K.bin");
  const std::string tok_path = sparq_test::data_path("models/tok512.bin");
  const std::string text_path = sparq_test::data_path("text/tinystories_train_head.txt");
  if (model_path.empty() || tok_path.empty() || text_path.empty()) return;
  auto model = sparq::io::load_model(model_path);
  const auto tok = sparq::io::load_tokenizer(tok_path, model);
  const auto stream = sparq::model::document_token_stream_file(text_path, tok);
  // Calibration: the first 8 consecutive windows of 128 tokens (1024 tokens).
  const auto windows = sparq::model::calibration_windows(stream, 8, 128);
  Callbacks cb;
  sparq::model::run_layerwise(model, windows, cb);
  REQUIRE(cb.gptq_layers == 2 * 7 * 5);
  INFO("GPTQ/RTN output error, summed over layers: 4-bit " << cb.gptq_sum[0] / cb.rtn_sum[0]
       << ", 3-bit " << cb.gptq_sum[1] / cb.rtn_sum[1] << "; GPTQ better on " << cb.gptq_wins
       << " of " << cb.gptq_layers << " layer/bit cases");
  CHECK(cb.gptq_sum[0] < 0.9 * cb.rtn_sum[0]);
  CHECK(cb.gptq_sum[1] < 0.9 * cb.rtn_sum[1]);
  CHECK(cb.gptq_wins >= cb.gptq_layers * 9 / 10);
  WARN("GPTQ/RTN output error on real activations: 4-bit " << cb.gptq_sum[0] / cb.rtn_sum[0]
       << ", 3-bit " << cb.gptq_sum[1] / cb.rtn_sum[1] << "; better on " << cb.gptq_wins << "/"
       << cb.gptq_layers);
}
