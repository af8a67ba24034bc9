// Helpers for the model tests: random small Llama weights and a naive reference forward pass.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/model/llama_weights.hpp"
#include "sparq_test.hpp"

namespace model_test {

using sparq::model::LlamaConfig;
using sparq::model::LlamaWeights;

/// Random weights (normal, sigma 0.3; RMSNorm weights around 1) for `cfg`.
inline LlamaWeights random_weights(const LlamaConfig& cfg, unsigned seed) {
  LlamaWeights w = LlamaWeights::zeros(cfg);
  unsigned s = seed;
  auto fill = [&](float* p, std::size_t n, float sigma, float mean) {
    const auto v = sparq_test::randn(n, s++, sigma);
    for (std::size_t i = 0; i < n; ++i) p[i] = v[i] + mean;
  };
  fill(w.token_embedding.data(), w.token_embedding.size(), 1.0f, 0.0f);
  for (auto& b : w.blocks) {
    fill(b.rms_att.data(), b.rms_att.size(), 0.1f, 1.0f);
    fill(b.rms_ffn.data(), b.rms_ffn.size(), 0.1f, 1.0f);
    for (auto l : sparq::model::all_linears) {
      auto& m = b.linear(l);
      fill(m.data(), m.size(), 1.0f / std::sqrt(static_cast<float>(m.cols())), 0.0f);
    }
  }
  fill(w.rms_final.data(), w.rms_final.size(), 0.1f, 1.0f);
  if (!cfg.shared_classifier) fill(w.classifier.data(), w.classifier.size(), 0.3f, 0.0f);
  return w;
}

/// A deliberately plain llama2.c-style forward (one token, full recomputation from the cache).
struct ReferenceLlama {
  const LlamaWeights& w;
  std::vector<std::vector<double>> kc, vc;  // per layer: [pos][kv_dim]

  explicit ReferenceLlama(const LlamaWeights& weights) : w(weights) {
    kc.resize(w.config.n_layers);
    vc.resize(w.config.n_layers);
  }

  static std::vector<double> rms(const std::vector<double>& x, const std::vector<float>& g, double eps) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
    std::vector<double> o(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) o[i] = g[i] * x[i] * r;
    return o;
  }
  static std::vector<double> matvec(const sparq::Matrix<float>& m, const std::vector<double>& x) {
    std::vector<double> y(m.rows(), 0.0);
    for (std::size_t o = 0; o < m.rows(); ++o)
      for (std::size_t i = 0; i < m.cols(); ++i) y[o] += m(o, i) * x[i];
    return y;
  }

  std::vector<double> step(int token, std::size_t pos) {
    const auto& c = w.config;
    const std::size_t hd = c.head_dim();
    std::vector<double> x(w.token_embedding.row(static_cast<std::size_t>(token)),
                          w.token_embedding.row(static_cast<std::size_t>(token)) + c.dim);
    for (std::size_t l = 0; l < c.n_layers; ++l) {
      const auto& b = w.blocks[l];
      auto xb = rms(x, b.rms_att, c.rms_eps);
      auto q = matvec(b.wq, xb), k = matvec(b.wk, xb), v = matvec(b.wv, xb);
      auto rot = [&](std::vector<double>& vec) {
        for (std::size_t i = 0; i < vec.size(); i += 2) {
          const std::size_t j = i % hd;
          const double f = 1.0 / std::pow(static_cast<double>(c.rope_theta), static_cast<double>(j) / hd);
          const double a = static_cast<double>(pos) * f, v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * std::cos(a) - v1 * std::sin(a);
          vec[i + 1] = v0 * std::sin(a) + v1 * std::cos(a);
        }
      };
      rot(q);
      rot(k);
      kc[l].resize((pos + 1) * c.kv_dim());
      vc[l].resize((pos + 1) * c.kv_dim());
      for (std::size_t i = 0; i < c.kv_dim(); ++i) {
        kc[l][pos * c.kv_dim() + i] = k[i];
        vc[l][pos * c.kv_dim() + i] = v[i];
      }
      std::vector<double> att(c.dim, 0.0);
      for (std::size_t h = 0; h < c.n_heads; ++h) {
        const std::size_t kvh = h / (c.n_heads / c.n_kv_heads);
        std::vector<double> sc(pos + 1);
        double mx = -1e300;
        for (std::size_t s = 0; s <= pos; ++s) {
          double d = 0;
          for (std::size_t e = 0; e < hd; ++e) d += q[h * hd + e] * kc[l][s * c.kv_dim() + kvh * hd + e];
          sc[s] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, sc[s]);
        }
        double sum = 0;
        for (auto& s : sc) sum += (s = std::exp(s - mx));
        for (std::size_t s = 0; s <= pos; ++s)
          for (std::size_t e = 0; e < hd; ++e)
            att[h * hd + e] += sc[s] / sum * vc[l][s * c.kv_dim() + kvh * hd + e];
      }
      auto o = matvec(b.wo, att);
      for (std::size_t i = 0; i < c.dim; ++i) x[i] += o[i];
      xb = rms(x, b.rms_ffn, c.rms_eps);
      auto g = matvec(b.w1, xb), u = matvec(b.w3, xb);
      for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      o = matvec(b.w2, g);
      for (std::size_t i = 0; i < c.dim; ++i) x[i] += o[i];
    }
    x = rms(x, w.rms_final, c.rms_eps);
    return matvec(w.output_matrix(), x);
  }
};

/// A small GQA config with sizes that are not multiples of the vector width.
inline LlamaConfig small_config() {
  LlamaConfig c;
  c.dim = 48;
  c.hidden_dim = 70;
  c.n_layers = 2;
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.vocab_size = 37;
  c.seq_len = 40;
  return c;
}

}  // namespace model_test
