// BitmaskQ4Linear: a LinearOp over unstructured-sparse int4 per-group weights (bitmask + kept codes
// as nibbles + per-group scales, symmetric or asymmetric).
//
// Layout (kernels/gemv_bitmask_q.hpp, docs/formats.md "Bitmask sparse int4"): the matrix of a
// Q4Linear (G ∈ {32, 64, 128}, rows padded to cols_p = ⌈cols/G⌉·G) with its zero weights (u = z)
// left out: per row cols_p/8 mask bytes, bit c%8 of byte c/8 set when column c is kept (no bits at
// or past cols); the kept codes u ∈ [0, 15] of each row as nibbles in column order (even kept index
// in the low nibble), each row starting at a byte boundary (⌈n_k/2⌉ bytes, an odd row's last high
// nibble 0); per row and group a positive finite float scale and, asymmetric, a uint8 zero z ≤ 15
// (symmetric: z = 8). The byte offsets of the rows follow from the mask popcounts: the op computes
// them (8 bytes per row in memory) and neither counts nor stores them.
// W[k][c] = s[k][g]·(u − z[k][g]) for a kept column, 0 otherwise — the weights of the Q4Linear whose
// codes are z at the cleared bits, and the op computes exactly what that Q4Linear computes (both
// activation modes, same padding of the input; gemv_bitmask_q4_f32 / _a8 equal gemv_q4_f32 / _a8 on
// the dense codes bit for bit). gemm runs the GEMV token by token (equal to Q4Linear's gemm, whose
// rows equal its GEMV bit for bit).
// Storage = mask bits + 4 bits per kept code (rounded up to a byte per row) + the scales (+ zeros):
// smaller than the dense int4 op (4 bits per weight + the same scales) once more than about 1/4 of
// the weights are zero (docs/model.md).
#pragma once

#include <algorithm>
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
#include "sparq/kernels/gemv_common.hpp"
#include "sparq/model/packed_linear.hpp"
#include "sparq/model/q4_linear.hpp"
#include "sparq/quant/quantized_tensor.hpp"

namespace sparq::model {

class BitmaskQ4Linear final : public PackedLinear {
 public:
  /// From raw arrays (cols_p = ⌈cols/G⌉·G): mask rows·cols_p/8 bytes, codes exactly the kept
  /// nibbles of every row (⌈n_k/2⌉ bytes per row), scales rows·cols_p/G, zeros empty (symmetric) or
  /// one per scale. Throws sparq::error on an empty shape, a group other than 32/64/128, wrong
  /// sizes, mask bits at or past cols, a non-zero padding nibble, a zero point above 15 or a scale
  /// that is not positive and finite.
  BitmaskQ4Linear(std::size_t rows, std::size_t cols, std::size_t group, std::vector<std::uint8_t> mask,
                  std::vector<std::uint8_t> codes, std::vector<float> scales, std::vector<std::uint8_t> zeros,
                  ActivationMode act, int threads = 1)
      : rows_(rows), cols_(cols), g_(group), mask_(std::move(mask)), codes_(std::move(codes)), s_(std::move(scales)),
        z_(std::move(zeros)), act_(act), threads_(threads) {
    SPARQ_CHECK(rows_ > 0 && cols_ > 0, "BitmaskQ4Linear: empty shape ", rows_, "x", cols_);
    SPARQ_CHECK(g_ == 32 || g_ == 64 || g_ == 128, "BitmaskQ4Linear: group size G = ", g_, ", expected 32, 64 or 128");
    SPARQ_CHECK(threads_ >= 0, "BitmaskQ4Linear: threads = ", threads_, ", expected >= 0");
    cols_p_ = (cols_ + g_ - 1) / g_ * g_;
    const std::size_t mb = cols_p_ / 8, ng = cols_p_ / g_;
    SPARQ_CHECK(mask_.size() == rows_ * mb, "BitmaskQ4Linear: ", mask_.size(), " mask bytes, expected rows·cols_p/8 = ",
                rows_ * mb, " (cols_p = ", cols_p_, ")");
    SPARQ_CHECK(s_.size() == rows_ * ng, "BitmaskQ4Linear: ", s_.size(), " scales, expected rows·cols_p/G = ", rows_ * ng);
    SPARQ_CHECK(z_.empty() || z_.size() == s_.size(), "BitmaskQ4Linear: ", z_.size(), " zero points, expected 0 or ",
                s_.size());
    for (std::size_t i = 0; i < s_.size(); ++i) {
      SPARQ_CHECK(std::isfinite(s_[i]) && s_[i] > 0.0f, "BitmaskQ4Linear: scale[", i, "] = ", s_[i],
                  ", expected a positive finite value");
      SPARQ_CHECK(z_.empty() || z_[i] <= 15, "BitmaskQ4Linear: zero[", i, "] = ", int(z_[i]), ", expected 0..15");
    }
    off_.resize(rows_ + 1, 0);
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t n = 0;
      for (std::size_t b = 0; b < mb; ++b) n += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(mask_[k * mb + b])));
      for (std::size_t j = cols_; j < cols_p_; ++j) {
        SPARQ_CHECK(((mask_[k * mb + j / 8] >> (j % 8)) & 1u) == 0, "BitmaskQ4Linear: row ", k,
                    " has a mask bit at padding column ", j, ", expected none at or past cols = ", cols_);
      }
      kept_ += n;
      off_[k + 1] = off_[k] + (n + 1) / 2;
    }
    SPARQ_CHECK(codes_.size() == off_[rows_], "BitmaskQ4Linear: ", codes_.size(), " code bytes, the mask keeps ", kept_,
                " codes in ", off_[rows_], " bytes (⌈kept/2⌉ per row)");
    for (std::size_t k = 0; k < rows_; ++k) {
      const std::size_t n = row_kept(k);
      if (n % 2 == 1) {
        SPARQ_CHECK((codes_[off_[k + 1] - 1] >> 4) == 0, "BitmaskQ4Linear: row ", k, " keeps ", n,
                    " codes, its padding nibble is ", codes_[off_[k + 1] - 1] >> 4, ", expected 0");
      }
    }
    // Per-channel: every group of every row repeats the row's scale and zero (ng > 1), as Q4Linear.
    per_channel_ = ng > 1;
    for (std::size_t k = 0; k < rows_ && per_channel_; ++k)
      for (std::size_t g = 1; g < ng && per_channel_; ++g)
        per_channel_ = s_[k * ng + g] == s_[k * ng] && zero(k, g) == zero(k, 0);
  }

  /// From a dense Q4Linear: its zero weights (u = z, padding included) become cleared bits, the
  /// other codes are kept. Same group, scales, zeros, shape.
  [[nodiscard]] static BitmaskQ4Linear from_q4(const Q4Linear& q, ActivationMode act, int threads = 1) {
    const std::size_t rows = q.out_features(), cols = q.in_features(), cp = q.padded_cols(), mb = cp / 8;
    std::vector<std::uint8_t> mask(rows * mb, 0), codes;
    for (std::size_t k = 0; k < rows; ++k) {
      std::size_t n = 0;
      for (std::size_t j = 0; j < cp; ++j) {
        const unsigned u = q.code(k, j);
        if (u == q.zero(k, j / q.group_size())) continue;
        mask[k * mb + j / 8] = static_cast<std::uint8_t>(mask[k * mb + j / 8] | (1u << (j % 8)));
        if (n % 2 == 0) codes.push_back(static_cast<std::uint8_t>(u));
        else codes.back() = static_cast<std::uint8_t>(codes.back() | (u << 4));
        ++n;
      }
    }
    return BitmaskQ4Linear(rows, cols, q.group_size(), std::move(mask), std::move(codes), q.scales(), q.zeros(), act,
                           threads);
  }

  /// From a 4-bit QuantizedTensor exactly as Q4Linear::from_quantized (symmetric or asymmetric,
  /// per-group G ∈ {32, 64, 128} or per-channel), the zero weights becoming cleared bits.
  [[nodiscard]] static BitmaskQ4Linear from_quantized(const QuantizedTensor& t, ActivationMode act, int threads = 1) {
    return from_q4(Q4Linear::from_quantized(t, act, threads), act, threads);
  }

  /// Bytes of the op for a rows x cols matrix with group G whose rows' kept nibbles take
  /// `code_bytes` bytes (Σ⌈n_k/2⌉): mask, codes, scales, zeros — what weight_bytes() returns and the
  /// SPRQ file stores, to compare with Q4Linear::weight_bytes() (rows·cols_p/2 + the same scales and zeros).
  [[nodiscard]] static constexpr std::size_t bytes_for(std::size_t rows, std::size_t cols, std::size_t group,
                                                       std::size_t code_bytes, bool asymmetric) noexcept {
    const std::size_t cp = (cols + group - 1) / group * group;
    return rows * (cp / 8) + code_bytes + rows * (cp / group) * (sizeof(float) + (asymmetric ? 1 : 0));
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return cols_; }
  [[nodiscard]] std::size_t out_features() const noexcept override { return rows_; }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override {
    return mask_.size() + codes_.size() + s_.size() * sizeof(float) + z_.size();
  }
  [[nodiscard]] std::string describe() const override {
    const double density = static_cast<double>(kept_) / (static_cast<double>(rows_) * static_cast<double>(cols_));
    return sparq::detail::concat(
        "bitmask int4 ", per_channel_ ? sparq::detail::concat("per-channel (g", g_, " layout)") : sparq::detail::concat("g", g_),
        z_.empty() ? " sym (" : " asym (", static_cast<int>(100.0 * (1.0 - density) + 0.5), "% sparse) ",
        activation_mode_name(act_), " ", rows_, "x", cols_,
        cols_p_ != cols_ ? sparq::detail::concat(" (padded to ", cols_p_, ")") : "");
  }
  [[nodiscard]] ActivationMode activations() const noexcept override { return act_; }
  [[nodiscard]] int threads() const noexcept override { return threads_; }

  [[nodiscard]] std::size_t group_size() const noexcept { return g_; }
  [[nodiscard]] std::size_t padded_cols() const noexcept { return cols_p_; }
  [[nodiscard]] bool asymmetric() const noexcept { return !z_.empty(); }
  [[nodiscard]] bool per_channel() const noexcept { return per_channel_; }
  /// Number of kept codes (set mask bits).
  [[nodiscard]] std::size_t kept() const noexcept { return kept_; }
  [[nodiscard]] const std::vector<std::uint8_t>& mask() const noexcept { return mask_; }
  [[nodiscard]] const std::vector<std::uint8_t>& codes() const noexcept { return codes_; }
  [[nodiscard]] const std::vector<float>& scales() const noexcept { return s_; }
  [[nodiscard]] const std::vector<std::uint8_t>& zeros() const noexcept { return z_; }
  /// Row k's kept nibbles are in codes()[row_offsets()[k] .. row_offsets()[k+1]) (derived from the mask).
  [[nodiscard]] const std::vector<std::size_t>& row_offsets() const noexcept { return off_; }
  /// Zero point of group g of row k (8 when symmetric).
  [[nodiscard]] unsigned zero(std::size_t k, std::size_t g) const noexcept {
    return z_.empty() ? 8u : z_[k * (cols_p_ / g_) + g];
  }

  /// The equivalent dense Q4Linear (codes z at the cleared bits).
  [[nodiscard]] Q4Linear to_q4() const {
    std::vector<std::uint8_t> dense(rows_ * cols_p_ / 2, 0);
    const std::size_t mb = cols_p_ / 8;
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t i = 0;
      for (std::size_t j = 0; j < cols_p_; ++j) {
        unsigned u = zero(k, j / g_);
        if ((mask_[k * mb + j / 8] >> (j % 8)) & 1u) {
          u = (codes_[off_[k] + i / 2] >> (4 * (i % 2))) & 15u;
          ++i;
        }
        dense[k * (cols_p_ / 2) + j / 2] = static_cast<std::uint8_t>(dense[k * (cols_p_ / 2) + j / 2] | (u << (4 * (j % 2))));
      }
    }
    return Q4Linear(rows_, cols_, g_, std::move(dense), s_, z_, act_, threads_);
  }

  /// s·(u − z) at the kept columns, 0 elsewhere (exactly Q4Linear's dequantize of the dense codes).
  [[nodiscard]] Matrix<float> dequantize() const override {
    Matrix<float> w(rows_, cols_, 0.0f);
    const std::size_t mb = cols_p_ / 8, ng = cols_p_ / g_;
    for (std::size_t k = 0; k < rows_; ++k) {
      std::size_t i = 0;
      for (std::size_t j = 0; j < cols_; ++j) {
        if (!((mask_[k * mb + j / 8] >> (j % 8)) & 1u)) continue;
        const unsigned u = (codes_[off_[k] + i / 2] >> (4 * (i % 2))) & 15u;
        ++i;
        w(k, j) = s_[k * ng + j / g_] * static_cast<float>(static_cast<int>(u) - static_cast<int>(zero(k, j / g_)));
      }
    }
    return w;
  }

  void gemv(const float* x, float* y) const override {
    const std::size_t ws = kernels::block_q8_workspace_bytes(cols_p_);
    if (act_ == ActivationMode::a32) {
      if (cols_p_ == cols_) {
        kernels::gemv_bitmask_q4_f32(mask_.data(), codes_.data(), off_.data(), s_.data(), zp(), rows_, cols_, g_, x, y,
                                     packed_scratch(ws), threads_);
        return;
      }
      unsigned char* buf = packed_scratch(packed_align64(cols_p_ * sizeof(float)) + ws);
      auto* xp = reinterpret_cast<float*>(buf);
      std::copy(x, x + cols_, xp);
      std::fill(xp + cols_, xp + cols_p_, 0.0f);
      kernels::gemv_bitmask_q4_f32(mask_.data(), codes_.data(), off_.data(), s_.data(), zp(), rows_, cols_p_, g_, xp, y,
                                   buf + packed_align64(cols_p_ * sizeof(float)), threads_);
      return;
    }
    unsigned char* buf = packed_scratch(packed_align64(cols_p_) + ws);
    auto* qx = reinterpret_cast<std::int8_t*>(buf);
    const float dx = quantize_token_int8(x, cols_, qx);
    std::fill(qx + cols_, qx + cols_p_, std::int8_t{0});
    const auto act = kernels::BlockQ8::carve(buf + packed_align64(cols_p_), cols_p_);
    kernels::block_q8_from_per_token(qx, dx, cols_p_, act);
    kernels::gemv_bitmask_q4_a8(mask_.data(), codes_.data(), off_.data(), s_.data(), zp(), rows_, cols_p_, g_, act, y,
                                threads_);
  }

  /// Format "packed_bitmask_q4" (packed model version 3): sections mask, codes (the kept nibbles),
  /// scales and, asymmetric only, zeros; metadata act and group. Loads as the dense Q4Linear of the
  /// same codes when the reader prefers dense ops (the same outputs, bit for bit).
  void save(OpWriter& w) const override {
    w.format("packed_bitmask_q4", 3);
    w.section("mask", mask());
    w.section("codes", codes());
    w.section("scales", scales());
    if (asymmetric()) w.section("zeros", zeros());
    save_activations(w);
    w.meta("group", static_cast<std::int64_t>(group_size()));
  }
  [[nodiscard]] static std::unique_ptr<LinearOp> load(const OpReader& r) {
    r.require_version(3, "packed_bitmask_q4");
    r.only_sections({"mask", "codes", "scales", "zeros"}, "packed_bitmask_q4");
    const ActivationMode act = load_activations(r);
    const auto g = static_cast<std::size_t>(r.meta("group", 32, 128));
    std::vector<std::uint8_t> z;
    if (r.has_section("zeros")) {
      z = r.section<std::uint8_t>("zeros");
      SPARQ_CHECK(!z.empty(), "empty section 'zeros' in format packed_bitmask_q4 (symmetric ops store none)");
    }
    BitmaskQ4Linear bq(r.rows(), r.cols(), g, r.section<std::uint8_t>("mask"), r.section<std::uint8_t>("codes"),
                       r.section<float>("scales"), std::move(z), act, r.threads());
    if (r.prefer_dense()) return std::make_unique<Q4Linear>(bq.to_q4());
    return std::make_unique<BitmaskQ4Linear>(std::move(bq));
  }

 private:
  [[nodiscard]] const std::uint8_t* zp() const noexcept { return z_.empty() ? nullptr : z_.data(); }
  [[nodiscard]] std::size_t row_kept(std::size_t k) const noexcept {
    const std::size_t mb = cols_p_ / 8;
    std::size_t n = 0;
    for (std::size_t b = 0; b < mb; ++b) n += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(mask_[k * mb + b])));
    return n;
  }

  std::size_t rows_, cols_, g_, cols_p_ = 0, kept_ = 0;
  bool per_channel_ = false;
  std::vector<std::uint8_t> mask_, codes_;
  std::vector<float> s_;
  std::vector<std::uint8_t> z_;
  std::vector<std::size_t> off_;
  ActivationMode act_;
  int threads_;
};

}  // namespace sparq::model
