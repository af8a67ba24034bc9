// Whitening: the activation statistics that turn "weight error" into "layer-output error" for a low-rank factorization.
//
// For a layer y = W x with calibration inputs X (tokens x cin), the output error of an
// approximation Ŵ is ||(W − Ŵ) Xᵀ||_F² = tr((W − Ŵ) H (W − Ŵ)ᵀ), H = XᵀX (any positive scale:
// HessianAccumulator's (2/nseq) XᵀX gives the same minimiser). With H = S Sᵀ this is
// ||(W − Ŵ) S||_F², so the best rank-r Ŵ is the truncated SVD of W S mapped back by S⁻¹
// (SVD-LLM): W S ≈ U_r Σ_r V_rᵀ, Ŵ = U_r Σ_r V_rᵀ S⁻¹. Three whitenings:
//   identity  S = I: plain SVD, minimises the weight error ||W − Ŵ||_F.
//   cholesky  S = L with (H + λI) = L Lᵀ (kernels::cholesky_lower, double). Damping as in GPTQ:
//             λ = damp · mean(diag H), damp = 0.01 by default; if the factorisation still fails
//             (a pivot ≤ 0 from rounding) λ is multiplied by 10, up to 6 times, then sparq::error.
//             If mean(diag H) = 0 (all-zero inputs) λ = damp; with damp = 0 and a singular H
//             the first retry uses λ = 1e-8·mean(diag H). The exact minimiser of the damped
//             objective tr(ΔW (H+λI) ΔWᵀ); the undamped output error is what the tests measure.
//   diagonal  S = diag(s_j), s_j = √(H_jj + λ), λ as above: the per-channel activation-scale
//             variant (ASVD-like; damp = 0 requires every channel to have energy), from a ColumnSquareSum (its sums are the diagonal of XᵀX) or
//             from a Hessian. O(cin) memory, no Cholesky.
// whiten(W) returns W S and unwhiten(B) returns B S⁻¹ (B S⁻¹ by multiplying with the explicit
// lower-triangular inverse from kernels::invert_lower, through kernels::gemm; all in double).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/kernels/cholesky.hpp"
#include "sparq/kernels/gemm.hpp"

namespace sparq::lowrank {

enum class WhiteningKind : unsigned char { identity, diagonal, cholesky };

[[nodiscard]] constexpr std::string_view whitening_name(WhiteningKind k) noexcept {
  switch (k) {
    case WhiteningKind::identity: return "plain";
    case WhiteningKind::diagonal: return "diag";
    case WhiteningKind::cholesky: return "cholesky";
  }
  return "?";
}

class Whitening {
 public:
  /// S = I on `cin` channels (plain SVD).
  [[nodiscard]] static Whitening identity(std::size_t cin) {
    SPARQ_CHECK(cin > 0, "Whitening::identity: cin must be positive, got 0");
    Whitening w;
    w.kind_ = WhiteningKind::identity;
    w.cin_ = cin;
    return w;
  }

  /// S = L, (H + λI) = L Lᵀ from a symmetric positive semi-definite H (cin x cin, double).
  [[nodiscard]] static Whitening cholesky(MatrixView<const double> h, double damp = 0.01) {
    const std::size_t n = check_square(h, damp, "Whitening::cholesky");
    Whitening w;
    w.kind_ = WhiteningKind::cholesky;
    w.cin_ = n;
    const double mean = mean_diag(h);
    double lambda = mean > 0 ? mean * damp : damp;
    w.l_ = Matrix<double>(n, n);
    for (int attempt = 0;; ++attempt) {
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) w.l_(i, j) = h(i, j) + (i == j ? lambda : 0.0);
      if (kernels::cholesky_lower(w.l_.data(), n, n) == n) break;
      SPARQ_CHECK(attempt < 6, "Whitening::cholesky: H + lambda*I is not positive definite even with lambda = ",
                  lambda, " (expected a positive semi-definite Hessian)");
      lambda = lambda > 0 ? lambda * 10 : (mean > 0 ? mean : 1.0) * 1e-8;  // damp = 0 on a singular H
    }
    w.lambda_ = lambda;
    w.linv_ = Matrix<double>(n, n);
    kernels::invert_lower(w.l_.data(), n, n, w.linv_.data(), n);
    return w;
  }
  [[nodiscard]] static Whitening cholesky(const HessianAccumulator& h, double damp = 0.01) {
    const Matrix<double> hm = h.hessian_f64();
    return cholesky(hm.view(), damp);
  }

  /// S = diag(√(d_j + λ)) from the diagonal d of XᵀX (any positive scale).
  [[nodiscard]] static Whitening diagonal(const std::vector<double>& d, double damp = 0.01) {
    SPARQ_CHECK(!d.empty(), "Whitening::diagonal: no channels");
    SPARQ_CHECK(damp >= 0 && std::isfinite(damp), "Whitening::diagonal: damp = ", damp, ", expected >= 0");
    double mean = 0;
    for (std::size_t j = 0; j < d.size(); ++j) {
      SPARQ_CHECK(std::isfinite(d[j]) && d[j] >= 0, "Whitening::diagonal: d[", j, "] = ", d[j],
                  ", expected a finite value >= 0");
      mean += d[j];
    }
    mean /= static_cast<double>(d.size());
    const double lambda = mean > 0 ? mean * damp : (damp > 0 ? damp : 1.0);
    for (std::size_t j = 0; j < d.size(); ++j)
      SPARQ_CHECK(d[j] + lambda > 0, "Whitening::diagonal: channel ", j, " has zero energy and damp = 0 ",
                  "(expected damp > 0 when an input channel is always zero)");
    Whitening w;
    w.kind_ = WhiteningKind::diagonal;
    w.cin_ = d.size();
    w.lambda_ = lambda;
    w.diag_.resize(d.size());
    for (std::size_t j = 0; j < d.size(); ++j) w.diag_[j] = std::sqrt(d[j] + lambda);
    return w;
  }
  [[nodiscard]] static Whitening diagonal(const ColumnSquareSum& sq, double damp = 0.01) {
    return diagonal(sq.sums(), damp);
  }
  [[nodiscard]] static Whitening diagonal(const HessianAccumulator& h, double damp = 0.01) {
    const Matrix<double> hm = h.hessian_f64();
    std::vector<double> d(hm.rows());
    for (std::size_t j = 0; j < d.size(); ++j) d[j] = hm(j, j);
    return diagonal(d, damp);
  }

  [[nodiscard]] WhiteningKind kind() const noexcept { return kind_; }
  [[nodiscard]] std::size_t channels() const noexcept { return cin_; }
  /// The damping λ actually used (0 for identity).
  [[nodiscard]] double lambda() const noexcept { return lambda_; }

  /// W S (rows x cin, double). Throws if W has another column count.
  [[nodiscard]] Matrix<double> whiten(MatrixView<const double> w) const {
    SPARQ_CHECK(w.cols() == cin_, "Whitening::whiten: W has ", w.cols(), " columns, expected cin = ", cin_);
    Matrix<double> out(w.rows(), cin_);
    switch (kind_) {
      case WhiteningKind::identity:
        for (std::size_t i = 0; i < w.rows(); ++i) std::copy(w.row(i), w.row(i) + cin_, out.row(i));
        break;
      case WhiteningKind::diagonal:
        for (std::size_t i = 0; i < w.rows(); ++i)
          for (std::size_t j = 0; j < cin_; ++j) out(i, j) = w(i, j) * diag_[j];
        break;
      case WhiteningKind::cholesky:
        kernels::gemm(kernels::Trans::no, kernels::Trans::no, w.rows(), cin_, cin_, 1.0, w.data(), w.stride(),
                      l_.data(), cin_, 0.0, out.data(), cin_);
        break;
    }
    return out;
  }

  /// B S⁻¹ (rows x cin, double), in place.
  void unwhiten(Matrix<double>& b) const {
    SPARQ_CHECK(b.cols() == cin_, "Whitening::unwhiten: B has ", b.cols(), " columns, expected cin = ", cin_);
    switch (kind_) {
      case WhiteningKind::identity: break;
      case WhiteningKind::diagonal:
        for (std::size_t i = 0; i < b.rows(); ++i)
          for (std::size_t j = 0; j < cin_; ++j) b(i, j) /= diag_[j];
        break;
      case WhiteningKind::cholesky: {
        Matrix<double> out(b.rows(), cin_);
        kernels::gemm(kernels::Trans::no, kernels::Trans::no, b.rows(), cin_, cin_, 1.0, b.data(), cin_,
                      linv_.data(), cin_, 0.0, out.data(), cin_);
        b = std::move(out);
        break;
      }
    }
  }

 private:
  Whitening() = default;

  static std::size_t check_square(MatrixView<const double> h, double damp, const char* who) {
    SPARQ_CHECK(h.rows() > 0 && h.rows() == h.cols(), who, ": H is ", h.rows(), "x", h.cols(),
                ", expected a non-empty square matrix");
    SPARQ_CHECK(damp >= 0 && std::isfinite(damp), who, ": damp = ", damp, ", expected >= 0");
    for (std::size_t i = 0; i < h.rows(); ++i)
      for (std::size_t j = 0; j < h.cols(); ++j)
        SPARQ_CHECK(std::isfinite(h(i, j)), who, ": non-finite H(", i, ", ", j, ") = ", h(i, j));
    return h.rows();
  }
  static double mean_diag(MatrixView<const double> h) {
    double s = 0;
    for (std::size_t i = 0; i < h.rows(); ++i) s += h(i, i);
    return s / static_cast<double>(h.rows());
  }

  WhiteningKind kind_ = WhiteningKind::identity;
  std::size_t cin_ = 0;
  double lambda_ = 0;
  Matrix<double> l_, linv_;
  std::vector<double> diag_;
};

}  // namespace sparq::lowrank
