// CsrMatrix<Value>: compressed sparse rows (row_ptr uint32, col_idx uint32, values), exact round trip to dense.
//
// Layout: row_ptr has rows + 1 uint32 entries; row r's entries are [row_ptr[r], row_ptr[r+1]) of
// col_idx (uint32 column, increasing within a row) and values. nnz must fit in uint32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq {

template <class Value = float>
class CsrMatrix {
 public:
  using value_type = Value;

  /// Keeps the non-zeros of w. Throws if nnz or cols do not fit in uint32.
  [[nodiscard]] static CsrMatrix from_dense(MatrixView<const float> w) {
    SPARQ_CHECK(w.cols() <= std::numeric_limits<std::uint32_t>::max(), "CsrMatrix: cols = ", w.cols(),
                " does not fit in uint32");
    CsrMatrix s;
    s.rows_ = w.rows();
    s.cols_ = w.cols();
    s.row_ptr_.assign(s.rows_ + 1, 0);
    for (std::size_t r = 0; r < s.rows_; ++r) {
      const float* wr = w.row(r);
      for (std::size_t c = 0; c < s.cols_; ++c)
        if (wr[c] != 0.0f) {
          s.col_idx_.push_back(static_cast<std::uint32_t>(c));
          s.values_.push_back(static_cast<Value>(wr[c]));
        }
      SPARQ_CHECK(s.values_.size() <= std::numeric_limits<std::uint32_t>::max(), "CsrMatrix: nnz = ",
                  s.values_.size(), " does not fit in uint32");
      s.row_ptr_[r + 1] = static_cast<std::uint32_t>(s.values_.size());
    }
    return s;
  }

  [[nodiscard]] Matrix<float> to_dense() const {
    Matrix<float> d(rows_, cols_, 0.0f);
    for (std::size_t r = 0; r < rows_; ++r)
      for (std::uint32_t i = row_ptr_[r]; i < row_ptr_[r + 1]; ++i) d(r, col_idx_[i]) = static_cast<float>(values_[i]);
    return d;
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::size_t nnz() const noexcept { return values_.size(); }
  [[nodiscard]] const std::vector<std::uint32_t>& row_ptr() const noexcept { return row_ptr_; }
  [[nodiscard]] const std::vector<std::uint32_t>& col_idx() const noexcept { return col_idx_; }
  [[nodiscard]] const std::vector<Value>& values() const noexcept { return values_; }

 private:
  std::size_t rows_ = 0, cols_ = 0;
  std::vector<std::uint32_t> row_ptr_{0};
  std::vector<std::uint32_t> col_idx_;
  std::vector<Value> values_;
};

}  // namespace sparq
