// LowRankFactors and factorize(): W ≈ A·B of a weight matrix, optionally activation-aware (whitened), with the rank rules.
//
// factorize(W, whitening, rule, svd options):
//   M = W S (whitening.hpp; S = I for plain SVD), M ≈ U_r Σ_r V_rᵀ (truncated SVD, svd options),
//   A = U_r Σ_r^{1/2} (cout x r),  B = Σ_r^{1/2} V_rᵀ S⁻¹ (r x cin),  so A·B = U_r Σ_r V_rᵀ S⁻¹.
// The product is the SVD-LLM factorisation (A = U_r Σ_r, B = V_rᵀ S⁻¹ in the paper); the √Σ split
// only balances the magnitudes of A and B, which keeps their per-row 8-bit quantisation (LoRC
// factors) accurate; A·B is the same.
// Rank rules (RankRule, precedence: rank, then energy, then budget):
//   rank r       fixed r, 1 ≤ r ≤ min(cout, cin);
//   energy e     smallest r with Σ_{i≤r} σ_i² ≥ e·Σ_i σ_i² of M (0 < e ≤ 1) — needs the full
//                spectrum, so it always uses the Jacobi SVD (small layers);
//   budget β     largest r with r·(cout + cin) ≤ β·cout·cin (0 < β ≤ 1; parameters of A and B
//                within a fraction β of W's), at least 1.
// SVD method: SvdMethod::automatic takes Jacobi for min(cout, cin) ≤ 256 and randomized_svd above;
// jacobi / randomized force one. The whitened spectrum is returned (full for Jacobi, the r + p
// computed values for randomized) so callers can report energies.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/lowrank/jacobi_svd.hpp"
#include "sparq/lowrank/randomized_svd.hpp"
#include "sparq/lowrank/svd.hpp"
#include "sparq/lowrank/whitening.hpp"

namespace sparq::lowrank {

/// How the rank is chosen (see the file comment). The default is a budget of half the parameters.
struct RankRule {
  std::size_t rank = 0;  ///< fixed rank if > 0
  double energy = 0.0;   ///< else, if > 0: retained fraction of the whitened energy
  double budget = 0.5;   ///< else: parameters of A and B as a fraction of W's
};

enum class SvdMethod : unsigned char { automatic, jacobi, randomized };

struct FactorizeOptions {
  RankRule rule{};
  SvdMethod method = SvdMethod::automatic;
  RandomizedSvdOptions randomized{};
  std::size_t jacobi_limit = 256;  ///< automatic: Jacobi when min(cout, cin) ≤ this
};

/// W ≈ A·B.
struct LowRankFactors {
  Matrix<float> a;                       ///< cout x r
  Matrix<float> b;                       ///< r x cin
  std::vector<double> singular_values;   ///< of the whitened matrix M = W S, descending (see above)
  WhiteningKind whitening = WhiteningKind::identity;

  [[nodiscard]] std::size_t rank() const noexcept { return a.cols(); }
  [[nodiscard]] std::size_t parameters() const noexcept { return a.size() + b.size(); }

  /// A·B (cout x cin) in double accumulation.
  [[nodiscard]] Matrix<float> product() const {
    Matrix<float> w(a.rows(), b.cols());
    add_to(w.view(), 0.0f);
    return w;
  }
  /// out = beta·out + A·B (out is cout x cin). Throws on a shape mismatch.
  void add_to(MatrixView<float> out, float beta = 1.0f) const {
    SPARQ_CHECK(out.rows() == a.rows() && out.cols() == b.cols(), "LowRankFactors::add_to: target is ", out.rows(),
                "x", out.cols(), ", expected ", a.rows(), "x", b.cols());
    std::vector<double> acc(b.cols());
    for (std::size_t i = 0; i < a.rows(); ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::size_t k = 0; k < rank(); ++k) {
        const double c = a(i, k);
        const float* bk = b.row(k);
        for (std::size_t j = 0; j < b.cols(); ++j) acc[j] += c * static_cast<double>(bk[j]);
      }
      float* o = out.row(i);
      for (std::size_t j = 0; j < b.cols(); ++j)
        o[j] = static_cast<float>((beta == 0.0f ? 0.0 : static_cast<double>(beta) * o[j]) + acc[j]);
    }
  }
};

/// Rank chosen by `rule` for a cout x cin matrix with (whitened) spectrum `s` (descending; may be
/// empty for the rank and budget rules). Throws sparq::error on a bad rule.
[[nodiscard]] inline std::size_t choose_rank(const RankRule& rule, std::size_t cout, std::size_t cin,
                                             const std::vector<double>& s = {}) {
  const std::size_t kmax = std::min(cout, cin);
  if (rule.rank > 0) {
    SPARQ_CHECK(rule.rank <= kmax, "low-rank: rank ", rule.rank, " exceeds min(rows, cols) = ", kmax, " of a ", cout,
                "x", cin, " matrix");
    return rule.rank;
  }
  if (rule.energy > 0) {
    SPARQ_CHECK(rule.energy <= 1.0, "low-rank: energy ", rule.energy, ", expected a fraction in (0, 1]");
    SPARQ_CHECK(s.size() == kmax, "low-rank: the energy rule needs the full spectrum (", kmax, " values), got ",
                s.size());
    double total = 0;
    for (double v : s) total += v * v;
    double acc = 0;
    for (std::size_t r = 0; r < kmax; ++r) {
      acc += s[r] * s[r];
      if (acc >= rule.energy * total) return r + 1;
    }
    return kmax;
  }
  SPARQ_CHECK(rule.budget > 0 && rule.budget <= 1.0 && std::isfinite(rule.budget), "low-rank: budget ", rule.budget,
              ", expected a fraction in (0, 1] (or set rank / energy)");
  const double r = std::floor(rule.budget * static_cast<double>(cout) * static_cast<double>(cin) /
                              static_cast<double>(cout + cin));
  return std::clamp(static_cast<std::size_t>(r), std::size_t{1}, kmax);
}

/// Factorises `w` (cout x cin) as described in the file comment. Throws sparq::error on an empty
/// or non-finite W, a whitening for another cin, or a bad rank rule.
[[nodiscard]] inline LowRankFactors factorize(MatrixView<const float> w, const Whitening& wh,
                                              const FactorizeOptions& opt = {}) {
  const std::size_t cout = w.rows(), cin = w.cols();
  SPARQ_CHECK(cout > 0 && cin > 0, "factorize: empty ", cout, "x", cin, " weight matrix");
  SPARQ_CHECK(wh.channels() == cin, "factorize: whitening for ", wh.channels(), " channels, W has cin = ", cin);
  for (std::size_t i = 0; i < cout; ++i) check_finite(w.row(i), cin, "factorize: W");
  const Matrix<double> wd = detail::to_double(w);
  const Matrix<double> m = wh.whiten(wd.view());
  const std::size_t kmax = std::min(cout, cin);
  const bool need_full = opt.rule.rank == 0 && opt.rule.energy > 0;
  const bool use_jacobi = need_full || opt.method == SvdMethod::jacobi ||
                          (opt.method == SvdMethod::automatic && kmax <= opt.jacobi_limit);
  Svd svd;
  std::size_t r = 0;
  std::vector<double> spectrum;
  if (use_jacobi) {
    svd = jacobi_svd(m.view());
    r = choose_rank(opt.rule, cout, cin, svd.s);
    spectrum = svd.s;
  } else {
    r = choose_rank(opt.rule, cout, cin);
    svd = randomized_svd(m.view(), r, opt.randomized);
    spectrum = svd.s;
  }
  LowRankFactors f;
  f.whitening = wh.kind();
  f.singular_values = std::move(spectrum);
  f.a = Matrix<float>(cout, r);
  Matrix<double> b(r, cin);
  for (std::size_t k = 0; k < r; ++k) {
    const double sq = std::sqrt(svd.s[k]);
    for (std::size_t i = 0; i < cout; ++i) f.a(i, k) = static_cast<float>(svd.u(i, k) * sq);
    for (std::size_t j = 0; j < cin; ++j) b(k, j) = svd.vt(k, j) * sq;
  }
  wh.unwhiten(b);
  f.b = Matrix<float>(r, cin);
  for (std::size_t i = 0; i < b.size(); ++i) f.b.data()[i] = static_cast<float>(b.data()[i]);
  return f;
}

}  // namespace sparq::lowrank
