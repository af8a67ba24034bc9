// HessianAccumulator: the running Hessian XᵀX of a linear layer's inputs, in double, on the dispatched
// kernel of kernels/hessian.hpp (docs/core.md#hessian).
//
// It lives above kernels/ (core/ has no SIMD) and outside kernels/hessian.hpp, which the per-target
// dispatch units include: a class defined there could be instantiated with one target's flags and
// shared by the linker with code that runs on a less capable CPU.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/core/stats.hpp"
#include "sparq/kernels/hessian.hpp"

namespace sparq {

/// Running Hessian of the layer-wise reconstruction loss, H = (2/nseq) * sum_t x_t x_t^T
/// (cin x cin, docs/algorithms.md#hessian), the input of SparseGPT and GPTQ. The overall scale does not
/// matter to them (dampening is relative); the sequence normalisation matches the references.
/// Accumulated in double by the dispatched kernel kernels::hessian_accumulate, each element summed
/// over the tokens in order (docs/core.md#hessian).
class HessianAccumulator {
 public:
  explicit HessianAccumulator(std::size_t cin) : cin_(cin), sums_(cin * cin, 0.0) {
    SPARQ_CHECK(cin > 0, "HessianAccumulator: cin must be positive, got 0");
  }

  void add(MatrixView<const float> x, std::size_t sequences = 1) {
    detail::check_activations(x, cin_, "HessianAccumulator::add");
    // Every element of the lower triangle gets x_ti * x_tj added one token at a time in token
    // order, so any batching of the tokens, any SIMD target and any thread count give the same
    // bits (kernels/hessian.hpp: a float product is exact in double).
    kernels::hessian_accumulate(x.data(), x.rows(), x.stride(), cin_, sums_.data());
    sequences_ += sequences;
    tokens_ += x.rows();
  }

  [[nodiscard]] std::size_t channels() const noexcept { return cin_; }
  [[nodiscard]] std::size_t sequences() const noexcept { return sequences_; }
  [[nodiscard]] std::size_t tokens() const noexcept { return tokens_; }

  /// H = (2/nseq) * X^T X as a full symmetric float matrix. Throws if nothing was added.
  [[nodiscard]] Matrix<float> hessian() const {
    SPARQ_CHECK(sequences_ > 0, "HessianAccumulator::hessian: no sequences were added");
    const double scale = 2.0 / static_cast<double>(sequences_);
    Matrix<float> h(cin_, cin_);
    mirror_into(h, scale);
    return h;
  }

  /// Same as hessian() in double precision (for an FP64 Cholesky).
  [[nodiscard]] Matrix<double> hessian_f64() const {
    SPARQ_CHECK(sequences_ > 0, "HessianAccumulator::hessian_f64: no sequences were added");
    const double scale = 2.0 / static_cast<double>(sequences_);
    Matrix<double> h(cin_, cin_);
    mirror_into(h, scale);
    return h;
  }

 private:
  /// Writes scale * sums as a full symmetric matrix, tile by tile (no strided column sweeps).
  template <class T>
  void mirror_into(Matrix<T>& h, double scale) const {
    constexpr std::size_t tile = 32;
    const std::size_t n = cin_;
    for (std::size_t i0 = 0; i0 < n; i0 += tile) {
      const std::size_t i1 = std::min(n, i0 + tile);
      for (std::size_t j0 = 0; j0 <= i0; j0 += tile) {
        const std::size_t j1 = std::min(n, j0 + tile);
        for (std::size_t i = i0; i < i1; ++i) {
          for (std::size_t j = j0; j < std::min(j1, i + 1); ++j) {
            const T v = static_cast<T>(sums_[i * n + j] * scale);
            h(i, j) = v;
            h(j, i) = v;
          }
        }
      }
    }
  }

  std::size_t cin_;
  LargeVector<double> sums_;  // lower triangle (i >= j) is valid; huge pages (core/large_alloc.hpp)
  std::size_t sequences_ = 0;
  std::size_t tokens_ = 0;
};

}  // namespace sparq
