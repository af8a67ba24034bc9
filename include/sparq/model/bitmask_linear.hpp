// BitmaskLinear: a LinearOp over unstructured-sparse float weights (bitmask + kept values) through gemv_bitmask_f32.
//
// Layout (kernels/gemv_bitmask.hpp): per row ⌈cols/8⌉ mask bytes, bit c%8 of byte c/8 set when
// W[k][c] is kept; the kept values of all rows in row-major column order; row_offsets[rows + 1]
// (row k's values are values[row_offsets[k] .. row_offsets[k+1])). y[k] = Σ_{c kept} W[k][c]·x[c].
// Storage = mask bits + 4 bytes per kept value + 8 bytes per row offset, so it beats dense f32 above
// ~3 % sparsity and int8 only at very high sparsity. Exact zeros are not stored (a kept value is a
// non-zero weight). Activations: A32 (x as is) or A8 (x quantized per token with
// quantize_token_int8 and fed as the exact floats q·Δ, as InputQuantLinear(…, 8) would).
// Scratch: A8 uses packed_scratch (cols floats + cols int8, thread-local).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemv_bitmask.hpp"
#include "sparq/model/packed_linear.hpp"

namespace sparq::model {

class BitmaskLinear final : public PackedLinear {
 public:
  /// From raw arrays (validated: sizes, offsets consistent with the mask popcounts, finite values).
  BitmaskLinear(std::size_t rows, std::size_t cols, std::vector<std::uint8_t> mask, std::vector<float> values,
                std::vector<std::uint64_t> row_offsets, ActivationMode act, int threads = 1)
      : rows_(rows), cols_(cols), mask_(std::move(mask)), v_(std::move(values)), act_(act), threads_(threads) {
    SPARQ_CHECK(rows_ > 0 && cols_ > 0, "BitmaskLinear: empty shape ", rows_, "x", cols_);
    SPARQ_CHECK(threads_ >= 0, "BitmaskLinear: threads = ", threads_, ", expected >= 0");
    const std::size_t mb = (cols_ + 7) / 8;
    SPARQ_CHECK(mask_.size() == rows_ * mb, "BitmaskLinear: ", mask_.size(), " mask bytes, expected ", rows_ * mb);
    SPARQ_CHECK(row_offsets.size() == rows_ + 1 && row_offsets[0] == 0, "BitmaskLinear: ", row_offsets.size(),
                " row offsets (first ", row_offsets.empty() ? 0 : row_offsets[0], "), expected rows + 1 = ", rows_ + 1,
                " starting at 0");
    off_.resize(rows_ + 1, 0);
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t n = 0;
      for (std::size_t b = 0; b < mb; ++b) n += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(mask_[k * mb + b])));
      if (cols_ % 8 != 0)
        SPARQ_CHECK((mask_[k * mb + mb - 1] >> (cols_ % 8)) == 0, "BitmaskLinear: row ", k, " has mask bits past column ", cols_);
      off_[k + 1] = off_[k] + n;
      SPARQ_CHECK(row_offsets[k + 1] == off_[k + 1], "BitmaskLinear: row_offsets[", k + 1, "] = ", row_offsets[k + 1],
                  ", the mask says ", off_[k + 1]);
    }
    SPARQ_CHECK(v_.size() == off_[rows_], "BitmaskLinear: ", v_.size(), " values, the mask keeps ", off_[rows_]);
    for (std::size_t i = 0; i < v_.size(); ++i)
      SPARQ_CHECK(std::isfinite(v_[i]), "BitmaskLinear: value ", i, " is ", v_[i], ", expected finite");
  }

  /// Keeps the non-zeros of w ([out x in]).
  [[nodiscard]] static BitmaskLinear from_dense(MatrixView<const float> w, ActivationMode act, int threads = 1) {
    SPARQ_CHECK(!w.empty(), "BitmaskLinear: empty ", w.rows(), "x", w.cols(), " matrix");
    const std::size_t mb = (w.cols() + 7) / 8;
    std::vector<std::uint8_t> mask(w.rows() * mb, 0);
    std::vector<float> values;
    std::vector<std::uint64_t> off(w.rows() + 1, 0);
    for (std::size_t k = 0; k < w.rows(); ++k) {
      for (std::size_t c = 0; c < w.cols(); ++c) {
        if (w(k, c) == 0.0f) continue;
        mask[k * mb + c / 8] = static_cast<std::uint8_t>(mask[k * mb + c / 8] | (1u << (c % 8)));
        values.push_back(w(k, c));
      }
      off[k + 1] = values.size();
    }
    return BitmaskLinear(w.rows(), w.cols(), std::move(mask), std::move(values), std::move(off), act, threads);
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return cols_; }
  [[nodiscard]] std::size_t out_features() const noexcept override { return rows_; }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override {
    return mask_.size() + v_.size() * sizeof(float) + off_.size() * sizeof(std::uint64_t);
  }
  [[nodiscard]] std::string describe() const override {
    const double density = static_cast<double>(v_.size()) / (static_cast<double>(rows_) * static_cast<double>(cols_));
    return sparq::detail::concat("bitmask f32 (", static_cast<int>(100.0 * (1.0 - density) + 0.5), "% sparse) ",
                                 activation_mode_name(act_), " ", rows_, "x", cols_);
  }
  [[nodiscard]] ActivationMode activations() const noexcept override { return act_; }
  [[nodiscard]] int threads() const noexcept override { return threads_; }

  [[nodiscard]] const std::vector<std::uint8_t>& mask() const noexcept { return mask_; }
  [[nodiscard]] const std::vector<float>& values() const noexcept { return v_; }
  [[nodiscard]] std::vector<std::uint64_t> row_offsets() const { return {off_.begin(), off_.end()}; }

  [[nodiscard]] Matrix<float> dequantize() const override {
    Matrix<float> w(rows_, cols_, 0.0f);
    const std::size_t mb = (cols_ + 7) / 8;
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t i = off_[k];
      for (std::size_t c = 0; c < cols_; ++c)
        if ((mask_[k * mb + c / 8] >> (c % 8)) & 1u) w(k, c) = v_[i++];
    }
    return w;
  }

  void gemv(const float* x, float* y) const override {
    const float* xin = x;
    if (act_ == ActivationMode::a8) {
      const std::size_t fb = packed_align64(cols_ * sizeof(float));
      unsigned char* buf = packed_scratch(fb + cols_);
      auto* xp = reinterpret_cast<float*>(buf);
      auto* q = reinterpret_cast<std::int8_t*>(buf + fb);
      const float d = quantize_token_int8(x, cols_, q);
      for (std::size_t j = 0; j < cols_; ++j) xp[j] = static_cast<float>(q[j]) * d;
      xin = xp;
    }
    kernels::gemv_bitmask_f32(mask_.data(), v_.data(), off_.data(), rows_, cols_, xin, y, threads_);
  }

  /// Format "packed_bitmask": sections mask, values (f32) and row_offsets; metadata act.
  void save(OpWriter& w) const override {
    w.format("packed_bitmask", 1);
    w.section("mask", mask());
    w.section("values", values());
    w.section("row_offsets", row_offsets());
    save_activations(w);
  }
  [[nodiscard]] static std::unique_ptr<LinearOp> load(const OpReader& r) {
    const ActivationMode act = load_activations(r);
    return std::make_unique<BitmaskLinear>(r.rows(), r.cols(), r.section<std::uint8_t>("mask"), r.section<float>("values"),
                                           r.section<std::uint64_t>("row_offsets"), act, r.threads());
  }

 private:
  std::size_t rows_, cols_;
  std::vector<std::uint8_t> mask_;
  std::vector<float> v_;
  std::vector<std::size_t> off_;
  ActivationMode act_;
  int threads_;
};

}  // namespace sparq::model
