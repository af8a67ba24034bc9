// Q4Linear: a LinearOp over int4 per-group weights (G = 32/64/128, symmetric or asymmetric) through
// the int4 kernels (W4 with float activations, or W4A8 with int8 per-token activations).
//
// Weights (kernels/gemv_q4.hpp layout; per-channel int4 is stored as groups repeating the row's
// scale, see from_quantized): per row cols_p/2 bytes, element 2i in the low nibble of
// byte i, 2i+1 in the high nibble, u ∈ [0, 15]; per group g of G inputs a float scale s[k][g] and,
// asymmetric, a uint8 zero z[k][g] ≤ 15 (symmetric: z = 8, offset binary):
//     W[k][j] = s[k][g]·(u[k][j] − z[k][g]).
// Rows whose width is not a multiple of G (QuantOptions::tail_group: the last group is shorter,
// e.g. stories260K's w2 with cols = 172 = 5·32 + 12) are padded to cols_p = ⌈cols/G⌉·G with
// zero-weight codes (u = z) that belong to the last group, and the input is zero-padded, so the
// product equals the tail-group matrix exactly. The padding is counted in weight_bytes().
//   A32: gemv_q4_f32 / gemm_q4_f32. NOTE: these kernels quantize the float input to int8 per block
//        of 32 inputs (x ≈ a[b]·q, a[b] = absmax_b/127) before the integer dot products, so "A32"
//        here means float activations handed to a kernel whose error versus the exact float product
//        is bounded by Σ_j |W[k][j]|·a[b(j)]/2 (kernels.md). It is not bit-identical to the fake
//        W4A32 model; the stories260K test measures the effect on perplexity.
//   A8:  (q_x, Δ) = quantize_token_int8(x) (bit-identical to fake_quantize_token(·, 8)), turned into
//        block-int8 activations with one scale Δ per block (block_q8_from_per_token), gemv_q4_a8.
//        Here the activations ARE the fake model's, so only float summation order differs.
// Scratch: padded input / int8 activations / block-int8 workspace from packed_scratch (thread-local).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemm_q.hpp"
#include "sparq/kernels/gemv_common.hpp"
#include "sparq/kernels/gemv_q4.hpp"
#include "sparq/model/packed_linear.hpp"
#include "sparq/quant/quantized_tensor.hpp"

namespace sparq::model {

class Q4Linear final : public PackedLinear {
 public:
  /// Takes padded arrays: codes rows·cols_p/2 bytes, scales rows·cols_p/G, zeros empty (symmetric)
  /// or one per scale (≤ 15), with cols_p = ⌈cols/G⌉·G. Padding codes must be zero weights (u = z).
  /// Throws sparq::error on any inconsistency.
  Q4Linear(std::size_t rows, std::size_t cols, std::size_t group, std::vector<std::uint8_t> codes,
           std::vector<float> scales, std::vector<std::uint8_t> zeros, ActivationMode act, int threads = 1)
      : rows_(rows), cols_(cols), g_(group), codes_(std::move(codes)), s_(std::move(scales)), z_(std::move(zeros)),
        act_(act), threads_(threads) {
    SPARQ_CHECK(rows_ > 0 && cols_ > 0, "Q4Linear: empty shape ", rows_, "x", cols_);
    SPARQ_CHECK(g_ == 32 || g_ == 64 || g_ == 128, "Q4Linear: group size G = ", g_, ", expected 32, 64 or 128");
    SPARQ_CHECK(threads_ >= 0, "Q4Linear: threads = ", threads_, ", expected >= 0");
    cols_p_ = (cols_ + g_ - 1) / g_ * g_;
    const std::size_t ng = cols_p_ / g_;
    SPARQ_CHECK(codes_.size() == rows_ * cols_p_ / 2, "Q4Linear: ", codes_.size(), " code bytes, expected rows·cols_p/2 = ",
                rows_ * cols_p_ / 2, " (cols_p = ", cols_p_, ")");
    SPARQ_CHECK(s_.size() == rows_ * ng, "Q4Linear: ", s_.size(), " scales, expected ", rows_ * ng);
    SPARQ_CHECK(z_.empty() || z_.size() == s_.size(), "Q4Linear: ", z_.size(), " zero points, expected 0 or ", s_.size());
    for (std::size_t i = 0; i < s_.size(); ++i) {
      SPARQ_CHECK(std::isfinite(s_[i]) && s_[i] > 0.0f, "Q4Linear: scale[", i, "] = ", s_[i],
                  ", expected a positive finite value");
      SPARQ_CHECK(z_.empty() || z_[i] <= 15, "Q4Linear: zero[", i, "] = ", int(z_[i]), ", expected 0..15");
    }
    for (std::size_t k = 0; k < rows_; ++k)
      for (std::size_t j = cols_; j < cols_p_; ++j)
        SPARQ_CHECK(code(k, j) == zero(k, j / g_), "Q4Linear: padding code ", code(k, j), " at row ", k, ", column ", j,
                    " is not the zero weight ", zero(k, j / g_));
    // Per-channel: every group of every row repeats the row's scale and zero (ng > 1).
    per_channel_ = ng > 1;
    for (std::size_t k = 0; k < rows_ && per_channel_; ++k)
      for (std::size_t g = 1; g < ng && per_channel_; ++g)
        per_channel_ = s_[k * ng + g] == s_[k * ng] && zero(k, g) == zero(k, 0);
  }

  /// From a 4-bit QuantizedTensor, symmetric or asymmetric: PerGroup<G> (G ∈ {32, 64, 128}, tail
  /// group allowed) or PerChannel. Per-channel scales are stored in the per-group layout with the
  /// row's scale (and zero) repeated in every group, G ∈ {32, 64, 128} chosen to minimize the
  /// bytes of codes + scales (+ zeros) including padding; describe() then says "per-channel".
  [[nodiscard]] static Q4Linear from_quantized(const QuantizedTensor& t, ActivationMode act, int threads = 1) {
    const auto& c = t.config();
    SPARQ_CHECK(t.bits() == 4 && (t.scheme() == SchemeKind::symmetric || t.scheme() == SchemeKind::asymmetric),
                "Q4Linear: needs 4-bit symmetric or asymmetric codes, got ", t.bits(), "-bit ", scheme_name(t.scheme()));
    const bool per_channel = c.granularity == GranularityKind::per_channel;
    SPARQ_CHECK(per_channel || c.granularity == GranularityKind::per_group, "Q4Linear: needs per-group or per-channel scales, got per-",
                granularity_name(c.granularity));
    const bool asym = t.scheme() == SchemeKind::asymmetric;
    const std::size_t rows = t.rows(), cols = t.cols();
    std::size_t G = c.group_size;
    if (per_channel) {
      std::size_t best = 0;
      for (std::size_t g : {std::size_t{128}, std::size_t{64}, std::size_t{32}}) {
        const std::size_t cp = (cols + g - 1) / g * g, bytes = cp / 2 + cp / g * (sizeof(float) + (asym ? 1 : 0));
        if (best == 0 || bytes < best) {
          best = bytes;
          G = g;
        }
      }
    }
    SPARQ_CHECK(G == 32 || G == 64 || G == 128, "Q4Linear: group size G = ", G, ", expected 32, 64 or 128");
    const std::size_t cols_p = (cols + G - 1) / G * G, ng = cols_p / G;
    SPARQ_CHECK(per_channel || t.params().groups_per_row == ng, "Q4Linear: ", t.params().groups_per_row,
                " groups per row, expected ", ng);
    std::vector<float> scales(rows * ng);
    std::vector<std::uint8_t> zeros(asym ? rows * ng : 0);
    for (std::size_t k = 0; k < rows; ++k) {
      for (std::size_t g = 0; g < ng; ++g) {
        const std::size_t src = per_channel ? 0 : g;
        scales[k * ng + g] = t.params().row_scales(k)[src];
        if (asym) zeros[k * ng + g] = t.params().row_zeros(k)[src];
      }
    }
    std::vector<std::uint8_t> codes(rows * cols_p / 2, 0);
    for (std::size_t k = 0; k < rows; ++k) {
      const std::uint8_t* src = t.row_codes(k);
      std::uint8_t* dst = codes.data() + k * (cols_p / 2);
      const unsigned pad = asym ? zeros[k * ng + ng - 1] : 8u;
      for (std::size_t j = 0; j < cols_p; ++j) {
        const unsigned u = j < cols ? ((src[j / 2] >> (4 * (j % 2))) & 15u) : pad;
        dst[j / 2] = static_cast<std::uint8_t>(dst[j / 2] | (u << (4 * (j % 2))));
      }
    }
    return Q4Linear(rows, cols, G, std::move(codes), std::move(scales), std::move(zeros), act, threads);
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return cols_; }
  [[nodiscard]] std::size_t out_features() const noexcept override { return rows_; }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override {
    return codes_.size() + s_.size() * sizeof(float) + z_.size();
  }
  [[nodiscard]] std::string describe() const override {
    return sparq::detail::concat("int4 ", per_channel_ ? sparq::detail::concat("per-channel (g", g_, " layout)") : sparq::detail::concat("g", g_),
                                 z_.empty() ? " sym " : " asym ", activation_mode_name(act_), " ", rows_,
                                 "x", cols_, cols_p_ != cols_ ? sparq::detail::concat(" (padded to ", cols_p_, ")") : "");
  }
  [[nodiscard]] ActivationMode activations() const noexcept override { return act_; }
  [[nodiscard]] int threads() const noexcept override { return threads_; }

  [[nodiscard]] std::size_t group_size() const noexcept { return g_; }
  [[nodiscard]] std::size_t padded_cols() const noexcept { return cols_p_; }
  [[nodiscard]] bool asymmetric() const noexcept { return !z_.empty(); }
  /// True when every group of every row repeats the row's scale and zero (per-channel int4).
  [[nodiscard]] bool per_channel() const noexcept { return per_channel_; }
  [[nodiscard]] const std::vector<std::uint8_t>& codes() const noexcept { return codes_; }
  [[nodiscard]] const std::vector<float>& scales() const noexcept { return s_; }
  [[nodiscard]] const std::vector<std::uint8_t>& zeros() const noexcept { return z_; }
  /// Stored code u of element (k, j), j < padded_cols().
  [[nodiscard]] unsigned code(std::size_t k, std::size_t j) const noexcept {
    return (codes_[k * (cols_p_ / 2) + j / 2] >> (4 * (j % 2))) & 15u;
  }
  /// Zero point of group g of row k (8 when symmetric).
  [[nodiscard]] unsigned zero(std::size_t k, std::size_t g) const noexcept {
    return z_.empty() ? 8u : z_[k * (cols_p_ / g_) + g];
  }

  [[nodiscard]] Matrix<float> dequantize() const override {
    Matrix<float> w(rows_, cols_);
    const std::size_t ng = cols_p_ / g_;
    for (std::size_t k = 0; k < rows_; ++k)
      for (std::size_t j = 0; j < cols_; ++j)
        w(k, j) = s_[k * ng + j / g_] * static_cast<float>(static_cast<int>(code(k, j)) - static_cast<int>(zero(k, j / g_)));
    return w;
  }

  void gemv(const float* x, float* y) const override {
    const std::size_t ws = kernels::block_q8_workspace_bytes(cols_p_);
    if (act_ == ActivationMode::a32) {
      if (cols_p_ == cols_) {
        kernels::gemv_q4_f32(codes_.data(), s_.data(), zp(), rows_, cols_, g_, x, y, packed_scratch(ws), threads_);
        return;
      }
      unsigned char* buf = packed_scratch(packed_align64(cols_p_ * sizeof(float)) + ws);
      auto* xp = reinterpret_cast<float*>(buf);
      std::copy(x, x + cols_, xp);
      std::fill(xp + cols_, xp + cols_p_, 0.0f);
      kernels::gemv_q4_f32(codes_.data(), s_.data(), zp(), rows_, cols_p_, g_, xp, y,
                           buf + packed_align64(cols_p_ * sizeof(float)), threads_);
      return;
    }
    unsigned char* buf = packed_scratch(packed_align64(cols_p_) + ws);
    auto* qx = reinterpret_cast<std::int8_t*>(buf);
    const float dx = quantize_token_int8(x, cols_, qx);
    std::fill(qx + cols_, qx + cols_p_, std::int8_t{0});
    const auto act = kernels::BlockQ8::carve(buf + packed_align64(cols_p_), cols_p_);
    kernels::block_q8_from_per_token(qx, dx, cols_p_, act);
    kernels::gemv_q4_a8(codes_.data(), s_.data(), zp(), rows_, cols_p_, g_, act, y, threads_);
  }

  void gemm(MatrixView<const float> X, MatrixView<float> Y) const override {
    const std::size_t n = X.rows();
    if (n == 0) return;
    if (act_ == ActivationMode::a8 || Y.stride() != rows_ || (cols_p_ == cols_ && X.stride() != cols_)) {
      for (std::size_t t = 0; t < n; ++t) gemv(X.row(t), Y.row(t));
      return;
    }
    const std::size_t ws = kernels::gemm_q4_workspace_bytes(cols_p_, n);
    if (cols_p_ == cols_) {
      kernels::gemm_q4_f32(codes_.data(), s_.data(), zp(), rows_, cols_, g_, X.data(), n, Y.data(), packed_scratch(ws),
                           threads_);
      return;
    }
    const std::size_t xb = packed_align64(n * cols_p_ * sizeof(float));
    unsigned char* buf = packed_scratch(xb + ws);
    auto* xp = reinterpret_cast<float*>(buf);
    for (std::size_t t = 0; t < n; ++t) {
      std::copy(X.row(t), X.row(t) + cols_, xp + t * cols_p_);
      std::fill(xp + t * cols_p_ + cols_, xp + (t + 1) * cols_p_, 0.0f);
    }
    kernels::gemm_q4_f32(codes_.data(), s_.data(), zp(), rows_, cols_p_, g_, xp, n, Y.data(), buf + xb, threads_);
  }

  /// Format "packed_q4": sections codes (nibbles), scales and, asymmetric only, zeros; metadata
  /// act and group.
  void save(OpWriter& w) const override {
    w.format("packed_q4", 1);
    w.section("codes", codes());
    w.section("scales", scales());
    if (asymmetric()) w.section("zeros", zeros());
    save_activations(w);
    w.meta("group", static_cast<std::int64_t>(group_size()));
  }
  [[nodiscard]] static std::unique_ptr<LinearOp> load(const OpReader& r) {
    const ActivationMode act = load_activations(r);
    const auto g = static_cast<std::size_t>(r.meta("group", 32, 128));
    std::vector<std::uint8_t> z;
    if (r.has_section("zeros")) z = r.section<std::uint8_t>("zeros");
    return std::make_unique<Q4Linear>(r.rows(), r.cols(), g, r.section<std::uint8_t>("codes"), r.section<float>("scales"),
                                      std::move(z), act, r.threads());
  }

 private:
  [[nodiscard]] const std::uint8_t* zp() const noexcept { return z_.empty() ? nullptr : z_.data(); }

  std::size_t rows_, cols_, g_, cols_p_ = 0;
  bool per_channel_ = false;
  std::vector<std::uint8_t> codes_;
  std::vector<float> s_;
  std::vector<std::uint8_t> z_;
  ActivationMode act_;
  int threads_;
};

}  // namespace sparq::model
