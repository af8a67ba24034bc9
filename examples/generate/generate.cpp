// sparq-generate: generates text from a Llama model (greedy, or temperature/top-p sampling with a seed).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <sparq/model/generate.hpp>
#include <sparq/io/load.hpp>

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: sparq-generate [options]\n"
               "  Generates text with llama2.c 'run' semantics (steps include the prompt positions,\n"
               "  generation stops at BOS).\n"
               "options:\n"
               "  --model PATH        llama2.c checkpoint, GGUF or SPRQ file from sparq-compress --out (default: $SPARQ_DATA_DIR\n"
               "                      or the build's data dir, /models/stories260K.bin)\n"
               "  --tokenizer PATH    llama2.c tokenizer (default: tok<vocab>.bin beside the model)\n"
               "  --prompt TEXT       prompt (default: empty, i.e. start from BOS)\n"
               "  --steps N           positions to run, prompt included (default 256, at most seq_len)\n"
               "  --temperature T     0 = greedy argmax (default 0)\n"
               "  --top-p P           nucleus sampling mass in (0, 1] (default 0.9; used when T > 0)\n"
               "  --seed S            sampling seed (default 42)\n"
               "  --help              this text\n");
}

bool parse_num(const char* s, double& v) {
  char* end = nullptr;
  v = std::strtod(s, &end);
  return end != s && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) try {
  const char* env = std::getenv("SPARQ_DATA_DIR");  // run-time override of the build's data dir
  const std::string data = env && *env ? env : SPARQ_DATA_DIR;
  std::string model_path = data + "/models/stories260K.bin";
  std::string tok_path, prompt;
  double steps = 256, temperature = 0, top_p = 0.9, seed = 42;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    }
    const bool has_value = i + 1 < argc;
    double* num = a == "--steps" ? &steps : a == "--temperature" ? &temperature : a == "--top-p" ? &top_p
                : a == "--seed" ? &seed : nullptr;
    if (num && has_value) {
      if (!parse_num(argv[++i], *num)) {
        std::fprintf(stderr, "sparq-generate: %s expects a number, got '%s'\n", a.c_str(), argv[i]);
        return 2;
      }
    } else if (a == "--model" && has_value) {
      model_path = argv[++i];
    } else if (a == "--tokenizer" && has_value) {
      tok_path = argv[++i];
    } else if (a == "--prompt" && has_value) {
      prompt = argv[++i];
    } else {
      std::fprintf(stderr, "sparq-generate: unknown or incomplete argument '%s'\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (steps < 1 || steps > 1e9 || temperature < 0 || !(top_p > 0 && top_p <= 1) || seed < 0) {
    std::fprintf(stderr, "sparq-generate: need --steps >= 1, --temperature >= 0, --top-p in (0, 1], --seed >= 0\n");
    return 2;
  }
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
} catch (const std::exception& e) {
  std::fprintf(stderr, "sparq-generate: %s\n", e.what());
  return 1;
}
