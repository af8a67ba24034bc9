// Same results on every SIMD target: every kernel the compression math uses is computed on every
// target compiled into this binary and supported by the CPU, and must give the same bits on all of
// them AND the bits of a scalar implementation of the canonical order written here (so a binary
// built for one target alone still checks something). See docs/kernels.md, "Same results on every
// target", and include/sparq/kernels/canonical.hpp.
//
// Inputs come from an integer generator (exact float values), not from <random>'s distributions
// (those call libm, which may differ between machines), so the final hash printed by the last test
// case is comparable between an x86 and an aarch64 build: equal hashes = equal outputs.
//
// The scalar references round each product with a volatile store (a mechanism independent of the
// kernels' asm barrier), so g++'s default -ffp-contract=fast cannot fuse them either.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "sparq/kernels/experimental/gemv_f32_batch.hpp"
#include "sparq/kernels/attention.hpp"
#include "sparq/kernels/cholesky.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/kernels/gemm_dense.hpp"
#include "sparq/kernels/gemv_f32.hpp"
#include "sparq/kernels/hessian.hpp"
#include "sparq/kernels/sar_range.hpp"
#include "sparq_test.hpp"

namespace {

namespace k = sparq::kernels;

// Every target xsimd can name here; those not compiled in or not supported by the CPU are skipped.
using all_archs = xsimd::arch_list<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::avx2, xsimd::sse2, xsimd::neon64>;

template <class F>
void for_every_arch(F&& f) {
  sparq_test::detail::for_each(f, all_archs{});
}

const std::size_t kSizes[] = {1, 3, 15, 16, 17, 31, 33, 100, 257, 1000};

/// Deterministic exact floats: m·2^e with a 16-bit signed m and e in a small range.
template <class T>
std::vector<T> gen(std::size_t n, std::uint32_t seed, int emin = -18, int erange = 6) {
  std::vector<T> v(n);
  std::uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const auto m = static_cast<std::int32_t>(static_cast<std::int16_t>(s >> 40));
    const int e = emin + static_cast<int>((s >> 33) % static_cast<std::uint64_t>(erange));
    x = static_cast<T>(std::ldexp(static_cast<double>(m), e));
  }
  return v;
}

/// FNV-1a over the bytes of every output checked (printed at the end for cross-machine comparison).
std::uint64_t g_hash = 1469598103934665603ull;
template <class T>
void hash_in(const std::vector<T>& v) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (std::size_t i = 0; i < v.size() * sizeof(T); ++i) g_hash = (g_hash ^ p[i]) * 1099511628211ull;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// Runs `compute(arch)` on every arch, REQUIREs all results and `ref` to be bit-identical, hashes.
template <class T, class F>
void check_all(const std::vector<T>& ref, F&& compute, const char* what) {
  int archs = 0;
  for_every_arch([&](auto arch) {
    const std::vector<T> got = compute(arch);
    INFO(what << " on " << decltype(arch)::name());
    REQUIRE(same_bits(got, ref));
    ++archs;
  });
  REQUIRE(archs >= 1);
  hash_in(ref);
}

// ---------------------------------------------------------------------------------------------
// Scalar canonical references
// ---------------------------------------------------------------------------------------------

template <class T>
T rmul(T a, T b) {
  volatile T p = a * b;
  return p;
}

template <class T>
T ref_tree(const T* l) {
  T a[8], b[4];
  for (int i = 0; i < 8; ++i) a[i] = l[i] + l[i + 8];
  for (int i = 0; i < 4; ++i) b[i] = a[i] + a[i + 4];
  return (b[0] + b[2]) + (b[1] + b[3]);
}

template <class T>
T ref_dot(const T* a, const T* b, std::size_t n, std::size_t sa = 1, std::size_t sb = 1) {
  T lanes[16] = {};
  for (std::size_t j = 0; j < n; ++j) lanes[j % 16] = lanes[j % 16] + rmul(a[j * sa], b[j * sb]);
  return ref_tree(lanes);
}

float ref_exp(float x) {
  const bool under = x < -87.0f;
  x = x > 88.0f ? 88.0f : (under ? -87.0f : x);
  volatile float t = rmul(x, 1.44269504088896341f) + 12582912.0f;
  const float n = t - 12582912.0f;
  float r = x - rmul(n, 0.693359375f);
  r = r - rmul(n, -2.12194440e-4f);
  const float z = rmul(r, r);
  const float c[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                      5.0000001201e-1f};
  float p = c[0];
  for (int i = 1; i < 6; ++i) p = rmul(p, r) + c[i];
  const float y = (rmul(p, z) + r) + 1.0f;
  const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<int>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &bits, 4);
  return under ? 0.0f : rmul(y, s);
}

/// C = beta C + alpha op(A) op(B) in gemm's canonical order (k slices of 192).
template <class T>
void ref_gemm(k::Trans ta, k::Trans tb, std::size_t m, std::size_t n, std::size_t kk, T alpha, const T* A,
              std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      T& c = C[i * ldc + j];
      if (beta == T(0)) c = T(0);
      else if (beta != T(1)) c = c * beta;
    }
  if (kk == 0 || alpha == T(0)) return;
  for (std::size_t p0 = 0; p0 < kk; p0 += 192) {
    const std::size_t p1 = std::min(kk, p0 + 192);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        T acc = T(0);
        for (std::size_t p = p0; p < p1; ++p) {
          const T a = ta == k::Trans::no ? A[i * lda + p] : A[p * lda + i];
          const T b = tb == k::Trans::no ? B[p * ldb + j] : B[j * ldb + p];
          acc = acc + rmul(a, b);
        }
        C[i * ldc + j] = C[i * ldc + j] + rmul(alpha, acc);
      }
  }
}

/// cholesky_lower with the same blocking, scalar canonical pieces.
template <class T>
std::size_t ref_cholesky(T* A, std::size_t n, std::size_t lda) {
  constexpr std::size_t NB = 64;
  for (std::size_t k0 = 0; k0 < n; k0 += NB) {
    const std::size_t nb = std::min(NB, n - k0);
    T* Akk = A + k0 * lda + k0;
    for (std::size_t j = 0; j < nb; ++j) {
      T* rj = Akk + j * lda;
      const T d = rj[j] - ref_dot(rj, rj, j);
      if (!(d > T(0))) return k0 + j;
      rj[j] = std::sqrt(d);
      const T inv = T(1) / rj[j];
      for (std::size_t i = j + 1; i < nb; ++i) {
        T* ri = Akk + i * lda;
        ri[j] = (ri[j] - ref_dot(ri, rj, j)) * inv;
      }
    }
    const std::size_t rest = n - k0 - nb;
    if (rest == 0) break;
    T* A21 = A + (k0 + nb) * lda + k0;
    for (std::size_t i = 0; i < rest; ++i) {
      T* ri = A21 + i * lda;
      for (std::size_t j = 0; j < nb; ++j) ri[j] = (ri[j] - ref_dot(ri, Akk + j * lda, j)) / Akk[j * lda + j];
    }
    ref_gemm(k::Trans::no, k::Trans::yes, rest, rest, nb, T(-1), A21, lda, A21, lda, T(1),
             A + (k0 + nb) * lda + k0 + nb, lda);
  }
  for (std::size_t i = 0; i < n; ++i) std::fill(A + i * lda + i + 1, A + i * lda + n, T(0));
  return n;
}

/// Symmetric positive definite n x n: G Gᵀ / n + I, built with the reference gemm (exact inputs).
template <class T>
std::vector<T> spd(std::size_t n, std::uint32_t seed) {
  const auto g = gen<T>(n * n, seed, -10, 4);
  std::vector<T> h(n * n);
  ref_gemm(k::Trans::no, k::Trans::yes, n, n, n, T(1) / T(n), g.data(), n, g.data(), n, T(0), h.data(), n);
  for (std::size_t i = 0; i < n; ++i) h[i * n + i] = h[i * n + i] + T(1);
  return h;
}

/// Scalar softmax in the canonical order: max, ref_exp(a − max) summed in 16 lanes by ref_tree, × 1/sum.
std::vector<float> ref_softmax(std::vector<float> a) {
  float mx = a[0];
  for (const float v : a) mx = std::max(mx, v);
  float lanes[16] = {};
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = ref_exp(a[i] - mx);
    lanes[i % 16] = lanes[i % 16] + a[i];
  }
  const float inv = 1.0f / ref_tree(lanes);
  for (auto& v : a) v *= inv;
  return a;
}

}  // namespace

TEST_CASE("canonical dot: gemv_f32, gemv_f32_batch, attn_dot on every target", "[kernels][canonical]") {
  for (const std::size_t cols : kSizes) {
    const std::size_t rows = 7;
    const auto w = gen<float>(rows * cols, 1 + static_cast<std::uint32_t>(cols));
    const auto x = gen<float>(3 * cols, 2 + static_cast<std::uint32_t>(cols));
    std::vector<float> ref(rows), ref3(3 * rows);
    for (std::size_t r = 0; r < rows; ++r) ref[r] = ref_dot(w.data() + r * cols, x.data(), cols);
    for (std::size_t t = 0; t < 3; ++t)
      for (std::size_t r = 0; r < rows; ++r) ref3[t * rows + r] = ref_dot(w.data() + r * cols, x.data() + t * cols, cols);
    INFO("cols " << cols);
    check_all(ref, [&](auto arch) {
      std::vector<float> y(rows);
      k::gemv_f32<decltype(arch)>(w.data(), rows, cols, x.data(), y.data());
      return y;
    }, "gemv_f32");
    check_all(ref3, [&](auto arch) {
      std::vector<float> y(3 * rows);
      k::gemv_f32_batch<decltype(arch)>(w.data(), rows, cols, x.data(), 3, y.data());
      return y;
    }, "gemv_f32_batch");
    check_all(ref, [&](auto arch) {
      std::vector<float> y(rows);
      for (std::size_t r = 0; r < rows; ++r) y[r] = k::attn_dot<decltype(arch)>(w.data() + r * cols, x.data(), cols);
      return y;
    }, "attn_dot");
  }
}

TEST_CASE("canonical dot: dense_gemm on every target, every tile shape", "[kernels][canonical]") {
  for (const std::size_t cin : kSizes) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{5}, std::size_t{17}}) {
      for (const std::size_t cout : {std::size_t{1}, std::size_t{3}, std::size_t{17}}) {
        const std::size_t ldx = cin + 3, ldw = cin + 1, ldy = cout + 2;
        const auto X = gen<float>(n * ldx, 3 + static_cast<std::uint32_t>(cin * 7 + n));
        const auto W = gen<float>(cout * ldw, 4 + static_cast<std::uint32_t>(cin * 5 + cout));
        std::vector<float> ref(n * ldy, -1.0f);
        for (std::size_t t = 0; t < n; ++t)
          for (std::size_t o = 0; o < cout; ++o) ref[t * ldy + o] = ref_dot(X.data() + t * ldx, W.data() + o * ldw, cin);
        INFO("n " << n << " cout " << cout << " cin " << cin);
        check_all(ref, [&](auto arch) {
          std::vector<float> y(n * ldy, -1.0f);
          k::dense_gemm<decltype(arch)>(X.data(), ldx, n, W.data(), ldw, cout, cin, y.data(), ldy);
          return y;
        }, "dense_gemm");
      }
    }
  }
}

TEST_CASE("canonical softmax and axpy on every target", "[kernels][canonical]") {
  for (const std::size_t n : kSizes) {
    auto a = gen<float>(n, 5 + static_cast<std::uint32_t>(n), -3, 6);  // |a| up to 2^17: many exps flush to 0
    const std::vector<float> ref = ref_softmax(a);
    INFO("n " << n);
    check_all(ref, [&](auto arch) {
      std::vector<float> y(a);
      k::softmax<decltype(arch)>(y.data(), n);
      return y;
    }, "softmax");

    const auto row = gen<float>(n, 6 + static_cast<std::uint32_t>(n));
    std::vector<float> ax(a);
    for (std::size_t i = 0; i < n; ++i) ax[i] = ax[i] + rmul(0.37f, row[i]);
    check_all(ax, [&](auto arch) {
      std::vector<float> y(a);
      k::attn_axpy<decltype(arch)>(0.37f, row.data(), y.data(), n);
      return y;
    }, "attn_axpy");
  }
}

TEST_CASE("attn_head: one call equals attn_axpy, softmax and attn_dot, and the scalar order, on every target",
          "[kernels][canonical]") {
  for (const std::size_t len : kSizes) {
    for (const std::size_t hd : {std::size_t{1}, std::size_t{8}, std::size_t{13}}) {
      const std::size_t ld = len + 5;
      const auto q = gen<float>(hd, 11 + static_cast<std::uint32_t>(len + hd), -4, 4);
      const auto kc = gen<float>(hd * ld, 12 + static_cast<std::uint32_t>(len * 3 + hd), -4, 4);
      const auto vc = gen<float>(hd * ld, 13 + static_cast<std::uint32_t>(len * 5 + hd));
      const float scale = 0.353553385f;
      // Scalar reference: scores in d order from +0, then the canonical softmax and dots.
      std::vector<float> a(len);
      for (std::size_t s = 0; s < len; ++s) {
        float acc = 0.0f;
        for (std::size_t d = 0; d < hd; ++d) acc = acc + rmul(rmul(q[d], scale), kc[d * ld + s]);
        a[s] = acc;
      }
      a = ref_softmax(a);
      std::vector<float> ref(hd);
      for (std::size_t d = 0; d < hd; ++d) ref[d] = ref_dot(a.data(), vc.data() + d * ld, len);
      INFO("len " << len << " hd " << hd);
      check_all(ref, [&](auto arch) {
        using A = decltype(arch);
        std::vector<float> scratch(len), out(hd);
        k::attn_head<A>(q.data(), scale, kc.data(), vc.data(), ld, hd, len, scratch.data(), out.data());
        // The pieces model::Llama called before attn_head existed give the same bits.
        std::vector<float> a2(len, 0.0f), out2(hd);
        for (std::size_t d = 0; d < hd; ++d) k::attn_axpy<A>(q[d] * scale, kc.data() + d * ld, a2.data(), len);
        k::softmax<A>(a2.data(), len);
        for (std::size_t d = 0; d < hd; ++d) out2[d] = k::attn_dot<A>(a2.data(), vc.data() + d * ld, len);
        REQUIRE(std::memcmp(out.data(), out2.data(), hd * sizeof(float)) == 0);
        return out;
      }, "attn_head");
    }
  }
}

TEST_CASE("canonical exp: every target equals the scalar form over a sweep", "[kernels][canonical]") {
  std::vector<float> xs;
  for (float x = -100.0f; x <= 100.0f; x += 0.0137f) xs.push_back(x);
  xs.push_back(0.0f);
  xs.push_back(-0.0f);
  xs.push_back(-std::numeric_limits<float>::infinity());
  xs.push_back(std::numeric_limits<float>::infinity());
  std::vector<float> ref(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) ref[i] = ref_exp(xs[i]);
  // Accuracy within the kept range: at most 2 ulp from the double exp.
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (xs[i] >= -87.0f && xs[i] <= 88.0f) {
      const double e = std::exp(static_cast<double>(xs[i]));
      REQUIRE(std::fabs(ref[i] - e) <= 2.0 * e * 5.96e-8 + 1e-45);
    }
  }
  check_all(ref, [&](auto arch) {
    using B = xsimd::batch<float, decltype(arch)>;
    std::vector<float> y(xs.size());
    std::size_t i = 0;
    for (; i + B::size <= xs.size(); i += B::size) k::canonical::exp<decltype(arch)>(B::load_unaligned(xs.data() + i)).store_unaligned(y.data() + i);
    for (; i < xs.size(); ++i) y[i] = k::canonical::exp(xs[i]);
    return y;
  }, "canonical::exp");
}

TEMPLATE_TEST_CASE("canonical gemm (float, double) on every target, all transposes", "[kernels][canonical]", float,
                   double) {
  using T = TestType;
  const std::size_t dims[] = {1, 3, 17, 33};
  for (const std::size_t kk : kSizes) {
    for (const std::size_t m : dims) {
      for (const std::size_t n : dims) {
        if (kk >= 257 && m * n > 100) continue;  // keeps the test quick; every path is still covered
        for (const int tr : {0, 1, 2, 3}) {
          const auto ta = (tr & 1) ? k::Trans::yes : k::Trans::no;
          const auto tb = (tr & 2) ? k::Trans::yes : k::Trans::no;
          const std::size_t lda = (ta == k::Trans::no ? kk : m) + 1, ldb = (tb == k::Trans::no ? n : kk) + 2;
          const std::size_t ldc = n + 1;
          const auto A = gen<T>((ta == k::Trans::no ? m : kk) * lda, 7 + static_cast<std::uint32_t>(kk + m));
          const auto Bm = gen<T>((tb == k::Trans::no ? kk : n) * ldb, 8 + static_cast<std::uint32_t>(kk + n));
          const auto C0 = gen<T>(m * ldc, 9 + static_cast<std::uint32_t>(m * n));
          for (const T beta : {T(0), T(1), T(0.5)}) {
            std::vector<T> ref(C0);
            ref_gemm<T>(ta, tb, m, n, kk, T(0.75), A.data(), lda, Bm.data(), ldb, beta, ref.data(), ldc);
            INFO("m " << m << " n " << n << " k " << kk << " trans " << tr << " beta " << beta);
            check_all(ref, [&](auto arch) {
              std::vector<T> c(C0);
              k::gemm<decltype(arch)>(ta, tb, m, n, kk, T(0.75), A.data(), lda, Bm.data(), ldb, beta, c.data(), ldc);
              return c;
            }, "gemm");
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("canonical Cholesky, triangular inverse and inverse upper factor on every target",
                   "[kernels][canonical]", float, double) {
  using T = TestType;
  for (const std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{17}, std::size_t{100}, std::size_t{257}}) {
    const auto H = spd<T>(n, 10 + static_cast<std::uint32_t>(n));
    std::vector<T> L(H);
    REQUIRE(ref_cholesky(L.data(), n, n) == n);
    INFO("n " << n);
    check_all(L, [&](auto arch) {
      std::vector<T> a(H);
      REQUIRE(k::cholesky_lower<decltype(arch)>(a.data(), n, n) == n);
      return a;
    }, "cholesky_lower");
    std::vector<T> Xinv0;
    for_every_arch([&](auto arch) {
      std::vector<T> X(n * n, T(7));
      k::invert_lower<decltype(arch)>(L.data(), n, n, X.data(), n);
      if (Xinv0.empty()) Xinv0 = X;
      REQUIRE(same_bits(X, Xinv0));
    });
    hash_in(Xinv0);
    std::vector<T> U0;
    for_every_arch([&](auto arch) {
      std::vector<T> U(n * n);
      REQUIRE(k::inverse_upper_factor<decltype(arch)>(H.data(), n, n, U.data(), n) == n);
      if (U0.empty()) U0 = U;
      REQUIRE(same_bits(U, U0));
    });
    hash_in(U0);
  }
}

TEST_CASE("canonical SAR ranges on every target", "[kernels][canonical]") {
  for (const std::size_t cin : {std::size_t{1}, std::size_t{17}, std::size_t{100}}) {
    for (const std::size_t cout : {std::size_t{3}, std::size_t{33}}) {
      const std::size_t T = 31;
      const auto w = gen<float>(cout * cin, 11 + static_cast<std::uint32_t>(cin + cout), -8, 4);
      const auto x = gen<float>(T * cin, 12 + static_cast<std::uint32_t>(cin), -8, 4);
      std::vector<float> y(T * cout);
      ref_gemm<float>(k::Trans::no, k::Trans::yes, T, cout, cin, 1.0f, x.data(), cin, w.data(), cin, 0.0f, y.data(),
                      cout);
      std::vector<float> ref(cout * cin);
      for (std::size_t kq = 0; kq < cout; ++kq)
        for (std::size_t j = 0; j < cin; ++j) {
          float hi = -std::numeric_limits<float>::infinity(), lo = std::numeric_limits<float>::infinity();
          for (std::size_t t = 0; t < T; ++t) {
            const float v = y[t * cout + kq] - rmul(x[t * cin + j], w[kq * cin + j]);
            hi = std::max(hi, v);
            lo = std::min(lo, v);
          }
          ref[kq * cin + j] = hi - lo;
        }
      INFO("cin " << cin << " cout " << cout);
      check_all(ref, [&](auto arch) {
        sparq::SarRangeAccumulator<decltype(arch)> acc(sparq::MatrixView<const float>(w.data(), cout, cin));
        acc.add(sparq::MatrixView<const float>(x.data(), T, cin));
        const auto a = acc.ranges();
        std::vector<float> out(cout * cin);
        for (std::size_t kq = 0; kq < cout; ++kq)
          for (std::size_t j = 0; j < cin; ++j) out[kq * cin + j] = a(kq, j);
        return out;
      }, "SarRangeAccumulator");
    }
  }
}

TEST_CASE("canonical Hessian accumulation on every target, any token split", "[kernels][canonical]") {
  // sums[i, j] (j <= i) += sum_t x_ti x_tj in double, token by token in order: the scalar loop below.
  // Sizes cover partial panels (n % 8 != 0), one row block, more than one 256-token chunk, and (n =
  // 150) the threaded path.
  for (const std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{21}, std::size_t{64}, std::size_t{150}}) {
    for (const std::size_t T : {std::size_t{1}, std::size_t{37}, std::size_t{300}}) {
      const std::size_t ldx = n + 3;
      const auto x = gen<float>(T * ldx, 21 + static_cast<std::uint32_t>(n * 7 + T), -12, 8);
      const auto s0 = gen<double>(n * n, 22 + static_cast<std::uint32_t>(n), -6, 4);
      std::vector<double> ref = s0;
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t j = 0; j <= i; ++j)
            ref[i * n + j] += static_cast<double>(x[t * ldx + i]) * static_cast<double>(x[t * ldx + j]);
      auto lower = [n](std::vector<double> v) {  // only j <= i is specified
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t j = i + 1; j < n; ++j) v[i * n + j] = 0.0;
        return v;
      };
      INFO("n " << n << " tokens " << T);
      check_all(lower(ref), [&](auto arch) {
        std::vector<double> s = s0;
        k::hessian_accumulate<decltype(arch)>(x.data(), T, ldx, n, s.data());
        return lower(s);
      }, "hessian_accumulate");
      check_all(lower(ref), [&](auto arch) {  // the same tokens in three calls
        std::vector<double> s = s0;
        const std::size_t a = T / 3, b = T - T / 4;
        k::hessian_accumulate<decltype(arch)>(x.data(), a, ldx, n, s.data());
        k::hessian_accumulate<decltype(arch)>(x.data() + a * ldx, b - a, ldx, n, s.data());
        k::hessian_accumulate<decltype(arch)>(x.data() + b * ldx, T - b, ldx, n, s.data());
        return lower(s);
      }, "hessian_accumulate (split)");
    }
  }
}

TEST_CASE("canonical outputs hash (compare between machines)", "[kernels][canonical][hash]") {
  // Runs last in declaration order: the hash covers every output checked above.
  std::printf("canonical outputs hash: %016llx (targets:", static_cast<unsigned long long>(g_hash));
  for_every_arch([](auto arch) { std::printf(" %s", decltype(arch)::name()); });
  std::printf(")\n");
  SUCCEED();
}
