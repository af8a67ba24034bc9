// sparq-compress: compress a Llama model with one recipe (or the paper's comparison), evaluate
// perplexity, and report sparsity, bits, stored bytes, MACs and perplexity per method.
//
// Every row starts from a fresh copy of the dense weights. Calibration statistics come from the
// layer-wise driver (model/calibration.hpp) with error propagation. LoRC / LowRank stages run inside
// the compression (their ops installed block by block); the real-kernel pass keeps their factors
// around the packed ops and --out writes them (packed model version 2).
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <variant>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include <sparq/core/error.hpp>
#include <sparq/core/version.hpp>
#include <sparq/io/compress_stream.hpp>
#include <sparq/io/gguf_export.hpp>
#include <sparq/io/load.hpp>
#include <sparq/io/packed_model.hpp>
#include <sparq/joint/jsq_search.hpp>
#include <sparq/joint/named_recipes.hpp>
#include <sparq/joint/pack_compressed.hpp>
#include <sparq/joint/recipe.hpp>
#include <sparq/kernels/dispatch.hpp>
#include <sparq/model/calibration.hpp>
#include <sparq/model/input_quant_linear.hpp>
#include <sparq/model/pack_model.hpp>
#include <sparq/model/perplexity.hpp>
#include <sparq/prune/pruner.hpp>

#include "cli.hpp"
#include "report.hpp"

namespace {

using sparq::Matrix;
using sparq::MatrixView;
using sparq::model::Linear;
using namespace sparq_compress;

// ---------------------------------------------------------------------------------------------
// Methods: sparq::joint's run-time recipes (joint/recipe.hpp) executed by sparq::compress.

struct Method {
  std::string name;        // row label: a named recipe, or the recipe string given
  sparq::RecipeSpec spec;  // spec.search: JSQ's simulated-annealing search over the editing vector
  std::string note;
};

sparq::NamedRecipeOptions named_options(const Args& a) {
  sparq::NamedRecipeOptions o;
  o.sparsity = a.sparsity;
  o.weight_bits = a.wbits;
  o.group_size = static_cast<std::size_t>(a.group);
  o.activation_bits = a.abits >= 32 ? 0 : a.abits;
  return o;
}

// The paper's comparison (Tables 1-3) at sparsity S and bits W/A (--sparsity, --wbits, --abits, --group).
std::vector<Method> compare_methods(const Args& a) {
  static const std::pair<const char*, const char*> rows[] = {
      {"dense", ""},
      {"magnitude", ""},
      {"wanda", ""},
      {"sparsegpt", ""},
      {"smoothquant", ""},
      {"wanda+smoothquant", ""},
      {"sparsegpt+smoothquant", ""},
      {"jsq", "JSQ: editor (searched V) + SAR + smooth + quant"},
      {"jsq-nosar", "Table 3 '-SAR': Wanda metric instead of SAR (search on)"},
      {"jsq-noedit", "Table 3 '-Editing': no activation editor"},
      {"jsq-nosearch", "Table 3 '-Search': r = 5e-5 in every block"},
      {"jsq-2:4", "Table 2: JSQ with 2:4 (search on)"},
      {"jsq-4:8", "Table 2: JSQ with 4:8 (search on)"},
      {"sparsegpt+smoothquant-2:4", "N:M baseline: SparseGPT's 2:4 mask and update, smooth, quant"},
      {"sparsegpt+smoothquant-4:8", "N:M baseline: SparseGPT's 4:8 mask and update, smooth, quant"},
      {"jsq+", "jsq+: smooth, exact greedy OBS (mask + reconstruction), mask-preserving GPTQ on the RTN grid"},
      {"jsq+-2:4", "jsq+ with 2:4 (OBS under the N:M constraint)"},
      {"jsq+-4:8", "jsq+ with 4:8 (2:4 on w2)"},
  };
  std::vector<Method> v;
  for (const auto& [name, note] : rows) v.push_back({name, sparq::named_recipe(name, named_options(a)), note});
  return v;
}

// LoRC (low-rank compensation, rank 8, int8 factors, Cholesky whitening) on three setups, each without
// and with the correction: W4 g128 weight-only RTN, SAR (--sparsity) + W8 weight-only, and JSQ
// (--wbits/--abits/--group, searched). `--recipe compare-lorc`; not part of `compare` (time budget of
// the main job, docs/compress.md).
std::vector<Method> compare_lorc_methods(const Args& a) {
  sparq::NamedRecipeOptions w4;
  w4.weight_bits = 4;
  w4.group_size = 128;
  w4.activation_bits = 0;
  char sar[64];
  std::snprintf(sar, sizeof sar, "sar:%g,w8,a0", a.sparsity);
  std::string sar_lorc = sar;
  sar_lorc.insert(sar_lorc.size() - 3, ",lorc:8");
  return {{"w4g128", sparq::named_recipe("w8a8", w4), "W4 g128 weight-only RTN"},
          {"w4g128+lorc", sparq::named_recipe("w8a8+lorc", w4), "W4 g128 + LoRC r8 int8"},
          {"sar+w8", sparq::parse_recipe(sar), "SAR + W8 weight-only"},
          {"sar+w8+lorc", sparq::parse_recipe(sar_lorc), "SAR + W8 + LoRC r8 int8"},
          {"jsq", sparq::named_recipe("jsq", named_options(a)), "JSQ (searched V)"},
          {"jsq+lorc", sparq::named_recipe("jsq+lorc", named_options(a)), "JSQ (searched V) + LoRC r8 int8"}};
}

bool is_named(const std::string& r) {
  std::string base = r;
  if (base.size() > 5 && base.substr(base.size() - 5) == "+lorc") base.resize(base.size() - 5);
  for (const char* suf : {"-2:4", "-4:8"})
    if (base.size() > 4 && base.substr(base.size() - 4) == suf) base.resize(base.size() - 4);
  const auto names = sparq::named_recipe_names();
  return std::find(names.begin(), names.end(), base) != names.end();
}

const sparq::PruneStageSpec* prune_stage(const sparq::RecipeSpec& s) {
  for (const auto& st : s.stages)
    if (const auto* p = std::get_if<sparq::PruneStageSpec>(&st)) return p;
  return nullptr;
}

struct Compressed {
  sparq::model::Llama model;
  std::vector<LinearInfo> linears;
  sparq::CompressReport report;
};

// N:M with M = 8 on a model whose widths are not all multiples of 8 (stories260K's w2: cin 172): the
// prune stage gets the library's fallback (PruneStageSpec::nm_fallback, joint/stages.hpp NMFallback):
// (N/2):4 on those linears, the same density; the named "-4:8" recipes set it themselves, a recipe
// string gets it here (as if it said ':fallback'). LinearReport::nm_fallback marks the linears.
void enable_nm_fallback(sparq::RecipeSpec& spec, const sparq::model::LlamaConfig& c) {
  for (auto& st : spec.stages)
    if (auto* p = std::get_if<sparq::PruneStageSpec>(&st))
      if (p->pattern == sparq::PrunePatternKind::nm && p->m == 8 && (c.dim % 8 != 0 || c.hidden_dim % 8 != 0))
        p->nm_fallback = true;
}

// Compresses a fresh copy of the dense model with `spec` (editing vector `edit_r` when non-empty).
// LoRC / LowRank stages install their ops while compressing (CompensatedLinear outermost,
// LowRankLinear), so ppl_fake runs the corrections too.
Compressed run_spec(const sparq::RecipeSpec& spec, const std::vector<double>& edit_r,
                    const sparq::model::LlamaWeights& dense, const std::vector<std::vector<int>>& windows,
                    const std::string& progress_label = "") {
  sparq::model::Llama model{sparq::model::LlamaWeights(dense)};
  sparq::CompressOptions co;
  co.edit_strengths = edit_r;
  if (!progress_label.empty()) {  // stderr, so the table on stdout stays clean
    co.progress = [progress_label](std::size_t done, std::size_t blocks, double s) {
      std::fprintf(stderr, "%s: block %zu/%zu, %.1f s elapsed, ETA %.0f s\n", progress_label.c_str(), done, blocks, s,
                   s / static_cast<double>(done) * static_cast<double>(blocks - done));
    };
  }
  sparq::CompressReport rep = sparq::compress(model, windows, spec, co);
  const sparq::PruneStageSpec* ps = prune_stage(spec);
  std::vector<LinearInfo> lin;
  for (const auto& lr : rep.linears) {
    LinearInfo li;
    li.rows = lr.rows;
    li.cols = lr.cols;
    li.nnz = lr.nnz;
    li.pruned = ps != nullptr;
    li.n = lr.nm_n;
    li.m = lr.nm_m;
    li.nm_fallback = lr.nm_fallback;
    li.wbits = lr.weight_bits;
    li.group = lr.group_size;
    li.abits = lr.activation_bits;
    if (lr.factors) {
      li.rank = lr.factors->rank();
      li.factor_bytes = lr.factors->bytes();
      li.replaced = lr.factors->role == sparq::FactorRole::replacement;
      li.factor_format = std::string(sparq::lowrank::factor_format_name(lr.factors->format()));
      if (li.replaced && li.wbits < 32) {  // a quantizer after LowRank put A and B on its grid: count them in its bits
        li.factor_format = "w" + std::to_string(li.wbits) + (li.group ? "g" + std::to_string(li.group) : "");
        li.factor_bytes = static_cast<std::size_t>(storage_of(li).bytes);
      }
    }
    lin.push_back(li);
  }
  const std::size_t want = dense.config.n_layers * std::size(sparq::model::all_linears);
  SPARQ_CHECK(lin.size() == want, "compress reported ", lin.size(), " linears, expected ", want);
  return {std::move(model), std::move(lin), std::move(rep)};
}

// ---------------------------------------------------------------------------------------------
// Real kernels: every compressed linear is replaced by the packed op of its format (model/pack_model.hpp).

struct PackResult {
  bool ok = false;
  std::string formats;  // e.g. "35x nm_w8 4:8 A8"; or why packing failed
  double bytes = 0;     // Llama::linear_weight_bytes() after packing
};

// Packs every decoder linear for the real-kernel evaluation and --out (sparq::pack_compressed,
// joint/pack_compressed.hpp: the format of each linear from what the recipe did to it).
PackResult pack_for_real(sparq::model::Llama& model, const sparq::CompressReport& rep, bool pruned) {
  PackResult r;
  try {
    r.formats = sparq::pack_compressed(model, rep, pruned).describe();
    r.ok = true;
  } catch (const std::exception& e) {
    r.formats = std::string("not packed: ") + e.what();
    return r;
  }
  r.bytes = static_cast<double>(model.linear_weight_bytes());
  return r;
}

// ---------------------------------------------------------------------------------------------

struct Context {
  const Args& args;
  const sparq::model::LlamaWeights& dense;
  const sparq::io::GgufVocab& vocab;
  const sparq::model::Tokenizer& tokenizer;
  std::vector<std::vector<int>> windows;
  std::vector<int> eval_stream, heldout_stream;
  std::vector<double> choices;
};

std::string pattern_of(const sparq::RecipeSpec& spec) {
  const sparq::PruneStageSpec* p = prune_stage(spec);
  if (!p) return "dense";
  switch (p->pattern) {
    case sparq::PrunePatternKind::nm: return std::to_string(p->n) + ":" + std::to_string(p->m);  // '*' added by caller
    case sparq::PrunePatternKind::unstructured: return "unstr";
    case sparq::PrunePatternKind::unstructured_layer: return "layer";
    case sparq::PrunePatternKind::output_channels: return "outch";
    case sparq::PrunePatternKind::input_channels: return "inch";
  }
  return "?";
}

// FNV-1a 64 over the bit patterns of every block's float weights and norms after compression (the
// fake-quantized model that the packer reads its codes from): equal hashes = equal compressed
// weights, e.g. the same recipe run with --target sse2 and --target avx512vnni.
std::string weights_hash(const sparq::model::LlamaWeights& w) {
  std::uint64_t h = 1469598103934665603ull;
  auto add = [&h](const float* p, std::size_t n) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const auto& blk : w.blocks) {
    add(blk.rms_att.data(), blk.rms_att.size());
    add(blk.rms_ffn.data(), blk.rms_ffn.size());
    for (const sparq::Matrix<float>* m : {&blk.wq, &blk.wk, &blk.wv, &blk.wo, &blk.w1, &blk.w2, &blk.w3})
      add(m->data(), m->size());
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool is_gguf_path(const std::string& p) {
  if (p.size() < 5) return false;
  std::string ext = p.substr(p.size() - 5);
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".gguf";
}

sparq::io::GgmlType gguf_type_arg(const std::string& t) {
  using sparq::io::GgmlType;
  if (t == "f32") return GgmlType::F32;
  if (t == "f16") return GgmlType::F16;
  if (t == "bf16") return GgmlType::BF16;
  if (t == "q8_0") return GgmlType::Q8_0;
  if (t == "q5_1") return GgmlType::Q5_1;
  if (t == "q5_0") return GgmlType::Q5_0;
  if (t == "q4_1") return GgmlType::Q4_1;
  if (t == "q4_0") return GgmlType::Q4_0;
  sparq::detail::fail("unknown GGUF type '", t, "'");
}

// --out *.gguf: the compressed weights in the ggml block types that hold them exactly
// (io/gguf_export.hpp), read back by sparq's GGUF reader and scored twice: with the activation
// quantization the file declares (sparq.activation_bits / sparq.attention_bits, applied by io::load:
// what sparq runs) and with float activations (what llama.cpp runs: it uses its own activation
// blocks). Each is compared with the same in-memory weights run the same way.
void write_gguf_out(const std::string& out, const Method& me, const Compressed& c, const Context& ctx,
                    const sparq::model::PerplexityOptions& popt, Row& row) {
  sparq::io::GgufExportOptions go;
  go.float_type = gguf_type_arg(ctx.args.gguf_float);
  go.fallback_type = gguf_type_arg(ctx.args.gguf_fallback);
  go.requant_type = gguf_type_arg(ctx.args.gguf_requant);
  go.embedding_type = gguf_type_arg(ctx.args.gguf_embedding);
  for (const auto& li : c.linears) go.weight_bits.push_back(li.wbits);
  go.name = "sparq " + me.name;
  go.metadata.emplace_back("sparq.method", me.name);
  go.metadata.emplace_back("sparq.recipe", row.recipe);
  if (!row.search.empty()) go.metadata.emplace_back("sparq.search", row.search);
  go.metadata.emplace_back("general.description",
                           std::string("compressed by sparq ") + sparq::version_string + " with recipe '" + row.recipe +
                               "'" + (row.abits < 32 ? "; activation quantization (A" + std::to_string(row.abits) +
                                                           ") is declared in sparq.activation_bits, not in the "
                                                           "weights: other runtimes use their own activations"
                                                     : std::string()));
  const sparq::io::GgufExportReport rep = sparq::io::write_gguf_export(out, c.model, &ctx.vocab, go);
  using sparq::io::StoredActivations;
  sparq::model::Llama ref{sparq::io::gguf_export_weights(c.model)};
  row.gguf_float_ref_ppl = sparq::model::perplexity(ref, ctx.eval_stream, popt).perplexity;
  row.gguf_float_ppl =
      sparq::model::perplexity(sparq::io::load_model(out, StoredActivations::ignore), ctx.eval_stream, popt).perplexity;
  const bool declared = rep.activation_bits != 0 || rep.attention_bits != 0;
  std::size_t scored = 0;
  if (declared) {
    sparq::io::apply_activation_bits(ref, rep.linear_activation_bits, rep.attention_bits);
    const auto ref_res = sparq::model::perplexity(ref, ctx.eval_stream, popt);
    row.gguf_ref_ppl = ref_res.perplexity;
    scored = ref_res.scored_tokens;
    row.gguf_ppl =
        sparq::model::perplexity(sparq::io::load_model(out, StoredActivations::apply), ctx.eval_stream, popt).perplexity;
  } else {
    row.gguf_ref_ppl = row.gguf_float_ref_ppl;
    row.gguf_ppl = row.gguf_float_ppl;
  }
  row.gguf_bytes = static_cast<double>(rep.file_bytes);
  // Exact encodings change weights by the fp16 scale rounding only (docs/formats.md#gguf-export):
  // measured <= 0.04 % in perplexity on stories260K with float activations; more than 0.5 % means the
  // export is wrong. With quantized activations the same 2^-11 weight changes flip the rounding of
  // some int8 activation codes, which moves single tokens' NLL a lot on a heavily pruned model: the
  // difference is noise that averages out over many tokens (sparsegpt+smoothquant W8A8: -1.07 % on
  // 2,048 tokens, -0.21 % on 4,096, +0.01 % on 60,000; wanda+smoothquant +1.84 % on 2,048). So that comparison
  // is held to 0.5 % from 16,384 scored tokens on, and only to 3 % on shorter evaluations.
  const bool lossy = std::any_of(rep.linears.begin(), rep.linears.end(),
                                 [](const auto& e) { return e.encoding == sparq::io::GgufEncoding::requantized; });
  const double declared_tol = scored >= 16384 ? 0.005 : 0.03;
  for (const auto& [got, want, how, tol] :
       {std::tuple{row.gguf_ppl, row.gguf_ref_ppl, "with its declared activations", declared_tol},
        std::tuple{row.gguf_float_ppl, row.gguf_float_ref_ppl, "with float activations", 0.005}})
    SPARQ_CHECK(lossy || std::fabs(got / want - 1.0) <= tol, "--out ", out, ": the GGUF read back ", how,
                " scores perplexity ", got, ", the same weights in memory ", want, " (more than ", 100.0 * tol,
                " % apart)");
  std::string types;
  for (const auto& [k, n] : rep.summary()) types += (types.empty() ? "" : ", ") + std::to_string(n) + "x " + k;
  double worst = 0;  // largest change relative to the largest weight of its linear
  std::size_t zeros = 0, kept = 0;
  for (const auto& e : rep.linears) {
    if (e.max_abs_weight > 0) worst = std::max(worst, e.max_abs_change / e.max_abs_weight);
    zeros += e.zeros;
    kept += e.zeros_kept;
  }
  char b[1200];
  const std::string act = rep.activation_bits ? "A" + std::to_string(rep.activation_bits) : std::string("float");
  std::snprintf(b, sizeof b,
                "wrote %s (%zu bytes, GGUF for llama.cpp: %s; decoder linears %zu bytes; largest change %.3g of a "
                "linear's max |w|; zeros kept %zu of %zu); read back by sparq with the activations it declares "
                "(linear inputs %s, q/k/v %d bits): perplexity %.6f, the same weights in memory %.6f (%+.4f%%), "
                "fake-quant row %.6f (%+.4f%%); with float activations (as llama.cpp runs it, its own activation "
                "blocks aside): %.6f, in memory %.6f (%+.4f%%)",
                out.c_str(), rep.file_bytes, types.c_str(), rep.linear_bytes, worst, kept, zeros, act.c_str(),
                rep.attention_bits, row.gguf_ppl, row.gguf_ref_ppl, 100.0 * (row.gguf_ppl / row.gguf_ref_ppl - 1.0),
                row.ppl_fake, 100.0 * (row.gguf_ppl / row.ppl_fake - 1.0), row.gguf_float_ppl, row.gguf_float_ref_ppl,
                100.0 * (row.gguf_float_ppl / row.gguf_float_ref_ppl - 1.0));
  row.out_msg += (row.out_msg.empty() ? "" : "\n    out:    ") + std::string(b);
}

Row run_method(const Method& me, Context& ctx) {
  sparq::RecipeSpec s = me.spec;
  enable_nm_fallback(s, ctx.dense.config);
  if (ctx.args.embedding == "int8") s.embedding_bits = 8;
  const std::size_t L = ctx.dense.config.n_layers;
  std::vector<double> edit_r;  // empty: the recipe's own strength in every block
  Row row;
  row.method = me.name;
  row.recipe = sparq::to_string(s);
  row.note = me.note;
  const auto t0 = std::chrono::steady_clock::now();
  if (s.search && ctx.args.sa_steps > 0) {
    // JSQ's search (joint/jsq_search.hpp): SA over V on held-out calibration tokens, prefix reuse.
    sparq::JsqSearchOptions so;
    so.choices = ctx.choices;
    so.anneal.steps = static_cast<std::size_t>(ctx.args.sa_steps);
    so.anneal.seed = static_cast<std::uint64_t>(ctx.args.sa_seed);
    so.eval.max_tokens = 0;  // the whole held-out slice
    const double r0 = std::get<sparq::EditStageSpec>(s.stages.front()).options.strength;
    if (std::find(so.choices.begin(), so.choices.end(), r0) == so.choices.end()) so.start.assign(L, so.choices.front());
    const sparq::StagePlan plan = sparq::plan_of(s);
    const sparq::JsqSearchResult res = sparq::jsq_search(ctx.dense, ctx.windows, ctx.heldout_stream, plan,
                                                         sparq::options_for(s, sparq::CompressOptions{}), so);
    edit_r = res.best;
    std::string vs;
    for (std::size_t i = 0; i < edit_r.size(); ++i) {
      char b[32];
      std::snprintf(b, sizeof b, "%s%g", i ? "," : "", edit_r[i]);
      vs += b;
    }
    char b[240];
    std::snprintf(b, sizeof b,
                  "V=[%s] steps=%zu evaluations=%zu (blocks compressed %zu, reused %zu) heldout ppl %.4f -> %.4f",
                  vs.c_str(), so.anneal.steps, res.evaluations, res.blocks_compressed, res.blocks_reused,
                  res.start_perplexity, res.best_perplexity);
    row.search = b;
  }
  const bool progress = ctx.args.progress == 1 || (ctx.args.progress < 0 && ctx.dense.config.n_layers >= 8);
  Compressed c = run_spec(s, edit_r, ctx.dense, ctx.windows, progress ? me.name : std::string());
  for (const auto& li : c.linears) {
    row.factor_bytes += static_cast<double>(li.factor_bytes);
    row.rank = std::max(row.rank, li.rank);
    if (!li.factor_format.empty()) row.factor_format = li.factor_format + (li.replaced ? " LowRank" : " LoRC");
  }
  row.weights_hash = weights_hash(c.model.weights());
  const auto t1 = std::chrono::steady_clock::now();
  sparq::model::PerplexityOptions popt;
  popt.max_tokens = static_cast<std::size_t>(ctx.args.max_tokens);
  const auto res = sparq::model::perplexity(c.model, ctx.eval_stream, popt);
  const auto t2 = std::chrono::steady_clock::now();
  row.ppl_fake = res.perplexity;
  row.nll_fake = res.mean_nll;
  if (ctx.args.real) {
    const PackResult pr = pack_for_real(c.model, c.report, prune_stage(me.spec) != nullptr);
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
  for (const std::string& out : ctx.args.outs) {
    if (is_gguf_path(out)) {
      write_gguf_out(out, me, c, ctx, popt, row);
      continue;
    }
    // Round trip: the file read back must score exactly what the row reports.
    sparq::io::Container ct = sparq::io::packed_model_container(c.model);
    ct.metadata["compress.method"] = me.name;
    ct.metadata["compress.recipe"] = row.recipe;
    if (!row.search.empty()) ct.metadata["compress.search"] = row.search;
    ct.metadata["compress.perplexity"] = row.has_real ? row.ppl_real : row.ppl_fake;
    ct.metadata["compress.eval_tokens"] = static_cast<std::int64_t>(ctx.eval_stream.size());
    // sparq-ppl / sparq-generate need no --tokenizer (SPRQ stores llama2.c vocabularies; a byte-level BPE stays beside)
    if (ctx.tokenizer.bpe() == nullptr) sparq::io::add_tokenizer(ct, ctx.tokenizer);
    std::size_t raw_size = 0;
    if (ctx.args.entropy) {  // rANS per section where it pays (io/entropy.hpp; never larger than raw)
      raw_size = sparq::io::serialize_container(ct).size();
      for (auto& t : ct.tensors)
        for (auto& sec : t.sections) sec.encoding = sparq::io::SectionEncoding::smallest;
    }
    const std::vector<char> bytes = sparq::io::serialize_container(ct);
    sparq::io::detail::write_file_atomic(out, bytes.data(), bytes.size());
    sparq::io::PackedReadOptions ro;
    ro.keep_float_weights = false;  // only evaluated: hold the packed bytes alone
    const sparq::model::Llama back = sparq::io::read_packed_model(out, ro);
    row.resident_bytes = static_cast<double>(sparq::model::resident_weight_bytes(back));
    row.out_ppl = sparq::model::perplexity(back, ctx.eval_stream, popt).perplexity;
    const double want = row.has_real ? row.ppl_real : row.ppl_fake;
    SPARQ_CHECK(row.out_ppl == want, "--out ", out, ": the model read back scores perplexity ", row.out_ppl,
                ", the compressed model ", want);
    std::error_code ec;
    const auto size = std::filesystem::file_size(out, ec);
    SPARQ_CHECK(!ec, "--out ", out, ": cannot read its size back: ", ec.message());
    row.out_bytes = static_cast<double>(size);
    row.out_raw_bytes = static_cast<double>(raw_size);
    char b[600];
    std::snprintf(b, sizeof b,
                  "wrote %s (%llu bytes%s, SPRQ container%s%s); read back: perplexity %.6f = %s perplexity; resident "
                  "weights %.0f bytes",
                  out.c_str(), static_cast<unsigned long long>(size),
                  raw_size ? (", entropy-coded; " + std::to_string(raw_size) + " raw").c_str() : "",
                  row.has_real ? ", linears as run by the real kernels" : ", fake-quantized f32 linears",
                  row.rank ? ", low-rank factors as stored (packed version 2)" : "", row.out_ppl,
                  row.has_real ? "real-kernel" : "fake-quant", row.resident_bytes);
    row.out_msg += (row.out_msg.empty() ? "" : "\n    out:    ") + std::string(b);
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
  row.wbits = c.linears.front().wbits;
  row.abits = c.linears.front().abits > 0 ? c.linears.front().abits : 32;
  for (const auto& li : c.linears) row.group = std::max(row.group, li.group);
  row.pattern = pattern_of(me.spec);
  std::string fb;  // the linears that got the fallback pattern
  for (std::size_t i = 0; i < c.linears.size(); ++i)
    if (c.linears[i].nm_fallback && i < std::size(sparq::model::all_linears))  // block 0 names them
      fb += std::string(fb.empty() ? "" : "; ") + std::string(sparq::model::linear_name(sparq::model::all_linears[i])) + ", cin " +
            std::to_string(c.linears[i].cols);
  if (std::any_of(c.linears.begin(), c.linears.end(), [](const LinearInfo& li) { return li.nm_fallback; })) {
    row.pattern += "*";
    row.note += std::string(row.note.empty() ? "" : "; ") + "*: 2:4 on linears whose cin is not a multiple of 8 (" + fb + ")";
  }
  row.compress_s = std::chrono::duration<double>(t1 - t0).count();
  row.eval_s = std::chrono::duration<double>(t2 - t1).count();
  return row;
}

std::vector<double> parse_choices(const std::string& s) {
  if (s.empty()) return {0.0, 4e-5, 5e-5, 6e-5, 7e-5};
  std::vector<double> v;
  std::size_t p = 0;
  for (;;) {
    const std::size_t q = s.find(',', p);
    const std::string item = s.substr(p, q == std::string::npos ? std::string::npos : q - p);
    char* end = nullptr;
    const double r = std::strtod(item.c_str(), &end);
    SPARQ_CHECK(!item.empty() && *end == '\0' && r >= 0 && r <= 0.5, "--edit-choices: '", item,
                "' is not a number in [0, 0.5]");
    v.push_back(r);
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return v;
}

}  // namespace

// --stream: a Hugging Face directory compressed one block at a time (io::compress_streaming) and written
// to the single SPRQ --out as it goes; the file is then read back and scored (unless --no-real).
static int run_stream(const Args& args, const sparq::RecipeSpec& spec_in) {
  const auto t0 = std::chrono::steady_clock::now();
  sparq::io::StreamedModel sm = sparq::io::load_streamed(args.model, args.tokenizer);
  const auto& cfg = sm.model.config();
  sparq::RecipeSpec spec = spec_in;
  enable_nm_fallback(spec, cfg);
  if (args.embedding == "int8") spec.embedding_bits = 8;
  SPARQ_CHECK(!spec.search, "--stream: recipe '", args.recipe, "' runs JSQ's SA search, which recompresses and scores "
              "the whole model per step; stream a fixed editing vector instead (e.g. jsq-nosearch)");
  const std::size_t ncal = static_cast<std::size_t>(args.nsamples * args.seqlen);
  const auto calib_stream =
      sparq::model::document_token_stream_file(args.calib, sm.tokenizer, args.calib_seed >= 0 ? 0 : ncal);
  const auto windows = sparq::model::calibration_windows(calib_stream, static_cast<std::size_t>(args.nsamples),
                                                         static_cast<std::size_t>(args.seqlen), args.calib_seed >= 0,
                                                         static_cast<std::uint64_t>(std::max(0LL, args.calib_seed)));
  std::printf("sparq-compress --stream: model %s (dim %zu, hidden %zu, %zu layers, %zu/%zu heads, vocab %zu; "
              "tokenizer: %s)\n", args.model.c_str(), cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads,
              cfg.vocab_size, sm.tokenizer_source.c_str());
  std::printf("kernels: %s\n", sparq::kernels::dispatch_summary().c_str());
  std::printf("protocol: calibration %lld windows x %lld tokens (%s) of %s, layer-wise with error propagation, one "
              "block in f32 at a time; recipe %s\n", args.nsamples, args.seqlen,
              args.calib_seed >= 0 ? "seeded random starts" : "first consecutive", args.calib.c_str(),
              sparq::to_string(spec).c_str());
  std::fflush(stdout);
  sparq::CompressOptions co;
  if (args.progress != 0) {
    co.progress = [](std::size_t done, std::size_t blocks, double s) {
      std::fprintf(stderr, "stream: block %zu/%zu, %.1f s elapsed, ETA %.0f s\n", done, blocks, s,
                   s / static_cast<double>(done) * static_cast<double>(blocks - done));
    };
  }
  sparq::io::StreamWriteOptions wo;
  wo.encoding = args.entropy ? sparq::io::SectionEncoding::smallest : sparq::io::SectionEncoding::raw;
  wo.extra.metadata["compress.method"] = args.recipe;
  wo.extra.metadata["compress.recipe"] = sparq::to_string(spec);
  if (sm.tokenizer.bpe() == nullptr) sparq::io::add_tokenizer(wo.extra, sm.tokenizer);  // SPRQ holds llama2.c vocabularies
  const std::string& out = args.outs.front();
  const auto t1 = std::chrono::steady_clock::now();
  const sparq::io::StreamCompressResult r = sparq::io::compress_streaming(
      sm.model, [&](std::size_t b) { return sm.checkpoint.read_block(b); }, windows, spec, out, co, wo);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double peak_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(out, ec);
  double lo = 1e300, hi = 0, sum = 0;
  for (double s : r.block_seconds) {
    lo = std::min(lo, s);
    hi = std::max(hi, s);
    sum += s;
  }
  const double mean = r.block_seconds.empty() ? 0.0 : sum / static_cast<double>(r.block_seconds.size());
  const double dense_linear = static_cast<double>(cfg.n_layers) *
                              static_cast<double>(2 * cfg.dim * cfg.dim + 2 * cfg.kv_dim() * cfg.dim + 3 * cfg.dim * cfg.hidden_dim) * 4.0;
  const double cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  std::printf("\n%-28s %10s %10s %10s %12s %10s %14s %14s %12s\n", "recipe", "blocks", "s/block", "min..max", "compress_s",
              "cpu_s", "linear_B", "file_B", "peak_RSS_MiB");
  char range[48];
  std::snprintf(range, sizeof range, "%.1f..%.1f", lo, hi);
  std::printf("%-28s %10zu %10.2f %10s %12.1f %10.1f %14zu %14llu %12.0f\n", args.recipe.c_str(), r.block_seconds.size(),
              mean, range, secs, cpu_s, r.linear_bytes, static_cast<unsigned long long>(ec ? 0 : file_bytes), peak_mib);
  std::printf("    sparsity %.4f of the linears (nnz %zu of %zu); linear bytes %.2f%% of f32; packed: %s\n",
              r.report.params ? 1.0 - static_cast<double>(r.report.nnz) / static_cast<double>(r.report.params) : 0.0,
              r.report.nnz, r.report.params, 100.0 * static_cast<double>(r.linear_bytes) / dense_linear,
              r.formats.describe().c_str());
  std::printf("    wrote %s; load + calibration text %.1f s\n", out.c_str(),
              std::chrono::duration<double>(t1 - t0).count());
  std::fflush(stdout);
  if (args.real) {
    sparq::io::PackedReadOptions ro;
    ro.keep_float_weights = false;
    const sparq::model::Llama back = sparq::io::read_packed_model(out, ro);
    const auto eval = sparq::model::document_token_stream_file(args.eval, sm.tokenizer,
                                                               static_cast<std::size_t>(args.max_tokens));
    sparq::model::PerplexityOptions popt;
    popt.max_tokens = static_cast<std::size_t>(args.max_tokens);
    const auto t2 = std::chrono::steady_clock::now();
    const auto pr = sparq::model::perplexity(back, eval, popt);
    std::printf("    read back: perplexity %.6f on %zu tokens of %s (windows of %zu), %.1f s\n", pr.perplexity,
                pr.scored_tokens, args.eval.c_str(), pr.seq_len,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count());
  }
  return 0;
}

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
    } else if (args.recipe == "compare-lorc") {
      todo = compare_lorc_methods(args);
    } else if (is_named(args.recipe)) {
      todo.push_back({args.recipe, sparq::named_recipe(args.recipe, named_options(args)), ""});
    } else {
      todo.push_back({args.recipe, sparq::parse_recipe(args.recipe), ""});
      if (args.search) {
        SPARQ_CHECK(todo.back().spec.has_edit(), "--search needs a recipe with an edit stage first, got '",
                    args.recipe, "'");
        todo.back().spec.search = true;
      }
    }
    SPARQ_CHECK(!args.search || (args.recipe != "compare" && args.recipe != "compare-lorc"),
                "--search applies to a recipe string, not to ", args.recipe);
  } catch (const ArgError& e) {
    std::fprintf(stderr, "sparq-compress: %s\n", e.msg.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::string names;
    for (const auto& n : sparq::named_recipe_names()) names += " " + n;
    std::fprintf(stderr, "sparq-compress: %s\n  (--recipe expects compare, compare-lorc, a named recipe (%s; with a "
                 "pruner also -2:4 / -4:8; any of them + '+lorc') or a recipe string such as "
                 "'edit,sar:0.5,smooth:0.5,w8a8' or 'w4g128,lorc:8,a0')\n", e.what(), names.c_str() + 1);
    return 2;
  }

  try {
    sparq::kernels::select_target_by_name(args.target);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq-compress: --target: %s\n", e.what());
    return 2;
  }

  if (args.stream) {
    try {
      return run_stream(args, todo.front().spec);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sparq-compress: %s\n", e.what());
      return 1;
    }
  }

  try {
    auto loaded = sparq::io::load(args.model, args.tokenizer);
    const auto& cfg = loaded.model.config();
    if (args.eval_only) {  // the model as it is: a file written by --out is scored as sparq runs it
      const auto stream = sparq::model::document_token_stream_file(args.eval, loaded.tokenizer,
                                                                   static_cast<std::size_t>(args.max_tokens));
      sparq::model::PerplexityOptions popt;
      popt.max_tokens = static_cast<std::size_t>(args.max_tokens);
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = sparq::model::perplexity(loaded.model, stream, popt);
      std::printf("sparq-compress --eval-only: model %s (%s; tokenizer: %s; kernels: %s)\n", args.model.c_str(),
                  loaded.format.c_str(), loaded.tokenizer_source.c_str(), sparq::kernels::dispatch_summary().c_str());
      std::printf("evaluation: %zu tokens of %s, %zu scored in windows of %zu; linear weights %zu bytes\n", stream.size(),
                  args.eval.c_str(), r.scored_tokens, r.seq_len, loaded.model.linear_weight_bytes());
      std::printf("perplexity %.6f (mean NLL %.6f), %.1f s\n", r.perplexity, r.mean_nll,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return 0;
    }
    const std::size_t ncal = static_cast<std::size_t>(args.nsamples * args.seqlen);
    const std::size_t sa_tok = static_cast<std::size_t>(args.sa_tokens);
    // Consecutive windows need only the first nsamples x seqlen tokens (+ the SA slice); seeded windows the whole text.
    const auto calib_stream =
        sparq::model::document_token_stream_file(args.calib, loaded.tokenizer, args.calib_seed >= 0 ? 0 : ncal + sa_tok);
    Context ctx{args, loaded.model.weights(), loaded.vocab, loaded.tokenizer, {}, {}, {}, parse_choices(args.edit_choices)};
    ctx.windows = sparq::model::calibration_windows(calib_stream, static_cast<std::size_t>(args.nsamples),
                                                    static_cast<std::size_t>(args.seqlen), args.calib_seed >= 0,
                                                    static_cast<std::uint64_t>(std::max(0LL, args.calib_seed)));
    // SA objective: the calibration tokens right after the consecutive calibration windows.
    if (calib_stream.size() > ncal)
      ctx.heldout_stream.assign(calib_stream.begin() + static_cast<std::ptrdiff_t>(ncal),
                                calib_stream.begin() + static_cast<std::ptrdiff_t>(std::min(calib_stream.size(), ncal + sa_tok)));
    const bool any_search = args.sa_steps > 0 &&
                            std::any_of(todo.begin(), todo.end(), [](const Method& m) { return m.spec.search; });
    SPARQ_CHECK(!any_search || ctx.heldout_stream.size() >= 2, "the calibration text has ", calib_stream.size(),
                " tokens: nothing is left after the ", ncal, " calibration tokens for the SA objective");
    ctx.eval_stream = sparq::model::document_token_stream_file(args.eval, loaded.tokenizer,
                                                               static_cast<std::size_t>(args.max_tokens));

    std::printf("sparq-compress: model %s (dim %zu, hidden %zu, %zu layers, %zu linears per layer)\n",
                args.model.c_str(), cfg.dim, cfg.hidden_dim, cfg.n_layers, std::size(sparq::model::all_linears));
    std::printf("kernels: %s\n", sparq::kernels::dispatch_summary().c_str());
    std::printf("protocol: calibration %lld windows x %lld tokens (%s) of %s (%zu tokens read), layer-wise with error "
                "propagation; evaluation %zu tokens of %s in windows of %zu from position 0; SA objective: %zu "
                "held-out calibration tokens, %lld steps, seed %lld\n",
                args.nsamples, args.seqlen, args.calib_seed >= 0 ? "seeded random starts" : "first consecutive",
                args.calib.c_str(), calib_stream.size(), ctx.eval_stream.size(), args.eval.c_str(), cfg.seq_len,
                ctx.heldout_stream.size(), args.sa_steps, args.sa_seed);
    std::printf("note: ppl_fake = quantize->dequantize in f32; ppl_real = decoder linears through the packed kernels "
                "(int8/int4/N:M codes, int8 per-token activations; unstructured sparsity as bitmask + non-zeros: float, or int8 codes when smaller), while embedding, "
                "norms, RoPE, attention (q/k/v outputs fake-quantized) and classifier stay f32%s; LoRC factors run as "
                "stored (int8/f16/bf16 GEMVs) around the packed op; stored_B = packed bytes (+ factors), "
                "sparse_B/MACs = theoretical (+ factors), decoder linears only (docs/compress.md)\n\n",
                args.embedding == "int8" ? " (--embedding int8: embedding and classifier values on a per-row int8 grid, "
                                           "float arithmetic)"
                                         : "");
    print_header();

    std::vector<Row> rows;
    const auto t_all = std::chrono::steady_clock::now();
    int failed = 0;
    for (const Method& m : todo) {
      try {
        rows.push_back(run_method(m, ctx));
      } catch (const std::exception& e) {  // one bad row does not hide the others; the exit code says it
        std::printf("%-22s FAILED: %s\n", m.name.c_str(), e.what());
        std::fflush(stdout);
        ++failed;
        continue;
      }
      print_row(rows.back());
      if (!rows.back().search.empty()) std::printf("    search: %s\n", rows.back().search.c_str());
      if (!rows.back().real_formats.empty()) std::printf("    real:   %s\n", rows.back().real_formats.c_str());
      if (rows.back().rank)
        std::printf("    lowrank: rank %zu %s factors, %.0f bytes (%.1f%% of the f32 linears) in stored_B and sparse_B\n",
                    rows.back().rank, rows.back().factor_format.c_str(), rows.back().factor_bytes,
                    100.0 * rows.back().factor_bytes / rows.back().dense_bytes);
      if (!rows.back().out_msg.empty()) std::printf("    out:    %s\n", rows.back().out_msg.c_str());
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_all).count();
    std::printf("\ntotal %.1f s%s\n", wall, failed ? " (some rows FAILED)" : "");

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
    return failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq-compress: %s\n", e.what());
    return 1;
  }
}
