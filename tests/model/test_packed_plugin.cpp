// A weight format defined outside the library plugs into packing, SPRQ files and GGUF export through
// LinearOp's virtual methods and the format registry (model/linear_formats.hpp), with no change to
// the library: the worked example of docs/model.md#adding-a-weight-format.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "model_test_util.hpp"
#include "sparq/core/half.hpp"
#include "sparq/io/gguf_export.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/linear_formats.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/quant/quantizer.hpp"
#include "sparq_test.hpp"

namespace plugin_test {

using namespace sparq;
using namespace sparq::model;

// ---- the worked example: fp16 weights, as a user would write them (docs/model.md) ----
class F16Linear final : public LinearOp {
 public:
  F16Linear(std::size_t rows, std::size_t cols, std::vector<std::uint16_t> h) : rows_(rows), cols_(cols), h_(std::move(h)) {
    SPARQ_CHECK(h_.size() == rows * cols, "F16Linear: ", h_.size(), " halves, expected ", rows * cols);
  }
  static std::unique_ptr<F16Linear> from(MatrixView<const float> w) {
    std::vector<std::uint16_t> h(w.rows() * w.cols());
    for (std::size_t r = 0; r < w.rows(); ++r)
      for (std::size_t c = 0; c < w.cols(); ++c) h[r * w.cols() + c] = float_to_fp16(w(r, c));
    return std::make_unique<F16Linear>(w.rows(), w.cols(), std::move(h));
  }
  std::size_t in_features() const noexcept override { return cols_; }
  std::size_t out_features() const noexcept override { return rows_; }
  std::size_t weight_bytes() const noexcept override { return h_.size() * 2; }
  std::string describe() const override { return "test f16"; }
  void gemv(const float* x, float* y) const override {
    for (std::size_t r = 0; r < rows_; ++r) {
      float s = 0.0f;
      for (std::size_t c = 0; c < cols_; ++c) s += fp16_to_float(h_[r * cols_ + c]) * x[c];
      y[r] = s;
    }
  }
  // stored as it is: pack_model keeps it
  std::unique_ptr<LinearOp> pack(const OpPacker&, int, bool) const override { return nullptr; }
  void save(OpWriter& w) const override {
    w.format("test_f16", 1);
    w.section("h", h_);
  }
  static std::unique_ptr<LinearOp> load(const OpReader& r) {
    return std::make_unique<F16Linear>(r.rows(), r.cols(), r.section<std::uint16_t>("h"));
  }
  // dense_weights() and export_weights(): LinearOp's defaults (the op applied to the identity)

 private:
  std::size_t rows_, cols_;
  std::vector<std::uint16_t> h_;
};

// a format with no file format of its own
class Opaque final : public LinearOp {
 public:
  explicit Opaque(std::size_t n) : n_(n) {}
  std::size_t in_features() const noexcept override { return n_; }
  std::size_t out_features() const noexcept override { return n_; }
  std::size_t weight_bytes() const noexcept override { return 0; }
  std::string describe() const override { return "opaque identity"; }
  void gemv(const float* x, float* y) const override {
    for (std::size_t i = 0; i < n_; ++i) y[i] = x[i];
  }

 private:
  std::size_t n_;
};

LlamaConfig config() {
  LlamaConfig c;
  c.dim = 64;
  c.hidden_dim = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 40;
  c.seq_len = 16;
  return c;
}

Matrix<float> logits(const Llama& m, const std::vector<int>& toks) {
  LlamaState st(m.config(), toks.size());
  Matrix<float> out(toks.size(), m.config().vocab_size);
  m.prefill(toks, st, out.view());
  return out;
}

void require_identical(const Matrix<float>& a, const Matrix<float>& b) {
  REQUIRE(a.size() == b.size());
  REQUIRE(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

/// Index of (b, l) in the block-major, all_linears-ordered lists of the exporters.
std::size_t linear_index(std::size_t b, Linear l) {
  std::size_t i = 0;
  while (all_linears[i] != l) ++i;
  return b * std::size(all_linears) + i;
}

lowrank::Compensation comp(std::size_t rows, std::size_t cols, unsigned seed) {
  const std::vector<float> va = sparq_test::randn(rows * 2, seed, 0.01f), vb = sparq_test::randn(2 * cols, seed + 1, 0.01f);
  const MatrixView<const float> a(va.data(), rows, 2), b(vb.data(), 2, cols);
  lowrank::Compensation c;
  c.a = lowrank::StoredFactor::encode(a, lowrank::FactorFormat::f32);
  c.b = lowrank::StoredFactor::encode(b, lowrank::FactorFormat::f32);
  return c;
}

/// The model of the tests: block 0 wq in f16; block 1 w1 in f16 behind 8-bit input quantization;
/// block 1 w2 a LoRC-compensated f16 op; the rest dense, fake-quantized to int8 per channel (so
/// that pack_model can pack them).
Llama f16_model() {
  Llama m(model_test::random_weights(config(), 71));
  for (std::size_t b = 0; b < m.config().n_layers; ++b) {
    for (Linear l : all_linears) {
      Matrix<float>& w = m.block_weights(b).linear(l);
      w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(w.view());
    }
    m.refresh_block(b);
  }
  m.set_linear(0, Linear::wq, F16Linear::from(m.weights().blocks[0].wq.view()));
  m.set_linear(1, Linear::w1,
               std::make_unique<InputQuantLinear>(F16Linear::from(m.weights().blocks[1].w1.view()), 8));
  const auto [r2, c2] = m.expected_shape(Linear::w2);
  m.set_linear(1, Linear::w2,
               std::make_unique<CompensatedLinear>(F16Linear::from(m.weights().blocks[1].w2.view()), comp(r2, c2, 5)));
  return m;
}

bool registered() {
  static const bool once = [] {
    register_linear_format({"test_f16", &F16Linear::load});
    return true;
  }();
  return once;
}

}  // namespace plugin_test

TEST_CASE("a weight format defined outside the library round-trips through SPRQ files", "[model][packed][plugin]") {
  using namespace plugin_test;
  const Llama m = f16_model();
  const std::vector<int> toks{1, 5, 9, 2, 33, 7, 12, 3};
  const auto bytes = io::serialize_packed_model(m);
  // before registering, the reader does not know the format and says which
  if (find_linear_format("test_f16") == nullptr) {
    try {
      (void)io::parse_packed_model(bytes.data(), bytes.size());
      FAIL("expected sparq::error");
    } catch (const sparq::error& e) {
      CHECK(std::string(e.what()).find("blocks.0.wq") != std::string::npos);
      CHECK(std::string(e.what()).find("unknown linear format 'test_f16'") != std::string::npos);
    }
  }
  REQUIRE(registered());
  REQUIRE(find_linear_format("test_f16") == &F16Linear::load);
  const auto names = linear_format_names();
  CHECK(std::find(names.begin(), names.end(), "packed_q8") != names.end());
  // a name is registered once; the library's own names are reserved
  REQUIRE_THROWS_WITH(register_linear_format({"test_f16", &F16Linear::load}), Catch::Contains("already registered"));
  REQUIRE_THROWS_WITH(register_linear_format({"lowrank", &F16Linear::load}), Catch::Contains("reserved"));
  REQUIRE_THROWS_WITH(register_linear_format({"x", nullptr}), Catch::Contains("needs a name and a loader"));

  const Llama back = io::parse_packed_model(bytes.data(), bytes.size());
  require_identical(logits(back, toks), logits(m, toks));
  CHECK(back.linear(0, Linear::wq).describe() == "test f16");
  CHECK(back.linear(1, Linear::w1).describe() == "test f16 + A8 per-token");
  CHECK(back.linear(1, Linear::w2).describe().rfind("test f16 + low-rank", 0) == 0);
  // the read model's float weights are the op's own (LinearOp's default dense_weights: the op applied
  // to the identity), i.e. the weights rounded to fp16
  const Matrix<float>& wq = back.weights().blocks[0].wq;
  const Matrix<float>& orig = m.weights().blocks[0].wq;
  bool all_rounded = true;
  for (std::size_t i = 0; i < wq.size(); ++i) all_rounded = all_rounded && wq.data()[i] == round_to_fp16(orig.data()[i]);
  CHECK(all_rounded);
  // and writing the read model again gives the same bytes
  CHECK(io::serialize_packed_model(back) == bytes);
}

TEST_CASE("pack_model, memory accounting and GGUF export ask the op, not its type", "[model][packed][plugin]") {
  using namespace plugin_test;
  Llama m = f16_model();
  const std::vector<int> toks{4, 8, 15, 16, 23, 2};
  // GGUF export: the f16 ops' own weights (not the model's float copy), + the LoRC product for w2
  std::vector<std::string> sources;
  const LlamaWeights gw = io::gguf_export_weights(m, &sources);
  const Matrix<float>& wq = gw.blocks[0].wq;
  for (std::size_t i = 0; i < wq.size(); ++i) REQUIRE(wq.data()[i] == round_to_fp16(m.weights().blocks[0].wq.data()[i]));
  CHECK(sources[linear_index(1, Linear::w2)] == "weights + LoRC r2");
  CHECK(sources[linear_index(0, Linear::wq)] == "weights");
  CHECK(io::linear_activation_bits(m.linear(1, Linear::w1)) == 8);
  CHECK(io::linear_activation_bits(m.linear(0, Linear::wq)) == 0);
  // memory: an f16 op owns its halves; a dense view owns nothing; wrappers add what they wrap
  CHECK(owned_weight_bytes(m.linear(0, Linear::wq)) == m.weights().blocks[0].wq.size() * 2);
  CHECK(owned_weight_bytes(m.linear(0, Linear::wk)) == 0);
  CHECK(reads_float_view(m.linear(0, Linear::wk)));
  CHECK_FALSE(reads_float_view(m.linear(1, Linear::w1)));
  // pack_model packs the dense linears and keeps the f16 ones (their pack() says so)
  PackOptions o;
  o.format = PackFormat::w8;
  o.activations = ActivationSource::a32;
  const PackReport rep = pack_model(m, o);
  CHECK(m.linear(0, Linear::wq).describe() == "test f16");
  CHECK(m.linear(1, Linear::w2).describe().rfind("test f16 + low-rank", 0) == 0);
  CHECK(m.linear(0, Linear::wk).describe().find("int8") != std::string::npos);
  CHECK(rep.linears.size() == 2 * std::size(all_linears));
  // a format with no file format: the writer names the linear and the op
  Llama o2(model_test::random_weights(config(), 72));
  o2.set_linear(0, Linear::wq, std::make_unique<Opaque>(64));  // the first linear pack_model visits
  try {
    (void)io::serialize_packed_model(o2);
    FAIL("expected sparq::error");
  } catch (const sparq::error& e) {
    CHECK(std::string(e.what()).find("block 0 wq: 'opaque identity' has no packed file format") != std::string::npos);
  }
  // ... and pack_model refuses to pack it (LinearOp's default pack)
  try {
    (void)pack_model(o2, o);
    FAIL("expected sparq::error");
  } catch (const sparq::error& e) {
    CHECK(std::string(e.what()).find("block 0 wq: expected a dense float op, found 'opaque identity'") != std::string::npos);
  }
}
