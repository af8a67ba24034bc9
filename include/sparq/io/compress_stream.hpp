// compress_streaming: a run-time recipe applied to a model larger than memory, one decoder block at
// a time, written to a packed SPRQ file as it goes (docs/compress.md#streaming).
//
// The model is a model::DeferredBlocks Llama holding only the embedding, final norm and classifier
// (io::load_streamed). The layer-wise driver (sparq::run_compression) then, for each block b:
//   1. reads block b from the checkpoint in f32 (HfCheckpoint::read_block; the shards are mapped
//      only while its tensors are converted) and loads it (Llama::load_block);
//   2. takes the statistics of its inputs over the calibration windows, runs the recipe's stages;
//   3. computes its outputs, which become block b + 1's inputs (error propagation);
//   4. packs its linears into the kernels' formats (sparq::pack_compressed for block b alone, the
//      same choice of format as for a model compressed in memory), spools their bytes to a file
//      beside the output (io::PackedModelStreamWriter) and unloads the block.
// At the end the embedding (int8 if the recipe asks) and the metadata are written and the spool is
// spliced into the output file, atomically: nothing is written under the output name on failure.
// The file is byte-identical to what compressing the whole model in memory, packing it and writing
// it gives (tests/io/test_compress_stream.cpp checks this on stories260K).
//
// Memory: the embedding and classifier in f32, one block in f32, the calibration activations, the
// statistics the stages ask for, and one block's packed bytes; formula and measurements in
// docs/compress.md#streaming. Recipes with JSQ's SA search (RecipeSpec::search) are refused: every
// search step recompresses the blocks after the one it changes and scores the whole model, which
// needs all blocks at hand; give the editing vector instead (CompressOptions::edit_strengths).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/container.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/joint/compress_report.hpp"
#include "sparq/joint/pack_compressed.hpp"
#include "sparq/joint/recipe.hpp"
#include "sparq/joint/stage_driver.hpp"
#include "sparq/model/llama.hpp"

namespace sparq::io {

/// What compress_streaming did.
struct StreamCompressResult {
  CompressReport report;
  PackedFormats formats;                ///< packed formats of every decoder linear
  std::size_t linear_bytes = 0;         ///< sum of the packed linears' weight_bytes()
  std::vector<double> block_seconds;    ///< wall time of each block: read, statistics, stages, outputs, pack, spool
};

/// How compress_streaming writes its file.
struct StreamWriteOptions {
  SectionEncoding encoding = SectionEncoding::raw;  ///< entropy coding of every section (smallest: where it pays)
  Container extra;                                  ///< metadata and tensors (e.g. the tokenizer) added to the file
};

/// Compresses the DeferredBlocks `model` with `spec`, block by block from `read_block(b)` (a callable
/// returning block b's model::LlamaBlock), and writes it to the SPRQ file `out`. `model` ends with its
/// blocks unloaded and its embedding as the recipe left it. Throws sparq::error (nothing written
/// under `out`) on a search recipe, a block that cannot be packed, or any error of the stages.
template <class ReadBlock>
StreamCompressResult compress_streaming(model::Llama& model, ReadBlock&& read_block,
                                        const std::vector<std::vector<int>>& windows, const RecipeSpec& spec,
                                        const std::string& out, const CompressOptions& options = {},
                                        const StreamWriteOptions& write = {}) {
  SPARQ_CHECK(!spec.search, "compress_streaming: recipe '", spec.name, "' searches the editing vector (JSQ's SA "
              "search), which recompresses and scores the whole model at every step; stream it with a fixed vector "
              "instead (jsq-nosearch, or CompressOptions::edit_strengths)");
  const std::size_t nb = model.config().n_layers;
  for (std::size_t b = 0; b < nb; ++b)
    SPARQ_CHECK(!model.block_loaded(b), "compress_streaming: block ", b, " is loaded; the model must be built with "
                "model::DeferredBlocks (io::load_streamed)");
  bool pruned = false;
  for (const auto& s : spec.stages) pruned = pruned || std::holds_alternative<PruneStageSpec>(s);
  StreamCompressResult res;
  PackedModelStreamWriter writer(out, write.encoding);
  auto t_block = std::chrono::steady_clock::now();
  CompressOptions o = options_for(spec, options);
  o.load_block = [&](std::size_t b, model::Llama& m) {
    t_block = std::chrono::steady_clock::now();
    m.load_block(b, read_block(b));
  };
  o.block_done = [&](std::size_t b, model::Llama& m, const CompressReport& rep) {
    const PackedFormats f = pack_compressed(m, rep, pruned, b, b + 1);
    for (const auto& [k, n] : f.count) res.formats.count[k] += n;
    for (model::Linear l : model::all_linears) res.linear_bytes += m.linear(b, l).weight_bytes();
    writer.add_block(m, b);
    m.unload_block(b);
    res.block_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t_block).count());
  };
  res.report = run_compression(model, windows, plan_of(spec), o);
  res.report.recipe = to_string(spec);
  writer.finish(model, write.extra);
  return res;
}

}  // namespace sparq::io
