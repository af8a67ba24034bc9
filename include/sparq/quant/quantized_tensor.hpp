// QuantizedTensor: densely packed codes + QuantParams (scales, zero points, shape) of one matrix.
//
// PACKED LAYOUT (a contract shared with the GEMV kernels; tests/quant checks it bit by bit):
// * Codes are stored row by row, each row starting on a byte boundary;
//   row_bytes = ceil(cols · bits / 8); row r starts at codes() + r · row_bytes.
// * Inside a row, code i occupies bits [i·b, (i+1)·b), bit 0 = LSB of byte 0 (little-endian bit
//   stream; see kernels/pack.hpp). So 4-bit: element 2i in the LOW nibble of byte i, 2i+1 in the
//   HIGH nibble; 2-bit: element 4i+k at bits [2k, 2k+2); 8-bit: one byte per element.
// * Integer codes are stored UNSIGNED (offset binary): a symmetric b-bit value
//   q ∈ [−2^(b−1), 2^(b−1)−1] is stored as u = q + 2^(b−1) (int4: q = −8..7 → u = 0..15; the
//   restricted range never uses u = 0). Asymmetric codes are stored as they are, u ∈ [0, 2^b−1],
//   x̂ = scale · (u − zero).
// * THE ONE SIGNED EXCEPTION: 8-bit Symmetric stores the two's-complement byte of q itself
//   (int8_t q ∈ [−127, 127], or [−128, 127] with full_range), so int8 GEMV kernels read signed
//   codes directly: int8_codes() gives that view. x̂ = scale · q.
// * NF4: 4-bit indices into nf4::levels, same nibble order. FP8E4M3: one E4M3 byte per element.
// * Scales: float32 row-major [scale_rows × groups_per_row] (one for PerTensor, one per row for
//   PerChannel/PerToken, ceil(cols/G) per row for PerGroup<G>). Zero points (Asymmetric only):
//   uint8 per scale, same shape. See QuantParams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/kernels/pack.hpp"
#include "sparq/quant/quant_params.hpp"

namespace sparq {

class QuantizedTensor {
 public:
  QuantizedTensor() = default;

  /// Zero codes for the shape of `params` (validated).
  explicit QuantizedTensor(QuantParams params) : params_(std::move(params)) {
    params_.validate();
    row_bytes_ = params_.config.row_bytes(params_.cols);
    codes_.assign(params_.rows * row_bytes_, 0);
  }

  [[nodiscard]] const QuantParams& params() const noexcept { return params_; }
  [[nodiscard]] QuantParams& params() noexcept { return params_; }
  [[nodiscard]] const QuantConfig& config() const noexcept { return params_.config; }
  [[nodiscard]] std::size_t rows() const noexcept { return params_.rows; }
  [[nodiscard]] std::size_t cols() const noexcept { return params_.cols; }
  [[nodiscard]] int bits() const noexcept { return params_.config.bits; }
  [[nodiscard]] SchemeKind scheme() const noexcept { return params_.config.scheme; }
  [[nodiscard]] std::size_t row_bytes() const noexcept { return row_bytes_; }

  /// All packed codes (rows · row_bytes bytes).
  [[nodiscard]] const std::uint8_t* codes() const noexcept { return codes_.data(); }
  [[nodiscard]] std::uint8_t* codes() noexcept { return codes_.data(); }
  [[nodiscard]] const std::vector<std::uint8_t>& code_storage() const noexcept { return codes_; }
  [[nodiscard]] const std::uint8_t* row_codes(std::size_t r) const noexcept { return codes_.data() + r * row_bytes_; }
  [[nodiscard]] std::uint8_t* row_codes(std::size_t r) noexcept { return codes_.data() + r * row_bytes_; }
  [[nodiscard]] const float* scales() const noexcept { return params_.scales.data(); }
  [[nodiscard]] const std::uint8_t* zeros() const noexcept {
    return params_.zeros.empty() ? nullptr : params_.zeros.data();
  }

  /// The stored b-bit field of element (r, c) (the raw byte for 8 bits).
  [[nodiscard]] unsigned code(std::size_t r, std::size_t c) const {
    SPARQ_CHECK(r < rows() && c < cols(), "QuantizedTensor::code: element (", r, ", ", c,
                ") is outside the ", rows(), "x", cols(), " tensor");
    std::uint8_t u = 0;
    const unsigned b = static_cast<unsigned>(bits());
    // Unpack the one code: the byte(s) holding bits [c·b, (c+1)·b).
    const std::size_t bit = c * b;
    unsigned v = row_codes(r)[bit >> 3];
    if ((bit & 7u) + b > 8) v |= static_cast<unsigned>(row_codes(r)[(bit >> 3) + 1]) << 8;
    u = static_cast<std::uint8_t>((v >> (bit & 7u)) & ((1u << b) - 1u));
    return u;
  }

  /// Integer level of element (r, c) relative to its zero: x̂ = scale · level. Integer schemes only.
  [[nodiscard]] int level(std::size_t r, std::size_t c) const {
    SPARQ_CHECK(scheme() == SchemeKind::symmetric || scheme() == SchemeKind::asymmetric,
                "QuantizedTensor::level: scheme ", scheme_name(scheme()), " has no integer levels");
    const unsigned u = code(r, c);
    if (params_.signed_codes()) return static_cast<int>(static_cast<std::int8_t>(u));
    return static_cast<int>(u) - params_.zero_at(r, c);
  }

  /// Signed view of 8-bit symmetric codes (rows · cols int8 q, row-major). Throws otherwise.
  [[nodiscard]] std::span<const std::int8_t> int8_codes() const {
    SPARQ_CHECK(params_.signed_codes(), "QuantizedTensor::int8_codes: only 8-bit symmetric codes are "
                "signed; this tensor is ", scheme_name(scheme()), " with ", bits(), " bits");
    return {reinterpret_cast<const std::int8_t*>(codes_.data()), codes_.size()};
  }

  /// Bytes of the packed codes alone.
  [[nodiscard]] std::size_t code_bytes() const noexcept { return codes_.size(); }
  /// Bytes of codes + scales (4 each) + zero points (1 each): the real storage cost.
  [[nodiscard]] std::size_t byte_size() const noexcept {
    return codes_.size() + params_.scales.size() * sizeof(float) + params_.zeros.size();
  }
  /// Storage bits per weight including scale and zero-point overhead.
  [[nodiscard]] double bits_per_weight() const noexcept {
    const double n = static_cast<double>(rows()) * static_cast<double>(cols());
    return n > 0 ? 8.0 * static_cast<double>(byte_size()) / n : 0.0;
  }

 private:
  QuantParams params_;
  std::size_t row_bytes_ = 0;
  std::vector<std::uint8_t> codes_;
};

}  // namespace sparq
