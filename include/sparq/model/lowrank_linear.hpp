// LowRankLinear (y = A(Bx), a factored layer) and CompensatedLinear (y = Ŵx + A(Bx), any LinearOp plus a LoRC correction).
//
// LowRankLinear holds A (out x r) and B (r x in) as lowrank::StoredFactor (f32, int8, f16 or
// bf16) and runs the two products through the project's GEMV kernels: t = B x (r values), then
// y = A t — r·(in + out) multiply-adds instead of in·out. weight_bytes() is the bytes of both
// factors as stored (StoredFactor::bytes: values plus per-row scales for int8).
// CompensatedLinear wraps any inner LinearOp computing Ŵx (dense, fake-quantized, packed integer,
// sparse, ...) and adds the correction: y = inner(x) + A(Bx). weight_bytes() = inner's bytes +
// the factors' bytes. Both are const and thread-safe (per-call scratch only), as LinearOp requires.
// Both have an SPRQ packed-file format (io/packed_model.hpp, docs/formats.md): the factors are
// written in their own storage type and read back bit-identically; model::pack_model packs the
// inner op of a CompensatedLinear and keeps the correction (pack_model.hpp).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/lowrank/low_rank_compensation.hpp"
#include "sparq/lowrank/low_rank_factors.hpp"
#include "sparq/lowrank/stored_factor.hpp"
#include "sparq/model/input_quant_linear.hpp"
#include "sparq/model/linear_op.hpp"

namespace sparq::model {

class LowRankLinear final : public LinearOp {
 public:
  /// y = A(Bx). Throws sparq::error unless A is out x r and B is r x in with r ≥ 1.
  LowRankLinear(lowrank::StoredFactor a, lowrank::StoredFactor b) : a_(std::move(a)), b_(std::move(b)) {
    SPARQ_CHECK(a_.rows() > 0 && b_.cols() > 0 && a_.cols() > 0 && a_.cols() == b_.rows(),
                "LowRankLinear: A is ", a_.rows(), "x", a_.cols(), " and B is ", b_.rows(), "x", b_.cols(),
                ", expected out x r and r x in with r >= 1");
  }
  /// From float factors (e.g. lowrank::LowRank::apply), stored in `format`.
  explicit LowRankLinear(const lowrank::LowRankFactors& f, lowrank::FactorFormat format = lowrank::FactorFormat::f32)
      : LowRankLinear(lowrank::StoredFactor::encode(f.a.view(), format),
                      lowrank::StoredFactor::encode(f.b.view(), format)) {}
  /// From a LoRC correction (its factors alone).
  explicit LowRankLinear(lowrank::Compensation c) : LowRankLinear(std::move(c.a), std::move(c.b)) {}
  /// Movable (LinearOp is not copyable): lets builders return it by value.
  LowRankLinear(LowRankLinear&& o) noexcept : LinearOp(), a_(std::move(o.a_)), b_(std::move(o.b_)) {}

  [[nodiscard]] std::size_t in_features() const noexcept override { return b_.cols(); }
  [[nodiscard]] std::size_t out_features() const noexcept override { return a_.rows(); }
  [[nodiscard]] std::size_t rank() const noexcept { return a_.cols(); }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override { return a_.bytes() + b_.bytes(); }
  [[nodiscard]] std::string describe() const override {
    return sparq::detail::concat("low-rank ", a_.rows(), "x", b_.cols(), " rank ", rank(), " ",
                                 lowrank::factor_format_name(a_.format()));
  }
  [[nodiscard]] const lowrank::StoredFactor& a() const noexcept { return a_; }
  [[nodiscard]] const lowrank::StoredFactor& b() const noexcept { return b_; }

  void gemv(const float* x, float* y) const override {
    std::vector<float> t(rank());
    b_.gemv(x, t.data());
    a_.gemv(t.data(), y);
  }
  /// Y = X·(AB)ᵀ token by token with one scratch buffer (the factors' GEMV kernels).
  void gemm(MatrixView<const float> X, MatrixView<float> Y) const override {
    std::vector<float> t(rank());
    for (std::size_t r = 0; r < X.rows(); ++r) {
      b_.gemv(X.row(r), t.data());
      a_.gemv(t.data(), Y.row(r));
    }
  }
  /// y += A(Bx) (scratch: t of rank() and tmp of out_features() floats, supplied by the caller).
  void gemv_add(const float* x, float* y, float* t, float* tmp) const noexcept {
    b_.gemv(x, t);
    a_.gemv(t, tmp);
    for (std::size_t i = 0; i < out_features(); ++i) y[i] += tmp[i];
  }

  /// Already in its storage format: pack_model keeps it.
  [[nodiscard]] std::unique_ptr<LinearOp> pack(const OpPacker&, int, bool) const override { return nullptr; }
  void save(OpWriter& w) const override { w.low_rank(*this); }
  /// decode(A)·decode(B).
  [[nodiscard]] Matrix<float> dense_weights() const override {
    Matrix<float> w(out_features(), in_features(), 0.0f);
    lowrank::Compensation c;
    c.a = a_;
    c.b = b_;
    c.add_to(w.view());
    return w;
  }
  /// The product of the factors (the model's float copy is not this op's weight).
  void export_weights(Matrix<float>& w, std::string& source) const override {
    w = dense_weights();
    source = "low-rank A*B r" + std::to_string(rank());
  }

 private:
  lowrank::StoredFactor a_, b_;
};

class CompensatedLinear final : public LinearOp {
 public:
  /// y = inner(x) + A(Bx). Throws sparq::error on a null inner op or factor shapes that differ
  /// from the inner op's.
  CompensatedLinear(std::unique_ptr<LinearOp> inner, lowrank::Compensation c)
      : inner_(std::move(inner)), corr_(std::move(c.a), std::move(c.b)) {
    SPARQ_CHECK(inner_ != nullptr, "CompensatedLinear: null inner LinearOp");
    SPARQ_CHECK(corr_.out_features() == inner_->out_features() && corr_.in_features() == inner_->in_features(),
                "CompensatedLinear: correction is ", corr_.out_features(), "x", corr_.in_features(),
                " but the inner op is ", inner_->out_features(), "x", inner_->in_features());
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return inner_->in_features(); }
  [[nodiscard]] std::size_t out_features() const noexcept override { return inner_->out_features(); }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override {
    return inner_->weight_bytes() + corr_.weight_bytes();
  }
  [[nodiscard]] std::string describe() const override {
    return sparq::detail::concat(inner_->describe(), " + ", corr_.describe());
  }
  [[nodiscard]] const LinearOp& inner() const noexcept { return *inner_; }
  [[nodiscard]] const LowRankLinear& correction() const noexcept { return corr_; }
  /// A copy of the stored correction (its factors; whitening is not recorded by the op: identity).
  [[nodiscard]] lowrank::Compensation compensation() const {
    lowrank::Compensation c;
    c.a = corr_.a();
    c.b = corr_.b();
    return c;
  }

  void gemv(const float* x, float* y) const override {
    inner_->gemv(x, y);
    std::vector<float> t(corr_.rank()), tmp(out_features());
    corr_.gemv_add(x, y, t.data(), tmp.data());
  }
  void gemm(MatrixView<const float> X, MatrixView<float> Y) const override {
    inner_->gemm(X, Y);
    std::vector<float> t(corr_.rank()), tmp(out_features());
    for (std::size_t r = 0; r < X.rows(); ++r) corr_.gemv_add(X.row(r), Y.row(r), t.data(), tmp.data());
  }

  /// The inner op packed (the correction kept as it is, `input_bits` as a wrapper around both), or
  /// nullptr when the inner op is already in its storage format. A CompensatedLinear inside
  /// another is refused.
  [[nodiscard]] std::unique_ptr<LinearOp> pack(const OpPacker& p, int input_bits, bool inside_correction) const override {
    if (inside_correction) return LinearOp::pack(p, input_bits, inside_correction);
    std::unique_ptr<LinearOp> in = inner_->pack(p, 0, true);
    if (in == nullptr) return nullptr;
    std::unique_ptr<LinearOp> out = std::make_unique<CompensatedLinear>(std::move(in), compensation());
    if (input_bits != 0) out = std::make_unique<InputQuantLinear>(std::move(out), input_bits);
    return out;
  }
  void save(OpWriter& w) const override {
    w.correction(corr_);
    inner_->save(w);
  }
  /// The inner op's weight plus decode(A)·decode(B), added in float.
  [[nodiscard]] Matrix<float> dense_weights() const override {
    Matrix<float> w = inner_->dense_weights();
    add_correction(w);
    return w;
  }
  void export_weights(Matrix<float>& w, std::string& source) const override {
    inner_->export_weights(w, source);
    add_correction(w);
    source = "weights + LoRC r" + std::to_string(corr_.rank());
  }
  [[nodiscard]] int activation_bits() const noexcept override { return inner_->activation_bits(); }
  [[nodiscard]] bool reads_float_view() const noexcept override { return inner_->reads_float_view(); }
  [[nodiscard]] std::size_t owned_weight_bytes() const noexcept override {
    return inner_->owned_weight_bytes() + corr_.weight_bytes();
  }

 private:
  void add_correction(Matrix<float>& w) const {
    const Matrix<float> ab = corr_.dense_weights();
    SPARQ_CHECK(ab.rows() == w.rows() && ab.cols() == w.cols(), "CompensatedLinear: correction ", ab.rows(), "x",
                ab.cols(), " for a ", w.rows(), "x", w.cols(), " weight");
    for (std::size_t i = 0; i < w.size(); ++i) w.data()[i] += ab.data()[i];
  }

  std::unique_ptr<LinearOp> inner_;
  LowRankLinear corr_;
};

}  // namespace sparq::model
