// ColumnQuantizer concept and RowMinMaxQuantizer: per-row min-max RTN used inside SparseGPT's joint sweep.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/quant/detail/calib_grid.hpp"

namespace sparq {

/// A per-row quantizer usable inside a column sweep (SparseGPT's joint sweep, GPTQ;
/// docs/algorithms.md#joint-quantization-in-the-sweep): `fit(W)` computes the
/// parameters once on the full pre-pruning weights (cout x cin), then `quantize(x, row)` returns
/// the fake-quantized value of x with row `row`'s parameters. Requirement: quantize(0, r) == 0
/// exactly (the grid contains 0), so pruned weights stay exactly zero.
template <class Q>
concept ColumnQuantizer = requires(Q& q, const Q& cq, MatrixView<const float> w, float x, std::size_t r) {
  q.fit(w);
  { cq.quantize(x, r) } -> std::convertible_to<float>;
};

/// Min-max round-to-nearest per output row, exactly the GPTQ/SparseGPT quantizer of
/// docs/algorithms.md#gptq-grid (no MSE search), with maxq = 2^bits - 1:
///   xmin = min(min_row, 0), xmax = max(max_row, 0); symmetric: xmax = max(|xmin|, xmax),
///   xmin = -xmax when xmin < 0; degenerate xmin = xmax = 0 -> [-1, 1];
///   scale = (xmax - xmin)/maxq; zero = round(-xmin/scale) (asymmetric) or (maxq+1)/2 (symmetric);
///   q = clamp(round(x/scale) + zero, 0, maxq); x_hat = scale*(q - zero).
/// Rounding is half to even (std::nearbyint). Since zero is an integer in [0, maxq], x = 0 maps to
/// exactly 0.
class RowMinMaxQuantizer {
 public:
  explicit RowMinMaxQuantizer(int bits = 4, bool symmetric = false) : bits_(bits), symmetric_(symmetric) {
    SPARQ_CHECK(bits >= 1 && bits <= 16, "RowMinMaxQuantizer: bits = ", bits, ", expected 1..16");
  }

  void fit(MatrixView<const float> w) {
    const detail::calib::GptqGridSpec spec{.bits = bits_, .symmetric = symmetric_};
    scale_.assign(w.rows(), 1.0f);
    zero_.assign(w.rows(), 0.0f);
    for (std::size_t r = 0; r < w.rows(); ++r) {
      const float* wr = w.row(r);
      float lo = 0.0f, hi = 0.0f;
      for (std::size_t c = 0; c < w.cols(); ++c) {
        SPARQ_CHECK(std::isfinite(wr[c]), "RowMinMaxQuantizer::fit: non-finite weight ", wr[c], " at row ", r,
                    ", column ", c);
        lo = std::min(lo, wr[c]);
        hi = std::max(hi, wr[c]);
      }
      const detail::calib::GridParams p = detail::calib::gptq_params_from_range(lo, hi, spec);  // the one GPTQ grid
      scale_[r] = p.scale;
      zero_[r] = p.zero;
    }
  }

  [[nodiscard]] float quantize(float x, std::size_t row) const noexcept {
    const float maxq = static_cast<float>((1 << bits_) - 1);  // float codes: bits may exceed 8
    const float s = scale_[row], z = zero_[row];
    const float q = std::clamp(std::nearbyint(x / s) + z, 0.0f, maxq);
    return s * (q - z);
  }

  [[nodiscard]] int bits() const noexcept { return bits_; }
  [[nodiscard]] bool symmetric() const noexcept { return symmetric_; }
  [[nodiscard]] const std::vector<float>& scales() const noexcept { return scale_; }
  [[nodiscard]] const std::vector<float>& zeros() const noexcept { return zero_; }

 private:
  int bits_;
  bool symmetric_;
  std::vector<float> scale_, zero_;
};
static_assert(ColumnQuantizer<RowMinMaxQuantizer>);

}  // namespace sparq
