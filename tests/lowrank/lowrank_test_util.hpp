// Helpers of the low-rank tests: random orthogonal factors, matrices with a known spectrum, norms.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sparq/core/matrix_view.hpp"
#include "sparq/lowrank/householder_qr.hpp"
#include "sparq/lowrank/randomized_svd.hpp"

namespace lowrank_test {

using sparq::Matrix;

/// m x k matrix with orthonormal columns: Q of a Gaussian matrix.
inline Matrix<double> random_orthonormal(std::size_t m, std::size_t k, std::uint64_t seed) {
  const auto g = sparq::lowrank::detail::gaussian(m * k, seed);
  Matrix<double> y(m, k);
  for (std::size_t i = 0; i < m * k; ++i) y.data()[i] = g[i];
  return sparq::lowrank::householder_qr(y.view(), false).q;
}

/// U diag(s) Vᵀ with random orthonormal U (m x k), V (n x k), k = s.size().
inline Matrix<double> with_spectrum(std::size_t m, std::size_t n, const std::vector<double>& s, std::uint64_t seed) {
  const std::size_t k = s.size();
  const auto u = random_orthonormal(m, k, seed), v = random_orthonormal(n, k, seed + 1000);
  Matrix<double> a(m, n, 0.0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double acc = 0;
      for (std::size_t p = 0; p < k; ++p) acc += u(i, p) * s[p] * v(j, p);
      a(i, j) = acc;
    }
  return a;
}

inline Matrix<float> to_float(const Matrix<double>& a) {
  Matrix<float> f(a.rows(), a.cols());
  for (std::size_t i = 0; i < a.size(); ++i) f.data()[i] = static_cast<float>(a.data()[i]);
  return f;
}

/// max |MᵀM − I| over the columns of m (rows x cols).
inline double orthonormality_error_cols(const Matrix<double>& m) {
  double e = 0;
  for (std::size_t a = 0; a < m.cols(); ++a)
    for (std::size_t b = 0; b < m.cols(); ++b) {
      double d = 0;
      for (std::size_t i = 0; i < m.rows(); ++i) d += m(i, a) * m(i, b);
      e = std::max(e, std::fabs(d - (a == b ? 1.0 : 0.0)));
    }
  return e;
}

/// max |M Mᵀ − I| over the rows.
inline double orthonormality_error_rows(const Matrix<double>& m) {
  double e = 0;
  for (std::size_t a = 0; a < m.rows(); ++a)
    for (std::size_t b = 0; b < m.rows(); ++b) {
      double d = 0;
      for (std::size_t j = 0; j < m.cols(); ++j) d += m(a, j) * m(b, j);
      e = std::max(e, std::fabs(d - (a == b ? 1.0 : 0.0)));
    }
  return e;
}

template <class A, class B>
double frob_diff2(const A& a, const B& b) {
  double e = 0;
  for (std::size_t i = 0; i < a.rows(); ++i)
    for (std::size_t j = 0; j < a.cols(); ++j) {
      const double d = static_cast<double>(a(i, j)) - static_cast<double>(b(i, j));
      e += d * d;
    }
  return e;
}

}  // namespace lowrank_test
