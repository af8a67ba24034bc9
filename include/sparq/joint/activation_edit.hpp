// ActivationEdit: JSQ's activation editor, clamping calibration activations before statistics.
//
// Paper (JSQ, Eq. 5): for an activation tensor F and editing strength r in [0, 1/2],
//   LB = r * max(F) + (1 - r) * min(F),   HB = (1 - r) * max(F) + r * min(F),
//   F_edit = clamp(F, LB, HB),
// i.e. r * (max - min) is trimmed from each end of the range; r = 0 is the identity. max/min are
// taken over the whole tensor (default) or per input channel (`EditMode::MinMaxChannel`).
// The released reference code instead clips at an order statistic of |x| (`EditMode::PercentileCompat`,
// docs/algorithms.md#activation-editor): k = max(1, floor(clip_h * M)), tau = k-th largest |x|, clamp to [-tau, tau]
// (with abs = false: k_l-th smallest and k_h-th largest signed values). Editing changes only the
// statistics a compressor takes; run-time activations are never edited.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq {

enum class EditMode {
  MinMaxTensor,      ///< Eq. 5 with max/min over the whole tensor (paper, default)
  MinMaxChannel,     ///< Eq. 5 with max/min per input channel (column)
  PercentileCompat,  ///< the released code's order-statistic clip (docs/algorithms.md#activation-editor)
};

struct ActivationEditOptions {
  EditMode mode = EditMode::MinMaxTensor;
  double strength = 0.0;  ///< r in [0, 0.5] for the MinMax modes
  double clip_l = 0.0;    ///< PercentileCompat: low fraction (used when abs == false)
  double clip_h = 0.01;   ///< PercentileCompat: high fraction
  bool abs = true;        ///< PercentileCompat: clip |x| symmetrically
};

/// The JSQ activation editor as a stage: `edit(x)` clamps a tokens x cin activation tensor in place.
class ActivationEdit {
 public:
  using Options = ActivationEditOptions;

  ActivationEdit() = default;
  explicit ActivationEdit(const Options& opt) : opt_(opt) { validate(opt_); }

  [[nodiscard]] const Options& options() const noexcept { return opt_; }

  /// Throws sparq::error on out-of-range options.
  static void validate(const Options& o) {
    SPARQ_CHECK(std::isfinite(o.strength) && o.strength >= 0.0 && o.strength <= 0.5,
                "ActivationEdit: strength r = ", o.strength, ", expected a value in [0, 0.5]");
    SPARQ_CHECK(o.clip_l >= 0.0 && o.clip_l < 1.0 && o.clip_h >= 0.0 && o.clip_h < 1.0,
                "ActivationEdit: clip_l = ", o.clip_l, ", clip_h = ", o.clip_h,
                ", expected fractions in [0, 1)");
  }

  /// Edits x (tokens x cin) in place. Throws sparq::error on non-finite input.
  void edit(MatrixView<float> x) const {
    if (x.empty()) return;
    for (std::size_t t = 0; t < x.rows(); ++t) check_finite(x.row(t), x.cols(), "ActivationEdit: activations");
    switch (opt_.mode) {
      case EditMode::MinMaxTensor: edit_minmax_tensor(x); break;
      case EditMode::MinMaxChannel: edit_minmax_channel(x); break;
      case EditMode::PercentileCompat: edit_percentile(x); break;
    }
  }

  /// Copy-and-edit convenience: returns the edited tensor, leaves `x` untouched.
  [[nodiscard]] Matrix<float> edited(MatrixView<const float> x) const {
    Matrix<float> out(x.rows(), x.cols());
    for (std::size_t t = 0; t < x.rows(); ++t) std::copy(x.row(t), x.row(t) + x.cols(), out.row(t));
    edit(out.view());
    return out;
  }

  /// Bounds [LB, HB] of Eq. 5 for a range [mn, mx] and strength r.
  [[nodiscard]] static std::pair<float, float> bounds(float mn, float mx, double r) noexcept {
    const double lb = r * mx + (1.0 - r) * mn;
    const double hb = (1.0 - r) * mx + r * mn;
    return {static_cast<float>(lb), static_cast<float>(hb)};
  }

 private:
  static void clamp_all(MatrixView<float> x, float lo, float hi) noexcept {
    for (std::size_t t = 0; t < x.rows(); ++t) {
      float* r = x.row(t);
      for (std::size_t j = 0; j < x.cols(); ++j) r[j] = std::min(std::max(r[j], lo), hi);
    }
  }

  void edit_minmax_tensor(MatrixView<float> x) const {
    if (opt_.strength == 0.0) return;
    float mn = std::numeric_limits<float>::infinity(), mx = -mn;
    for (std::size_t t = 0; t < x.rows(); ++t) {
      const float* r = x.row(t);
      for (std::size_t j = 0; j < x.cols(); ++j) {
        mn = std::min(mn, r[j]);
        mx = std::max(mx, r[j]);
      }
    }
    const auto [lo, hi] = bounds(mn, mx, opt_.strength);
    clamp_all(x, lo, hi);
  }

  void edit_minmax_channel(MatrixView<float> x) const {
    if (opt_.strength == 0.0) return;
    std::vector<float> mn(x.cols(), std::numeric_limits<float>::infinity());
    std::vector<float> mx(x.cols(), -std::numeric_limits<float>::infinity());
    for (std::size_t t = 0; t < x.rows(); ++t) {
      const float* r = x.row(t);
      for (std::size_t j = 0; j < x.cols(); ++j) {
        mn[j] = std::min(mn[j], r[j]);
        mx[j] = std::max(mx[j], r[j]);
      }
    }
    std::vector<float> lo(x.cols()), hi(x.cols());
    for (std::size_t j = 0; j < x.cols(); ++j) std::tie(lo[j], hi[j]) = bounds(mn[j], mx[j], opt_.strength);
    for (std::size_t t = 0; t < x.rows(); ++t) {
      float* r = x.row(t);
      for (std::size_t j = 0; j < x.cols(); ++j) r[j] = std::min(std::max(r[j], lo[j]), hi[j]);
    }
  }

  void edit_percentile(MatrixView<float> x) const {
    if (opt_.clip_l == 0.0 && opt_.clip_h == 0.0) return;  // reference: unchanged
    const std::size_t m = x.size();
    std::vector<float> v;
    v.reserve(m);
    for (std::size_t t = 0; t < x.rows(); ++t)
      for (std::size_t j = 0; j < x.cols(); ++j) v.push_back(opt_.abs ? std::fabs(x(t, j)) : x(t, j));
    // k-th largest (1-based) of v; the reference's top-k fails for k = 0, so k >= 1.
    auto kth_largest = [&](double frac) {
      const auto k = std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(frac * static_cast<double>(m))));
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end(), std::greater<float>());
      return v[k - 1];
    };
    if (opt_.abs) {
      const float tau = kth_largest(opt_.clip_h);
      clamp_all(x, -tau, tau);
      return;
    }
    const float hi = opt_.clip_h > 0.0 ? kth_largest(opt_.clip_h) : std::numeric_limits<float>::infinity();
    float lo = -std::numeric_limits<float>::infinity();
    if (opt_.clip_l > 0.0) {
      const auto k = std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(opt_.clip_l * static_cast<double>(m))));
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k - 1), v.end());
      lo = v[k - 1];
    }
    clamp_all(x, lo, hi);
  }

  Options opt_{};
};

}  // namespace sparq
