// CompressOptions and CompressReport: run-time options of a compression and what it did, per linear and in total.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "sparq/joint/block_stats.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq {

/// Run-time options shared by Compressor<Stages...>::compress and the run-time recipe executor.
struct CompressOptions {
  /// Bits of the per-token dynamic activation quantization installed on every decoder linear
  /// (model::InputQuantLinear, symmetric absmax, ALGORITHMS.md §1.8). nullopt (default): 8 when a
  /// stage quantizes weights, none otherwise; 0: none; otherwise 2..16.
  std::optional<int> activation_bits;
  /// With activation quantization on: also fake-quantize the q/k/v outputs per token
  /// (Llama::set_attention_input_bits, SmoothQuant/JSQ's int8 BMM inputs). Set after the whole
  /// model is compressed, so calibration passes do not see it (as the reference).
  bool quantize_attention_inputs = true;
  /// Next block's calibration inputs from the compressed block (error propagation, default) or
  /// from the dense block.
  bool propagate_compressed = true;
  /// Per-block ActivationEdit strengths r_b (the JSQ editing vector V). Empty: the stage's own
  /// strength for every block. Otherwise one value per block, each in [0, 0.5].
  std::vector<double> edit_strengths;
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

  [[nodiscard]] double sparsity() const noexcept {
    return params ? 1.0 - static_cast<double>(nnz) / static_cast<double>(params) : 0.0;
  }
  /// Weight bits of the linears (the first one's; every linear gets the same stages).
  [[nodiscard]] int weight_bits() const noexcept { return linears.empty() ? 32 : linears.front().weight_bits; }
};

}  // namespace sparq
