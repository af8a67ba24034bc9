// NMCompressed<N, M, Value>: packed N:M sparse storage (kept values + 2/4-bit in-group indices), exact round trip.
//
// Byte layout (fixed; the N:M GEMV kernels read it):
//   groups_per_row = cols / M, kept_per_row = groups_per_row * N.
//   values  : rows * kept_per_row Values, row-major; row r, group g, i-th kept entry (in increasing
//             column order) at values[r * kept_per_row + g * N + i].
//   indices : rows * row_index_bytes bytes, row_index_bytes = ceil(kept_per_row * bits / 8), each
//             row starting on a byte boundary. Entry i of a row (same order as the values) holds the
//             in-group position (column - g*M) of value i:
//               M = 4: bits = 2, index i at bits [2*(i%4), 2*(i%4)+2) of byte i/4;
//               M = 8: bits = 4, index i in the low nibble of byte i/2 when i is even, the high
//                      nibble when odd.
//             Unused trailing bits of a row's last byte are 0.
//   Groups with fewer than N non-zeros (weights that were already 0) are padded with zeros at the
//   lowest unused positions, so every group has exactly N entries, in increasing position order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq {

template <std::size_t N, std::size_t M, class Value = float>
class NMCompressed {
  static_assert(M == 4 || M == 8, "NMCompressed<N, M>: the packed index layout is defined for M = 4 and M = 8");
  static_assert(N >= 1 && N <= M, "NMCompressed<N, M>: need 1 <= N <= M (N kept of every M)");

 public:
  using value_type = Value;
  static constexpr std::size_t kept = N;
  static constexpr std::size_t group = M;
  static constexpr std::size_t index_bits = M == 4 ? 2 : 4;

  NMCompressed() = default;

  /// Compresses w, whose non-zeros must number at most N per group (an N:M-pruned matrix).
  /// Throws sparq::error if cols % M != 0 or a group has more than N non-zeros (naming it).
  [[nodiscard]] static NMCompressed from_dense(MatrixView<const float> w) {
    SPARQ_CHECK(w.cols() % M == 0, "NMCompressed<", N, ",", M, ">: cols = ", w.cols(), " is not a multiple of M = ", M);
    NMCompressed c;
    c.rows_ = w.rows();
    c.cols_ = w.cols();
    c.values_.assign(c.rows_ * c.kept_per_row(), Value{});
    c.indices_.assign(c.rows_ * c.row_index_bytes(), 0);
    for (std::size_t r = 0; r < c.rows_; ++r) {
      const float* wr = w.row(r);
      for (std::size_t g = 0; g < c.cols_ / M; ++g) {
        bool take[M] = {};
        std::size_t nz = 0;
        for (std::size_t p = 0; p < M; ++p)
          if (wr[g * M + p] != 0.0f) {
            take[p] = true;
            ++nz;
          }
        SPARQ_CHECK(nz <= N, "NMCompressed<", N, ",", M, ">: row ", r, ", group ", g, " (columns ", g * M, "..",
                    g * M + M - 1, ") has ", nz, " non-zeros, expected at most ", N);
        for (std::size_t p = 0; p < M && nz < N; ++p)
          if (!take[p]) {
            take[p] = true;
            ++nz;
          }
        std::size_t i = g * N;
        for (std::size_t p = 0; p < M; ++p)
          if (take[p]) {
            c.values_[r * c.kept_per_row() + i] = static_cast<Value>(wr[g * M + p]);
            c.set_index(r, i, p);
            ++i;
          }
      }
    }
    return c;
  }

  /// Dense matrix (exact inverse of from_dense for float values).
  [[nodiscard]] Matrix<float> to_dense() const {
    Matrix<float> d(rows_, cols_, 0.0f);
    for (std::size_t r = 0; r < rows_; ++r)
      for (std::size_t i = 0; i < kept_per_row(); ++i) {
        const std::size_t g = i / N;
        d(r, g * M + index(r, i)) += static_cast<float>(values_[r * kept_per_row() + i]);
      }
    return d;
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::size_t kept_per_row() const noexcept { return cols_ / M * N; }
  [[nodiscard]] std::size_t row_index_bytes() const noexcept { return (kept_per_row() * index_bits + 7) / 8; }
  [[nodiscard]] const std::vector<Value>& values() const noexcept { return values_; }
  [[nodiscard]] const std::vector<std::uint8_t>& indices() const noexcept { return indices_; }
  [[nodiscard]] const Value* row_values(std::size_t r) const noexcept { return values_.data() + r * kept_per_row(); }
  [[nodiscard]] const std::uint8_t* row_indices(std::size_t r) const noexcept {
    return indices_.data() + r * row_index_bytes();
  }

  /// In-group position of kept entry i of row r.
  [[nodiscard]] std::size_t index(std::size_t r, std::size_t i) const noexcept {
    const std::uint8_t* b = row_indices(r);
    if constexpr (M == 4) {
      return (b[i / 4] >> (2 * (i % 4))) & 0x3u;
    } else {
      return (b[i / 2] >> (4 * (i % 2))) & 0xfu;
    }
  }

  /// Bytes of the packed representation (values + indices).
  [[nodiscard]] std::size_t bytes() const noexcept { return values_.size() * sizeof(Value) + indices_.size(); }

 private:
  void set_index(std::size_t r, std::size_t i, std::size_t p) noexcept {
    std::uint8_t* b = indices_.data() + r * row_index_bytes();
    if constexpr (M == 4) {
      b[i / 4] = static_cast<std::uint8_t>(b[i / 4] | (p << (2 * (i % 4))));
    } else {
      b[i / 2] = static_cast<std::uint8_t>(b[i / 2] | (p << (4 * (i % 2))));
    }
  }

  std::size_t rows_ = 0, cols_ = 0;
  std::vector<Value> values_;
  std::vector<std::uint8_t> indices_;
};

}  // namespace sparq
