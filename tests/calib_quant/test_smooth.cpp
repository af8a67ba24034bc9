// Tests of Smooth (SmoothQuant) and LayerGroup folding: formulas, function preservation, W8A8 error.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "calib_test_util.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/model/layer_group.hpp"
#include "sparq/quant/smooth.hpp"
#include "sparq_test.hpp"

using namespace calib_test;
using sparq::Matrix;
using sparq::MatrixView;
using sparq::model::Linear;

namespace {

/// RMSNorm rows: y = γ ⊙ x / sqrt(mean(x²) + eps).
Matrix<float> rmsnorm(const Matrix<float>& x, const std::vector<float>& g, float eps = 1e-5f) {
  Matrix<float> y(x.rows(), x.cols());
  for (std::size_t t = 0; t < x.rows(); ++t) {
    double ss = 0;
    for (std::size_t j = 0; j < x.cols(); ++j) ss += static_cast<double>(x(t, j)) * x(t, j);
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(x.cols())) + eps);
    for (std::size_t j = 0; j < x.cols(); ++j) y(t, j) = g[j] * (x(t, j) * inv);
  }
  return y;
}

Matrix<float> matmul_t(const Matrix<float>& x, MatrixView<const float> w) {  // x · wᵀ
  Matrix<float> y(x.rows(), w.rows());
  for (std::size_t t = 0; t < x.rows(); ++t)
    for (std::size_t o = 0; o < w.rows(); ++o) {
      double s = 0;
      for (std::size_t j = 0; j < x.cols(); ++j) s += static_cast<double>(x(t, j)) * w(o, j);
      y(t, o) = static_cast<float>(s);
    }
  return y;
}

double rel_diff(const Matrix<float>& a, const Matrix<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - b.data()[i];
    num += d * d;
    den += static_cast<double>(a.data()[i]) * a.data()[i];
  }
  return std::sqrt(num / den);
}

/// ‖X Wᵀ − Q_tok(X) Q_ch(W)ᵀ‖² (W8A8 with per-token activations and per-channel weights).
double w8a8_error(const Matrix<float>& x, const Matrix<float>& w) {
  const auto xq = sparq::fake_quantize_per_token(x.view(), 8);
  const auto wq = sparq::fake_quantize_per_channel(w.view(), 8);
  const auto y = matmul_t(x, w.view());
  const auto yq = matmul_t(xq, wq.view());
  double e = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double d = static_cast<double>(y.data()[i]) - yq.data()[i];
    e += d * d;
  }
  return e;
}

const std::vector<float>& gamma_of(const sparq::model::LlamaBlock& b, const sparq::LayerGroup& g) {
  return g.source == sparq::GroupSource::rms_att ? b.rms_att : b.rms_ffn;
}

}  // namespace

TEST_CASE("Smoothing scales follow the SmoothQuant and llm-compressor formulas", "[smooth]") {
  Matrix<float> w1(2, 4), w2(1, 4);
  // column abs-max over both linears: {2, 1, 0, 0.5}
  w1(0, 0) = -2.0f; w1(1, 1) = 1.0f; w2(0, 3) = 0.5f; w2(0, 1) = -0.25f;
  const std::vector<MatrixView<const float>> ws{w1.view(), w2.view()};
  const std::vector<float> act{4.0f, 0.0f, 9.0f, 1e-12f};
  const auto s = sparq::smooth_scales_absmax(act, ws, 0.5f);
  CHECK(s[0] == Approx(std::sqrt(4.0) / std::sqrt(2.0)).epsilon(1e-6));
  CHECK(s[1] == Approx(1e-5).epsilon(1e-6));                     // 0 → floor
  CHECK(s[2] == Approx(3.0 / std::sqrt(1e-5)).epsilon(1e-6));    // weight floor 1e-5
  CHECK(s[3] == Approx(1e-5).epsilon(1e-6));                     // tiny → floor
  const auto s8 = sparq::smooth_scales_absmax(act, ws, 0.8f);
  CHECK(s8[0] == Approx(std::pow(4.0, 0.8) / std::pow(2.0, 0.2)).epsilon(1e-6));
  // Range variant: a = max − min, w = 2·max|W|, s = a where w = 0.
  const std::vector<float> mn{-1.0f, 0.0f, -3.0f, 0.0f}, mx{3.0f, 2.0f, 3.0f, 0.0f};
  const auto r = sparq::smooth_scales_range(mn, mx, ws, 0.5f);
  CHECK(r[0] == Approx(std::sqrt(4.0) / std::sqrt(4.0)).epsilon(1e-6));
  CHECK(r[1] == Approx(std::sqrt(2.0) / std::sqrt(2.0)).epsilon(1e-6));
  CHECK(r[2] == Approx(6.0).epsilon(1e-6));
  CHECK(r[3] == Approx(1e-5).epsilon(1e-6));
}

TEST_CASE("Smooth keeps the float function of stories260K's blocks", "[smooth][real]") {
  const std::string path = sparq_test::data_path("models/stories260K.bin");
  if (path.empty()) return;
  const auto model = sparq::io::read_llama2c(path);
  const std::size_t dim = model.config.dim;
  // Block inputs: outlier_activations(256 tokens, dim, seed 7 + b) (random, with outlier channels).
  for (std::size_t b = 0; b < model.blocks.size(); ++b) {
    const auto x = outlier_activations(256, dim, 7 + static_cast<unsigned>(b), 8, 30.0f);
    for (float alpha : {0.5f, 0.85f}) {
      auto blk = model.blocks[b];
      sparq::Smooth smooth(sparq::SmoothOptions{alpha});
      for (const auto& g : sparq::llama_smooth_groups()) {
        const auto n0 = rmsnorm(x, gamma_of(blk, g));
        sparq::ColumnAbsMax stat(dim);
        stat.add(n0.view());
        std::vector<Matrix<float>> before;
        double w8a8_before = 0, w8a8_after = 0;
        for (auto l : g.linears) {
          before.push_back(matmul_t(n0, blk.linear(l).view()));
          w8a8_before += w8a8_error(n0, blk.linear(l));
        }
        const auto s = smooth.apply(blk, g, stat);
        REQUIRE(s.size() == dim);
        const auto n1 = rmsnorm(x, gamma_of(blk, g));
        for (std::size_t i = 0; i < g.linears.size(); ++i) {
          const auto after = matmul_t(n1, blk.linear(g.linears[i]).view());
          INFO("block " << b << " " << g.name() << " alpha " << alpha);
          CHECK(rel_diff(before[i], after) <= 1e-5);
          w8a8_after += w8a8_error(n1, blk.linear(g.linears[i]));
        }
        INFO("block " << b << " " << g.name() << " W8A8 error " << w8a8_before << " -> " << w8a8_after);
        CHECK(w8a8_after < w8a8_before);
      }
    }
  }
}

TEST_CASE("Smoothing lowers the per-token W8A8 error on inputs with outlier channels", "[smooth]") {
  // outlier_activations(512, 128, seed 3, every 16th channel x50); three linears W ~ N(0, 0.02²).
  const auto x = outlier_activations(512, 128, 3, 16, 50.0f);
  std::vector<Matrix<float>> ws{random_matrix(96, 128, 4, 0.02f), random_matrix(64, 128, 5, 0.02f),
                                random_matrix(64, 128, 6, 0.02f)};
  sparq::ColumnAbsMax stat(128);
  stat.add(x.view());
  std::vector<MatrixView<const float>> views;
  for (const auto& w : ws) views.push_back(w.view());
  for (float alpha : {0.5f, 0.8f}) {
    const auto s = sparq::Smooth(sparq::SmoothOptions{alpha}).scales(stat, views);
    Matrix<float> xs = x;
    for (std::size_t t = 0; t < x.rows(); ++t)
      for (std::size_t j = 0; j < 128; ++j) xs(t, j) /= s[j];
    double before = 0, after = 0;
    for (const auto& w : ws) {
      Matrix<float> wsm = w;
      for (std::size_t r = 0; r < w.rows(); ++r)
        for (std::size_t j = 0; j < 128; ++j) wsm(r, j) *= s[j];
      before += w8a8_error(x, w);
      after += w8a8_error(xs, wsm);
    }
    INFO("alpha " << alpha << ": W8A8 error " << before << " -> " << after);
    CHECK(after < 0.5 * before);
  }
  // The range statistic (llm-compressor) also helps.
  sparq::ColumnMinMax mm(128);
  mm.add(x.view());
  const auto s = sparq::Smooth(sparq::SmoothOptions{0.5f, sparq::SmoothStatistic::range}).scales(mm, views);
  Matrix<float> xs = x;
  for (std::size_t t = 0; t < x.rows(); ++t)
    for (std::size_t j = 0; j < 128; ++j) xs(t, j) /= s[j];
  Matrix<float> w0 = ws[0];
  for (std::size_t r = 0; r < w0.rows(); ++r)
    for (std::size_t j = 0; j < 128; ++j) w0(r, j) *= s[j];
  CHECK(w8a8_error(xs, w0) < 0.5 * w8a8_error(x, ws[0]));
}

TEST_CASE("fold_scales preserves linear->linear groups (wv->wo without GQA, w3->w2)", "[layer_group]") {
  sparq::model::LlamaConfig cfg;
  cfg.dim = 32; cfg.hidden_dim = 48; cfg.n_layers = 1; cfg.n_heads = 4; cfg.n_kv_heads = 4;
  cfg.vocab_size = 8; cfg.seq_len = 16;
  auto w = sparq::model::LlamaWeights::zeros(cfg);
  auto& blk = w.blocks[0];
  unsigned seed = 1;
  for (auto l : sparq::model::all_linears) {
    auto& m = blk.linear(l);
    m = random_matrix(m.rows(), m.cols(), seed++, 0.2f);
  }
  const auto groups = sparq::llama_awq_groups(cfg);
  REQUIRE(groups.size() == 4);
  CHECK(groups[2].name() == "wv->{wo}");
  CHECK(groups[3].name() == "w3->{w2}");
  const auto n = random_matrix(12, 32, 99, 1.0f);  // the normed input of wv / w1 / w3
  // Attention reduced to what matters for scaling: one row-stochastic token mixing per head.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::vector<Matrix<float>> mix(cfg.n_heads, Matrix<float>(12, 12));
  for (auto& a : mix)
    for (std::size_t i = 0; i < 12; ++i) {
      float sum = 0;
      for (std::size_t j = 0; j <= i; ++j) sum += (a(i, j) = ud(rng));
      for (std::size_t j = 0; j <= i; ++j) a(i, j) /= sum;
    }
  auto attn_out = [&](const sparq::model::LlamaBlock& bk) {
    const auto v = matmul_t(n, bk.wv.view());
    Matrix<float> att(12, 32);
    for (std::size_t h = 0; h < cfg.n_heads; ++h)
      for (std::size_t t = 0; t < 12; ++t)
        for (std::size_t c = h * 8; c < h * 8 + 8; ++c)
          for (std::size_t u = 0; u < 12; ++u) att(t, c) += mix[h](t, u) * v(u, c);
    return matmul_t(att, bk.wo.view());
  };
  auto ffn_out = [&](const sparq::model::LlamaBlock& bk) {
    const auto g = matmul_t(n, bk.w1.view());
    const auto u = matmul_t(n, bk.w3.view());
    Matrix<float> h(12, 48);
    for (std::size_t i = 0; i < h.size(); ++i) {
      const float a = g.data()[i];
      h.data()[i] = a / (1.0f + std::exp(-a)) * u.data()[i];
    }
    return matmul_t(h, bk.w2.view());
  };
  const auto a0 = attn_out(blk), f0 = ffn_out(blk);
  std::uniform_real_distribution<float> logu(-2.0f, 2.0f);
  for (std::size_t gi : {2u, 3u}) {
    std::vector<float> s(sparq::group_channels(blk, groups[gi]));
    for (auto& v : s) v = std::exp(logu(rng));
    sparq::fold_scales(blk, groups[gi], s);
  }
  CHECK(rel_diff(a0, attn_out(blk)) <= 1e-5);
  CHECK(rel_diff(f0, ffn_out(blk)) <= 1e-5);
  // With GQA, wv -> wo does not apply.
  cfg.n_kv_heads = 2;
  CHECK(sparq::llama_awq_groups(cfg).size() == 3);
}

TEST_CASE("Smooth and fold_scales reject bad input naming the value", "[smooth][errors]") {
  CHECK_THROWS_WITH(sparq::Smooth(sparq::SmoothOptions{1.5f}), Catch::Contains("alpha = 1.5"));
  Matrix<float> w(4, 8, 0.5f), w2(4, 6, 0.5f);
  std::vector<MatrixView<const float>> ws{w.view()};
  std::vector<float> act(8, 1.0f);
  CHECK_THROWS_WITH(sparq::smooth_scales_absmax(std::vector<float>(7, 1.0f), ws, 0.5f),
                    Catch::Contains("7 channels"));
  act[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(sparq::smooth_scales_absmax(act, ws, 0.5f), Catch::Contains("at channel 3"));
  std::vector<MatrixView<const float>> mixed{w.view(), w2.view()};
  CHECK_THROWS_WITH(sparq::smooth_scales_absmax(std::vector<float>(8, 1.0f), mixed, 0.5f),
                    Catch::Contains("cin = 6"));
  sparq::model::LlamaConfig cfg;
  cfg.dim = 16; cfg.hidden_dim = 24; cfg.n_layers = 1; cfg.n_heads = 4; cfg.n_kv_heads = 2;
  cfg.vocab_size = 8; cfg.seq_len = 8;
  auto mw = sparq::model::LlamaWeights::zeros(cfg);
  const sparq::LayerGroup vo{sparq::GroupSource::linear, Linear::wv, {Linear::wo}};
  CHECK_THROWS_WITH(sparq::group_channels(mw.blocks[0], vo), Catch::Contains("produces 8 channels"));
  std::vector<float> s(16, 1.0f);
  s[5] = 0.0f;
  CHECK_THROWS_WITH(sparq::fold_scales(mw.blocks[0], sparq::llama_smooth_groups()[0], s),
                    Catch::Contains("scale 0 at channel 5"));
  sparq::ColumnAbsMax stat(16);
  stat.add(random_matrix(4, 16, 1, 1.0f).view());
  const sparq::LayerGroup w3w2{sparq::GroupSource::linear, Linear::w3, {Linear::w2}};
  CHECK_THROWS_WITH(sparq::Smooth().apply(mw.blocks[0], w3w2, stat), Catch::Contains("folds only into norms"));
}
