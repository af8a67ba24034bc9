// pack_compressed: the packed ops of a model a recipe has compressed, each linear's format chosen
// from what the recipe did to it (its CompressReport), as sparq-compress runs and writes them.
//
// Per decoder linear (LinearReport of `compress`):
//   N:M pruned -> nm_f32 / nm_w8 / nm_w4 (the N:M the prune stage applied to that linear);
//   quantized  -> w8 (per channel) / w4 (group G; per channel = the smallest G in {32, 64, 128} >= cin);
//                 w8 / w4 with unstructured zeros -> bitmask_w8 / bitmask_w4 (mask + non-zero codes,
//                 BitmaskQ8Linear / BitmaskQ4Linear) when that stores fewer bytes
//                 (PackOptions::bitmask_if_smaller; the same outputs bit for bit);
//   float, unstructured sparse -> bitmask_f32 (mask + non-zeros) when that is smaller than dense f32;
//   float otherwise (dense, or a LoRC-corrected float linear) -> left as the dense f32 op.
// An 8-bit input quantization (the op's activation_bits) becomes the kernels' real int8 activation
// path; other widths stay as an InputQuantLinear. LoRC (a compensation in the report): the packed
// op is wrapped in CompensatedLinear with the linear's factors as stored; the correction reads the
// float input, as in the fake-quantized model. LowRank replacements keep their factors, stored as
// int8 factors when a W8 per-channel quantizer left them exactly on that grid.
// The codes are found from the model's fake-quantized float weights (pack_linear verifies the grid);
// the model is changed only if every linear packs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/linear_factors.hpp"
#include "sparq/lowrank/stored_factor.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/pack_model.hpp"

namespace sparq {

/// What pack_compressed installed: a count per format label ("bitmask_w8 A8", "nm_w4 2:4 g32 A8",
/// "dense f32 + lorc r8 int8", "lowrank r16 int8 (W8 factors)", ...).
struct PackedFormats {
  std::map<std::string, int> count;

  /// "35x bitmask_w8 A8, ..." (labels in order).
  [[nodiscard]] std::string describe() const {
    std::string s;
    for (const auto& [k, n] : count) s += (s.empty() ? "" : ", ") + std::to_string(n) + "x " + k;
    return s;
  }
};

/// Packs every decoder linear of `model`, compressed by `compress` with report `rep`; `pruned`: the
/// recipe had a pruning stage. Throws sparq::error naming the block and linear that cannot be packed,
/// leaving the model as it was.
/// Blocks [first, last) only when given (a model compressed by streaming packs each block as it is final).
inline PackedFormats pack_compressed(model::Llama& model, const CompressReport& rep, bool pruned, std::size_t first = 0,
                                     std::size_t last = static_cast<std::size_t>(-1)) {
  using namespace model;
  PackedFormats r;
  last = std::min(last, model.config().n_layers);
  SPARQ_CHECK(first <= last, "pack_compressed: blocks [", first, ", ", last, ") is not a range of the model's ",
              model.config().n_layers);
  std::vector<std::pair<std::pair<std::size_t, Linear>, std::unique_ptr<LinearOp>>> ops;  // installed only if all pack
  for (std::size_t b = first; b < last; ++b) {
    for (Linear l : all_linears) {
      const std::string where = sparq::detail::concat("block ", b, " ", linear_name(l));
      const LinearReport* li = rep.find(b, l);
      SPARQ_CHECK(li != nullptr, where, ": not in the compression report");
      const LinearOp& cur = model.linear(b, l);
      const bool lorc = li->factors && li->factors->role == FactorRole::compensation;
      const std::string lorc_label = lorc ? " + lorc r" + std::to_string(li->factors->rank()) + " " +
                                                std::string(lowrank::factor_format_name(li->factors->format()))
                                          : "";
      const bool nm = pruned && li->nm_m != 0;
      const int bits = cur.activation_bits();  // the input quantization around the (inner) op
      if (li->factors && li->factors->role == FactorRole::replacement) {
        // LowRank (+ W8 per channel): the quantizer left A and B on a per-row int8 grid in f32 storage;
        // store them as int8 factors when that is exact (decode() bit-identical), else keep them.
        const LinearFactors& f = *li->factors;
        std::string key = "lowrank r" + std::to_string(f.rank()) + " " + std::string(lowrank::factor_format_name(f.format()));
        if (li->weight_bits < 32)
          key = "lowrank r" + std::to_string(f.rank()) + " w" + std::to_string(li->weight_bits) +
                (li->group_size ? "g" + std::to_string(li->group_size) : "");
        if (li->weight_bits == 8 && li->group_size == 0 && f.a.format() == lowrank::FactorFormat::f32) {
          const auto fa = f.a.decode(), fb = f.b.decode();
          auto a8 = lowrank::StoredFactor::encode(fa.view(), lowrank::FactorFormat::int8);
          auto b8 = lowrank::StoredFactor::encode(fb.view(), lowrank::FactorFormat::int8);
          const auto da = a8.decode(), db = b8.decode();
          if (std::equal(da.data(), da.data() + da.size(), fa.data()) &&
              std::equal(db.data(), db.data() + db.size(), fb.data())) {
            std::unique_ptr<LinearOp> op = std::make_unique<LowRankLinear>(std::move(a8), std::move(b8));
            if (bits != 0) op = std::make_unique<InputQuantLinear>(std::move(op), bits);
            ops.emplace_back(std::make_pair(b, l), std::move(op));
            key = "lowrank r" + std::to_string(f.rank()) + " int8 (W8 factors)";
          }
        }
        ++r.count[key];
        continue;
      }
      // Unstructured-sparse float weights: bitmask + non-zeros (BitmaskLinear) when that stores fewer bytes
      // than dense f32 (mask bits + 4 B per non-zero + 8 B per row offset; from ~3 % sparsity on).
      const double bitmask_bytes =
          static_cast<double>(li->rows * ((li->cols + 7) / 8) + 4 * li->nnz + 8 * (li->rows + 1));
      const bool bitmask = !nm && li->weight_bits >= 32 && pruned && !lorc &&
                           bitmask_bytes < 4.0 * static_cast<double>(li->rows * li->cols);
      if (!nm && li->weight_bits >= 32 && !bitmask) {
        ++r.count[cur.describe().substr(0, 9) + lorc_label];
        continue;
      }
      PackOptions o;
      o.nm_n = nm ? li->nm_n : 2;
      o.nm_m = nm ? li->nm_m : 4;
      std::size_t g = li->group_size;
      if (li->weight_bits == 4 && g == 0) {
        for (std::size_t c : {32u, 64u, 128u})
          if (c >= li->cols) {
            g = c;
            break;
          }
        SPARQ_CHECK(g != 0, where, ": W4 per output channel needs one group of ", li->cols,
                    " inputs; the int4 kernels take groups of 32, 64 or 128");
      }
      if (bitmask) {
        o.format = PackFormat::bitmask_f32;
      } else if (nm) {
        SPARQ_CHECK(li->weight_bits >= 32 || li->weight_bits == 8 || li->weight_bits == 4, where, ": ", li->weight_bits,
                    "-bit weights have no packed op");
        o.format = li->weight_bits >= 32 ? PackFormat::nm_f32 : li->weight_bits == 8 ? PackFormat::nm_w8 : PackFormat::nm_w4;
        if (li->weight_bits == 4) o.group_size = g * o.nm_n / o.nm_m;  // kept values per scale
      } else {
        SPARQ_CHECK(li->weight_bits == 8 || li->weight_bits == 4, where, ": ", li->weight_bits,
                    "-bit weights have no packed op");
        o.format = li->weight_bits == 8 ? PackFormat::w8 : PackFormat::w4;
        o.group_size = g ? g : 32;
        o.bitmask_if_smaller = true;  // w8 and w4
      }
      const ActivationMode act = bits == 8 ? ActivationMode::a8 : ActivationMode::a32;
      PackFormat used = o.format;
      std::unique_ptr<LinearOp> op =
          pack_linear(std::as_const(model.block_weights(b).linear(l)).view(), o, act, where, &used);
      const bool w4 = used == PackFormat::w4 || used == PackFormat::bitmask_w4 || used == PackFormat::nm_w4;
      if (bits != 0 && bits != 8) op = std::make_unique<InputQuantLinear>(std::move(op), bits);
      if (lorc) op = std::make_unique<CompensatedLinear>(std::move(op), li->factors->compensation());
      std::string label(pack_format_name(used));  // appended piece by piece (GCC 12 -Wrestrict false positive on "x" + s)
      if (nm) label.append(" ").append(std::to_string(o.nm_n)).append(":").append(std::to_string(o.nm_m));
      if (w4) label.append(" g").append(std::to_string(o.group_size));
      label.append(act == ActivationMode::a8 ? " A8" : " A32").append(lorc_label);
      ++r.count[label];
      ops.emplace_back(std::make_pair(b, l), std::move(op));
    }
  }
  for (auto& [bl, op] : ops) model.set_linear(bl.first, bl.second, std::move(op));
  return r;
}

}  // namespace sparq
