// Calibration windows and the layer-by-layer (sequential) driver with error propagation.
//
// Windows (docs/evaluation.md#calibration): the calibration text becomes one token stream exactly like the
// evaluation text (document_token_stream); by default the first `nsamples` consecutive
// non-overlapping windows of `seqlen` tokens are used; with a seed, each window starts at a
// position drawn uniformly from [0, len − seqlen] (std::mt19937_64 seeded with the seed).
//
// Driver (docs/algorithms.md#layer-wise-driver): embed every window once; then for each block b:
//   1. run every window through block b (from position 0, fresh cache) and hand the callbacks
//      the input of every linear group: on_linear_input(b, leader, x, window) with x the
//      [seqlen x cin] input matrix. Linears that share an input are reported once under their
//      group leader: Linear::wq for {wq, wk, wv}, Linear::wo, Linear::w1 for {w1, w3},
//      Linear::w2 (see linears_sharing_input). So a block yields 4 calls per window.
//   2. compress_block(b, block_weights, model): the caller edits the float weights of block b in
//      place and/or installs LinearOps with model.set_linear; the driver then calls
//      model.refresh_block(b) (shapes are re-checked).
//   3. the block's outputs become block b+1's inputs: with `propagate_compressed` (default, error
//      propagation) block b is run again with its compressed weights; otherwise the dense outputs
//      of step 1 are used.
// Memory: the activations of all windows (two copies of nsamples x seqlen x dim floats when dense
// outputs are propagated, one otherwise) plus one block's scratch; weights are edited in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/llama_state.hpp"
#include "sparq/model/llama_weights.hpp"

namespace sparq::model {

/// Token windows for calibration: `nsamples` windows of `seqlen` tokens from `stream`.
/// Without a seed (use_seed = false) the first consecutive non-overlapping windows; with one,
/// seeded uniform random starts in [0, len − seqlen]. Throws sparq::error when the stream is too
/// short or a size is zero.
[[nodiscard]] inline std::vector<std::vector<int>> calibration_windows(std::span<const int> stream,
                                                                       std::size_t nsamples = 32,
                                                                       std::size_t seqlen = 256,
                                                                       bool use_seed = false,
                                                                       std::uint64_t seed = 0) {
  SPARQ_CHECK(nsamples > 0 && seqlen > 0, "calibration_windows: nsamples = ", nsamples,
              ", seqlen = ", seqlen, ", expected both > 0");
  std::vector<std::vector<int>> w(nsamples);
  if (!use_seed) {
    SPARQ_CHECK(stream.size() / seqlen >= nsamples, "calibration_windows: the stream has ",
                stream.size(), " tokens, fewer than nsamples x seqlen = ", nsamples, " x ", seqlen);
    for (std::size_t i = 0; i < nsamples; ++i)
      w[i].assign(stream.begin() + static_cast<std::ptrdiff_t>(i * seqlen),
                  stream.begin() + static_cast<std::ptrdiff_t>((i + 1) * seqlen));
  } else {
    SPARQ_CHECK(stream.size() >= seqlen, "calibration_windows: the stream has ", stream.size(),
                " tokens, fewer than seqlen = ", seqlen);
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::size_t> start(0, stream.size() - seqlen);
    for (auto& win : w) {
      const std::size_t s = start(rng);
      win.assign(stream.begin() + static_cast<std::ptrdiff_t>(s),
                 stream.begin() + static_cast<std::ptrdiff_t>(s + seqlen));
    }
  }
  return w;
}

/// What the layer-wise driver calls. Override only what you need.
class LayerwiseCallbacks {
 public:
  virtual ~LayerwiseCallbacks() = default;
  /// Input of linear group `leader` (wq, wo, w1 or w2) of `block` for calibration window `window`:
  /// x is [window tokens x cin], valid only during the call.
  virtual void on_linear_input(std::size_t block, Linear leader, MatrixView<const float> x,
                               std::size_t window) {
    (void)block, (void)leader, (void)x, (void)window;
  }
  /// Called before block b's first use (e.g. to load it into a DeferredBlocks model).
  virtual void before_block(std::size_t block, Llama& model) { (void)block, (void)model; }
  /// Called when block b is final: compressed, and its outputs computed for the next block (e.g.
  /// to write it out and unload it).
  virtual void after_block(std::size_t block, Llama& model) { (void)block, (void)model; }
  /// Called once per block after all its inputs were seen: compress `weights` in place and/or
  /// install LinearOps through `model.set_linear(block, ...)`.
  virtual void compress_block(std::size_t block, LlamaBlock& weights, Llama& model) {
    (void)block, (void)weights, (void)model;
  }
};

struct LayerwiseOptions {
  bool propagate_compressed = true;  ///< next block's inputs from the compressed block (error propagation)
};

/// Runs the sequential driver over `windows` (each at most the model's seq_len tokens, all the
/// same length). Returns the hidden states after the last block, one [tokens x dim] matrix per
/// window (before the final RMSNorm).
inline std::vector<Matrix<float>> run_layerwise(Llama& model, const std::vector<std::vector<int>>& windows,
                                                LayerwiseCallbacks& cb, const LayerwiseOptions& opt = {}) {
  const auto& c = model.config();
  SPARQ_CHECK(!windows.empty(), "run_layerwise: no calibration windows");
  const std::size_t len = windows[0].size();
  SPARQ_CHECK(len > 0 && len <= c.seq_len, "run_layerwise: window length ", len, ", expected 1..",
              c.seq_len);
  for (std::size_t w = 0; w < windows.size(); ++w) {
    SPARQ_CHECK(windows[w].size() == len, "run_layerwise: window ", w, " has ", windows[w].size(),
                " tokens, expected ", len, " like window 0");
  }
  std::vector<Matrix<float>> x(windows.size());
  for (std::size_t w = 0; w < windows.size(); ++w) {
    x[w] = Matrix<float>(len, c.dim);
    model.embed(windows[w], x[w].view());
  }
  std::vector<Matrix<float>> dense_out;
  if (!opt.propagate_compressed) dense_out.resize(windows.size());
  LlamaState st(c, len, 1);
  Matrix<float> tmp(len, c.dim);
  for (std::size_t b = 0; b < c.n_layers; ++b) {
    cb.before_block(b, model);
    for (std::size_t w = 0; w < windows.size(); ++w) {
      std::copy(x[w].data(), x[w].data() + x[w].size(), tmp.data());
      const LinearInputHook hook = [&](Linear l, MatrixView<const float> in) { cb.on_linear_input(b, l, in, w); };
      model.forward_block(b, tmp.view(), 0, st, 0, &hook);
      if (!opt.propagate_compressed) dense_out[w] = tmp;
    }
    cb.compress_block(b, model.block_weights(b), model);
    model.refresh_block(b);
    if (opt.propagate_compressed) {
      for (auto& xw : x) model.forward_block(b, xw.view(), 0, st, 0);
    } else {
      std::swap(x, dense_out);
    }
    cb.after_block(b, model);
  }
  return x;
}

}  // namespace sparq::model
