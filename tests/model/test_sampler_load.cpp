// Sampler (greedy, seeded temperature/top-p) and the model/tokenizer loading entry points.
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "sparq/io/load.hpp"
#include "sparq/model/sampler.hpp"
#include "sparq_test.hpp"

using namespace sparq::model;
using sparq::io::default_tokenizer_path;
using sparq::io::is_gguf_file;
using sparq::io::load_model;
using sparq::io::load_tokenizer;

TEST_CASE("Sampler: argmax, seeded determinism, top-p and the sampled distribution", "[model][sampler]") {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f, 1.0f};
  Sampler greedy;
  CHECK(greedy.sample(logits.data(), logits.size()) == 1);  // first of equal maxima
  Sampler a(1.0f, 1.0f, 5), b(1.0f, 1.0f, 5);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < 20000; ++i) {
    const int x = a.sample(logits.data(), logits.size());
    CHECK(x == b.sample(logits.data(), logits.size()));
    ++counts[static_cast<std::size_t>(x)];
  }
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double p = std::exp(static_cast<double>(logits[i])) / z;
    CHECK(std::fabs(counts[i] / 20000.0 - p) < 0.015);
  }
  // A tiny top-p keeps only the most probable token (the first of the tied pair after a stable sort).
  Sampler nucleus(1.0f, 0.01f, 9);
  for (int i = 0; i < 100; ++i) CHECK(nucleus.sample(logits.data(), logits.size()) == 1);
  // top-p 0.8 keeps {1, 3, 4} (mass 0.38 + 0.38 + 0.14 ≥ 0.8): never tokens 0 or 2.
  Sampler p8(1.0f, 0.8f, 3);
  for (int i = 0; i < 2000; ++i) {
    const int x = p8.sample(logits.data(), logits.size());
    CHECK((x == 1 || x == 3 || x == 4));
  }
  CHECK_THROWS_AS(Sampler(-1.0f), sparq::error);
  CHECK_THROWS_AS(Sampler(1.0f, 0.0f), sparq::error);
  CHECK_THROWS_AS(Sampler(1.0f, 1.5f), sparq::error);
}

TEST_CASE("load_model / load_tokenizer: llama2.c and GGUF files, clear errors", "[model][load][real]") {
  CHECK(default_tokenizer_path("/a/b/stories260K.bin", 512) == "/a/b/tok512.bin");
  CHECK_THROWS_AS(load_model("/nonexistent/model.bin"), sparq::error);
  const auto mpath = sparq_test::data_path("models/stories260K.bin");
  const auto gpath = sparq_test::data_path("models/stories260K.gguf");
  if (mpath.empty() || gpath.empty()) return;
  const auto m = load_model(mpath);
  CHECK(m.config().n_layers == 5);
  CHECK(m.config().n_kv_heads == 4);
  const auto tok = load_tokenizer(default_tokenizer_path(mpath, m.config().vocab_size), m);
  CHECK(tok.vocab_size() == 512);
  CHECK(is_gguf_file(gpath));
  CHECK_FALSE(is_gguf_file(mpath));
  CHECK(load_model(gpath).config().n_layers == 5);  // GGUF loads too (io/load.hpp)
}
