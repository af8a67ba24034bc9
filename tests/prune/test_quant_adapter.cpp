// QuantizerColumnAdapter: sparq::Quantizer<Asymmetric, PerChannel, 4> inside SparseGPT's joint sweep.
#include <algorithm>
#include <cmath>

#include "sparq/prune/quantizer_column_adapter.hpp"
#include "sparq/prune/sparse_gpt.hpp"
#include "sparq_test.hpp"

using namespace sparq;

TEST_CASE("QuantizerColumnAdapter matches Quantizer::fake_quantize and keeps zeros in the joint sweep", "[prune][quant]") {
  const std::size_t cout = 24, cin = 64, T = 200;
  Matrix<float> w(cout, cin), x(T, cin);
  const auto wv = sparq_test::randn(cout * cin, 1), xv = sparq_test::randn(T * cin, 2);
  std::copy(wv.begin(), wv.end(), w.data());
  std::copy(xv.begin(), xv.end(), x.data());
  using Q = Quantizer<Asymmetric, PerChannel, 4>;
  QuantizerColumnAdapter<Q> qa;
  qa.fit(w.view());
  const Matrix<float> fq = Q{}.fake_quantize(w.view());
  for (std::size_t r = 0; r < cout; ++r) {
    REQUIRE(qa.quantize(0.0f, r) == 0.0f);
    for (std::size_t c = 0; c < cin; ++c) REQUIRE(qa.quantize(w(r, c), r) == fq(r, c));
  }
  const Matrix<float> h = hessian_from_tokens(x.view(), 1);
  PruneOptions o;
  o.block_size = 32;
  Matrix<float> wa = w;
  const PruneMask ma = Pruner<SparseGPT, NM<2, 4>>(o).prune(wa.view(), h, qa);
  for (std::size_t r = 0; r < cout; ++r)
    for (std::size_t c = 0; c < cin; ++c) {
      if (!ma(r, c)) REQUIRE(wa(r, c) == 0.0f);
      const float code = wa(r, c) / qa.params().scale_at(r, 0);
      REQUIRE(std::abs(code - std::nearbyint(code)) < 1e-3f);
    }
}
