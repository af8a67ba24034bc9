// Calibration-statistics accumulators: column square sums (Wanda), abs-max, min/max, Hessian, mean sequence.
//
// Every accumulator takes activations as a MatrixView<const float> of `tokens x cin` (one row per
// token) and may be fed batch by batch. Sums are kept in double and added token by token in
// order, so feeding the same tokens in any split gives bit-identical results to feeding them all
// at once. Non-finite inputs are rejected with sparq::error (they would poison every statistic).
// Same results on every SIMD target and compiler setting (docs/kernels.md): the loops are scalar
// and in a fixed order, and a product of two floats is exact in double, so a compiler that fuses
// the multiply-add into an FMA gets the same bits as one that does not.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq {

namespace detail {
inline void check_activations(MatrixView<const float> x, std::size_t cin, const char* who) {
  SPARQ_CHECK(x.cols() == cin, who, ": activations have ", x.cols(), " columns, expected cin = ",
              cin);
  for (std::size_t t = 0; t < x.rows(); ++t) {
    const float* r = x.row(t);
    for (std::size_t j = 0; j < cin; ++j) {
      if (!std::isfinite(r[j])) {
        fail(who, ": non-finite activation ", r[j], " at token ", t, ", channel ", j,
             " (expected finite values)");
      }
    }
  }
}
}  // namespace detail

/// Per-input-channel sum of squares, normalised as Wanda's `scaler_row` (docs/algorithms.md#wanda):
/// scaler_j = (1/nseq) * sum over all tokens of x_tj^2, where nseq counts *sequences*, not tokens.
/// The Wanda importance is |W_kj| * sqrt(scaler_j) = |W_kj| * ||X_j|| / sqrt(nseq).
/// (The reference keeps a rescaled running FP32 mean; the double sum here is the same quantity
/// with less rounding and is independent of how the sequences are batched.)
class ColumnSquareSum {
 public:
  explicit ColumnSquareSum(std::size_t cin) : sums_(cin, 0.0) {
    SPARQ_CHECK(cin > 0, "ColumnSquareSum: cin must be positive, got 0");
  }

  /// Adds `x` (tokens x cin) holding `sequences` calibration sequences (default 1).
  void add(MatrixView<const float> x, std::size_t sequences = 1) {
    detail::check_activations(x, sums_.size(), "ColumnSquareSum::add");
    const std::size_t cin = sums_.size();
    double* s = sums_.data();
    for (std::size_t t = 0; t < x.rows(); ++t) {
      const float* r = x.row(t);
      for (std::size_t j = 0; j < cin; ++j) s[j] += static_cast<double>(r[j]) * r[j];
    }
    sequences_ += sequences;
    tokens_ += x.rows();
  }

  [[nodiscard]] std::size_t channels() const noexcept { return sums_.size(); }
  [[nodiscard]] std::size_t sequences() const noexcept { return sequences_; }
  [[nodiscard]] std::size_t tokens() const noexcept { return tokens_; }
  /// Raw sum of x^2 per channel over all tokens.
  [[nodiscard]] const std::vector<double>& sums() const noexcept { return sums_; }

  /// scaler_j = sums_j / nseq (Wanda's scaler_row). Throws if nothing was added.
  [[nodiscard]] std::vector<float> scaler() const {
    SPARQ_CHECK(sequences_ > 0, "ColumnSquareSum::scaler: no sequences were added");
    std::vector<float> out(sums_.size());
    for (std::size_t j = 0; j < sums_.size(); ++j)
      out[j] = static_cast<float>(sums_[j] / static_cast<double>(sequences_));
    return out;
  }

  /// sqrt(scaler_j) = ||X_j||_2 / sqrt(nseq): the per-channel factor of the Wanda score.
  [[nodiscard]] std::vector<float> norms() const {
    SPARQ_CHECK(sequences_ > 0, "ColumnSquareSum::norms: no sequences were added");
    std::vector<float> out(sums_.size());
    for (std::size_t j = 0; j < sums_.size(); ++j)
      out[j] = static_cast<float>(std::sqrt(sums_[j] / static_cast<double>(sequences_)));
    return out;
  }

 private:
  std::vector<double> sums_;
  std::size_t sequences_ = 0;
  std::size_t tokens_ = 0;
};

/// Per-input-channel max |x| over all tokens (SmoothQuant's activation statistic, docs/algorithms.md#smoothquant).
class ColumnAbsMax {
 public:
  explicit ColumnAbsMax(std::size_t cin) : max_(cin, 0.0f) {
    SPARQ_CHECK(cin > 0, "ColumnAbsMax: cin must be positive, got 0");
  }
  void add(MatrixView<const float> x) {
    detail::check_activations(x, max_.size(), "ColumnAbsMax::add");
    for (std::size_t t = 0; t < x.rows(); ++t) {
      const float* r = x.row(t);
      for (std::size_t j = 0; j < max_.size(); ++j) max_[j] = std::max(max_[j], std::fabs(r[j]));
    }
    tokens_ += x.rows();
  }
  [[nodiscard]] std::size_t channels() const noexcept { return max_.size(); }
  [[nodiscard]] std::size_t tokens() const noexcept { return tokens_; }
  [[nodiscard]] const std::vector<float>& values() const noexcept { return max_; }

 private:
  std::vector<float> max_;
  std::size_t tokens_ = 0;
};

/// Per-input-channel min and max over all tokens (the range statistic of llm-compressor,
/// docs/algorithms.md#range-statistic-variant).
class ColumnMinMax {
 public:
  explicit ColumnMinMax(std::size_t cin)
      : min_(cin, std::numeric_limits<float>::infinity()),
        max_(cin, -std::numeric_limits<float>::infinity()) {
    SPARQ_CHECK(cin > 0, "ColumnMinMax: cin must be positive, got 0");
  }
  void add(MatrixView<const float> x) {
    detail::check_activations(x, min_.size(), "ColumnMinMax::add");
    for (std::size_t t = 0; t < x.rows(); ++t) {
      const float* r = x.row(t);
      for (std::size_t j = 0; j < min_.size(); ++j) {
        min_[j] = std::min(min_[j], r[j]);
        max_[j] = std::max(max_[j], r[j]);
      }
    }
    tokens_ += x.rows();
  }
  [[nodiscard]] std::size_t channels() const noexcept { return min_.size(); }
  [[nodiscard]] std::size_t tokens() const noexcept { return tokens_; }
  /// +Inf per channel until a token is added.
  [[nodiscard]] const std::vector<float>& min() const noexcept { return min_; }
  /// -Inf per channel until a token is added.
  [[nodiscard]] const std::vector<float>& max() const noexcept { return max_; }
  [[nodiscard]] std::vector<float> range() const {
    SPARQ_CHECK(tokens_ > 0, "ColumnMinMax::range: no tokens were added");
    std::vector<float> r(min_.size());
    for (std::size_t j = 0; j < r.size(); ++j) r[j] = max_[j] - min_[j];
    return r;
  }

 private:
  std::vector<float> min_, max_;
  std::size_t tokens_ = 0;
};

/// Position-wise mean over calibration sequences (docs/algorithms.md#sar): row t of the result is the
/// mean over sequences of token position t. JSQ's reference SAR metric takes ranges over this
/// `length x cin` matrix. Every added sequence must have exactly `length` tokens.
class MeanSequence {
 public:
  MeanSequence(std::size_t length, std::size_t cin)
      : length_(length), cin_(cin), sums_(length * cin, 0.0) {
    SPARQ_CHECK(length > 0 && cin > 0, "MeanSequence: length and cin must be positive, got ",
                length, " and ", cin);
  }

  /// Adds one sequence (length x cin).
  void add(MatrixView<const float> seq) {
    SPARQ_CHECK(seq.rows() == length_, "MeanSequence::add: sequence has ", seq.rows(),
                " tokens, expected ", length_);
    detail::check_activations(seq, cin_, "MeanSequence::add");
    for (std::size_t t = 0; t < length_; ++t) {
      const float* r = seq.row(t);
      double* s = sums_.data() + t * cin_;
      for (std::size_t j = 0; j < cin_; ++j) s[j] += r[j];
    }
    ++sequences_;
  }

  [[nodiscard]] std::size_t length() const noexcept { return length_; }
  [[nodiscard]] std::size_t channels() const noexcept { return cin_; }
  [[nodiscard]] std::size_t sequences() const noexcept { return sequences_; }

  /// The mean sequence (length x cin). Throws if nothing was added.
  [[nodiscard]] Matrix<float> mean() const {
    SPARQ_CHECK(sequences_ > 0, "MeanSequence::mean: no sequences were added");
    Matrix<float> m(length_, cin_);
    const double inv = 1.0 / static_cast<double>(sequences_);
    for (std::size_t i = 0; i < sums_.size(); ++i) m.data()[i] = static_cast<float>(sums_[i] * inv);
    return m;
  }

 private:
  std::size_t length_, cin_;
  std::vector<double> sums_;
  std::size_t sequences_ = 0;
};

}  // namespace sparq
