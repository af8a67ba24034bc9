// generate(): llama2.c `run`-style text generation over a model::Llama.
//
// Semantics (llama2.c's generate loop): the prompt is encoded with BOS (no EOS); for
// pos = 0 .. steps−1 the current token is fed at position pos; while the prompt is not exhausted
// the next token is the next prompt token (forced), afterwards it is sampled from the logits;
// generation stops early when the next token is BOS. The returned text is the decoded pieces of
// every token after BOS, prompt included (so `steps` counts prompt positions too).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/llama_state.hpp"
#include "sparq/model/sampler.hpp"
#include "sparq/model/tokenizer.hpp"

namespace sparq::model {

struct GenerateResult {
  std::string text;          ///< decoded output (prompt included, BOS excluded)
  std::vector<int> tokens;   ///< BOS, prompt and generated tokens
  std::size_t prompt_tokens = 0;  ///< including BOS
};

/// Generates from `prompt` for at most `steps` positions (clamped to the model's seq_len).
/// `on_piece`, when given, receives each decoded piece as soon as it is produced.
inline GenerateResult generate(const Llama& model, const Tokenizer& tok, std::string_view prompt,
                               std::size_t steps, Sampler& sampler,
                               const std::function<void(const std::string&)>& on_piece = {}) {
  const auto& c = model.config();
  SPARQ_CHECK(tok.vocab_size() == c.vocab_size, "generate: tokenizer has ", tok.vocab_size(),
              " tokens, the model's vocab_size is ", c.vocab_size);
  GenerateResult r;
  const std::vector<int> p = tok.encode(prompt, true, false);
  r.prompt_tokens = p.size();
  steps = std::min(steps, c.seq_len);
  LlamaState st(c);
  int token = p[0];
  r.tokens.push_back(token);
  for (std::size_t pos = 0; pos < steps; ++pos) {
    const float* logits = model.decode(token, st);
    const int next = pos + 1 < p.size() ? p[pos + 1] : sampler.sample(logits, c.vocab_size);
    if (next == tok.bos_id()) break;
    const std::string piece = tok.decode(token, next);
    r.text += piece;
    if (on_piece) on_piece(piece);
    r.tokens.push_back(next);
    token = next;
  }
  return r;
}

}  // namespace sparq::model
