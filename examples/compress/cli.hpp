// sparq-compress command line: options, defaults, validation (errors name the value and what was expected).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace sparq_compress {

struct Args {
  std::string model, tokenizer, calib, eval, json, out, recipe = "compare";
  std::string target;              ///< kernel target ("" = $SPARQ_TARGET, else the best the CPU runs)
  long long nsamples = 32, seqlen = 256, max_tokens = 60000;
  long long calib_seed = -1;       ///< -1: first consecutive windows; else seeded random starts
  double sparsity = 0.5;
  int wbits = 8, abits = 8;        ///< abits 32 = float activations (weight-only quantization)
  long long group = 0;             ///< weight group size, 0 = per output channel
  long long sa_steps = 12;         ///< simulated-annealing steps per searched row
  long long sa_seed = 0;
  long long sa_tokens = 4096;      ///< held-out calibration tokens scoring each SA step
  std::string edit_choices;        ///< "" = the paper's {0, 4e-5, 5e-5, 6e-5, 7e-5}
  bool real = true;                ///< also evaluate through the packed kernels
  bool search = false;             ///< --search: SA over the editing vector for a recipe string
};

inline void usage(std::FILE* out, const char* data_dir) {
  std::fprintf(out,
      "usage: sparq-compress [options]\n"
      "  Compresses a Llama model with a recipe (layer-wise, error propagation), evaluates perplexity\n"
      "  with fake quantization and through the packed integer / sparse kernels, and prints one row per\n"
      "  method: sparsity, bits, stored weight bytes, MACs, perplexity, times.\n"
      "options:\n"
      "  --model PATH       llama2.c or GGUF model (default: <data>/models/stories260K.bin)\n"
      "  --tokenizer PATH   llama2.c tokenizer (default: tok<vocab>.bin beside the model / GGUF vocab)\n"
      "  --calib PATH       calibration text (default: <data>/text/tinystories_train_head.txt)\n"
      "  --eval PATH        evaluation text (default: <data>/text/tinystories_valid_head.txt)\n"
      "  --nsamples N       calibration windows (default 32)\n"
      "  --seqlen N         tokens per calibration window (default 256)\n"
      "  --seed S           random calibration window starts (default: first consecutive windows)\n"
      "  --max-tokens N     evaluation tokens, 0 = all (default 60000)\n"
      "  --recipe R         'compare' (default: the paper's table), 'compare-lorc' (W4 g128, SAR+W8 and JSQ,\n"
      "                     each without and with LoRC rank 8), a named recipe (+ '+lorc' appends LoRC r8 int8),\n"
      "                     or a recipe string such as 'edit,sar:0.5,smooth:0.5,w8a8' or 'w4g128,lorc:8,a0'\n"
      "                     (grammar: include/sparq/joint/recipe.hpp, docs/jsq.md)\n"
      "  --sparsity S       sparsity of the compare rows and named recipes, in [0, 1) (default 0.5)\n"
      "  --wbits B          weight bits of the quantizing compare rows and named recipes: 4 or 8 (default 8)\n"
      "  --abits B          activation bits: 8, 16 or 32 (= float) (default 8)\n"
      "  --group G          weight group size (0 = per output channel, default 0)\n"
      "  --sa-steps N       simulated-annealing steps of each searched JSQ row (default 12)\n"
      "  --sa-seed S        SA seed (default 0)\n"
      "  --sa-tokens N      held-out calibration tokens scoring each SA step (default 4096)\n"
      "  --edit-choices L   comma-separated editing strengths searched (default 0,4e-5,5e-5,6e-5,7e-5)\n"
      "  --search           search the editing vector (SA) for a recipe string starting with 'edit'\n"
      "                     (the named jsq, jsq-nosar, jsq-2:4, jsq-4:8 search by default)\n"
      "  --no-real          skip the real-kernel evaluation (fake quantization only)\n"
      "  --out PATH         write the compressed model (single recipe only)\n"
      "  --json PATH        also write the rows and the protocol as JSON\n"
      "  --target T         kernel target: auto (default: the best this CPU runs; or $SPARQ_TARGET), sse2,\n"
      "                     avx2, avx512, avx512vnni, neon (compression results do not depend on it)\n"
      "  --help             this text\n"
      "  (data dir <data>: $SPARQ_DATA_DIR, else %s)\n",
      data_dir);
}

struct ArgError {
  std::string msg;
};

namespace detail {
inline long long parse_int(const std::string& k, const char* v, long long lo) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0' || x < lo)
    throw ArgError{k + " expects an integer >= " + std::to_string(lo) + ", got '" + v + "'"};
  return x;
}
}  // namespace detail

/// Parses argv. Returns false after --help (printed). Throws ArgError on a bad option.
inline bool parse_args(int argc, char** argv, Args& a, const std::string& data) {
  a.model = data + "/models/stories260K.bin";
  a.calib = data + "/text/tinystories_train_head.txt";
  a.eval = data + "/text/tinystories_valid_head.txt";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      usage(stdout, data.c_str());
      return false;
    }
    if (k == "--no-real" || k == "--search") {
      (k == "--search" ? a.search : a.real) = k == "--search";
      continue;
    }
    if (k.rfind("--", 0) != 0) throw ArgError{"unexpected argument '" + k + "' (options start with --)"};
    if (i + 1 >= argc) throw ArgError{"option " + k + " needs a value (or is unknown)"};
    const char* v = argv[++i];
    if (k == "--nsamples") a.nsamples = detail::parse_int(k, v, 1);
    else if (k == "--seqlen") a.seqlen = detail::parse_int(k, v, 2);
    else if (k == "--max-tokens") a.max_tokens = detail::parse_int(k, v, 0);
    else if (k == "--seed") a.calib_seed = detail::parse_int(k, v, 0);
    else if (k == "--group") a.group = detail::parse_int(k, v, 0);
    else if (k == "--sa-steps") a.sa_steps = detail::parse_int(k, v, 0);
    else if (k == "--sa-seed") a.sa_seed = detail::parse_int(k, v, 0);
    else if (k == "--sa-tokens") a.sa_tokens = detail::parse_int(k, v, 2);
    else if (k == "--wbits" || k == "--abits") {
      const long long b = detail::parse_int(k, v, 1);
      const bool ok = k == "--wbits" ? (b == 4 || b == 8) : (b == 8 || b == 16 || b == 32);
      if (!ok) throw ArgError{k + " expects " + (k == "--wbits" ? std::string("4 or 8") : "8, 16 or 32 (32 = float)") +
                              ", got '" + v + "'"};
      (k == "--wbits" ? a.wbits : a.abits) = static_cast<int>(b);
    } else if (k == "--sparsity") {
      char* end = nullptr;
      a.sparsity = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(a.sparsity >= 0.0 && a.sparsity < 1.0))
        throw ArgError{std::string("--sparsity expects a number in [0, 1), got '") + v + "'"};
    } else if (k == "--model") a.model = v;
    else if (k == "--tokenizer") a.tokenizer = v;
    else if (k == "--calib") a.calib = v;
    else if (k == "--eval") a.eval = v;
    else if (k == "--json") a.json = v;
    else if (k == "--out") a.out = v;
    else if (k == "--recipe") a.recipe = v;
    else if (k == "--edit-choices") a.edit_choices = v;
    else if (k == "--target") a.target = v;
    else throw ArgError{"unknown option '" + k + "' (see --help)"};
  }
  if (a.target.empty()) {
    if (const char* env = std::getenv("SPARQ_TARGET")) a.target = env;
  }
  if (a.recipe.empty()) throw ArgError{"--recipe is empty; expected compare, a recipe name or a recipe string"};
  if (!a.out.empty() && (a.recipe == "compare" || a.recipe == "compare-lorc"))
    throw ArgError{"--out writes one model: give a single --recipe (not " + a.recipe + ")"};
  if (a.seqlen * a.nsamples <= 0) throw ArgError{"--nsamples x --seqlen must be positive"};
  return true;
}

}  // namespace sparq_compress
