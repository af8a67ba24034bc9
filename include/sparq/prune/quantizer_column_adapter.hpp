// QuantizerColumnAdapter: plugs sparq::Quantizer<Symmetric|Asymmetric, PerChannel|PerTensor, Bits> into SparseGPT's joint sweep.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "sparq/prune/row_quantizer.hpp"
#include "sparq/quant/quantizer.hpp"

namespace sparq {

/// Adapts a sparq::Quantizer to the ColumnQuantizer concept: fit() runs Quantizer::fit on the full
/// pre-pruning W (its calibrator, scheme and options), quantize(x, r) fake-quantizes x with row r's
/// scale and zero point exactly as the quantizer's own dequantize(quantize(.)) does for integer
/// grids: scale * nearbyint(clamp(x * (1/scale), code_lo - zero, code_hi - zero)). Both integer
/// grids contain 0, so pruned zeros stay exactly zero.
template <class Q>
class QuantizerColumnAdapter {
  static_assert(std::is_same_v<typename Q::scheme, Symmetric> || std::is_same_v<typename Q::scheme, Asymmetric>,
                "QuantizerColumnAdapter: only integer schemes (Symmetric, Asymmetric) can be swept column by column");
  static_assert(std::is_same_v<typename Q::granularity, PerChannel> || std::is_same_v<typename Q::granularity, PerTensor>,
                "QuantizerColumnAdapter: SparseGPT's sweep needs parameters per row (PerChannel or PerTensor)");

 public:
  explicit QuantizerColumnAdapter(Q quantizer = Q{}) : q_(quantizer) {}

  void fit(MatrixView<const float> w) {
    params_ = q_.fit(w);
    const std::size_t rows = w.rows();
    scale_.resize(rows);
    inv_.resize(rows);
    lo_.resize(rows);
    hi_.resize(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      const float s = params_.scale_at(r, 0);
      const int z = params_.zero_at(r, 0);
      scale_[r] = s;
      inv_[r] = 1.0f / s;
      lo_[r] = static_cast<float>(params_.code_lo() - z);
      hi_[r] = static_cast<float>(params_.code_hi() - z);
    }
  }

  [[nodiscard]] float quantize(float x, std::size_t r) const noexcept {
    return scale_[r] * std::nearbyint(std::min(std::max(x * inv_[r], lo_[r]), hi_[r]));
  }

  [[nodiscard]] const QuantParams& params() const noexcept { return params_; }
  [[nodiscard]] const Q& quantizer() const noexcept { return q_; }

 private:
  Q q_;
  QuantParams params_{};
  std::vector<float> scale_, inv_, lo_, hi_;
};

}  // namespace sparq
