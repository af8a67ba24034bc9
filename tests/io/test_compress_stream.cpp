// Streaming compression (io/compress_stream.hpp) and what it stands on: a DeferredBlocks Llama that
// holds one block at a time, the container spool (io/container.hpp) and the block-by-block packed
// writer (io/packed_model.hpp). The central property: compressing stories260K block by block from a
// Hugging Face directory writes exactly the bytes of compressing it in memory, packing and writing.
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "sparq/io/compress_stream.hpp"
#include "sparq/io/container.hpp"
#include "sparq/io/hf_checkpoint.hpp"
#include "sparq/io/llama2c.hpp"
#include "sparq/io/load.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/joint/named_recipes.hpp"
#include "sparq/joint/pack_compressed.hpp"
#include "sparq/joint/recipe.hpp"
#include "sparq/model/calibration.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq_test.hpp"

using namespace sparq;
namespace fs = std::filesystem;

namespace {

struct StreamDir : sparq_test::TempDir {
  StreamDir() : sparq_test::TempDir("sparq-stream") {}
};

std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

io::ContainerTensor tensor(const std::string& name, std::size_t n, unsigned seed, bool compressible) {
  io::ContainerTensor t{name, "f32", {n}, {}};
  std::vector<float> v = sparq_test::randn(n, seed);
  if (compressible)
    for (auto& x : v) x = static_cast<float>(static_cast<int>(x * 2.0f));  // few distinct values: rANS pays
  t.add_section("data", v);
  std::vector<std::uint8_t> idx(n % 7 + 1, static_cast<std::uint8_t>(seed));
  t.add_section("idx", idx);
  return t;
}

void require_no_files_named(const fs::path& dir, const std::string& stem) {
  for (const auto& e : fs::directory_iterator(dir)) {
    INFO(e.path().string());
    CHECK(e.path().filename().string().rfind(stem, 0) != 0);
  }
}

}  // namespace

TEST_CASE("ContainerSpool: spliced writes give serialize_container's bytes, version 1 and 2", "[io][container][stream]") {
  for (const bool coded : {false, true}) {
    for (std::size_t at : {0u, 1u, 2u}) {
      io::Container whole;
      whole.metadata["k"] = std::int64_t{7};
      whole.metadata["s"] = std::string("text");
      std::vector<io::ContainerTensor> ts;
      for (unsigned i = 0; i < 5; ++i) {
        const std::string name = std::string(1, static_cast<char>('a' + i)) + "_tensor";
        ts.push_back(tensor(name, 100 + 37 * i, i + 1, coded && i == 3));
      }
      for (auto& t : ts) whole.add(t);
      if (coded) whole.set_encoding(io::SectionEncoding::smallest);
      const std::vector<char> want = io::serialize_container(whole);
      // Tensors [at, at + 3) go through the spool, the others are given with the metadata.
      StreamDir d;
      const fs::path out = d.path / "c.sprq";
      io::Container rest;
      rest.metadata = whole.metadata;
      io::ContainerSpool spool((d.path / "spool").string());
      for (std::size_t i = 0; i < ts.size(); ++i) {
        io::ContainerTensor t = ts[i];
        if (coded)
          for (auto& s : t.sections) s.encoding = io::SectionEncoding::smallest;
        if (i >= at && i < at + 3) spool.add(t);
        else rest.add(t);
      }
      io::write_container(out.string(), rest, spool, at);
      INFO("coded " << coded << " at " << at);
      CHECK(file_bytes(out) == want);
      CHECK((want[4] == 2) == coded);  // the version byte: version 2 only when a section was coded
    }
  }
  // A name in both the spool and the container is refused, and nothing is written.
  StreamDir d;
  io::ContainerSpool spool((d.path / "spool").string());
  spool.add(tensor("a", 10, 1, false));
  io::Container ct;
  ct.add(tensor("a", 12, 2, false));
  CHECK_THROWS_WITH(io::write_container((d.path / "x.sprq").string(), ct, spool, 0),
                    Catch::Contains("duplicate tensor 'a'"));
  CHECK_FALSE(fs::exists(d.path / "x.sprq"));
  CHECK_THROWS_WITH(spool.add(tensor("a", 3, 3, false)), Catch::Contains("duplicate tensor 'a'"));
}

TEST_CASE("Llama with DeferredBlocks: blocks loaded one at a time compute what the full model computes",
          "[model][stream]") {
  const auto bin = sparq_test::data_path("models/stories260K.bin");
  if (bin.empty()) return;
  const auto w = io::read_llama2c(bin);
  const model::Llama full{model::LlamaWeights(w)};
  model::Llama part(model::LlamaWeights(w), model::DeferredBlocks{});
  const auto& c = full.config();
  for (std::size_t b = 0; b < c.n_layers; ++b) CHECK_FALSE(part.block_loaded(b));
  const std::vector<int> toks{1, 400, 35, 87, 300, 12, 9, 250};
  Matrix<float> x(toks.size(), c.dim), y(toks.size(), c.dim);
  full.embed(toks, x.view());
  part.embed(toks, y.view());
  model::LlamaState s1(c, toks.size(), 1), s2(c, toks.size(), 1);
  CHECK_THROWS_WITH(part.forward_block(0, y.view(), 0, s2, 0), Catch::Contains("block 0 is not loaded"));
  CHECK_THROWS_WITH((void)part.linear(1, model::Linear::w2), Catch::Contains("block 1 is not loaded"));
  // A block of the wrong shape is refused and leaves the block unloaded.
  model::LlamaBlock bad = w.blocks[0];
  bad.w2 = Matrix<float>(3, 3);
  CHECK_THROWS_WITH(part.load_block(0, bad), Catch::Contains("w2"));
  CHECK_FALSE(part.block_loaded(0));
  for (std::size_t b = 0; b < c.n_layers; ++b) {
    full.forward_block(b, x.view(), 0, s1, 0);
    part.load_block(b, w.blocks[b]);
    part.forward_block(b, y.view(), 0, s2, 0);
    part.unload_block(b);
    CHECK_FALSE(part.block_loaded(b));
    CHECK(part.block_weights(b).wq.size() == 0);
  }
  CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
  CHECK(part.linear_weight_bytes() == 0);
}

TEST_CASE("compress_streaming from an HF directory writes the bytes of in-memory compress + pack + write",
          "[io][stream][real]") {
  const auto bin = sparq_test::data_path("models/stories260K.bin");
  const auto tokp = sparq_test::data_path("models/tok512.bin");
  const auto text = sparq_test::data_path("text/tinystories_train_head.txt");
  if (bin.empty() || tokp.empty() || text.empty()) return;
  const auto w = io::read_llama2c(bin);
  StreamDir d;
  const fs::path hf = d.path / "hf";
  io::write_hf_llama(hf.string(), w, io::SafeDtype::F32, 300'000);  // several shards; blocks span two
  const auto tok = model::Tokenizer::read_llama2c(tokp, w.config.vocab_size);
  const auto stream = model::document_token_stream_file(text, tok, 8 * 64);
  const auto windows = model::calibration_windows(stream, 8, 64, false, 0);

  struct Case {
    std::string recipe;
    io::SectionEncoding enc;
  };
  for (const Case& k : {Case{"sparsegpt:0.5,smooth,w8a8", io::SectionEncoding::raw},
                        Case{"wanda:2:4,w8a8,embed", io::SectionEncoding::smallest},
                        Case{"edit:5e-5,sar:0.5,smooth:0.5,w8a8", io::SectionEncoding::smallest}}) {
    INFO(k.recipe);
    const RecipeSpec spec = parse_recipe(k.recipe);
    io::Container extra;
    extra.metadata["compress.recipe"] = k.recipe;
    io::add_tokenizer(extra, tok);

    // In memory: the whole model, compressed, packed, written.
    model::Llama mem(io::read_hf_llama(hf.string()).weights);
    const CompressReport rep = compress(mem, windows, spec);
    const PackedFormats f_mem = pack_compressed(mem, rep, true);
    io::Container ct = io::packed_model_container(mem);
    for (const auto& [key, v] : extra.metadata) ct.metadata[key] = v;
    for (const auto& t : extra.tensors) ct.add(t);
    ct.set_encoding(k.enc);
    const std::vector<char> want = io::serialize_container(ct);

    // Streamed: one block in memory at a time.
    io::HfCheckpoint ck(hf.string());
    model::Llama part(ck.read_globals(), model::DeferredBlocks{});
    io::StreamWriteOptions wo;
    wo.encoding = k.enc;
    wo.extra = extra;
    std::vector<std::size_t> loaded;
    const fs::path out = d.path / "streamed.sprq";
    const auto res = io::compress_streaming(
        part,
        [&](std::size_t b) {
          for (std::size_t i = 0; i < part.config().n_layers; ++i)
            if (part.block_loaded(i)) loaded.push_back(i);  // must stay empty: one block at a time
          return ck.read_block(b);
        },
        windows, spec, out.string(), {}, wo);
    CHECK(loaded.empty());
    CHECK(res.block_seconds.size() == w.config.n_layers);
    CHECK(res.formats.describe() == f_mem.describe());
    CHECK(res.linear_bytes == mem.linear_weight_bytes());
    CHECK(res.report.nnz == rep.nnz);
    CHECK(res.report.recipe == rep.recipe);
    const std::vector<char> got = file_bytes(out);
    CHECK(got.size() == want.size());
    CHECK(got == want);
    require_no_files_named(d.path, "streamed.sprq.");  // spool and temporary file gone
    // The file runs: the same logits as the in-memory packed model.
    const model::Llama back = io::read_packed_model(out.string());
    const std::vector<int> toks(windows[0].begin(), windows[0].begin() + 16);
    model::LlamaState s1(mem.config(), toks.size(), mem.config().n_layers), s2(back.config(), toks.size(), back.config().n_layers);
    Matrix<float> l1(toks.size(), mem.config().vocab_size), l2(toks.size(), back.config().vocab_size);
    mem.prefill(toks, s1, l1.view());
    back.prefill(toks, s2, l2.view());
    CHECK(std::memcmp(l1.data(), l2.data(), l1.size() * sizeof(float)) == 0);
    fs::remove(out);
  }
}

TEST_CASE("compress_streaming: a search recipe, a used model and a shard cut mid-run are errors; nothing is written",
          "[io][stream][real]") {
  const auto bin = sparq_test::data_path("models/stories260K.bin");
  if (bin.empty()) return;
  const auto w = io::read_llama2c(bin);
  StreamDir d;
  const fs::path hf = d.path / "hf";
  io::write_hf_llama(hf.string(), w, io::SafeDtype::BF16, 150'000);
  std::vector<std::vector<int>> windows(2, std::vector<int>(32));
  for (std::size_t i = 0; i < 32; ++i) windows[0][i] = windows[1][i] = static_cast<int>(i * 13 % 512);
  const fs::path out = d.path / "o.sprq";
  io::HfCheckpoint ck(hf.string());
  {
    model::Llama m(ck.read_globals(), model::DeferredBlocks{});
    CHECK_THROWS_WITH(io::compress_streaming(m, [&](std::size_t b) { return ck.read_block(b); }, windows,
                                             named_recipe("jsq"), out.string()),
                      Catch::Contains("jsq-nosearch"));
    m.load_block(0, ck.read_block(0));
    CHECK_THROWS_WITH(io::compress_streaming(m, [&](std::size_t b) { return ck.read_block(b); }, windows,
                                             parse_recipe("wanda:0.5"), out.string()),
                      Catch::Contains("block 0 is loaded"));
  }
  // The shard holding the last block is cut after the checkpoint was opened: the run fails when it
  // reaches that block, and neither the output nor its spool or temporary file is left.
  const auto idx = nlohmann::json::parse(file_bytes(hf / "model.safetensors.index.json"));
  const std::string last = idx["weight_map"]["model.layers." + std::to_string(w.config.n_layers - 1) +
                                              ".mlp.down_proj.weight"].get<std::string>();
  model::Llama m(ck.read_globals(), model::DeferredBlocks{});
  fs::resize_file(hf / last, fs::file_size(hf / last) - 100);
  std::size_t reached = 0;
  CHECK_THROWS_WITH(io::compress_streaming(m, [&](std::size_t b) { reached = b; return ck.read_block(b); }, windows,
                                           parse_recipe("wanda:0.5,w8a8"), out.string()),
                    Catch::Contains(last));
  std::size_t first_cut = w.config.n_layers;  // the first block with a tensor in the cut shard
  for (const auto& [name, shard] : idx["weight_map"].items())
    if (shard == last && name.rfind("model.layers.", 0) == 0)
      first_cut = std::min<std::size_t>(first_cut, std::stoul(name.substr(13)));
  CHECK(first_cut > 0);
  CHECK(reached == first_cut);
  require_no_files_named(d.path, "o.sprq");
}
