// LowRankCompensation (LoRC): a rank-r correction A·B of the error W − Ŵ left by pruning and/or quantization, stored in 8 or 16 bits.
//
// Usage (a plain class; joint::Compressor wraps it as its last stage):
//   Compensation c = LowRankCompensation({.rank = 8}).apply(w_float, w_hat, hessian);
//   model.set_linear(b, l, std::make_unique<model::CompensatedLinear>(std::move(packed_op), std::move(c)));
// Statistics needed: the ORIGINAL float weights W, the compressed weights Ŵ as floats
// (dequantized / with pruned zeros; same shape), and for the activation-aware variant the
// linear's HessianAccumulator (cholesky whitening, the default) or ColumnSquareSum (diagonal).
// apply(w, w_hat) without statistics is LoRC as published (plain SVD of the error).
// It does not modify Ŵ; the runtime computes Ŵx + A(Bx) (model::CompensatedLinear), and
// Compensation::add_to(Ŵ) gives the equivalent dense matrix (fake application).
// Math: E = W − Ŵ, M = E S (whitening.hpp), M ≈ U_r Σ_r V_rᵀ, B₀ = Σ_r^{1/2} V_rᵀ S⁻¹. B₀ is
// stored (format), giving B̂; then, with `refit` (default), A is re-solved for the stored B̂ in the
// whitened least-squares sense, A = M Gᵀ (G Gᵀ)⁻¹ with G = B̂ S (r x r Cholesky solve; skipped if
// G Gᵀ is singular), else A = U_r Σ_r^{1/2}; then A is stored, giving Â. So the rounding of B is
// compensated by A, and min ||(E − Â B̂) S|| is approached up to the rounding of A alone.
// Defaults (LowRankCompensationOptions): rank 8, factors int8 per-row symmetric (Quantizer<Symmetric,
// PerChannel, 8>), cholesky whitening with damp 0.01, refit on. Bytes added per linear: see
// StoredFactor (int8: r·(cout + cin) + 4·(cout + r)).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/kernels/cholesky.hpp"
#include "sparq/lowrank/low_rank_factors.hpp"
#include "sparq/lowrank/stored_factor.hpp"
#include "sparq/lowrank/whitening.hpp"

namespace sparq::lowrank {

/// The stored correction: Ŵ + Â·B̂ approximates W.
struct Compensation {
  StoredFactor a;  ///< cout x r
  StoredFactor b;  ///< r x cin
  WhiteningKind whitening = WhiteningKind::identity;

  [[nodiscard]] std::size_t rank() const noexcept { return a.cols(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return a.bytes() + b.bytes(); }
  /// w_hat += Â·B̂ (the decoded factors), accumulated in double. Throws on a shape mismatch.
  void add_to(MatrixView<float> w_hat) const {
    LowRankFactors f;
    f.a = a.decode();
    f.b = b.decode();
    f.add_to(w_hat, 1.0f);
  }
};

struct LowRankCompensationOptions {
  std::size_t rank = 8;                             ///< r, 1 ≤ r ≤ min(cout, cin)
  FactorFormat format = FactorFormat::int8;         ///< storage of A and B
  WhiteningKind whitening = WhiteningKind::cholesky;  ///< for apply(w, w_hat, HessianAccumulator)
  double damp = 0.01;                               ///< λ = damp · mean(diag H)
  bool refit = true;                                ///< re-solve A for the stored B (see above)
};

class LowRankCompensation {
 public:
  LowRankCompensation() = default;
  explicit LowRankCompensation(const LowRankCompensationOptions& o) : o_(o) {
    SPARQ_CHECK(o.rank > 0, "LowRankCompensation: rank 0, expected >= 1");
    SPARQ_CHECK(o.damp >= 0, "LowRankCompensation: damp = ", o.damp, ", expected >= 0");
  }
  [[nodiscard]] const LowRankCompensationOptions& options() const noexcept { return o_; }

  /// Plain LoRC (SVD of the weight error).
  [[nodiscard]] Compensation apply(MatrixView<const float> w, MatrixView<const float> w_hat) const {
    return run(w, w_hat, Whitening::identity(w.cols()));
  }
  /// Activation-aware with the linear's Hessian (options().whitening).
  [[nodiscard]] Compensation apply(MatrixView<const float> w, MatrixView<const float> w_hat,
                                   const HessianAccumulator& h) const {
    SPARQ_CHECK(h.channels() == w.cols(), "LowRankCompensation::apply: W has cin = ", w.cols(),
                " but the Hessian has ", h.channels(), " channels");
    switch (o_.whitening) {
      case WhiteningKind::cholesky: return run(w, w_hat, Whitening::cholesky(h, o_.damp));
      case WhiteningKind::diagonal: return run(w, w_hat, Whitening::diagonal(h, o_.damp));
      case WhiteningKind::identity: break;
    }
    return apply(w, w_hat);
  }
  /// Activation-aware with per-channel scales (diagonal whitening).
  [[nodiscard]] Compensation apply(MatrixView<const float> w, MatrixView<const float> w_hat,
                                   const ColumnSquareSum& sq) const {
    SPARQ_CHECK(sq.channels() == w.cols(), "LowRankCompensation::apply: W has cin = ", w.cols(),
                " but the statistics have ", sq.channels(), " channels");
    if (o_.whitening == WhiteningKind::identity) return apply(w, w_hat);
    return run(w, w_hat, Whitening::diagonal(sq, o_.damp));
  }
  /// With a ready whitening.
  [[nodiscard]] Compensation apply(MatrixView<const float> w, MatrixView<const float> w_hat,
                                   const Whitening& wh) const {
    return run(w, w_hat, wh);
  }

 private:
  Compensation run(MatrixView<const float> w, MatrixView<const float> w_hat, const Whitening& wh) const {
    const std::size_t cout = w.rows(), cin = w.cols();
    SPARQ_CHECK(cout > 0 && cin > 0, "LowRankCompensation::apply: empty ", cout, "x", cin, " weight matrix");
    SPARQ_CHECK(w_hat.rows() == cout && w_hat.cols() == cin, "LowRankCompensation::apply: W is ", cout, "x", cin,
                " but the compressed weights are ", w_hat.rows(), "x", w_hat.cols());
    SPARQ_CHECK(o_.rank <= std::min(cout, cin), "LowRankCompensation: rank ", o_.rank,
                " exceeds min(rows, cols) = ", std::min(cout, cin));
    Matrix<float> e(cout, cin);
    for (std::size_t i = 0; i < cout; ++i) {
      check_finite(w.row(i), cin, "LowRankCompensation::apply: W");
      check_finite(w_hat.row(i), cin, "LowRankCompensation::apply: compressed W");
      for (std::size_t j = 0; j < cin; ++j) e(i, j) = w(i, j) - w_hat(i, j);
    }
    FactorizeOptions fo;
    fo.rule.rank = o_.rank;
    LowRankFactors f = factorize(e.view(), wh, fo);
    Compensation c;
    c.whitening = wh.kind();
    c.b = StoredFactor::encode(f.b.view(), o_.format);
    if (o_.refit) refit_left(e.view(), wh, c.b.decode(), f.a);
    c.a = StoredFactor::encode(f.a.view(), o_.format);
    return c;
  }

  /// a := M Gᵀ (G Gᵀ)⁻¹ with M = E S, G = B̂ S; left unchanged if G Gᵀ is not positive definite.
  static void refit_left(MatrixView<const float> e, const Whitening& wh, const Matrix<float>& bq, Matrix<float>& a) {
    const std::size_t cout = e.rows(), r = bq.rows();
    const Matrix<double> m = wh.whiten(detail::to_double(e).view());
    const Matrix<double> g = wh.whiten(detail::to_double(bq.view()).view());
    const std::size_t cin = g.cols();
    Matrix<double> ggt(r, r), mgt(cout, r);
    kernels::gemm(kernels::Trans::no, kernels::Trans::yes, r, r, cin, 1.0, g.data(), cin, g.data(), cin, 0.0,
                  ggt.data(), r);
    kernels::gemm(kernels::Trans::no, kernels::Trans::yes, cout, r, cin, 1.0, m.data(), cin, g.data(), cin, 0.0,
                  mgt.data(), r);
    if (kernels::cholesky_lower(ggt.data(), r, r) != r) return;
    // Row i of A solves (G Gᵀ) aᵢᵀ = (M Gᵀ)ᵢᵀ: forward then backward substitution with L Lᵀ.
    std::vector<double> y(r);
    for (std::size_t i = 0; i < cout; ++i) {
      for (std::size_t k = 0; k < r; ++k) {
        double s = mgt(i, k);
        for (std::size_t p = 0; p < k; ++p) s -= ggt(k, p) * y[p];
        y[k] = s / ggt(k, k);
      }
      for (std::size_t k = r; k-- > 0;) {
        double s = y[k];
        for (std::size_t p = k + 1; p < r; ++p) s -= ggt(p, k) * y[p];
        y[k] = s / ggt(k, k);
      }
      for (std::size_t k = 0; k < r; ++k) a(i, k) = static_cast<float>(y[k]);
    }
  }

  LowRankCompensationOptions o_{};
};

}  // namespace sparq::lowrank
