// sparq-compress command line: options, defaults, validation (errors name the value and what was expected),
// declared on the tools' shared helper (examples/common/tool_cli.hpp).
#pragma once

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tool_cli.hpp"

namespace sparq_compress {

/// A bad command line or option combination (exit code 2).
struct ArgError {
  std::string msg;
};

struct Args {
  std::string model, tokenizer, calib, eval, json, recipe = "compare";
  std::vector<std::string> outs;   ///< --out paths: *.gguf -> GGUF for llama.cpp, anything else -> SPRQ
  std::string gguf_float = "f32", gguf_fallback = "f16", gguf_requant = "q8_0", gguf_embedding = "f32";
  std::string embedding = "f32";   ///< --embedding int8: token embedding / classifier on a per-row int8 grid
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
  bool stream = false;             ///< --stream: one block in memory at a time, written to --out as it goes
};

/// The options of sparq-compress, declared once: parsing, range checks, messages and --help come
/// from this table (examples/common/tool_cli.hpp). wbits / abits are parsed as long long and
/// copied into Args after parsing.
struct CliSpec {
  sparq_tools::Cli cli{"sparq-compress",
                       "Compresses a Llama model with a recipe (layer-wise, error propagation), evaluates perplexity\n"
                       "with fake quantization and through the packed integer / sparse kernels, and prints one row per\n"
                       "method: sparsity, bits, stored weight bytes, MACs, perplexity, times."};
  long long wbits = 8, abits = 8;
  bool no_real = false, no_entropy = false;

  explicit CliSpec(Args& a) {
    cli.text("--model", "PATH", &a.model, "llama2.c, GGUF or (with --eval-only) SPRQ model (default: <data>/models/stories260K.bin)")
        .text("--tokenizer", "PATH", &a.tokenizer, "llama2.c tokenizer (default: tok<vocab>.bin beside the model / GGUF vocab)")
        .text("--calib", "PATH", &a.calib, "calibration text (default: <data>/text/tinystories_train_head.txt)")
        .text("--eval", "PATH", &a.eval, "evaluation text (default: <data>/text/tinystories_valid_head.txt)")
        .integer("--nsamples", &a.nsamples, 1, 1LL << 30, "calibration windows (default 32)")
        .integer("--seqlen", &a.seqlen, 2, 1LL << 30, "tokens per calibration window (default 256)")
        .integer("--seed", &a.calib_seed, 0, 1LL << 62, "random calibration window starts (default: first consecutive windows)")
        .integer("--max-tokens", &a.max_tokens, 0, 1LL << 40, "evaluation tokens, 0 = all (default 60000)")
        .text("--recipe", "R", &a.recipe,
              "'compare' (default: the paper's table), 'compare-lorc' (W4 g128, SAR+W8 and JSQ,\n"
              "each without and with LoRC rank 8), a named recipe (+ '+lorc' appends LoRC r8 int8),\n"
              "or a recipe string such as 'edit,sar:0.5,smooth:0.5,w8a8' or 'w4g128,lorc:8,a0'\n"
              "(grammar: include/sparq/joint/recipe.hpp, docs/jsq.md)")
        .number("--sparsity", &a.sparsity, 0.0, 1.0, "sparsity of the compare rows and named recipes, in [0, 1) (default 0.5)",
                /*hi_open=*/true)
        .integer_of("--wbits", &wbits, {4, 8}, "weight bits of the quantizing compare rows and named recipes (default 8)")
        .integer_of("--abits", &abits, {8, 16, 32}, "activation bits, 32 = float (default 8)")
        .integer("--group", &a.group, 0, 1LL << 30, "weight group size (0 = per output channel, default 0)")
        .integer("--sa-steps", &a.sa_steps, 0, 1LL << 30, "simulated-annealing steps of each searched JSQ row (default 12)")
        .integer("--sa-seed", &a.sa_seed, 0, 1LL << 62, "SA seed (default 0)")
        .integer("--sa-tokens", &a.sa_tokens, 2, 1LL << 40, "held-out calibration tokens scoring each SA step (default 4096)")
        .text("--edit-choices", "L", &a.edit_choices, "comma-separated editing strengths searched (default 0,4e-5,5e-5,6e-5,7e-5)")
        .flag("--search", &a.search,
              "search the editing vector (SA) for a recipe string starting with 'edit'\n"
              "(the named jsq, jsq-nosar, jsq-2:4, jsq-4:8 search by default)")
        .flag("--no-real", &no_real, "skip the real-kernel evaluation (fake quantization only)")
        .action("--progress", [&a] { a.progress = 1; },
                "print 'ROW: block i/n, elapsed, ETA' on stderr after each compressed block\n"
                "(default: on for models of 8 or more blocks)")
        .action("--no-progress", [&a] { a.progress = 0; }, "no progress lines")
        .texts("--out", "PATH", &a.outs,
               "write the compressed model (single recipe only; may be given twice): PATH ending\n"
               "in .gguf -> a GGUF llama.cpp runs (docs/formats.md#gguf-export), else sparq's SPRQ file;\n"
               "each is read back and its perplexity printed")
        .flag("--no-entropy", &no_entropy, "write the SPRQ file's sections raw (default: rANS-coded where that is smaller)")
        .choice("--gguf-float", &a.gguf_float, {"f32", "f16", "bf16"}, "GGUF type of float (unquantized) linears (default f32)")
        .choice("--gguf-fallback", &a.gguf_fallback, {"f32", "f16", "bf16"},
                "GGUF type of quantized linears whose rows no block type takes (default f16)")
        .choice("--gguf-requant", &a.gguf_requant, {"q8_0", "q5_1", "q5_0", "q4_1", "q4_0"},
                "GGUF type of quantized linears on no block grid (default q8_0)")
        .choice("--gguf-embedding", &a.gguf_embedding, {"f32", "f16", "bf16", "q8_0", "q4_0"},
                "GGUF type of the token embedding / classifier (default f32)")
        .choice("--embedding", &a.embedding, {"f32", "int8"},
                "token embedding / classifier after compression: int8 rounds them to a per-row int8\n"
                "grid (recipe token 'embed'; the SPRQ file stores 1-byte codes); default f32: as the recipe says")
        .flag("--stream", &a.stream,
              "compress a Hugging Face directory larger than memory: one block in f32 at a time, each\n"
              "packed and spooled to the SPRQ --out as soon as it is final (single recipe without the SA\n"
              "search; the file is then read back and scored unless --no-real; docs/compress.md#streaming)")
        .text("--json", "PATH", &a.json, "also write the rows and the protocol as JSON")
        .flag("--eval-only", &a.eval_only,
              "no compression: score --model as it is (llama2.c, GGUF or a SPRQ file written by --out;\n"
              "SPRQ runs its packed kernels), with the evaluation protocol above")
        .text("--target", "T", &a.target,
              "kernel target: auto (default: the best this CPU runs; or $SPARQ_TARGET), sse2,\n"
              "avx2, avx512, avx512vnni, neon (compression results do not depend on it)");
  }
};

/// Parses argv. Returns false after --help (printed). Throws ArgError on a bad option or combination.
inline bool parse_args(int argc, char** argv, Args& a, const std::string& data) {
  a.model = data + "/models/stories260K.bin";
  a.calib = data + "/text/tinystories_train_head.txt";
  a.eval = data + "/text/tinystories_valid_head.txt";
  CliSpec spec(a);
  spec.cli.note("(data dir <data>: $SPARQ_DATA_DIR, else " + data + ")");
  try {
    if (!spec.cli.parse(argc, argv)) {
      std::fputs(spec.cli.usage().c_str(), stdout);
      return false;
    }
  } catch (const sparq_tools::CliError& e) {
    throw ArgError{e.msg + " (see sparq-compress --help)"};
  }
  a.wbits = static_cast<int>(spec.wbits);
  a.abits = static_cast<int>(spec.abits);
  a.real = !spec.no_real;
  a.entropy = !spec.no_entropy;
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
  if (a.stream) {
    if (a.eval_only) throw ArgError{"--stream compresses; drop --eval-only"};
    if (a.recipe == "compare" || a.recipe == "compare-lorc")
      throw ArgError{"--stream writes one model: give a single --recipe (not " + a.recipe + ")"};
    if (a.search) throw ArgError{"--stream cannot run the SA search (it recompresses the whole model per step)"};
    const auto gguf = [](const std::string& p) { return p.size() >= 5 && p.compare(p.size() - 5, 5, ".gguf") == 0; };
    if (a.outs.size() != 1 || gguf(a.outs[0]))
      throw ArgError{"--stream needs exactly one --out, a SPRQ file (the blocks are written there as they are done)"};
  }
  return true;
}

}  // namespace sparq_compress
