// BitmaskQ8Linear: a LinearOp over unstructured-sparse int8 per-channel weights (bitmask + kept codes + row scales).
//
// Layout (kernels/gemv_bitmask_q.hpp, docs/formats.md "Bitmask sparse int8"): per row ⌈cols/8⌉ mask
// bytes, bit c%8 of byte c/8 set when column c is kept (no bits past cols); the kept codes
// q ∈ [−127, 127] of all rows in row-major column order; one positive finite scale per row. The row
// offsets the kernels take (row k's codes are codes[off[k] .. off[k+1])) follow from the mask
// popcounts: the op computes them (8 bytes per row in memory) and neither counts nor stores them.
// W[k][c] = scale[k]·q for a kept column, 0 otherwise — the weights of a Q8Linear whose codes are 0
// at the cleared bits, and the op computes exactly what that Q8Linear computes:
//   A32:  y[k] = scale[k]·Σ float(q)·x   (gemv_bitmask_q8_f32: gemv_q8_f32's order, bit-identical)
//   A8:   (q_x, Δ) = quantize_token_int8(x), y[k] = Δ·scale[k]·Σ q·q_x, the sum exact in int32
//         (gemv_bitmask_q8_a8: gemv_q8_a8's float expression, bit-identical)
// Storage = mask bits + 1 byte per kept code + 4 bytes per row scale, so it is smaller than the
// dense int8 op (rows·cols + 4·rows) once more than 1/8 of the weights are zero (docs/model.md). gemm runs the GEMV token by token (results equal Q8Linear's
// gemm, whose rows equal its GEMV bit for bit). Scratch: A8 uses packed_scratch (cols int8).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemv_bitmask_q.hpp"
#include "sparq/model/packed_linear.hpp"
#include "sparq/model/q8_linear.hpp"
#include "sparq/quant/quantized_tensor.hpp"

namespace sparq::model {

class BitmaskQ8Linear final : public PackedLinear {
 public:
  /// From raw arrays. Throws sparq::error on an empty shape, cols > 131072, wrong sizes (the codes
  /// must be exactly the mask's popcount), mask bits past cols, a code −128 or a scale that is not
  /// positive and finite.
  BitmaskQ8Linear(std::size_t rows, std::size_t cols, std::vector<std::uint8_t> mask, std::vector<std::int8_t> codes,
                  std::vector<float> scales, ActivationMode act, int threads = 1)
      : rows_(rows), cols_(cols), mask_(std::move(mask)), q_(std::move(codes)), s_(std::move(scales)), act_(act),
        threads_(threads) {
    SPARQ_CHECK(rows_ > 0 && cols_ > 0, "BitmaskQ8Linear: empty shape ", rows_, "x", cols_);
    SPARQ_CHECK(cols_ <= 131072, "BitmaskQ8Linear: cols = ", cols_, ", expected at most 131072 (exact int32 sums)");
    SPARQ_CHECK(threads_ >= 0, "BitmaskQ8Linear: threads = ", threads_, ", expected >= 0");
    const std::size_t mb = (cols_ + 7) / 8;
    SPARQ_CHECK(mask_.size() == rows_ * mb, "BitmaskQ8Linear: ", mask_.size(), " mask bytes, expected rows·⌈cols/8⌉ = ",
                rows_ * mb);
    SPARQ_CHECK(s_.size() == rows_, "BitmaskQ8Linear: ", s_.size(), " scales, expected one per row = ", rows_);
    off_.resize(rows_ + 1, 0);
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t n = 0;
      for (std::size_t b = 0; b < mb; ++b) n += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(mask_[k * mb + b])));
      if (cols_ % 8 != 0) {
        SPARQ_CHECK((mask_[k * mb + mb - 1] >> (cols_ % 8)) == 0, "BitmaskQ8Linear: row ", k, " has mask bits past column ",
                    cols_, " (last mask byte ", static_cast<unsigned>(mask_[k * mb + mb - 1]), ")");
      }
      off_[k + 1] = off_[k] + n;
    }
    SPARQ_CHECK(q_.size() == off_[rows_], "BitmaskQ8Linear: ", q_.size(), " codes, the mask keeps ", off_[rows_]);
    for (std::size_t k = 0; k < rows_; ++k) {
      for (std::size_t i = off_[k]; i < off_[k + 1]; ++i) {
        SPARQ_CHECK(q_[i] != -128, "BitmaskQ8Linear: code -128 (kept value ", i - off_[k], " of row ", k,
                    "), expected [-127, 127] (the int8 kernels need |q| <= 127)");
      }
      SPARQ_CHECK(std::isfinite(s_[k]) && s_[k] > 0.0f, "BitmaskQ8Linear: scale[", k, "] = ", s_[k],
                  ", expected a positive finite value");
    }
  }

  /// From an 8-bit symmetric per-channel QuantizedTensor (as Q8Linear::from_quantized): the zero
  /// codes are the cleared bits, the others are kept. Throws sparq::error on any other configuration.
  [[nodiscard]] static BitmaskQ8Linear from_quantized(const QuantizedTensor& t, ActivationMode act, int threads = 1) {
    SPARQ_CHECK(t.bits() == 8 && t.scheme() == SchemeKind::symmetric, "BitmaskQ8Linear: needs 8-bit symmetric codes, got ",
                t.bits(), "-bit ", scheme_name(t.scheme()));
    SPARQ_CHECK(t.config().granularity == GranularityKind::per_channel, "BitmaskQ8Linear: needs per-channel scales, got per-",
                granularity_name(t.config().granularity));
    const std::size_t rows = t.rows(), cols = t.cols(), mb = (cols + 7) / 8;
    SPARQ_CHECK(rows > 0 && cols > 0, "BitmaskQ8Linear: empty ", rows, "x", cols, " tensor");
    const auto c = t.int8_codes();
    std::vector<std::uint8_t> mask(rows * mb, 0);
    std::vector<std::int8_t> kept;
    for (std::size_t k = 0; k < rows; ++k) {
      for (std::size_t j = 0; j < cols; ++j) {
        const std::int8_t q = c[k * cols + j];
        if (q == 0) continue;
        mask[k * mb + j / 8] = static_cast<std::uint8_t>(mask[k * mb + j / 8] | (1u << (j % 8)));
        kept.push_back(q);
      }
    }
    return BitmaskQ8Linear(rows, cols, std::move(mask), std::move(kept), t.params().scales, act, threads);
  }

  /// Bytes of the op for a rows x cols matrix keeping `kept` codes (what weight_bytes() returns and
  /// the SPRQ file stores: mask, codes, scales), to compare with the dense int8 op's rows·cols + 4·rows.
  [[nodiscard]] static constexpr std::size_t bytes_for(std::size_t rows, std::size_t cols, std::size_t kept) noexcept {
    return rows * ((cols + 7) / 8) + kept + rows * sizeof(float);
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return cols_; }
  [[nodiscard]] std::size_t out_features() const noexcept override { return rows_; }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override { return bytes_for(rows_, cols_, q_.size()); }
  [[nodiscard]] std::string describe() const override {
    const double density = static_cast<double>(q_.size()) / (static_cast<double>(rows_) * static_cast<double>(cols_));
    return sparq::detail::concat("bitmask int8 per-channel (", static_cast<int>(100.0 * (1.0 - density) + 0.5),
                                 "% sparse) ", activation_mode_name(act_), " ", rows_, "x", cols_);
  }
  [[nodiscard]] ActivationMode activations() const noexcept override { return act_; }
  [[nodiscard]] int threads() const noexcept override { return threads_; }

  [[nodiscard]] const std::vector<std::uint8_t>& mask() const noexcept { return mask_; }
  [[nodiscard]] const std::vector<std::int8_t>& codes() const noexcept { return q_; }
  [[nodiscard]] const std::vector<float>& scales() const noexcept { return s_; }
  /// Row k's codes are codes()[row_offsets()[k] .. row_offsets()[k+1]) (derived from the mask).
  [[nodiscard]] const std::vector<std::size_t>& row_offsets() const noexcept { return off_; }

  /// The equivalent dense Q8Linear (codes 0 at the cleared bits): the same outputs bit for bit from
  /// the dense kernels, which run faster than the bitmask ones (docs/kernels.md) in more memory.
  [[nodiscard]] Q8Linear to_q8() const {
    std::vector<std::int8_t> dense(rows_ * cols_, 0);
    const std::size_t mb = (cols_ + 7) / 8;
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t i = off_[k];
      for (std::size_t c = 0; c < cols_; ++c)
        if ((mask_[k * mb + c / 8] >> (c % 8)) & 1u) dense[k * cols_ + c] = q_[i++];
    }
    return Q8Linear(rows_, cols_, std::move(dense), s_, act_, threads_);
  }

  /// scale[k]·q at the kept columns, 0 elsewhere (exactly Q8Linear's dequantize of the dense codes).
  [[nodiscard]] Matrix<float> dequantize() const override {
    Matrix<float> w(rows_, cols_, 0.0f);
    const std::size_t mb = (cols_ + 7) / 8;
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t i = off_[k];
      for (std::size_t c = 0; c < cols_; ++c)
        if ((mask_[k * mb + c / 8] >> (c % 8)) & 1u) w(k, c) = s_[k] * static_cast<float>(q_[i++]);
    }
    return w;
  }

  void gemv(const float* x, float* y) const override {
    if (act_ == ActivationMode::a32) {
      kernels::gemv_bitmask_q8_f32(mask_.data(), q_.data(), off_.data(), s_.data(), rows_, cols_, x, y, threads_);
      return;
    }
    auto* qx = reinterpret_cast<std::int8_t*>(packed_scratch(cols_));
    const float dx = quantize_token_int8(x, cols_, qx);
    kernels::gemv_bitmask_q8_a8(mask_.data(), q_.data(), off_.data(), s_.data(), rows_, cols_, qx, dx, y, threads_);
  }

  /// Format "packed_bitmask_q8" (packed model version 3): sections mask, codes (the kept int8
  /// codes) and scales; metadata act. Loads as the dense Q8Linear of the same codes when the
  /// reader prefers dense ops (the same outputs, bit for bit).
  void save(OpWriter& w) const override {
    w.format("packed_bitmask_q8", 3);
    w.section("mask", mask());
    w.section("codes", codes());
    w.section("scales", scales());
    save_activations(w);
  }
  [[nodiscard]] static std::unique_ptr<LinearOp> load(const OpReader& r) {
    r.require_version(3, "packed_bitmask_q8");
    r.only_sections({"mask", "codes", "scales"}, "packed_bitmask_q8");
    const ActivationMode act = load_activations(r);
    BitmaskQ8Linear bq(r.rows(), r.cols(), r.section<std::uint8_t>("mask"), r.section<std::int8_t>("codes"),
                       r.section<float>("scales"), act, r.threads());
    if (r.prefer_dense()) return std::make_unique<Q8Linear>(bq.to_q8());
    return std::make_unique<BitmaskQ8Linear>(std::move(bq));
  }

 private:
  std::size_t rows_, cols_;
  std::vector<std::uint8_t> mask_;
  std::vector<std::int8_t> q_;
  std::vector<std::size_t> off_;
  std::vector<float> s_;
  ActivationMode act_;
  int threads_;
};

}  // namespace sparq::model
