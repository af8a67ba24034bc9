// The xtensor convenience overloads give the same results as the MatrixView core.
#include <xtensor/xtensor.hpp>

#include "sparq/quant/xtensor.hpp"
#include "sparq_test.hpp"

TEST_CASE("xtensor overloads match the MatrixView core", "[quant][xtensor]") {
  xt::xtensor<float, 2> w = xt::empty<float>({std::size_t{5}, std::size_t{96}});
  const auto v = sparq_test::randn(w.size(), 17);
  std::copy(v.begin(), v.end(), w.data());
  const sparq::Quantizer<sparq::Asymmetric, sparq::PerGroup<32>, 4> qz;
  const auto q1 = sparq::quant::quantize(w, qz.config());
  const auto q2 = qz.quantize(sparq::quant::view_of(w));
  REQUIRE(q1.code_storage() == q2.code_storage());
  const xt::xtensor<float, 2> h = sparq::quant::fake_quantize(qz, w);
  const sparq::Matrix<float> hm = qz.dequantize(q2);
  REQUIRE(h.shape()[0] == 5);
  REQUIRE(h.shape()[1] == 96);
  for (std::size_t i = 0; i < hm.size(); ++i) REQUIRE(h.data()[i] == hm.data()[i]);
  double err = 0;
  for (std::size_t i = 0; i < hm.size(); ++i) err = std::max(err, double(std::fabs(h.data()[i] - w.data()[i])));
  REQUIRE(err > 0.0);
  REQUIRE(err < 0.5);
}
