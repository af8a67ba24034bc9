// GGUF export of compressed models (io/gguf_export.hpp): each sparq grid lands in the ggml block type
// that holds it exactly, only the fp16 scale rounding changes the weights, pruned zeros stay 0, and
// the file reads back (sparq's reader) into the same model.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "sparq/core/version.hpp"
#include "sparq/io/gguf_export.hpp"
#include "sparq/io/load.hpp"
#include "sparq/model/llama_state.hpp"
#include "sparq/model/perplexity.hpp"
#include "sparq/quant/quantize.hpp"
#include "../model/model_test_util.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using io::GgmlType;
using io::GgufEncoding;

namespace {

/// rows x cols normal(0, sigma) weights, every `prune`-th weight of a row-dependent phase set to 0.
Matrix<float> weights(std::size_t rows, std::size_t cols, unsigned seed, std::size_t prune = 0, float sigma = 0.05f) {
  const auto v = sparq_test::randn(rows * cols, seed, sigma);
  Matrix<float> w(rows, cols);
  std::copy(v.begin(), v.end(), w.data());
  if (prune)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = (r * 7) % prune; c < cols; c += prune) w(r, c) = 0.0f;
  return w;
}

/// w quantized and dequantized by sparq's quantizer (the values a compressed model holds).
Matrix<float> fake(const Matrix<float>& w, int bits, std::size_t group, bool asym) {
  QuantConfig c;
  c.bits = bits;
  c.scheme = asym ? SchemeKind::asymmetric : SchemeKind::symmetric;
  c.granularity = group ? GranularityKind::per_group : GranularityKind::per_channel;
  c.group_size = group;
  c.options.tail_group = group != 0;
  return quant::dequantize(quant::quantize(w.view(), c));
}

struct Change {
  double max_rel = 0;  // max |decoded - w| / max|w of the matrix|
  std::size_t zeros = 0, zeros_kept = 0;
};

Change decode_change(const io::GgufTensorEncoding& e, const Matrix<float>& w) {
  std::vector<float> back(w.size());
  io::ggml_decode(e.type, e.bytes.data(), w.size(), back.data());
  double amax = 0, err = 0;
  Change ch;
  for (std::size_t i = 0; i < w.size(); ++i) {
    amax = std::max(amax, static_cast<double>(std::fabs(w.data()[i])));
    err = std::max(err, std::fabs(static_cast<double>(back[i]) - w.data()[i]));
    if (w.data()[i] == 0.0f) {
      ++ch.zeros;
      ch.zeros_kept += back[i] == 0.0f;
    }
  }
  ch.max_rel = err / amax;
  return ch;
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("sparq_gguf_export_") + std::to_string(::getpid()) + "_" + name))
      .string();
}

}  // namespace

TEST_CASE("gguf_encode_linear puts every sparq grid into the block type that holds it exactly", "[io][gguf][export]") {
  struct Case {
    int bits;
    std::size_t group;
    bool asym;
    GgmlType want;
  };
  // 3-bit asymmetric codes q - z fit Q4_0's [-8, 7]; 5-bit asymmetric blocks holding a 0 may need d
  // moved by up to 16 fp16 steps in Q5_1 to keep the zero exact (more than 1/8 of a step), so such
  // a matrix takes Q8_0, which holds q - z with the plain d (Q5_1 when every block allows it).
  const Case cases[] = {
      {8, 0, false, GgmlType::Q8_0},   {8, 32, false, GgmlType::Q8_0},  {8, 128, false, GgmlType::Q8_0},
      {4, 32, false, GgmlType::Q4_0},  {4, 64, false, GgmlType::Q4_0},  {4, 128, false, GgmlType::Q4_0},
      {4, 0, false, GgmlType::Q4_0},   {3, 32, false, GgmlType::Q4_0},  {2, 64, false, GgmlType::Q4_0},
      {4, 32, true, GgmlType::Q4_1},   {4, 128, true, GgmlType::Q4_1},  {3, 64, true, GgmlType::Q4_0},
      {5, 32, false, GgmlType::Q5_0},  {5, 64, false, GgmlType::Q5_0},  {5, 32, true, GgmlType::Q8_0},
      {6, 32, false, GgmlType::Q8_0},
  };
  const io::GgufExportOptions opt;
  for (const auto& k : cases) {
    for (std::size_t prune : {std::size_t{0}, std::size_t{2}, std::size_t{4}}) {  // dense, 50 %, 25 % zeros
      CAPTURE(k.bits, k.group, k.asym, prune);
      const Matrix<float> w = fake(weights(12, 256, 11 + k.bits + prune, prune), k.bits, k.group, k.asym);
      const auto e = io::gguf_encode_linear(w.view(), k.bits, opt);
      CHECK(e.encoding == GgufEncoding::exact);
      const bool q5_1_ok = k.bits == 5 && k.asym && e.type == GgmlType::Q5_1;  // when every block's zero allows it
      CHECK((io::ggml_type_name(e.type) == std::string(io::ggml_type_name(k.want)) || q5_1_ok));
      CHECK(e.bytes.size() == io::ggml_nbytes(e.type, w.size()));
      const Change ch = decode_change(e, w);
      // Only d (and m) are rounded to fp16: |change| <= |q| |d - s| <= max|w| 2^-11; the affine
      // types' search for an exact zero may move a value by up to 1/8 of a step (max|w| >= 7.5 steps).
      CHECK(ch.max_rel <= (k.asym ? 2e-2 : 5e-4));
      CHECK(ch.zeros_kept == ch.zeros);
      if (prune) CHECK(ch.zeros >= w.size() / prune);
    }
  }
}

TEST_CASE("gguf_encode_linear: float weights, re-quantization and the fallback type", "[io][gguf][export]") {
  io::GgufExportOptions opt;
  const Matrix<float> f = weights(8, 96, 3, 2);
  SECTION("float weights stay float_type, bit-exact in F32") {
    const auto e = io::gguf_encode_linear(f.view(), 32, opt);
    CHECK(e.encoding == GgufEncoding::float_values);
    CHECK(e.type == GgmlType::F32);
    const Change ch = decode_change(e, f);
    CHECK(ch.max_rel == 0.0);
    opt.float_type = GgmlType::BF16;
    CHECK(io::gguf_encode_linear(f.view(), 32, opt).type == GgmlType::BF16);
  }
  SECTION("an 8-bit asymmetric grid (codes beyond int8) is re-quantized to Q8_0, zeros kept") {
    Matrix<float> w = weights(8, 96, 5, 3);
    for (std::size_t i = 0; i < w.size(); ++i) w.data()[i] += 0.03f;  // skewed rows: zero points far from 128
    for (std::size_t r = 0; r < w.rows(); ++r) w(r, r) = 0.0f;
    const Matrix<float> q = fake(w, 8, 0, true);
    const auto e = io::gguf_encode_linear(q.view(), 8, opt);
    CHECK(e.encoding == GgufEncoding::requantized);
    CHECK(e.type == GgmlType::Q8_0);
    const Change ch = decode_change(e, q);
    CHECK(ch.max_rel <= 1.0 / 254 + 1e-3);  // ggml's Q8_0: half a step of max|block| / 127, fp16 d
    CHECK(ch.max_rel > 0.0);
    CHECK(ch.zeros_kept == ch.zeros);
    opt.requant_type = GgmlType::Q5_1;
    CHECK(io::gguf_encode_linear(q.view(), 8, opt).type == GgmlType::Q5_1);
  }
  SECTION("rows that are not a multiple of 32 take fallback_type when quantized, float_type when not") {
    const Matrix<float> w = fake(weights(6, 172, 9, 2), 8, 0, false);
    auto e = io::gguf_encode_linear(w.view(), 8, opt);
    CHECK(e.encoding == GgufEncoding::fallback);
    CHECK(e.type == GgmlType::F16);
    CHECK(decode_change(e, w).max_rel <= 1.0 / 2048);
    e = io::gguf_encode_linear(w.view(), 32, opt);
    CHECK(e.encoding == GgufEncoding::float_values);
    CHECK(e.type == GgmlType::F32);
  }
  SECTION("bad input") {
    Matrix<float> bad = f;
    bad(3, 5) = std::nanf("");
    CHECK_THROWS_WITH(io::gguf_encode_linear(bad.view(), 8, opt), Catch::Contains("non-finite"));
    opt.float_type = GgmlType::Q8_0;
    CHECK_THROWS_WITH(io::gguf_encode_linear(f.view(), 32, opt), Catch::Contains("float_type Q8_0, expected F32, F16 or BF16"));
    opt = {};
    opt.requant_type = GgmlType::F16;
    CHECK_THROWS_WITH(io::gguf_encode_linear(f.view(), 8, opt), Catch::Contains("requant_type F16"));
    opt = {};
    opt.weight_bits = {8, 0};
    CHECK_THROWS_WITH(io::gguf_encode_linear(f.view(), 8, opt), Catch::Contains("weight_bits entry 0"));
  }
}

TEST_CASE("An affine block holding an exact zero gets d with d*z on the fp16 grid", "[io][gguf][export]") {
  // Find asymmetric 4-bit blocks whose plain fp16(s)*z is not an fp16 value: the exporter must
  // still decode their zeros to exactly 0 (and it records which d it used in the block).
  std::size_t blocks_needing_search = 0;
  for (unsigned seed = 0; seed < 40; ++seed) {
    Matrix<float> w = fake(weights(1, 32, 100 + seed, 3), 4, 32, true);
    io::GgufTensorEncoding e;
    e.type = GgmlType::Q4_1;
    REQUIRE(io::gguf_export_detail::encode_exact(GgmlType::Q4_1, w.view(), 4.0, e.bytes));
    io::BlockQ4_1 b;
    std::memcpy(&b, e.bytes.data(), sizeof b);
    const float d = fp16_to_float(b.d), m = fp16_to_float(b.m);
    CHECK(m == -(d * std::nearbyint(-m / d)));  // m = -d z exactly
    const Change ch = decode_change(e, w);
    CHECK(ch.zeros_kept == ch.zeros);
    float mn = 0, mx = 0;
    for (std::size_t i = 0; i < 32; ++i) {
      mn = std::min(mn, w.data()[i]);
      mx = std::max(mx, w.data()[i]);
    }
    const float s = (mx - mn) / 15.0f;
    const float dz = round_to_fp16(s) * std::nearbyint(-mn / s);
    blocks_needing_search += round_to_fp16(dz) != dz;
  }
  CHECK(blocks_needing_search > 0);  // the case the search exists for did occur
}

TEST_CASE("write_gguf_export: a compressed Llama written, read back and run", "[io][gguf][export]") {
  using namespace sparq::model;
  LlamaConfig cfg = model_test::small_config();
  cfg.dim = 64;
  cfg.hidden_dim = 96;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 2;
  LlamaWeights w = model_test::random_weights(cfg, 21);
  // Block 0: W8 per channel; block 1: W4 g32 asymmetric; 50 % pruned everywhere.
  for (std::size_t b = 0; b < cfg.n_layers; ++b)
    for (Linear l : all_linears) {
      Matrix<float>& m = w.blocks[b].linear(l);
      for (std::size_t r = 0; r < m.rows(); ++r)
        for (std::size_t c = r % 2; c < m.cols(); c += 2) m(r, c) = 0.0f;
      m = b == 0 ? fake(m, 8, 0, false) : fake(m, 4, 32, true);
    }
  Llama model{LlamaWeights(w)};
  for (Linear l : all_linears) model.set_linear(0, l, std::make_unique<InputQuantLinear>(model.take_linear(0, l), 8));
  io::GgufVocab vocab;
  for (std::size_t i = 0; i < cfg.vocab_size; ++i) vocab.tokens.push_back("t" + std::to_string(i));
  vocab.scores.assign(cfg.vocab_size, 0.0f);
  vocab.bos_id = 1;
  vocab.eos_id = 2;

  io::GgufExportOptions opt;
  opt.weight_bits.assign(cfg.n_layers * std::size(all_linears), 8);
  opt.metadata.emplace_back("sparq.recipe", std::string("test"));
  const std::string path = temp_path("model.gguf");
  const io::GgufExportReport rep = io::write_gguf_export(path, model, &vocab, opt);
  CHECK(rep.file_bytes == std::filesystem::file_size(path));
  CHECK(rep.activation_bits == 8);
  REQUIRE(rep.linears.size() == 14);
  for (const auto& e : rep.linears) {
    CAPTURE(e.block, linear_name(e.linear));
    CHECK(e.encoding == GgufEncoding::exact);
    CHECK(e.type == (e.block == 0 ? GgmlType::Q8_0 : GgmlType::Q4_1));
    CHECK(e.zeros_kept == e.zeros);
    CHECK(e.zeros >= w.blocks[e.block].linear(e.linear).size() / 2);
    CHECK(e.max_abs_change <= 2e-2 * e.max_abs_weight);
    CHECK(e.source == "weights");
  }
  const auto sum = rep.summary();
  REQUIRE(sum.size() == 2);
  CHECK(sum[0] == std::make_pair(std::string("Q8_0 exact"), std::size_t{7}));

  const io::GgufFile f = io::read_gguf(path);
  CHECK(*f.find_string("sparq.version") == version_string);
  CHECK(*f.find_string("sparq.recipe") == "test");
  CHECK(f.find_uint("general.quantization_version") == 2u);
  const io::GgufLlama back = io::gguf_to_llama(f);
  CHECK(back.vocab.tokens == vocab.tokens);
  REQUIRE(back.weights.config.dim == cfg.dim);
  // The weights read back differ from the exported ones by the fp16 scale rounding only.
  for (std::size_t b = 0; b < cfg.n_layers; ++b)
    for (Linear l : all_linears) {
      const auto& x = w.blocks[b].linear(l);
      const auto& y = back.weights.blocks[b].linear(l);
      double amax = 0, err = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        amax = std::max(amax, static_cast<double>(std::fabs(x.data()[i])));
        err = std::max(err, std::fabs(static_cast<double>(y.data()[i]) - x.data()[i]));
        if (x.data()[i] == 0.0f) REQUIRE(y.data()[i] == 0.0f);
      }
      CHECK(err <= 2e-2 * amax);
    }
  CHECK(back.weights.token_embedding.size() == w.token_embedding.size());
  CHECK(std::equal(w.token_embedding.data(), w.token_embedding.data() + w.token_embedding.size(),
                   back.weights.token_embedding.data()));
  // Same function: logits of the file's model against the exported weights with float activations.
  const Llama ref{io::gguf_export_weights(model)}, got{LlamaWeights(back.weights)};
  LlamaState sr(ref.config()), sg(got.config());
  double max_d = 0, max_l = 0;
  for (int t = 0; t < 8; ++t) {
    const float* a = ref.decode((t * 5 + 1) % 37, sr);
    const float* g = got.decode((t * 5 + 1) % 37, sg);
    for (std::size_t i = 0; i < cfg.vocab_size; ++i) {
      max_d = std::max(max_d, std::fabs(static_cast<double>(a[i]) - g[i]));
      max_l = std::max(max_l, std::fabs(static_cast<double>(a[i])));
    }
  }
  CHECK(max_d <= 1e-2 * max_l);

  // The declared activation quantization (block 0: A8, block 1: float; q/k/v 6 bits) is metadata, and
  // io::load applies it per linear unless asked not to.
  CHECK(rep.linear_activation_bits == std::vector<int>{8, 8, 8, 8, 8, 8, 8, 0, 0, 0, 0, 0, 0, 0});
  CHECK(back.linear_activation_bits == rep.linear_activation_bits);
  CHECK(back.activation_bits == 8);
  CHECK(back.attention_bits == 0);
  model.set_attention_input_bits(6);
  io::write_gguf_export(path, model, &vocab, opt);
  const Llama as_stored = io::load_model(path), as_float = io::load_model(path, io::StoredActivations::ignore);
  CHECK(as_stored.attention_input_bits() == 6);
  CHECK(as_float.attention_input_bits() == 0);
  for (std::size_t b = 0; b < cfg.n_layers; ++b)
    for (Linear l : all_linears) {
      const auto* iq = dynamic_cast<const InputQuantLinear*>(&as_stored.linear(b, l));
      CHECK((iq != nullptr) == (b == 0));
      if (iq) CHECK(iq->bits() == 8);
      CHECK(dynamic_cast<const InputQuantLinear*>(&as_float.linear(b, l)) == nullptr);
    }
  // The file run as stored computes what the in-memory model computes, up to the fp16 scales.
  LlamaState s_mem(cfg), s_file(cfg), s_float(cfg);
  double d_stored = 0, d_float = 0, scale = 0;
  for (int t = 0; t < 8; ++t) {
    const int tok = (t * 7 + 3) % 37;
    const float* a = model.decode(tok, s_mem);
    const float* g = as_stored.decode(tok, s_file);
    const float* h = as_float.decode(tok, s_float);
    for (std::size_t i = 0; i < cfg.vocab_size; ++i) {
      d_stored = std::max(d_stored, std::fabs(static_cast<double>(a[i]) - g[i]));
      d_float = std::max(d_float, std::fabs(static_cast<double>(a[i]) - h[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
    }
  }
  CHECK(d_stored <= 2e-2 * scale);
  CHECK(d_float > d_stored);  // float activations are a different function (the A8 and 6-bit q/k/v rounding)
  std::filesystem::remove(path);

  // Hostile metadata: bits outside 0 or 2..16, or a per-linear array of the wrong length, are refused by name.
  auto refused = [&](const std::string& key, io::GgufValue v, const char* what) {
    io::GgufWriter g = io::gguf_export_writer(model, &vocab, opt);
    g.set(key, std::move(v));
    const auto bytes = g.serialize();
    CHECK_THROWS_WITH(io::gguf_to_llama(io::parse_gguf(bytes.data(), bytes.size())), Catch::Contains(what));
  };
  refused("sparq.activation_bits", std::int32_t{1}, "'sparq.activation_bits' = 1, expected 0 or 2..16");
  refused("sparq.attention_bits", std::int32_t{17}, "'sparq.attention_bits' = 17");
  refused("sparq.linear_activation_bits", io::GgufArray::of(io::GgufType::i32, std::vector<std::int32_t>{8, 8}),
          "sparq.linear_activation_bits is an array of 2 i32, expected 14 i32");
  refused("sparq.linear_activation_bits", io::GgufArray::of(io::GgufType::i32, std::vector<std::int32_t>(14, 20)),
          "sparq.linear_activation_bits[0] = 20");
}

TEST_CASE("write_gguf_export: low-rank ops are written as their dense sum, float", "[io][gguf][export]") {
  using namespace sparq::model;
  const LlamaConfig cfg = model_test::small_config();
  LlamaWeights w = model_test::random_weights(cfg, 5);
  Llama model{LlamaWeights(w)};
  const Matrix<float> a = weights(cfg.dim, 3, 1, 0, 0.2f), bm = weights(3, cfg.dim, 2, 0, 0.2f);
  model.set_linear(1, Linear::wo, std::make_unique<LowRankLinear>(lowrank::StoredFactor::encode(a.view(), lowrank::FactorFormat::f32),
                                                                 lowrank::StoredFactor::encode(bm.view(), lowrank::FactorFormat::f32)));
  std::vector<std::string> src;
  const LlamaWeights ex = io::gguf_export_weights(model, &src);
  REQUIRE(src.size() == 14);
  CHECK(src[7 + 3] == "low-rank A*B r3");
  const Matrix<float>& wo = ex.blocks[1].wo;
  for (std::size_t r = 0; r < wo.rows(); r += 7)
    for (std::size_t c = 0; c < wo.cols(); c += 5) {
      double s = 0;
      for (std::size_t k = 0; k < 3; ++k) s += static_cast<double>(a(r, k)) * bm(k, c);
      CHECK(std::fabs(wo(r, c) - s) <= 1e-5);
    }
  io::GgufExportOptions opt;
  opt.weight_bits.assign(14, 8);  // a low-rank sum is float even when the recipe quantized
  io::GgufExportReport rep;
  (void)io::gguf_export_writer(model, nullptr, opt, &rep);
  CHECK(rep.linears[10].encoding == GgufEncoding::float_values);
  CHECK(rep.linears[10].max_abs_change == 0.0);
  opt.weight_bits.assign(13, 8);
  CHECK_THROWS_WITH(io::gguf_export_writer(model, nullptr, opt), Catch::Contains("weight_bits has 13 entries, the model has 14"));
  // Packed ops export their own dequantized matrix once the float weights are released: the same
  // bytes as before the release. So does an owning float op whose block matrix was released: it
  // holds its weights (LinearOp::export_weights asks the op, not its type).
  Llama packed{LlamaWeights(w)};
  model::PackOptions po;
  po.format = model::PackFormat::bitmask_f32;
  (void)model::pack_model(packed, po);
  const auto before = io::gguf_export_writer(packed, nullptr).serialize();
  CHECK(model::release_float_weights(packed) > 0);
  CHECK(io::gguf_export_writer(packed, nullptr).serialize() == before);
  Llama owning{LlamaWeights(w)};
  owning.set_linear(0, Linear::w3, std::make_unique<DenseLinear>(Matrix<float>(w.blocks[0].w3)));
  const auto owning_before = io::gguf_export_writer(owning, nullptr).serialize();
  CHECK(model::release_float_weights(owning) == w.blocks[0].w3.size() * sizeof(float));
  CHECK(owning.weights().blocks[0].w3.size() == 0);
  CHECK(io::gguf_export_writer(owning, nullptr).serialize() == owning_before);
}

TEST_CASE("gguf_vocab_from_tokenizer(tok512.bin) is stories260K.gguf's vocabulary", "[io][gguf][export][real]") {
  const auto tok_path = sparq_test::data_path("models/tok512.bin");
  const auto gguf_path = sparq_test::data_path("models/stories260K.gguf");
  if (tok_path.empty() || gguf_path.empty()) return;
  const auto tok = model::Tokenizer::read_llama2c(tok_path, 512);
  const io::GgufVocab v = io::gguf_vocab_from_tokenizer(tok);
  const io::GgufVocab g = io::gguf_vocab(io::read_gguf(gguf_path));
  CHECK(v.tokens == g.tokens);
  CHECK(v.scores == g.scores);
  CHECK(v.token_types == g.token_types);
  CHECK(v.bos_id == g.bos_id);
  CHECK(v.eos_id == g.eos_id);
  CHECK(v.model == g.model);
}

TEST_CASE("stories260K W8 per channel and W4 g32: the GGUF read back scores the in-memory model", "[io][gguf][export][real]") {
  const auto model_path = sparq_test::data_path("models/stories260K.bin");
  const auto text = sparq_test::data_path("text/tinystories_valid_head.txt");
  if (model_path.empty() || text.empty()) return;
  auto lm = io::load(model_path);
  model::PerplexityOptions po;
  po.max_tokens = 8192;
#if defined(__SANITIZE_ADDRESS__)
  po.max_tokens = 1024;
#endif
  const auto stream = model::document_token_stream_file(text, lm.tokenizer, po.max_tokens);
  for (int bits : {8, 4}) {
    CAPTURE(bits);
    model::LlamaWeights w = lm.model.weights();
    for (auto& b : w.blocks)
      for (model::Linear l : model::all_linears) b.linear(l) = fake(b.linear(l), bits, bits == 8 ? 0 : 32, false);
    const model::Llama fq{model::LlamaWeights(w)};
    io::GgufExportOptions opt;
    opt.weight_bits.assign(w.config.n_layers * 7, bits);
    const std::string path = temp_path("stories.gguf");
    const auto rep = io::write_gguf_export(path, fq, &lm.vocab, opt);
    std::size_t exact = 0, fallback = 0;
    for (const auto& e : rep.linears) {
      exact += e.encoding == GgufEncoding::exact && e.type == (bits == 8 ? GgmlType::Q8_0 : GgmlType::Q4_0);
      fallback += e.encoding == GgufEncoding::fallback && e.type == GgmlType::F16;  // w2: 172 wide
    }
    CHECK(exact == 30);
    CHECK(fallback == 5);
    const auto back = io::load(path);  // with the file's own vocabulary
    CHECK(back.tokenizer.encode("Once upon a time, Lily", true, false) == lm.tokenizer.encode("Once upon a time, Lily", true, false));
    const double p_ref = model::perplexity(fq, stream, po).perplexity;
    const double p_back = model::perplexity(back.model, stream, po).perplexity;
    WARN("W" << bits << ": in memory " << p_ref << ", GGUF read back " << p_back);
    CHECK(std::fabs(p_back / p_ref - 1.0) < 1e-3);
    std::filesystem::remove(path);
  }
}
