// Truncated SVD: one-sided Jacobi and randomized SVD against known spectra and an independent eigenvalue reference.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "lowrank_test_util.hpp"
#include "sparq/core/error.hpp"
#include "sparq/lowrank/householder_qr.hpp"
#include "sparq/lowrank/jacobi_svd.hpp"
#include "sparq/lowrank/randomized_svd.hpp"

using namespace lowrank_test;
using sparq::lowrank::jacobi_svd;
using sparq::lowrank::randomized_svd;
using sparq::lowrank::RandomizedSvdOptions;

namespace {

/// Eigenvalues of a symmetric matrix by the classical two-sided cyclic Jacobi method (the
/// textbook reference, independent of the one-sided code under test), sorted descending.
std::vector<double> symmetric_eigenvalues(Matrix<double> a) {
  const std::size_t n = a.rows();
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) off += a(p, q) * a(p, q);
    if (off < 1e-30) break;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        if (a(p, q) == 0.0) continue;
        const double theta = (a(q, q) - a(p, p)) / (2 * a(p, q));
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {  // A ← A J
          const double akp = a(k, p), akq = a(k, q);
          a(k, p) = c * akp - s * akq;
          a(k, q) = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < n; ++k) {  // A ← Jᵀ A
          const double apk = a(p, k), aqk = a(q, k);
          a(p, k) = c * apk - s * aqk;
          a(q, k) = s * apk + c * aqk;
        }
      }
  }
  std::vector<double> ev(n);
  for (std::size_t i = 0; i < n; ++i) ev[i] = a(i, i);
  std::sort(ev.rbegin(), ev.rend());
  return ev;
}

std::vector<double> geometric(std::size_t k, double first, double ratio) {
  std::vector<double> s(k);
  for (std::size_t i = 0; i < k; ++i) s[i] = first * std::pow(ratio, static_cast<double>(i));
  return s;
}

double tail_energy(const std::vector<double>& s, std::size_t r) {
  double e = 0;
  for (std::size_t i = r; i < s.size(); ++i) e += s[i] * s[i];
  return e;
}

}  // namespace

TEST_CASE("householder_qr: orthonormal Q, upper R, Y = QR, also rank-deficient", "[lowrank][svd]") {
  for (std::size_t rank_def : {0u, 3u}) {
    const std::size_t m = 50, l = 12;
    auto g = sparq::lowrank::detail::gaussian(m * l, 7);
    Matrix<double> y(m, l);
    for (std::size_t i = 0; i < m * l; ++i) y.data()[i] = g[i];
    for (std::size_t j = 0; j < rank_def; ++j)  // last columns copy earlier ones
      for (std::size_t i = 0; i < m; ++i) y(i, l - 1 - j) = y(i, j);
    const auto qr = sparq::lowrank::householder_qr(y.view());
    CHECK(orthonormality_error_cols(qr.q) < 1e-13);
    for (std::size_t i = 0; i < l; ++i)
      for (std::size_t j = 0; j < i; ++j) CHECK(qr.r(i, j) == 0.0);
    Matrix<double> prod(m, l, 0.0);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < l; ++j)
        for (std::size_t k = 0; k < l; ++k) prod(i, j) += qr.q(i, k) * qr.r(k, j);
    CHECK(frob_diff2(prod, y) < 1e-24 * static_cast<double>(m * l));
  }
  Matrix<double> wide(3, 5, 1.0);
  CHECK_THROWS_AS(sparq::lowrank::householder_qr(wide.view()), sparq::error);
}

TEST_CASE("jacobi_svd: exact on known spectra, orthonormal factors, Eckart-Young", "[lowrank][svd]") {
  struct Shape { std::size_t m, n; };
  for (const Shape sh : {Shape{40, 25}, Shape{25, 40}, Shape{64, 64}, Shape{30, 1}, Shape{1, 30}, Shape{33, 17}}) {
    const std::size_t k = std::min(sh.m, sh.n);
    const auto s = geometric(k, 3.0, 0.85);
    const auto a = with_spectrum(sh.m, sh.n, s, 11 + sh.m);
    const auto svd = jacobi_svd(a);
    REQUIRE(svd.rank() == k);
    for (std::size_t i = 0; i < k; ++i) CHECK(std::fabs(svd.s[i] - s[i]) <= 1e-12 * s[0] + 1e-10 * s[i]);
    CHECK(orthonormality_error_cols(svd.u) < 1e-12);
    CHECK(orthonormality_error_rows(svd.vt) < 1e-12);
    CHECK(frob_diff2(svd.reconstruct(), a) < 1e-24 * static_cast<double>(sh.m * sh.n));
    // Truncation: ||A − A_r||² = tail energy.
    for (std::size_t r : {std::size_t{1}, k / 2, k}) {
      if (r == 0) continue;
      const auto t = jacobi_svd(a, r);
      REQUIRE(t.rank() == r);
      const double err = frob_diff2(t.reconstruct(), a), tail = tail_energy(s, r);
      CHECK(std::fabs(err - tail) <= 1e-10 * (tail + s[0] * s[0] * 1e-10));
    }
  }
}

TEST_CASE("jacobi_svd agrees with eigenvalues of AᵀA (independent two-sided Jacobi)", "[lowrank][svd]") {
  const std::size_t m = 37, n = 21;
  const auto g = sparq::lowrank::detail::gaussian(m * n, 99);
  Matrix<float> a(m, n);
  for (std::size_t i = 0; i < m * n; ++i) a.data()[i] = static_cast<float>(g[i]);
  Matrix<double> ata(n, n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t t = 0; t < m; ++t) ata(i, j) += double(a(t, i)) * double(a(t, j));
  const auto ev = symmetric_eigenvalues(ata);
  const auto svd = jacobi_svd(a.view());
  for (std::size_t i = 0; i < n; ++i) CHECK(std::fabs(svd.s[i] - std::sqrt(ev[i])) <= 1e-9 * svd.s[0]);
}

TEST_CASE("jacobi_svd: rank-deficient input keeps U and V orthonormal", "[lowrank][svd]") {
  std::vector<double> s = {5, 2, 1, 0.5, 0, 0, 0};
  const auto a = with_spectrum(20, 7, s, 5);
  const auto svd = jacobi_svd(a);
  CHECK(orthonormality_error_cols(svd.u) < 1e-12);
  CHECK(orthonormality_error_rows(svd.vt) < 1e-12);
  for (std::size_t i = 4; i < 7; ++i) CHECK(svd.s[i] < 1e-13);
  const auto at = sparq::lowrank::detail::transpose(a);
  const auto svdt = jacobi_svd(at);
  CHECK(orthonormality_error_cols(svdt.u) < 1e-12);
  CHECK(orthonormality_error_rows(svdt.vt) < 1e-12);
  Matrix<double> zero(4, 3, 0.0);
  const auto z = jacobi_svd(zero);
  CHECK(z.s[0] == 0.0);
  CHECK(orthonormality_error_cols(z.u) < 1e-14);
}

TEST_CASE("randomized_svd: retained singular values to 1e-4, orthonormal, near Eckart-Young", "[lowrank][svd]") {
  struct Case { std::size_t m, n, r; double ratio; };
  for (const Case c : {Case{120, 80, 10, 0.7}, Case{80, 200, 16, 0.75}, Case{96, 96, 24, 0.8}, Case{60, 40, 40, 0.8}}) {
    const std::size_t k = std::min(c.m, c.n);
    const auto s = geometric(k, 10.0, c.ratio);
    const auto ad = with_spectrum(c.m, c.n, s, 3 + c.r);
    const auto af = to_float(ad);
    for (int fp64 = 0; fp64 < 2; ++fp64) {
      const auto svd = fp64 ? randomized_svd(ad, c.r) : randomized_svd(af, c.r);
      REQUIRE(svd.rank() == c.r);
      REQUIRE(svd.u.rows() == c.m);
      REQUIRE(svd.vt.cols() == c.n);
      const double tol = fp64 ? 1e-8 : 1e-4;
      for (std::size_t i = 0; i < c.r; ++i) CHECK(std::fabs(svd.s[i] - s[i]) <= tol * s[i]);
      CHECK(orthonormality_error_cols(svd.u) < 1e-10);
      CHECK(orthonormality_error_rows(svd.vt) < 1e-10);
      // Eckart–Young: ||A − U Σ Vᵀ||² equals the optimal tail energy (A float: + rounding of A).
      const double err = frob_diff2(svd.reconstruct(), ad), tail = tail_energy(s, c.r);
      const double slack = fp64 ? 1e-8 * tail + 1e-20 : 1e-3 * tail + 1e-10 * s[0] * s[0] * double(c.m * c.n);
      CHECK(err >= tail - slack);
      CHECK(err <= tail + slack);
    }
  }
}

TEST_CASE("randomized_svd: deterministic for a seed, seed-independent accuracy", "[lowrank][svd]") {
  const auto s = geometric(50, 1.0, 0.7);
  const auto a = to_float(with_spectrum(70, 50, s, 42));
  RandomizedSvdOptions o;
  const auto x = randomized_svd(a, 8, o), y = randomized_svd(a, 8, o);
  CHECK(x.s == y.s);
  CHECK(x.u.storage() == y.u.storage());
  CHECK(x.vt.storage() == y.vt.storage());
  o.seed = 12345;
  const auto z = randomized_svd(a, 8, o);
  CHECK(z.u.storage() != x.u.storage());  // another test matrix, another rounding
  for (std::size_t i = 0; i < 8; ++i) CHECK(std::fabs(z.s[i] - s[i]) <= 1e-4 * s[i]);
}

TEST_CASE("randomized_svd: rank-deficient input and power iteration counts", "[lowrank][svd]") {
  std::vector<double> s = {4, 3, 2, 1, 0.5};
  const auto a = with_spectrum(40, 30, s, 8);  // rank 5
  for (std::size_t q : {0u, 1u, 3u}) {
    RandomizedSvdOptions o;
    o.power_iterations = q;
    const auto svd = randomized_svd(a, 8, o);
    for (std::size_t i = 0; i < 5; ++i) CHECK(std::fabs(svd.s[i] - s[i]) <= 1e-10 * s[0]);
    for (std::size_t i = 5; i < 8; ++i) CHECK(svd.s[i] < 1e-12);
    CHECK(orthonormality_error_cols(svd.u) < 1e-10);
    CHECK(orthonormality_error_rows(svd.vt) < 1e-10);
  }
}

TEST_CASE("SVD: bad input throws sparq::error", "[lowrank][svd]") {
  Matrix<float> a(6, 4, 1.0f);
  CHECK_THROWS_AS(randomized_svd(a, 0), sparq::error);
  CHECK_THROWS_AS(randomized_svd(a, 5), sparq::error);
  CHECK_THROWS_AS(jacobi_svd(a, 5), sparq::error);
  a(2, 3) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(randomized_svd(a, 2), sparq::error);
  CHECK_THROWS_AS(jacobi_svd(a), sparq::error);
  a(2, 3) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(jacobi_svd(a), sparq::error);
  Matrix<float> empty;
  CHECK_THROWS_AS(jacobi_svd(empty), sparq::error);
  CHECK_THROWS_AS(randomized_svd(empty, 1), sparq::error);
}
