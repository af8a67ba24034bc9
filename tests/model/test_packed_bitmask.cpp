// BitmaskQ8Linear (unstructured-sparse int8: bitmask + kept codes): bit-identical to Q8Linear on the same
// codes, validation errors, pack_linear's choice by size, SPRQ round trip (version 3) and hostile files.
#include <algorithm>
#include <bit>
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
  io::PackedReadOptions compact;
  compact.dense_bitmask_codes = false;  // the ops as stored
  const Llama r = io::parse_packed_model(bytes.data(), bytes.size(), compact);
  for (std::size_t b = 0; b < 2; ++b)
    for (Linear l : all_linears) REQUIRE(r.linear(b, l).describe() == bitmask_ops.linear(b, l).describe());
  REQUIRE(r.linear_weight_bytes() == bitmask_ops.linear_weight_bytes());
  const Matrix<float> back = t::logits(r, toks);
  REQUIRE(t::same_bits(ref.data(), back.data(), ref.size()));
  REQUIRE(io::serialize_packed_model(r) == bytes);
  // by default the bitmask ops run as the dense ops of the same codes: the dense model, bit for bit
  const Llama rd = io::parse_packed_model(bytes.data(), bytes.size());
  std::size_t n_dense = 0;
  for (std::size_t b = 0; b < 2; ++b)
    for (Linear l : all_linears) {
      REQUIRE(dynamic_cast<const BitmaskQ8Linear*>(&rd.linear(b, l)) == nullptr);
      n_dense += dynamic_cast<const Q8Linear*>(&rd.linear(b, l)) != nullptr;
      REQUIRE(rd.linear(b, l).describe() == dense_ops.linear(b, l).describe());
    }
  REQUIRE(n_dense == 14);
  REQUIRE(rd.linear_weight_bytes() == dense_ops.linear_weight_bytes());
  const Matrix<float> back_dense = t::logits(rd, toks);
  REQUIRE(t::same_bits(ref.data(), back_dense.data(), ref.size()));

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

// ---- bitmask int4 (BitmaskQ4Linear) ----

namespace sparq_test_packed_bitmask {

/// 4-bit codes of w: symmetric / asymmetric, per group G (tail group allowed) or per channel (G = 0).
inline QuantizedTensor w4(const Matrix<float>& w, bool asym, std::size_t G) {
  QuantOptions qo;
  qo.tail_group = true;
  switch (G) {
    case 0: return asym ? Quantizer<Asymmetric, PerChannel, 4>{}.quantize(w.view()) : Quantizer<Symmetric, PerChannel, 4>{}.quantize(w.view());
    case 32: return asym ? Quantizer<Asymmetric, PerGroup<32>, 4>(qo).quantize(w.view()) : Quantizer<Symmetric, PerGroup<32>, 4>(qo).quantize(w.view());
    case 64: return asym ? Quantizer<Asymmetric, PerGroup<64>, 4>(qo).quantize(w.view()) : Quantizer<Symmetric, PerGroup<64>, 4>(qo).quantize(w.view());
    default: return asym ? Quantizer<Asymmetric, PerGroup<128>, 4>(qo).quantize(w.view()) : Quantizer<Symmetric, PerGroup<128>, 4>(qo).quantize(w.view());
  }
}

/// A model whose linears are 50 % (block 0) / 70 % (block 1) unstructured sparse W4 g32 (asymmetric
/// when `asym`; w1 of block 0 dense), each behind an 8-bit input quantizer (W4A8) when `a8`.
inline Llama sparse_w4_model(unsigned seed, bool asym, bool a8) {
  Llama m(model_test::random_weights(config(), seed));
  std::mt19937 rng(seed);
  QuantOptions qo;
  qo.tail_group = true;
  for (std::size_t b = 0; b < 2; ++b) {
    for (Linear l : all_linears) {
      Matrix<float>& w = m.block_weights(b).linear(l);
      const double sparsity = (b == 0 && l == Linear::w1) ? 0.0 : b == 0 ? 0.5 : 0.7;
      std::bernoulli_distribution zero(sparsity);
      for (std::size_t i = 0; i < w.size(); ++i)
        if (zero(rng)) w.data()[i] = 0.0f;
      w = asym ? Quantizer<Asymmetric, PerGroup<32>, 4>(qo).fake_quantize(w.view())
               : Quantizer<Symmetric, PerGroup<32>, 4>(qo).fake_quantize(w.view());
    }
    m.refresh_block(b);
  }
  if (a8)
    for (std::size_t b = 0; b < 2; ++b)
      for (Linear l : all_linears) m.set_linear(b, l, std::make_unique<InputQuantLinear>(m.take_linear(b, l), 8));
  return m;
}

}  // namespace sparq_test_packed_bitmask

TEST_CASE("BitmaskQ4Linear computes exactly what Q4Linear computes on the same sparse codes", "[model][packed][bitmask][int4]") {
  namespace t = sparq_test_packed_bitmask;
  struct Shape {
    std::size_t rows, cols;
  };
  unsigned seed = 1;
  for (const Shape sh : {Shape{37, 100}, Shape{64, 64}, Shape{16, 544}, Shape{5, 1}, Shape{33, 256}, Shape{9, 1100}}) {
    for (double sparsity : {0.0, 0.5, 0.7, 1.0}) {
      for (bool asym : {false, true}) {
        for (std::size_t G : {std::size_t{32}, std::size_t{64}, std::size_t{128}, std::size_t{0}}) {
          const Matrix<float> w = t::sparse_matrix(sh.rows, sh.cols, sparsity, seed++);
          const QuantizedTensor qt = t::w4(w, asym, G);
          for (ActivationMode act : {ActivationMode::a8, ActivationMode::a32}) {
            INFO(sh.rows << "x" << sh.cols << " sparsity " << sparsity << " asym " << asym << " G " << G << " "
                         << activation_mode_name(act));
            const Q4Linear q4 = Q4Linear::from_quantized(qt, act);
            const BitmaskQ4Linear bq = BitmaskQ4Linear::from_quantized(qt, act);
            std::size_t kept = 0, code_bytes = 0;
            for (std::size_t k = 0; k < sh.rows; ++k) {
              std::size_t n = 0;
              for (std::size_t j = 0; j < q4.padded_cols(); ++j) n += q4.code(k, j) != q4.zero(k, j / q4.group_size());
              kept += n;
              code_bytes += (n + 1) / 2;
            }
            REQUIRE(bq.kept() == kept);
            REQUIRE(bq.codes().size() == code_bytes);
            REQUIRE(bq.row_offsets().back() == code_bytes);
            REQUIRE(bq.group_size() == q4.group_size());
            REQUIRE(bq.padded_cols() == q4.padded_cols());
            REQUIRE(bq.per_channel() == q4.per_channel());
            REQUIRE(bq.weight_bytes() ==
                    BitmaskQ4Linear::bytes_for(sh.rows, sh.cols, q4.group_size(), code_bytes, asym));
            REQUIRE(bq.weight_bytes() == q4.weight_bytes() - sh.rows * q4.padded_cols() / 2 +
                                             sh.rows * q4.padded_cols() / 8 + code_bytes);
            if (sparsity >= 0.5 && sh.cols >= 64) REQUIRE(bq.weight_bytes() < q4.weight_bytes());
            // no padding columns (they are zero weights) and few zero codes: the dense op is smaller
            if (sparsity == 0.0 && q4.padded_cols() == sh.cols && sh.cols >= 64) REQUIRE(bq.weight_bytes() > q4.weight_bytes());
            REQUIRE(bq.describe().find("bitmask int4") != std::string::npos);
            REQUIRE(bq.describe().find(asym ? " asym " : " sym ") != std::string::npos);
            REQUIRE(bq.activations() == act);
            // the dense op it stands for, and back
            const Q4Linear back = bq.to_q4();
            REQUIRE(back.codes() == q4.codes());
            REQUIRE(BitmaskQ4Linear::from_q4(back, act).codes() == bq.codes());
            const Matrix<float> d4 = q4.dequantize(), db = bq.dequantize();
            REQUIRE(t::same_bits(d4.data(), db.data(), d4.size()));
            for (unsigned s = 0; s < 3; ++s) {
              auto x = sparq_test::randn(sh.cols, 50 + s, s == 2 ? 1e-3f : 1.0f);
              if (sh.cols > 3) x[sh.cols / 3] = 0.0f;
              std::vector<float> y4(sh.rows, 1.0f), yb(sh.rows, 2.0f);
              q4.gemv(x.data(), y4.data());
              bq.gemv(x.data(), yb.data());
              REQUIRE(t::same_bits(y4.data(), yb.data(), sh.rows));
            }
            const std::size_t n = 5;
            Matrix<float> X(n, sh.cols), Y4(n, sh.rows), Yb(n, sh.rows);
            const auto xs = sparq_test::randn(n * sh.cols, 77);
            std::copy(xs.begin(), xs.end(), X.data());
            q4.gemm(std::as_const(X).view(), Y4.view());
            bq.gemm(std::as_const(X).view(), Yb.view());
            REQUIRE(t::same_bits(Y4.data(), Yb.data(), Y4.size()));
          }
        }
      }
    }
  }
  // a threaded op: the same outputs
  const Matrix<float> w = t::sparse_matrix(70, 96, 0.6, 99);
  const BitmaskQ4Linear one = BitmaskQ4Linear::from_quantized(t::w4(w, true, 32), ActivationMode::a32, 1);
  const BitmaskQ4Linear two = BitmaskQ4Linear::from_quantized(t::w4(w, true, 32), ActivationMode::a32, 2);
  const auto x = sparq_test::randn(96, 5);
  std::vector<float> y1(70), y2(70);
  one.gemv(x.data(), y1.data());
  two.gemv(x.data(), y2.data());
  REQUIRE(t::same_bits(y1.data(), y2.data(), 70));
}

TEST_CASE("BitmaskQ4Linear rejects inconsistent arrays naming the value", "[model][packed][bitmask][int4]") {
  namespace t = sparq_test_packed_bitmask;
  // 3 x 40, G = 32: cols_p = 64, 8 mask bytes per row; row 0 keeps columns 0, 9 and 39, row 1
  // column 3, row 2 nothing. Codes: row 0 {5, 15, 0} in 2 bytes (padding nibble 0), row 1 {2}.
  std::vector<std::uint8_t> mask(24, 0);
  mask[0] = 0x01;
  mask[1] = 0x02;
  mask[4] = 0x80;
  mask[8] = 0x08;
  const std::vector<std::uint8_t> codes{0xf5, 0x00, 0x02};
  const std::vector<float> scales{0.5f, 0.25f, 1.0f, 1.0f, 2.0f, 2.0f};
  const auto act = ActivationMode::a32;
  const BitmaskQ4Linear ok(3, 40, 32, mask, codes, scales, {}, act);
  const Matrix<float> d = ok.dequantize();
  REQUIRE(d(0, 0) == -1.5f);   // 0.5·(5 − 8)
  REQUIRE(d(0, 9) == 3.5f);    // 0.5·(15 − 8)
  REQUIRE(d(0, 39) == -2.0f);  // 0.25·(0 − 8), second group
  REQUIRE(d(1, 3) == -6.0f);   // 1·(2 − 8)
  REQUIRE(d(0, 1) == 0.0f);
  REQUIRE(ok.row_offsets() == std::vector<std::size_t>{0, 2, 3, 3});
  REQUIRE(ok.kept() == 4);
  REQUIRE(ok.describe().find("(padded to 64)") != std::string::npos);
  const std::vector<std::uint8_t> zeros{8, 0, 15, 3, 2, 1};
  const BitmaskQ4Linear ok_asym(3, 40, 32, mask, codes, scales, zeros, act);
  REQUIRE(ok_asym.dequantize()(0, 39) == 0.0f);  // 0.25·(0 − 0)

  auto check = [&](const std::function<void()>& f, const std::string& want) {
    const std::string e = t::error_of(f);
    INFO("message: " << e << " / wanted: " << want);
    REQUIRE(e.find(want) != std::string::npos);
  };
  check([&] { BitmaskQ4Linear(0, 40, 32, {}, {}, {}, {}, act); }, "empty shape 0x40");
  check([&] { BitmaskQ4Linear(3, 40, 16, mask, codes, scales, {}, act); }, "group size G = 16, expected 32, 64 or 128");
  check([&] { BitmaskQ4Linear(3, 40, 32, std::vector<std::uint8_t>(15, 0), codes, scales, {}, act); },
        "15 mask bytes, expected rows·cols_p/8 = 24 (cols_p = 64)");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, codes, {0.5f, 0.25f}, {}, act); }, "2 scales, expected rows·cols_p/G = 6");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, codes, scales, {1, 2}, act); }, "2 zero points, expected 0 or 6");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, codes, scales, {8, 0, 16, 3, 2, 1}, act); }, "zero[2] = 16, expected 0..15");
  auto past = mask;
  past[13] = 0x02;  // row 1, column 41 (padding)
  check([&] { BitmaskQ4Linear(3, 40, 32, past, codes, scales, {}, act); },
        "row 1 has a mask bit at padding column 41, expected none at or past cols = 40");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, {0xf5, 0x00, 0x02, 0x11}, scales, {}, act); },
        "4 code bytes, the mask keeps 4 codes in 3 bytes");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, {0xf5, 0x00}, scales, {}, act); }, "2 code bytes, the mask keeps 4 codes in 3 bytes");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, {0xf5, 0x30, 0x02}, scales, {}, act); },
        "row 0 keeps 3 codes, its padding nibble is 3, expected 0");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, {0xf5, 0x00, 0x72}, scales, {}, act); },
        "row 1 keeps 1 codes, its padding nibble is 7, expected 0");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, codes, {0.5f, 0.0f, 1, 1, 1, 1}, {}, act); },
        "scale[1] = 0, expected a positive finite value");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, codes, {0.5f, 1, 1, 1, 1, std::numeric_limits<float>::infinity()}, {}, act); },
        "scale[5] = inf");
  check([&] { BitmaskQ4Linear(3, 40, 32, mask, codes, scales, {}, act, -1); }, "threads = -1");
  // an 8-bit tensor has no int4 op
  const Matrix<float> w = t::sparse_matrix(4, 64, 0.5, 3);
  check([&] { (void)BitmaskQ4Linear::from_quantized(t::w8(w), act); }, "needs 4-bit symmetric or asymmetric codes, got 8-bit");
}

TEST_CASE("pack_linear: bitmask int4 when it is smaller, same outputs as the dense int4 op", "[model][packed][bitmask][int4]") {
  namespace t = sparq_test_packed_bitmask;
  for (bool asym : {false, true}) {
    PackOptions o;
    o.format = PackFormat::w4;
    o.group_size = 32;
    o.asymmetric = asym;
    o.bitmask_if_smaller = true;
    PackOptions dense = o;
    dense.bitmask_if_smaller = false;
    QuantOptions qo;
    qo.tail_group = true;
    for (double sparsity : {0.0, 0.1, 0.2, 0.3, 0.5, 0.7}) {
      Matrix<float> w = t::sparse_matrix(48, 128, sparsity, 7);
      w = asym ? Quantizer<Asymmetric, PerGroup<32>, 4>(qo).fake_quantize(w.view())
               : Quantizer<Symmetric, PerGroup<32>, 4>(qo).fake_quantize(w.view());
      for (ActivationMode act : {ActivationMode::a8, ActivationMode::a32}) {
        const auto a = pack_linear(w.view(), o, act);
        const auto b = pack_linear(w.view(), dense, act);
        REQUIRE(dynamic_cast<const Q4Linear*>(b.get()) != nullptr);
        // 1 mask bit + 4 bits per kept weight against 4 bits per weight: bitmask from ~1/4 zeros on
        // (symmetric RTN also rounds small weights to the zero code, so its zeros exceed `sparsity`)
        INFO("asym " << asym << " sparsity " << sparsity << ": " << a->describe() << ", " << a->weight_bytes() << " vs "
                     << b->weight_bytes());
        const bool is_bitmask = dynamic_cast<const BitmaskQ4Linear*>(a.get()) != nullptr;
        REQUIRE(is_bitmask == (a->weight_bytes() < b->weight_bytes()));
        if (sparsity >= 0.3) REQUIRE(is_bitmask);
        if (sparsity == 0.0) REQUIRE(!is_bitmask);
        if (is_bitmask) {
          const auto* bq = dynamic_cast<const BitmaskQ4Linear*>(a.get());
          REQUIRE(bq->weight_bytes() < b->weight_bytes());
        }
        const auto x = sparq_test::randn(128, 9);
        std::vector<float> ya(48), yb(48);
        a->gemv(x.data(), ya.data());
        b->gemv(x.data(), yb.data());
        REQUIRE(t::same_bits(ya.data(), yb.data(), 48));
      }
    }
  }
  // the explicit format (also when larger), and the grid check of w4
  PackOptions ob;
  ob.format = PackFormat::bitmask_w4;
  ob.group_size = 64;
  QuantOptions qo;
  qo.tail_group = true;
  Matrix<float> w = Quantizer<Symmetric, PerGroup<64>, 4>(qo).fake_quantize(t::sparse_matrix(8, 100, 0.0, 8).view());
  const auto op = pack_linear(w.view(), ob, ActivationMode::a32);
  REQUIRE(dynamic_cast<const BitmaskQ4Linear*>(op.get()) != nullptr);
  REQUIRE(op->describe().find("g64") != std::string::npos);
  REQUIRE(std::string(pack_format_name(PackFormat::bitmask_w4)) == "bitmask_w4");
  ob.group_size = 48;
  REQUIRE(t::error_of([&] { (void)pack_linear(w.view(), ob, ActivationMode::a32); })
              .find("group_size = 48 for bitmask_w4, expected 32, 64, 128 or 0") != std::string::npos);
  ob.group_size = 64;
  w(3, 5) += 1e-3f * std::fabs(w(3, 5)) + 1e-4f;  // off the group's grid
  const std::string e = t::error_of([&] { (void)pack_linear(w.view(), ob, ActivationMode::a32, "wq"); });
  REQUIRE(e.find("wq") != std::string::npos);
  REQUIRE(e.find("row 3") != std::string::npos);
}

TEST_CASE("packed files: bitmask int4 ops round-trip bit-identically (version 3) and hostile files are rejected",
          "[model][packed][bitmask][int4][io]") {
  namespace t = sparq_test_packed_bitmask;
  for (bool asym : {false, true}) {
    for (bool a8 : {true, false}) {
      INFO("asym " << asym << " a8 " << a8);
      Llama dense_ops = t::sparse_w4_model(31, asym, a8);
      Llama bitmask_ops = t::sparse_w4_model(31, asym, a8);
      PackOptions o;
      o.format = PackFormat::w4;
      o.group_size = 32;
      o.asymmetric = asym;
      (void)pack_model(dense_ops, o);
      o.bitmask_if_smaller = true;
      const PackReport rep = pack_model(bitmask_ops, o);
      std::size_t n_bitmask = 0;
      for (const auto& e : rep.linears) n_bitmask += e.format.find("bitmask int4") != std::string::npos;
      REQUIRE(n_bitmask == 13);  // all but the dense w1 of block 0
      REQUIRE(bitmask_ops.linear_weight_bytes() < dense_ops.linear_weight_bytes());
      const auto toks = t::tokens(9, t::config().vocab_size);
      const Matrix<float> ref = t::logits(dense_ops, toks);
      const Matrix<float> got = t::logits(bitmask_ops, toks);
      REQUIRE(t::same_bits(ref.data(), got.data(), ref.size()));  // bit-identical to the dense int4 ops

      const io::Container ct = io::packed_model_container(bitmask_ops);
      REQUIRE(std::get<std::int64_t>(ct.metadata.at("sparq.packed_version")) == 3);
      REQUIRE(std::get<std::int64_t>(io::packed_model_container(dense_ops).metadata.at("sparq.packed_version")) == 1);
      const auto bytes = io::serialize_packed_model(bitmask_ops);
      io::PackedReadOptions compact;
      compact.dense_bitmask_codes = false;  // the ops as stored
      const Llama r = io::parse_packed_model(bytes.data(), bytes.size(), compact);
      for (std::size_t b = 0; b < 2; ++b)
        for (Linear l : all_linears) REQUIRE(r.linear(b, l).describe() == bitmask_ops.linear(b, l).describe());
      REQUIRE(r.linear_weight_bytes() == bitmask_ops.linear_weight_bytes());
      const Matrix<float> back = t::logits(r, toks);
      REQUIRE(t::same_bits(ref.data(), back.data(), ref.size()));
      REQUIRE(io::serialize_packed_model(r) == bytes);
      // by default the bitmask ops run as the dense ops of the same codes: the dense model, bit for bit
      const Llama rd = io::parse_packed_model(bytes.data(), bytes.size());
      std::size_t n_dense = 0;
      for (std::size_t b = 0; b < 2; ++b)
        for (Linear l : all_linears) {
          REQUIRE(dynamic_cast<const BitmaskQ4Linear*>(&rd.linear(b, l)) == nullptr);
          n_dense += dynamic_cast<const Q4Linear*>(&rd.linear(b, l)) != nullptr;
          REQUIRE(rd.linear(b, l).describe() == dense_ops.linear(b, l).describe());
        }
      REQUIRE(n_dense == 14);
      REQUIRE(rd.linear_weight_bytes() == dense_ops.linear_weight_bytes());
      const Matrix<float> back_dense = t::logits(rd, toks);
      REQUIRE(t::same_bits(ref.data(), back_dense.data(), ref.size()));
      if (!(a8 && asym)) continue;  // the hostile files once

      for (std::size_t cut : {std::size_t{0}, std::size_t{33}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 1})
        REQUIRE_THROWS_AS(io::parse_packed_model(bytes.data(), cut), sparq::error);
      for (std::size_t pos : {bytes.size() / 4, bytes.size() / 2, 3 * bytes.size() / 4}) {
        auto bad = bytes;
        bad[pos] = static_cast<char>(bad[pos] ^ 0x04);
        REQUIRE_THROWS_AS(io::parse_packed_model(bad.data(), bad.size()), sparq::error);
      }
      REQUIRE(t::read_error(ct, [](io::Container&) {}).empty());
      const std::string T = "blocks.1.w2";  // 64 x 100, padded to 128 columns: 16 mask bytes per row
      const std::string ev = t::read_error(ct, [](io::Container& c) { c.metadata["sparq.packed_version"] = std::int64_t{2}; });
      REQUIRE(ev.find("tensor 'blocks.0.wq': format 'packed_bitmask_q4' needs packed model version 3, the file says 2") !=
              std::string::npos);
      struct Case {
        std::function<void(io::Container&)> edit;
        std::string want;
      };
      const std::vector<Case> cases = {
          {[&](io::Container& c) { t::section(c, T, "mask").bytes.pop_back(); }, "1023 mask bytes, expected rows·cols_p/8 = 1024"},
          {[&](io::Container& c) { t::section(c, T, "codes").bytes.push_back(1); }, "code bytes, the mask keeps"},
          {[&](io::Container& c) { t::section(c, T, "codes").bytes.pop_back(); }, "code bytes, the mask keeps"},
          {[&](io::Container& c) {
             // row 0 keeps one code more (even count) or one less (odd count): one code byte more or less
             auto& s = t::section(c, T, "mask").bytes;
             int n0 = 0;
             for (int i = 0; i < 16; ++i) n0 += std::popcount(static_cast<unsigned>(static_cast<unsigned char>(s[i])));
             for (int c0 = 0; c0 < 100; ++c0) {
               const bool set = (static_cast<unsigned char>(s[c0 / 8]) >> (c0 % 8)) & 1u;
               if (set == (n0 % 2 == 1)) {
                 s[c0 / 8] = static_cast<char>(s[c0 / 8] ^ (1 << (c0 % 8)));
                 break;
               }
             }
           },
           "code bytes, the mask keeps"},
          {[&](io::Container& c) {
             auto& s = t::section(c, T, "mask").bytes;
             s[15] = static_cast<char>(s[15] | 0x80);  // row 0, column 127: padding
           },
           "has a mask bit at padding column 127"},
          {[&](io::Container& c) { t::section(c, T, "zeros").bytes[5] = static_cast<char>(16); }, "zero[5] = 16, expected 0..15"},
          {[&](io::Container& c) { t::section(c, T, "zeros").bytes.pop_back(); }, "zero points, expected 0 or 256"},
          {[&](io::Container& c) { t::section(c, T, "scales").bytes.push_back(0); }, "not a multiple of 4"},
          {[&](io::Container& c) {
             const float nan = std::numeric_limits<float>::quiet_NaN();
             std::memcpy(t::section(c, T, "scales").bytes.data() + 4 * 2, &nan, 4);
           },
           "scale[2] = nan"},
          {[&](io::Container& c) { t::section(c, T, "scales").bytes.resize(4 * 255); }, "255 scales, expected rows·cols_p/G = 256"},
          {[&](io::Container& c) { c.metadata[T + ".group"] = std::int64_t{64}; }, "256 scales, expected rows·cols_p/G = 128"},
          {[&](io::Container& c) { c.metadata[T + ".group"] = std::int64_t{48}; }, "group size G = 48, expected 32, 64 or 128"},
          {[&](io::Container& c) {
             for (auto& x : c.tensors)
               if (x.name == T) x.add_section("extra", std::vector<std::uint8_t>{1});
           },
           "unexpected section 'extra'"},
          {[&](io::Container& c) {
             for (auto& x : c.tensors)
               if (x.name == T)
                 x.sections.erase(std::remove_if(x.sections.begin(), x.sections.end(),
                                                 [](const io::ContainerSection& s) { return s.name == "codes"; }),
                                  x.sections.end());
           },
           "no section 'codes'"},
          {[&](io::Container& c) { c.metadata.erase(T + ".group"); }, "missing metadata 'blocks.1.w2.group'"},
      };
      for (const auto& c : cases) {
        const std::string e = t::read_error(ct, c.edit);
        INFO("wanted '" << c.want << "', got '" << e << "'");
        REQUIRE(e.find(c.want) != std::string::npos);
        REQUIRE(e.find(T) != std::string::npos);  // the tensor is named
      }
    }
  }
}
