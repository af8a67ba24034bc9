// Shared fixture of the joint/ tests: stories260K weights, tokenizer, calibration and evaluation streams (loaded once).
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "sparq/io/llama2c.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/model/tokenizer.hpp"
#include "sparq_test.hpp"

namespace joint_test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

struct Data {
  sparq::model::LlamaWeights weights;
  std::vector<int> calib;  ///< calibration stream (first 40,000 tokens of the train head)
  std::vector<int> eval;   ///< evaluation stream (first 60,000 tokens of the valid head)
};

/// nullptr when the data is missing (sparq_test::data_path fails in CI, warns otherwise).
inline const Data* data() {
  static const std::unique_ptr<Data> d = [] {
    const auto m = sparq_test::data_path("models/stories260K.bin");
    const auto t = sparq_test::data_path("models/tok512.bin");
    const auto tr = sparq_test::data_path("text/tinystories_train_head.txt");
    const auto va = sparq_test::data_path("text/tinystories_valid_head.txt");
    if (m.empty() || t.empty() || tr.empty() || va.empty()) return std::unique_ptr<Data>();
    auto p = std::make_unique<Data>();
    p->weights = sparq::io::read_llama2c(m);
    const auto tok = sparq::model::Tokenizer::read_llama2c(t, p->weights.config.vocab_size);
    p->calib = sparq::model::document_token_stream_file(tr, tok, 40000);
    p->eval = sparq::model::document_token_stream_file(va, tok, 60000);
    return p;
  }();
  return d.get();
}

inline sparq::model::Llama fresh_model(const Data& d) { return sparq::model::Llama(sparq::model::LlamaWeights(d.weights)); }

/// True when every block weight and norm of a and b is bit-identical.
inline bool same_weights(const sparq::model::Llama& a, const sparq::model::Llama& b) {
  for (std::size_t blk = 0; blk < a.config().n_layers; ++blk) {
    const auto& x = a.weights().blocks[blk];
    const auto& y = b.weights().blocks[blk];
    for (auto l : sparq::model::all_linears)
      if (std::memcmp(x.linear(l).data(), y.linear(l).data(), x.linear(l).size() * sizeof(float)) != 0) return false;
    if (x.rms_att != y.rms_att || x.rms_ffn != y.rms_ffn) return false;
  }
  return true;
}

}  // namespace joint_test
