// lowrank/<op>/<m>x<n>/r<rank>: randomized SVD of LLaMA-7B-shaped synthetic layers (4096x4096, 11008x4096) with a known
// decaying spectrum, and the activation-aware (Cholesky-whitened) factorization of a 4096x4096 layer with 2048 correlated
// activation tokens. Counters: err_ratio = ||A − A_r||_F / optimal (Eckart–Young, known exactly from the spectrum),
// sv_maxrel = max_i≤r |σ̂_i − σ_i| / σ_i, out_err_aware / out_err_plain = relative layer-output errors.
// One iteration each (seconds): run with --benchmark_min_time=0.1 or as is.
//
// The synthetic matrix is A = H_u [diag(s); 0] H_vᵀ with H_u, H_v products of 4 random Householder reflectors
// (exactly orthogonal, cheap to apply), so its singular values are exactly s. A Gaussian test matrix is
// rotation invariant, so the randomized SVD's accuracy depends on the spectrum only, not on the singular vectors.
// Spectra: "slow" σ_i = (1 + i)^−0.5 (LLM-weight-like slow decay), "fast" σ_i = exp(−i/64).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "sparq/core/stats.hpp"
#include "sparq/quant/hessian.hpp"
#include "sparq/kernels/gemm.hpp"
#include "sparq/lowrank/low_rank_factors.hpp"
#include "sparq/lowrank/randomized_svd.hpp"
#include "sparq/lowrank/whitening.hpp"

namespace {

using sparq::Matrix;
using sparq::kernels::Trans;

std::vector<double> spectrum(std::size_t k, bool fast) {
  std::vector<double> s(k);
  for (std::size_t i = 0; i < k; ++i) s[i] = fast ? std::exp(-double(i) / 64.0) : 1.0 / std::sqrt(1.0 + double(i));
  return s;
}

/// A = H_u [diag(s); 0] H_vᵀ (see the file comment).
Matrix<float> synthetic(std::size_t m, std::size_t n, const std::vector<double>& s, std::uint64_t seed) {
  Matrix<double> a(m, n, 0.0);
  for (std::size_t i = 0; i < s.size(); ++i) a(i, i) = s[i];
  for (int k = 0; k < 4; ++k) {
    auto u = sparq::lowrank::detail::gaussian(m, seed + 2 * k);
    auto v = sparq::lowrank::detail::gaussian(n, seed + 2 * k + 1);
    double nu = 0, nv = 0;
    for (double x : u) nu += x * x;
    for (double x : v) nv += x * x;
    for (double& x : u) x /= std::sqrt(nu);
    for (double& x : v) x /= std::sqrt(nv);
    std::vector<double> w(n, 0.0), z(m, 0.0);
    for (std::size_t i = 0; i < m; ++i)  // A ← (I − 2uuᵀ) A
      for (std::size_t j = 0; j < n; ++j) w[j] += u[i] * a(i, j);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) a(i, j) -= 2 * u[i] * w[j];
    for (std::size_t i = 0; i < m; ++i) {  // A ← A (I − 2vvᵀ)
      double acc = 0;
      for (std::size_t j = 0; j < n; ++j) acc += a(i, j) * v[j];
      z[i] = acc;
    }
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) a(i, j) -= 2 * z[i] * v[j];
  }
  Matrix<float> f(m, n);
  for (std::size_t i = 0; i < a.size(); ++i) f.data()[i] = static_cast<float>(a.data()[i]);
  return f;
}

const Matrix<float>& cached(std::size_t m, std::size_t n, bool fast) {
  static std::map<std::tuple<std::size_t, std::size_t, bool>, Matrix<float>> cache;
  auto it = cache.find({m, n, fast});
  if (it == cache.end()) it = cache.emplace(std::make_tuple(m, n, fast), synthetic(m, n, spectrum(std::min(m, n), fast), 17)).first;
  return it->second;
}

/// ||A − U Σ Vᵀ||_F in double, 512 rows at a time.
double residual(const Matrix<float>& a, const sparq::lowrank::Svd& svd) {
  const std::size_t m = a.rows(), n = a.cols(), r = svd.rank();
  Matrix<double> svt(r, n);
  for (std::size_t k = 0; k < r; ++k)
    for (std::size_t j = 0; j < n; ++j) svt(k, j) = svd.s[k] * svd.vt(k, j);
  double e = 0;
  std::vector<double> blk(512 * n);
  for (std::size_t i0 = 0; i0 < m; i0 += 512) {
    const std::size_t mb = std::min<std::size_t>(512, m - i0);
    sparq::kernels::gemm(Trans::no, Trans::no, mb, n, r, 1.0, svd.u.row(i0), r, svt.data(), n, 0.0, blk.data(), n);
    for (std::size_t i = 0; i < mb; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        const double d = double(a(i0 + i, j)) - blk[i * n + j];
        e += d * d;
      }
  }
  return std::sqrt(e);
}

void BM_randomized_svd(benchmark::State& st) {
  const std::size_t m = static_cast<std::size_t>(st.range(0)), n = 4096, r = static_cast<std::size_t>(st.range(1));
  const bool fast = st.range(2) != 0;
  const auto& a = cached(m, n, fast);
  const auto s = spectrum(std::min(m, n), fast);
  sparq::lowrank::Svd svd;
  for (auto _ : st) {
    svd = sparq::lowrank::randomized_svd(a.view(), r);
    benchmark::DoNotOptimize(svd.s.data());
  }
  double tail = 0, maxrel = 0;
  for (std::size_t i = r; i < s.size(); ++i) tail += s[i] * s[i];
  for (std::size_t i = 0; i < r; ++i) maxrel = std::max(maxrel, std::fabs(svd.s[i] - s[i]) / s[i]);
  st.counters["err_ratio"] = residual(a, svd) / std::sqrt(tail);
  st.counters["sv_maxrel"] = maxrel;
  // Passes over A: 1 + 2q + 1 = 6 products of A (or Aᵀ) with an l-column matrix (q = 2, l = r + 10).
  const double passes = 6, l = double(r + 10);
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * passes * double(m) * double(n) * 4));
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * passes * 2.0 * double(m) * double(n) * l));  // flops
  st.SetLabel(fast ? "fast exp(-i/64) spectrum" : "slow (1+i)^-0.5 spectrum");
}

/// 4096x4096 W (slow spectrum) and 2048 correlated tokens X = G·C + outlier channel scales.
struct AwareLayer {
  Matrix<float> w = synthetic(4096, 4096, spectrum(4096, false), 23);
  Matrix<float> x{2048, 4096};
  sparq::HessianAccumulator h{4096};
  AwareLayer() {
    const std::size_t t = 2048, c = 4096, k = 64;
    const auto g = sparq::lowrank::detail::gaussian(t * k, 31), mix = sparq::lowrank::detail::gaussian(k * c, 32),
               noise = sparq::lowrank::detail::gaussian(t * c, 33);
    std::vector<float> gf(g.begin(), g.end()), mf(mix.begin(), mix.end());
    sparq::kernels::gemm(Trans::no, Trans::no, t, c, k, 1.0f / 8.0f, gf.data(), k, mf.data(), c, 0.0f, x.data(), c);
    for (std::size_t i = 0; i < t; ++i)
      for (std::size_t j = 0; j < c; ++j)
        x(i, j) = (x(i, j) + 0.1f * static_cast<float>(noise[i * c + j])) * (j % 97 == 0 ? 20.0f : 1.0f);
    h.add(x.view());
  }
  /// ||(W − AB) Xᵀ||_F / ||W Xᵀ||_F by two GEMMs.
  double output_error(const sparq::lowrank::LowRankFactors& f) const {
    Matrix<float> d = w;
    sparq::kernels::gemm(Trans::no, Trans::no, 4096, 4096, f.rank(), -1.0f, f.a.data(), f.rank(), f.b.data(), 4096,
                         1.0f, d.data(), 4096);
    Matrix<float> yd(2048, 4096), yw(2048, 4096);
    sparq::kernels::gemm(Trans::no, Trans::yes, 2048, 4096, 4096, 1.0f, x.data(), 4096, d.data(), 4096, 0.0f, yd.data(), 4096);
    sparq::kernels::gemm(Trans::no, Trans::yes, 2048, 4096, 4096, 1.0f, x.data(), 4096, w.data(), 4096, 0.0f, yw.data(), 4096);
    double nd = 0, nw = 0;
    for (std::size_t i = 0; i < yd.size(); ++i) {
      nd += double(yd.data()[i]) * yd.data()[i];
      nw += double(yw.data()[i]) * yw.data()[i];
    }
    return std::sqrt(nd / nw);
  }
};

void BM_aware_factorize(benchmark::State& st) {
  static AwareLayer layer;
  const std::size_t r = static_cast<std::size_t>(st.range(0));
  const bool aware = st.range(1) != 0;
  sparq::lowrank::FactorizeOptions fo;
  fo.rule.rank = r;
  sparq::lowrank::LowRankFactors f;
  for (auto _ : st) {
    // Timed: whitening (damped Cholesky of H and L⁻¹, or nothing) + factorization (whiten, randomized SVD, unwhiten).
    const auto wh = aware ? sparq::lowrank::Whitening::cholesky(layer.h) : sparq::lowrank::Whitening::identity(4096);
    f = sparq::lowrank::factorize(layer.w.view(), wh, fo);
    benchmark::DoNotOptimize(f.a.data());
  }
  st.counters["out_err"] = layer.output_error(f);
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * 4096.0 * 4096.0));  // weights
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * 4096.0 * 4096.0 * 4));
  st.SetLabel(aware ? "cholesky-whitened (SVD-LLM), 2048 correlated tokens" : "plain SVD");
}

}  // namespace

BENCHMARK(BM_randomized_svd)
    ->ArgNames({"m", "r", "fast"})
    ->Args({4096, 64, 0})->Args({4096, 256, 0})->Args({11008, 64, 0})->Args({11008, 256, 0})
    ->Args({4096, 64, 1})->Args({4096, 256, 1})
    ->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_aware_factorize)
    ->ArgNames({"r", "aware"})
    ->Args({64, 0})->Args({64, 1})->Args({256, 0})->Args({256, 1})
    ->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
