// Packed Llama files: a model whose linears are packed ops (Q8Linear / Q4Linear / NMLinear / BitmaskLinear /
// BitmaskQ8Linear / BitmaskQ4Linear),
// low-rank ops (LowRankLinear) or packed ops with a LoRC correction (CompensatedLinear) written to and read
// from sparq's SPRQ container (io/container.hpp), read back into a runnable model::Llama.
//
// Contents (tokenizer-independent; a tokenizer is not stored; the full table is in docs/formats.md):
//   metadata  "sparq.kind" = "packed_llama", "sparq.packed_version" = 1, 2 when the model holds a
//             low-rank op, 3 when it holds a bitmask int8 or int4 op, 4 when its embedding is int8
//             (version 1 files are byte-identical to those of earlier sparq; readers take 1 to 4),
//             "config.<field>" (int64: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
//             shared_classifier; float64: rms_eps, rope_theta), "attention_input_bits" (int64),
//             and per linear tensor T: "T.input_bits" (0, or the bits of a fake InputQuantLinear
//             kept around the op), "T.act" (8 or 32, packed formats), format parameters below.
//   tensors   "token_embedding" [vocab, dim], "rms_final" [dim], "classifier" [vocab, dim] (only when
//             not shared), "blocks.<b>.rms_att" / ".rms_ffn" [dim]: format "f32", section "data";
//             the embedding and classifier as "q8_rows" (version 4: sections codes (int8), scales (f32
//             per row)) when their values are exactly per-row int8 (model/embedding_quant.hpp).
//             "blocks.<b>.<wq|wk|wv|wo|w1|w2|w3>" [rows, cols], by format:
//               "f32"       section data (rows·cols floats): a dense linear
//               "packed_q8" sections codes (int8), scales (f32)
//               "packed_q4" sections codes, scales, zeros (asymmetric only); "T.group"
//               "packed_nm" sections values | codes (+ scales, zeros), indices; "T.n", "T.m",
//                           "T.values" (0 f32, 1 int8, 2 int4), "T.group" (int4)
//               "packed_bitmask" sections mask, values (f32), row_offsets (u64)
//               "packed_bitmask_q8" (version 3) sections mask, codes (int8), scales (f32); the row offsets
//                           follow from the mask popcounts and are not stored
//               "packed_bitmask_q4" (version 3) sections mask (rows·cols_p/8), codes (kept nibbles, each
//                           row from a byte boundary), scales (f32), zeros (asymmetric only); "T.group";
//                           the row offsets follow from the mask popcounts and are not stored
//               "lowrank"   (version 2) a LowRankLinear y = A(Bx): factor sections below
//             with the arrays exactly as the ops hold them (padded, see q4_linear.hpp / nm_linear.hpp).
//   version 2, CompensatedLinear y = inner(x) + A(Bx): T holds the inner op in any format above,
//             "T.lorc" [rows, cols] (format "lowrank") holds the correction, metadata "T.lorc_rank" = r
//             and "T.inner_input_bits" (0, or the bits of an InputQuantLinear between the correction
//             and the inner op; "T.input_bits" is the wrapper around the whole CompensatedLinear).
//   low-rank tensor F (T or T.lorc): metadata "F.rank" = r, "F.a_format", "F.b_format" (0 f32, 1 int8,
//             2 f16, 3 bf16: lowrank::FactorFormat); sections "a" (rows·r values: f32 floats, int8
//             codes or u16 half bits), "a_scales" (int8 only: rows f32), "b" (r·cols values),
//             "b_scales" (int8 only: r f32) — exactly lowrank::StoredFactor's storage.
// Reading re-validates every op (sizes, codes, scales, index order, zero padding, ranks, factor
// values) on top of the container's checksums, so a truncated or corrupted file throws sparq::error.
// The read model's float block weights are the dequantized weights of each linear's base op (the
// inner op of a CompensatedLinear, without its correction; A·B for a LowRankLinear), unless
// PackedReadOptions::keep_float_weights is false, and its ops compute bit-identical logits to the
// written model's.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/half.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/io/container.hpp"
#include "sparq/lowrank/low_rank_compensation.hpp"
#include "sparq/lowrank/stored_factor.hpp"
#include "sparq/model/bitmask_linear.hpp"
#include "sparq/model/bitmask_q4_linear.hpp"
#include "sparq/model/bitmask_q8_linear.hpp"
#include "sparq/model/dense_linear.hpp"
#include "sparq/model/embedding_quant.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/linear_formats.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/model/lowrank_linear.hpp"
#include "sparq/model/nm_linear.hpp"
#include "sparq/model/pack_model.hpp"
#include "sparq/model/q4_linear.hpp"
#include "sparq/model/q8_linear.hpp"
#include "sparq/model/tokenizer.hpp"
#include "sparq/quant/quantized_tensor.hpp"
#include "sparq/quant/quantizer.hpp"

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

/// Writes the token embedding or classifier `w` as tensor `name`: format "q8_rows" (sections codes:
/// int8 row-major, scales: one f32 per row) when its values are exactly the decode of their per-row
/// int8 codes (model::exact_int8_rows; what model::quantize_embeddings leaves), else "f32". Returns
/// the packed version it needs: 4 for q8_rows, 1 for f32.
inline int put_embedding(Container& ct, const std::string& name, const Matrix<float>& w) {
  if (const auto q = model::exact_int8_rows(w.view())) {
    ContainerTensor t{name, "q8_rows", {w.rows(), w.cols()}, {}};
    const auto codes = q->int8_codes();
    t.add_section("codes", codes.data(), codes.size());
    t.add_section("scales", q->scales(), w.rows());
    ct.tensors.push_back(std::move(t));
    return 4;
  }
  ct.add_f32(name, {w.rows(), w.cols()}, w.data());
  return 1;
}

/// Reads the token embedding or classifier tensor `name` ([rows, cols], format f32 or, from version 4,
/// q8_rows: every code in [−127, 127], every scale positive and finite, nothing else in the tensor).
[[nodiscard]] inline Matrix<float> embedding_tensor(const Container& ct, const std::string& name, std::size_t rows,
                                                    std::size_t cols, std::int64_t version, const std::string& what) {
  const ContainerTensor* t = ct.find(name);
  if (t == nullptr) sparq::detail::fail(what, ": missing tensor '", name, "'");
  Matrix<float> m(rows, cols);
  if (t->format != "q8_rows") {
    const auto v = f32_tensor(ct, name, {rows, cols}, what);
    std::copy(v.begin(), v.end(), m.data());
    return m;
  }
  SPARQ_CHECK(version >= 4, what, ": tensor '", name, "' has format q8_rows, which needs packed model version 4; the "
              "file says ", version);
  const std::vector<std::uint64_t> dims{rows, cols};
  SPARQ_CHECK(t->dims == dims, what, ": tensor '", name,
              "' has unexpected dimensions");
  for (const auto& sec : t->sections)
    SPARQ_CHECK(sec.name == "codes" || sec.name == "scales", what, ": tensor '", name, "' has an unexpected section '",
                sec.name, "' (q8_rows holds codes and scales)");
  const auto q = t->section_as<std::int8_t>("codes");
  const auto sc = t->section_as<float>("scales");
  SPARQ_CHECK(q.size() == rows * cols && sc.size() == rows, what, ": tensor '", name, "' has ", q.size(), " codes and ",
              sc.size(), " scales, expected ", rows * cols, " and ", rows);
  for (std::size_t i = 0; i < q.size(); ++i)
    SPARQ_CHECK(q[i] != -128, what, ": tensor '", name, "' has code -128 at row ", i / cols, ", column ", i % cols,
                ", expected -127..127");
  for (std::size_t i = 0; i < rows; ++i)
    SPARQ_CHECK(std::isfinite(sc[i]) && sc[i] > 0.0f, what, ": tensor '", name, "' has scale[", i, "] = ", sc[i],
                ", expected a positive finite value");
  model::decode_int8_rows(q, sc, m.view());
  return m;
}

/// StoredFactor from its stored parts; every value checked (finite; int8 codes in [−127, 127],
/// positive finite scales). f32 / f16 / bf16 go through StoredFactor::encode of the decoded
/// values, which reproduces the stored bits exactly (every half value is a float, and RNE of a
/// representable value is itself).
[[nodiscard]] inline lowrank::StoredFactor factor_from_f32(std::size_t rows, std::size_t cols, std::vector<float> v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    SPARQ_CHECK(std::isfinite(v[i]), "value ", v[i], " at row ", i / cols, ", column ", i % cols, ", expected finite");
  return lowrank::StoredFactor::encode(MatrixView<const float>(v.data(), rows, cols), lowrank::FactorFormat::f32);
}
[[nodiscard]] inline lowrank::StoredFactor factor_from_half(std::size_t rows, std::size_t cols, lowrank::FactorFormat f,
                                                            const std::vector<std::uint16_t>& h) {
  std::vector<float> v(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) {
    v[i] = f == lowrank::FactorFormat::f16 ? fp16_to_float(h[i]) : bf16_to_float(h[i]);
    SPARQ_CHECK(std::isfinite(v[i]), lowrank::factor_format_name(f), " value ", h[i], " (bits) at row ", i / cols,
                ", column ", i % cols, " is not finite");
  }
  return lowrank::StoredFactor::encode(MatrixView<const float>(v.data(), rows, cols), f);
}
/// The int8 codes and per-row scales of decoded int8 factor values: StoredFactor::encode's own
/// quantizer (Quantizer<Symmetric, PerChannel, 8>: s = max(absmax, 1e−5)/127, q = nearbyint(x/s)).
/// On decoded values it returns exactly the codes and scales the factor holds: each row's largest
/// |x̂| is fl(127·s) and fl(fl(127·s)/127) = s for every s = fl(a/127), a ≥ 1e−5 (checked
/// exhaustively over all floats), and x̂/s = q·(1 ± 2^−23) rounds back to q.
[[nodiscard]] inline QuantizedTensor factor_int8_parts(const Matrix<float>& decoded) {
  return Quantizer<Symmetric, PerChannel, 8>{}.quantize(decoded.view());
}
/// int8 factor from stored codes and scales: re-encodes the values scale·code (what the GEMV
/// multiplies by) and requires the result to hold exactly the stored codes and scales, i.e. the
/// codes are canonical (each row's largest |code| is 127, or its scale is the 1e−5/127 floor), as
/// every int8 StoredFactor's are. Throws sparq::error naming the row otherwise.
[[nodiscard]] inline lowrank::StoredFactor factor_from_int8(std::size_t rows, std::size_t cols,
                                                            const std::vector<std::int8_t>& q, const std::vector<float>& s) {
  Matrix<float> v(rows, cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) v(i, j) = s[i] * static_cast<float>(q[i * cols + j]);
  const QuantizedTensor back = factor_int8_parts(v);
  const auto bq = back.int8_codes();
  for (std::size_t i = 0; i < rows; ++i) {
    bool same = back.scales()[i] == s[i];
    for (std::size_t j = 0; j < cols && same; ++j) same = bq[i * cols + j] == q[i * cols + j];
    SPARQ_CHECK(same, "int8 row ", i, " (scale ", s[i], ") is not canonical: StoredFactor's per-row int8 has a largest "
                "|code| of 127 unless the scale is 1e-5/127");
  }
  return lowrank::StoredFactor::encode(v.view(), lowrank::FactorFormat::int8);
}

/// The stored half bits of an f16 / bf16 factor (exact: re-rounding a decoded half is the identity).
[[nodiscard]] inline std::vector<std::uint16_t> factor_half_bits(const lowrank::StoredFactor& f) {
  const Matrix<float> d = f.decode();
  std::vector<std::uint16_t> h(d.size());
  for (std::size_t i = 0; i < d.size(); ++i)
    h[i] = f.format() == lowrank::FactorFormat::f16 ? float_to_fp16(d.data()[i]) : float_to_bf16(d.data()[i]);
  return h;
}

/// Writes factor `f` as sections `<p>` (+ `<p>_scales`) of `t`; returns its FactorFormat code.
inline std::int64_t put_factor(ContainerTensor& t, const char* p, const lowrank::StoredFactor& f) {
  const std::string sec(p);
  switch (f.format()) {
    case lowrank::FactorFormat::f32: t.add_section(sec, f.f32_values()); break;
    case lowrank::FactorFormat::int8: {
      const QuantizedTensor q = factor_int8_parts(f.decode());
      const auto codes = q.int8_codes();
      t.add_section(sec, codes.data(), codes.size());
      t.add_section(sec + "_scales", q.scales(), f.rows());
      break;
    }
    case lowrank::FactorFormat::f16:
    case lowrank::FactorFormat::bf16: t.add_section(sec, factor_half_bits(f)); break;
  }
  return static_cast<std::int64_t>(f.format());
}

/// A low-rank tensor (format "lowrank") named `name` holding A and B, with its metadata.
inline ContainerTensor lowrank_tensor(Container& ct, const std::string& name, const model::LowRankLinear& lr) {
  ContainerTensor t{name, "lowrank", {lr.out_features(), lr.in_features()}, {}};
  ct.metadata[name + ".rank"] = static_cast<std::int64_t>(lr.rank());
  ct.metadata[name + ".a_format"] = put_factor(t, "a", lr.a());
  ct.metadata[name + ".b_format"] = put_factor(t, "b", lr.b());
  return t;
}

/// Reads factor `<p>` (rows x cols, format code `fmt`) of tensor `t`; every value checked.
[[nodiscard]] inline lowrank::StoredFactor get_factor(const ContainerTensor& t, const char* p, std::size_t rows,
                                                      std::size_t cols, std::int64_t fmt) {
  const std::string sec(p);
  const std::size_t n = rows * cols;
  auto check_count = [&](std::size_t got, std::size_t want, const std::string& s) {
    SPARQ_CHECK(got == want, "factor ", p, ": section '", s, "' has ", got, " values, expected ", want, " (", rows, "x",
                cols, ")");
  };
  auto no_scales = [&] {
    SPARQ_CHECK(t.find_section(sec + "_scales") == nullptr, "factor ", p, ": unexpected section '", sec,
                "_scales' for a non-int8 factor");
  };
  switch (static_cast<lowrank::FactorFormat>(fmt)) {
    case lowrank::FactorFormat::f32: {
      no_scales();
      auto v = t.section_as<float>(sec);
      check_count(v.size(), n, sec);
      return factor_from_f32(rows, cols, std::move(v));
    }
    case lowrank::FactorFormat::int8: {
      auto q = t.section_as<std::int8_t>(sec);
      check_count(q.size(), n, sec);
      auto s = t.section_as<float>(sec + "_scales");
      check_count(s.size(), rows, sec + "_scales");
      for (std::size_t i = 0; i < q.size(); ++i)
        SPARQ_CHECK(q[i] != -128, "int8 code -128 at row ", i / cols, ", column ", i % cols, ", expected [-127, 127]");
      for (std::size_t i = 0; i < s.size(); ++i)
        SPARQ_CHECK(std::isfinite(s[i]) && s[i] > 0.0f, "int8 scale[", i, "] = ", s[i], ", expected a positive finite value");
      return factor_from_int8(rows, cols, q, s);
    }
    case lowrank::FactorFormat::f16:
    case lowrank::FactorFormat::bf16: {
      no_scales();
      auto h = t.section_as<std::uint16_t>(sec);
      check_count(h.size(), n, sec);
      return factor_from_half(rows, cols, static_cast<lowrank::FactorFormat>(fmt), h);
    }
  }
  sparq::detail::fail("factor ", p, ": format ", fmt, ", expected 0 (f32), 1 (int8), 2 (f16) or 3 (bf16)");
}

/// Reads a low-rank tensor `name` (rows x cols, format "lowrank") into a LowRankLinear.
[[nodiscard]] inline model::LowRankLinear get_lowrank(const Container& ct, const std::string& name, std::size_t rows,
                                                      std::size_t cols, const std::string& what) {
  const ContainerTensor* t = ct.find(name);
  if (t == nullptr) sparq::detail::fail(what, ": missing tensor '", name, "'");
  const std::string tw = what + " tensor '" + name + "'";
  SPARQ_CHECK(t->format == "lowrank", tw, ": format '", t->format, "', expected lowrank");
  SPARQ_CHECK((t->dims == std::vector<std::uint64_t>{rows, cols}), tw, ": unexpected dimensions, expected ", rows, "x",
              cols);
  constexpr std::int64_t lim = (std::int64_t{1} << 24) - 1;
  const std::size_t r = meta_size(ct, name + ".rank", what, 1, lim);
  const std::int64_t fa = meta_int(ct, name + ".a_format", what), fb = meta_int(ct, name + ".b_format", what);
  for (const std::int64_t f : {fa, fb})
    SPARQ_CHECK(f >= 0 && f <= 3, tw, ": factor format ", f, ", expected 0 (f32), 1 (int8), 2 (f16) or 3 (bf16)");
  for (const auto& s : t->sections)
    SPARQ_CHECK(s.name == "a" || s.name == "b" || s.name == "a_scales" || s.name == "b_scales", tw,
                ": unexpected section '", s.name, "'");
  try {
    lowrank::StoredFactor a = get_factor(*t, "a", rows, r, fa);
    lowrank::StoredFactor b = get_factor(*t, "b", r, cols, fb);
    return model::LowRankLinear(std::move(a), std::move(b));
  } catch (const error& e) {
    sparq::detail::fail(tw, " (rank ", r, "): ", e.what());
  }
}

/// The dense equivalent decode(A)·decode(B) of a low-rank op (rows x cols).
[[nodiscard]] inline Matrix<float> lowrank_dense(const model::LowRankLinear& lr) { return lr.dense_weights(); }

/// LinearOp::save's writer for one decoder linear: the op's tensor `name` (or the low-rank one),
/// its metadata "<name>.<key>", "<name>.input_bits" (always; 0 without a wrapper) and, for a
/// CompensatedLinear, tensor "<name>.lorc" with "<name>.lorc_rank" and "<name>.inner_input_bits".
/// The file holds at most [InputQuantLinear] [CompensatedLinear [InputQuantLinear]] around the op.
class ContainerOpWriter final : public model::OpWriter {
 public:
  ContainerOpWriter(Container& ct, std::string name, std::string where, std::string describe, std::size_t rows,
                    std::size_t cols)
      : ct_(ct), name_(std::move(name)), where_(std::move(where)), describe_(std::move(describe)),
        t_{name_, "", {rows, cols}, {}} {
    ct_.metadata[name_ + ".input_bits"] = std::int64_t{0};
  }

  void input_bits(int bits) override {
    if (stage_ == Stage::start) {
      ct_.metadata[name_ + ".input_bits"] = static_cast<std::int64_t>(bits);
      stage_ = Stage::outer_bits;
    } else if (stage_ == Stage::correction) {
      ct_.metadata[name_ + ".inner_input_bits"] = static_cast<std::int64_t>(bits);
      stage_ = Stage::inner_bits;
    } else {
      too_deep();
    }
  }
  void correction(const model::LowRankLinear& c) override {
    if (stage_ != Stage::start && stage_ != Stage::outer_bits) too_deep();
    lorc_.push_back(lowrank_tensor(ct_, name_ + ".lorc", c));
    ct_.metadata[name_ + ".lorc_rank"] = static_cast<std::int64_t>(c.rank());
    ct_.metadata[name_ + ".inner_input_bits"] = std::int64_t{0};
    stage_ = Stage::correction;
    version_ = std::max(version_, 2);
  }
  void low_rank(const model::LowRankLinear& lr) override {
    base();
    t_ = lowrank_tensor(ct_, name_, lr);
    version_ = std::max(version_, 2);
  }
  void format(const std::string& name, int min_version) override {
    base();
    t_.format = name;
    version_ = std::max(version_, min_version);
  }
  void section_bytes(const std::string& name, const void* data, std::size_t bytes) override {
    SPARQ_CHECK(stage_ == Stage::op, where_, ": a section before the op's format");
    t_.add_section(name, static_cast<const std::uint8_t*>(data), bytes);
  }
  void meta(const std::string& key, std::int64_t value) override {
    SPARQ_CHECK(stage_ == Stage::op, where_, ": metadata before the op's format");
    ct_.metadata[name_ + "." + key] = value;
  }

  /// Adds the op's tensor, then its LoRC correction's, to the container; returns the packed-model
  /// version the op needs.
  int finish() {
    SPARQ_CHECK(stage_ == Stage::op, where_, ": '", describe_, "' wrote no format");
    ct_.add(std::move(t_));
    for (auto& t : lorc_) ct_.add(std::move(t));
    return version_;
  }

 private:
  enum class Stage { start, outer_bits, correction, inner_bits, op };
  void base() {
    if (stage_ == Stage::op) sparq::detail::fail(where_, ": '", describe_, "' wrote two formats");
    stage_ = Stage::op;
  }
  [[noreturn]] void too_deep() const {
    sparq::detail::fail(where_, ": '", describe_, "' nests wrappers deeper than the file format holds");
  }

  Container& ct_;
  std::string name_, where_, describe_;
  ContainerTensor t_;
  std::vector<ContainerTensor> lorc_;
  Stage stage_ = Stage::start;
  int version_ = 1;
};

/// A format loader's view of tensor `t` of a parsed container.
class ContainerOpReader final : public model::OpReader {
 public:
  ContainerOpReader(const Container& ct, const ContainerTensor& t, std::string what, std::size_t rows, std::size_t cols,
                    int version, int threads, bool prefer_dense)
      : ct_(ct), t_(t), what_(std::move(what)), rows_(rows), cols_(cols), version_(version), threads_(threads),
        prefer_dense_(prefer_dense) {}

  [[nodiscard]] std::size_t rows() const noexcept override { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept override { return cols_; }
  [[nodiscard]] int file_version() const noexcept override { return version_; }
  [[nodiscard]] int threads() const noexcept override { return threads_; }
  [[nodiscard]] bool prefer_dense() const noexcept override { return prefer_dense_; }
  [[nodiscard]] std::int64_t meta(const std::string& key, std::int64_t lo, std::int64_t hi) const override {
    return static_cast<std::int64_t>(meta_size(ct_, t_.name + "." + key, what_, lo, hi));
  }
  [[nodiscard]] const std::string& tensor_name() const noexcept override { return t_.name; }
  [[nodiscard]] const std::vector<std::uint8_t>* find_section(std::string_view name) const override {
    const ContainerSection* s = t_.find_section(name);
    return s == nullptr ? nullptr : &s->bytes;
  }
  [[nodiscard]] std::vector<std::string> section_names() const override {
    std::vector<std::string> n;
    for (const auto& s : t_.sections) n.push_back(s.name);
    return n;
  }

 private:
  const Container& ct_;
  const ContainerTensor& t_;
  std::string what_;
  std::size_t rows_, cols_;
  int version_, threads_;
  bool prefer_dense_;
};

}  // namespace packed_detail

namespace packed_detail {

/// The "sparq.*", "config.*" and "attention_input_bits" metadata of a packed model (packed_version 1:
/// the caller raises it to what the tensors need).
inline void put_model_metadata(Container& ct, const model::Llama& m) {
  const auto& c = m.config();
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
}

/// Adds the token embedding, final norm and (unshared) classifier; returns the version they need.
inline int put_globals(Container& ct, const model::Llama& m) {
  const auto& c = m.config();
  const auto& w = m.weights();
  int version = put_embedding(ct, "token_embedding", w.token_embedding);
  ct.add_f32("rms_final", {c.dim}, w.rms_final.data());
  if (!c.shared_classifier) version = std::max(version, put_embedding(ct, "classifier", w.classifier));
  return version;
}

/// Adds block b's norms and its seven linears as their ops store them; returns the version they need.
inline int put_block(Container& ct, const model::Llama& m, std::size_t b) {
  using namespace model;
  const auto& c = m.config();
  const auto& w = m.weights();
  int version = 1;
  ct.add_f32(sparq::detail::concat("blocks.", b, ".rms_att"), {c.dim}, w.blocks[b].rms_att.data());
  ct.add_f32(sparq::detail::concat("blocks.", b, ".rms_ffn"), {c.dim}, w.blocks[b].rms_ffn.data());
  for (Linear l : all_linears) {
    const std::string name = linear_tensor_name(b, l);
    const std::string where = sparq::detail::concat("write_packed_model: block ", b, " ", linear_name(l));
    const LinearOp& op = m.linear(b, l);
    ContainerOpWriter writer(ct, name, where, op.describe(), op.out_features(), op.in_features());
    try {
      op.save(writer);
    } catch (const error& e) {
      const std::string msg = e.what();
      if (msg.rfind(where, 0) == 0) throw;
      sparq::detail::fail(where, ": ", msg);
    }
    version = std::max(version, writer.finish());
  }
  return version;
}

}  // namespace packed_detail

/// The SPRQ container of a model (packed ops, low-rank ops, dense linears and the float parts).
/// Throws sparq::error on a linear that is neither dense, nor one of the packed / low-rank ops, nor
/// a CompensatedLinear of those (with at most one InputQuantLinear outside and one inside it).
[[nodiscard]] inline Container packed_model_container(const model::Llama& m) {
  Container ct;
  packed_detail::put_model_metadata(ct, m);
  int version = packed_detail::put_globals(ct, m);
  for (std::size_t b = 0; b < m.config().n_layers; ++b) version = std::max(version, packed_detail::put_block(ct, m, b));
  // The oldest version that holds every op: 1 unless a low-rank op or LoRC correction needs version 2
  // or a bitmask int8 / int4 op version 3 (so older readers keep reading what they can, and refuse
  // what they cannot by its version).
  ct.metadata["sparq.packed_version"] = static_cast<std::int64_t>(version);
  return ct;
}

/// Writes a packed model block by block, for a model compressed by streaming (joint/stream.hpp):
/// add_block(m, b) stores block b's tensors in a spool file beside `path` as soon as the block is
/// final, so its weights can be released; finish(m, extra) adds the float parts (embedding, final
/// norm, classifier), the metadata and `extra` (more metadata, tensors such as the tokenizer after
/// the model's) and writes `path` atomically. The file is byte-identical to write_container(path, ct)
/// of packed_model_container(m) with `extra` merged in, had m held every block at the end. Every
/// section is stored with `encoding` (raw, or an entropy coding where it pays). Nothing is written
/// under `path` unless finish succeeds; the spool is removed with the writer.
class PackedModelStreamWriter {
 public:
  explicit PackedModelStreamWriter(const std::string& path, SectionEncoding encoding = SectionEncoding::raw)
      : path_(path), encoding_(encoding), spool_(path + ".spool-sparq") {}

  /// Spools block b (blocks in order 0, 1, ...).
  void add_block(const model::Llama& m, std::size_t b) {
    SPARQ_CHECK(b == next_, "PackedModelStreamWriter: block ", b, " added, expected block ", next_);
    SPARQ_CHECK(b < m.config().n_layers, "PackedModelStreamWriter: block ", b, ", the model has ", m.config().n_layers);
    Container ct;
    version_ = std::max(version_, packed_detail::put_block(ct, m, b));
    ct.set_encoding(encoding_);
    for (const auto& t : ct.tensors) spool_.add(t);
    for (auto& [k, v] : ct.metadata) metadata_[k] = std::move(v);  // per-linear keys (input bits, ...)
    ++next_;
  }
  [[nodiscard]] std::size_t blocks_added() const noexcept { return next_; }

  /// Writes the file (every block must have been added).
  void finish(const model::Llama& m, const Container& extra = {}) {
    SPARQ_CHECK(next_ == m.config().n_layers, "PackedModelStreamWriter: ", next_, " of ", m.config().n_layers,
                " blocks added; '", path_, "' was not written");
    Container ct;
    ct.metadata = metadata_;
    packed_detail::put_model_metadata(ct, m);
    const int version = std::max(version_, packed_detail::put_globals(ct, m));
    ct.metadata["sparq.packed_version"] = static_cast<std::int64_t>(version);
    const std::size_t at = ct.tensors.size();
    for (const auto& [k, v] : extra.metadata) ct.metadata[k] = v;
    for (const auto& t : extra.tensors) ct.add(t);
    ct.set_encoding(encoding_);
    write_container(path_, ct, spool_, at);
  }

 private:
  std::string path_;
  SectionEncoding encoding_;
  ContainerSpool spool_;
  std::map<std::string, ContainerValue> metadata_;
  int version_ = 1;
  std::size_t next_ = 0;
};

[[nodiscard]] inline std::vector<char> serialize_packed_model(const model::Llama& m) {
  return serialize_container(packed_model_container(m));
}

/// Writes the model (temporary file + rename).
inline void write_packed_model(const std::string& path, const model::Llama& m) {
  write_container(path, packed_model_container(m));
}

/// How a packed model is read back.
struct PackedReadOptions {
  int threads = 1;                ///< kernel threads per op
  /// Keep the float block weights (each linear's base op dequantized: reset_linear works, and so
  /// does further compression); false frees them once the ops are installed
  /// (model::release_float_weights), so the model holds only the packed bytes of its linears.
  bool keep_float_weights = true;
  /// Run the int8 / int4 bitmask linears (packed_bitmask_q8 / _q4) as the dense Q8Linear / Q4Linear
  /// of the same codes: the same outputs bit for bit from the dense kernels, which are 2–4x faster
  /// than the bitmask ones (docs/kernels.md), in dense memory. false keeps them compact in memory
  /// too. The file is compact either way.
  bool dense_bitmask_codes = true;
};

/// Stores `t` in the container (tensor "tokenizer", format "llama2c_tokenizer", one section "bytes"
/// holding the llama2.c tokenizer file; metadata tokenizer.bos_id / tokenizer.eos_id), so that a
/// packed model file carries the vocabulary it was evaluated with. Readers that do not know the
/// tensor ignore it.
inline void add_tokenizer(Container& ct, const model::Tokenizer& t) {
  ContainerTensor tt;
  tt.name = "tokenizer";
  tt.format = "llama2c_tokenizer";
  tt.dims = {t.vocab_size()};
  tt.add_section("bytes", t.llama2c_bytes());
  for (auto it = ct.tensors.begin(); it != ct.tensors.end(); ++it)
    if (it->name == "tokenizer") {
      ct.tensors.erase(it);
      break;
    }
  ct.tensors.push_back(std::move(tt));
  ct.metadata["tokenizer.bos_id"] = static_cast<std::int64_t>(t.bos_id());
  ct.metadata["tokenizer.eos_id"] = static_cast<std::int64_t>(t.eos_id());
}

/// The tokenizer stored by add_tokenizer, or nullopt when the container has none. Throws
/// sparq::error on a malformed one (wrong format, size, special ids).
[[nodiscard]] inline std::optional<model::Tokenizer> container_tokenizer(const Container& ct, const std::string& what) {
  const ContainerTensor* t = nullptr;
  for (const auto& x : ct.tensors)
    if (x.name == "tokenizer") t = &x;
  if (t == nullptr) return std::nullopt;
  SPARQ_CHECK(t->format == "llama2c_tokenizer" && t->dims.size() == 1, what, ": tensor 'tokenizer' has format '",
              t->format, "' with ", t->dims.size(), " dims, expected llama2c_tokenizer [vocab]");
  const ContainerSection* b = t->find_section("bytes");
  SPARQ_CHECK(b != nullptr, what, ": tensor 'tokenizer' has no 'bytes' section");
  SPARQ_CHECK(t->dims[0] >= 3 && t->dims[0] < (1u << 24), what, ": tokenizer vocabulary ", t->dims[0],
              ", expected 3..2^24-1");
  const auto vocab = static_cast<std::size_t>(t->dims[0]);
  model::Tokenizer tok = model::Tokenizer::parse_llama2c(reinterpret_cast<const char*>(b->bytes.data()), b->bytes.size(),
                                                         vocab, what + ": tokenizer");
  const auto bos = packed_detail::meta_size(ct, "tokenizer.bos_id", what, 0, static_cast<std::int64_t>(vocab) - 1);
  const auto eos = packed_detail::meta_size(ct, "tokenizer.eos_id", what, 0, static_cast<std::int64_t>(vocab) - 1);
  if (bos == 1 && eos == 2) return tok;
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (std::size_t i = 0; i < vocab; ++i) {
    pieces.push_back(tok.piece(static_cast<int>(i)));
    scores.push_back(tok.score(static_cast<int>(i)));
  }
  return model::Tokenizer(std::move(pieces), std::move(scores), static_cast<int>(bos), static_cast<int>(eos));
}

/// Rebuilds a runnable Llama from a packed-model container.
[[nodiscard]] inline model::Llama packed_model_from_container(const Container& ct, const std::string& what,
                                                              const PackedReadOptions& ro) {
  using namespace model;
  const int threads = ro.threads;
  SPARQ_CHECK(threads >= 0, what, ": threads = ", threads, ", expected >= 0");
  using packed_detail::meta_size;
  const auto kind = ct.metadata.find("sparq.kind");
  SPARQ_CHECK(kind != ct.metadata.end() && std::holds_alternative<std::string>(kind->second) &&
                  std::get<std::string>(kind->second) == "packed_llama",
              what, ": not a packed sparq model (metadata sparq.kind != packed_llama)");
  const auto ver = packed_detail::meta_int(ct, "sparq.packed_version", what);
  SPARQ_CHECK(ver >= 1 && ver <= 4, what, ": packed model version ", ver, ", expected 1, 2, 3 or 4");
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
  w.token_embedding = packed_detail::embedding_tensor(ct, "token_embedding", c.vocab_size, c.dim, ver, what);
  w.rms_final = packed_detail::f32_tensor(ct, "rms_final", {c.dim}, what);
  if (!c.shared_classifier)
    w.classifier = packed_detail::embedding_tensor(ct, "classifier", c.vocab_size, c.dim, ver, what);
  struct Installed {
    std::size_t b;
    Linear l;
    std::unique_ptr<LinearOp> op;  // null: dense (the model's own view)
    int input_bits;
    std::unique_ptr<LowRankLinear> lorc;  // CompensatedLinear correction (version 2)
    int inner_input_bits = 0;
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
      std::unique_ptr<LinearOp> op;
      std::unique_ptr<LowRankLinear> lorc;
      int inner_bits = 0;
      try {
        if (t->format == "f32") {
          auto v = packed_detail::f32_tensor(ct, name, {rows, cols}, what);
          blk.linear(l) = Matrix<float>(rows, cols);
          std::copy(v.begin(), v.end(), blk.linear(l).data());
        } else if (t->format == "lowrank") {
          SPARQ_CHECK(ver >= 2, "format 'lowrank' needs packed model version 2, the file says ", ver);
          auto lr = std::make_unique<LowRankLinear>(packed_detail::get_lowrank(ct, name, rows, cols, what));
          blk.linear(l) = lr->dense_weights();
          op = std::move(lr);
        } else {
          // every other format: its registered loader (model/linear_formats.hpp)
          const LinearLoader load = find_linear_format(t->format);
          if (load == nullptr) sparq::detail::fail("unknown linear format '", t->format, "'");
          const packed_detail::ContainerOpReader reader(ct, *t, what, rows, cols, static_cast<int>(ver), threads,
                                                        ro.dense_bitmask_codes);
          op = load(reader);
          SPARQ_CHECK(op != nullptr && op->out_features() == rows && op->in_features() == cols, "the loader of format '",
                      t->format, "' returned ", op ? op->describe() : std::string("no op"), ", expected ", rows, "x",
                      cols);
          blk.linear(l) = op->dense_weights();
        }
        // LoRC correction (version 2): metadata T.lorc_rank and tensor T.lorc appear together.
        const bool has_rank = ct.metadata.count(name + ".lorc_rank") != 0;
        const bool has_tensor = ct.find(name + ".lorc") != nullptr;
        SPARQ_CHECK(has_rank == has_tensor, "metadata '", name, ".lorc_rank' is ", has_rank ? "present" : "absent",
                    " but tensor '", name, ".lorc' is ", has_tensor ? "present" : "absent");
        if (has_rank) {
          SPARQ_CHECK(ver >= 2, "a LoRC correction needs packed model version 2, the file says ", ver);
          lorc = std::make_unique<LowRankLinear>(packed_detail::get_lowrank(ct, name + ".lorc", rows, cols, what));
          const std::int64_t want = packed_detail::meta_int(ct, name + ".lorc_rank", what);
          SPARQ_CHECK(want == static_cast<std::int64_t>(lorc->rank()), "metadata '", name, ".lorc_rank' = ", want,
                      " but tensor '", name, ".lorc' has rank ", lorc->rank());
          inner_bits = static_cast<int>(meta_size(ct, name + ".inner_input_bits", what, 0, 16));
          SPARQ_CHECK(inner_bits == 0 || inner_bits >= 2, "inner_input_bits = ", inner_bits, ", expected 0 or 2..16");
        } else {
          SPARQ_CHECK(ct.metadata.count(name + ".inner_input_bits") == 0, "metadata '", name,
                      ".inner_input_bits' without a LoRC correction");
        }
      } catch (const error& e) {
        sparq::detail::fail(tw, ": ", e.what());
      } catch (const std::bad_alloc&) {
        // A low-rank linear's float copy (rows x cols) can be far larger than its factors in the file.
        sparq::detail::fail(tw, ": cannot allocate the ", rows, "x", cols, " float copy of the linear");
      }
      ops.push_back({b, l, std::move(op), in_bits, std::move(lorc), inner_bits});
    }
  }
  Llama model(std::move(w));
  model.set_attention_input_bits(attn_bits);
  for (auto& e : ops) {
    if (e.op == nullptr && e.input_bits == 0 && e.lorc == nullptr) continue;  // dense: the model's own view
    std::unique_ptr<LinearOp> op = e.op ? std::move(e.op) : model.take_linear(e.b, e.l);
    if (e.lorc) {
      if (e.inner_input_bits != 0) op = std::make_unique<InputQuantLinear>(std::move(op), e.inner_input_bits);
      lowrank::Compensation corr;
      corr.a = e.lorc->a();
      corr.b = e.lorc->b();
      op = std::make_unique<CompensatedLinear>(std::move(op), std::move(corr));
    }
    if (e.input_bits != 0) op = std::make_unique<InputQuantLinear>(std::move(op), e.input_bits);
    model.set_linear(e.b, e.l, std::move(op));
  }
  if (!ro.keep_float_weights) (void)release_float_weights(model);
  return model;
}

/// Rebuilds a runnable Llama from a packed-model container. `threads`: kernel threads per op.
[[nodiscard]] inline model::Llama packed_model_from_container(const Container& ct, const std::string& what, int threads = 1) {
  PackedReadOptions ro;
  ro.threads = threads;
  return packed_model_from_container(ct, what, ro);
}

/// Parses a packed model held in memory.
[[nodiscard]] inline model::Llama parse_packed_model(const char* data, std::size_t size,
                                                     const std::string& what = "packed sparq model", int threads = 1) {
  return packed_model_from_container(parse_container(data, size, what), what, threads);
}
[[nodiscard]] inline model::Llama parse_packed_model(const char* data, std::size_t size, const PackedReadOptions& ro,
                                                     const std::string& what = "packed sparq model") {
  return packed_model_from_container(parse_container(data, size, what), what, ro);
}

/// Reads a packed model file written by write_packed_model.
[[nodiscard]] inline model::Llama read_packed_model(const std::string& path, int threads = 1) {
  const std::string what = "packed sparq model '" + path + "'";
  return packed_model_from_container(read_container(path), what, threads);
}
[[nodiscard]] inline model::Llama read_packed_model(const std::string& path, const PackedReadOptions& ro) {
  const std::string what = "packed sparq model '" + path + "'";
  return packed_model_from_container(read_container(path), what, ro);
}

}  // namespace sparq::io
