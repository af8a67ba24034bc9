// io::load on GGUF: the golden generation and perplexity from the .gguf, and a sparq-written Q8_0 GGUF.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "sparq/io/load.hpp"
#include "sparq/model/generate.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq_test.hpp"

using namespace sparq;

namespace {
model::PerplexityResult ppl_512(const model::Llama& m, const model::Tokenizer& tok, const std::string& text) {
  const auto stream = model::document_token_stream_file(text, tok, 60000);
  model::PerplexityOptions o;
  o.seq_len = 512;  // the protocol's window (the GGUF's context_length metadata says 2048)
#if defined(__SANITIZE_ADDRESS__)
  o.max_tokens = 1024;  // -O1 + ASan: two windows; Release checks the full figure
#endif
  return model::perplexity(m, stream, o);
}
}  // namespace

TEST_CASE("io::load reads stories260K.gguf with its own vocabulary: golden outputs", "[io][load][gguf][real][golden]") {
  const auto gpath = sparq_test::data_path("models/stories260K.gguf");
  const auto text = sparq_test::data_path("text/tinystories_valid_head.txt");
  if (gpath.empty() || text.empty()) return;
  auto lm = io::load(gpath);
  REQUIRE(lm.format == "gguf");
  REQUIRE(lm.tokenizer_source == "gguf vocabulary");
  model::Sampler greedy;
  const auto z = model::generate(lm.model, lm.tokenizer, "Zoo", 60, greedy);
  CHECK(z.text ==
        "Zoo was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
        "big, red ball. She wanted to play with it, but she didn't want to play with");
  const auto r = model::generate(lm.model, lm.tokenizer, "", 256, greedy);
  // The sample published with the model (../shared/data/README.md), 256 steps from BOS.
  CHECK(r.text ==
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
        "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
        "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She "
        "said, \"I want to play with your ball, but I can't find it.\"\n"
        "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to "
        "do.\"\n"
        "Lily didn't want to help her mom, so she said, \"I'm sorry, mom. I didn't know what to do.\" "
        "Her mom said, \"Don't worry, Lily. We can help you.");
  const auto p = ppl_512(lm.model, lm.tokenizer, text);
#if !defined(__SANITIZE_ADDRESS__)
  CHECK(p.scored_tokens == 59882);
  CHECK(std::fabs(p.mean_nll - 1.3986) < 0.0005);
  CHECK(std::fabs(p.perplexity - 4.0494) < 0.0005);
#endif
  WARN("stories260K.gguf: mean NLL " << p.mean_nll << ", ppl " << p.perplexity);
}

TEST_CASE("A Q8_0 GGUF written by sparq reloads within 0.5% of float perplexity", "[io][load][gguf][real]") {
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  const auto gpath = sparq_test::data_path("models/stories260K.gguf");
  const auto text = sparq_test::data_path("text/tinystories_valid_head.txt");
  if (bpath.empty() || gpath.empty() || text.empty()) return;
  const auto g = io::read_gguf_llama(gpath);
  io::GgufLlamaWriteOptions opt;
  opt.linear_type = io::GgmlType::Q8_0;
  opt.embedding_type = io::GgmlType::Q8_0;
  opt.fallback_type = io::GgmlType::F16;  // ffn_down rows (172) are not a multiple of 32
  const std::string out =
      (std::filesystem::temp_directory_path() / ("sparq-q8-" + std::to_string(::getpid()) + ".gguf")).string();
  io::write_gguf_llama(out, g.weights, &g.vocab, opt);
  auto q8 = io::load(out);
  std::remove(out.c_str());
  auto f32 = io::load(gpath);
  const auto pq = ppl_512(q8.model, q8.tokenizer, text);
  const auto pf = ppl_512(f32.model, f32.tokenizer, text);
  CHECK(pq.perplexity != pf.perplexity);  // the weights really are quantized
  CHECK(std::fabs(pq.perplexity / pf.perplexity - 1.0) < 0.005);
  WARN("Q8_0 GGUF ppl " << pq.perplexity << " vs F32 " << pf.perplexity);
}

TEST_CASE("io::load errors name the file", "[io][load][errors]") {
  REQUIRE_THROWS_WITH(io::load("/nonexistent/m.bin"), Catch::Contains("/nonexistent/m.bin"));
  const auto bpath = sparq_test::data_path("models/stories260K.bin");
  if (bpath.empty()) return;
  REQUIRE_THROWS_WITH(io::load(bpath, "/nonexistent/tok.bin"), Catch::Contains("tok.bin"));
  auto lm = io::load(bpath);
  REQUIRE(lm.format == "llama2c");
  REQUIRE(lm.tokenizer.vocab_size() == 512);
}
