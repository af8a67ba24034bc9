// Perplexity evaluation with the protocol of docs/evaluation.md#perplexity (and ../shared/data/README.md).
//
// Token stream: the text is split into documents on blank lines ("\n\n"), each document is trimmed
// of surrounding white space, empty ones are skipped, each is encoded as [BOS] + encode(document)
// (dummy-prefix space, no EOS), and all are concatenated; the first `max_tokens` are kept.
// Scoring: consecutive non-overlapping windows of `seq_len` tokens (the last may be shorter); each
// window starts at position 0 with an empty cache and predicts its tokens 1..n−1 from their
// prefix. NLL of a token = logsumexp(logits) − logits[target] (in double); mean NLL is over all
// scored tokens; perplexity = exp(mean NLL). Windows are run with one prefill each and, when
// OpenMP is available, in parallel; per-window sums are added in window order, so the result does
// not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/llama_state.hpp"
#include "sparq/model/tokenizer.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sparq::model {

/// Splits `text` on "\n\n", trims white space, skips empty documents, returns [BOS]+tokens of every
/// document concatenated. With `max_tokens` > 0 the stream is cut to that length (documents past
/// it are not encoded).
[[nodiscard]] inline std::vector<int> document_token_stream(std::string_view text, const Tokenizer& tok,
                                                            std::size_t max_tokens = 0) {
  std::vector<int> stream;
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find("\n\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view doc = text.substr(start, end - start);
    while (!doc.empty() && is_space(doc.front())) doc.remove_prefix(1);
    while (!doc.empty() && is_space(doc.back())) doc.remove_suffix(1);
    if (!doc.empty()) {
      const auto ids = tok.encode(doc, true, false);
      stream.insert(stream.end(), ids.begin(), ids.end());
    }
    if (max_tokens && stream.size() >= max_tokens) {
      stream.resize(max_tokens);
      break;
    }
    if (end == text.size()) break;
    start = end + 2;
  }
  return stream;
}

/// Reads a text file and returns its document token stream (see document_token_stream).
[[nodiscard]] inline std::vector<int> document_token_stream_file(const std::string& path, const Tokenizer& tok,
                                                                 std::size_t max_tokens = 0) {
  const auto buf = sparq::detail::read_file(path);
  return document_token_stream(std::string_view(buf.data(), buf.size()), tok, max_tokens);
}

struct PerplexityOptions {
  std::size_t max_tokens = 60000;  ///< tokens of the stream scored (0: all)
  std::size_t seq_len = 0;         ///< window length (0: the model's seq_len)
  int threads = 0;                 ///< OpenMP threads (0: the OpenMP default; ignored without OpenMP)
};

struct PerplexityResult {
  double mean_nll = 0;             ///< nats per scored token
  double perplexity = 0;           ///< exp(mean_nll)
  std::size_t tokens = 0;          ///< tokens of the stream used
  std::size_t scored_tokens = 0;
  std::size_t windows = 0;
  std::size_t seq_len = 0;
};

/// NLL (nats) of `target` under `logits` (n values): logsumexp − logits[target], in double.
[[nodiscard]] inline double token_nll(const float* logits, std::size_t n, int target) noexcept {
  float mx = logits[0];
  for (std::size_t i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(logits[i]) - mx);
  return std::log(s) + mx - static_cast<double>(logits[static_cast<std::size_t>(target)]);
}

/// Scores `stream` with `model` (protocol above). Throws sparq::error on a bad window length or a
/// token outside the vocabulary.
[[nodiscard]] inline PerplexityResult perplexity(const Llama& model, std::span<const int> stream,
                                                 const PerplexityOptions& opt = {}) {
  const auto& c = model.config();
  const std::size_t L = opt.seq_len ? opt.seq_len : c.seq_len;
  SPARQ_CHECK(L >= 2 && L <= c.seq_len, "perplexity: window length ", L, ", expected 2..",
              c.seq_len, " (the model's seq_len)");
  const std::size_t n = opt.max_tokens ? std::min(opt.max_tokens, stream.size()) : stream.size();
  for (std::size_t i = 0; i < n; ++i) {
    SPARQ_CHECK(stream[i] >= 0 && static_cast<std::size_t>(stream[i]) < c.vocab_size,
                "perplexity: token ", stream[i], " at stream position ", i,
                " is outside the vocabulary 0..", c.vocab_size - 1);
  }
  PerplexityResult r;
  r.tokens = n;
  r.seq_len = L;
  r.windows = (n + L - 1) / L;
  std::vector<double> nll(r.windows, 0.0);
  const auto nwin = static_cast<long long>(r.windows);
#if defined(_OPENMP)
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads)
#endif
  {
    LlamaState st(c, L);
    Matrix<float> logits(L, c.vocab_size);
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
    for (long long w = 0; w < nwin; ++w) {
      const std::size_t s0 = static_cast<std::size_t>(w) * L;
      const std::size_t len = std::min(L, n - s0);
      st.reset();
      auto out = logits.view().rows_range(0, len);
      model.prefill(stream.subspan(s0, len), st, out);
      double sum = 0;
      for (std::size_t i = 0; i + 1 < len; ++i) sum += token_nll(out.row(i), c.vocab_size, stream[s0 + i + 1]);
      nll[static_cast<std::size_t>(w)] = sum;
    }
  }
  double total = 0;
  for (std::size_t w = 0; w < r.windows; ++w) {
    total += nll[w];
    const std::size_t len = std::min(L, n - w * L);
    r.scored_tokens += len > 0 ? len - 1 : 0;
  }
  SPARQ_CHECK(r.scored_tokens > 0, "perplexity: no token to score (", n, " tokens in the stream)");
  r.mean_nll = total / static_cast<double>(r.scored_tokens);
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

}  // namespace sparq::model
