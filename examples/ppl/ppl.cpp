// sparq-ppl: perplexity of a Llama model on a text, with the protocol of docs/evaluation.md#perplexity.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <sparq/io/load.hpp>
#include <sparq/model/perplexity.hpp>

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: sparq-ppl [options]\n"
               "  Perplexity: documents split on blank lines, trimmed, [BOS]+tokens, concatenated; the\n"
               "  first --max-tokens scored in non-overlapping windows of --seq-len, each from position 0.\n"
               "options:\n"
               "  --model PATH       llama2.c checkpoint, GGUF, or SPRQ file written by sparq-compress --out (packed\n"
               "                     kernels as stored) (default: $SPARQ_DATA_DIR or the build's data dir, /models/stories260K.bin)\n"
               "  --tokenizer PATH   llama2.c tokenizer (default: the GGUF's / SPRQ file's own, else tok<vocab>.bin beside the model)\n"
               "  --text PATH        evaluation text (default: $SPARQ_DATA_DIR or the build's data dir, /text/tinystories_valid_head.txt)\n"
               "  --max-tokens N     tokens scored, 0 = all (default 60000)\n"
               "  --seq-len N        window length, 0 = the model's seq_len (default 0)\n"
               "  --threads N        OpenMP threads, 0 = default (default 0)\n"
               "  --act-bits N       fake-quantize every decoder linear's input per token to N bits (0 = float inputs;\n"
               "                     default: as the model file says: a GGUF written by sparq declares its\n"
               "                     activation bits, a SPRQ file's packed ops keep theirs, else float)\n"
               "  --attn-bits N      fake-quantize the q/k/v outputs per token to N bits (0 = off; default: as the\n"
               "                     model file says, i.e. a SPRQ file's or sparq GGUF's own setting, else off)\n"
               "  --help             this text\n");
}

bool parse_size(const char* s, long long& v) {
  char* end = nullptr;
  v = std::strtoll(s, &end, 10);
  return end != s && *end == '\0' && v >= 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const char* env = std::getenv("SPARQ_DATA_DIR");  // run-time override of the build's data dir
  const std::string data = env && *env ? env : SPARQ_DATA_DIR;
  std::string model_path = data + "/models/stories260K.bin";
  std::string tok_path, text_path = data + "/text/tinystories_valid_head.txt";
  long long max_tokens = 60000, seq_len = 0, threads = 0, act_bits = -1, attn_bits = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    }
    const bool has_value = i + 1 < argc;
    long long* num = a == "--max-tokens" ? &max_tokens : a == "--seq-len" ? &seq_len
                   : a == "--threads" ? &threads : a == "--act-bits" ? &act_bits
                   : a == "--attn-bits" ? &attn_bits : nullptr;
    if (num && has_value) {
      if (!parse_size(argv[++i], *num)) {
        std::fprintf(stderr, "sparq-ppl: %s expects a non-negative integer, got '%s'\n", a.c_str(), argv[i]);
        return 2;
      }
    } else if (a == "--model" && has_value) {
      model_path = argv[++i];
    } else if (a == "--tokenizer" && has_value) {
      tok_path = argv[++i];
    } else if (a == "--text" && has_value) {
      text_path = argv[++i];
    } else {
      std::fprintf(stderr, "sparq-ppl: unknown or incomplete argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if ((act_bits > 0 && (act_bits < 2 || act_bits > 16)) || (attn_bits > 0 && (attn_bits < 2 || attn_bits > 16))) {
    std::fprintf(stderr, "sparq-ppl: --act-bits and --attn-bits must be 0 or 2..16\n");
    return 2;
  }
  // GGUF: its own vocabulary unless --tokenizer; a sparq GGUF's declared activation bits unless --act-bits.
  auto loaded = sparq::io::load(model_path, tok_path,
                                act_bits < 0 ? sparq::io::StoredActivations::apply : sparq::io::StoredActivations::ignore);
  auto& model = loaded.model;
  if (act_bits < 0) {
    act_bits = loaded.stored_activation_bits;  // as the file says (0 for other formats)
  } else {
    // Linear inputs as asked; the q/k/v outputs stay as the file says unless --attn-bits.
    const int attn_file = loaded.format == "gguf" ? loaded.stored_attention_bits : model.attention_input_bits();
    sparq::io::apply_activation_bits(model, static_cast<int>(act_bits), attn_file);
  }
  if (attn_bits >= 0) model.set_attention_input_bits(static_cast<int>(attn_bits));
  attn_bits = model.attention_input_bits();
  const auto& tok = loaded.tokenizer;
  const auto t0 = std::chrono::steady_clock::now();
  const auto stream = sparq::model::document_token_stream_file(text_path, tok, static_cast<std::size_t>(max_tokens));
  sparq::model::PerplexityOptions opt;
  opt.max_tokens = static_cast<std::size_t>(max_tokens);
  opt.seq_len = static_cast<std::size_t>(seq_len);
  opt.threads = static_cast<int>(threads);
  const auto r = sparq::model::perplexity(model, stream, opt);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("model %s (%s; tokenizer: %s)\ntext %s\n", model_path.c_str(), loaded.format.c_str(),
              loaded.tokenizer_source.c_str(), text_path.c_str());
  std::printf("activation bits %lld (linear inputs), %lld (q/k/v outputs); 0 = float%s\n", act_bits, attn_bits,
              loaded.format == "sprq" ? " (a SPRQ file's packed ops run their stored activation mode)" : "");
  std::printf("tokens %zu, windows %zu of %zu, scored %zu\n", r.tokens, r.windows, r.seq_len, r.scored_tokens);
  std::printf("mean NLL %.5f nats/token, perplexity %.5f\n", r.mean_nll, r.perplexity);
  std::printf("time %.2f s (%.0f tokens/s)\n", secs, static_cast<double>(r.tokens) / secs);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sparq-ppl: %s\n", e.what());
  return 1;
}
