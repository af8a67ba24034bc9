// EditVectorCompressor: compresses a model for many editing vectors V, reusing the blocks a shared V-prefix leaves unchanged.
//
// JSQ's search evaluates one editing vector V = [r_0 … r_{n−1}] (one ActivationEdit strength per
// block) per step. Block b's compressed weights and the hidden states leaving it depend only on
// the dense model, the calibration windows, the recipe and r_0 … r_b. So after compressing for V,
// the compressor keeps, for every prefix V[0..b], the compressed block b and the calibration hidden
// states after it; a later V that agrees with a cached prefix up to block k−1 restarts the
// layer-wise loop at block k from those states. A step whose first changed element is block b
// then costs n − b block compressions instead of n.
// The loop is the one of model::run_layerwise (same operations in the same order: dense pass with
// statistics hooks over a copy of each window's states, compress, refresh, compressed pass), run
// with a StageDriver, so compress(V) is bit-identical to run_compression with edit_strengths = V.
// Memory: per cached prefix one block of weights plus nsamples × seqlen × dim floats of states;
// `max_entries` bounds the number of prefixes kept (oldest dropped first).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/stage_driver.hpp"
#include "sparq/model/embedding_quant.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/llama_state.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq {

class EditVectorCompressor {
 public:
  /// `dense`, `windows` and `plan` are referenced and must outlive this object. The plan must
  /// start with an ActivationEdit in a min/max mode (Eq. 5 strength).
  EditVectorCompressor(const model::LlamaWeights& dense, const std::vector<std::vector<int>>& windows,
                       const StagePlan& plan, const CompressOptions& options, bool reuse_prefix = true,
                       std::size_t max_entries = 256)
      : dense_(dense), windows_(windows), plan_(plan), opt_(options), reuse_(reuse_prefix), max_entries_(max_entries) {
    check_stage_order(plan_.stages);
    SPARQ_CHECK(plan_.edit.has_value(), "EditVectorCompressor: the recipe has no ActivationEdit stage to search");
    SPARQ_CHECK(plan_.edit->mode != EditMode::PercentileCompat,
                "EditVectorCompressor: the search varies the Eq. 5 strength r; EditMode::PercentileCompat has none");
    SPARQ_CHECK(!windows_.empty(), "EditVectorCompressor: no calibration windows");
    const std::size_t len = windows_[0].size();
    SPARQ_CHECK(len > 0 && len <= dense_.config.seq_len, "EditVectorCompressor: window length ", len,
                ", expected 1..", dense_.config.seq_len);
    for (std::size_t w = 0; w < windows_.size(); ++w)
      SPARQ_CHECK(windows_[w].size() == len, "EditVectorCompressor: window ", w, " has ", windows_[w].size(),
                  " tokens, expected ", len, " like window 0");
    act_bits_ = resolved_activation_bits(plan_, opt_);
    emb_bits_ = opt_.embedding_bits.value_or(32);
    SPARQ_CHECK(emb_bits_ == 0 || emb_bits_ == 8 || emb_bits_ == 32, "EditVectorCompressor: embedding_bits = ",
                emb_bits_, ", expected 8 (int8 per row) or 0/32 (float)");
  }

  /// The model compressed with editing vector `v` (one strength per block); `report`, when given,
  /// receives the per-linear report (seconds are those of the run that produced each block).
  [[nodiscard]] model::Llama compress(const std::vector<double>& v, CompressReport* report = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t nb = dense_.config.n_layers;
    CompressOptions o = opt_;
    o.edit_strengths = v;
    const std::vector<double> strengths = resolved_edit_strengths(plan_, o, nb);  // validates v
    model::Llama model{model::LlamaWeights(dense_)};
    // Longest cached prefix whose every shorter prefix is cached too.
    std::size_t k = 0;
    if (reuse_) {
      std::vector<double> p;
      while (k < nb) {
        p.push_back(v[k]);
        if (!cache_.count(p)) break;
        ++k;
      }
    }
    last_reused_ = k;
    blocks_reused_ += k;
    CompressReport rep;
    rep.recipe = plan_.name();
    rep.edit_strengths = strengths;
    rep.activation_bits = act_bits_;
    std::vector<double> prefix;
    for (std::size_t b = 0; b < k; ++b) {
      prefix.push_back(v[b]);
      const Entry& e = cache_.at(prefix);
      model.block_weights(b) = e.block;
      StageDriver::install_block(model, b, act_bits_,
                                 opt_.install_low_rank ? std::span<const LinearReport>(e.linears)
                                                       : std::span<const LinearReport>());
      rep.linears.insert(rep.linears.end(), e.linears.begin(), e.linears.end());
      for (std::size_t s = 0; s < stat_kind_count; ++s) rep.stat_updates[s] += e.counts[s];
    }
    const auto& c = dense_.config;
    const std::size_t len = windows_[0].size();
    std::vector<Matrix<float>> x;
    if (k > 0) {
      x = cache_.at(prefix).states;
    } else {
      x.resize(windows_.size());
      for (std::size_t w = 0; w < windows_.size(); ++w) {
        x[w] = Matrix<float>(len, c.dim);
        model.embed(windows_[w], x[w].view());
      }
    }
    if (k < nb) {
      model::LlamaState st(c, len, 1);
      Matrix<float> tmp(len, c.dim);
      for (std::size_t b = k; b < nb; ++b) {
        CompressReport block_rep;
        StageDriver drv(plan_, strengths, act_bits_, block_rep, opt_.install_low_rank);
        std::vector<Matrix<float>> dense_out;
        if (!opt_.propagate_compressed) dense_out.resize(windows_.size());
        for (std::size_t w = 0; w < windows_.size(); ++w) {
          std::copy(x[w].data(), x[w].data() + x[w].size(), tmp.data());
          const model::LinearInputHook hook = [&](model::Linear l, MatrixView<const float> in) {
            drv.on_linear_input(b, l, in, w);
          };
          model.forward_block(b, tmp.view(), 0, st, 0, &hook);
          if (!opt_.propagate_compressed) dense_out[w] = tmp;
        }
        drv.compress_block(b, model.block_weights(b), model);
        model.refresh_block(b);
        if (opt_.propagate_compressed) {
          for (auto& xw : x) model.forward_block(b, xw.view(), 0, st, 0);
        } else {
          std::swap(x, dense_out);
        }
        ++blocks_compressed_;
        prefix.push_back(v[b]);
        rep.linears.insert(rep.linears.end(), block_rep.linears.begin(), block_rep.linears.end());
        for (std::size_t s = 0; s < stat_kind_count; ++s) rep.stat_updates[s] += block_rep.stat_updates[s];
        if (reuse_ && max_entries_ > 0) store(prefix, Entry{model.weights().blocks[b], x, block_rep.linears, block_rep.stat_updates});
      }
    }
    for (const auto& lr : rep.linears) {
      rep.params += lr.rows * lr.cols;
      rep.nnz += lr.nnz;
    }
    rep.attention_bits = act_bits_ > 0 && opt_.quantize_attention_inputs ? act_bits_ : 0;
    model.set_attention_input_bits(rep.attention_bits);
    model::quantize_embeddings(model, emb_bits_);  // as run_compression: after every block
    rep.embedding_bits = emb_bits_ == 8 ? 8 : 32;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (report) *report = std::move(rep);
    return model;
  }

  /// Blocks taken from the cache by the last compress() call.
  [[nodiscard]] std::size_t last_reused_blocks() const noexcept { return last_reused_; }
  /// Totals over every compress() call.
  [[nodiscard]] std::size_t blocks_reused() const noexcept { return blocks_reused_; }
  [[nodiscard]] std::size_t blocks_compressed() const noexcept { return blocks_compressed_; }
  [[nodiscard]] std::size_t cached_prefixes() const noexcept { return cache_.size(); }

 private:
  struct Entry {
    model::LlamaBlock block;              ///< compressed float weights of the prefix's last block
    std::vector<Matrix<float>> states;    ///< calibration hidden states after that block
    std::vector<LinearReport> linears;
    StatCounts counts{};
  };

  void store(const std::vector<double>& prefix, Entry e) {
    if (cache_.count(prefix)) return;
    while (cache_.size() >= max_entries_ && !order_.empty()) {
      cache_.erase(order_.front());
      order_.pop_front();
    }
    cache_.emplace(prefix, std::move(e));
    order_.push_back(prefix);
  }

  const model::LlamaWeights& dense_;
  const std::vector<std::vector<int>>& windows_;
  const StagePlan& plan_;
  CompressOptions opt_;
  bool reuse_;
  std::size_t max_entries_;
  int act_bits_ = 0;
  int emb_bits_ = 32;
  std::map<std::vector<double>, Entry> cache_;
  std::deque<std::vector<double>> order_;
  std::size_t last_reused_ = 0, blocks_reused_ = 0, blocks_compressed_ = 0;
};

}  // namespace sparq
