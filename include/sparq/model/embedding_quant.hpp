// Int8 token embedding and classifier: weight-only, symmetric, one scale per row (per token).
//
// On a small model the token embedding (shared with the classifier in the Llama-2 family) is a
// large part of the weights: stories260K's 512 x 64 f32 embedding is 131 KB of a 290 KB compressed
// file. quantize_embeddings rounds it (and an unshared classifier) to the int8 grid that the decoder
// linears' W8 uses, Quantizer<Symmetric, PerChannel, 8>: per row s = max(absmax, 1e-5)/127,
// q = nearbyint(x/s) ∈ [-127, 127], and writes back x̂ = s·q (decode_int8_rows, the one decode that
// the model, the SPRQ writer and the SPRQ reader share). The model keeps running on floats (the
// classifier is a float GEMM over x̂, the embedding a row copy of x̂), so nothing at run time
// changes but the values; the SPRQ file stores the codes and scales (format "q8_rows",
// docs/formats.md) — 1 byte per value plus 4 per row instead of 4 per value.
//
// Exact recovery: re-quantizing x̂ gives back exactly q and s (each row's largest |x̂| is fl(127·s)
// and fl(fl(127·s)/127) = s for every s = fl(a/127), a ≥ 1e-5; x̂/s rounds back to q), the same
// argument as lowrank::StoredFactor's int8 factors. exact_int8_rows uses it to decide, bit for bit,
// whether a float matrix is such a grid; the writer stores codes only then, so the file always
// decodes to the very floats the model ran.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"
#include "sparq/model/llama.hpp"
#include "sparq/quant/quantized_tensor.hpp"
#include "sparq/quant/quantizer.hpp"

namespace sparq::model {

/// The per-row symmetric int8 codes (and scales) of `w`: Quantizer<Symmetric, PerChannel, 8>.
/// Throws sparq::error on a non-finite value.
[[nodiscard]] inline QuantizedTensor int8_rows(MatrixView<const float> w) {
  return Quantizer<Symmetric, PerChannel, 8>{}.quantize(w);
}

/// out(i, j) = scales[i] · codes[i·cols + j] for a rows x cols matrix (out's shape).
inline void decode_int8_rows(std::span<const std::int8_t> codes, std::span<const float> scales, MatrixView<float> out) {
  const std::size_t rows = out.rows(), cols = out.cols();
  SPARQ_CHECK(codes.size() == rows * cols && scales.size() == rows, "decode_int8_rows: ", codes.size(), " codes and ",
              scales.size(), " scales for a ", rows, "x", cols, " matrix, expected ", rows * cols, " and ", rows);
  for (std::size_t i = 0; i < rows; ++i) {
    const float s = scales[i];
    const std::int8_t* q = codes.data() + i * cols;
    float* o = out.row(i);
    for (std::size_t j = 0; j < cols; ++j) o[j] = s * static_cast<float>(q[j]);
  }
}

/// The codes of `w` when `w` is exactly (bit for bit) the decode of its own per-row int8 codes, i.e.
/// a matrix that quantize_embeddings (or any Quantizer<Symmetric, PerChannel, 8> round trip) made;
/// nullopt otherwise (any other float matrix, a non-finite value, a −0.0 where the decode gives +0).
[[nodiscard]] inline std::optional<QuantizedTensor> exact_int8_rows(MatrixView<const float> w) {
  if (w.empty()) return std::nullopt;
  for (std::size_t i = 0; i < w.rows(); ++i)
    for (std::size_t j = 0; j < w.cols(); ++j)
      if (!std::isfinite(w(i, j))) return std::nullopt;
  QuantizedTensor q = int8_rows(w);
  const auto codes = q.int8_codes();
  std::vector<float> row(w.cols());
  for (std::size_t i = 0; i < w.rows(); ++i) {
    decode_int8_rows(codes.subspan(i * w.cols(), w.cols()), std::span<const float>(q.scales() + i, 1),
                     MatrixView<float>(row.data(), 1, w.cols()));
    if (std::memcmp(row.data(), w.row(i), w.cols() * sizeof(float)) != 0) return std::nullopt;
  }
  return q;
}

/// Rounds `w` in place to its per-row int8 grid (x ← s·q, see the file comment).
inline void quantize_int8_rows(MatrixView<float> w) {
  const QuantizedTensor q = int8_rows(w);
  decode_int8_rows(q.int8_codes(), std::span<const float>(q.scales(), w.rows()), w);
}

/// Quantizes the token embedding and (when not shared) the classifier of `m` in place: bits = 8
/// gives the per-row int8 grid; bits = 0 or 32 leaves them in float. Any other value throws
/// sparq::error before anything changes.
inline void quantize_embeddings(Llama& m, int bits) {
  SPARQ_CHECK(bits == 0 || bits == 8 || bits == 32, "quantize_embeddings: bits = ", bits,
              ", expected 8 (int8 per row) or 0/32 (float)");
  if (bits != 8) return;
  quantize_int8_rows(m.token_embedding_values());
  if (!m.config().shared_classifier) quantize_int8_rows(m.classifier_values());
}

/// 8 when the token embedding (and an unshared classifier) of `w` lie exactly on their per-row int8
/// grids, else 32.
[[nodiscard]] inline int embedding_bits(const LlamaWeights& w) {
  if (!exact_int8_rows(w.token_embedding.view())) return 32;
  if (!w.config.shared_classifier && !exact_int8_rows(w.classifier.view())) return 32;
  return 8;
}

}  // namespace sparq::model
