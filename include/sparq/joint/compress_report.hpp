// CompressOptions and CompressReport: run-time options of a compression and what it did, per linear and in total.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sparq/joint/block_stats.hpp"
#include "sparq/joint/linear_factors.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq::model {
class Llama;  // model/llama.hpp; only named in the streaming hooks below
}  // namespace sparq::model

namespace sparq {

struct CompressReport;

/// Run-time options shared by Compressor<Stages...>::compress and the run-time recipe executor.
struct CompressOptions {
  /// Bits of the per-token dynamic activation quantization installed on every decoder linear
  /// (model::InputQuantLinear, symmetric absmax, docs/algorithms.md#w8a8). nullopt (default): 8 when a
  /// stage quantizes weights, none otherwise; 0: none; otherwise 2..16.
  std::optional<int> activation_bits;
  /// With activation quantization on: also fake-quantize the q/k/v outputs per token
  /// (Llama::set_attention_input_bits, SmoothQuant/JSQ's int8 BMM inputs). Set after the whole
  /// model is compressed, so calibration passes do not see it (as the reference).
  bool quantize_attention_inputs = true;
  /// Token embedding (and classifier) after the decoder blocks: 8 rounds them to their per-row int8
  /// grid (model::quantize_embeddings: weight-only, the model keeps float activations there; a SPRQ
  /// file then stores 1-byte codes, docs/formats.md); nullopt, 0 or 32 (default): left in float.
  std::optional<int> embedding_bits;
  /// Next block's calibration inputs from the compressed block (error propagation, default) or
  /// from the dense block.
  bool propagate_compressed = true;
  /// Per-block ActivationEdit strengths r_b (the JSQ editing vector V). Empty: the stage's own
  /// strength for every block. Otherwise one value per block, each in [0, 0.5].
  std::vector<double> edit_strengths;
  /// Install the low-rank ops of LowRank / LowRankCompensation stages into the model while
  /// compressing (default): the factored/compensated block then produces the next block's
  /// calibration inputs and the returned model runs them. false: the factors are only reported
  /// (LinearReport::factors; install_low_rank() installs them later, e.g. around packed ops).
  bool install_low_rank = true;
  /// Called after each block is compressed with (blocks done, blocks in all, seconds since the
  /// compression started), e.g. for a "block 3/22, 41 s, ETA 260 s" line on stderr. Empty: silent.
  std::function<void(std::size_t done, std::size_t blocks, double seconds)> progress;
  /// Streaming a model larger than memory (built with model::DeferredBlocks): called before block
  /// b is first used, to bring it in (Llama::load_block). Empty: every block is already loaded.
  std::function<void(std::size_t block, model::Llama& model)> load_block;
  /// Called once block b is final (compressed, and its outputs computed for block b + 1) with the
  /// report so far, e.g. to pack it, write it out and unload it (io::compress_streaming).
  std::function<void(std::size_t block, model::Llama& model, const CompressReport& report)> block_done;
};

/// What happened to one decoder linear.
struct LinearReport {
  std::size_t block = 0;
  model::Linear linear = model::Linear::wq;
  std::size_t rows = 0, cols = 0;
  std::size_t nnz = 0;          ///< non-zero weights after compression
  int weight_bits = 32;         ///< 32 = float weights; else the quantizer's code width
  std::size_t group_size = 0;   ///< quantization group actually used (0 = one per row)
  int activation_bits = 0;      ///< per-token input quantization bits (0 = float inputs)
  double seconds = 0.0;         ///< time spent in stages on this linear (group stages split evenly)
  std::size_t nm_n = 0, nm_m = 0;  ///< N:M pattern the prune stage applied to this linear (0 = not N:M)
  bool nm_fallback = false;     ///< nm_n:nm_m is the fallback of NMFallback (cin not a multiple of the asked M)
  /// Low-rank factors of this linear (LowRankCompensation: Ŵ + A·B; LowRank: A·B), if a stage made them.
  std::optional<LinearFactors> factors;

  [[nodiscard]] double sparsity() const noexcept {
    const double n = static_cast<double>(rows * cols);
    return n > 0 ? 1.0 - static_cast<double>(nnz) / n : 0.0;
  }
};

/// The result of one compression.
struct CompressReport {
  std::string recipe;                 ///< stage names joined by ','
  std::vector<LinearReport> linears;  ///< block-major, model::all_linears order within a block
  std::size_t params = 0;             ///< decoder-linear weights
  std::size_t nnz = 0;                ///< non-zero decoder-linear weights
  double seconds = 0.0;               ///< wall time of the whole compression (driver included)
  StatCounts stat_updates{};          ///< accumulator updates per StatKind over all blocks
  std::vector<double> edit_strengths; ///< r_b used per block (empty without ActivationEdit)
  int activation_bits = 0;
  int attention_bits = 0;
  int embedding_bits = 32;            ///< 8: token embedding and classifier on their int8 grid

  [[nodiscard]] double sparsity() const noexcept {
    return params ? 1.0 - static_cast<double>(nnz) / static_cast<double>(params) : 0.0;
  }
  /// Weight bits of the linears (the first one's; every linear gets the same stages).
  [[nodiscard]] int weight_bits() const noexcept { return linears.empty() ? 32 : linears.front().weight_bits; }
  /// The report of linear l of block b, or nullptr.
  [[nodiscard]] const LinearReport* find(std::size_t block, model::Linear l) const noexcept {
    for (const auto& r : linears)
      if (r.block == block && r.linear == l) return &r;
    return nullptr;
  }
  /// Bytes of all low-rank factors as stored (0 without LowRank / LowRankCompensation).
  [[nodiscard]] std::size_t factor_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& r : linears)
      if (r.factors) n += r.factors->bytes();
    return n;
  }
};

}  // namespace sparq
