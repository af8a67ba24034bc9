// BitmaskQ8Linear (unstructured-sparse int8: bitmask + kept codes): bit-identical to Q8Linear on the same
// codes, validation errors, pack_linear's choice by size, SPRQ round trip (version 3) and hostile files.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "model_test_util.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/model/bitmask_q8_linear.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/model/q8_linear.hpp"
#include "sparq/quant/quantizer.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::model;

namespace sparq_test_packed_bitmask {

/// rows x cols normal weights with a random `sparsity` fraction set to exactly 0.
inline Matrix<float> sparse_matrix(std::size_t rows, std::size_t cols, double sparsity, unsigned seed) {
  Matrix<float> w(rows, cols);
  const auto v = sparq_test::randn(rows * cols, seed, 0.1f);
  std::mt19937 rng(seed + 1000);
  std::bernoulli_distribution zero(sparsity);
  for (std::size_t i = 0; i < v.size(); ++i) w.data()[i] = zero(rng) ? 0.0f : v[i];
  return w;
}

inline QuantizedTensor w8(const Matrix<float>& w) { return Quantizer<Symmetric, PerChannel, 8>{}.quantize(w.view()); }

inline bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

/// The sparq::error message of f() ("" when it does not throw).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const sparq::error& e) {
    return e.what();
  }
  return "";
}

inline LlamaConfig config() {
  LlamaConfig c;
  c.dim = 64;
  c.hidden_dim = 100;  // w2: 100 inputs (not a multiple of 8, 32 or 64)
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 48;
  c.seq_len = 32;
  return c;
}

inline Matrix<float> logits(const Llama& m, const std::vector<int>& toks) {
  LlamaState st(m.config(), toks.size());
  Matrix<float> out(toks.size(), m.config().vocab_size);
  m.prefill(toks, st, out.view());
  return out;
}

inline std::vector<int> tokens(std::size_t n, std::size_t vocab) {
  std::vector<int> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<int>((i * 5 + 2) % vocab);
  return t;
}

/// A model whose linears are 50 % (block 0) / 70 % (block 1) unstructured sparse W8 (w1 of block 0
/// dense W8), each behind an 8-bit input quantizer (W8A8).
inline Llama sparse_w8a8_model(unsigned seed) {
  Llama m(model_test::random_weights(config(), seed));
  std::mt19937 rng(seed);
  for (std::size_t b = 0; b < 2; ++b) {
    for (Linear l : all_linears) {
      Matrix<float>& w = m.block_weights(b).linear(l);
      const double sparsity = (b == 0 && l == Linear::w1) ? 0.0 : b == 0 ? 0.5 : 0.7;
      std::bernoulli_distribution zero(sparsity);
      for (std::size_t i = 0; i < w.size(); ++i)
        if (zero(rng)) w.data()[i] = 0.0f;
      w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(w.view());
    }
    m.refresh_block(b);
  }
  for (std::size_t b = 0; b < 2; ++b)
    for (Linear l : all_linears) m.set_linear(b, l, std::make_unique<InputQuantLinear>(m.take_linear(b, l), 8));
  return m;
}

inline std::string read_error(const io::Container& base, const std::function<void(io::Container&)>& edit) {
  io::Container ct = base;
  edit(ct);
  const auto bytes = io::serialize_container(ct);
  return error_of([&] { (void)io::parse_packed_model(bytes.data(), bytes.size()); });
}

inline io::ContainerSection& section(io::Container& ct, const std::string& t, const std::string& s) {
  for (auto& x : ct.tensors)
    if (x.name == t)
      for (auto& y : x.sections)
        if (y.name == s) return y;
  FAIL("no section " << t << " / " << s);
  return ct.tensors.front().sections.front();
}

}  // namespace sparq_test_packed_bitmask

TEST_CASE("BitmaskQ8Linear computes exactly what Q8Linear computes on the same sparse codes", "[model][packed][bitmask]") {
  namespace t = sparq_test_packed_bitmask;
  struct Shape {
    std::size_t rows, cols;
  };
  unsigned seed = 1;
  for (const Shape sh : {Shape{37, 100}, Shape{64, 64}, Shape{16, 513}, Shape{5, 1}, Shape{33, 130}}) {
    for (double sparsity : {0.0, 0.5, 0.7, 1.0}) {
      const Matrix<float> w = t::sparse_matrix(sh.rows, sh.cols, sparsity, seed++);
      const QuantizedTensor qt = t::w8(w);
      const auto codes = qt.int8_codes();
      const auto kept = static_cast<std::size_t>(std::count_if(codes.begin(), codes.end(), [](std::int8_t q) { return q != 0; }));
      for (ActivationMode act : {ActivationMode::a8, ActivationMode::a32}) {
        INFO(sh.rows << "x" << sh.cols << " sparsity " << sparsity << " " << activation_mode_name(act));
        const Q8Linear q8 = Q8Linear::from_quantized(qt, act);
        const BitmaskQ8Linear bq = BitmaskQ8Linear::from_quantized(qt, act);
        REQUIRE(bq.codes().size() == kept);
        REQUIRE(bq.weight_bytes() == sh.rows * ((sh.cols + 7) / 8) + kept + 4 * sh.rows);
        REQUIRE(bq.row_offsets().size() == sh.rows + 1);
        REQUIRE(bq.row_offsets().back() == kept);
        REQUIRE(bq.weight_bytes() == BitmaskQ8Linear::bytes_for(sh.rows, sh.cols, kept));
        if (sparsity >= 0.5 && sh.cols >= 64) REQUIRE(bq.weight_bytes() < q8.weight_bytes());
        REQUIRE(bq.describe().find("bitmask int8") != std::string::npos);
        REQUIRE(bq.activations() == act);
        const Matrix<float> d8 = q8.dequantize(), db = bq.dequantize();
        REQUIRE(t::same_bits(d8.data(), db.data(), d8.size()));
        for (unsigned s = 0; s < 3; ++s) {
          auto x = sparq_test::randn(sh.cols, 50 + s, s == 2 ? 1e-3f : 1.0f);
          if (sh.cols > 3) x[sh.cols / 3] = 0.0f;
          std::vector<float> y8(sh.rows, 1.0f), yb(sh.rows, 2.0f);
          q8.gemv(x.data(), y8.data());
          bq.gemv(x.data(), yb.data());
          REQUIRE(t::same_bits(y8.data(), yb.data(), sh.rows));
        }
        const std::size_t n = 7;
        Matrix<float> X(n, sh.cols), Y8(n, sh.rows), Yb(n, sh.rows);
        const auto xs = sparq_test::randn(n * sh.cols, 77);
        std::copy(xs.begin(), xs.end(), X.data());
        q8.gemm(std::as_const(X).view(), Y8.view());
        bq.gemm(std::as_const(X).view(), Yb.view());
        REQUIRE(t::same_bits(Y8.data(), Yb.data(), Y8.size()));
      }
    }
  }
  // a 4-row threaded op: the same outputs
  const Matrix<float> w = t::sparse_matrix(70, 96, 0.6, 99);
  const BitmaskQ8Linear one = BitmaskQ8Linear::from_quantized(t::w8(w), ActivationMode::a8, 1);
  const BitmaskQ8Linear two = BitmaskQ8Linear::from_quantized(t::w8(w), ActivationMode::a8, 2);
  const auto x = sparq_test::randn(96, 5);
  std::vector<float> y1(70), y2(70);
  one.gemv(x.data(), y1.data());
  two.gemv(x.data(), y2.data());
  REQUIRE(t::same_bits(y1.data(), y2.data(), 70));
}

TEST_CASE("BitmaskQ8Linear rejects inconsistent arrays naming the value", "[model][packed][bitmask]") {
  namespace t = sparq_test_packed_bitmask;
  // 3 x 10: 2 mask bytes per row; row 0 keeps columns 0 and 9, row 1 column 3, row 2 nothing
  const std::vector<std::uint8_t> mask{0x01, 0x02, 0x08, 0x00, 0x00, 0x00};
  const std::vector<std::int8_t> codes{5, -7, 127};
  const std::vector<std::size_t> off{0, 2, 3, 3};
  const std::vector<float> scales{0.5f, 0.25f, 1.0f};
  const auto act = ActivationMode::a8;
  const BitmaskQ8Linear ok(3, 10, mask, codes, scales, act);
  const Matrix<float> d = ok.dequantize();
  REQUIRE(d(0, 0) == 2.5f);
  REQUIRE(d(0, 9) == -3.5f);
  REQUIRE(d(1, 3) == 31.75f);
  REQUIRE(d(0, 1) == 0.0f);
  REQUIRE(ok.row_offsets() == off);

  auto check = [&](const std::function<void()>& f, const std::string& want) {
    const std::string e = t::error_of(f);
    INFO("message: " << e << " / wanted: " << want);
    REQUIRE(e.find(want) != std::string::npos);
  };
  check([&] { BitmaskQ8Linear(0, 10, {}, {}, {}, act); }, "empty shape 0x10");
  check([&] { BitmaskQ8Linear(1, 131073, std::vector<std::uint8_t>(16385, 0), {}, {1.0f}, act); },
        "cols = 131073, expected at most 131072");
  check([&] { BitmaskQ8Linear(3, 10, std::vector<std::uint8_t>(5, 0), codes, scales, act); }, "5 mask bytes, expected");
  check([&] { BitmaskQ8Linear(3, 10, mask, codes, {0.5f, 0.25f}, act); }, "2 scales, expected one per row = 3");
  auto past = mask;
  past[3] = 0x04;  // row 1, column 10
  check([&] { BitmaskQ8Linear(3, 10, past, codes, scales, act); }, "row 1 has mask bits past column 10");
  check([&] { BitmaskQ8Linear(3, 10, mask, {5, -7, 127, 1}, scales, act); }, "4 codes, the mask keeps 3");
  check([&] { BitmaskQ8Linear(3, 10, mask, {5, -7}, scales, act); }, "2 codes, the mask keeps 3");
  check([&] { BitmaskQ8Linear(3, 10, mask, {5, -128, 127}, scales, act); }, "code -128 (kept value 1 of row 0)");
  check([&] { BitmaskQ8Linear(3, 10, mask, codes, {0.5f, 0.0f, 1.0f}, act); }, "scale[1] = 0, expected a positive finite");
  check([&] { BitmaskQ8Linear(3, 10, mask, codes, {0.5f, 1.0f, std::numeric_limits<float>::quiet_NaN()}, act); },
        "scale[2] = nan");
  check([&] { BitmaskQ8Linear(3, 10, mask, codes, {-1.0f, 1.0f, 1.0f}, act); }, "scale[0] = -1");
  check([&] { BitmaskQ8Linear(3, 10, mask, codes, scales, act, -1); }, "threads = -1");
  // a 4-bit or per-group tensor has no bitmask int8 op
  const Matrix<float> w = t::sparse_matrix(4, 64, 0.5, 3);
  check([&] { (void)BitmaskQ8Linear::from_quantized(Quantizer<Symmetric, PerGroup<32>, 4>{}.quantize(w.view()), act); },
        "needs 8-bit symmetric codes, got 4-bit");
  check([&] { (void)BitmaskQ8Linear::from_quantized(Quantizer<Symmetric, PerGroup<32>, 8>{}.quantize(w.view()), act); },
        "needs per-channel scales");
}

TEST_CASE("pack_linear: bitmask int8 when it is smaller, same outputs as the dense int8 op", "[model][packed][bitmask]") {
  namespace t = sparq_test_packed_bitmask;
  PackOptions o;
  o.format = PackFormat::w8;
  o.bitmask_if_smaller = true;
  PackOptions dense = o;
  dense.bitmask_if_smaller = false;
  for (double sparsity : {0.0, 0.1, 0.3, 0.5, 0.7}) {
    Matrix<float> w = t::sparse_matrix(48, 100, sparsity, 7);
    w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(w.view());
    const auto a = pack_linear(w.view(), o, ActivationMode::a8);
    const auto b = pack_linear(w.view(), dense, ActivationMode::a8);
    REQUIRE(dynamic_cast<const Q8Linear*>(b.get()) != nullptr);
    const bool smaller = sparsity >= 0.3;  // more than 1/8 zeros pay for the mask
    INFO("sparsity " << sparsity << ": " << a->describe() << ", " << a->weight_bytes() << " vs " << b->weight_bytes());
    REQUIRE((dynamic_cast<const BitmaskQ8Linear*>(a.get()) != nullptr) == smaller);
    REQUIRE((a->weight_bytes() < b->weight_bytes()) == smaller);
    const auto x = sparq_test::randn(100, 9);
    std::vector<float> ya(48), yb(48);
    a->gemv(x.data(), ya.data());
    b->gemv(x.data(), yb.data());
    REQUIRE(t::same_bits(ya.data(), yb.data(), 48));
  }
  // the explicit format, and the grid check of w8
  PackOptions ob;
  ob.format = PackFormat::bitmask_w8;
  Matrix<float> w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(t::sparse_matrix(8, 40, 0.0, 8).view());
  REQUIRE(dynamic_cast<const BitmaskQ8Linear*>(pack_linear(w.view(), ob, ActivationMode::a32).get()) != nullptr);
  w(3, 5) += 1e-3f * std::fabs(w(3, 5)) + 1e-6f;  // off the row's grid
  const std::string e = t::error_of([&] { (void)pack_linear(w.view(), ob, ActivationMode::a32, "wq"); });
  REQUIRE(e.find("wq") != std::string::npos);
  REQUIRE(e.find("row 3") != std::string::npos);
}

TEST_CASE("packed files: bitmask int8 ops round-trip bit-identically (version 3) and hostile files are rejected",
          "[model][packed][bitmask][io]") {
  namespace t = sparq_test_packed_bitmask;
  Llama dense_ops = t::sparse_w8a8_model(31);
  Llama bitmask_ops = t::sparse_w8a8_model(31);
  PackOptions o;
  o.format = PackFormat::w8;
  (void)pack_model(dense_ops, o);
  o.bitmask_if_smaller = true;
  const PackReport rep = pack_model(bitmask_ops, o);
  std::size_t n_bitmask = 0;
  for (const auto& e : rep.linears) n_bitmask += e.format.find("bitmask int8") != std::string::npos;
  REQUIRE(n_bitmask == 13);  // all but the dense w1 of block 0
  REQUIRE(bitmask_ops.linear_weight_bytes() < dense_ops.linear_weight_bytes());
  const auto toks = t::tokens(9, t::config().vocab_size);
  const Matrix<float> ref = t::logits(dense_ops, toks);
  const Matrix<float> got = t::logits(bitmask_ops, toks);
  REQUIRE(t::same_bits(ref.data(), got.data(), ref.size()));  // bit-identical to the dense int8 ops

  const io::Container ct = io::packed_model_container(bitmask_ops);
  REQUIRE(std::get<std::int64_t>(ct.metadata.at("sparq.packed_version")) == 3);
  REQUIRE(std::get<std::int64_t>(io::packed_model_container(dense_ops).metadata.at("sparq.packed_version")) == 1);
  const auto bytes = io::serialize_packed_model(bitmask_ops);
  const Llama r = io::parse_packed_model(bytes.data(), bytes.size());
  for (std::size_t b = 0; b < 2; ++b)
    for (Linear l : all_linears) REQUIRE(r.linear(b, l).describe() == bitmask_ops.linear(b, l).describe());
  REQUIRE(r.linear_weight_bytes() == bitmask_ops.linear_weight_bytes());
  const Matrix<float> back = t::logits(r, toks);
  REQUIRE(t::same_bits(ref.data(), back.data(), ref.size()));
  REQUIRE(io::serialize_packed_model(r) == bytes);

  // truncated or bit-flipped bytes
  for (std::size_t cut : {std::size_t{0}, std::size_t{33}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 1})
    REQUIRE_THROWS_AS(io::parse_packed_model(bytes.data(), cut), sparq::error);
  for (std::size_t pos : {bytes.size() / 4, bytes.size() / 2, 3 * bytes.size() / 4}) {
    auto bad = bytes;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x04);
    REQUIRE_THROWS_AS(io::parse_packed_model(bad.data(), bad.size()), sparq::error);
  }
  // checksummed but inconsistent
  REQUIRE(t::read_error(ct, [](io::Container&) {}).empty());
  const std::string T = "blocks.1.wq";
  struct Case {
    std::function<void(io::Container&)> edit;
    std::string want;
  };
  // a file that says version 2 (or 1) may not hold bitmask int8 ops; the first one is named
  const std::string ev = t::read_error(ct, [](io::Container& c) { c.metadata["sparq.packed_version"] = std::int64_t{2}; });
  REQUIRE(ev.find("tensor 'blocks.0.wq': format 'packed_bitmask_q8' needs packed model version 3, the file says 2") !=
          std::string::npos);
  const std::vector<Case> cases = {
      {[&](io::Container& c) { t::section(c, T, "mask").bytes.pop_back(); }, "511 mask bytes, expected"},
      {[&](io::Container& c) { t::section(c, T, "codes").bytes.push_back(1); }, "codes, the mask keeps"},
      {[&](io::Container& c) { t::section(c, T, "codes").bytes.pop_back(); }, "codes, the mask keeps"},
      {[&](io::Container& c) { t::section(c, T, "codes").bytes[3] = static_cast<char>(0x80); }, "code -128"},
      {[&](io::Container& c) { t::section(c, T, "scales").bytes.push_back(0); }, "not a multiple of 4"},
      {[&](io::Container& c) {
         auto& s = t::section(c, T, "mask").bytes;
         s[0] = static_cast<char>(s[0] ^ 0x01);  // one kept code more or less than stored
       },
       "codes, the mask keeps"},
      {[&](io::Container& c) {
         const float nan = std::numeric_limits<float>::quiet_NaN();
         std::memcpy(t::section(c, T, "scales").bytes.data() + 4 * 2, &nan, 4);
       },
       "scale[2] = nan"},
      {[&](io::Container& c) { t::section(c, T, "scales").bytes.resize(4 * 63); }, "63 scales, expected one per row = 64"},
      {[&](io::Container& c) {
         for (auto& x : c.tensors)
           if (x.name == T) x.add_section("extra", std::vector<std::uint8_t>{1});
       },
       "unexpected section 'extra'"},
      {[&](io::Container& c) {
         for (auto& x : c.tensors)
           if (x.name == T)
             x.sections.erase(std::remove_if(x.sections.begin(), x.sections.end(),
                                             [](const io::ContainerSection& s) { return s.name == "scales"; }),
                              x.sections.end());
       },
       "no section 'scales'"},
      {[&](io::Container& c) { c.metadata.erase(T + ".act"); }, "missing metadata 'blocks.1.wq.act'"},
  };
  for (const auto& c : cases) {
    const std::string e = t::read_error(ct, c.edit);
    INFO("wanted '" << c.want << "', got '" << e << "'");
    REQUIRE(e.find(c.want) != std::string::npos);
    REQUIRE(e.find(T) != std::string::npos);  // the tensor is named
  }
}
