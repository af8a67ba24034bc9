// Shared by sparq-lowrank and tests/lowrank: calibration statistics of stories260K's linears and the compression recipes LoRC is measured on.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sparq/core/matrix_view.hpp>
#include <sparq/core/stats.hpp>
#include <sparq/lowrank/layer_error.hpp>
#include <sparq/lowrank/low_rank_compensation.hpp>
#include <sparq/model/calibration.hpp>
#include <sparq/model/dense_linear.hpp>
#include <sparq/model/llama.hpp>
#include <sparq/model/lowrank_linear.hpp>
#include <sparq/model/q4_linear.hpp>
#include <sparq/model/q8_linear.hpp>
#include <sparq/prune/pruner.hpp>
#include <sparq/prune/sar.hpp>
#include <sparq/prune/unstructured.hpp>
#include <sparq/quant/quantize.hpp>
#include <sparq/quant/quantizer.hpp>

namespace lowrank_harness {

using sparq::Matrix;
using sparq::MatrixView;
using sparq::model::Linear;

/// Statistics of one linear-input group (all from the same calibration inputs X).
struct GroupStats {
  sparq::HessianAccumulator h;     ///< cholesky whitening, output-error measure
  sparq::ColumnSquareSum sq;       ///< SAR / Wanda norms
  sparq::MeanSequence mean;        ///< SAR ranges over the mean sequence
  GroupStats(std::size_t seqlen, std::size_t cin) : h(cin), sq(cin), mean(seqlen, cin) {}
  void add(MatrixView<const float> x) {
    h.add(x);
    sq.add(x);
    mean.add(x);
  }
};

/// The compression recipes LoRC is applied after.
enum class Recipe { w4g128, sar50_w8 };

[[nodiscard]] inline const char* recipe_name(Recipe r) {
  return r == Recipe::w4g128 ? "W4 g128" : "SAR50%+W8";
}

/// The packed codes of recipe `r` applied to `w`:
///   w4g128:   Quantizer<Symmetric, PerGroup<128>, 4> with tail_group (cin 64: one group of 64;
///             cin 172: groups of 128 and 44).
///   sar50_w8: Pruner<SAR, Unstructured> at 50 % (SarStats from ColumnSquareSum + MeanSequence,
///             λ = 2), then Quantizer<Symmetric, PerChannel, 8> (pruned weights are code 0).
[[nodiscard]] inline sparq::QuantizedTensor quantized(const Matrix<float>& w, Recipe r, const GroupStats& s) {
  if (r == Recipe::w4g128) {
    sparq::QuantOptions qo;
    qo.tail_group = true;
    return sparq::Quantizer<sparq::Symmetric, sparq::PerGroup<128>, 4>(qo).quantize(w.view());
  }
  Matrix<float> p = w;
  sparq::PruneOptions po;
  po.sparsity = 0.5;
  (void)sparq::Pruner<sparq::SAR, sparq::Unstructured>(po).prune(p.view(), sparq::SarStats(s.sq, s.mean));
  return sparq::Quantizer<sparq::Symmetric, sparq::PerChannel, 8>{}.quantize(p.view());
}

/// Ŵ for recipe `r` as floats (dequantized codes; pruned weights are 0).
[[nodiscard]] inline Matrix<float> compress(const Matrix<float>& w, Recipe r, const GroupStats& s) {
  return sparq::quant::dequantize(quantized(w, r, s));
}

/// Collects GroupStats per (block, group leader) over all windows; compresses nothing.
struct StatsCollector : sparq::model::LayerwiseCallbacks {
  std::size_t seqlen;
  std::map<std::pair<std::size_t, Linear>, GroupStats> stats;
  explicit StatsCollector(std::size_t len) : seqlen(len) {}
  void on_linear_input(std::size_t b, Linear leader, MatrixView<const float> x, std::size_t) override {
    auto it = stats.try_emplace({b, leader}, seqlen, x.cols()).first;
    it->second.add(x);
  }
  [[nodiscard]] const GroupStats& of(std::size_t b, Linear l) const {
    return stats.at({b, sparq::model::input_group_leader(l)});
  }
};

/// Layer-wise compression with error propagation: every linear becomes Ŵ (recipe), plus, with
/// lorc.rank > 0, a LoRC correction (activation-aware, the block's Hessian) run by
/// model::CompensatedLinear. Counts the bytes the corrections add.
struct RecipeCompressor : sparq::model::LayerwiseCallbacks {
  Recipe recipe;
  std::size_t seqlen;
  std::size_t lorc_rank;
  sparq::lowrank::FactorFormat format;
  std::map<Linear, GroupStats> stats;
  bool packed = false;  ///< run Ŵ as the packed op (Q4Linear / Q8Linear, A32) instead of DenseLinear
  std::size_t added_bytes = 0, linears = 0;

  RecipeCompressor(Recipe r, std::size_t len, std::size_t rank, sparq::lowrank::FactorFormat f, bool pack = false)
      : recipe(r), seqlen(len), lorc_rank(rank), format(f), packed(pack) {}

  void on_linear_input(std::size_t, Linear leader, MatrixView<const float> x, std::size_t) override {
    stats.try_emplace(leader, seqlen, x.cols()).first->second.add(x);
  }
  void compress_block(std::size_t b, sparq::model::LlamaBlock& blk, sparq::model::Llama& model) override {
    for (Linear l : sparq::model::all_linears) {
      Matrix<float>& w = blk.linear(l);
      const GroupStats& s = stats.at(sparq::model::input_group_leader(l));
      const sparq::QuantizedTensor q = quantized(w, recipe, s);
      Matrix<float> w_hat = sparq::quant::dequantize(q);
      ++linears;
      std::unique_ptr<sparq::model::LinearOp> inner;
      if (packed) {
        const auto act = sparq::model::ActivationMode::a32;
        if (recipe == Recipe::w4g128) inner = std::make_unique<sparq::model::Q4Linear>(sparq::model::Q4Linear::from_quantized(q, act));
        else inner = std::make_unique<sparq::model::Q8Linear>(sparq::model::Q8Linear::from_quantized(q, act));
      } else if (lorc_rank > 0) {
        inner = std::make_unique<sparq::model::DenseLinear>(w_hat);
      }
      if (lorc_rank > 0) {
        sparq::lowrank::LowRankCompensationOptions o;
        o.rank = lorc_rank;
        o.format = format;
        auto c = sparq::lowrank::LowRankCompensation(o).apply(w.view(), w_hat.view(), s.h);
        added_bytes += c.bytes();
        model.set_linear(b, l, std::make_unique<sparq::model::CompensatedLinear>(std::move(inner), std::move(c)));
      } else if (inner) {
        model.set_linear(b, l, std::move(inner));
      }
      std::copy(w_hat.data(), w_hat.data() + w_hat.size(), w.data());  // the float weights are Ŵ now
    }
    stats.clear();
  }
};

}  // namespace lowrank_harness
