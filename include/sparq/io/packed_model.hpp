// Packed Llama files: a model whose linears are packed ops (Q8Linear / Q4Linear / NMLinear) written to
// and read from sparq's SPRQ container (io/container.hpp), read back into a runnable model::Llama.
//
// Contents (tokenizer-independent; a tokenizer is not stored):
//   metadata  "sparq.kind" = "packed_llama", "sparq.packed_version" = 1, "config.<field>" (int64:
//             dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
//             shared_classifier; float64: rms_eps, rope_theta), "attention_input_bits" (int64),
//             and per linear tensor T: "T.input_bits" (0, or the bits of a fake InputQuantLinear
//             kept around the op), "T.act" (8 or 32), format parameters below.
//   tensors   "token_embedding" [vocab, dim], "rms_final" [dim], "classifier" [vocab, dim] (only when
//             not shared), "blocks.<b>.rms_att" / ".rms_ffn" [dim]: format "f32", section "data".
//             "blocks.<b>.<wq|wk|wv|wo|w1|w2|w3>" [rows, cols], by format:
//               "f32"       section data (rows·cols floats): a dense linear
//               "packed_q8" sections codes (int8), scales (f32)
//               "packed_q4" sections codes, scales, zeros (asymmetric only); "T.group"
//               "packed_nm" sections values | codes (+ scales, zeros), indices; "T.n", "T.m",
//                           "T.values" (0 f32, 1 int8, 2 int4), "T.group" (int4)
//               "packed_bitmask" sections mask, values (f32), row_offsets (u64)
//             with the arrays exactly as the ops hold them (padded, see q4_linear.hpp / nm_linear.hpp).
// Reading re-validates every op (sizes, codes, scales, index order, zero padding) on top of the
// container's checksums, so a truncated or corrupted file throws sparq::error. The read model's
// float block weights are the dequantized packed weights (so reset_linear gives the equivalent
// dense fake-quantized model) and its packed ops compute bit-identical logits to the written model's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/container.hpp"
#include "sparq/model/bitmask_linear.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/nm_linear.hpp"
#include "sparq/model/q4_linear.hpp"
#include "sparq/model/q8_linear.hpp"

namespace sparq::io {

namespace packed_detail {

[[nodiscard]] inline std::string linear_tensor_name(std::size_t b, model::Linear l) {
  return sparq::detail::concat("blocks.", b, ".", model::linear_name(l));
}

[[nodiscard]] inline std::int64_t meta_int(const Container& ct, const std::string& key, const std::string& what) {
  const auto it = ct.metadata.find(key);
  if (it == ct.metadata.end()) sparq::detail::fail(what, ": missing metadata '", key, "'");
  const auto* v = std::get_if<std::int64_t>(&it->second);
  if (v == nullptr) sparq::detail::fail(what, ": metadata '", key, "' is not an integer");
  return *v;
}

[[nodiscard]] inline double meta_f64(const Container& ct, const std::string& key, const std::string& what) {
  const auto it = ct.metadata.find(key);
  if (it == ct.metadata.end()) sparq::detail::fail(what, ": missing metadata '", key, "'");
  const auto* v = std::get_if<double>(&it->second);
  if (v == nullptr) sparq::detail::fail(what, ": metadata '", key, "' is not a float64");
  return *v;
}

[[nodiscard]] inline std::size_t meta_size(const Container& ct, const std::string& key, const std::string& what,
                                           std::int64_t lo, std::int64_t hi) {
  const auto v = meta_int(ct, key, what);
  SPARQ_CHECK(v >= lo && v <= hi, what, ": metadata '", key, "' = ", v, ", expected ", lo, "..", hi);
  return static_cast<std::size_t>(v);
}

/// f32 tensor `name` with exactly the dims given; returns its floats.
[[nodiscard]] inline std::vector<float> f32_tensor(const Container& ct, const std::string& name,
                                                   const std::vector<std::uint64_t>& dims, const std::string& what) {
  const ContainerTensor* t = ct.find(name);
  if (t == nullptr) sparq::detail::fail(what, ": missing tensor '", name, "'");
  SPARQ_CHECK(t->format == "f32", what, ": tensor '", name, "' has format '", t->format, "', expected f32");
  SPARQ_CHECK(t->dims == dims, what, ": tensor '", name, "' has unexpected dimensions");
  auto v = t->section_as<float>("data");
  SPARQ_CHECK(v.size() == t->n_elements(), what, ": tensor '", name, "' has ", v.size(), " floats, expected ",
              t->n_elements());
  return v;
}

}  // namespace packed_detail

/// The SPRQ container of a model (packed ops, dense linears and the float parts).
/// Throws sparq::error on a linear that is neither dense nor one of the packed ops.
[[nodiscard]] inline Container packed_model_container(const model::Llama& m) {
  using namespace model;
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
      const std::string name = packed_detail::linear_tensor_name(b, l);
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
        sparq::detail::fail("write_packed_model: block ", b, " ", linear_name(l), " is '", op->describe(),
                            "', which has no packed file format");
      }
      ct.add(std::move(t));
    }
  }
  return ct;
}

[[nodiscard]] inline std::vector<char> serialize_packed_model(const model::Llama& m) {
  return serialize_container(packed_model_container(m));
}

/// Writes the model (temporary file + rename).
inline void write_packed_model(const std::string& path, const model::Llama& m) {
  write_container(path, packed_model_container(m));
}

/// Rebuilds a runnable Llama from a packed-model container. `threads`: kernel threads per op.
[[nodiscard]] inline model::Llama packed_model_from_container(const Container& ct, const std::string& what, int threads = 1) {
  using namespace model;
  using packed_detail::meta_size;
  const auto kind = ct.metadata.find("sparq.kind");
  SPARQ_CHECK(kind != ct.metadata.end() && std::holds_alternative<std::string>(kind->second) &&
                  std::get<std::string>(kind->second) == "packed_llama",
              what, ": not a packed sparq model (metadata sparq.kind != packed_llama)");
  const auto ver = packed_detail::meta_int(ct, "sparq.packed_version", what);
  SPARQ_CHECK(ver == 1, what, ": packed model version ", ver, ", expected 1");
  constexpr std::int64_t lim = (std::int64_t{1} << 24) - 1;
  LlamaConfig c;
  c.dim = meta_size(ct, "config.dim", what, 1, lim);
  c.hidden_dim = meta_size(ct, "config.hidden_dim", what, 1, lim);
  c.n_layers = meta_size(ct, "config.n_layers", what, 1, 4095);
  c.n_heads = meta_size(ct, "config.n_heads", what, 1, lim);
  c.n_kv_heads = meta_size(ct, "config.n_kv_heads", what, 1, lim);
  c.vocab_size = meta_size(ct, "config.vocab_size", what, 1, lim);
  c.seq_len = meta_size(ct, "config.seq_len", what, 1, lim);
  c.shared_classifier = meta_size(ct, "config.shared_classifier", what, 0, 1) == 1;
  c.rms_eps = static_cast<float>(packed_detail::meta_f64(ct, "config.rms_eps", what));
  c.rope_theta = static_cast<float>(packed_detail::meta_f64(ct, "config.rope_theta", what));
  c.validate();
  const int attn_bits = static_cast<int>(meta_size(ct, "attention_input_bits", what, 0, 16));

  LlamaWeights w;
  w.config = c;
  auto emb = packed_detail::f32_tensor(ct, "token_embedding", {c.vocab_size, c.dim}, what);  // sizes checked first
  w.token_embedding = Matrix<float>(c.vocab_size, c.dim);
  std::copy(emb.begin(), emb.end(), w.token_embedding.data());
  w.rms_final = packed_detail::f32_tensor(ct, "rms_final", {c.dim}, what);
  if (!c.shared_classifier) {
    auto cls = packed_detail::f32_tensor(ct, "classifier", {c.vocab_size, c.dim}, what);
    w.classifier = Matrix<float>(c.vocab_size, c.dim);
    std::copy(cls.begin(), cls.end(), w.classifier.data());
  }
  struct Installed {
    std::size_t b;
    Linear l;
    std::unique_ptr<PackedLinear> op;  // null: dense
    int input_bits;
  };
  std::vector<Installed> ops;
  w.blocks.resize(c.n_layers);
  for (std::size_t b = 0; b < c.n_layers; ++b) {
    auto& blk = w.blocks[b];
    blk.rms_att = packed_detail::f32_tensor(ct, sparq::detail::concat("blocks.", b, ".rms_att"), {c.dim}, what);
    blk.rms_ffn = packed_detail::f32_tensor(ct, sparq::detail::concat("blocks.", b, ".rms_ffn"), {c.dim}, what);
    for (Linear l : all_linears) {
      const std::string name = packed_detail::linear_tensor_name(b, l);
      const std::string tw = what + " tensor '" + name + "'";
      const ContainerTensor* t = ct.find(name);
      if (t == nullptr) sparq::detail::fail(what, ": missing tensor '", name, "'");
      std::size_t rows = 0, cols = 0;
      switch (l) {
        case Linear::wq: case Linear::wo: rows = cols = c.dim; break;
        case Linear::wk: case Linear::wv: rows = c.kv_dim(); cols = c.dim; break;
        case Linear::w1: case Linear::w3: rows = c.hidden_dim; cols = c.dim; break;
        case Linear::w2: rows = c.dim; cols = c.hidden_dim; break;
      }
      SPARQ_CHECK((t->dims == std::vector<std::uint64_t>{rows, cols}), tw, ": unexpected dimensions, expected ", rows, "x", cols);
      const int in_bits = static_cast<int>(meta_size(ct, name + ".input_bits", what, 0, 16));
      SPARQ_CHECK(in_bits == 0 || in_bits >= 2, tw, ": input_bits = ", in_bits, ", expected 0 or 2..16");
      std::unique_ptr<PackedLinear> op;
      try {
        if (t->format == "f32") {
          auto v = packed_detail::f32_tensor(ct, name, {rows, cols}, what);
          blk.linear(l) = Matrix<float>(rows, cols);
          std::copy(v.begin(), v.end(), blk.linear(l).data());
        } else {
          const auto act = meta_size(ct, name + ".act", what, 8, 32) == 8 ? ActivationMode::a8 : ActivationMode::a32;
          if (t->format == "packed_q8") {
            op = std::make_unique<Q8Linear>(rows, cols, t->section_as<std::int8_t>("codes"), t->section_as<float>("scales"), act,
                                            threads);
          } else if (t->format == "packed_q4") {
            const std::size_t g = meta_size(ct, name + ".group", what, 32, 128);
            std::vector<std::uint8_t> z;
            if (t->find_section("zeros") != nullptr) z = t->section_as<std::uint8_t>("zeros");
            op = std::make_unique<Q4Linear>(rows, cols, g, t->section_as<std::uint8_t>("codes"), t->section_as<float>("scales"),
                                            std::move(z), act, threads);
          } else if (t->format == "packed_nm") {
            const std::size_t n = meta_size(ct, name + ".n", what, 1, 8), m = meta_size(ct, name + ".m", what, 4, 8);
            NMValues v;
            v.kind = static_cast<NMValueKind>(meta_size(ct, name + ".values", what, 0, 2));
            v.group = meta_size(ct, name + ".group", what, 0, 128);
            if (v.kind == NMValueKind::f32) {
              v.f32 = t->section_as<float>("values");
            } else {
              if (v.kind == NMValueKind::int8) v.q8 = t->section_as<std::int8_t>("codes");
              else v.q4 = t->section_as<std::uint8_t>("codes");
              v.scales = t->section_as<float>("scales");
              if (t->find_section("zeros") != nullptr) v.zeros = t->section_as<std::uint8_t>("zeros");
            }
            op = std::make_unique<NMLinear>(rows, cols, n, m, std::move(v), t->section_as<std::uint8_t>("indices"), act, threads);
          } else if (t->format == "packed_bitmask") {
            op = std::make_unique<BitmaskLinear>(rows, cols, t->section_as<std::uint8_t>("mask"), t->section_as<float>("values"),
                                                 t->section_as<std::uint64_t>("row_offsets"), act, threads);
          } else {
            sparq::detail::fail("unknown linear format '", t->format, "'");
          }
          blk.linear(l) = op->dequantize();
        }
      } catch (const error& e) {
        sparq::detail::fail(tw, ": ", e.what());
      }
      ops.push_back({b, l, std::move(op), in_bits});
    }
  }
  Llama model(std::move(w));
  model.set_attention_input_bits(attn_bits);
  for (auto& e : ops) {
    if (e.op == nullptr && e.input_bits == 0) continue;  // dense: the model's own view
    std::unique_ptr<LinearOp> op = e.op ? std::unique_ptr<LinearOp>(std::move(e.op)) : model.take_linear(e.b, e.l);
    if (e.input_bits != 0) op = std::make_unique<InputQuantLinear>(std::move(op), e.input_bits);
    model.set_linear(e.b, e.l, std::move(op));
  }
  return model;
}

/// Parses a packed model held in memory.
[[nodiscard]] inline model::Llama parse_packed_model(const char* data, std::size_t size,
                                                     const std::string& what = "packed sparq model", int threads = 1) {
  return packed_model_from_container(parse_container(data, size, what), what, threads);
}

/// Reads a packed model file written by write_packed_model.
[[nodiscard]] inline model::Llama read_packed_model(const std::string& path, int threads = 1) {
  const std::string what = "packed sparq model '" + path + "'";
  return packed_model_from_container(read_container(path), what, threads);
}

}  // namespace sparq::io
