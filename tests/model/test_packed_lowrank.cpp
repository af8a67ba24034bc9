// Packed model files with low-rank ops (LowRankLinear, CompensatedLinear over every packed op), version-1
// compatibility (a frozen copy of the version-1 writer), hostile files, pack_model on LoRC'ed models, and
// release_float_weights (resident bytes).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "model_test_util.hpp"
#include "sparq/io/packed_model.hpp"
#include "sparq/lowrank/low_rank_compensation.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/prune/magnitude.hpp"
#include "sparq/prune/nm.hpp"
#include "sparq/prune/pruner.hpp"
#include "sparq/quant/quantizer.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using namespace sparq::model;
using lowrank::FactorFormat;

namespace {

LlamaConfig cfg() {
  LlamaConfig c;
  c.dim = 64;
  c.hidden_dim = 100;  // w2: 100 inputs (W4 tail group, 4:8 padding)
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 48;
  c.seq_len = 32;
  return c;
}

std::vector<int> tokens(std::size_t n) {
  std::vector<int> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<int>((i * 11 + 5) % cfg().vocab_size);
  return t;
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

double max_rel_diff(const Matrix<float>& a, const Matrix<float>& b) {
  double mx = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    mx = std::max(mx, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b.data()[i])));
  }
  return mx / std::max(scale, 1e-30);
}

/// Random factors of rank r for a rows x cols linear, stored in `f`.
lowrank::Compensation random_comp(std::size_t rows, std::size_t cols, std::size_t r, FactorFormat f, unsigned seed) {
  lowrank::LowRankFactors lf;
  lf.a = Matrix<float>(rows, r);
  lf.b = Matrix<float>(r, cols);
  const auto va = sparq_test::randn(rows * r, seed, 0.05f), vb = sparq_test::randn(r * cols, seed + 1, 0.3f);
  std::copy(va.begin(), va.end(), lf.a.data());
  std::copy(vb.begin(), vb.end(), lf.b.data());
  lowrank::Compensation c;
  c.a = lowrank::StoredFactor::encode(lf.a.view(), f);
  c.b = lowrank::StoredFactor::encode(lf.b.view(), f);
  return c;
}

void fake_w8(Llama& m, std::size_t b) {
  for (Linear l : all_linears) {
    auto& w = m.block_weights(b).linear(l);
    w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(w.view());
  }
  m.refresh_block(b);
}

/// The factor formats exercised (all four StoredFactor formats).
const FactorFormat all_formats[] = {FactorFormat::f32, FactorFormat::int8, FactorFormat::f16, FactorFormat::bf16};

/// Fake-quantizes / prunes the float weights so every format below can pack them: wk W4 asym g64,
/// wv 4:8 + W8, wo 1/3 zeros (bitmask), w1 untouched (dense), the others W8 per channel.
void prep_weights(Llama& m) {
  QuantOptions tail;
  tail.tail_group = true;
  for (std::size_t b = 0; b < m.config().n_layers; ++b) {
    auto& blk = m.block_weights(b);
    for (Linear l : all_linears) {
      auto& w = blk.linear(l);
      if (l == Linear::wk) {
        w = Quantizer<Asymmetric, PerGroup<64>, 4>(tail).fake_quantize(w.view());
      } else if (l == Linear::wv) {
        (void)Pruner<Magnitude, NM<4, 8>>{}.prune(w.view());
        w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(w.view());
      } else if (l == Linear::wo) {
        for (std::size_t i = 0; i < w.size(); i += 3) w.data()[i] = 0.0f;
      } else if (l != Linear::w1) {
        w = Quantizer<Symmetric, PerChannel, 8>{}.fake_quantize(w.view());
      }
    }
    m.refresh_block(b);
  }
}

/// pack_linear of (b, l)'s float weights in `pf` (w4: asym g64; N:M: 4:8).
std::unique_ptr<LinearOp> packed(const Llama& m, std::size_t b, Linear l, PackFormat pf, ActivationMode act) {
  PackOptions o;
  o.format = pf;
  if (pf == PackFormat::w4) {
    o.group_size = 64;
    o.asymmetric = true;
  }
  o.nm_n = 4;
  o.nm_m = 8;
  return pack_linear(m.weights().blocks[b].linear(l).view(), o, act);
}

/// A model mixing every linear kind the file holds, factors in `f`:
///   block 0: CompensatedLinear over Q8Linear A8 (wq), Q4Linear asym g64 A32 (wk), NMLinear 4:8 int8
///            A8 (wv), BitmaskLinear A32 (wo), DenseLinear (w1), InputQuantLinear(6) inside (w3) and
///            InputQuantLinear(6) outside (w2, over a Q8Linear); ranks 2, 3, 4, 5, 1, 2, 3;
///   block 1: LowRankLinear (wq rank 4; wo rank 5 behind InputQuantLinear(8)), a CompensatedLinear
///            over a LowRankLinear (w1), Q8Linear A8 (w3), dense elsewhere.
Llama mixed_model(FactorFormat f, unsigned seed) {
  Llama m(model_test::random_weights(cfg(), seed));
  prep_weights(m);
  auto comp = [&](Linear l, unsigned s) {
    const auto [rows, cols] = m.expected_shape(l);
    return random_comp(rows, cols, 1 + s % 5, f, seed * 100 + s);
  };
  using PF = PackFormat;
  using AM = ActivationMode;
  m.set_linear(0, Linear::wq, std::make_unique<CompensatedLinear>(packed(m, 0, Linear::wq, PF::w8, AM::a8), comp(Linear::wq, 1)));
  m.set_linear(0, Linear::wk, std::make_unique<CompensatedLinear>(packed(m, 0, Linear::wk, PF::w4, AM::a32), comp(Linear::wk, 2)));
  m.set_linear(0, Linear::wv, std::make_unique<CompensatedLinear>(packed(m, 0, Linear::wv, PF::nm_w8, AM::a8), comp(Linear::wv, 3)));
  m.set_linear(0, Linear::wo,
               std::make_unique<CompensatedLinear>(packed(m, 0, Linear::wo, PF::bitmask_f32, AM::a32), comp(Linear::wo, 4)));
  m.set_linear(0, Linear::w1, std::make_unique<CompensatedLinear>(m.take_linear(0, Linear::w1), comp(Linear::w1, 5)));
  m.set_linear(0, Linear::w3,
               std::make_unique<CompensatedLinear>(std::make_unique<InputQuantLinear>(packed(m, 0, Linear::w3, PF::w8, AM::a32), 6),
                                                   comp(Linear::w3, 6)));
  m.set_linear(0, Linear::w2,
               std::make_unique<InputQuantLinear>(
                   std::make_unique<CompensatedLinear>(packed(m, 0, Linear::w2, PF::w8, AM::a32), comp(Linear::w2, 7)), 6));
  m.set_linear(1, Linear::wq, std::make_unique<LowRankLinear>(comp(Linear::wq, 8)));
  m.set_linear(1, Linear::wo, std::make_unique<InputQuantLinear>(std::make_unique<LowRankLinear>(comp(Linear::wo, 9)), 8));
  m.set_linear(1, Linear::w1,
               std::make_unique<CompensatedLinear>(std::make_unique<LowRankLinear>(comp(Linear::w1, 10)), comp(Linear::w1, 11)));
  m.set_linear(1, Linear::w3, packed(m, 1, Linear::w3, PF::w8, AM::a8));
  m.set_attention_input_bits(8);
  return m;
}

/// Applies `edit` to the container of `m` and returns the error message of reading it back ("" if it read).
std::string read_error(const io::Container& base, const std::function<void(io::Container&)>& edit) {
  io::Container ct = base;
  edit(ct);
  const auto bytes = io::serialize_container(ct);
  try {
    (void)io::parse_packed_model(bytes.data(), bytes.size());
  } catch (const sparq::error& e) {
    return e.what();
  }
  return "";
}

io::ContainerTensor& tensor(io::Container& ct, const std::string& name) {
  for (auto& t : ct.tensors)
    if (t.name == name) return t;
  FAIL("no tensor " << name);
  return ct.tensors.front();
}

io::ContainerSection& section(io::Container& ct, const std::string& t, const std::string& s) {
  for (auto& x : tensor(ct, t).sections)
    if (x.name == s) return x;
  FAIL("no section " << s);
  return tensor(ct, t).sections.front();
}

// ---------------------------------------------------------------------------------------------
// Frozen copy of the version-1 writer (io/packed_model.hpp at commit 6cf1d05, before low-rank ops), so
// the test holds files written the old way without shipping binary data.
namespace legacy_v1 {

io::Container packed_model_container(const Llama& m) {
  using io::Container;
  using io::ContainerTensor;
  const auto& c = m.config();
  const auto& w = m.weights();
  Container ct;
  ct.metadata["sparq.kind"] = std::string("packed_llama");
  ct.metadata["sparq.packed_version"] = std::int64_t{1};
  auto put = [&](const char* k, std::size_t v) { ct.metadata[std::string("config.") + k] = static_cast<std::int64_t>(v); };
  put("dim", c.dim);
  put("hidden_dim", c.hidden_dim);
  put("n_layers", c.n_layers);
  put("n_heads", c.n_heads);
  put("n_kv_heads", c.n_kv_heads);
  put("vocab_size", c.vocab_size);
  put("seq_len", c.seq_len);
  put("shared_classifier", c.shared_classifier ? 1 : 0);
  ct.metadata["config.rms_eps"] = static_cast<double>(c.rms_eps);
  ct.metadata["config.rope_theta"] = static_cast<double>(c.rope_theta);
  ct.metadata["attention_input_bits"] = static_cast<std::int64_t>(m.attention_input_bits());
  ct.add_f32("token_embedding", {c.vocab_size, c.dim}, w.token_embedding.data());
  ct.add_f32("rms_final", {c.dim}, w.rms_final.data());
  if (!c.shared_classifier) ct.add_f32("classifier", {c.vocab_size, c.dim}, w.classifier.data());
  for (std::size_t b = 0; b < c.n_layers; ++b) {
    ct.add_f32(sparq::detail::concat("blocks.", b, ".rms_att"), {c.dim}, w.blocks[b].rms_att.data());
    ct.add_f32(sparq::detail::concat("blocks.", b, ".rms_ffn"), {c.dim}, w.blocks[b].rms_ffn.data());
    for (Linear l : all_linears) {
      const std::string name = sparq::detail::concat("blocks.", b, ".", linear_name(l));
      const LinearOp* op = &m.linear(b, l);
      std::int64_t bits = 0;
      if (const auto* iq = dynamic_cast<const InputQuantLinear*>(op)) {
        bits = iq->bits();
        op = &iq->inner();
      }
      ct.metadata[name + ".input_bits"] = bits;
      ContainerTensor t{name, "", {op->out_features(), op->in_features()}, {}};
      if (const auto* d = dynamic_cast<const DenseLinear*>(op)) {
        t.format = "f32";
        const auto v = d->weight();
        std::vector<float> data(v.rows() * v.cols());
        for (std::size_t r = 0; r < v.rows(); ++r) std::copy(v.row(r), v.row(r) + v.cols(), data.data() + r * v.cols());
        t.add_section("data", data);
      } else if (const auto* q8 = dynamic_cast<const Q8Linear*>(op)) {
        t.format = "packed_q8";
        t.add_section("codes", q8->codes());
        t.add_section("scales", q8->scales());
        ct.metadata[name + ".act"] = std::int64_t{q8->activations() == ActivationMode::a8 ? 8 : 32};
      } else if (const auto* q4 = dynamic_cast<const Q4Linear*>(op)) {
        t.format = "packed_q4";
        t.add_section("codes", q4->codes());
        t.add_section("scales", q4->scales());
        if (q4->asymmetric()) t.add_section("zeros", q4->zeros());
        ct.metadata[name + ".act"] = std::int64_t{q4->activations() == ActivationMode::a8 ? 8 : 32};
        ct.metadata[name + ".group"] = static_cast<std::int64_t>(q4->group_size());
      } else if (const auto* nm = dynamic_cast<const NMLinear*>(op)) {
        t.format = "packed_nm";
        const auto& v = nm->values();
        switch (v.kind) {
          case NMValueKind::f32: t.add_section("values", v.f32); break;
          case NMValueKind::int8:
            t.add_section("codes", v.q8);
            t.add_section("scales", v.scales);
            break;
          case NMValueKind::int4:
            t.add_section("codes", v.q4);
            t.add_section("scales", v.scales);
            if (!v.zeros.empty()) t.add_section("zeros", v.zeros);
            break;
        }
        t.add_section("indices", nm->indices());
        ct.metadata[name + ".act"] = std::int64_t{nm->activations() == ActivationMode::a8 ? 8 : 32};
        ct.metadata[name + ".n"] = static_cast<std::int64_t>(nm->n());
        ct.metadata[name + ".m"] = static_cast<std::int64_t>(nm->m());
        ct.metadata[name + ".values"] = static_cast<std::int64_t>(v.kind);
        ct.metadata[name + ".group"] = static_cast<std::int64_t>(v.group);
      } else if (const auto* bm = dynamic_cast<const BitmaskLinear*>(op)) {
        t.format = "packed_bitmask";
        t.add_section("mask", bm->mask());
        t.add_section("values", bm->values());
        t.add_section("row_offsets", bm->row_offsets());
        ct.metadata[name + ".act"] = std::int64_t{bm->activations() == ActivationMode::a8 ? 8 : 32};
      } else {
        sparq::detail::fail("legacy writer: no format for '", op->describe(), "'");
      }
      ct.add(std::move(t));
    }
  }
  return ct;
}

}  // namespace legacy_v1

/// A model with every version-1 format (no low-rank op): Q8 A8, Q4 asym g64, 4:8 int8, bitmask,
/// dense, InputQuantLinear(6) around a packed and a dense op.
Llama v1_model(unsigned seed) {
  Llama m(model_test::random_weights(cfg(), seed));
  prep_weights(m);
  using PF = PackFormat;
  using AM = ActivationMode;
  m.set_linear(0, Linear::wq, packed(m, 0, Linear::wq, PF::w8, AM::a8));
  m.set_linear(0, Linear::wk, packed(m, 0, Linear::wk, PF::w4, AM::a32));
  m.set_linear(0, Linear::wv, packed(m, 0, Linear::wv, PF::nm_w8, AM::a8));
  m.set_linear(0, Linear::wo, packed(m, 0, Linear::wo, PF::bitmask_f32, AM::a8));
  m.set_linear(0, Linear::w3, std::make_unique<InputQuantLinear>(packed(m, 0, Linear::w3, PF::w8, AM::a32), 6));
  m.set_linear(1, Linear::w2, std::make_unique<InputQuantLinear>(m.take_linear(1, Linear::w2), 6));
  m.set_linear(1, Linear::wv, packed(m, 1, Linear::wv, PF::nm_f32, AM::a32));
  m.set_attention_input_bits(8);
  return m;
}

}  // namespace

TEST_CASE("packed files: LowRankLinear and CompensatedLinear round-trip bit-identically in every factor format",
          "[model][packed][io][lowrank]") {
  const auto toks = tokens(9);
  for (const FactorFormat f : all_formats) {
    INFO("factor format " << lowrank::factor_format_name(f));
    const Llama m = mixed_model(f, 31);
    const Matrix<float> ref = logits(m, toks);
    const io::Container ct = io::packed_model_container(m);
    REQUIRE(std::get<std::int64_t>(ct.metadata.at("sparq.packed_version")) == 2);
    REQUIRE(std::get<std::int64_t>(ct.metadata.at("blocks.0.wq.lorc_rank")) == 2);
    REQUIRE(ct.find("blocks.0.wq.lorc") != nullptr);
    REQUIRE(ct.find("blocks.1.wq")->format == "lowrank");
    REQUIRE(std::get<std::int64_t>(ct.metadata.at("blocks.1.wq.a_format")) == static_cast<std::int64_t>(f));
    // int8 factors carry one scale per row
    if (f == FactorFormat::int8) REQUIRE(ct.find("blocks.0.wq.lorc")->find_section("a_scales") != nullptr);
    else REQUIRE(ct.find("blocks.0.wq.lorc")->find_section("a_scales") == nullptr);

    const auto bytes = io::serialize_container(ct);
    REQUIRE(bytes == io::serialize_packed_model(m));
    const Llama r = io::parse_packed_model(bytes.data(), bytes.size());
    REQUIRE(r.attention_input_bits() == 8);
    REQUIRE(r.linear_weight_bytes() == m.linear_weight_bytes());
    for (std::size_t b = 0; b < 2; ++b)
      for (Linear l : all_linears) REQUIRE(r.linear(b, l).describe() == m.linear(b, l).describe());
    require_identical(logits(r, toks), ref);
    LlamaState s1(m.config(), toks.size()), s2(r.config(), toks.size());
    for (int t : toks) {
      const float* a = m.decode(t, s1);
      const float* b = r.decode(t, s2);
      REQUIRE(std::memcmp(a, b, m.config().vocab_size * sizeof(float)) == 0);
    }
    // factors are stored as they are: writing the read model gives the same bytes
    REQUIRE(io::serialize_packed_model(r) == bytes);
    // the factor bytes of the file equal the ops' factor bytes
    const auto& corr = dynamic_cast<const CompensatedLinear&>(m.linear(0, Linear::wq)).correction();
    std::size_t file_factor_bytes = 0;
    for (const auto& s : ct.find("blocks.0.wq.lorc")->sections) file_factor_bytes += s.bytes.size();
    REQUIRE(file_factor_bytes == corr.weight_bytes());
    // float weights of a LowRankLinear read back = decode(A)·decode(B); of a CompensatedLinear = its inner op
    const auto& lr = dynamic_cast<const LowRankLinear&>(r.linear(1, Linear::wq));
    const Matrix<float> a = lr.a().decode(), bm = lr.b().decode();
    for (std::size_t i = 0; i < a.rows(); i += 7)
      for (std::size_t j = 0; j < bm.cols(); j += 5) {
        double s = 0;
        for (std::size_t k = 0; k < a.cols(); ++k) s += static_cast<double>(a(i, k)) * bm(k, j);
        REQUIRE(r.weights().blocks[1].wq(i, j) == Approx(s).margin(1e-6));
      }
    const Matrix<float> dq = dynamic_cast<const PackedLinear&>(dynamic_cast<const CompensatedLinear&>(r.linear(0, Linear::wk)).inner()).dequantize();
    REQUIRE(std::memcmp(dq.data(), r.weights().blocks[0].wk.data(), dq.size() * sizeof(float)) == 0);

    // keep_float_weights = false: same logits, less resident memory
    io::PackedReadOptions ro;
    ro.keep_float_weights = false;
    const Llama rl = io::parse_packed_model(bytes.data(), bytes.size(), ro);
    require_identical(logits(rl, toks), ref);
    REQUIRE(resident_weight_bytes(rl) < resident_weight_bytes(r));
    REQUIRE(rl.weights().blocks[0].wq.size() == 0);      // packed inner: released
    REQUIRE(rl.weights().blocks[0].w1.size() == 100 * 64);  // dense inner view: kept
  }
}

TEST_CASE("packed files: models without low-rank ops stay version 1, byte-identical to the old writer", "[model][packed][io]") {
  const auto toks = tokens(7);
  const Llama m = v1_model(41);
  const Matrix<float> ref = logits(m, toks);
  // a file exactly as written before low-rank ops existed
  const auto old_bytes = io::serialize_container(legacy_v1::packed_model_container(m));
  // the new writer produces the same bytes (version 1)
  REQUIRE(io::serialize_packed_model(m) == old_bytes);
  // and the new reader reads the old file bit-identically
  const Llama r = io::parse_packed_model(old_bytes.data(), old_bytes.size());
  for (std::size_t b = 0; b < 2; ++b)
    for (Linear l : all_linears) REQUIRE(r.linear(b, l).describe() == m.linear(b, l).describe());
  require_identical(logits(r, toks), ref);
  // a version-1 file may not hold low-rank content
  const io::Container v2 = io::packed_model_container(mixed_model(FactorFormat::f16, 42));
  auto as_v1 = [](io::Container& ct) { ct.metadata["sparq.packed_version"] = std::int64_t{1}; };
  const std::string e = read_error(v2, as_v1);
  CHECK(e.find("needs packed model version 2, the file says 1") != std::string::npos);
  const std::string e5 = read_error(v2, [](io::Container& ct) { ct.metadata["sparq.packed_version"] = std::int64_t{5}; });
  CHECK(e5.find("packed model version 5, expected 1, 2, 3 or 4") != std::string::npos);
}

TEST_CASE("packed files with low-rank ops reject hostile bytes naming the value", "[model][packed][io][lowrank]") {
  for (const FactorFormat f : all_formats) {
    INFO("factor format " << lowrank::factor_format_name(f));
    const Llama m = mixed_model(f, 51);
    const io::Container base = io::packed_model_container(m);
    REQUIRE(read_error(base, [](io::Container&) {}).empty());
    const auto bytes = io::serialize_container(base);
    // truncation at many cut points, single bit flips
    for (std::size_t k = 0; k < 40; ++k) {
      const std::size_t cut = bytes.size() * k / 40;
      REQUIRE_THROWS_AS(io::parse_packed_model(bytes.data(), cut), sparq::error);
    }
    for (std::size_t k = 1; k < 30; ++k) {
      auto bad = bytes;
      const std::size_t pos = bad.size() * k / 30;
      bad[pos] = static_cast<char>(bad[pos] ^ (1 << (k % 8)));
      REQUIRE_THROWS_AS(io::parse_packed_model(bad.data(), bad.size()), sparq::error);
    }
    // checksummed but semantically wrong (the container is re-serialized with valid CRCs)
    struct Case {
      const char* expect;
      std::function<void(io::Container&)> edit;
    };
    const std::vector<Case> cases = {
        {"metadata 'blocks.0.wq.lorc.rank' = 0, expected 1..",
         [](io::Container& ct) { ct.metadata["blocks.0.wq.lorc.rank"] = std::int64_t{0}; }},
        {"rank 3", [](io::Container& ct) { ct.metadata["blocks.0.wq.lorc.rank"] = std::int64_t{3}; }},  // true rank 2
        {"metadata 'blocks.1.wq.rank' = 99999999",
         [](io::Container& ct) { ct.metadata["blocks.1.wq.rank"] = std::int64_t{99999999}; }},
        {"metadata 'blocks.0.wk.lorc_rank' = 4 but tensor 'blocks.0.wk.lorc' has rank 3",
         [](io::Container& ct) { ct.metadata["blocks.0.wk.lorc_rank"] = std::int64_t{4}; }},
        {"factor format 7, expected 0 (f32)",
         [](io::Container& ct) { ct.metadata["blocks.0.wv.lorc.b_format"] = std::int64_t{7}; }},
        {"tensor 'blocks.0.wo.lorc' is absent",
         [](io::Container& ct) {
           std::erase_if(ct.tensors, [](const io::ContainerTensor& t) { return t.name == "blocks.0.wo.lorc"; });
         }},
        {"metadata 'blocks.0.w1.lorc_rank' is absent but tensor 'blocks.0.w1.lorc' is present",
         [](io::Container& ct) { ct.metadata.erase("blocks.0.w1.lorc_rank"); }},
        {"'blocks.0.w3.lorc': unexpected dimensions, expected 100x64",
         [](io::Container& ct) { tensor(ct, "blocks.0.w3.lorc").dims = {64, 100}; }},
        {"format 'packed_q8', expected lowrank", [](io::Container& ct) { tensor(ct, "blocks.0.w3.lorc").format = "packed_q8"; }},
        {"unexpected section 'c'",
         [](io::Container& ct) { tensor(ct, "blocks.1.wq").add_section("c", std::vector<float>{1.0f}); }},
        {"inner_input_bits = 1, expected 0 or 2..16",
         [](io::Container& ct) { ct.metadata["blocks.0.w3.inner_input_bits"] = std::int64_t{1}; }},
        {"metadata 'blocks.0.w3.inner_input_bits' = 40",
         [](io::Container& ct) { ct.metadata["blocks.0.w3.inner_input_bits"] = std::int64_t{40}; }},
        {"missing metadata 'blocks.0.w3.inner_input_bits'",
         [](io::Container& ct) { ct.metadata.erase("blocks.0.w3.inner_input_bits"); }},
        {"metadata 'blocks.1.w3.inner_input_bits' without a LoRC correction",
         [](io::Container& ct) { ct.metadata["blocks.1.w3.inner_input_bits"] = std::int64_t{0}; }},
    };
    for (const auto& c : cases) {
      INFO(c.expect);
      const std::string e = read_error(base, c.edit);
      CHECK(e.find(c.expect) != std::string::npos);
      CHECK(!e.empty());
    }
    // lying section sizes: one value short, a byte short (not a multiple of the element size), one too many
    const std::size_t esz = f == FactorFormat::f32 ? 4 : f == FactorFormat::int8 ? 1 : 2;
    {
      const std::string e = read_error(base, [&](io::Container& ct) {
        auto& s = section(ct, "blocks.0.wv.lorc", "b");
        s.bytes.resize(s.bytes.size() - esz);
      });
      INFO(e);
      CHECK(e.find("blocks.0.wv.lorc") != std::string::npos);
      CHECK(e.find("section 'b' has 255 values, expected 256 (4x64)") != std::string::npos);
    }
    {
      const std::string e = read_error(base, [&](io::Container& ct) { section(ct, "blocks.1.wo", "a").bytes.push_back(0); });
      INFO(e);
      if (esz == 1) CHECK(e.find("section 'a' has 321 values, expected 320 (64x5)") != std::string::npos);
      else CHECK(e.find("not a multiple of " + std::to_string(esz)) != std::string::npos);
    }
    // non-finite / out-of-range factor values
    const std::string bad_value = read_error(base, [&](io::Container& ct) {
      auto& s = section(ct, "blocks.0.wq.lorc", "a");
      switch (f) {
        case FactorFormat::f32: {
          const float nan = std::nanf("");
          std::memcpy(s.bytes.data() + 4 * 5, &nan, 4);
          break;
        }
        case FactorFormat::int8: s.bytes[5] = static_cast<std::uint8_t>(0x80); break;  // code -128
        case FactorFormat::f16: s.bytes[10] = 0x00, s.bytes[11] = 0x7c; break;          // +inf
        case FactorFormat::bf16: s.bytes[10] = 0x80, s.bytes[11] = 0x7f; break;         // +inf
      }
    });
    INFO(bad_value);
    CHECK(bad_value.find("blocks.0.wq.lorc") != std::string::npos);
    CHECK(bad_value.find("row 2, column 1") != std::string::npos);  // element 5 of a 64x2 factor
    if (f == FactorFormat::int8) {
      for (const float s : {0.0f, -1.0f, std::nanf("")}) {
        const std::string e = read_error(base, [&](io::Container& ct) {
          auto& sec = section(ct, "blocks.0.wq.lorc", "b_scales");
          std::memcpy(sec.bytes.data() + 4, &s, 4);
        });
        INFO(e);
        CHECK(e.find("blocks.0.wq.lorc") != std::string::npos);
        CHECK(e.find("scale") != std::string::npos);
      }
      // codes an int8 StoredFactor cannot hold: row 1 of B halved (largest |code| 63 < 127, scale kept)
      const std::string nc = read_error(base, [&](io::Container& ct) {
        auto& sec = section(ct, "blocks.0.wk.lorc", "b");
        for (std::size_t j = 64; j < 128; ++j) {
          const auto c = static_cast<std::int8_t>(sec.bytes[j]);
          sec.bytes[j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(c / 2));
        }
      });
      INFO(nc);
      CHECK(nc.find("blocks.0.wk.lorc") != std::string::npos);
      CHECK(nc.find("int8 row 1 (scale") != std::string::npos);
      CHECK(nc.find("is not canonical") != std::string::npos);
      const std::string e = read_error(base, [&](io::Container& ct) {
        auto& t = tensor(ct, "blocks.1.wq");
        std::erase_if(t.sections, [](const io::ContainerSection& s) { return s.name == "b_scales"; });
      });
      CHECK(e.find("no section 'b_scales'") != std::string::npos);
    } else {
      const std::string e = read_error(base, [&](io::Container& ct) {
        tensor(ct, "blocks.1.wq").add_section("a_scales", std::vector<float>(64, 1.0f));
      });
      CHECK(e.find("unexpected section 'a_scales' for a non-int8 factor") != std::string::npos);
    }
  }
}

TEST_CASE("pack_model packs the inner op of CompensatedLinear and keeps LowRankLinear", "[model][packed][lowrank]") {
  const auto toks = tokens(10);
  Llama m(model_test::random_weights(cfg(), 61));
  fake_w8(m, 0);
  fake_w8(m, 1);
  // block 0: W8A8 linears with a LoRC correction (InputQuantLinear(8) inside, as a fake-quantized pipeline
  // builds them) except wo (outer wrapper: the correction sees quantized inputs too) and w2 (LowRankLinear).
  std::size_t factor_bytes = 0;
  for (Linear l : all_linears) {
    const auto [rows, cols] = m.expected_shape(l);
    lowrank::Compensation c = random_comp(rows, cols, 4, FactorFormat::f16, 70 + static_cast<unsigned>(l));
    factor_bytes += c.bytes();
    if (l == Linear::w2) {
      m.set_linear(0, l, std::make_unique<LowRankLinear>(std::move(c)));
      continue;
    }
    std::unique_ptr<LinearOp> op = m.take_linear(0, l);
    if (l == Linear::wo) {
      op = std::make_unique<InputQuantLinear>(std::make_unique<CompensatedLinear>(std::move(op), std::move(c)), 8);
    } else {
      op = std::make_unique<CompensatedLinear>(std::make_unique<InputQuantLinear>(std::move(op), 8), std::move(c));
    }
    m.set_linear(0, l, std::move(op));
  }
  for (Linear l : all_linears) m.set_linear(1, l, std::make_unique<InputQuantLinear>(m.take_linear(1, l), 8));
  const Matrix<float> fake = logits(m, toks);
  const std::size_t lowrank_bytes = m.linear(0, Linear::w2).weight_bytes();

  PackOptions o;
  o.format = PackFormat::w8;
  const PackReport rep = pack_model(m, o);
  REQUIRE(rep.linears.size() == 14);
  REQUIRE(rep.weight_bytes == m.linear_weight_bytes());
  // the inner ops became Q8Linear A8 (wrapper absorbed), the correction stayed
  const auto& wq = dynamic_cast<const CompensatedLinear&>(m.linear(0, Linear::wq));
  REQUIRE(dynamic_cast<const Q8Linear&>(wq.inner()).activations() == ActivationMode::a8);
  REQUIRE(wq.correction().rank() == 4);
  REQUIRE(wq.correction().a().format() == FactorFormat::f16);
  const auto& wo = dynamic_cast<const InputQuantLinear&>(m.linear(0, Linear::wo));
  REQUIRE(wo.bits() == 8);
  REQUIRE(dynamic_cast<const Q8Linear&>(dynamic_cast<const CompensatedLinear&>(wo.inner()).inner()).activations() ==
          ActivationMode::a32);
  REQUIRE(dynamic_cast<const LowRankLinear*>(&m.linear(0, Linear::w2)) != nullptr);
  REQUIRE(rep.linears[5].linear == Linear::w2);
  REQUIRE(rep.linears[5].weight_bytes == lowrank_bytes);
  REQUIRE(rep.linears[0].format.find(" + low-rank 64x64 rank 4 f16") != std::string::npos);
  // bytes = packed codes + scales of 13 linears + every factor
  std::size_t packed = 0;
  for (std::size_t b = 0; b < 2; ++b)
    for (Linear l : all_linears) {
      if (b == 0 && l == Linear::w2) continue;
      const auto [rows, cols] = m.expected_shape(l);
      packed += rows * cols + 4 * rows;
    }
  REQUIRE(rep.weight_bytes == packed + factor_bytes);
  // the real kernels compute what the fake-quantized model computes
  REQUIRE(max_rel_diff(logits(m, toks), fake) <= 1e-4);
  // packing again: nothing dense is left
  REQUIRE_THROWS_AS(pack_model(m, o), sparq::error);
  // and the packed LoRC model round-trips
  const auto bytes = io::serialize_packed_model(m);
  require_identical(logits(io::parse_packed_model(bytes.data(), bytes.size()), toks), logits(m, toks));
  // a CompensatedLinear over an op pack_model cannot pack names block and linear
  Llama bad(model_test::random_weights(cfg(), 62));
  const auto [rows, cols] = bad.expected_shape(Linear::w3);
  bad.set_linear(1, Linear::w3,
                 std::make_unique<CompensatedLinear>(
                     std::make_unique<CompensatedLinear>(bad.take_linear(1, Linear::w3), random_comp(rows, cols, 2, FactorFormat::f32, 9)),
                     random_comp(rows, cols, 2, FactorFormat::f32, 10)));
  PackOptions ob;
  ob.format = PackFormat::bitmask_f32;
  try {
    (void)pack_model(bad, ob);
    FAIL("expected sparq::error");
  } catch (const sparq::error& e) {
    CHECK(std::string(e.what()).find("block 1 w3: expected a dense float op inside the CompensatedLinear") != std::string::npos);
  }
  // ... and so does the writer for a nesting the file cannot hold
  try {
    (void)io::serialize_packed_model(bad);
    FAIL("expected sparq::error");
  } catch (const sparq::error& e) {
    CHECK(std::string(e.what()).find("block 1 w3") != std::string::npos);
  }
}

TEST_CASE("release_float_weights: packed models run bit-identically on the packed bytes alone", "[model][packed]") {
  const auto toks = tokens(11);
  for (const bool with_lorc : {false, true}) {
    INFO("LoRC " << with_lorc);
    auto build = [&] {
      Llama m(model_test::random_weights(cfg(), 71));
      fake_w8(m, 0);
      fake_w8(m, 1);
      for (std::size_t b = 0; b < 2; ++b)
        for (Linear l : all_linears) {
          std::unique_ptr<LinearOp> op = std::make_unique<InputQuantLinear>(m.take_linear(b, l), 8);
          if (with_lorc) {
            const auto [rows, cols] = m.expected_shape(l);
            op = std::make_unique<CompensatedLinear>(std::move(op), random_comp(rows, cols, 3, FactorFormat::int8, 80 + b));
          }
          m.set_linear(b, l, std::move(op));
        }
      return m;
    };
    Llama kept = build(), freed = build();
    std::size_t lorc_bytes = 0;
    for (std::size_t b = 0; b < 2; ++b)
      for (Linear l : all_linears)
        if (const auto* c = dynamic_cast<const CompensatedLinear*>(&kept.linear(b, l))) lorc_bytes += c->correction().weight_bytes();
    REQUIRE((lorc_bytes > 0) == with_lorc);
    PackOptions o;
    o.format = PackFormat::w8;
    const std::size_t dense_resident = resident_weight_bytes(kept);
    (void)pack_model(kept, o);
    o.release_float_weights = true;
    const PackReport rep = pack_model(freed, o);
    const std::size_t linear_floats = 2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 100) * sizeof(float);
    REQUIRE(rep.released_bytes == linear_floats);
    // logits bit-identical with and without the float copies
    require_identical(logits(freed, toks), logits(kept, toks));
    // resident bytes: the kept model holds floats + packed, the freed one packed only
    const std::size_t other = (48 * 64 + 64 + 2 * 2 * 64) * sizeof(float);  // embedding, rms_final, norms
    REQUIRE(dense_resident == other + linear_floats + lorc_bytes);
    REQUIRE(resident_weight_bytes(kept) == other + linear_floats + kept.linear_weight_bytes());
    REQUIRE(resident_weight_bytes(freed) == other + freed.linear_weight_bytes());
    REQUIRE(resident_weight_bytes(kept) - resident_weight_bytes(freed) == rep.released_bytes);
    // the released floats are gone: take_linear / reset_linear cannot bring a dense view back, and
    // refusing loses nothing (the packed op stays installed); refresh_block accepts the released state
    REQUIRE(freed.weights().blocks[1].w2.size() == 0);
    REQUIRE(freed.float_weights_released(1, Linear::w2));
    REQUIRE_FALSE(kept.float_weights_released(1, Linear::w2));
    const std::string before = freed.linear(1, Linear::w2).describe();
    REQUIRE_THROWS_AS((void)freed.take_linear(1, Linear::w2), sparq::error);
    REQUIRE_THROWS_AS(freed.reset_linear(1, Linear::w2), sparq::error);
    REQUIRE_NOTHROW(freed.refresh_block(1));
    REQUIRE(freed.linear(1, Linear::w2).describe() == before);
    require_identical(logits(freed, toks), logits(kept, toks));
    // a released model writes and reads like the kept one
    const auto bytes = io::serialize_packed_model(freed);
    REQUIRE(bytes == io::serialize_packed_model(kept));
  }
  // a dense (unpacked) linear keeps its floats: its op is a view of them
  Llama m(model_test::random_weights(cfg(), 72));
  PackOptions o;
  o.format = PackFormat::bitmask_f32;
  (void)pack_model(m, o);
  m.reset_linear(0, Linear::wq);
  REQUIRE(release_float_weights(m) == (2 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 100) - 64 * 64) * sizeof(float));
  REQUIRE(m.weights().blocks[0].wq.size() == 64 * 64);
  REQUIRE(m.weights().blocks[0].wk.size() == 0);
  const Matrix<float> l1 = logits(m, tokens(5));
  REQUIRE(std::isfinite(l1.data()[0]));
}
