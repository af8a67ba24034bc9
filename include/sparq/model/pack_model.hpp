// pack_model: replaces every decoder linear of a fake-quantized (and/or N:M-pruned) Llama by the packed
// LinearOp of a requested format, re-deriving and VERIFYING the integer codes from the float weights.
//
// The compression pipeline works on float weights: it prunes (exact zeros) and fake-quantizes
// (w ← dequantize(quantize(w))), possibly wrapping linears in InputQuantLinear(…, 8) for W8A8.
// pack_model is the post-pass that turns such a model into one that runs on the packed kernels:
//   1. For each (block, linear) the float matrix is taken from the op (a DenseLinear, possibly
//      inside an InputQuantLinear, possibly inside a CompensatedLinear whose LoRC factors are kept
//      around the packed op); LowRankLinear ops are left as they are; anything else is an error.
//   (bitmask_f32 stores the non-zeros of any float matrix as they are: nothing to verify.)
//   bitmask_w8 (and w8 with PackOptions::bitmask_if_smaller) verifies the int8 grid as w8 does and
//   stores the non-zero codes under a bitmask (BitmaskQ8Linear: the same outputs as Q8Linear, bit
//   for bit, in fewer bytes once more than about 1/8 of the weights are zero).
//   bitmask_w4 (and w4 with PackOptions::bitmask_if_smaller) verifies the int4 grid as w4 does and
//   stores the codes other than the zero code under a bitmask (BitmaskQ4Linear: the same outputs
//   as Q4Linear, bit for bit, in fewer bytes once more than about 1/4 of the weights are zero).
//   2. N:M formats: the matrix (zero-padded to a multiple of M columns) is compressed with
//      NMCompressed<N, M> — a group with more than N non-zeros is an error naming block/linear/row/
//      group. The quantized formats then work on the [rows × kept] matrix of kept values.
//   3. Grid recovery per scale group (the group of the format: whole row for W8, G inputs for W4,
//      G kept values for N:M+W4): first the MinMax fit of the fake-quantized values themselves
//      (symmetric: s = max(absmax, 1e−5)/qmax; asymmetric: GPTQ min/max with the range widened to
//      0), which reproduces the original grid when an extreme weight sits on the extreme code (always
//      for RTN). If a group's values are not on that grid (e.g. GPTQ, MSE-clipped or error-
//      compensated weights whose largest code is below qmax) the grid is searched: symmetric
//      s = absmax/k for k = qmax … 1, asymmetric s = (max − min)/d for d = 2^b−1 … 1 with
//      z = nearbyint(−min/s); the first grid on which every value of the group lies is kept.
//   4. The codes are computed with sparq::quant (the same Quantizer code path) and the dequantized
//      codes are compared with EVERY float weight: |ŵ − w| ≤ tolerance·FLT_EPSILON·max(|w|, s)
//      (default tolerance 4, "a few ulp of the scale"). A mismatch throws sparq::error naming the
//      block, linear, row and column: the weights were not fake-quantized on that format's grid.
//   5. Activations (PackOptions::activations): from_model turns an InputQuantLinear(…, 8) wrapper
//      into the A8 kernel path (real int8 per-token activations, bit-identical quantizer) and uses
//      A32 for unwrapped linears; wrappers with other bit widths are kept around the packed op.
//      a32 / a8 force the mode (a32 keeps an 8-bit wrapper as a fake activation quantizer).
// Afterwards Llama::linear_weight_bytes() is the packed size (padding included; + LoRC factors).
// Memory: the float block matrices stay resident next to the packed ops unless
// PackOptions::release_float_weights (or release_float_weights(model)) frees them;
// resident_weight_bytes(model) counts what the model actually holds.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/bitmask_linear.hpp"
#include "sparq/model/bitmask_q4_linear.hpp"
#include "sparq/model/bitmask_q8_linear.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/nm_linear.hpp"
#include "sparq/model/packed_linear.hpp"
#include "sparq/model/q4_linear.hpp"
#include "sparq/model/q8_linear.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/quant/quantize.hpp"
#include "sparq/quant/quantized_tensor.hpp"

namespace sparq::model {

/// Weight formats pack_model can install.
enum class PackFormat : std::uint8_t {
  w8,     ///< int8 per-channel symmetric (W8A32 / W8A8)
  w4,     ///< int4 per-group G, symmetric or asymmetric (W4A32 / W4A8)
  nm_f32, ///< N:M sparse, kept values f32
  nm_w8,  ///< N:M sparse, kept values int8 per row
  nm_w4,  ///< N:M sparse, kept values int4 per group of G kept values
  bitmask_f32,  ///< unstructured sparse, non-zeros f32 + bitmask (no grid check: any float matrix)
  bitmask_w8,   ///< unstructured sparse int8 per channel: non-zero codes + bitmask (BitmaskQ8Linear)
  bitmask_w4,   ///< unstructured sparse int4 per group G (sym/asym): non-zero codes + bitmask (BitmaskQ4Linear)
};

[[nodiscard]] constexpr const char* pack_format_name(PackFormat f) noexcept {
  switch (f) {
    case PackFormat::w8: return "w8";
    case PackFormat::w4: return "w4";
    case PackFormat::nm_f32: return "nm_f32";
    case PackFormat::nm_w8: return "nm_w8";
    case PackFormat::nm_w4: return "nm_w4";
    case PackFormat::bitmask_f32: return "bitmask_f32";
    case PackFormat::bitmask_w8: return "bitmask_w8";
    case PackFormat::bitmask_w4: return "bitmask_w4";
  }
  return "?";
}

/// Where the activation mode comes from.
enum class ActivationSource : std::uint8_t {
  from_model,  ///< A8 iff the linear is wrapped in InputQuantLinear(…, 8), else A32
  a32,         ///< float activations (an existing wrapper stays as a fake quantizer)
  a8,          ///< real int8 per-token activations (an 8-bit wrapper is absorbed)
};

struct PackOptions {
  PackFormat format = PackFormat::w8;
  std::size_t group_size = 32;  ///< w4: inputs per scale (0 = per channel); nm_w4: KEPT values per scale (32, 64, 128)
  bool asymmetric = false;      ///< w4 / nm_w4: zero points (GPTQ asymmetric grid)
  bool full_range = false;      ///< symmetric grid of QuantOptions::full_range (q ∈ [−2^(b−1), 2^(b−1)−1])
  std::size_t nm_n = 2, nm_m = 4;  ///< N:M formats: 2:4 or 4:8
  ActivationSource activations = ActivationSource::from_model;
  int threads = 1;              ///< kernel threads per op (1: callers such as perplexity parallelize windows)
  double tolerance = 4.0;       ///< verification, in FLT_EPSILON·max(|w|, scale)
  /// w8 / w4: install BitmaskQ8Linear / BitmaskQ4Linear (bitmask + non-zero codes) instead of
  /// Q8Linear / Q4Linear when its weight_bytes() is smaller (unstructured sparsity above ~1/8 for
  /// int8, ~1/4 for int4); outputs are bit-identical.
  bool bitmask_if_smaller = false;
  /// Free the float block matrices of the packed linears afterwards (release_float_weights): the
  /// model then holds only the packed bytes for them, but reset_linear on those linears throws.
  bool release_float_weights = false;

  void validate() const {
    const bool g_ok = group_size == 32 || group_size == 64 || group_size == 128;
    SPARQ_CHECK((format != PackFormat::w4 && format != PackFormat::bitmask_w4) || g_ok || group_size == 0,
                "PackOptions: group_size = ", group_size, " for ", pack_format_name(format),
                ", expected 32, 64, 128 or 0 (per channel)");
    SPARQ_CHECK(format != PackFormat::nm_w4 || g_ok, "PackOptions: group_size = ", group_size,
                " for nm_w4, expected 32, 64 or 128 kept values");
    const bool nm = format == PackFormat::nm_f32 || format == PackFormat::nm_w8 || format == PackFormat::nm_w4;
    SPARQ_CHECK(!nm || (nm_n == 2 && nm_m == 4) || (nm_n == 4 && nm_m == 8), "PackOptions: N:M = ", nm_n, ":", nm_m,
                ", expected 2:4 or 4:8");
    SPARQ_CHECK(!(asymmetric && full_range), "PackOptions: asymmetric and full_range exclude each other");
    SPARQ_CHECK(threads >= 0, "PackOptions: threads = ", threads, ", expected >= 0");
    SPARQ_CHECK(std::isfinite(tolerance) && tolerance >= 0.0, "PackOptions: tolerance = ", tolerance,
                ", expected a finite value >= 0");
  }
};

/// What pack_model installed for one linear.
struct PackedEntry {
  std::size_t block = 0;
  Linear linear = Linear::wq;
  std::string format;            ///< describe() of the installed op
  std::size_t weight_bytes = 0;  ///< packed bytes (codes + scales + zeros + indices, padding included)
};

struct PackReport {
  std::vector<PackedEntry> linears;
  std::size_t weight_bytes = 0;  ///< sum over linears (= Llama::linear_weight_bytes() afterwards)
  std::size_t released_bytes = 0;  ///< float bytes freed by PackOptions::release_float_weights
};

namespace detail {

/// Checks one group (n values) against grid (s, z): returns the first offending index or n.
[[nodiscard]] inline std::size_t first_off_grid(const float* x, std::size_t n, float s, int z, int lo, int hi,
                                                double tol) noexcept {
  const float inv = 1.0f / s;
  for (std::size_t i = 0; i < n; ++i) {
    const float l = std::nearbyint(x[i] * inv);
    if (l < static_cast<float>(lo - z) || l > static_cast<float>(hi - z)) return i;
    const double err = std::fabs(static_cast<double>(s * l) - static_cast<double>(x[i]));
    if (err > tol * FLT_EPSILON * std::max(static_cast<double>(std::fabs(x[i])), static_cast<double>(s))) return i;
  }
  return n;
}

/// Quantizes w with cfg on the grid its (already fake-quantized) values lie on and verifies every
/// element (see the header comment). `where` prefixes error messages.
[[nodiscard]] inline QuantizedTensor quantize_on_grid(MatrixView<const float> w, const QuantConfig& cfg, double tol,
                                                      const std::string& where) {
  QuantParams p = quant::fit(w, cfg);
  const std::size_t G = p.group(), ng = p.groups_per_row;
  const bool asym = cfg.scheme == SchemeKind::asymmetric;
  const int lo = p.code_lo(), hi = p.code_hi(), maxq = p.maxq();
  for (std::size_t r = 0; r < w.rows(); ++r) {
    for (std::size_t g = 0; g < ng; ++g) {
      const float* x = w.row(r) + g * G;
      const std::size_t n = std::min(G, w.cols() - g * G);
      float& s = p.row_scales(r)[g];
      const int z0 = asym ? p.row_zeros(r)[g] : p.symmetric_zero();
      const std::size_t bad = first_off_grid(x, n, s, z0, lo, hi, tol);
      if (bad == n) continue;
      bool found = false;
      if (!asym) {
        float a = 0.0f;
        for (std::size_t i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
        const int z = p.symmetric_zero();
        for (int k = std::max(z - lo, hi - z); k >= 1 && !found && a > 0.0f; --k) {
          const float sc = a / static_cast<float>(k);
          if (sc >= FLT_MIN && first_off_grid(x, n, sc, z, lo, hi, tol) == n) {
            s = sc;
            found = true;
          }
        }
      } else {
        float mn = 0.0f, mx = 0.0f;
        for (std::size_t i = 0; i < n; ++i) {
          mn = std::min(mn, x[i]);
          mx = std::max(mx, x[i]);
        }
        for (int d = maxq; d >= 1 && !found && mx > mn; --d) {
          const float sc = (mx - mn) / static_cast<float>(d);
          const float zf = std::nearbyint(-mn / sc);
          if (!(sc >= FLT_MIN) || zf < 0.0f || zf > static_cast<float>(maxq)) continue;
          const int z = static_cast<int>(zf);
          if (first_off_grid(x, n, sc, z, lo, hi, tol) == n) {
            s = sc;
            p.row_zeros(r)[g] = static_cast<std::uint8_t>(z);
            found = true;
          }
        }
      }
      if (!found) {
        sparq::detail::fail(where, ": weight ", x[bad], " at row ", r, ", column ", g * G + bad,
                            " is not on any ", cfg.bits, "-bit ", scheme_name(cfg.scheme), " grid of its group (",
                            g, ", scale ", s, "): the weights were not fake-quantized in this format");
      }
    }
  }
  QuantizedTensor t = quant::quantize(w, p);
  const Matrix<float> back = quant::dequantize(t);
  for (std::size_t r = 0; r < w.rows(); ++r) {
    for (std::size_t c = 0; c < w.cols(); ++c) {
      const double sc = p.row_scales(r)[c / G];
      const double err = std::fabs(static_cast<double>(back(r, c)) - static_cast<double>(w(r, c)));
      SPARQ_CHECK(err <= tol * FLT_EPSILON * std::max(static_cast<double>(std::fabs(w(r, c))), sc), where,
                  ": dequantized code ", back(r, c), " differs from the weight ", w(r, c), " at row ", r, ", column ", c,
                  " (scale ", sc, ")");
    }
  }
  return t;
}

[[nodiscard]] inline QuantConfig w8_config(const PackOptions& o) {
  QuantConfig c;
  c.scheme = SchemeKind::symmetric;
  c.granularity = GranularityKind::per_channel;
  c.bits = 8;
  c.options.full_range = o.full_range;
  return c;
}

[[nodiscard]] inline QuantConfig w4_config(const PackOptions& o) {
  QuantConfig c;
  c.scheme = o.asymmetric ? SchemeKind::asymmetric : SchemeKind::symmetric;
  c.granularity = o.group_size == 0 ? GranularityKind::per_channel : GranularityKind::per_group;
  c.group_size = o.group_size;
  c.bits = 4;
  c.options.full_range = o.full_range;
  c.options.tail_group = o.group_size != 0;
  return c;
}

template <std::size_t N, std::size_t M>
[[nodiscard]] std::unique_ptr<PackedLinear> pack_nm(MatrixView<const float> w, const PackOptions& o, ActivationMode act,
                                                    const std::string& where) {
  const std::size_t cols = w.cols(), cm = (cols + M - 1) / M * M;
  Matrix<float> padded(w.rows(), cm, 0.0f);
  for (std::size_t r = 0; r < w.rows(); ++r) std::copy(w.row(r), w.row(r) + cols, padded.row(r));
  NMCompressed<N, M, float> c;
  try {
    c = NMCompressed<N, M, float>::from_dense(padded.view());
  } catch (const error& e) {
    sparq::detail::fail(where, ": not ", N, ":", M, " sparse: ", e.what());
  }
  if (o.format == PackFormat::nm_f32) return std::make_unique<NMLinear>(NMLinear::from_compressed(c, act, o.threads, cols));
  Matrix<float> kept(c.rows(), c.kept_per_row());
  for (std::size_t r = 0; r < c.rows(); ++r) std::copy(c.row_values(r), c.row_values(r) + c.kept_per_row(), kept.row(r));
  const QuantConfig cfg = o.format == PackFormat::nm_w8 ? w8_config(o) : w4_config(o);
  const QuantizedTensor t = quantize_on_grid(kept.view(), cfg, o.tolerance, where + " (kept values)");
  return std::make_unique<NMLinear>(NMLinear::from_compressed(c, t, act, o.threads, cols));
}

}  // namespace detail

/// Packs one float matrix ([out x in], already on the format's grid / N:M pattern) into the op of
/// `opt.format` with activation mode `act`. `where` names the matrix in error messages. `chosen`, if
/// given, receives the format used: opt.format, or bitmask_w8 / bitmask_w4 where
/// PackOptions::bitmask_if_smaller chose the bitmask op.
[[nodiscard]] inline std::unique_ptr<PackedLinear> pack_linear(MatrixView<const float> w, const PackOptions& opt,
                                                               ActivationMode act, const std::string& where = "pack_linear",
                                                               PackFormat* chosen = nullptr) {
  opt.validate();
  SPARQ_CHECK(!w.empty(), where, ": empty ", w.rows(), "x", w.cols(), " matrix");
  if (chosen != nullptr) *chosen = opt.format;
  switch (opt.format) {
    case PackFormat::w8:
    case PackFormat::bitmask_w8: {
      const QuantizedTensor t = detail::quantize_on_grid(w, detail::w8_config(opt), opt.tolerance, where);
      bool bitmask = opt.format == PackFormat::bitmask_w8;
      if (!bitmask && opt.bitmask_if_smaller) {
        const auto c = t.int8_codes();
        const auto kept = static_cast<std::size_t>(std::count_if(c.begin(), c.end(), [](std::int8_t q) { return q != 0; }));
        bitmask = BitmaskQ8Linear::bytes_for(w.rows(), w.cols(), kept) < w.rows() * w.cols() + w.rows() * sizeof(float);
      }
      if (bitmask && chosen != nullptr) *chosen = PackFormat::bitmask_w8;
      if (bitmask) return std::make_unique<BitmaskQ8Linear>(BitmaskQ8Linear::from_quantized(t, act, opt.threads));
      return std::make_unique<Q8Linear>(Q8Linear::from_quantized(t, act, opt.threads));
    }
    case PackFormat::w4:
    case PackFormat::bitmask_w4: {
      Q4Linear q = Q4Linear::from_quantized(detail::quantize_on_grid(w, detail::w4_config(opt), opt.tolerance, where), act,
                                            opt.threads);
      bool bitmask = opt.format == PackFormat::bitmask_w4;
      if (!bitmask && opt.bitmask_if_smaller) {
        std::size_t code_bytes = 0;  // Σ_rows ⌈kept/2⌉
        for (std::size_t k = 0; k < q.out_features(); ++k) {
          std::size_t n = 0;
          for (std::size_t j = 0; j < q.padded_cols(); ++j) n += q.code(k, j) != q.zero(k, j / q.group_size()) ? 1 : 0;
          code_bytes += (n + 1) / 2;
        }
        bitmask = BitmaskQ4Linear::bytes_for(q.out_features(), q.in_features(), q.group_size(), code_bytes,
                                             q.asymmetric()) < q.weight_bytes();
      }
      if (bitmask && chosen != nullptr) *chosen = PackFormat::bitmask_w4;
      if (bitmask) return std::make_unique<BitmaskQ4Linear>(BitmaskQ4Linear::from_q4(q, act, opt.threads));
      return std::make_unique<Q4Linear>(std::move(q));
    }
    case PackFormat::nm_f32:
    case PackFormat::nm_w8:
    case PackFormat::nm_w4:
      if (opt.nm_m == 4) return detail::pack_nm<2, 4>(w, opt, act, where);
      return detail::pack_nm<4, 8>(w, opt, act, where);
    case PackFormat::bitmask_f32:
      return std::make_unique<BitmaskLinear>(BitmaskLinear::from_dense(w, act, opt.threads));
  }
  sparq::detail::fail(where, ": unknown pack format ", int(opt.format));
}

/// True when `op` (or an op it wraps) is a non-owning DenseLinear view, i.e. it reads float
/// weights it does not hold (a Llama's own block matrices). LinearOp::reads_float_view.
[[nodiscard]] inline bool reads_float_view(const LinearOp& op) noexcept { return op.reads_float_view(); }

/// Bytes of weight arrays `op` holds itself (a DenseLinear view holds none; wrappers count what
/// they wrap; CompensatedLinear adds its factors). LinearOp::owned_weight_bytes.
[[nodiscard]] inline std::size_t owned_weight_bytes(const LinearOp& op) noexcept { return op.owned_weight_bytes(); }

/// Weight bytes a model holds in memory: every float array of its LlamaWeights (embedding,
/// classifier when not shared, norms, the block matrices still present) plus the arrays its
/// linear ops own (packed codes, scales, zeros, indices, padding, low-rank factors; a dense view
/// of the block weights counts once, as the block matrix). Activations, KV cache and scratch are
/// not included.
[[nodiscard]] inline std::size_t resident_weight_bytes(const Llama& m) noexcept {
  const auto& w = m.weights();
  std::size_t n = w.token_embedding.size() + w.classifier.size() + w.rms_final.size();
  for (const auto& blk : w.blocks) {
    n += blk.rms_att.size() + blk.rms_ffn.size();
    for (Linear l : all_linears) n += blk.linear(l).size();
  }
  n *= sizeof(float);
  for (std::size_t b = 0; b < m.config().n_layers; ++b)
    for (Linear l : all_linears) n += owned_weight_bytes(m.linear(b, l));
  return n;
}

/// Frees the float block matrix of every linear whose op no longer reads it (packed ops,
/// low-rank ops, wrappers of those; see reads_float_view), leaving an empty 0x0 matrix. Returns
/// the bytes freed. Forward passes are unchanged (bit-identical logits: they only run the ops).
/// Afterwards the float weights of those linears are GONE: reset_linear / take_linear on such a
/// linear throw sparq::error and leave its op installed (Llama::float_weights_released tells;
/// refresh_block accepts the released state), and anything
/// that reads weights().blocks[b].<linear> (calibration, re-compression, pack_model itself on a
/// dense linear of the same block is fine) sees an empty matrix. Use it once the model is final.
inline std::size_t release_float_weights(Llama& m) {
  std::size_t freed = 0;
  for (std::size_t b = 0; b < m.config().n_layers; ++b) {
    for (Linear l : all_linears) {
      if (reads_float_view(m.linear(b, l))) continue;
      Matrix<float>& w = m.block_weights(b).linear(l);
      freed += w.size() * sizeof(float);
      w = Matrix<float>();
    }
  }
  return freed;
}

namespace detail {

/// Packs one (already unwrapped) dense linear and restores the wrappers: `bits` = width of the
/// InputQuantLinear directly around the dense op (0: none). Returns the op to install.
[[nodiscard]] inline std::unique_ptr<LinearOp> pack_dense_op(const DenseLinear& dense, int bits, const PackOptions& opt,
                                                             const std::string& where) {
  ActivationMode act = ActivationMode::a32;
  if (opt.activations == ActivationSource::a8 || (opt.activations == ActivationSource::from_model && bits == 8))
    act = ActivationMode::a8;
  std::unique_ptr<LinearOp> packed = pack_linear(dense.weight(), opt, act, where);
  const bool keep_wrapper = bits != 0 && !(bits == 8 && act == ActivationMode::a8);
  if (keep_wrapper) packed = std::make_unique<InputQuantLinear>(std::move(packed), bits);
  return packed;
}

/// pack_model's OpPacker: the dense linears of one (block, linear) under the caller's options.
class Packer final : public OpPacker {
 public:
  Packer(const PackOptions& opt, std::string where) : opt_(opt), where_(std::move(where)) {}
  [[nodiscard]] std::unique_ptr<LinearOp> pack_dense(const DenseLinear& d, int input_bits) const override {
    return pack_dense_op(d, input_bits, opt_, where_);
  }
  [[nodiscard]] const std::string& where() const noexcept override { return where_; }

 private:
  const PackOptions& opt_;
  std::string where_;
};

}  // namespace detail

/// Replaces every decoder linear of `model` by its packed op (see the header comment).
///
/// Accepted linears, [·] optional:
///   [InputQuantLinear] DenseLinear                          -> the packed op (the wrapper as in 5.)
///   [InputQuantLinear(o)] CompensatedLinear([InputQuantLinear(i)] DenseLinear)
///                      -> [InputQuantLinear(o)] CompensatedLinear(packed op, the same factors):
///                         the inner dense op is packed as above (an 8-bit inner wrapper becomes
///                         A8), the LoRC correction and an outer wrapper (which also quantizes the
///                         correction's input) stay as they are;
///   LowRankLinear, or a CompensatedLinear whose inner op is already packed / low-rank
///                      -> left as it is (its factors are already in their storage format).
/// Anything else (an already packed op, ...) throws. Each op decides this itself through
/// LinearOp::pack (model/linear_op.hpp): a format of its own packs, keeps or refuses itself
/// without pack_model knowing its type. The model's float block weights are left as
/// they are (the fake-quantized reference; reset_linear brings a dense view back) unless
/// opt.release_float_weights, which calls release_float_weights(model) after every linear is
/// packed. Throws sparq::error naming block/linear on the first failure; linears packed before
/// the failure stay packed (and no float weights are released).
inline PackReport pack_model(Llama& model, const PackOptions& opt) {
  opt.validate();
  PackReport rep;
  for (std::size_t b = 0; b < model.config().n_layers; ++b) {
    for (Linear l : all_linears) {
      const std::string where = sparq::detail::concat("pack_model: block ", b, " ", linear_name(l));
      const detail::Packer packer(opt, where);
      std::unique_ptr<LinearOp> packed = model.linear(b, l).pack(packer, 0, false);
      const LinearOp* installed = &model.linear(b, l);  // nullptr from pack: left as it is
      if (packed) installed = packed.get();
      PackedEntry e{b, l, installed->describe(), installed->weight_bytes()};
      if (packed) model.set_linear(b, l, std::move(packed));
      rep.weight_bytes += e.weight_bytes;
      rep.linears.push_back(std::move(e));
    }
  }
  if (opt.release_float_weights) rep.released_bytes = release_float_weights(model);
  return rep;
}

}  // namespace sparq::model
