// sparq-compress: compress a Llama model with one recipe (or the paper's comparison), evaluate
// perplexity, and report sparsity, bits, stored bytes, MACs and perplexity per method.
//
// Every row starts from a fresh copy of the dense weights. Calibration statistics come from the
// layer-wise driver (model/calibration.hpp) with error propagation.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sparq/core/error.hpp>
#include <sparq/core/stats.hpp>
#include <sparq/io/load.hpp>
#include <sparq/joint/activation_edit.hpp>
#include <sparq/joint/annealing.hpp>
#include <sparq/model/calibration.hpp>
#include <sparq/io/packed_model.hpp>
#include <sparq/model/input_quant_linear.hpp>
#include <sparq/model/pack_model.hpp>
#include <sparq/model/perplexity.hpp>
#include <sparq/prune/pruner.hpp>
#include <sparq/prune/sparse_gpt.hpp>
#include <sparq/quant/layer_group.hpp>
#include <sparq/quant/quantizer.hpp>
#include <sparq/quant/smooth.hpp>

#include "cli.hpp"
#include "report.hpp"

namespace {

using sparq::Matrix;
using sparq::MatrixView;
using sparq::model::Linear;
using namespace sparq_compress;

// ---------------------------------------------------------------------------------------------
// Recipes (interim engine; replaced by sparq::joint's executor)

enum class Metric { none, magnitude, wanda, sparsegpt, sar };

struct Spec {
  Metric metric = Metric::none;
  double sparsity = 0;
  std::size_t n = 0, m = 0;  // N:M (0: unstructured)
  bool smooth = false;
  double alpha = 0.5;
  int wbits = 32, abits = 32;
  std::size_t group = 0;
  bool edit = false;
  double edit_r = 5e-5;      // per tensor, every block (unless search)
  bool search = false;
};

struct Method {
  std::string name, recipe, note;
  Spec spec;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep)) out.push_back(cur);
  return out;
}

double parse_double(const std::string& what, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  SPARQ_CHECK(end != v.c_str() && *end == '\0', "recipe: ", what, " expects a number, got '", v, "'");
  return x;
}

// Grammar: comma-separated stages; "edit[:r]" "search" "magnitude|wanda|sparsegpt|sar:S[:N:M]"
// "smooth[:alpha]" "wXaY[gG]".
Spec parse_recipe_string(const std::string& recipe) {
  Spec s;
  bool quant = false;
  for (const std::string& stage : split(recipe, ',')) {
    const auto parts = split(stage, ':');
    SPARQ_CHECK(!parts.empty() && !parts[0].empty(), "recipe '", recipe, "': empty stage");
    const std::string& k = parts[0];
    SPARQ_CHECK(!quant, "recipe '", recipe, "': stage '", stage, "' after the quantizer (quantization must be last)");
    if (k == "dense") {
      SPARQ_CHECK(parts.size() == 1, "recipe: 'dense' takes no argument");
    } else if (k == "edit") {
      s.edit = true;
      if (parts.size() > 1) s.edit_r = parse_double("edit", parts[1]);
      SPARQ_CHECK(s.edit_r >= 0 && s.edit_r <= 0.5, "recipe: edit strength ", s.edit_r, ", expected [0, 0.5]");
    } else if (k == "search") {
      s.search = true;
    } else if (k == "magnitude" || k == "wanda" || k == "sparsegpt" || k == "sar") {
      SPARQ_CHECK(s.metric == Metric::none, "recipe '", recipe, "': two pruning stages");
      SPARQ_CHECK(!s.smooth, "recipe '", recipe, "': pruning after smoothing is not supported");
      s.metric = k == "magnitude" ? Metric::magnitude : k == "wanda" ? Metric::wanda
               : k == "sparsegpt" ? Metric::sparsegpt : Metric::sar;
      SPARQ_CHECK(parts.size() == 2 || parts.size() == 4, "recipe: '", stage,
                  "' expects NAME:SPARSITY or NAME:0:N:M (e.g. wanda:0.5, sar:0:2:4)");
      s.sparsity = parse_double(k, parts[1]);
      SPARQ_CHECK(s.sparsity >= 0 && s.sparsity < 1, "recipe: sparsity ", s.sparsity, ", expected [0, 1)");
      if (parts.size() == 4) {
        s.n = static_cast<std::size_t>(parse_double("N", parts[2]));
        s.m = static_cast<std::size_t>(parse_double("M", parts[3]));
        SPARQ_CHECK((s.n == 2 && s.m == 4) || (s.n == 4 && s.m == 8), "recipe: N:M = ", s.n, ":", s.m,
                    ", expected 2:4 or 4:8");
        s.sparsity = 1.0 - static_cast<double>(s.n) / static_cast<double>(s.m);
      }
    } else if (k == "smooth") {
      s.smooth = true;
      if (parts.size() > 1) s.alpha = parse_double("smooth", parts[1]);
      SPARQ_CHECK(s.alpha >= 0 && s.alpha <= 1, "recipe: smooth alpha ", s.alpha, ", expected [0, 1]");
    } else if (k.size() >= 4 && k[0] == 'w') {
      int wb = 0, ab = 0;
      unsigned g = 0;
      char tail = 0;
      const int got = std::sscanf(k.c_str(), "w%da%dg%u%c", &wb, &ab, &g, &tail);
      SPARQ_CHECK(got == 2 || got == 3, "recipe: quantizer '", k, "', expected wXaY or wXaYgG (e.g. w8a8, w4a8g32)");
      SPARQ_CHECK(wb == 4 || wb == 8, "recipe: weight bits ", wb, ", expected 4 or 8");
      SPARQ_CHECK(ab == 8 || ab == 16 || ab == 32, "recipe: activation bits ", ab, ", expected 8, 16 or 32");
      SPARQ_CHECK(got == 2 || g == 32 || g == 64 || g == 128, "recipe: group ", g, ", expected 32, 64 or 128");
      s.wbits = wb;
      s.abits = ab;
      s.group = got == 3 ? g : 0;
      quant = true;
    } else {
      sparq::detail::fail("recipe '", recipe, "': unknown stage '", stage,
                          "' (expected dense, edit[:r], search, magnitude|wanda|sparsegpt|sar:S[:N:M], "
                          "smooth[:alpha], wXaY[gG])");
    }
  }
  SPARQ_CHECK(!s.search || s.edit, "recipe '", recipe, "': 'search' needs an 'edit' stage");
  return s;
}

std::string quant_stage(int wbits, int abits, std::size_t group) {
  if (wbits >= 32) return "";
  return "w" + std::to_string(wbits) + "a" + std::to_string(abits) + (group ? "g" + std::to_string(group) : "");
}

// The paper's comparison (Tables 1-3) at sparsity S and bits W/A.
std::vector<Method> compare_methods(const Args& a) {
  char sp[32];
  std::snprintf(sp, sizeof sp, "%g", a.sparsity);
  const std::string S = sp, q = quant_stage(a.wbits, a.abits, static_cast<std::size_t>(a.group));
  const std::string sq = q.empty() ? "smooth" : "smooth," + q;
  std::vector<Method> v = {
      {"dense", "dense", "the model as loaded", {}},
      {"magnitude", "magnitude:" + S, "", {}},
      {"wanda", "wanda:" + S, "", {}},
      {"sparsegpt", "sparsegpt:" + S, "", {}},
      {"smoothquant", sq, "", {}},
      {"wanda+smoothquant", "wanda:" + S + "," + sq, "", {}},
      {"sparsegpt+smoothquant", "sparsegpt:" + S + "," + sq, "", {}},
      {"jsq", "edit,search,sar:" + S + "," + sq, "SAR + searched editor", {}},
      {"jsq -SAR", "edit,search,wanda:" + S + "," + sq, "Wanda metric instead of SAR", {}},
      {"jsq -Editing", "sar:" + S + "," + sq, "no activation editor", {}},
      {"jsq -Search", "edit:5e-05,sar:" + S + "," + sq, "editor r = 5e-5 in every layer", {}},
      {"jsq 2:4", "edit,search,sar:0:2:4," + sq, "", {}},
      {"jsq 4:8", "edit,search,sar:0:4:8," + sq, "4:8 where cin % 8 == 0, else 2:4", {}},
  };
  for (auto& m : v) m.spec = parse_recipe_string(m.recipe);
  return v;
}

// Named recipes: the compare rows under short names, at --sparsity / --wbits / --abits.
std::optional<Method> named_method(const std::string& name, const Args& a) {
  static const std::map<std::string, std::string> alias = {
      {"jsq-sar", "jsq -SAR"}, {"jsq-noedit", "jsq -Editing"}, {"jsq-nosearch", "jsq -Search"},
      {"jsq-2:4", "jsq 2:4"}, {"jsq-4:8", "jsq 4:8"}};
  const std::string key = alias.count(name) ? alias.at(name) : name;
  for (auto& m : compare_methods(a))
    if (m.name == key) return m;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Interim executor

struct GroupStats {
  std::optional<sparq::ColumnSquareSum> sq;
  std::optional<sparq::HessianAccumulator> h;
  std::optional<sparq::ColumnAbsMax> absmax;
  std::optional<sparq::MeanSequence> mean;
};

template <class Q>
void fake_quantize_inplace(Matrix<float>& w) {
  sparq::QuantOptions o;
  o.tail_group = true;  // w2 (cin 172) with g32/g128: the last group of a row is shorter
  const Q q(o);
  const Matrix<float> fq = q.fake_quantize(std::as_const(w).view());
  std::copy(fq.data(), fq.data() + fq.size(), w.data());
}

class SpecCallbacks final : public sparq::model::LayerwiseCallbacks {
 public:
  SpecCallbacks(const Spec& s, std::vector<double> edit_r) : s_(s), edit_r_(std::move(edit_r)) {}

  void on_linear_input(std::size_t b, Linear leader, MatrixView<const float> x, std::size_t) override {
    std::optional<Matrix<float>> edited;
    if (s_.edit && edit_r_[b] > 0)
      edited = sparq::ActivationEdit(sparq::ActivationEditOptions{sparq::EditMode::MinMaxTensor, edit_r_[b]}).edited(x);
    const MatrixView<const float> in = edited ? MatrixView<const float>(edited->view()) : x;
    GroupStats& st = stats_[leader];
    const std::size_t cin = in.cols();
    if (s_.metric == Metric::wanda || s_.metric == Metric::sar) {
      if (!st.sq) st.sq.emplace(cin);
      st.sq->add(in);
    }
    if (s_.metric == Metric::sar) {
      if (!st.mean) st.mean.emplace(in.rows(), cin);
      st.mean->add(in);
    }
    if (s_.metric == Metric::sparsegpt) {
      if (!st.h) st.h.emplace(cin);
      st.h->add(in);
    }
    if (s_.smooth && (leader == Linear::wq || leader == Linear::w1)) {
      if (!st.absmax) st.absmax.emplace(cin);
      st.absmax->add(in);
    }
  }

  void compress_block(std::size_t b, sparq::model::LlamaBlock& blk, sparq::model::Llama& model) override {
    for (Linear l : sparq::model::all_linears) prune(blk.linear(l), stats_[sparq::model::input_group_leader(l)], l);
    if (s_.smooth) {
      const sparq::Smooth smooth(sparq::SmoothOptions{static_cast<float>(s_.alpha)});
      for (const auto& g : sparq::llama_smooth_groups())
        (void)smooth.apply(blk, g, *stats_.at(sparq::model::input_group_leader(g.linears[0])).absmax);
    }
    for (Linear l : sparq::model::all_linears) {
      Matrix<float>& w = blk.linear(l);
      using namespace sparq;
      if (s_.wbits == 8 && s_.group == 0) fake_quantize_inplace<Quantizer<Symmetric, PerChannel, 8>>(w);
      else if (s_.wbits == 4 && s_.group == 0) fake_quantize_inplace<Quantizer<Symmetric, PerChannel, 4>>(w);
      else if (s_.wbits == 8 && s_.group == 32) fake_quantize_inplace<Quantizer<Symmetric, PerGroup<32>, 8>>(w);
      else if (s_.wbits == 4 && s_.group == 32) fake_quantize_inplace<Quantizer<Symmetric, PerGroup<32>, 4>>(w);
      else if (s_.wbits == 8 && s_.group == 64) fake_quantize_inplace<Quantizer<Symmetric, PerGroup<64>, 8>>(w);
      else if (s_.wbits == 4 && s_.group == 64) fake_quantize_inplace<Quantizer<Symmetric, PerGroup<64>, 4>>(w);
      else if (s_.wbits == 8 && s_.group == 128) fake_quantize_inplace<Quantizer<Symmetric, PerGroup<128>, 8>>(w);
      else if (s_.wbits == 4 && s_.group == 128) fake_quantize_inplace<Quantizer<Symmetric, PerGroup<128>, 4>>(w);
      LinearInfo li;
      li.rows = w.rows();
      li.cols = w.cols();
      li.nnz = static_cast<std::size_t>(std::count_if(w.data(), w.data() + w.size(), [](float v) { return v != 0.0f; }));
      li.pruned = s_.metric != Metric::none;
      if (li.pruned && s_.m) {
        li.m = w.cols() % s_.m == 0 ? s_.m : 4;
        li.n = li.m / 2;
      }
      li.wbits = s_.wbits;
      li.group = s_.group;
      linears.push_back(li);
    }
    model.refresh_block(b);
    if (s_.abits < 32)
      for (Linear l : sparq::model::all_linears)
        model.set_linear(b, l, std::make_unique<sparq::model::InputQuantLinear>(model.take_linear(b, l), s_.abits));
    stats_.clear();
  }

  std::vector<LinearInfo> linears;

 private:
  template <class Pat>
  void prune_with(Matrix<float>& w, const GroupStats& st) const {
    sparq::PruneOptions o;
    o.sparsity = static_cast<float>(s_.sparsity);
    o.lambda = sparq::jsq_paper_lambda;
    const auto view = w.view();
    switch (s_.metric) {
      case Metric::none: return;
      case Metric::magnitude: (void)sparq::Pruner<sparq::Magnitude, Pat>(o).prune(view); return;
      case Metric::wanda: (void)sparq::Pruner<sparq::Wanda, Pat>(o).prune(view, *st.sq); return;
      case Metric::sparsegpt: (void)sparq::Pruner<sparq::SparseGPT, Pat>(o).prune(view, *st.h); return;
      case Metric::sar: (void)sparq::Pruner<sparq::SAR, Pat>(o).prune(view, sparq::SarStats(*st.sq, *st.mean)); return;
    }
  }
  void prune(Matrix<float>& w, const GroupStats& st, Linear) const {
    if (s_.m == 0) prune_with<sparq::Unstructured>(w, st);
    else if (s_.m == 8 && w.cols() % 8 == 0) prune_with<sparq::NM<4, 8>>(w, st);
    else prune_with<sparq::NM<2, 4>>(w, st);  // 2:4, or 4:8 on a cin that is not a multiple of 8
  }

  const Spec& s_;
  std::vector<double> edit_r_;
  std::map<Linear, GroupStats> stats_;
};

struct Compressed {
  sparq::model::Llama model;
  std::vector<LinearInfo> linears;
};

Compressed run_spec(const Spec& s, const std::vector<double>& edit_r, const sparq::model::LlamaWeights& dense,
                    const std::vector<std::vector<int>>& windows) {
  sparq::model::Llama model{sparq::model::LlamaWeights(dense)};
  SpecCallbacks cb(s, edit_r);
  const std::size_t L = dense.config.n_layers;
  if (s.metric != Metric::none || s.smooth || s.wbits < 32 || s.abits < 32) {
    (void)sparq::model::run_layerwise(model, windows, cb);
  } else {
    for (std::size_t b = 0; b < L; ++b) cb.compress_block(b, model.block_weights(b), model);
  }
  if (s.abits < 32) model.set_attention_input_bits(s.abits);
  SPARQ_CHECK(cb.linears.size() == L * std::size(sparq::model::all_linears), "compressed ", cb.linears.size(),
              " linears, expected ", L * std::size(sparq::model::all_linears));
  return {std::move(model), std::move(cb.linears)};
}

// ---------------------------------------------------------------------------------------------
// Real kernels: every compressed linear is replaced by the packed op of its format (model/pack_model.hpp).

struct PackResult {
  bool ok = false;
  std::string formats;  // e.g. "35x nm_w8 4:8 A8"; or why packing failed
  double bytes = 0;     // Llama::linear_weight_bytes() after packing
};

// Packs every decoder linear with pack_linear, choosing the format per linear from what the recipe did:
//   N:M pruned -> nm_f32 / nm_w8 / nm_w4 (M of the recipe; a 2:4-pruned w2 in a 4:8 recipe is also 4:8);
//   quantized  -> w8 (per channel) / w4 (group G; per channel = the smallest G in {32, 64, 128} >= cin);
//   float and not N:M (dense or unstructured sparse) -> left as the dense f32 op.
// An InputQuantLinear(8) wrapper becomes the kernels' real int8 activation path; other widths stay wrapped.
PackResult pack_for_real(sparq::model::Llama& model, const std::vector<LinearInfo>& lin, const Spec& s) {
  using namespace sparq::model;
  PackResult r;
  std::map<std::string, int> count;
  std::vector<std::pair<std::pair<std::size_t, Linear>, std::unique_ptr<LinearOp>>> ops;  // installed only if all pack
  try {
    std::size_t i = 0;
    for (std::size_t b = 0; b < model.config().n_layers; ++b) {
      for (Linear l : all_linears) {
        const LinearInfo& li = lin.at(i++);
        const std::string where = sparq::detail::concat("block ", b, " ", linear_name(l));
        const bool nm = li.pruned && s.m != 0;
        if (!nm && li.wbits >= 32) {
          ++count[model.linear(b, l).describe().substr(0, 9)];
          continue;
        }
        PackOptions o;
        o.nm_n = s.n ? s.n : 2;
        o.nm_m = s.m ? s.m : 4;
        std::size_t g = li.group;
        if (li.wbits == 4 && g == 0) {
          for (std::size_t c : {32u, 64u, 128u})
            if (c >= li.cols) { g = c; break; }
          SPARQ_CHECK(g != 0, where, ": W4 per output channel needs one group of ", li.cols,
                      " inputs; the int4 kernels take groups of 32, 64 or 128");
        }
        if (nm) {
          o.format = li.wbits >= 32 ? PackFormat::nm_f32 : li.wbits == 8 ? PackFormat::nm_w8 : PackFormat::nm_w4;
          if (li.wbits == 4) o.group_size = g * o.nm_n / o.nm_m;  // kept values per scale
          SPARQ_CHECK(li.wbits >= 32 || li.wbits == 8 || li.wbits == 4, where, ": ", li.wbits, "-bit weights have no packed op");
        } else {
          SPARQ_CHECK(li.wbits == 8 || li.wbits == 4, where, ": ", li.wbits, "-bit weights have no packed op");
          o.format = li.wbits == 8 ? PackFormat::w8 : PackFormat::w4;
          o.group_size = g ? g : 32;
        }
        int bits = 0;
        if (const auto* iq = dynamic_cast<const InputQuantLinear*>(&model.linear(b, l))) bits = iq->bits();
        const ActivationMode act = bits == 8 ? ActivationMode::a8 : ActivationMode::a32;
        std::unique_ptr<LinearOp> op =
            pack_linear(std::as_const(model.block_weights(b).linear(l)).view(), o, act, where);
        if (bits != 0 && bits != 8) op = std::make_unique<InputQuantLinear>(std::move(op), bits);
        ++count[std::string(pack_format_name(o.format)) + (nm ? " " + std::to_string(o.nm_n) + ":" + std::to_string(o.nm_m) : "") +
                (o.format == PackFormat::w4 || o.format == PackFormat::nm_w4 ? " g" + std::to_string(o.group_size) : "") +
                (act == ActivationMode::a8 ? " A8" : " A32")];
        ops.emplace_back(std::make_pair(b, l), std::move(op));
      }
    }
    r.ok = true;
  } catch (const std::exception& e) {
    r.formats = std::string("not packed: ") + e.what();
    return r;
  }
  for (auto& [bl, op] : ops) model.set_linear(bl.first, bl.second, std::move(op));
  for (const auto& [k, n] : count) r.formats += (r.formats.empty() ? "" : ", ") + std::to_string(n) + "x " + k;
  r.bytes = static_cast<double>(model.linear_weight_bytes());
  return r;
}

// ---------------------------------------------------------------------------------------------

struct Context {
  const Args& args;
  const sparq::model::LlamaWeights& dense;
  std::vector<std::vector<int>> windows;
  std::vector<int> eval_stream, heldout_stream;
  std::vector<double> choices;
};

std::string pattern_of(const Spec& s, const std::vector<LinearInfo>& lin) {
  if (s.metric == Metric::none) return "dense";
  if (s.m == 0) return "unstr";
  bool mixed = false;
  for (const auto& l : lin) mixed |= l.m != s.m;
  return std::to_string(s.n) + ":" + std::to_string(s.m) + (mixed ? "*" : "");
}

Row run_method(const Method& me, Context& ctx) {
  const Spec& s = me.spec;
  const std::size_t L = ctx.dense.config.n_layers;
  std::vector<double> edit_r(L, s.edit ? s.edit_r : 0.0);
  Row row;
  row.method = me.name;
  row.recipe = me.recipe;
  row.note = me.note;
  const auto t0 = std::chrono::steady_clock::now();
  if (s.search) {
    sparq::model::PerplexityOptions hopt;
    hopt.max_tokens = 0;
    auto objective = [&](const std::vector<std::size_t>& v) {
      std::vector<double> r(L);
      for (std::size_t i = 0; i < L; ++i) r[i] = ctx.choices[v[i]];
      Compressed c = run_spec(s, r, ctx.dense, ctx.windows);
      return -1e4 * std::log(sparq::model::perplexity(c.model, ctx.heldout_stream, hopt).perplexity);
    };
    std::vector<std::size_t> start(L, 0);
    for (std::size_t i = 0; i < ctx.choices.size(); ++i)
      if (ctx.choices[i] == 5e-5) std::fill(start.begin(), start.end(), i);
    sparq::AnnealOptions ao;
    ao.steps = static_cast<std::size_t>(ctx.args.sa_steps);
    ao.seed = static_cast<std::uint64_t>(ctx.args.sa_seed);
    const auto res = sparq::anneal(start, ctx.choices.size(), objective, ao, [&](const sparq::AnnealStep& st) {
      std::fprintf(stderr, "  [%s] SA step %zu/%zu T=%.1f score %.1f %s%s\n", me.name.c_str(), st.step + 1, ao.steps,
                   st.temperature, st.score, st.accepted ? "accepted" : "rejected", st.cached ? " (cached)" : "");
    });
    std::string vs;
    for (std::size_t i = 0; i < L; ++i) {
      edit_r[i] = ctx.choices[res.best[i]];
      char b[32];
      std::snprintf(b, sizeof b, "%s%g", i ? "," : "", edit_r[i]);
      vs += b;
    }
    char b[160];
    std::snprintf(b, sizeof b, "V=[%s] steps=%zu evaluations=%zu heldout ppl %.4f -> %.4f", vs.c_str(), ao.steps,
                  res.evaluations, std::exp(-res.start_score / 1e4), std::exp(-res.best_score / 1e4));
    row.search = b;
  }
  Compressed c = run_spec(s, edit_r, ctx.dense, ctx.windows);
  const auto t1 = std::chrono::steady_clock::now();
  sparq::model::PerplexityOptions popt;
  popt.max_tokens = static_cast<std::size_t>(ctx.args.max_tokens);
  const auto res = sparq::model::perplexity(c.model, ctx.eval_stream, popt);
  const auto t2 = std::chrono::steady_clock::now();
  row.ppl_fake = res.perplexity;
  row.nll_fake = res.mean_nll;
  if (ctx.args.real) {
    const PackResult pr = pack_for_real(c.model, c.linears, s);
    row.real_formats = pr.formats;
    const auto t3 = std::chrono::steady_clock::now();
    row.pack_s = std::chrono::duration<double>(t3 - t2).count();
    if (pr.ok) {
      const auto rr = sparq::model::perplexity(c.model, ctx.eval_stream, popt);
      row.has_real = true;
      row.ppl_real = rr.perplexity;
      row.nll_real = rr.mean_nll;
      row.stored_bytes = pr.bytes;
      row.real_eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t3).count();
    }
  }
  if (!ctx.args.out.empty()) {
    // Round trip: the file read back must score exactly what the row reports.
    sparq::io::write_packed_model(ctx.args.out, c.model);
    const sparq::model::Llama back = sparq::io::read_packed_model(ctx.args.out);
    row.out_ppl = sparq::model::perplexity(back, ctx.eval_stream, popt).perplexity;
    const double want = row.has_real ? row.ppl_real : row.ppl_fake;
    SPARQ_CHECK(row.out_ppl == want, "--out ", ctx.args.out, ": the model read back scores perplexity ", row.out_ppl,
                ", the compressed model ", want);
    std::error_code ec;
    const auto size = std::filesystem::file_size(ctx.args.out, ec);
    char b[400];
    std::snprintf(b, sizeof b, "wrote %s (%llu bytes, SPRQ container%s); read back: perplexity %.6f = %s perplexity",
                  ctx.args.out.c_str(), static_cast<unsigned long long>(size),
                  row.has_real ? ", linears as run by the real kernels" : ", fake-quantized f32 linears",
                  row.out_ppl, row.has_real ? "real-kernel" : "fake-quant");
    row.out_msg = b;
  }

  double total = 0, nnz = 0, dense_macs = 0;
  for (const auto& li : c.linears) {
    const Storage st = storage_of(li);
    row.theory_bytes += st.bytes;
    row.macs += st.macs;
    total += static_cast<double>(li.rows * li.cols);
    nnz += static_cast<double>(li.nnz);
    dense_macs += static_cast<double>(li.rows * li.cols);
  }
  row.dense_bytes = 4.0 * total;
  row.sparsity = 1.0 - nnz / total;
  row.macs_rel = row.macs / dense_macs;
  row.wbits = s.wbits;
  row.abits = s.abits;
  row.group = s.group;
  row.pattern = pattern_of(s, c.linears);
  row.compress_s = std::chrono::duration<double>(t1 - t0).count();
  row.eval_s = std::chrono::duration<double>(t2 - t1).count();
  return row;
}

std::vector<double> parse_choices(const std::string& s) {
  if (s.empty()) return {0.0, 4e-5, 5e-5, 6e-5, 7e-5};
  std::vector<double> v;
  for (const auto& p : split(s, ',')) {
    const double r = parse_double("--edit-choices", p);
    SPARQ_CHECK(r >= 0 && r <= 0.5, "--edit-choices: ", r, " is outside [0, 0.5]");
    v.push_back(r);
  }
  SPARQ_CHECK(!v.empty(), "--edit-choices is empty");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sparq_compress;
  const char* env = std::getenv("SPARQ_DATA_DIR");
  const std::string data = env && *env ? env : SPARQ_DATA_DIR;
  Args args;
  std::vector<Method> todo;
  try {
    if (!parse_args(argc, argv, args, data)) return 0;
    if (args.recipe == "compare") {
      todo = compare_methods(args);
    } else if (auto m = named_method(args.recipe, args)) {
      todo.push_back(*m);
    } else {
      todo.push_back(Method{args.recipe, args.recipe, "", parse_recipe_string(args.recipe)});
    }
  } catch (const ArgError& e) {
    std::fprintf(stderr, "sparq-compress: %s\n", e.msg.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq-compress: %s\n  (--recipe expects compare, a name (dense, magnitude, wanda, "
                 "sparsegpt, smoothquant, wanda+smoothquant, sparsegpt+smoothquant, jsq, jsq-sar, jsq-noedit, "
                 "jsq-nosearch, jsq-2:4, jsq-4:8) or a recipe string)\n", e.what());
    return 2;
  }

  try {
    auto loaded = sparq::io::load(args.model, args.tokenizer);
    const auto& cfg = loaded.model.config();
    const std::size_t ncal = static_cast<std::size_t>(args.nsamples * args.seqlen);
    const std::size_t sa_tok = static_cast<std::size_t>(args.sa_tokens);
    const auto calib_stream = sparq::model::document_token_stream_file(args.calib, loaded.tokenizer, 0);
    Context ctx{args, loaded.model.weights(), {}, {}, {}, parse_choices(args.edit_choices)};
    ctx.windows = sparq::model::calibration_windows(calib_stream, static_cast<std::size_t>(args.nsamples),
                                                    static_cast<std::size_t>(args.seqlen), args.calib_seed >= 0,
                                                    static_cast<std::uint64_t>(std::max(0LL, args.calib_seed)));
    // SA objective: the calibration tokens right after the consecutive calibration windows.
    if (calib_stream.size() > ncal)
      ctx.heldout_stream.assign(calib_stream.begin() + static_cast<std::ptrdiff_t>(ncal),
                                calib_stream.begin() + static_cast<std::ptrdiff_t>(std::min(calib_stream.size(), ncal + sa_tok)));
    const bool any_search = std::any_of(todo.begin(), todo.end(), [](const Method& m) { return m.spec.search; });
    SPARQ_CHECK(!any_search || ctx.heldout_stream.size() >= 2, "the calibration text has ", calib_stream.size(),
                " tokens: nothing is left after the ", ncal, " calibration tokens for the SA objective");
    ctx.eval_stream = sparq::model::document_token_stream_file(args.eval, loaded.tokenizer,
                                                               static_cast<std::size_t>(args.max_tokens));

    std::printf("sparq-compress: model %s (dim %zu, hidden %zu, %zu layers, %zu linears per layer)\n",
                args.model.c_str(), cfg.dim, cfg.hidden_dim, cfg.n_layers, std::size(sparq::model::all_linears));
    std::printf("protocol: calibration %lld windows x %lld tokens (%s) of %s (%zu tokens), layer-wise with error "
                "propagation; evaluation %zu tokens of %s in windows of %zu from position 0; SA objective: %zu "
                "held-out calibration tokens, %lld steps, seed %lld\n",
                args.nsamples, args.seqlen, args.calib_seed >= 0 ? "seeded random starts" : "first consecutive",
                args.calib.c_str(), calib_stream.size(), ctx.eval_stream.size(), args.eval.c_str(), cfg.seq_len,
                ctx.heldout_stream.size(), args.sa_steps, args.sa_seed);
    std::printf("note: ppl_fake = quantize->dequantize in f32; bytes/MACs: decoder linears only (docs/compress.md)\n\n");
    print_header();

    std::vector<Row> rows;
    const auto t_all = std::chrono::steady_clock::now();
    for (const Method& m : todo) {
      rows.push_back(run_method(m, ctx));
      print_row(rows.back());
      if (!rows.back().search.empty()) std::printf("    search: %s\n", rows.back().search.c_str());
      if (!rows.back().real_formats.empty()) std::printf("    real:   %s\n", rows.back().real_formats.c_str());
      if (!rows.back().out_msg.empty()) std::printf("    out:    %s\n", rows.back().out_msg.c_str());
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
    std::printf("\ntotal %.1f s\n", wall);

    if (!args.json.empty()) {
      std::string j = "{\n  \"model\": \"" + json_escape(args.model) + "\",\n  \"calib\": \"" +
                      json_escape(args.calib) + "\",\n  \"eval\": \"" + json_escape(args.eval) + "\",\n";
      j += "  \"nsamples\": " + std::to_string(args.nsamples) + ", \"seqlen\": " + std::to_string(args.seqlen) +
           ", \"calib_seed\": " + std::to_string(args.calib_seed) + ", \"max_tokens\": " +
           std::to_string(args.max_tokens) + ", \"eval_tokens\": " + std::to_string(ctx.eval_stream.size()) + ",\n";
      j += "  \"sa_steps\": " + std::to_string(args.sa_steps) + ", \"sa_seed\": " + std::to_string(args.sa_seed) +
           ", \"sa_tokens\": " + std::to_string(ctx.heldout_stream.size()) + ", \"total_seconds\": " +
           json_num(wall, 3) + ",\n  \"rows\": [\n";
      for (std::size_t i = 0; i < rows.size(); ++i) j += "    " + json_row(rows[i]) + (i + 1 < rows.size() ? ",\n" : "\n");
      j += "  ]\n}\n";
      sparq::io::detail::write_file_atomic(args.json, j.data(), j.size());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq-compress: %s\n", e.what());
    return 1;
  }
}
