// MatrixView: a non-owning row-major view (pointer, rows, cols, row stride) used by all hot loops.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/large_alloc.hpp"

namespace sparq {

/// Non-owning view of a row-major matrix: element (r, c) is at data[r * stride + c].
/// `T` may be const (`MatrixView<const float>`) for read-only access; a mutable view converts
/// implicitly to a const one. Rows are output channels for weights (cout x cin) and tokens for
/// activations (tokens x cin), as in docs/algorithms.md#notation.
template <class T>
class MatrixView {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  constexpr MatrixView() noexcept = default;

  /// Contiguous rows (stride == cols).
  constexpr MatrixView(T* data, std::size_t rows, std::size_t cols) noexcept
      : data_(data), rows_(rows), cols_(cols), stride_(cols) {}

  /// Strided rows. Throws sparq::error if stride < cols or data is null for a non-empty view.
  MatrixView(T* data, std::size_t rows, std::size_t cols, std::size_t stride)
      : data_(data), rows_(rows), cols_(cols), stride_(stride) {
    SPARQ_CHECK(rows == 0 || cols == 0 || stride >= cols, "MatrixView: row stride ", stride,
                " is smaller than the column count ", cols);
    SPARQ_CHECK(data != nullptr || rows == 0 || cols == 0,
                "MatrixView: null data for a ", rows, "x", cols, " view");
  }

  /// Const view of a mutable one.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  constexpr MatrixView(const MatrixView<U>& other) noexcept  // NOLINT(google-explicit-constructor)
      : data_(other.data()), rows_(other.rows()), cols_(other.cols()), stride_(other.stride()) {}

  [[nodiscard]] constexpr T* data() const noexcept { return data_; }
  [[nodiscard]] constexpr std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] constexpr std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] constexpr std::size_t stride() const noexcept { return stride_; }
  [[nodiscard]] constexpr std::size_t size() const noexcept { return rows_ * cols_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return rows_ == 0 || cols_ == 0; }
  [[nodiscard]] constexpr bool contiguous() const noexcept { return stride_ == cols_ || rows_ <= 1; }

  [[nodiscard]] constexpr T* row(std::size_t r) const noexcept { return data_ + r * stride_; }
  [[nodiscard]] constexpr T& operator()(std::size_t r, std::size_t c) const noexcept {
    return data_[r * stride_ + c];
  }

  /// Sub-view of rows [r0, r0+nr) and columns [c0, c0+nc); throws sparq::error if out of range.
  [[nodiscard]] MatrixView block(std::size_t r0, std::size_t c0, std::size_t nr,
                                 std::size_t nc) const {
    SPARQ_CHECK(r0 <= rows_ && nr <= rows_ - r0 && c0 <= cols_ && nc <= cols_ - c0,
                "MatrixView::block: rows [", r0, ", ", r0 + nr, ") x cols [", c0, ", ", c0 + nc,
                ") is outside the ", rows_, "x", cols_, " view");
    return MatrixView(data_ + r0 * stride_ + c0, nr, nc, stride_ < nc ? nc : stride_);
  }

  /// Rows [r0, r0+nr) with all columns.
  [[nodiscard]] MatrixView rows_range(std::size_t r0, std::size_t nr) const {
    return block(r0, 0, nr, cols_);
  }

 private:
  T* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::size_t stride_ = 0;
};

template <class T>
using ConstMatrixView = MatrixView<const T>;

/// A small owning row-major matrix (contiguous), for results and tests; hands out MatrixViews.
template <class T>
class Matrix {
 public:
  Matrix() = default;
  Matrix(std::size_t rows, std::size_t cols, T fill = T{})
      : rows_(rows), cols_(cols), data_(rows * cols, fill) {}

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }
  [[nodiscard]] T* data() noexcept { return data_.data(); }
  [[nodiscard]] const T* data() const noexcept { return data_.data(); }
  [[nodiscard]] T* row(std::size_t r) noexcept { return data_.data() + r * cols_; }
  [[nodiscard]] const T* row(std::size_t r) const noexcept { return data_.data() + r * cols_; }
  [[nodiscard]] T& operator()(std::size_t r, std::size_t c) noexcept { return data_[r * cols_ + c]; }
  [[nodiscard]] const T& operator()(std::size_t r, std::size_t c) const noexcept {
    return data_[r * cols_ + c];
  }
  [[nodiscard]] MatrixView<T> view() noexcept { return {data_.data(), rows_, cols_}; }
  [[nodiscard]] MatrixView<const T> view() const noexcept { return {data_.data(), rows_, cols_}; }
  /// The row-major elements (a std::vector whose large buffers use huge pages: core/large_alloc.hpp).
  [[nodiscard]] LargeVector<T>& storage() noexcept { return data_; }
  [[nodiscard]] const LargeVector<T>& storage() const noexcept { return data_; }

 private:
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  LargeVector<T> data_;
};

}  // namespace sparq
