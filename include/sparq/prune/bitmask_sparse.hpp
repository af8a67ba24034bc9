// BitmaskSparse<Value>: unstructured sparse storage as a per-row bitmask plus the kept values in column order.
//
// Byte layout (fixed):
//   row_mask_bytes = ceil(cols / 8); masks: rows * row_mask_bytes bytes, each row starting on a byte
//   boundary; bit c of row r's mask is bit (c % 8) of byte masks[r * row_mask_bytes + c / 8]
//   (set = kept, i.e. non-zero); unused high bits of a row's last byte are 0.
//   values: the kept values, row by row, in increasing column order; row_offsets (rows + 1
//   uint64 entries) gives row r's values at [row_offsets[r], row_offsets[r+1]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sparq/core/matrix_view.hpp"

namespace sparq {

template <class Value = float>
class BitmaskSparse {
 public:
  using value_type = Value;

  /// Keeps the non-zeros of w.
  [[nodiscard]] static BitmaskSparse from_dense(MatrixView<const float> w) {
    BitmaskSparse s;
    s.rows_ = w.rows();
    s.cols_ = w.cols();
    s.masks_.assign(s.rows_ * s.row_mask_bytes(), 0);
    s.row_offsets_.assign(s.rows_ + 1, 0);
    for (std::size_t r = 0; r < s.rows_; ++r) {
      const float* wr = w.row(r);
      std::uint8_t* m = s.masks_.data() + r * s.row_mask_bytes();
      for (std::size_t c = 0; c < s.cols_; ++c)
        if (wr[c] != 0.0f) {
          m[c / 8] = static_cast<std::uint8_t>(m[c / 8] | (1u << (c % 8)));
          s.values_.push_back(static_cast<Value>(wr[c]));
        }
      s.row_offsets_[r + 1] = s.values_.size();
    }
    return s;
  }

  [[nodiscard]] Matrix<float> to_dense() const {
    Matrix<float> d(rows_, cols_, 0.0f);
    for (std::size_t r = 0; r < rows_; ++r) {
      std::size_t v = row_offsets_[r];
      const std::uint8_t* m = masks_.data() + r * row_mask_bytes();
      for (std::size_t c = 0; c < cols_; ++c)
        if ((m[c / 8] >> (c % 8)) & 1u) d(r, c) = static_cast<float>(values_[v++]);
    }
    return d;
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::size_t row_mask_bytes() const noexcept { return (cols_ + 7) / 8; }
  [[nodiscard]] std::size_t nnz() const noexcept { return values_.size(); }
  [[nodiscard]] const std::vector<std::uint8_t>& masks() const noexcept { return masks_; }
  [[nodiscard]] const std::vector<std::uint64_t>& row_offsets() const noexcept { return row_offsets_; }
  [[nodiscard]] const std::vector<Value>& values() const noexcept { return values_; }
  [[nodiscard]] std::size_t bytes() const noexcept {
    return masks_.size() + row_offsets_.size() * sizeof(std::uint64_t) + values_.size() * sizeof(Value);
  }

 private:
  std::size_t rows_ = 0, cols_ = 0;
  std::vector<std::uint8_t> masks_;
  std::vector<std::uint64_t> row_offsets_;
  std::vector<Value> values_;
};

}  // namespace sparq
