// The runnable example of docs/quantization.md: int4 group quantization of a small matrix.
#include <cstdio>
#include <vector>

#include <sparq/quant/quantizer.hpp>

int main() {
  // A 4 x 64 weight matrix (rows = output channels).
  std::vector<float> w(4 * 64);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>(int(i * 37 % 101) - 50);
  const sparq::MatrixView<const float> view(w.data(), 4, 64);

  // Symmetric int4, one scale per 32 inputs, MinMax range.
  using Q = sparq::Quantizer<sparq::Symmetric, sparq::PerGroup<32>, 4>;
  const Q quantizer;
  const sparq::QuantizedTensor q = quantizer.quantize(view);  // packed nibbles + scales
  const sparq::Matrix<float> w_hat = quantizer.dequantize(q);

  std::printf("codes: %zu bytes, scales: %zu, bits/weight incl. scales: %.3f\n", q.code_bytes(),
              q.params().scales.size(), q.bits_per_weight());
  std::printf("w[0][0..3]  = %.4f %.4f %.4f %.4f\n", w[0], w[1], w[2], w[3]);
  std::printf("ŵ[0][0..3]  = %.4f %.4f %.4f %.4f (scale %.6f)\n", w_hat(0, 0), w_hat(0, 1), w_hat(0, 2),
              w_hat(0, 3), q.params().scales[0]);
  std::printf("q[0][0..3]  = %d %d %d %d, first byte 0x%02x (element 0 low nibble, 1 high)\n",
              q.level(0, 0), q.level(0, 1), q.level(0, 2), q.level(0, 3), q.row_codes(0)[0]);

  // The same through the run-time API, with a 2-bit asymmetric MSE-clipped variant.
  sparq::QuantConfig c = quantizer.config();
  c.scheme = sparq::SchemeKind::asymmetric;
  c.bits = 2;
  c.calibrator = sparq::CalibratorKind::mse_clip;
  const sparq::Matrix<float> w2 = sparq::quant::fake_quantize(view, c);
  std::printf("2-bit asym mse-clip ŵ[0][0..3] = %.4f %.4f %.4f %.4f\n", w2(0, 0), w2(0, 1), w2(0, 2), w2(0, 3));
  return 0;
}
