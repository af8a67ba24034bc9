// sparq-compress rows: per-linear counts -> theoretical stored bytes and MACs, table and JSON output.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace sparq_compress {

/// What one decoder linear ended up as after a recipe.
struct LinearInfo {
  std::size_t rows = 0, cols = 0, nnz = 0;
  bool pruned = false;      ///< a pruning stage ran on it
  std::size_t n = 0, m = 0; ///< N:M pattern applied (0, 0: unstructured when pruned)
  int wbits = 32;           ///< 32: float weights
  std::size_t group = 0;    ///< weight group size, 0 = one scale per output row
  int abits = 0;            ///< per-token input quantization bits (0: float inputs)
  bool nm_fallback = false; ///< n:m is the prune stage's fallback (cin not a multiple of the asked M)
  std::size_t rank = 0;             ///< low-rank factors' rank (0: none)
  std::size_t factor_bytes = 0;     ///< bytes of the factors as stored (LoRC correction or LowRank replacement)
  bool replaced = false;            ///< LowRank: the linear IS the factors (no Ŵ)
  std::string factor_format;        ///< int8 / f16 / bf16 / f32
};

struct Storage {
  double bytes = 0;  ///< theoretical stored bytes (docs/compress.md)
  double macs = 0;   ///< multiply-accumulates per token
};

/// Theoretical storage of one linear: values of wbits/8 bytes; quantized rows carry one f32 scale
/// per (row, group); unstructured sparsity = BitmaskSparse (row masks + u64 row offsets + kept
/// values); N:M = NMCompressed (cols/M*N values per row + ceil(log2 M)-bit in-group index each);
/// low-rank factors add their stored bytes and r·(rows + cols) MACs (LowRank: they are the linear).
inline Storage storage_of(const LinearInfo& c) {
  const double lr_macs = static_cast<double>(c.rank) * static_cast<double>(c.rows + c.cols);
  if (c.replaced) {  // LowRank: the factors are the linear; quantized factors: B-bit values + scales per row (group)
    if (c.wbits >= 32) return {static_cast<double>(c.factor_bytes), lr_macs};
    const double r = static_cast<double>(c.rank), g = static_cast<double>(c.group);
    const double scales = 4.0 * (static_cast<double>(c.rows) * (c.group ? std::ceil(r / g) : 1.0) +
                                 r * (c.group ? std::ceil(static_cast<double>(c.cols) / g) : 1.0));
    return {std::ceil(lr_macs * c.wbits / 8.0) + scales, lr_macs};
  }
  const double vb = c.wbits >= 32 ? 4.0 : c.wbits / 8.0;
  const double rows = static_cast<double>(c.rows), cols = static_cast<double>(c.cols);
  const double groups_per_row = c.group ? std::ceil(cols / static_cast<double>(c.group)) : 1.0;
  const double scales = c.wbits < 32 ? 4.0 * rows * groups_per_row : 0.0;
  Storage s;
  if (!c.pruned) {
    s.macs = rows * cols;
    s.bytes = std::ceil(s.macs * vb) + scales;
  } else if (c.m == 0) {
    const double nnz = static_cast<double>(c.nnz);
    s.macs = nnz;
    s.bytes = rows * static_cast<double>((c.cols + 7) / 8) + (rows + 1) * 8.0 + std::ceil(nnz * vb) + scales;
  } else {
    const double kept_row = static_cast<double>(c.cols / c.m * c.n);
    double idx_bits = 0;
    while ((std::size_t{1} << static_cast<std::size_t>(idx_bits)) < c.m) ++idx_bits;
    s.macs = rows * kept_row;
    s.bytes = std::ceil(s.macs * vb) + rows * std::ceil(kept_row * idx_bits / 8.0) + scales;
  }
  s.bytes += static_cast<double>(c.factor_bytes);
  s.macs += lr_macs;
  return s;
}

struct Row {
  std::string method, recipe, pattern, note;
  double sparsity = 0;
  int wbits = 32, abits = 32;
  std::size_t group = 0;
  double stored_bytes = 0;   ///< decoder-linear bytes of the packed model as run and written (0: not packed)
  double theory_bytes = 0;   ///< theoretical count with the sparse formats of docs/compress.md (storage_of)
  double dense_bytes = 0;    ///< 4 B x decoder weights
  double macs = 0, macs_rel = 1;
  double ppl_fake = 0, nll_fake = 0;
  bool has_real = false;
  double ppl_real = 0, nll_real = 0;
  double compress_s = 0, eval_s = 0, pack_s = 0, real_eval_s = 0;
  double out_ppl = 0;        ///< perplexity of the --out SPRQ file read back (0: not written)
  double gguf_ppl = 0;       ///< the --out GGUF read back by sparq, activations as it declares (0: not written)
  double gguf_ref_ppl = 0;   ///< the in-memory weights the GGUF holds, the same activations
  double gguf_float_ppl = 0;      ///< the GGUF read back with float activations (as llama.cpp runs it)
  double gguf_float_ref_ppl = 0;  ///< the in-memory weights the GGUF holds, float activations
  double gguf_bytes = 0;     ///< size of the GGUF file
  double out_bytes = 0;      ///< size of the --out SPRQ file (std::filesystem::file_size after writing)
  double out_raw_bytes = 0;  ///< what it would take with every section raw (0: written raw, --no-entropy)
  std::string out_msg;
  std::string search;        ///< SA summary (best V, steps), empty for unsearched rows
  std::string real_formats;  ///< formats installed by the packer
  double factor_bytes = 0;   ///< low-rank factor bytes included in stored_B / sparse_B (LoRC / LowRank)
  std::size_t rank = 0;      ///< their rank (0: none)
  std::string factor_format;
  double resident_bytes = 0; ///< --out read back without float copies: resident_weight_bytes
  std::string weights_hash;  ///< FNV-1a 64 of the compressed decoder weights and norms (bits), hex
};

inline std::string bits_str(int b) { return b >= 32 ? "f32" : std::to_string(b); }

// Columns: stored_B = bytes of the packed decoder linears as run by the real kernels and written by
// --out; sparse_B = theoretical bytes with a sparse format for unstructured sparsity (bitmask);
// x_dense = sparse_B / f32 dense; MACs = stored multiply-accumulates / dense.
inline void print_header() {
  std::printf("%-22s %8s %3s %3s %4s %-7s %8s %8s %7s %6s %9s %9s %7s %7s\n", "method", "sparsity", "W", "A", "g",
              "pattern", "stored_B", "sparse_B", "x_dense", "MACs", "ppl_fake", "ppl_real", "comp_s", "eval_s");
}

inline void print_row(const Row& r) {
  char real[32], stored[32];
  if (r.has_real) {
    std::snprintf(real, sizeof real, "%9.4f", r.ppl_real);
    std::snprintf(stored, sizeof stored, "%8.0f", r.stored_bytes);
  } else {
    std::snprintf(real, sizeof real, "%9s", "-");
    std::snprintf(stored, sizeof stored, "%8s", "-");
  }
  std::printf("%-22s %8.4f %3s %3s %4zu %-7s %s %8.0f %7.3f %6.3f %9.4f %s %7.2f %7.2f\n", r.method.c_str(),
              r.sparsity, bits_str(r.wbits).c_str(), bits_str(r.abits).c_str(), r.group, r.pattern.c_str(), stored,
              r.theory_bytes, r.theory_bytes / r.dense_bytes, r.macs_rel, r.ppl_fake, real, r.compress_s,
              r.eval_s + r.real_eval_s);
  std::fflush(stdout);
}

inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

inline std::string json_num(double v, int prec = 6) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

inline std::string json_row(const Row& r) {
  std::string j = "{\"method\": \"" + json_escape(r.method) + "\", \"recipe\": \"" + json_escape(r.recipe) +
                  "\", \"pattern\": \"" + json_escape(r.pattern) + "\", \"sparsity\": " + json_num(r.sparsity) +
                  ", \"weight_bits\": " + std::to_string(r.wbits) + ", \"activation_bits\": " +
                  std::to_string(r.abits) + ", \"group_size\": " + std::to_string(r.group) +
                  ", \"weight_bytes\": " + (r.has_real ? json_num(r.stored_bytes, 0) : std::string("null")) +
                  ", \"theoretical_weight_bytes\": " +
                  json_num(r.theory_bytes, 0) + ", \"dense_weight_bytes\": " + json_num(r.dense_bytes, 0) +
                  ", \"factor_bytes\": " + json_num(r.factor_bytes, 0) + ", \"lowrank_rank\": " + std::to_string(r.rank) +
                  ", \"factor_format\": \"" + json_escape(r.factor_format) + "\"" +
                  ", \"macs_per_token\": " + json_num(r.macs, 0) + ", \"macs_relative\": " + json_num(r.macs_rel) +
                  ", \"perplexity_fake\": " + json_num(r.ppl_fake) + ", \"mean_nll_fake\": " + json_num(r.nll_fake) +
                  ", \"perplexity_real\": " + (r.has_real ? json_num(r.ppl_real) : std::string("null")) +
                  ", \"mean_nll_real\": " + (r.has_real ? json_num(r.nll_real) : std::string("null")) +
                  ", \"perplexity\": " + json_num(r.has_real ? r.ppl_real : r.ppl_fake) +
                  ", \"compress_seconds\": " + json_num(r.compress_s, 3) + ", \"pack_seconds\": " +
                  json_num(r.pack_s, 3) + ", \"eval_seconds\": " + json_num(r.eval_s, 3) +
                  ", \"real_eval_seconds\": " + json_num(r.real_eval_s, 3) + ", \"out_perplexity\": " +
                  (r.out_ppl > 0 ? json_num(r.out_ppl) : std::string("null")) + ", \"gguf_ppl\": " +
                  (r.gguf_ppl > 0 ? json_num(r.gguf_ppl) : std::string("null")) + ", \"gguf_ref_ppl\": " +
                  (r.gguf_ref_ppl > 0 ? json_num(r.gguf_ref_ppl) : std::string("null")) + ", \"gguf_float_ppl\": " +
                  (r.gguf_float_ppl > 0 ? json_num(r.gguf_float_ppl) : std::string("null")) +
                  ", \"gguf_float_ref_ppl\": " +
                  (r.gguf_float_ref_ppl > 0 ? json_num(r.gguf_float_ref_ppl) : std::string("null")) + ", \"gguf_bytes\": " +
                  json_num(r.gguf_bytes, 0) + ", \"out_bytes\": " + json_num(r.out_bytes, 0) +
                  ", \"out_raw_bytes\": " + json_num(r.out_raw_bytes, 0) + ", \"search\": \"" +
                  json_escape(r.search) + "\", \"real_formats\": \"" + json_escape(r.real_formats) +
                  "\", \"weights_hash\": \"" + r.weights_hash + "\", \"note\": \"" + json_escape(r.note) + "\"}";
  return j;
}

}  // namespace sparq_compress
