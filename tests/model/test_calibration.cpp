// Calibration windows and the layer-wise driver: shapes, counts, no-op equivalence, propagation.
#include <cstring>
#include <map>
#include <vector>

#include <catch2/catch.hpp>

#include "model_test_util.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/llama.hpp"

using namespace sparq::model;

namespace {

struct Recorder : LayerwiseCallbacks {
  std::map<std::pair<std::size_t, int>, std::vector<sparq::Matrix<float>>> inputs;  // (block, leader) -> per window
  std::vector<std::size_t> compressed;
  bool zero_wo_block0 = false;
  void on_linear_input(std::size_t block, Linear l, sparq::MatrixView<const float> x, std::size_t window) override {
    auto& v = inputs[{block, static_cast<int>(l)}];
    REQUIRE(window == v.size());  // windows arrive in order, once each
    sparq::Matrix<float> m(x.rows(), x.cols());
    for (std::size_t r = 0; r < x.rows(); ++r) std::memcpy(m.row(r), x.row(r), x.cols() * sizeof(float));
    v.push_back(std::move(m));
  }
  void compress_block(std::size_t block, LlamaBlock& w, Llama&) override {
    compressed.push_back(block);
    if (zero_wo_block0 && block == 0) w.wo = sparq::Matrix<float>(w.wo.rows(), w.wo.cols());
  }
};

bool same(const sparq::Matrix<float>& a, const sparq::Matrix<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("calibration_windows: consecutive or seeded random windows", "[model][calibration]") {
  std::vector<int> s(100);
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<int>(i);
  const auto w = calibration_windows(s, 3, 30);
  REQUIRE(w.size() == 3);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 30; ++j) CHECK(w[i][j] == static_cast<int>(i * 30 + j));
  CHECK_THROWS_AS(calibration_windows(s, 4, 30), sparq::error);
  CHECK_THROWS_AS(calibration_windows(s, 0, 30), sparq::error);
  const auto r1 = calibration_windows(s, 20, 90, true, 7), r2 = calibration_windows(s, 20, 90, true, 7);
  CHECK(r1 == r2);
  bool differs = false;
  for (const auto& win : r1) {
    REQUIRE(win.size() == 90);
    CHECK(win[0] >= 0);
    CHECK(win[0] <= 10);
    for (std::size_t j = 1; j < 90; ++j) CHECK(win[j] == win[0] + static_cast<int>(j));
    differs |= win[0] != r1[0][0];
  }
  CHECK(differs);
  CHECK(calibration_windows(s, 20, 90, true, 8) != r1);
  CHECK_THROWS_AS(calibration_windows(s, 1, 101, true, 1), sparq::error);
}

TEST_CASE("run_layerwise: callbacks, no-op equivalence and error propagation", "[model][calibration]") {
  const auto cfg = model_test::small_config();
  std::vector<int> stream(200);
  for (std::size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int>((i * 11 + 2) % cfg.vocab_size);
  const auto windows = calibration_windows(stream, 3, 24);

  // Plain forward of each window: embed, then every block from position 0.
  Llama plain(model_test::random_weights(cfg, 31));
  std::vector<sparq::Matrix<float>> ref;
  for (const auto& w : windows) {
    sparq::Matrix<float> x(w.size(), cfg.dim);
    plain.embed(w, x.view());
    LlamaState st(cfg, w.size());
    for (std::size_t b = 0; b < cfg.n_layers; ++b) plain.forward_block(b, x.view(), 0, st, b);
    ref.push_back(std::move(x));
  }

  Llama model(model_test::random_weights(cfg, 31));
  Recorder noop;
  const auto out = run_layerwise(model, windows, noop);
  REQUIRE(out.size() == windows.size());
  for (std::size_t w = 0; w < out.size(); ++w) CHECK(same(out[w], ref[w]));
  CHECK(noop.compressed == std::vector<std::size_t>{0, 1});
  CHECK(noop.inputs.size() == 4 * cfg.n_layers);  // wq, wo, w1, w2 groups per block
  for (const auto& [key, v] : noop.inputs) {
    CHECK(v.size() == windows.size());
    const auto l = static_cast<Linear>(key.second);
    CHECK(input_group_leader(l) == l);
    CHECK(v[0].rows() == 24);
    CHECK(v[0].cols() == (l == Linear::w2 ? cfg.hidden_dim : cfg.dim));
  }
  // Block 0's attention input is rms_att(embedding).
  sparq::Matrix<float> e(24, cfg.dim), n0(24, cfg.dim);
  model.embed(windows[1], e.view());
  model.rmsnorm(e.view(), model.weights().blocks[0].rms_att.data(), n0.view());
  CHECK(same(noop.inputs[{0, static_cast<int>(Linear::wq)}][1], n0));

  // Zeroing wo of block 0: with error propagation block 1 sees different inputs and the output
  // differs; with dense propagation block 1 sees the dense inputs and the output is the plain one.
  Llama m2(model_test::random_weights(cfg, 31));
  Recorder zero;
  zero.zero_wo_block0 = true;
  const auto out2 = run_layerwise(m2, windows, zero);
  CHECK_FALSE(same(zero.inputs[{1, static_cast<int>(Linear::wq)}][0], noop.inputs[{1, static_cast<int>(Linear::wq)}][0]));
  CHECK(same(zero.inputs[{0, static_cast<int>(Linear::wo)}][0], noop.inputs[{0, static_cast<int>(Linear::wo)}][0]));
  CHECK_FALSE(same(out2[0], ref[0]));
  Llama m3(model_test::random_weights(cfg, 31));
  Recorder zero_dense;
  zero_dense.zero_wo_block0 = true;
  LayerwiseOptions o;
  o.propagate_compressed = false;
  const auto out3 = run_layerwise(m3, windows, zero_dense, o);
  CHECK(same(zero_dense.inputs[{1, static_cast<int>(Linear::wq)}][2], noop.inputs[{1, static_cast<int>(Linear::wq)}][2]));
  for (std::size_t w = 0; w < out3.size(); ++w) CHECK(same(out3[w], ref[w]));
  // ... and the compressed weights are in the model afterwards.
  float wo_abs = 0;
  for (float v : m3.weights().blocks[0].wo.storage()) wo_abs += std::fabs(v);
  CHECK(wo_abs == 0.0f);

  std::vector<std::vector<int>> ragged = {std::vector<int>(5, 1), std::vector<int>(6, 1)};
  Recorder r;
  CHECK_THROWS_AS(run_layerwise(model, ragged, r), sparq::error);
  CHECK_THROWS_AS(run_layerwise(model, {}, r), sparq::error);
}
