#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <sparq/quant/quantizer.hpp>

int main() {
  std::vector<float> w(8 * 128);  // 8 output rows x 128 inputs
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.02f * float(int(i * 7919 % 199) - 99);
  const sparq::MatrixView<const float> view(w.data(), 8, 128);
  const sparq::Quantizer<sparq::Symmetric, sparq::PerGroup<32>, 4> q4;  // int4, a scale per 32
  const sparq::QuantizedTensor packed = q4.quantize(view);                // nibbles + scales
  const sparq::Matrix<float> w_hat = q4.dequantize(packed);
  float err = 0;
  for (std::size_t i = 0; i < w.size(); ++i) err = std::max(err, std::fabs(w_hat.data()[i] - w[i]));
  const auto& s = packed.params().scales;
  std::printf("%.3f bits/weight, max |error| %.4f\n", packed.bits_per_weight(), err);
  return err <= 0.5f * *std::max_element(s.begin(), s.end()) ? 0 : 1;  // round to nearest: half a step
}
