// sparq-compress command line: options, defaults, validation (errors name the value and what was expected).
#pragma once

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace sparq_compress {

struct Args {
  std::string model, tokenizer, calib, eval, json, recipe = "compare";
  std::vector<std::string> outs;   ///< --out paths: *.gguf -> GGUF for llama.cpp, anything else -> SPRQ
  std::string gguf_float = "f32", gguf_fallback = "f16", gguf_requant = "q8_0", gguf_embedding = "f32";
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
  int progress = -1;               ///< --progress / --no-progress; -1: on for models of 8 or more blocks
  bool entropy = true;             ///< --out SPRQ: rANS-code the sections (off: --no-entropy)
  bool eval_only = false;          ///< --eval-only: score --model as it is (llama2.c, GGUF or SPRQ), no compression
};

inline void usage(std::FILE* out, const char* data_dir) {
  std::fprintf(out,
      "usage: sparq-compress [options]\n"
      "  Compresses a Llama model with a recipe (layer-wise, error propagation), evaluates perplexity\n"
      "  with fake quantization and through the packed integer / sparse kernels, and prints one row per\n"
      "  method: sparsity, bits, stored weight bytes, MACs, perplexity, times.\n"
      "options:\n"
      "  --model PATH       llama2.c, GGUF or (with --eval-only) SPRQ model (default: <data>/models/stories260K.bin)\n"
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
      "  --progress         print 'ROW: block i/n, elapsed, ETA' on stderr after each compressed block\n"
      "                     (default: on for models of 8 or more blocks; --no-progress: off)\n"
      "  --out PATH         write the compressed model (single recipe only; may be given twice): PATH ending\n"
      "                     in .gguf -> a GGUF llama.cpp runs (docs/formats.md#gguf-export), else sparq's SPRQ file;\n"
      "                     each is read back and its perplexity printed\n"
      "  --no-entropy       write the SPRQ file's sections raw (default: rANS-coded where that is smaller)\n"
      "  --gguf-float T     GGUF type of float (unquantized) linears: f32, f16, bf16 (default f32)\n"
      "  --gguf-fallback T  GGUF type of quantized linears whose rows no block type takes: f32, f16, bf16 (default f16)\n"
      "  --gguf-requant T   GGUF type of quantized linears on no block grid: q8_0, q5_1, q5_0, q4_1, q4_0 (default q8_0)\n"
      "  --gguf-embedding T GGUF type of the token embedding / classifier: f32, f16, bf16, q8_0, q4_0 (default f32)\n"
      "  --json PATH        also write the rows and the protocol as JSON\n"
      "  --eval-only        no compression: score --model as it is (llama2.c, GGUF or a SPRQ file written by --out;\n"
      "                     SPRQ runs its packed kernels), with the evaluation protocol above\n"
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
    if (k == "--progress" || k == "--no-progress") {
      a.progress = k == "--progress" ? 1 : 0;
      continue;
    }
    if (k == "--no-real" || k == "--search" || k == "--eval-only" || k == "--no-entropy") {
      (k == "--search" ? a.search : k == "--eval-only" ? a.eval_only : k == "--no-entropy" ? a.entropy : a.real) =
          k == "--search" || k == "--eval-only";
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
    else if (k == "--out") a.outs.push_back(v);
    else if (k == "--gguf-float" || k == "--gguf-fallback" || k == "--gguf-requant" || k == "--gguf-embedding") {
      const std::string t = v;
      const bool is_float = t == "f32" || t == "f16" || t == "bf16";
      const bool is_block = t == "q8_0" || t == "q5_1" || t == "q5_0" || t == "q4_1" || t == "q4_0";
      const bool ok = k == "--gguf-requant" ? is_block : k == "--gguf-embedding" ? (is_float || t == "q8_0" || t == "q4_0") : is_float;
      if (!ok) throw ArgError{k + ": '" + t + "' is not one of the types listed in --help"};
      (k == "--gguf-float" ? a.gguf_float : k == "--gguf-fallback" ? a.gguf_fallback
                           : k == "--gguf-requant" ? a.gguf_requant : a.gguf_embedding) = t;
    }
    else if (k == "--recipe") a.recipe = v;
    else if (k == "--edit-choices") a.edit_choices = v;
    else if (k == "--target") a.target = v;
    else throw ArgError{"unknown option '" + k + "' (see --help)"};
  }
  if (a.target.empty()) {
    if (const char* env = std::getenv("SPARQ_TARGET")) a.target = env;
  }
  if (a.recipe.empty()) throw ArgError{"--recipe is empty; expected compare, a recipe name or a recipe string"};
  if (a.outs.size() > 2) throw ArgError{"--out is given " + std::to_string(a.outs.size()) + " times; at most twice (one SPRQ, one GGUF)"};
  if (a.outs.size() == 2) {
    auto gguf = [](const std::string& p) {
      std::string e = p.size() >= 5 ? p.substr(p.size() - 5) : p;
      for (char& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      return e == ".gguf";
    };
    if (gguf(a.outs[0]) == gguf(a.outs[1]))
      throw ArgError{"--out is given twice for the same kind of file ('" + a.outs[0] + "', '" + a.outs[1] +
                     "'); give one path ending in .gguf and one SPRQ path"};
  }
  if (a.eval_only && !a.outs.empty()) throw ArgError{"--eval-only writes nothing: drop --out"};
  if (!a.outs.empty() && (a.recipe == "compare" || a.recipe == "compare-lorc"))
    throw ArgError{"--out writes one model: give a single --recipe (not " + a.recipe + ")"};
  if (a.seqlen * a.nsamples <= 0) throw ArgError{"--nsamples x --seqlen must be positive"};
  return true;
}

}  // namespace sparq_compress
