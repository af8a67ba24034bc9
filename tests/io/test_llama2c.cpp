// llama2.c checkpoint reader/writer on the real stories260K model, plus hostile inputs.
#include <cstring>
#include <vector>

#include "sparq/io/llama2c.hpp"
#include "sparq_test.hpp"

TEST_CASE("llama2.c reader loads stories260K with the documented shapes", "[io][llama2c][real]") {
  const auto path = sparq_test::data_path("models/stories260K.bin");
  if (path.empty()) return;
  const auto w = sparq::io::read_llama2c(path);
  const auto& c = w.config;
  REQUIRE(c.dim == 64);
  REQUIRE(c.hidden_dim == 172);
  REQUIRE(c.n_layers == 5);
  REQUIRE(c.n_heads == 8);
  REQUIRE(c.n_kv_heads == 4);
  REQUIRE(c.vocab_size == 512);
  REQUIRE(c.seq_len == 512);
  REQUIRE(c.shared_classifier);
  REQUIRE(w.blocks[4].wk.rows() == 32);
  REQUIRE(w.blocks[4].w2.cols() == 172);
  // 264,128 floats after the header, of which 2 * 512 * 4 are the legacy RoPE tables.
  REQUIRE(w.parameter_count() + 2 * 512 * 4 == 264128);
  // The RMSNorm weights of a trained model are not all zero (i.e. we read at the right offsets).
  float s = 0;
  for (float v : w.rms_final) s += v;
  REQUIRE(s > 1.0f);

  // Round trip: serialise and parse again gives identical tensors.
  const auto bytes = sparq::io::serialize_llama2c(w);
  REQUIRE(bytes.size() == 28 + 264128 * 4);
  const auto w2 = sparq::io::parse_llama2c(bytes.data(), bytes.size());
  REQUIRE(w2.token_embedding.storage() == w.token_embedding.storage());
  for (std::size_t l = 0; l < 5; ++l)
    for (auto lin : sparq::model::all_linears)
      REQUIRE(w2.blocks[l].linear(lin).storage() == w.blocks[l].linear(lin).storage());
  // Everything but the recomputed RoPE tables is byte-identical to the original file.
  const auto orig = sparq::io::detail::read_file(path);
  const std::size_t rope_bytes = 2 * 512 * 4 * 4;
  REQUIRE(std::memcmp(orig.data(), bytes.data(), orig.size() - rope_bytes) == 0);
}

TEST_CASE("llama2.c reader: a header whose byte count wraps past 2^64 is an error, not a huge allocation",
          "[io][llama2c][errors]") {
  // dim 16,755,764 (one head), hidden 62,710, 4,095 layers, vocab 11,628, seq_len 1: the exact count
  // 28 + 4 * floats is 2^64 + 1,852, so a 1,852-byte file used to pass the size check and then ask
  // for a 780 GB embedding (std::bad_alloc, not sparq::error).
  const std::int32_t h[7] = {16755764, 62710, 4095, 1, 1, 11628, 1};
  std::vector<char> file(1852, 0);
  std::memcpy(file.data(), h, sizeof h);
  REQUIRE_THROWS_WITH(sparq::io::parse_llama2c(file.data(), file.size()), Catch::Contains("implies") &&
                                                                             Catch::Contains("the file has 1852"));
}

TEST_CASE("llama2.c reader rejects truncated, padded and inconsistent files", "[io][llama2c][errors]") {
  const auto path = sparq_test::data_path("models/stories260K.bin");
  if (path.empty()) return;
  const auto orig = sparq::io::detail::read_file(path);
  REQUIRE_THROWS_WITH(sparq::io::parse_llama2c(orig.data(), 10), Catch::Contains("too short"));
  for (std::size_t cut : {std::size_t{28}, std::size_t{1000}, orig.size() - 1}) {
    REQUIRE_THROWS_WITH(sparq::io::parse_llama2c(orig.data(), cut), Catch::Contains("implies"));
  }
  auto padded = orig;
  padded.push_back(0);
  REQUIRE_THROWS_AS(sparq::io::parse_llama2c(padded.data(), padded.size()), sparq::error);
  // Corrupt every header field in turn: each either fails validation or the size check.
  for (int field = 0; field < 7; ++field) {
    for (std::int32_t bad : {0, -1, 3, 1 << 30}) {
      auto copy = orig;
      std::memcpy(copy.data() + 4 * field, &bad, 4);
      if (field == 5 && (bad == -1 || bad == 3)) {
        // vocab -1/3 parses as a header but cannot match the size
      }
      REQUIRE_THROWS_AS(sparq::io::parse_llama2c(copy.data(), copy.size()), sparq::error);
    }
  }
  // n_heads that does not divide dim is named in the message.
  auto copy = orig;
  const std::int32_t heads = 7;
  std::memcpy(copy.data() + 12, &heads, 4);
  REQUIRE_THROWS_WITH(sparq::io::parse_llama2c(copy.data(), copy.size()), Catch::Contains("n_heads = 7"));
  // A NaN weight is reported with its block and linear.
  copy = orig;
  const float nan = NAN;
  const std::size_t wq_block1 = 28 + 4 * (512 * 64 + 5 * 64 + 64 * 64 + 3);
  std::memcpy(copy.data() + wq_block1, &nan, 4);
  REQUIRE_THROWS_WITH(sparq::io::parse_llama2c(copy.data(), copy.size()),
                      Catch::Contains("block 1 wq") && Catch::Contains("non-finite"));
  REQUIRE_THROWS_WITH(sparq::io::read_llama2c("/nonexistent/x.bin"), Catch::Contains("cannot open"));
}
