// GGUF export of a compressed model: the weights sparq computed, in the ggml block types that hold
// them with the least change, so that llama.cpp runs what sparq's compressed model computes.
//
// Source of each decoder linear (gguf_export_weights): the float block matrix of the model — after
// compression it holds the fake-quantized (and pruned) weights, i.e. exactly the values the codes
// stand for — plus, when the linear's op is a LoRC CompensatedLinear, its correction A·B added in;
// a LowRankLinear is written as the product A·B. Smoothing (SmoothQuant, AWQ, JSQ's smoothing) is
// already folded into the weights and RMSNorm gains, and JSQ's activation editor changes only the
// statistics compression takes, so these float weights ARE the model; what no ggml type carries is
// run-time activation quantization (InputQuantLinear, Llama::attention_input_bits): the file
// declares it in metadata (sparq.linear_activation_bits, one entry per decoder linear;
// sparq.activation_bits; sparq.attention_bits), which sparq's reader applies (io::load) and
// llama.cpp ignores, running its own activation blocks (Q8_0/Q8_1 per 32 values) instead.
//
// Type of each linear (docs/formats.md#gguf-export has the table and the measured costs):
//   1. exact: the first of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (in order of size) in which EVERY block of
//      32 values of the matrix lies on the block type's grid. Per block the grid is searched as
//      pack_model recovers grids: symmetric types (Q4_0 d·(q−8), Q5_0 d·(q−16), Q8_0 d·q) try
//      s = max|x|/k for k = 1 up to 8, 16 or 128 (the coarsest grid that holds the block, so the
//      scale is as large as it can be); the affine types (Q4_1 / Q5_1: d·q + m) try
//      s = (max − min)/k, k = 1 up to 15 or 31, on grids that contain 0 (zero point
//      z = round(−min/s) in range), as every sparq quantizer's grid does. "On the grid" is
//      model::detail::first_off_grid's test (a few float ulp of the scale). The codes are then
//      those of the grid; the only change is the scale (and offset) stored as fp16: d = fp16(s),
//      |ŵ − w| ≤ |q|·|d − s| ≈ |w|·2^−11. Pruned zeros stay exactly 0: code 0 / the offset code in the
//      symmetric types; in the affine types a block that holds an exact 0 gets the fp16 d near s
//      for which d·z is an fp16 value and m = −d·z, so the zero code decodes to 0 in float
//      arithmetic (fused or not) — accepted only when that d moves no value by more than 1/8 of a
//      grid step (always so for Q4_1: d moves at most 8 fp16 steps, |q − z| ≤ 15, and an fp16
//      step is at most 2^−10 of d: 15·8·2^−10 < 1/8). Otherwise the block is not "exact" in that
//      type and a later type is tried (Q5_0 / Q8_0 hold an affine grid's codes q − z with the
//      plain d = fp16(s)); 5-bit affine grids usually end in Q8_0 this way.
//      An int8 per-channel row becomes Q8_0 blocks that all share its scale; int4 g32/g64/g128
//      symmetric becomes Q4_0, asymmetric Q4_1; 5-bit becomes Q5_0/Q5_1; 2- and 3-bit grids fit
//      Q4_0/Q4_1; N:M-pruned rows are just rows with zeros.
//   2. requantized: a linear the recipe quantized (weight_bits < 32 in the options) whose values
//      lie on no block grid — a group that does not align with the 32-value blocks, an 8-bit
//      asymmetric grid (codes q − z beyond int8) — is quantized again with ggml's reference rule
//      into `requant_type` (Q8_0 by default: its error ≤ max|x|/254 per block is below a step of any
//      grid of at most 8 bits, though not zero).
//   3. fallback: a quantized linear whose row length is not a multiple of 32 (stories260K's
//      ffn_down, 172 wide) is stored as `fallback_type` (F16 default, as llama-quantize does).
//   4. float: every other linear (float weights, LoRC-corrected ones) as `float_type` (F32 default).
// Token embedding and classifier: `embedding_type`; norms F32.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"
#include "sparq/core/version.hpp"
#include "sparq/io/ggml_blocks.hpp"
#include "sparq/io/gguf_llama.hpp"
#include "sparq/io/gguf_writer.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/model/packed_linear.hpp"

namespace sparq::io {

/// How a linear was encoded (see the file comment).
enum class GgufEncoding : std::uint8_t { exact, requantized, fallback, float_values };

[[nodiscard]] constexpr const char* gguf_encoding_name(GgufEncoding e) noexcept {
  switch (e) {
    case GgufEncoding::exact: return "exact";
    case GgufEncoding::requantized: return "requantized";
    case GgufEncoding::fallback: return "fallback";
    case GgufEncoding::float_values: return "float";
  }
  return "?";
}

struct GgufExportOptions {
  GgmlType float_type = GgmlType::F32;      ///< float linears (F32, F16 or BF16)
  GgmlType fallback_type = GgmlType::F16;   ///< quantized linears whose rows no block type takes (F32, F16, BF16)
  GgmlType requant_type = GgmlType::Q8_0;   ///< quantized linears on no block grid (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)
  GgmlType embedding_type = GgmlType::F32;  ///< token_embd and output (F32, F16, BF16, Q8_0, ...)
  /// Code width per decoder linear, block-major in model::all_linears order (e.g. from
  /// CompressReport::linears[i].weight_bits); 32 = float. Empty: every linear that is on no block
  /// grid is written as float.
  std::vector<int> weight_bits;
  double tolerance = 4.0;                   ///< grid test, in FLT_EPSILON·max(|w|, scale)
  std::string name = "sparq";               ///< general.name
  /// Further metadata (e.g. sparq.recipe); general.* and llama.* keys set here are replaced.
  std::vector<std::pair<std::string, GgufValue>> metadata;

  void validate() const {
    auto is_float = [](GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; };
    SPARQ_CHECK(is_float(float_type), "GgufExportOptions: float_type ", ggml_type_name(float_type),
                ", expected F32, F16 or BF16");
    SPARQ_CHECK(is_float(fallback_type), "GgufExportOptions: fallback_type ", ggml_type_name(fallback_type),
                ", expected F32, F16 or BF16");
    SPARQ_CHECK(requant_type == GgmlType::Q8_0 || requant_type == GgmlType::Q4_0 || requant_type == GgmlType::Q4_1 ||
                    requant_type == GgmlType::Q5_0 || requant_type == GgmlType::Q5_1,
                "GgufExportOptions: requant_type ", ggml_type_name(requant_type),
                ", expected Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1");
    SPARQ_CHECK(std::isfinite(tolerance) && tolerance >= 0.0, "GgufExportOptions: tolerance = ", tolerance,
                ", expected a finite value >= 0");
    for (int b : weight_bits)
      SPARQ_CHECK(b >= 1 && b <= 32, "GgufExportOptions: weight_bits entry ", b, ", expected 1..32");
  }
};

/// What was written for one decoder linear.
struct GgufLinearExport {
  std::size_t block = 0;
  model::Linear linear = model::Linear::wq;
  GgmlType type = GgmlType::F32;
  GgufEncoding encoding = GgufEncoding::float_values;
  std::size_t bytes = 0;           ///< tensor data bytes in the file
  double max_abs_change = 0.0;     ///< max |decoded − source| over the matrix
  double max_abs_weight = 0.0;     ///< max |source|
  std::size_t zeros = 0;           ///< exact zeros in the source
  std::size_t zeros_kept = 0;      ///< of those, how many decode to exactly 0
  std::string source;              ///< "weights", "weights + LoRC r8", "low-rank A·B r8"
};

struct GgufExportReport {
  std::vector<GgufLinearExport> linears;
  std::size_t linear_bytes = 0;    ///< tensor data bytes of the decoder linears
  std::size_t file_bytes = 0;      ///< size of the serialized file
  /// Run-time activation quantization of the model: no ggml type holds it, so the file declares it in
  /// metadata (sparq.activation_bits = the first linear's that has one, sparq.linear_activation_bits
  /// = one entry per decoder linear, sparq.attention_bits), which io::load applies.
  int activation_bits = 0;
  std::vector<int> linear_activation_bits;  ///< per decoder linear, block-major in all_linears order
  int attention_bits = 0;          ///< q/k/v output quantization of the model
  /// Counts per "TYPE encoding", e.g. {"Q8_0 exact", 28}.
  [[nodiscard]] std::vector<std::pair<std::string, std::size_t>> summary() const {
    std::vector<std::pair<std::string, std::size_t>> s;
    for (const auto& l : linears) {
      const std::string k = std::string(ggml_type_name(l.type)) + " " + gguf_encoding_name(l.encoding);
      auto it = std::find_if(s.begin(), s.end(), [&](const auto& p) { return p.first == k; });
      if (it == s.end()) s.emplace_back(k, 1);
      else ++it->second;
    }
    return s;
  }
};

namespace gguf_export_detail {

/// The symmetric block types: y = d·(q − offset), stored code q in [0, 2·offset) (Q8_0: int8).
struct SymType {
  int lo, hi;  ///< signed code range of the grid
};
[[nodiscard]] constexpr SymType sym_range(GgmlType t) noexcept {
  return t == GgmlType::Q4_0 ? SymType{-8, 7} : t == GgmlType::Q5_0 ? SymType{-16, 15} : SymType{-128, 127};
}

/// fp16 bits of a positive scale, or false when fp16 cannot hold it (above 65504, or so small it
/// rounds to 0): such a block is not written "exact". Subnormal fp16 scales are kept, as ggml's
/// own quantizers keep them; their larger rounding shows in GgufLinearExport::max_abs_change.
[[nodiscard]] inline bool fp16_scale(float s, std::uint16_t& h) noexcept {
  h = float_to_fp16(s);
  const float back = fp16_to_float(h);
  return std::isfinite(back) && back > 0.0f;
}

/// Encodes 32 values into a symmetric block of type t if they lie on one of its grids.
[[nodiscard]] inline bool sym_block(GgmlType t, const float* x, double tol, char* out) {
  const SymType r = sym_range(t);
  float a = 0.0f;
  for (std::size_t j = 0; j < ggml_qk; ++j) a = std::max(a, std::fabs(x[j]));
  int codes[ggml_qk] = {};
  std::uint16_t dh = 0;
  if (a > 0.0f) {
    bool found = false;
    for (int k = 1; k <= std::max(-r.lo, r.hi) && !found; ++k) {  // the coarsest grid first
      const float s = a / static_cast<float>(k);
      if (!(s >= FLT_MIN) || model::detail::first_off_grid(x, ggml_qk, s, 0, r.lo, r.hi, tol) != ggml_qk) continue;
      if (!fp16_scale(s, dh)) return false;
      const float inv = 1.0f / s;
      for (std::size_t j = 0; j < ggml_qk; ++j) codes[j] = static_cast<int>(std::nearbyint(x[j] * inv));
      found = true;
    }
    if (!found) return false;
  }
  if (t == GgmlType::Q8_0) {
    std::int8_t q[ggml_qk];
    for (std::size_t j = 0; j < ggml_qk; ++j) q[j] = static_cast<std::int8_t>(codes[j]);
    const BlockQ8_0 b = make_block_q8_0(dh, q);
    std::memcpy(out, &b, sizeof b);
    return true;
  }
  std::uint8_t q[ggml_qk];
  for (std::size_t j = 0; j < ggml_qk; ++j) q[j] = static_cast<std::uint8_t>(codes[j] - r.lo);
  if (t == GgmlType::Q4_0) {
    const BlockQ4_0 b = make_block_q4_0(dh, q);
    std::memcpy(out, &b, sizeof b);
  } else {
    const BlockQ5_0 b = make_block_q5_0(dh, q);
    std::memcpy(out, &b, sizeof b);
  }
  return true;
}

/// Encodes 32 values into an affine block (Q4_1 / Q5_1: y = d·q + m) if they lie on one of its
/// grids that contains 0.
[[nodiscard]] inline bool affine_block(GgmlType t, const float* x, double tol, char* out) {
  const int maxq = t == GgmlType::Q4_1 ? 15 : 31;
  float mn = 0.0f, mx = 0.0f;  // the grid contains 0, so the range does
  bool has_zero = false;
  for (std::size_t j = 0; j < ggml_qk; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
    has_zero = has_zero || x[j] == 0.0f;
  }
  std::uint8_t q[ggml_qk] = {};
  std::uint16_t dh = 0, mh = 0;
  if (mx > mn) {
    float s = 0.0f;
    int z = 0;
    bool found = false;
    for (int k = 1; k <= maxq && !found; ++k) {  // the coarsest grid first
      s = (mx - mn) / static_cast<float>(k);
      if (!(s >= FLT_MIN)) continue;
      const float zf = std::nearbyint(-mn / s);
      if (zf < 0.0f || zf > static_cast<float>(maxq)) continue;
      z = static_cast<int>(zf);
      found = model::detail::first_off_grid(x, ggml_qk, s, z, 0, maxq, tol) == ggml_qk;
    }
    if (!found) return false;
    const float inv = 1.0f / s;
    for (std::size_t j = 0; j < ggml_qk; ++j) q[j] = static_cast<std::uint8_t>(std::nearbyint(x[j] * inv) + static_cast<float>(z));
    if (!fp16_scale(s, dh)) return false;
    if (has_zero && z != 0) {
      // The fp16 d near s (within 64 steps) whose multiple d·z is itself an fp16 value, so that
      // m = −d·z decodes the zero code to 0 exactly; the one with the smallest error. Accepted
      // only if that error stays within 1/8 of a grid step (see the file comment).
      double best = -1.0;
      std::uint16_t best_h = 0;
      for (int delta = -64; delta <= 64; ++delta) {
        const int hb = static_cast<int>(dh) + delta;
        if (hb <= 0 || hb >= 0x7c00) continue;  // positive finite fp16 only
        const auto h = static_cast<std::uint16_t>(hb);
        const float d = fp16_to_float(h), p = d * static_cast<float>(z);
        if (round_to_fp16(p) != p) continue;
        double err = 0.0;
        for (std::size_t j = 0; j < ggml_qk; ++j)
          err = std::max(err, std::fabs(static_cast<double>(d * static_cast<float>(q[j]) - p) - static_cast<double>(x[j])));
        if (best < 0.0 || err < best) {
          best = err;
          best_h = h;
        }
      }
      if (best < 0.0 || best > static_cast<double>(s) / 8.0) return false;
      dh = best_h;
      mh = float_to_fp16(-(fp16_to_float(dh) * static_cast<float>(z)));
    } else {
      mh = float_to_fp16(-(s * static_cast<float>(z)));
    }
  }  // else every value is 0 (the range contains 0): d = m = 0, every code 0
  if (t == GgmlType::Q4_1) {
    const BlockQ4_1 b = make_block_q4_1(dh, mh, q);
    std::memcpy(out, &b, sizeof b);
  } else {
    const BlockQ5_1 b = make_block_q5_1(dh, mh, q);
    std::memcpy(out, &b, sizeof b);
  }
  return true;
}

/// Encodes a whole [rows x cols] matrix as block type t when every block lies on one of its grids.
[[nodiscard]] inline bool encode_exact(GgmlType t, MatrixView<const float> w, double tol, std::vector<char>& out) {
  if (w.cols() % ggml_qk != 0) return false;
  out.assign(ggml_nbytes(t, w.rows() * w.cols()), 0);
  const std::size_t bb = ggml_block_bytes(t);
  char* p = out.data();
  const bool affine = t == GgmlType::Q4_1 || t == GgmlType::Q5_1;
  for (std::size_t r = 0; r < w.rows(); ++r) {
    for (std::size_t c = 0; c < w.cols(); c += ggml_qk, p += bb) {
      const float* x = w.row(r) + c;
      if (!(affine ? affine_block(t, x, tol, p) : sym_block(t, x, tol, p))) return false;
    }
  }
  return true;
}

}  // namespace gguf_export_detail

/// One matrix encoded for GGUF: its type, how it was chosen, and the tensor bytes.
struct GgufTensorEncoding {
  GgmlType type = GgmlType::F32;
  GgufEncoding encoding = GgufEncoding::float_values;
  std::vector<char> bytes;
};

/// Encodes a [rows x cols] decoder linear by the rules of the file comment: the smallest block
/// type holding every block exactly; else, when `weight_bits` < 32 (the recipe quantized it),
/// requant_type (rows that are multiples of 32) or fallback_type; else float_type.
[[nodiscard]] inline GgufTensorEncoding gguf_encode_linear(MatrixView<const float> w, int weight_bits,
                                                           const GgufExportOptions& opt) {
  opt.validate();
  SPARQ_CHECK(!w.empty(), "gguf_encode_linear: empty ", w.rows(), "x", w.cols(), " matrix");
  check_finite(w.data(), w.rows() * w.cols(), "gguf_encode_linear input");  // contiguous rows (MatrixView)
  static constexpr GgmlType exact_order[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                                             GgmlType::Q8_0};
  GgufTensorEncoding e;
  for (GgmlType t : exact_order) {
    if (gguf_export_detail::encode_exact(t, w, opt.tolerance, e.bytes)) {
      e.type = t;
      e.encoding = GgufEncoding::exact;
      return e;
    }
  }
  const bool quantized = weight_bits < 32;
  const bool blocks = w.cols() % ggml_qk == 0;
  e.type = !quantized ? opt.float_type : blocks ? opt.requant_type : opt.fallback_type;
  e.encoding = !quantized ? GgufEncoding::float_values : blocks ? GgufEncoding::requantized : GgufEncoding::fallback;
  e.bytes.assign(ggml_nbytes(e.type, w.rows() * w.cols()), 0);
  ggml_encode(e.type, w.data(), w.rows() * w.cols(), e.bytes.data());
  return e;
}

/// The float weights a GGUF export writes (see the file comment): the model's weights with every
/// decoder linear replaced by the dense equivalent of its op. `sources`, if given, receives one
/// description per linear (block-major). A packed op whose float weights were released
/// (model::release_float_weights, or a SPRQ file read without them) contributes its
/// dequantized matrix, exactly what its kernels multiply by. Throws sparq::error when a linear's
/// float weights were released and its op is neither packed nor low-rank.
[[nodiscard]] inline model::LlamaWeights gguf_export_weights(const model::Llama& m,
                                                            std::vector<std::string>* sources = nullptr) {
  using namespace model;
  LlamaWeights w = m.weights();
  for (std::size_t b = 0; b < m.config().n_layers; ++b) {
    for (Linear l : all_linears) {
      const LinearOp& op = m.linear(b, l);
      Matrix<float>& dst = w.blocks[b].linear(l);
      std::string src = "weights";
      op.export_weights(dst, src);  // the model's float copy, the op's own decoding, + a correction
      SPARQ_CHECK(dst.rows() == op.out_features() && dst.cols() == op.in_features(), "gguf export: block ", b, " ",
                  linear_name(l), ": the float weights were released (", dst.rows(), "x", dst.cols(), " for a ",
                  op.out_features(), "x", op.in_features(), " op); export before model::release_float_weights");
      if (sources) sources->push_back(std::move(src));
    }
  }
  return w;
}

/// The activation quantization of one linear: the bits of its InputQuantLinear wrapper (also inside a
/// LoRC CompensatedLinear), or 8 for a packed op running int8 activations (ActivationMode::a8);
/// 0 for float inputs.
[[nodiscard]] inline int linear_activation_bits(const model::LinearOp& op) noexcept { return op.activation_bits(); }

/// linear_activation_bits of every decoder linear, block-major in all_linears order.
[[nodiscard]] inline std::vector<int> model_linear_activation_bits(const model::Llama& m) {
  std::vector<int> bits;
  for (std::size_t b = 0; b < m.config().n_layers; ++b)
    for (model::Linear l : model::all_linears) bits.push_back(linear_activation_bits(m.linear(b, l)));
  return bits;
}

/// The activation quantization of a model's linears: the first non-zero linear_activation_bits;
/// 0 when every linear takes float inputs.
[[nodiscard]] inline int model_activation_bits(const model::Llama& m) noexcept {
  for (std::size_t b = 0; b < m.config().n_layers; ++b)
    for (model::Linear l : model::all_linears)
      if (const int bits = linear_activation_bits(m.linear(b, l))) return bits;
  return 0;
}

/// A GgufWriter holding the compressed model `m` (see the file comment) and, if given, the
/// vocabulary; `report` (optional) receives what was chosen per linear and the measured change.
[[nodiscard]] inline GgufWriter gguf_export_writer(const model::Llama& m, const GgufVocab* vocab,
                                                   const GgufExportOptions& opt = {}, GgufExportReport* report = nullptr) {
  using namespace model;
  opt.validate();
  const auto& c = m.config();
  const std::size_t n_lin = c.n_layers * std::size(all_linears);
  SPARQ_CHECK(opt.weight_bits.empty() || opt.weight_bits.size() == n_lin, "gguf export: weight_bits has ",
              opt.weight_bits.size(), " entries, the model has ", n_lin, " linears");
  std::vector<std::string> sources;
  const LlamaWeights w = gguf_export_weights(m, &sources);
  GgufExportReport rep;
  rep.activation_bits = model_activation_bits(m);
  rep.linear_activation_bits = model_linear_activation_bits(m);
  rep.attention_bits = m.attention_input_bits();

  GgufWriter g;
  gguf_llama_metadata(g, c, vocab, opt.name);
  g.set("general.quantization_version", std::uint32_t{2});
  g.set("sparq.version", std::string(version_string));
  g.set("sparq.activation_bits", static_cast<std::int32_t>(rep.activation_bits));
  g.set("sparq.linear_activation_bits",
        GgufArray::of(GgufType::i32, std::vector<std::int32_t>(rep.linear_activation_bits.begin(),
                                                               rep.linear_activation_bits.end())));
  g.set("sparq.attention_bits", static_cast<std::int32_t>(rep.attention_bits));
  for (const auto& kv : opt.metadata) g.set(kv.first, kv.second);

  auto put_matrix = [&](const std::string& name, const Matrix<float>& mat, GgmlType want) {
    const GgmlType t = mat.cols() % ggml_block_elems(want) == 0 ? want : opt.fallback_type;
    g.add_tensor(name, {mat.cols(), mat.rows()}, t, mat.data());
  };
  put_matrix("token_embd.weight", w.token_embedding, opt.embedding_type);
  g.add_tensor("output_norm.weight", {w.rms_final.size()}, GgmlType::F32, w.rms_final.data());
  if (!c.shared_classifier) put_matrix("output.weight", w.classifier, opt.embedding_type);
  std::size_t i = 0;
  std::vector<float> back;
  for (std::size_t b = 0; b < c.n_layers; ++b) {
    const auto& blk = w.blocks[b];
    const std::string p = "blk." + std::to_string(b) + ".";
    g.add_tensor(p + "attn_norm.weight", {blk.rms_att.size()}, GgmlType::F32, blk.rms_att.data());
    for (Linear l : all_linears) {
      const Matrix<float>& mat = blk.linear(l);
      const std::string name = p + detail::gguf_block_tensor(l) + ".weight";
      GgufLinearExport e;
      e.block = b;
      e.linear = l;
      e.source = sources[i];
      // Only the recipe's own grid can be re-quantized: a LoRC / low-rank sum is float.
      const int bits = !opt.weight_bits.empty() && e.source == "weights" ? opt.weight_bits[i] : 32;
      ++i;
      GgufTensorEncoding enc;
      try {
        enc = gguf_encode_linear(mat.view(), bits, opt);
      } catch (const error& err) {
        sparq::detail::fail("gguf export: tensor '", name, "': ", err.what());
      }
      e.type = enc.type;
      e.encoding = enc.encoding;
      back.resize(mat.size());
      ggml_decode(e.type, enc.bytes.data(), mat.size(), back.data());
      for (std::size_t k = 0; k < mat.size(); ++k) {
        const float x = mat.data()[k];
        e.max_abs_change = std::max(e.max_abs_change, std::fabs(static_cast<double>(back[k]) - static_cast<double>(x)));
        e.max_abs_weight = std::max(e.max_abs_weight, static_cast<double>(std::fabs(x)));
        if (x == 0.0f) {
          ++e.zeros;
          if (back[k] == 0.0f) ++e.zeros_kept;
        }
      }
      e.bytes = enc.bytes.size();
      rep.linear_bytes += e.bytes;
      g.add_tensor_bytes(name, {mat.cols(), mat.rows()}, e.type, std::move(enc.bytes));
      rep.linears.push_back(std::move(e));
    }
    g.add_tensor(p + "ffn_norm.weight", {blk.rms_ffn.size()}, GgmlType::F32, blk.rms_ffn.data());
  }
  if (report) *report = std::move(rep);
  return g;
}

/// Writes the compressed model `m` as a Llama GGUF file (temporary file + rename) and returns the
/// report (file_bytes = the file's size).
inline GgufExportReport write_gguf_export(const std::string& path, const model::Llama& m, const GgufVocab* vocab,
                                          const GgufExportOptions& opt = {}) {
  GgufExportReport rep;
  const GgufWriter g = gguf_export_writer(m, vocab, opt, &rep);
  const auto b = g.serialize();
  detail::write_file_atomic(path, b.data(), b.size());
  rep.file_bytes = b.size();
  return rep;
}

}  // namespace sparq::io
