// Small dense helpers of the low-rank code (double dot/axpy with fixed summation order, conversions, orthonormal completion).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "sparq/core/matrix_view.hpp"

namespace sparq::lowrank::detail {

/// Σ a[i]·b[i] with four interleaved partial sums combined in a fixed order (deterministic).
[[nodiscard]] inline double dot(const double* a, const double* b, std::size_t n) noexcept {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

/// y += alpha·x.
inline void axpy(double alpha, const double* x, double* y, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

/// Copy of a float or double view as a contiguous double matrix.
template <class T>
[[nodiscard]] Matrix<double> to_double(MatrixView<const T> a) {
  Matrix<double> d(a.rows(), a.cols());
  for (std::size_t i = 0; i < a.rows(); ++i)
    for (std::size_t j = 0; j < a.cols(); ++j) d(i, j) = static_cast<double>(a(i, j));
  return d;
}

/// Transpose of a double matrix.
[[nodiscard]] inline Matrix<double> transpose(const Matrix<double>& a) {
  Matrix<double> t(a.cols(), a.rows());
  for (std::size_t i = 0; i < a.rows(); ++i)
    for (std::size_t j = 0; j < a.cols(); ++j) t(j, i) = a(i, j);
  return t;
}

/// `vecs` holds `count` vectors of length `len` (vector k at vecs + k·len). Vectors with
/// `valid[k] == false` are replaced so that all `count` are orthonormal: each is the first
/// canonical vector e_j (j = 0, 1, ...) whose component orthogonal to the vectors kept so far has
/// norm > 0.5 (else the largest such component seen), orthogonalised twice (classical
/// Gram–Schmidt, twice is enough) and normalised.
/// Requires count ≤ len and the valid vectors to be orthonormal already.
inline void complete_orthonormal(double* vecs, std::size_t len, std::size_t count, const std::vector<bool>& valid) {
  std::size_t next = 0;
  std::vector<double> best(len);
  for (std::size_t k = 0; k < count; ++k) {
    if (valid[k]) continue;
    double* v = vecs + k * len;
    double best_norm = -1.0;
    bool done = false;
    for (; next < len && !done; ++next) {
      std::fill(v, v + len, 0.0);
      v[next] = 1.0;
      for (int pass = 0; pass < 2; ++pass) {
        for (std::size_t o = 0; o < count; ++o) {
          if (o == k || (!valid[o] && o > k)) continue;  // later invalid slots are not filled yet
          const double* w = vecs + o * len;
          axpy(-dot(w, v, len), w, v, len);
        }
      }
      const double nrm = std::sqrt(dot(v, v, len));
      if (nrm > best_norm) {
        best_norm = nrm;
        std::copy(v, v + len, best.begin());
      }
      done = nrm > 0.5;  // a well-conditioned new direction: take it
    }
    if (!done) next = 0;  // none above 0.5: the best one seen (rescan from e_0 for the next slot)
    std::copy(best.begin(), best.end(), v);
    for (std::size_t i = 0; i < len; ++i) v[i] /= best_norm;
  }
}

}  // namespace sparq::lowrank::detail
