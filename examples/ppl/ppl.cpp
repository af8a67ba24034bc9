// sparq-ppl: perplexity of a Llama model on a text, with the protocol of docs/evaluation.md#perplexity.
#include <chrono>
#include <cstdio>
#include <string>

#include <sparq/io/load.hpp>
#include <sparq/model/perplexity.hpp>

#include "tool_cli.hpp"

int main(int argc, char** argv) {
  const std::string data = sparq_tools::data_dir(SPARQ_DATA_DIR);
  std::string model_path = data + "/models/stories260K.bin";
  std::string tok_path, text_path = data + "/text/tinystories_valid_head.txt";
  long long max_tokens = 60000, seq_len = 0, threads = 0, act_bits = -1, attn_bits = -1;

  sparq_tools::Cli cli("sparq-ppl",
                       "Perplexity: documents split on blank lines, trimmed, [BOS]+tokens, concatenated; the\n"
                       "first --max-tokens scored in non-overlapping windows of --seq-len, each from position 0.");
  cli.text("--model", "PATH", &model_path,
           "llama2.c checkpoint, GGUF, Hugging Face directory, or SPRQ file written by\n"
           "sparq-compress --out (packed kernels as stored) (default: <data>/models/stories260K.bin)")
      .text("--tokenizer", "PATH", &tok_path,
            "llama2.c tokenizer (default: the GGUF's / SPRQ file's own, else tok<vocab>.bin beside the model)")
      .text("--text", "PATH", &text_path, "evaluation text (default: <data>/text/tinystories_valid_head.txt)")
      .integer("--max-tokens", &max_tokens, 0, 1LL << 40, "tokens scored, 0 = all (default 60000)")
      .integer("--seq-len", &seq_len, 0, 1LL << 24, "window length, 0 = the model's seq_len (default 0)")
      .integer("--threads", &threads, 0, 4096, "OpenMP threads, 0 = default (default 0)")
      .integer("--act-bits", &act_bits, 0, 16,
               "fake-quantize every decoder linear's input per token to N bits, 0 or 2..16 (0 = float\n"
               "inputs; default: as the model file says: a GGUF written by sparq declares its activation\n"
               "bits, a SPRQ file's packed ops keep theirs, else float)")
      .integer("--attn-bits", &attn_bits, 0, 16,
               "fake-quantize the q/k/v outputs per token to N bits, 0 or 2..16 (0 = off; default: as the\n"
               "model file says, i.e. a SPRQ file's or sparq GGUF's own setting, else off)")
      .note("(data dir <data>: $SPARQ_DATA_DIR, else " + std::string(SPARQ_DATA_DIR) + ")");

  return sparq_tools::run(cli, argc, argv, [&] {
    if (act_bits == 1 || attn_bits == 1) throw sparq_tools::CliError{"--act-bits and --attn-bits must be 0 or 2..16"};
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
  });
}
