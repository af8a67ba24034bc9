// GEMM and Cholesky kernels vs naive double-precision references, on every arch and ragged sizes.
#include <cmath>
#include <vector>

#include "sparq/kernels/cholesky.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq_test.hpp"

using sparq::kernels::Trans;

namespace {

template <class T>
std::vector<T> rand_vec(std::size_t n, unsigned seed) {
  auto f = sparq_test::randn(n, seed);
  return std::vector<T>(f.begin(), f.end());
}

// Reference: C = beta*C + alpha*op(A)*op(B) in double.
template <class T>
std::vector<double> naive(Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, double alpha,
                          const std::vector<T>& A, std::size_t lda, const std::vector<T>& B,
                          std::size_t ldb, double beta, const std::vector<T>& C, std::size_t ldc) {
  std::vector<double> out(m * n);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::size_t p = 0; p < k; ++p) {
        const double a = ta == Trans::no ? A[i * lda + p] : A[p * lda + i];
        const double b = tb == Trans::no ? B[p * ldb + j] : B[j * ldb + p];
        s += a * b;
      }
      out[i * n + j] = beta * C[i * ldc + j] + alpha * s;
    }
  return out;
}

template <class T, class Arch>
void check_gemm(Arch, Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, T alpha, T beta,
                unsigned seed) {
  const std::size_t lda = (ta == Trans::no ? k : m) + 3;
  const std::size_t ldb = (tb == Trans::no ? n : k) + 1;
  const std::size_t ldc = n + 5;
  const auto A = rand_vec<T>((ta == Trans::no ? m : k) * lda, seed);
  const auto B = rand_vec<T>((tb == Trans::no ? k : n) * ldb, seed + 1);
  auto C = rand_vec<T>(m * ldc, seed + 2);
  const auto ref = naive(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  sparq::kernels::gemm<Arch>(ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  const double tol = (std::is_same_v<T, float> ? 2e-5 : 1e-12) * std::sqrt(double(k) + 1.0) * 4;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double r = ref[i * n + j];
      INFO(Arch::name() << " m=" << m << " n=" << n << " k=" << k << " i=" << i << " j=" << j);
      REQUIRE(std::abs(double(C[i * ldc + j]) - r) <= tol * (1.0 + std::abs(r)) * 4);
    }
}

}  // namespace

TEST_CASE("gemm matches the naive product for all transposes, ragged sizes, every arch", "[prune][gemm]") {
  sparq_test::for_each_arch([&](auto arch) {
    const std::size_t sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {13, 33, 17}, {37, 70, 200}, {150, 65, 400}, {25, 1, 3}};
    unsigned seed = 10;
    for (auto& s : sizes) {
      for (Trans ta : {Trans::no, Trans::yes})
        for (Trans tb : {Trans::no, Trans::yes}) {
          check_gemm<float>(arch, ta, tb, s[0], s[1], s[2], 1.0f, 0.0f, seed++);
          check_gemm<float>(arch, ta, tb, s[0], s[1], s[2], -0.5f, 1.0f, seed++);
          check_gemm<double>(arch, ta, tb, s[0], s[1], s[2], 2.0, 0.25, seed++);
        }
    }
  });
}

TEST_CASE("gemm with beta = 0 ignores NaN in C and k = 0 only scales", "[prune][gemm]") {
  std::vector<float> A(6, 1.0f), B(6, 2.0f), C(4, std::nanf(""));
  sparq::kernels::gemm(Trans::no, Trans::no, 2, 2, 3, 1.0f, A.data(), 3, B.data(), 2, 0.0f, C.data(), 2);
  for (float c : C) REQUIRE(c == 6.0f);
  sparq::kernels::gemm(Trans::no, Trans::no, 2, 2, 0, 1.0f, A.data(), 3, B.data(), 2, 0.5f, C.data(), 2);
  for (float c : C) REQUIRE(c == 3.0f);
  sparq::Matrix<float> a(2, 3), b(4, 2), c(2, 2);
  REQUIRE_THROWS_WITH(sparq::kernels::gemm(Trans::no, Trans::no, a.view(), b.view(), c.view()),
                      Catch::Contains("inner dimensions"));
}

namespace {
// SPD matrix: G G^T / n + 0.1 I.
template <class T>
std::vector<T> spd(std::size_t n, unsigned seed) {
  const auto g = sparq_test::randn(n * n, seed);
  std::vector<T> h(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::size_t p = 0; p < n; ++p) s += double(g[i * n + p]) * g[j * n + p];
      h[i * n + j] = T(s / double(n) + (i == j ? 0.1 : 0.0));
    }
  return h;
}
}  // namespace

TEST_CASE("cholesky, triangular inverse and inverse upper factor vs definitions", "[prune][cholesky]") {
  sparq_test::for_each_arch([&](auto arch) {
    using Arch = decltype(arch);
    for (std::size_t n : {1u, 5u, 63u, 64u, 65u, 150u}) {
      INFO(Arch::name() << " n=" << n);
      const auto H = spd<double>(n, unsigned(n));
      auto L = H;
      REQUIRE(sparq::kernels::cholesky_lower<Arch>(L.data(), n, n) == n);
      // L L^T == H, L lower.
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          if (j > i) REQUIRE(L[i * n + j] == 0.0);
          double s = 0;
          for (std::size_t p = 0; p < n; ++p) s += L[i * n + p] * L[j * n + p];
          REQUIRE(std::abs(s - H[i * n + j]) < 1e-10);
        }
      std::vector<double> X(n * n);
      sparq::kernels::invert_lower<Arch>(L.data(), n, n, X.data(), n);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          double s = 0;
          for (std::size_t p = 0; p < n; ++p) s += L[i * n + p] * X[p * n + j];
          REQUIRE(std::abs(s - (i == j ? 1.0 : 0.0)) < 1e-9);
        }
      // U upper with U^T U H == I, positive diagonal; float version close to double.
      std::vector<double> U(n * n);
      REQUIRE(sparq::kernels::inverse_upper_factor<Arch>(H.data(), n, n, U.data(), n) == n);
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(U[i * n + i] > 0);
        for (std::size_t j = 0; j < i; ++j) REQUIRE(U[i * n + j] == 0.0);
      }
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          double s = 0;  // (U^T U H)_ij
          for (std::size_t p = 0; p < n; ++p) {
            double uu = 0;
            for (std::size_t q = 0; q < n; ++q) uu += U[q * n + i] * U[q * n + p];
            s += uu * H[p * n + j];
          }
          REQUIRE(std::abs(s - (i == j ? 1.0 : 0.0)) < 1e-8);
        }
      const auto Hf = spd<float>(n, unsigned(n));
      std::vector<float> Uf(n * n);
      REQUIRE(sparq::kernels::inverse_upper_factor<Arch>(Hf.data(), n, n, Uf.data(), n) == n);
      for (std::size_t i = 0; i < n * n; ++i) REQUIRE(std::abs(Uf[i] - U[i]) < 2e-3 * (1 + std::abs(U[i])));
    }
  });
}

TEST_CASE("cholesky reports the failing pivot of an indefinite matrix", "[prune][cholesky]") {
  const std::size_t n = 70;
  auto H = spd<float>(n, 3);
  H[67 * n + 67] = -5.0f;
  auto L = H;
  REQUIRE(sparq::kernels::cholesky_lower(L.data(), n, n) == 67);
  std::vector<float> U(n * n);
  REQUIRE(sparq::kernels::inverse_upper_factor(H.data(), n, n, U.data(), n) != n);
}
