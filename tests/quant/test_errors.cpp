// Bad input throws sparq::error with a message naming the value.
#include <limits>
#include <vector>

#include "sparq/quant/quantizer.hpp"
#include "sparq_test.hpp"

using namespace sparq;
using Catch::Matchers::Contains;

TEST_CASE("bad input throws sparq::error naming the value", "[quant][errors]") {
  Matrix<float> w(4, 64, 0.5f);
  const Quantizer<Symmetric, PerGroup<32>, 4> qz;

  w(2, 17) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(qz.quantize(w.view()), Contains("nan") && Contains("row 2") && Contains("column 17"));
  w(2, 17) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(qz.fit(w.view()), Contains("inf") && Contains("row 2"));
  w(2, 17) = 0.5f;

  REQUIRE_THROWS_WITH(qz.quantize(MatrixView<const float>(w.data(), 0, 64)), Contains("empty matrix 0x64"));

  QuantConfig c;
  c.bits = 7;
  REQUIRE_THROWS_WITH(quant::quantize(w.view(), c), Contains("bits = 7"));
  c.bits = 1;
  REQUIRE_THROWS_WITH(quant::fit(w.view(), c), Contains("bits = 1"));
  c.bits = 4;
  c.scheme = SchemeKind::nf4;
  c.bits = 8;
  REQUIRE_THROWS_WITH(c.validate(), Contains("bits = 8 for NF4"));

  QuantConfig g;
  g.granularity = GranularityKind::per_group;
  g.group_size = 0;
  REQUIRE_THROWS_WITH(quant::quantize(w.view(), g), Contains("G = 0"));
  g.group_size = 48;
  REQUIRE_THROWS_WITH(quant::quantize(w.view(), g), Contains("row length 64") && Contains("48") && Contains("tail_group"));
  g.options.tail_group = true;
  REQUIRE_NOTHROW(quant::quantize(w.view(), g));

  // Views and shapes out of range.
  REQUIRE_THROWS_WITH(MatrixView<const float>(w.view()).block(3, 0, 2, 64), Contains("outside"));
  const QuantizedTensor q = qz.quantize(w.view());
  Matrix<float> small(4, 63);
  REQUIRE_THROWS_WITH(qz.dequantize(q, small.view()), Contains("4x63") && Contains("4x64"));
  REQUIRE_THROWS_WITH(q.code(4, 0), Contains("(4, 0)"));
  REQUIRE_THROWS_WITH(q.code(0, 64), Contains("(0, 64)"));
  Matrix<float> other(5, 64, 1.0f);
  REQUIRE_THROWS_WITH(qz.quantize(other.view(), q.params()), Contains("5x64") && Contains("4x64"));
  REQUIRE_THROWS_WITH((Quantizer<Symmetric, PerGroup<32>, 8>{}.quantize(w.view(), q.params())),
                      Contains("4-bit"));

  // Broken parameters.
  QuantParams p = q.params();
  p.scales[3] = 0.0f;
  REQUIRE_THROWS_WITH(quant::quantize(w.view(), p), Contains("scale[3] = 0"));
  p = q.params();
  p.scales.pop_back();
  REQUIRE_THROWS_WITH(quant::quantize(w.view(), p), Contains("7 scales"));

  // Options.
  QuantOptions o;
  o.percentile = 0.0f;
  REQUIRE_THROWS_WITH((Quantizer<Symmetric, PerChannel, 8, Percentile>(o)), Contains("percentile = 0"));
  QuantOptions m;
  m.mse_maxshrink = 1.5f;
  REQUIRE_THROWS_WITH((Quantizer<Symmetric, PerChannel, 8, MseClip>(m)), Contains("mse_maxshrink = 1.5"));
}
