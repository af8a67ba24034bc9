// sparq-compress: compress a Llama model with a pruning / SmoothQuant / W8A8 recipe (or compare them all)
// through the layer-wise calibration driver, and report sparsity, stored bytes, MACs and perplexity.
//
// Every recipe starts from a fresh copy of the dense weights. Calibration statistics come from the
// driver (model/calibration.hpp): block by block, the inputs of every linear group on the
// calibration windows, with error propagation (block b+1 sees the outputs of the compressed
// block b, including its activation fake-quantization). Quantized rows are evaluated with FAKE
// quantization (quantize -> dequantize floats), not with packed integer kernels.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sparq/core/error.hpp>
#include <sparq/core/stats.hpp>
#include <sparq/io/load.hpp>
#include <sparq/joint/activation_edit.hpp>
#include <sparq/model/calibration.hpp>
#include <sparq/model/input_quant_linear.hpp>
#include <sparq/model/perplexity.hpp>
#include <sparq/prune/pruner.hpp>
#include <sparq/prune/sparse_gpt.hpp>
#include <sparq/quant/layer_group.hpp>
#include <sparq/quant/quantizer.hpp>
#include <sparq/quant/smooth.hpp>

namespace {

using sparq::Matrix;
using sparq::MatrixView;
using sparq::model::Linear;

enum class Metric { none, magnitude, wanda, sparsegpt, sar };
enum class Pattern { dense, unstructured, nm24 };

struct Recipe {
  const char* name;
  Metric metric = Metric::none;
  Pattern pattern = Pattern::dense;
  bool smooth = false;     // SmoothQuant alpha = 0.5 folded into rms_att / rms_ffn
  bool w8a8 = false;       // RTN int8 per-channel weights + per-token int8 linear inputs + int8 q/k/v
  double edit_r = 0.0;     // JSQ activation editor strength (Eq. 5, per tensor); 0 = off
  const char* what;
};

const std::vector<Recipe>& recipes() {
  static const std::vector<Recipe> r = {
      {"dense", Metric::none, Pattern::dense, false, false, 0.0, "the model as loaded (f32)"},
      {"magnitude", Metric::magnitude, Pattern::unstructured, false, false, 0.0,
       "Pruner<Magnitude, Unstructured>: |W|, per output row"},
      {"wanda", Metric::wanda, Pattern::unstructured, false, false, 0.0,
       "Pruner<Wanda, Unstructured>: |W|*||x_j||, per output row"},
      {"wanda-2:4", Metric::wanda, Pattern::nm24, false, false, 0.0, "Pruner<Wanda, NM<2,4>>"},
      {"sparsegpt", Metric::sparsegpt, Pattern::unstructured, false, false, 0.0,
       "Pruner<SparseGPT, Unstructured>: OBS with weight updates, H = 2/n X^T X"},
      {"sparsegpt-2:4", Metric::sparsegpt, Pattern::nm24, false, false, 0.0, "Pruner<SparseGPT, NM<2,4>>"},
      {"w8a8", Metric::none, Pattern::dense, false, true, 0.0,
       "RTN int8 symmetric per-channel weights, int8 per-token linear inputs and q/k/v"},
      {"smoothquant", Metric::none, Pattern::dense, true, true, 0.0, "Smooth alpha=0.5 folded, then w8a8"},
      {"wanda+smoothquant", Metric::wanda, Pattern::unstructured, true, true, 0.0, "wanda, smooth, w8a8"},
      {"sparsegpt+smoothquant", Metric::sparsegpt, Pattern::unstructured, true, true, 0.0,
       "sparsegpt, smooth, w8a8"},
      {"jsq-noedit", Metric::sar, Pattern::unstructured, true, true, 0.0,
       "Pruner<SAR, Unstructured> lambda=2 over the mean sequence, smooth, w8a8 (no editor, no search)"},
      {"jsq-noedit-2:4", Metric::sar, Pattern::nm24, true, true, 0.0, "Pruner<SAR, NM<2,4>>, smooth, w8a8"},
      {"jsq", Metric::sar, Pattern::unstructured, true, true, 5e-5,
       "jsq-noedit with the activation editor r=5e-5 (per tensor) on the calibration inputs; no search"},
  };
  return r;
}

// Statistics of one linear group's input over the calibration windows of one block.
struct GroupStats {
  std::optional<sparq::ColumnSquareSum> sq;
  std::optional<sparq::HessianAccumulator> h;
  std::optional<sparq::ColumnAbsMax> absmax;
  std::optional<sparq::MeanSequence> mean;
};

struct LinearCount {
  std::size_t rows = 0, cols = 0, nnz = 0;
};

// Runs one recipe on block b: prune (with the recipe's statistic), smooth, fake-quantize the weights,
// and wrap every linear in an 8-bit per-token input quantizer.
class RecipeCallbacks final : public sparq::model::LayerwiseCallbacks {
 public:
  RecipeCallbacks(const Recipe& r, double sparsity) : r_(r), sparsity_(sparsity) {
    if (r.edit_r > 0) edit_.emplace(sparq::ActivationEditOptions{sparq::EditMode::MinMaxTensor, r.edit_r});
  }

  void on_linear_input(std::size_t, Linear leader, MatrixView<const float> x, std::size_t) override {
    std::optional<Matrix<float>> edited;
    if (edit_) edited = edit_->edited(x);
    const MatrixView<const float> in = edited ? MatrixView<const float>(edited->view()) : x;
    GroupStats& s = stats_[leader];
    const std::size_t cin = in.cols();
    if (r_.metric == Metric::wanda || r_.metric == Metric::sar) {
      if (!s.sq) s.sq.emplace(cin);
      s.sq->add(in);
    }
    if (r_.metric == Metric::sar) {
      if (!s.mean) s.mean.emplace(in.rows(), cin);
      s.mean->add(in);
    }
    if (r_.metric == Metric::sparsegpt) {
      if (!s.h) s.h.emplace(cin);
      s.h->add(in);
    }
    if (r_.smooth && (leader == Linear::wq || leader == Linear::w1)) {
      if (!s.absmax) s.absmax.emplace(cin);
      s.absmax->add(in);
    }
  }

  void compress_block(std::size_t b, sparq::model::LlamaBlock& blk, sparq::model::Llama& model) override {
    for (Linear l : sparq::model::all_linears) prune(blk.linear(l), stats_[sparq::model::input_group_leader(l)]);
    if (r_.smooth) {
      const sparq::Smooth smooth(sparq::SmoothOptions{0.5f});
      for (const auto& g : sparq::llama_smooth_groups()) {
        const GroupStats& s = stats_.at(sparq::model::input_group_leader(g.linears[0]));
        (void)smooth.apply(blk, g, *s.absmax);
      }
    }
    if (r_.w8a8) {
      const sparq::Quantizer<sparq::Symmetric, sparq::PerChannel, 8> q;
      for (Linear l : sparq::model::all_linears) {
        Matrix<float>& w = blk.linear(l);
        const Matrix<float> fq = q.fake_quantize(std::as_const(w).view());
        std::copy(fq.data(), fq.data() + fq.size(), w.data());  // in place: the dense views stay valid
      }
    }
    for (Linear l : sparq::model::all_linears) {
      const Matrix<float>& w = blk.linear(l);
      counts.push_back({w.rows(), w.cols(),
                        static_cast<std::size_t>(std::count_if(w.data(), w.data() + w.size(),
                                                               [](float v) { return v != 0.0f; }))});
    }
    model.refresh_block(b);
    if (r_.w8a8) {
      for (Linear l : sparq::model::all_linears)
        model.set_linear(b, l, std::make_unique<sparq::model::InputQuantLinear>(model.take_linear(b, l), 8));
    }
    stats_.clear();
  }

  std::vector<LinearCount> counts;  // every decoder linear after compression, block by block

 private:
  void prune(Matrix<float>& w, const GroupStats& s) const {
    sparq::PruneOptions o;
    o.sparsity = sparsity_;
    o.lambda = sparq::jsq_paper_lambda;
    const auto view = w.view();
    const bool nm = r_.pattern == Pattern::nm24;
    switch (r_.metric) {
      case Metric::none: return;
      case Metric::magnitude:
        if (nm) (void)sparq::Pruner<sparq::Magnitude, sparq::NM<2, 4>>(o).prune(view);
        else (void)sparq::Pruner<sparq::Magnitude, sparq::Unstructured>(o).prune(view);
        return;
      case Metric::wanda:
        if (nm) (void)sparq::Pruner<sparq::Wanda, sparq::NM<2, 4>>(o).prune(view, *s.sq);
        else (void)sparq::Pruner<sparq::Wanda, sparq::Unstructured>(o).prune(view, *s.sq);
        return;
      case Metric::sparsegpt:
        if (nm) (void)sparq::Pruner<sparq::SparseGPT, sparq::NM<2, 4>>(o).prune(view, *s.h);
        else (void)sparq::Pruner<sparq::SparseGPT, sparq::Unstructured>(o).prune(view, *s.h);
        return;
      case Metric::sar: {
        const sparq::SarStats st(*s.sq, *s.mean);
        if (nm) (void)sparq::Pruner<sparq::SAR, sparq::NM<2, 4>>(o).prune(view, st);
        else (void)sparq::Pruner<sparq::SAR, sparq::Unstructured>(o).prune(view, st);
        return;
      }
    }
  }

  const Recipe& r_;
  double sparsity_;
  std::optional<sparq::ActivationEdit> edit_;
  std::map<Linear, GroupStats> stats_;
};

// Theoretical stored bytes of one linear (see docs/compress.md): values of `vb` bytes, plus a
// per-row f32 scale when quantized, plus the sparse format's metadata.
struct Storage {
  double bytes = 0;
  double macs = 0;  // multiply-accumulates per token (stored values)
};

Storage storage_of(const LinearCount& c, Pattern p, bool int8) {
  const double vb = int8 ? 1.0 : 4.0;
  const double rows = static_cast<double>(c.rows), cols = static_cast<double>(c.cols);
  const double scales = int8 ? 4.0 * rows : 0.0;
  Storage s;
  switch (p) {
    case Pattern::dense:
      s.macs = rows * cols;
      s.bytes = s.macs * vb + scales;
      break;
    case Pattern::unstructured: {  // BitmaskSparse layout: row masks + (rows+1) u64 offsets + kept values
      const double nnz = static_cast<double>(c.nnz);
      s.macs = nnz;
      s.bytes = rows * static_cast<double>((c.cols + 7) / 8) + (rows + 1) * 8.0 + nnz * vb + scales;
      break;
    }
    case Pattern::nm24: {  // NMCompressed<2,4> layout: cols/2 kept values per row + 2-bit index each
      const std::size_t kept_row = c.cols / 4 * 2;
      s.macs = rows * static_cast<double>(kept_row);
      s.bytes = s.macs * vb + rows * static_cast<double>((kept_row * 2 + 7) / 8) + scales;
      break;
    }
  }
  return s;
}

struct Row {
  std::string method;
  double sparsity = 0;
  int wbits = 32, abits = 32;
  double bytes = 0, dense_bytes = 0, macs_rel = 1;
  double ppl = 0, nll = 0, secs = 0, eval_secs = 0;
};

struct Args {
  std::string model, tokenizer, calib, eval, json, recipe = "compare";
  long long nsamples = 32, seqlen = 256, max_tokens = 60000;
  double sparsity = 0.5;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: sparq-compress [options]\n"
               "  Compresses the model with a recipe through the layer-wise calibration driver (error\n"
               "  propagation) and prints sparsity, stored weight bytes, MACs and perplexity.\n"
               "  Quantized recipes are evaluated with fake quantization (quantize->dequantize floats).\n"
               "options:\n"
               "  --model PATH       llama2.c or GGUF model (default: <data>/models/stories260K.bin)\n"
               "  --tokenizer PATH   llama2.c tokenizer (default: tok<vocab>.bin beside the model / GGUF vocab)\n"
               "  --calib PATH       calibration text (default: <data>/text/tinystories_train_head.txt)\n"
               "  --eval PATH        evaluation text (default: <data>/text/tinystories_valid_head.txt)\n"
               "  --nsamples N       calibration windows (default 32)\n"
               "  --seqlen N         tokens per calibration window (default 256)\n"
               "  --max-tokens N     evaluation tokens, 0 = all (default 60000)\n"
               "  --sparsity S       unstructured sparsity in [0, 1) (default 0.5; 2:4 recipes are 0.5)\n"
               "  --recipe R         one recipe or 'compare' = all (default compare)\n"
               "  --json PATH        also write the table as JSON\n"
               "  --help             this text\n"
               "recipes:\n");
  for (const auto& r : recipes()) std::fprintf(out, "  %-22s %s\n", r.name, r.what);
  std::fprintf(out, "  (data dir: $SPARQ_DATA_DIR, else %s)\n", SPARQ_DATA_DIR);
}

bool parse_count(const char* s, long long& v) {
  char* end = nullptr;
  v = std::strtoll(s, &end, 10);
  return end != s && *end == '\0' && v >= 0;
}

// Returns -1 to continue, else the exit code.
int parse_args(int argc, char** argv, Args& a) {
  const char* env = std::getenv("SPARQ_DATA_DIR");
  const std::string data = env && *env ? env : SPARQ_DATA_DIR;
  a.model = data + "/models/stories260K.bin";
  a.calib = data + "/text/tinystories_train_head.txt";
  a.eval = data + "/text/tinystories_valid_head.txt";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "sparq-compress: unknown or incomplete argument '%s'\n", k.c_str());
      usage(stderr);
      return 2;
    }
    const char* v = argv[++i];
    long long* num = k == "--nsamples" ? &a.nsamples : k == "--seqlen" ? &a.seqlen
                   : k == "--max-tokens" ? &a.max_tokens : nullptr;
    if (num) {
      if (!parse_count(v, *num) || (num != &a.max_tokens && *num == 0)) {
        std::fprintf(stderr, "sparq-compress: %s expects a %s integer, got '%s'\n", k.c_str(),
                     num == &a.max_tokens ? "non-negative" : "positive", v);
        return 2;
      }
    } else if (k == "--sparsity") {
      char* end = nullptr;
      a.sparsity = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(a.sparsity >= 0.0 && a.sparsity < 1.0)) {
        std::fprintf(stderr, "sparq-compress: --sparsity expects a number in [0, 1), got '%s'\n", v);
        return 2;
      }
    } else if (k == "--model") {
      a.model = v;
    } else if (k == "--tokenizer") {
      a.tokenizer = v;
    } else if (k == "--calib") {
      a.calib = v;
    } else if (k == "--eval") {
      a.eval = v;
    } else if (k == "--json") {
      a.json = v;
    } else if (k == "--recipe") {
      a.recipe = v;
      const bool known = a.recipe == "compare" ||
                         std::any_of(recipes().begin(), recipes().end(),
                                     [&](const Recipe& r) { return a.recipe == r.name; });
      if (!known) {
        std::fprintf(stderr, "sparq-compress: unknown recipe '%s' (expected compare or one of:", v);
        for (const auto& r : recipes()) std::fprintf(stderr, " %s", r.name);
        std::fprintf(stderr, ")\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "sparq-compress: unknown argument '%s'\n", k.c_str());
      usage(stderr);
      return 2;
    }
  }
  return -1;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  Args args;
  if (const int rc = parse_args(argc, argv, args); rc >= 0) return rc;

  auto loaded = sparq::io::load(args.model, args.tokenizer);
  const sparq::model::LlamaWeights& dense_w = loaded.model.weights();
  const auto calib_stream = sparq::model::document_token_stream_file(
      args.calib, loaded.tokenizer, static_cast<std::size_t>(args.nsamples * args.seqlen));
  const auto windows = sparq::model::calibration_windows(calib_stream, static_cast<std::size_t>(args.nsamples),
                                                         static_cast<std::size_t>(args.seqlen));
  const auto eval_stream =
      sparq::model::document_token_stream_file(args.eval, loaded.tokenizer, static_cast<std::size_t>(args.max_tokens));
  sparq::model::PerplexityOptions popt;
  popt.max_tokens = static_cast<std::size_t>(args.max_tokens);

  std::vector<const Recipe*> todo;
  for (const auto& r : recipes())
    if (args.recipe == "compare" || args.recipe == r.name) todo.push_back(&r);

  const auto& cfg = dense_w.config;
  std::printf("sparq-compress: model %s (dim %zu, hidden %zu, %zu layers, %zu linears per layer)\n",
              args.model.c_str(), cfg.dim, cfg.hidden_dim, cfg.n_layers, std::size(sparq::model::all_linears));
  std::printf("protocol: calibration %lld windows x %lld tokens (first consecutive) of %s, layer-wise with "
              "error propagation; evaluation %zu tokens of %s in windows of %zu from position 0\n",
              args.nsamples, args.seqlen, args.calib.c_str(),
              std::min(eval_stream.size(), popt.max_tokens ? popt.max_tokens : eval_stream.size()),
              args.eval.c_str(), cfg.seq_len);
  std::printf("note: W8/A8 rows use FAKE quantization (quantize->dequantize in f32), not packed int8 kernels; "
              "bytes and MACs are theoretical for the decoder linears only (docs/compress.md)\n\n");
  std::printf("%-22s %8s %5s %5s %12s %7s %6s %10s %8s %8s %7s\n", "method", "sparsity", "W", "A",
              "weight_bytes", "x_dense", "MACs", "ppl", "nll", "comp_s", "eval_s");

  std::vector<Row> rows;
  for (const Recipe* r : todo) {
    sparq::model::Llama model{sparq::model::LlamaWeights(dense_w)};
    RecipeCallbacks cb(*r, r->pattern == Pattern::nm24 ? 0.5 : args.sparsity);
    const auto t0 = std::chrono::steady_clock::now();
    if (r->metric != Metric::none || r->smooth || r->w8a8) {
      (void)sparq::model::run_layerwise(model, windows, cb);
    } else {
      for (std::size_t b = 0; b < cfg.n_layers; ++b) cb.compress_block(b, model.block_weights(b), model);
    }
    if (r->w8a8) {
      model.set_attention_input_bits(8);
      for (std::size_t b = 0; b < cfg.n_layers; ++b)  // invariant: every decoder linear reads int8 inputs
        for (Linear l : sparq::model::all_linears)
          SPARQ_CHECK(dynamic_cast<const sparq::model::InputQuantLinear*>(&model.linear(b, l)) != nullptr,
                      "recipe ", r->name, ": block ", b, " ", sparq::model::linear_name(l),
                      " has no 8-bit input quantizer");
    }
    SPARQ_CHECK(cb.counts.size() == cfg.n_layers * std::size(sparq::model::all_linears), "recipe ", r->name,
                ": compressed ", cb.counts.size(), " linears, expected ",
                cfg.n_layers * std::size(sparq::model::all_linears));
    const auto t1 = std::chrono::steady_clock::now();
    const auto res = sparq::model::perplexity(model, eval_stream, popt);
    const auto t2 = std::chrono::steady_clock::now();

    Row row;
    row.method = r->name;
    row.wbits = r->w8a8 ? 8 : 32;
    row.abits = r->w8a8 ? 8 : 32;
    double total = 0, nnz = 0, macs = 0, dense_macs = 0;
    for (const auto& c : cb.counts) {
      const Storage s = storage_of(c, r->pattern, r->w8a8);
      row.bytes += s.bytes;
      macs += s.macs;
      total += static_cast<double>(c.rows * c.cols);
      nnz += static_cast<double>(c.nnz);
      dense_macs += static_cast<double>(c.rows * c.cols);
    }
    row.dense_bytes = 4.0 * total;
    row.sparsity = 1.0 - nnz / total;
    row.macs_rel = macs / dense_macs;
    row.ppl = res.perplexity;
    row.nll = res.mean_nll;
    row.secs = std::chrono::duration<double>(t1 - t0).count();
    row.eval_secs = std::chrono::duration<double>(t2 - t1).count();
    std::printf("%-22s %8.4f %5s %5s %12.0f %7.3f %6.3f %10.4f %8.5f %8.2f %7.2f\n", row.method.c_str(),
                row.sparsity, row.wbits == 32 ? "f32" : "8", row.abits == 32 ? "f32" : "8", row.bytes,
                row.bytes / row.dense_bytes, row.macs_rel, row.ppl, row.nll, row.secs, row.eval_secs);
    std::fflush(stdout);
    rows.push_back(row);
  }

  if (!args.json.empty()) {
    std::string j = "{\n  \"model\": \"" + json_escape(args.model) + "\",\n  \"calib\": \"" +
                    json_escape(args.calib) + "\",\n  \"eval\": \"" + json_escape(args.eval) + "\",\n";
    j += "  \"nsamples\": " + std::to_string(args.nsamples) + ", \"seqlen\": " + std::to_string(args.seqlen) +
         ", \"max_tokens\": " + std::to_string(args.max_tokens) + ",\n";
    j += "  \"fake_quantization\": true,\n  \"rows\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      char buf[512];
      std::snprintf(buf, sizeof buf,
                    "    {\"method\": \"%s\", \"sparsity\": %.6f, \"weight_bits\": %d, \"activation_bits\": %d, "
                    "\"weight_bytes\": %.0f, \"dense_weight_bytes\": %.0f, \"macs_relative\": %.6f, "
                    "\"perplexity\": %.6f, \"mean_nll\": %.6f, \"compress_seconds\": %.3f, \"eval_seconds\": %.3f}%s\n",
                    json_escape(r.method).c_str(), r.sparsity, r.wbits, r.abits, r.bytes, r.dense_bytes,
                    r.macs_rel, r.ppl, r.nll, r.secs, r.eval_secs, i + 1 < rows.size() ? "," : "");
      j += buf;
    }
    j += "  ]\n}\n";
    sparq::io::detail::write_file_atomic(args.json, j.data(), j.size());
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sparq-compress: %s\n", e.what());
  return 1;
}
