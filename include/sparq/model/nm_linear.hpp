// NMLinear: a LinearOp over N:M-sparse weights (2:4, 4:8; any N ≤ M ∈ {4, 8}) through the N:M kernels.
//
// Layout (kernels/gemv_nm.hpp = prune/nm_compressed.hpp, checked compatible): per row and group of
// M inputs exactly N kept values in increasing column order, values[k][g·N + i]; their in-group
// positions packed per row (M = 4: 2 bits, M = 8: 4 bits; rows start on a byte). With
// nk = cols_p·N/M kept values per row, the kept values are
//   f32:   v[k][i]                                        (gemv_nm_f32)
//   int8:  v = scale[k]·q[k][i], q ∈ [−127, 127]          (gemv_nm_q8; one scale per row)
//   int4:  v = s[k][i/G]·(u[k][i] − z[k][i/G])            (gemv_nm_q4; groups of G KEPT values,
//          G ∈ {32, 64, 128}; z = 8 symmetric. A group of G kept values spans G·M/N columns, so
//          fake quantization of the pruned dense matrix with PerGroup<G·M/N> gives the same grid.)
// Padding: cols is padded to cols_p, a multiple of M (and, for int4, such that G divides nk), with
// zero columns; groups past cols keep positions 0..N−1 with zero values, and the input is
// zero-padded, so the product equals the unpadded matrix. Padding is counted in weight_bytes().
// Kernels: f32 and int8 kept values, and 4:8 int4, run the float-activation kernels of gemv_nm.hpp
// (2:4 f32: 4 rows per pass with prefetch). 2:4 int4 runs the W4A8 presence-mask kernel of
// gemv_nm_mask.hpp on a copy of the weights re-packed at construction (pack_nm24m_q4: same bytes
// as codes + indices, f32 scales used as they are, so the weights are unchanged); the compact
// arrays stay the op's storage format (values(), indices()).
// Activations: A32 feeds x to the float kernels (no activation rounding); 2:4 int4 A32 quantizes x
// to int8 per block of 64 inputs first (like Q4Linear's A32 per block of 32): |Δy[k]| ≤
// Σ_j |W[k][j]|·a[b(j)]/2 with a[b] = max_{j in b}|x_j|/127. A8 quantizes x with quantize_token_int8
// (bit for bit the activations InputQuantLinear(…, 8) produces): the float kernels get q·Δ, the
// 2:4 int4 kernel gets the int8 codes and Δ (the same product up to float rounding).
// Scratch: a padded float input (cols_p floats) and the int8 workspace from packed_scratch (thread-local).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/kernels/gemv_nm.hpp"
#include "sparq/kernels/gemv_nm_mask.hpp"
#include "sparq/model/packed_linear.hpp"
#include "sparq/prune/nm_compressed.hpp"
#include "sparq/quant/quantized_tensor.hpp"

namespace sparq::model {

/// How N:M kept values are stored.
enum class NMValueKind : std::uint8_t { f32, int8, int4 };

[[nodiscard]] constexpr const char* nm_value_kind_name(NMValueKind k) noexcept {
  return k == NMValueKind::f32 ? "f32" : k == NMValueKind::int8 ? "int8" : "int4";
}

/// The kept values of an NMLinear (only the arrays of `kind` are used; padded to cols_p).
struct NMValues {
  NMValueKind kind = NMValueKind::f32;
  std::size_t group = 0;           ///< int4: G kept values per scale
  std::vector<float> f32;          ///< f32: rows·nk
  std::vector<std::int8_t> q8;     ///< int8: rows·nk
  std::vector<std::uint8_t> q4;    ///< int4: rows·nk/2 bytes (low nibble = even kept value)
  std::vector<float> scales;       ///< int8: rows; int4: rows·nk/G
  std::vector<std::uint8_t> zeros; ///< int4 asymmetric: one per scale (empty = symmetric)
};

class NMLinear final : public PackedLinear {
 public:
  /// Padded width for `cols` inputs, pattern N:M and (int4) group G (0 otherwise).
  [[nodiscard]] static std::size_t padded_cols_for(std::size_t cols, std::size_t n, std::size_t m, std::size_t g) noexcept {
    const std::size_t step = g ? m * (g / std::gcd(n, g)) : m;
    return (cols + step - 1) / step * step;
  }

  /// From raw padded arrays (indices rows·nm_index_row_bytes(nk, M)). Validates sizes, codes,
  /// scales, index order and that everything past `cols` is a zero weight; throws sparq::error.
  NMLinear(std::size_t rows, std::size_t cols, std::size_t n, std::size_t m, NMValues values,
           std::vector<std::uint8_t> indices, ActivationMode act, int threads = 1)
      : rows_(rows), cols_(cols), n_(n), m_(m), v_(std::move(values)), idx_(std::move(indices)), act_(act),
        threads_(threads) {
    SPARQ_CHECK(rows_ > 0 && cols_ > 0, "NMLinear: empty shape ", rows_, "x", cols_);
    SPARQ_CHECK((m_ == 4 || m_ == 8) && n_ >= 1 && n_ <= m_, "NMLinear: pattern ", n_, ":", m_,
                ", expected N:M with M in {4, 8} and 1 <= N <= M");
    SPARQ_CHECK(threads_ >= 0, "NMLinear: threads = ", threads_, ", expected >= 0");
    const bool q4 = v_.kind == NMValueKind::int4;
    SPARQ_CHECK(!q4 || v_.group == 32 || v_.group == 64 || v_.group == 128, "NMLinear: int4 group size G = ", v_.group,
                ", expected 32, 64 or 128");
    cols_p_ = padded_cols_for(cols_, n_, m_, q4 ? v_.group : 0);
    nk_ = cols_p_ / m_ * n_;
    ib_ = kernels::nm_index_row_bytes(nk_, m_);
    SPARQ_CHECK(idx_.size() == rows_ * ib_, "NMLinear: ", idx_.size(), " index bytes, expected ", rows_ * ib_);
    switch (v_.kind) {
      case NMValueKind::f32:
        SPARQ_CHECK(v_.f32.size() == rows_ * nk_, "NMLinear: ", v_.f32.size(), " f32 values, expected ", rows_ * nk_);
        break;
      case NMValueKind::int8:
        SPARQ_CHECK(v_.q8.size() == rows_ * nk_, "NMLinear: ", v_.q8.size(), " int8 values, expected ", rows_ * nk_);
        SPARQ_CHECK(v_.scales.size() == rows_, "NMLinear: ", v_.scales.size(), " int8 scales, expected one per row = ", rows_);
        for (std::size_t i = 0; i < v_.q8.size(); ++i)
          SPARQ_CHECK(v_.q8[i] != -128, "NMLinear: int8 code -128 at row ", i / nk_, ", kept value ", i % nk_,
                      ", expected [-127, 127]");
        break;
      case NMValueKind::int4:
        SPARQ_CHECK(v_.q4.size() == rows_ * nk_ / 2, "NMLinear: ", v_.q4.size(), " int4 code bytes, expected ", rows_ * nk_ / 2);
        SPARQ_CHECK(v_.scales.size() == rows_ * (nk_ / v_.group), "NMLinear: ", v_.scales.size(), " int4 scales, expected ",
                    rows_ * (nk_ / v_.group));
        SPARQ_CHECK(v_.zeros.empty() || v_.zeros.size() == v_.scales.size(), "NMLinear: ", v_.zeros.size(),
                    " zero points, expected 0 or ", v_.scales.size());
        for (std::size_t i = 0; i < v_.zeros.size(); ++i)
          SPARQ_CHECK(v_.zeros[i] <= 15, "NMLinear: zero[", i, "] = ", int(v_.zeros[i]), ", expected 0..15");
        break;
      default:
        sparq::detail::fail("NMLinear: unknown value kind ", int(v_.kind));
    }
    if (v_.kind != NMValueKind::f32) {
      for (std::size_t i = 0; i < v_.scales.size(); ++i)
        SPARQ_CHECK(std::isfinite(v_.scales[i]) && v_.scales[i] > 0.0f, "NMLinear: scale[", i, "] = ", v_.scales[i],
                    ", expected a positive finite value");
    }
    for (std::size_t k = 0; k < rows_; ++k) {
      for (std::size_t i = 0; i < nk_; ++i) {
        const unsigned p = index(k, i);
        SPARQ_CHECK(p < m_, "NMLinear: row ", k, ", kept value ", i, " has position ", p, ", expected < M = ", m_);
        if (i % n_ != 0)
          SPARQ_CHECK(p > index(k, i - 1), "NMLinear: row ", k, ", group ", i / n_, ": positions not strictly increasing");
        const std::size_t col = m_ * (i / n_) + p;
        SPARQ_CHECK(col < cols_ || value(k, i) == 0.0f, "NMLinear: row ", k, ", kept value ", i, " at padding column ",
                    col, " is ", value(k, i), ", expected 0");
      }
    }
    if (mask_kernel()) {
      tiles_.resize(rows_ * kernels::nm24m_q4_row_bytes(cols_p_));
      kernels::pack_nm24m_q4(v_.q4.data(), idx_.data(), rows_, cols_p_, tiles_.data());
    }
  }

  /// f32 kept values from an NMCompressed<N, M, float>. `cols` (default: its cols) may be smaller
  /// than the compressed width when the caller padded a matrix whose cols % M != 0 with zeros.
  template <std::size_t N, std::size_t M>
  [[nodiscard]] static NMLinear from_compressed(const NMCompressed<N, M, float>& c, ActivationMode act, int threads = 1,
                                                std::size_t cols = 0) {
    const std::size_t lc = cols ? cols : c.cols();
    check_width(c.cols(), lc, N, M, 0);
    NMValues v;
    v.kind = NMValueKind::f32;
    const std::size_t cp = padded_cols_for(lc, N, M, 0), nk = cp / M * N;
    v.f32.assign(c.rows() * nk, 0.0f);
    for (std::size_t k = 0; k < c.rows(); ++k) std::copy(c.row_values(k), c.row_values(k) + c.kept_per_row(), v.f32.data() + k * nk);
    return NMLinear(c.rows(), lc, N, M, std::move(v), repack_indices<N, M>(c, cp), act, threads);
  }

  /// Quantized kept values: `kept` quantizes the [rows × kept_per_row] matrix of c's kept values,
  /// 8-bit symmetric per-channel (→ int8) or 4-bit PerGroup<G> symmetric/asymmetric (→ int4, G
  /// counted over kept values, tail group allowed). Throws sparq::error on other configurations.
  template <std::size_t N, std::size_t M>
  [[nodiscard]] static NMLinear from_compressed(const NMCompressed<N, M, float>& c, const QuantizedTensor& kept,
                                                ActivationMode act, int threads = 1, std::size_t cols = 0) {
    const std::size_t lc = cols ? cols : c.cols();
    SPARQ_CHECK(kept.rows() == c.rows() && kept.cols() == c.kept_per_row(), "NMLinear: quantized kept values are ",
                kept.rows(), "x", kept.cols(), ", expected ", c.rows(), "x", c.kept_per_row());
    const auto& cfg = kept.config();
    NMValues v;
    std::size_t cp = 0;
    if (kept.bits() == 8) {
      SPARQ_CHECK(kept.scheme() == SchemeKind::symmetric && cfg.granularity == GranularityKind::per_channel,
                  "NMLinear: 8-bit kept values must be symmetric per-channel, got ", scheme_name(kept.scheme()), " per-",
                  granularity_name(cfg.granularity));
      check_width(c.cols(), lc, N, M, 0);
      cp = padded_cols_for(lc, N, M, 0);
      const std::size_t nk = cp / M * N;
      v.kind = NMValueKind::int8;
      v.q8.assign(c.rows() * nk, 0);
      const auto q = kept.int8_codes();
      for (std::size_t k = 0; k < c.rows(); ++k)
        std::copy(q.begin() + static_cast<std::ptrdiff_t>(k * kept.cols()),
                  q.begin() + static_cast<std::ptrdiff_t>((k + 1) * kept.cols()), v.q8.begin() + static_cast<std::ptrdiff_t>(k * nk));
      v.scales = kept.params().scales;
    } else {
      SPARQ_CHECK(kept.bits() == 4 && (kept.scheme() == SchemeKind::symmetric || kept.scheme() == SchemeKind::asymmetric) &&
                      cfg.granularity == GranularityKind::per_group,
                  "NMLinear: kept values must be 8-bit per-channel or 4-bit per-group integers, got ", kept.bits(), "-bit ",
                  scheme_name(kept.scheme()), " per-", granularity_name(cfg.granularity));
      const std::size_t G = cfg.group_size;
      SPARQ_CHECK(G == 32 || G == 64 || G == 128, "NMLinear: int4 group size G = ", G, ", expected 32, 64 or 128");
      check_width(c.cols(), lc, N, M, G);
      cp = padded_cols_for(lc, N, M, G);
      const std::size_t nk = cp / M * N, ng = nk / G;
      SPARQ_CHECK(kept.params().groups_per_row == ng, "NMLinear: ", kept.params().groups_per_row,
                  " kept-value groups per row, expected ", ng, " after padding to ", cp, " columns");
      const bool asym = kept.scheme() == SchemeKind::asymmetric;
      v.kind = NMValueKind::int4;
      v.group = G;
      v.q4.assign(c.rows() * nk / 2, 0);
      for (std::size_t k = 0; k < c.rows(); ++k) {
        const unsigned pad = asym ? kept.params().row_zeros(k)[ng - 1] : 8u;
        const std::uint8_t* src = kept.row_codes(k);
        std::uint8_t* dst = v.q4.data() + k * nk / 2;
        for (std::size_t i = 0; i < nk; ++i) {
          const unsigned u = i < kept.cols() ? ((src[i / 2] >> (4 * (i % 2))) & 15u) : pad;
          dst[i / 2] = static_cast<std::uint8_t>(dst[i / 2] | (u << (4 * (i % 2))));
        }
      }
      v.scales = kept.params().scales;
      if (asym) v.zeros = kept.params().zeros;
    }
    return NMLinear(c.rows(), lc, N, M, std::move(v), repack_indices<N, M>(c, cp), act, threads);
  }

  [[nodiscard]] std::size_t in_features() const noexcept override { return cols_; }
  [[nodiscard]] std::size_t out_features() const noexcept override { return rows_; }
  [[nodiscard]] std::size_t weight_bytes() const noexcept override {
    return v_.f32.size() * sizeof(float) + v_.q8.size() + v_.q4.size() + v_.scales.size() * sizeof(float) + v_.zeros.size() +
           idx_.size();
  }
  [[nodiscard]] std::string describe() const override {
    return sparq::detail::concat(n_, ":", m_, " ", nm_value_kind_name(v_.kind),
                                 v_.kind == NMValueKind::int4 ? sparq::detail::concat(" g", v_.group, v_.zeros.empty() ? " sym" : " asym") : "",
                                 " ", activation_mode_name(act_), " ", rows_, "x", cols_,
                                 cols_p_ != cols_ ? sparq::detail::concat(" (padded to ", cols_p_, ")") : "");
  }
  [[nodiscard]] ActivationMode activations() const noexcept override { return act_; }
  [[nodiscard]] int threads() const noexcept override { return threads_; }

  [[nodiscard]] std::size_t n() const noexcept { return n_; }
  [[nodiscard]] std::size_t m() const noexcept { return m_; }
  [[nodiscard]] std::size_t padded_cols() const noexcept { return cols_p_; }
  [[nodiscard]] std::size_t kept_per_row() const noexcept { return nk_; }
  [[nodiscard]] const NMValues& values() const noexcept { return v_; }
  [[nodiscard]] const std::vector<std::uint8_t>& indices() const noexcept { return idx_; }
  /// In-group position of kept value i of row k.
  [[nodiscard]] unsigned index(std::size_t k, std::size_t i) const noexcept {
    return kernels::nm_index(idx_.data() + k * ib_, i, m_);
  }
  /// Float value of kept value i of row k (what the kernel multiplies by).
  [[nodiscard]] float value(std::size_t k, std::size_t i) const noexcept {
    switch (v_.kind) {
      case NMValueKind::f32: return v_.f32[k * nk_ + i];
      case NMValueKind::int8: return v_.scales[k] * static_cast<float>(v_.q8[k * nk_ + i]);
      default: {
        const std::size_t ng = nk_ / v_.group, g = i / v_.group;
        const int u = (v_.q4[(k * nk_ + i) / 2] >> (4 * (i % 2))) & 15;
        const int z = v_.zeros.empty() ? 8 : v_.zeros[k * ng + g];
        return v_.scales[k * ng + g] * static_cast<float>(u - z);
      }
    }
  }

  [[nodiscard]] Matrix<float> dequantize() const override {
    Matrix<float> w(rows_, cols_, 0.0f);
    for (std::size_t k = 0; k < rows_; ++k)
      for (std::size_t i = 0; i < nk_; ++i) {
        const std::size_t col = m_ * (i / n_) + index(k, i);
        if (col < cols_) w(k, col) = value(k, i);
      }
    return w;
  }

  void gemv(const float* x, float* y) const override {
    if (mask_kernel()) {
      gemv_mask(x, y);
      return;
    }
    const float* xin = x;
    if (act_ == ActivationMode::a8 || cols_p_ != cols_) {
      const std::size_t fb = packed_align64(cols_p_ * sizeof(float));
      unsigned char* buf = packed_scratch(fb + cols_);
      auto* xp = reinterpret_cast<float*>(buf);
      if (act_ == ActivationMode::a8) {
        auto* q = reinterpret_cast<std::int8_t*>(buf + fb);
        const float d = quantize_token_int8(x, cols_, q);
        for (std::size_t j = 0; j < cols_; ++j) xp[j] = static_cast<float>(q[j]) * d;
      } else {
        std::copy(x, x + cols_, xp);
      }
      std::fill(xp + cols_, xp + cols_p_, 0.0f);
      xin = xp;
    }
    switch (v_.kind) {
      case NMValueKind::f32:
        kernels::gemv_nm_f32(v_.f32.data(), idx_.data(), rows_, cols_p_, n_, m_, xin, y, threads_);
        break;
      case NMValueKind::int8:
        kernels::gemv_nm_q8(v_.q8.data(), v_.scales.data(), idx_.data(), rows_, cols_p_, n_, m_, xin, y, threads_);
        break;
      case NMValueKind::int4:
        kernels::gemv_nm_q4(v_.q4.data(), v_.scales.data(), v_.zeros.empty() ? nullptr : v_.zeros.data(), v_.group,
                            idx_.data(), rows_, cols_p_, n_, m_, xin, y, threads_);
        break;
    }
  }

  /// Format "packed_nm": the kept values (section values for f32; codes, scales and, asymmetric
  /// int4 only, zeros for int8 / int4) and indices; metadata act, n, m, values (NMValueKind) and
  /// group.
  void save(OpWriter& w) const override {
    w.format("packed_nm", 1);
    const auto& v = values();
    switch (v.kind) {
      case NMValueKind::f32: w.section("values", v.f32); break;
      case NMValueKind::int8:
        w.section("codes", v.q8);
        w.section("scales", v.scales);
        break;
      case NMValueKind::int4:
        w.section("codes", v.q4);
        w.section("scales", v.scales);
        if (!v.zeros.empty()) w.section("zeros", v.zeros);
        break;
    }
    w.section("indices", indices());
    save_activations(w);
    w.meta("n", static_cast<std::int64_t>(n()));
    w.meta("m", static_cast<std::int64_t>(m()));
    w.meta("values", static_cast<std::int64_t>(v.kind));
    w.meta("group", static_cast<std::int64_t>(v.group));
  }
  [[nodiscard]] static std::unique_ptr<LinearOp> load(const OpReader& r) {
    const ActivationMode act = load_activations(r);
    const auto n = static_cast<std::size_t>(r.meta("n", 1, 8)), m = static_cast<std::size_t>(r.meta("m", 4, 8));
    NMValues v;
    v.kind = static_cast<NMValueKind>(r.meta("values", 0, 2));
    v.group = static_cast<std::size_t>(r.meta("group", 0, 128));
    if (v.kind == NMValueKind::f32) {
      v.f32 = r.section<float>("values");
    } else {
      if (v.kind == NMValueKind::int8) v.q8 = r.section<std::int8_t>("codes");
      else v.q4 = r.section<std::uint8_t>("codes");
      v.scales = r.section<float>("scales");
      if (r.has_section("zeros")) v.zeros = r.section<std::uint8_t>("zeros");
    }
    return std::make_unique<NMLinear>(r.rows(), r.cols(), n, m, std::move(v), r.section<std::uint8_t>("indices"), act,
                                      r.threads());
  }

 private:
  /// 2:4 with int4 kept values: the presence-mask W4A8 kernel (cols_p % 64 == 0 by the padding rule).
  [[nodiscard]] bool mask_kernel() const noexcept { return n_ == 2 && m_ == 4 && v_.kind == NMValueKind::int4; }

  void gemv_mask(const float* x, float* y) const {
    const std::size_t ws = kernels::nm24m_q8_workspace_bytes(cols_p_);
    const std::size_t fb = packed_align64(std::max(cols_p_ * sizeof(float), cols_p_));
    unsigned char* buf = packed_scratch(fb + ws);
    const auto act = kernels::NmMaskQ8::carve(buf + fb, cols_p_);
    if (act_ == ActivationMode::a8) {
      auto* q = reinterpret_cast<std::int8_t*>(buf);
      const float d = quantize_token_int8(x, cols_, q);
      std::fill(q + cols_, q + cols_p_, std::int8_t{0});
      kernels::nm24m_q8_from_per_token(q, d, cols_p_, act);
    } else {
      const float* xin = x;
      if (cols_p_ != cols_) {
        auto* xp = reinterpret_cast<float*>(buf);
        std::copy(x, x + cols_, xp);
        std::fill(xp + cols_, xp + cols_p_, 0.0f);
        xin = xp;
      }
      kernels::quantize_nm24m_q8(xin, cols_p_, act);
    }
    const std::uint8_t* zp = v_.zeros.empty() ? nullptr : v_.zeros.data();
    kernels::gemv_nm24m_q4_a8(tiles_.data(), v_.scales.data(), zp, v_.group, rows_, cols_p_, act, y, threads_);
  }

  static void check_width(std::size_t ccols, std::size_t lc, std::size_t n, std::size_t m, std::size_t g) {
    SPARQ_CHECK(lc > 0 && lc <= ccols && ccols - lc < m, "NMLinear: logical width ", lc, " does not fit the compressed width ",
                ccols, " (expected ccols - M < cols <= ccols)");
    SPARQ_CHECK(padded_cols_for(lc, n, m, g) >= ccols, "NMLinear: padded width below the compressed width");
  }

  /// c's index rows re-laid for cp columns (extra groups: positions 0..N−1).
  template <std::size_t N, std::size_t M>
  [[nodiscard]] static std::vector<std::uint8_t> repack_indices(const NMCompressed<N, M, float>& c, std::size_t cp) {
    const std::size_t nk = cp / M * N, ib = kernels::nm_index_row_bytes(nk, M);
    std::vector<std::uint8_t> out(c.rows() * ib, 0);
    for (std::size_t k = 0; k < c.rows(); ++k) {
      std::uint8_t* b = out.data() + k * ib;
      for (std::size_t i = 0; i < nk; ++i) {
        const std::size_t p = i < c.kept_per_row() ? c.index(k, i) : i % N;
        if constexpr (M == 4) {
          b[i / 4] = static_cast<std::uint8_t>(b[i / 4] | (p << (2 * (i % 4))));
        } else {
          b[i / 2] = static_cast<std::uint8_t>(b[i / 2] | (p << (4 * (i % 2))));
        }
      }
    }
    return out;
  }

  std::size_t rows_, cols_, n_, m_;
  NMValues v_;
  std::vector<std::uint8_t> idx_;
  std::vector<std::uint8_t> tiles_;  ///< 2:4 int4: the kernel's mask tiles (pack_nm24m_q4 of q4 + idx_)
  ActivationMode act_;
  int threads_;
  std::size_t cols_p_ = 0, nk_ = 0, ib_ = 0;
};

}  // namespace sparq::model
