// sparq-generate: generates text from a Llama model (greedy, or temperature/top-p sampling with a seed).
#include <cstdint>
#include <cstdio>
#include <string>

#include <sparq/io/load.hpp>
#include <sparq/model/generate.hpp>

#include "tool_cli.hpp"

int main(int argc, char** argv) {
  const std::string data = sparq_tools::data_dir(SPARQ_DATA_DIR);
  std::string model_path = data + "/models/stories260K.bin";
  std::string tok_path, prompt;
  long long steps = 256, seed = 42;
  double temperature = 0, top_p = 0.9;

  sparq_tools::Cli cli("sparq-generate",
                       "Generates text with llama2.c 'run' semantics (steps include the prompt positions,\n"
                       "generation stops at BOS).");
  cli.text("--model", "PATH", &model_path,
           "llama2.c checkpoint, GGUF, Hugging Face directory or SPRQ file from sparq-compress --out\n"
           "(default: <data>/models/stories260K.bin)")
      .text("--tokenizer", "PATH", &tok_path, "llama2.c tokenizer (default: the model file's own, else tok<vocab>.bin beside it)")
      .text("--prompt", "TEXT", &prompt, "prompt (default: empty, i.e. start from BOS)", true)
      .integer("--steps", &steps, 1, 1LL << 30, "positions to run, prompt included (default 256, at most seq_len)")
      .number("--temperature", &temperature, 0, 1e6, "0 = greedy argmax (default 0)")
      .number("--top-p", &top_p, 1e-9, 1, "nucleus sampling mass in (0, 1] (default 0.9; used when the temperature > 0)")
      .integer("--seed", &seed, 0, (1LL << 62), "sampling seed (default 42)")
      .note("(data dir <data>: $SPARQ_DATA_DIR, else " + std::string(SPARQ_DATA_DIR) + ")");

  return sparq_tools::run(cli, argc, argv, [&] {
    const auto loaded = sparq::io::load(model_path, tok_path);  // GGUF: its own vocabulary unless --tokenizer
    const auto& model = loaded.model;
    const auto& tok = loaded.tokenizer;
    sparq::model::Sampler sampler(static_cast<float>(temperature), temperature > 0 ? static_cast<float>(top_p) : 1.0f,
                                  static_cast<std::uint64_t>(seed));
    const auto r = sparq::model::generate(model, tok, prompt, static_cast<std::size_t>(steps), sampler,
                                          [](const std::string& piece) {
                                            // Like llama2.c's safe_printf: skip lone control bytes.
                                            if (piece.size() == 1) {
                                              const auto c = static_cast<unsigned char>(piece[0]);
                                              if (c < 32 && c != '\n' && c != '\t' && c != '\r') return;
                                            }
                                            std::fputs(piece.c_str(), stdout);
                                            std::fflush(stdout);
                                          });
    std::printf("\n");
    std::fprintf(stderr, "%zu tokens (%zu from the prompt incl. BOS)\n", r.tokens.size(), r.prompt_tokens);
    return 0;
  });
}
