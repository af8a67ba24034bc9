// Llama forward: against a naive reference, prefill == decode, LinearOp plumbing, golden generation.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "model_test_util.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/generate.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/tokenizer.hpp"
#include "sparq_test.hpp"

using namespace sparq::model;

namespace {

float max_abs_diff(const float* a, const float* b, std::size_t n) {
  float m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("DenseLinear: gemm and gemv agree with a brute-force product", "[model][linear]") {
  for (std::size_t cin : {1u, 7u, 16u, 33u, 172u}) {
    for (std::size_t cout : {1u, 3u, 5u, 9u}) {
      for (std::size_t n : {1u, 2u, 5u, 11u}) {
        const auto wv = sparq_test::randn(cout * cin, 7 + static_cast<unsigned>(cin), 1.0f);
        const auto xv = sparq_test::randn(n * cin, 11 + static_cast<unsigned>(cout), 1.0f);
        sparq::Matrix<float> w(cout, cin);
        std::copy(wv.begin(), wv.end(), w.data());
        const DenseLinear lin(w);
        CHECK(lin.in_features() == cin);
        CHECK(lin.out_features() == cout);
        CHECK(lin.weight_bytes() == cout * cin * 4);
        // Strided output rows (ld = cout + 3) are honoured.
        std::vector<float> y(n * (cout + 3), -7.0f);
        lin.gemm(sparq::MatrixView<const float>(xv.data(), n, cin),
                 sparq::MatrixView<float>(y.data(), n, cout, cout + 3));
        for (std::size_t t = 0; t < n; ++t) {
          std::vector<float> g(cout);
          lin.gemv(xv.data() + t * cin, g.data());
          for (std::size_t o = 0; o < cout; ++o) {
            double ref = 0;
            for (std::size_t k = 0; k < cin; ++k) ref += static_cast<double>(w(o, k)) * xv[t * cin + k];
            CHECK(y[t * (cout + 3) + o] == Approx(ref).margin(1e-4));
            CHECK(g[o] == y[t * (cout + 3) + o]);  // bit-identical: same reduction order
          }
          for (std::size_t o = cout; o < cout + 3; ++o) CHECK(y[t * (cout + 3) + o] == -7.0f);
        }
      }
    }
  }
  CHECK_THROWS_AS(DenseLinear(sparq::Matrix<float>()), sparq::error);
}

TEST_CASE("fake_quantize_token: per-token int8 codes, half-step error, ties to even", "[model][linear]") {
  const auto x = sparq_test::randn(301, 5, 2.0f);
  std::vector<float> q(x.size());
  fake_quantize_token(x.data(), q.data(), x.size(), 8);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float delta = amax / 127.0f;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float code = q[i] / delta;
    CHECK(std::fabs(code - std::nearbyint(code)) < 1e-3f);
    CHECK(std::fabs(code) <= 127.0f + 1e-3f);
    CHECK(std::fabs(q[i] - x[i]) <= delta * 0.5f + 1e-6f);
  }
  // Round half to even: with absmax 127 the step is 1; 2.5 → 2, 3.5 → 4, -0.5 → -0.
  const float t[] = {127.0f, 2.5f, 3.5f, -0.5f};
  float o[4];
  fake_quantize_token(t, o, 4, 8);
  CHECK(o[1] == 2.0f);
  CHECK(o[2] == 4.0f);
  CHECK(o[3] == 0.0f);
  // All-zero rows use the 1e-5 floor and stay zero.
  const float z[] = {0.0f, 0.0f};
  float zo[2] = {1, 1};
  fake_quantize_token(z, zo, 2, 8);
  CHECK(zo[0] == 0.0f);
  CHECK(zo[1] == 0.0f);
}

TEST_CASE("Llama: decode matches a naive reference forward (GQA, odd sizes)", "[model][forward]") {
  for (bool shared : {true, false}) {
    auto cfg = model_test::small_config();
    cfg.shared_classifier = shared;
    const auto w = model_test::random_weights(cfg, shared ? 3u : 4u);
    model_test::ReferenceLlama ref(w);
    const Llama model(model_test::random_weights(cfg, shared ? 3u : 4u));
    LlamaState st(cfg);
    const int tokens[] = {1, 5, 17, 36, 0, 22, 22, 9, 30, 2, 11, 4};
    for (std::size_t pos = 0; pos < std::size(tokens); ++pos) {
      const float* got = model.decode(tokens[pos], st);
      const auto want = ref.step(tokens[pos], pos);
      double worst = 0;
      for (std::size_t i = 0; i < cfg.vocab_size; ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
      INFO("shared " << shared << " pos " << pos);
      CHECK(worst < 2e-4);
    }
    CHECK(st.length() == std::size(tokens));
  }
}

TEST_CASE("Llama: prefill equals token-by-token decode; bad input throws", "[model][forward]") {
  const auto cfg = model_test::small_config();
  const Llama model(model_test::random_weights(cfg, 9));
  std::vector<int> toks(cfg.seq_len);
  for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int>((i * 7 + 3) % cfg.vocab_size);
  LlamaState a(cfg), b(cfg);
  sparq::Matrix<float> all(toks.size(), cfg.vocab_size);
  // Prefill in two chunks (the second continues from the cache) must equal decode.
  model.prefill(std::span<const int>(toks).first(13), a, all.view().rows_range(0, 13));
  model.prefill(std::span<const int>(toks).subspan(13), a, all.view().rows_range(13, toks.size() - 13));
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const float* d = model.decode(toks[i], b);
    CHECK(max_abs_diff(d, all.row(i), cfg.vocab_size) < 1e-5f);
  }
  LlamaState c(cfg);
  CHECK_THROWS_AS(model.decode(static_cast<int>(cfg.vocab_size), c), sparq::error);
  CHECK_THROWS_AS(model.decode(-1, c), sparq::error);
  CHECK_THROWS_AS(model.decode(1, a), sparq::error);  // cache full
  CHECK_THROWS_AS(LlamaState(cfg, cfg.seq_len + 1), sparq::error);
  sparq::Matrix<float> wrong(2, cfg.vocab_size);
  LlamaState d(cfg);
  CHECK_THROWS_AS(model.prefill(std::span<const int>(toks).first(5), d, wrong.view()), sparq::error);
}

TEST_CASE("Llama: LinearOps are replaceable; activation fake-quant hooks in", "[model][forward]") {
  const auto cfg = model_test::small_config();
  Llama model(model_test::random_weights(cfg, 21));
  const int toks[] = {1, 4, 8, 15, 16, 23, 33};
  auto run = [&](const Llama& m) {
    LlamaState st(cfg);
    sparq::Matrix<float> out(std::size(toks), cfg.vocab_size);
    m.prefill(toks, st, out.view());
    return out;
  };
  const auto base = run(model);
  CHECK(model.linear(0, Linear::wq).describe().find("view") != std::string::npos);
  CHECK(model.linear_weight_bytes() == 4 * 2 * (2 * 48 * 48 + 2 * 16 * 48 + 3 * 70 * 48));
  // An owning copy of the same weights gives identical logits.
  model.set_linear(1, Linear::w2, std::make_unique<DenseLinear>(model.weights().blocks[1].w2));
  CHECK(max_abs_diff(run(model).data(), base.data(), base.size()) == 0.0f);
  // Zeroing wo of block 0 through set_linear changes the output.
  model.set_linear(0, Linear::wo, std::make_unique<DenseLinear>(sparq::Matrix<float>(cfg.dim, cfg.dim)));
  CHECK(max_abs_diff(run(model).data(), base.data(), base.size()) > 1e-3f);
  model.reset_linear(0, Linear::wo);
  CHECK(max_abs_diff(run(model).data(), base.data(), base.size()) == 0.0f);
  // Editing the float weights + refresh_block is seen by the dense views.
  auto saved = model.block_weights(1).w1;
  model.block_weights(1).w1 = sparq::Matrix<float>(cfg.hidden_dim, cfg.dim);  // new buffer
  model.refresh_block(1);
  CHECK(max_abs_diff(run(model).data(), base.data(), base.size()) > 1e-3f);
  model.block_weights(1).w1 = saved;
  model.refresh_block(1);
  CHECK(max_abs_diff(run(model).data(), base.data(), base.size()) == 0.0f);
  model.block_weights(1).w1 = sparq::Matrix<float>(3, 3);
  CHECK_THROWS_AS(model.refresh_block(1), sparq::error);
  // take_linear on a block with a malformed matrix refuses and keeps the op it was asked for
  model.set_linear(1, Linear::wq, std::make_unique<DenseLinear>(sparq::Matrix<float>(cfg.dim, cfg.dim)));
  const LinearOp* installed = &model.linear(1, Linear::wq);
  CHECK_THROWS_AS((void)model.take_linear(1, Linear::wq), sparq::error);
  CHECK(&model.linear(1, Linear::wq) == installed);
  model.block_weights(1).w1 = sparq::Matrix<float>();  // an empty matrix under a dense view is not "released"
  CHECK_THROWS_AS(model.refresh_block(1), sparq::error);
  model.block_weights(1).w1 = saved;
  model.reset_linear(1, Linear::wq);
  CHECK(max_abs_diff(run(model).data(), base.data(), base.size()) == 0.0f);
  // Shape mismatch and null ops are rejected.
  CHECK_THROWS_AS(model.set_linear(0, Linear::wk, std::make_unique<DenseLinear>(sparq::Matrix<float>(48, 48))), sparq::error);
  CHECK_THROWS_AS(model.set_linear(0, Linear::wk, nullptr), sparq::error);
  CHECK_THROWS_AS(model.set_linear(9, Linear::wk, nullptr), sparq::error);
  // Input fake-quantization on every linear = the same model with quantized inputs: compare the
  // wrapped op with a brute-force product of the quantized input, and the whole model's output
  // moves a little but not much.
  for (std::size_t b = 0; b < cfg.n_layers; ++b) {
    for (Linear l : all_linears) model.set_linear(b, l, std::make_unique<InputQuantLinear>(model.take_linear(b, l), 8));
  }
  CHECK(model.linear(0, Linear::w1).describe().find("A8") != std::string::npos);
  const auto q = run(model);
  const float d = max_abs_diff(q.data(), base.data(), base.size());
  float scale = 0;
  for (std::size_t i = 0; i < base.size(); ++i) scale = std::max(scale, std::fabs(base.data()[i]));
  CHECK(d > 0.0f);
  CHECK(d < 0.1f * scale);  // 8-bit inputs: a small relative perturbation
  const auto& op = model.linear(1, Linear::w2);
  const auto x = sparq_test::randn(cfg.hidden_dim, 3, 1.0f);
  std::vector<float> xq(x.size()), y(cfg.dim);
  fake_quantize_token(x.data(), xq.data(), x.size(), 8);
  op.gemv(x.data(), y.data());
  const auto& w2 = model.weights().blocks[1].w2;
  for (std::size_t o = 0; o < cfg.dim; ++o) {
    double ref = 0;
    for (std::size_t k = 0; k < cfg.hidden_dim; ++k) ref += static_cast<double>(w2(o, k)) * xq[k];
    CHECK(y[o] == Approx(ref).margin(1e-4));
  }
  // q/k/v output quantization (attention BMM inputs) perturbs a little more; 0 restores.
  model.set_attention_input_bits(8);
  const auto qa = run(model);
  CHECK(max_abs_diff(qa.data(), q.data(), q.size()) > 0.0f);
  CHECK(max_abs_diff(qa.data(), base.data(), base.size()) < 0.1f * scale);
  model.set_attention_input_bits(0);
  CHECK(max_abs_diff(run(model).data(), q.data(), q.size()) == 0.0f);
  CHECK_THROWS_AS(model.set_attention_input_bits(1), sparq::error);
  CHECK_THROWS_AS(InputQuantLinear(nullptr, 8), sparq::error);
  CHECK_THROWS_AS(InputQuantLinear(std::make_unique<DenseLinear>(sparq::Matrix<float>(2, 2)), 1), sparq::error);
}

TEST_CASE("Llama: real model, 512-token prefill equals 512 decode steps", "[model][forward][real]") {
  const auto mpath = sparq_test::data_path("models/stories260K.bin");
  if (mpath.empty()) return;
  const Llama model(sparq::io::read_llama2c(mpath));
  const auto& cfg = model.config();
  REQUIRE(cfg.seq_len == 512);
  std::vector<int> toks(512);
  for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int>((i * 131 + 7) % cfg.vocab_size);
  toks[0] = 1;
  LlamaState a(cfg), b(cfg);
  sparq::Matrix<float> all(toks.size(), cfg.vocab_size);
  model.prefill(toks, a, all.view());
  float worst = 0;
  for (std::size_t i = 0; i < toks.size(); ++i) {
    worst = std::max(worst, max_abs_diff(model.decode(toks[i], b), all.row(i), cfg.vocab_size));
  }
  CHECK(worst < 1e-4f);
}

TEST_CASE("Llama: golden greedy generations of stories260K", "[model][forward][real][golden]") {
  const auto mpath = sparq_test::data_path("models/stories260K.bin");
  const auto tpath = sparq_test::data_path("models/tok512.bin");
  if (mpath.empty() || tpath.empty()) return;
  const Llama model(sparq::io::read_llama2c(mpath));
  const auto tok = Tokenizer::read_llama2c(tpath, model.config().vocab_size);
  Sampler greedy;
  // The sample published with the model (../shared/data/README.md), 256 steps from BOS.
  const std::string expected =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
      "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
      "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She "
      "said, \"I want to play with your ball, but I can't find it.\"\n"
      "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to "
      "do.\"\n"
      "Lily didn't want to help her mom, so she said, \"I'm sorry, mom. I didn't know what to do.\" "
      "Her mom said, \"Don't worry, Lily. We can help you.";
  const auto r = generate(model, tok, "", 256, greedy);
  CHECK(r.text == expected);
  CHECK(r.tokens.size() == 257);  // BOS + one token per step
  const auto z = generate(model, tok, "Zoo", 60, greedy);
  CHECK(z.text ==
        "Zoo was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
        "big, red ball. She wanted to play with it, but she didn't want to play with");
}

TEST_CASE("InputQuantLinear: nested decorators and reused per-thread buffers", "[model][inputquant]") {
  // A8 over A4 over a dense op: y = W · fq4(fq8(x)). The two levels must not share a buffer, and a
  // buffer grown by a large call must still give exact results for later small ones.
  const std::size_t in = 37, out = 5;
  const auto wv = sparq_test::randn(in * out, 11, 1.0f);
  sparq::Matrix<float> w(out, in);
  std::copy(wv.begin(), wv.end(), w.data());
  const InputQuantLinear op(std::make_unique<InputQuantLinear>(std::make_unique<DenseLinear>(w), 4), 8);
  auto reference = [&](const float* x, float* y) {
    std::vector<float> a(in), b(in);
    fake_quantize_token(x, a.data(), in, 8);
    fake_quantize_token(a.data(), b.data(), in, 4);
    for (std::size_t o = 0; o < out; ++o) {
      double s = 0;
      for (std::size_t k = 0; k < in; ++k) s += static_cast<double>(w(o, k)) * b[k];
      y[o] = static_cast<float>(s);
    }
  };
  const std::size_t tokens = 9;
  const auto xs = sparq_test::randn(tokens * in, 12, 2.0f);
  sparq::Matrix<float> Y(tokens, out);
  op.gemm(sparq::MatrixView<const float>(xs.data(), tokens, in), Y.view());  // grows the buffers
  std::vector<float> y(out), r(out);
  for (std::size_t t = 0; t < tokens; ++t) {
    op.gemv(xs.data() + t * in, y.data());
    reference(xs.data() + t * in, r.data());
    for (std::size_t o = 0; o < out; ++o) {
      CHECK(y[o] == Approx(r[o]).margin(1e-4));
      CHECK(Y(t, o) == Approx(r[o]).margin(1e-4));
    }
  }
  // The 4-bit level changes the result: the inner decorator really ran on its own copy.
  const InputQuantLinear only8(std::make_unique<DenseLinear>(w), 8);
  std::vector<float> y8(out);
  only8.gemv(xs.data(), y8.data());
  op.gemv(xs.data(), y.data());
  CHECK(max_abs_diff(y.data(), y8.data(), out) > 1e-3f);
}
