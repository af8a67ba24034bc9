// PackedLinear: base of the LinearOps that execute packed (quantized / N:M-sparse) weights through
// the SIMD kernels of sparq/kernels, plus what they share (activation mode, per-token int8 quantizer,
// per-thread scratch memory).
//
// The concrete formats live in their own headers (sparq/model/linear_formats.hpp includes them all
// and registers their SPRQ file formats):
//   Q8Linear  (q8_linear.hpp)  int8 per-channel weights, f32 or int8 per-token activations
//   Q4Linear  (q4_linear.hpp)  int4 per-group weights (G = 32/64/128, sym/asym), f32 or int8 acts
//   NMLinear  (nm_linear.hpp)  2:4 / 4:8 sparse, kept values f32, int8 (per row) or int4 (per group)
//   BitmaskLinear / BitmaskQ8Linear (bitmask_linear.hpp, bitmask_q8_linear.hpp)  unstructured sparse,
//             bitmask + kept values f32 / int8 codes with a scale per row
//   BitmaskQ4Linear (bitmask_q4_linear.hpp)  unstructured sparse, bitmask + kept int4 codes (nibbles)
//             with per-group scales (G = 32/64/128, sym/asym): Q4Linear's outputs bit for bit
//
// Activations (ActivationMode):
//   a32  the float input goes to the kernel as it is (the int4 kernels quantize it internally per
//        block of 32 inputs, see Q4Linear);
//   a8   the input is quantized per token EXACTLY as model::fake_quantize_token(x, out, n, 8):
//          Δ = max(max_j |x_j|, 1e−5) / 127,  q_j = clamp(nearbyint(x_j / Δ), −127, 127)
//        (quantize_token_int8 below), so q_j·Δ is bit for bit the fake-quantized activation of
//        InputQuantLinear(…, 8). Note kernels::quantize_per_token_q8 differs (x·(127/amax), no 1e−5
//        floor) and is NOT used here.
//
// Scratch memory: LinearOp::gemv is const and runs concurrently on several threads, so per-call
// buffers (int8 activations, zero-padded inputs, block-int8 workspaces) come from a thread_local
// byte buffer that only grows (packed_scratch): after the first call of a given size no allocation
// happens on the hot path. A buffer is used by one op call at a time (ops never call each other
// while holding it).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sparq/core/matrix_view.hpp"
#include "sparq/model/linear_op.hpp"

namespace sparq::model {

/// How a packed op consumes its float input.
enum class ActivationMode : std::uint8_t { a32, a8 };

[[nodiscard]] constexpr const char* activation_mode_name(ActivationMode a) noexcept {
  return a == ActivationMode::a8 ? "A8" : "A32";
}

/// Per-token symmetric int8 quantization bit-identical to fake_quantize_token(x, ·, n, 8):
/// returns Δ = max(absmax, 1e−5)/127 and writes q[j] = clamp(nearbyint(x[j]/Δ), −127, 127).
inline float quantize_token_int8(const float* x, std::size_t n, std::int8_t* q) noexcept {
  constexpr float qmax = 127.0f;
  float amax = 0.0f;
  for (std::size_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float delta = std::max(amax, 1e-5f) / qmax;
  // A NaN quotient (an infinite input: inf / inf) becomes code 0 instead of an undefined cast; the
  // result is meaningless then, as the float path's is, but defined.
  for (std::size_t j = 0; j < n; ++j) {
    const float r = std::nearbyint(x[j] / delta);
    q[j] = r >= qmax ? std::int8_t{127} : r <= -qmax ? std::int8_t{-127} : r == r ? static_cast<std::int8_t>(r) : std::int8_t{0};
  }
  return delta;
}

/// Thread-local scratch of at least `bytes` bytes, 64-byte aligned (grows, never shrinks).
[[nodiscard]] inline unsigned char* packed_scratch(std::size_t bytes) {
  thread_local std::vector<unsigned char> buf;
  if (buf.size() < bytes + 64) buf.resize(bytes + 64);
  auto p = reinterpret_cast<std::uintptr_t>(buf.data());
  p = (p + 63) & ~std::uintptr_t{63};
  return reinterpret_cast<unsigned char*>(p);
}

/// Rounds n up to a multiple of 64 (to carve several arrays out of one scratch block).
[[nodiscard]] constexpr std::size_t packed_align64(std::size_t n) noexcept { return (n + 63) / 64 * 64; }

/// A LinearOp over packed weights: adds the dequantized view and the activation mode.
class PackedLinear : public LinearOp {
 public:
  PackedLinear() = default;
  /// Movable (LinearOp is not copyable): lets the derived ops be returned by value from builders.
  PackedLinear(PackedLinear&&) noexcept : LinearOp() {}

  /// The weight matrix the op multiplies by ([out x in] floats, exactly what the kernels use).
  [[nodiscard]] virtual Matrix<float> dequantize() const = 0;
  [[nodiscard]] virtual ActivationMode activations() const noexcept = 0;
  /// Kernel threads per call (1 = the calling thread; see kernels/gemv_common.hpp).
  [[nodiscard]] virtual int threads() const noexcept = 0;

  /// Already in its storage format: kept inside a CompensatedLinear, refused elsewhere (packing
  /// twice).
  [[nodiscard]] std::unique_ptr<LinearOp> pack(const OpPacker& p, int input_bits, bool inside_correction) const override {
    if (inside_correction) return nullptr;
    return LinearOp::pack(p, input_bits, inside_correction);
  }
  [[nodiscard]] Matrix<float> dense_weights() const override { return dequantize(); }
  /// The model's float copy when it is there (the fake-quantized weights the codes were packed
  /// from), else the decoded codes.
  void export_weights(Matrix<float>& w, std::string&) const override {
    if (w.size() == 0) w = dequantize();
  }
  [[nodiscard]] int activation_bits() const noexcept override { return activations() == ActivationMode::a8 ? 8 : 0; }

 protected:
  /// The metadata "act" every packed format stores: 8 for int8 activations, 32 for float.
  void save_activations(OpWriter& w) const { w.meta("act", activations() == ActivationMode::a8 ? 8 : 32); }
  [[nodiscard]] static ActivationMode load_activations(const OpReader& r) {
    return r.meta("act", 8, 32) == 8 ? ActivationMode::a8 : ActivationMode::a32;
  }
};

}  // namespace sparq::model
