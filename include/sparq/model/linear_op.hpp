// LinearOp: the weight-format interface every linear layer of the model runtime goes through.
//
// A LinearOp computes y = W x for a weight W of shape [out_features x in_features] (row-major,
// rows are output channels, docs/algorithms.md#notation). How W is stored is the implementation's business:
// dense float (DenseLinear), fake-quantized float, packed integer codes, N:M-sparse, ... The model
// (model::Llama) holds one LinearOp per (block, Linear) and calls only this interface, so a new
// weight format plugs in by deriving from LinearOp and calling Llama::set_linear.
//
// Contract for implementations:
//   - gemv(x, y): y[o] = sum_i W[o, i] * x[i] for o < out_features(); x has in_features() floats,
//     y has out_features() floats; x and y do not alias.
//   - gemm(X, Y): Y = X · Wᵀ, X is [tokens x in_features], Y is [tokens x out_features] (rows may
//     be strided). The default runs gemv row by row; fast formats override it.
//   - Both are const and must be safe to call concurrently from several threads (the perplexity
//     evaluation runs windows in parallel over one model). The model checks shapes before calling;
//     implementations need not.
//   - weight_bytes(): bytes of weight storage as it would be stored (codes + scales + metadata),
//     used for the "weight bytes as stored" figure of docs/evaluation.md#what-a-results-row-states.
//
// A format also describes itself to the rest of the library through virtual methods, so that
// nothing outside it needs to know its type (docs/model.md#adding-a-weight-format):
//   - pack(): what model::pack_model installs in its place (a dense float op packs itself through
//     the OpPacker it is given; an op already in its storage format is kept or refused).
//   - save(): its SPRQ file format, written through an OpWriter (io/packed_model.hpp implements it);
//     reading it back goes through the format's loader, registered by name in
//     model/linear_formats.hpp.
//   - dense_weights() / export_weights(): the weight as a float matrix (GGUF export, read-back).
//   - activation_bits(), reads_float_view(), owned_weight_bytes(): what memory accounting and
//     the exporters need to know of wrappers and views.
// Wrappers (InputQuantLinear, CompensatedLinear) implement each of these by delegating to the op
// they wrap.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/matrix_view.hpp"

namespace sparq::model {

class DenseLinear;
class LinearOp;
class LowRankLinear;

/// Where LinearOp::save writes one linear of a packed model file (SPRQ, docs/formats.md).
/// io/packed_model.hpp implements it over the file's tensor and metadata. An op calls, in order:
/// the wrapper calls (input_bits for an InputQuantLinear, correction for a CompensatedLinear), then
/// exactly one of low_rank or format, followed by that format's sections and metadata.
class OpWriter {
 public:
  OpWriter() = default;
  OpWriter(const OpWriter&) = delete;
  OpWriter& operator=(const OpWriter&) = delete;
  virtual ~OpWriter() = default;

  /// An InputQuantLinear of `bits`-bit activations around the op saved next.
  virtual void input_bits(int bits) = 0;
  /// A CompensatedLinear's LoRC correction around the op saved next.
  virtual void correction(const LowRankLinear& c) = 0;
  /// The op is a LowRankLinear (format "lowrank").
  virtual void low_rank(const LowRankLinear& lr) = 0;
  /// The op's own format: the name readers find its loader by (model/linear_formats.hpp) and the
  /// oldest packed-model version that holds it (1 for formats every reader knows).
  virtual void format(const std::string& name, int min_version) = 0;
  /// A named section of the op's tensor (bytes as they are in memory).
  virtual void section_bytes(const std::string& name, const void* data, std::size_t bytes) = 0;
  template <class T>
  void section(const std::string& name, const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    section_bytes(name, v.data(), v.size() * sizeof(T));
  }
  /// An integer attribute of the op (stored as metadata "<tensor>.<key>").
  virtual void meta(const std::string& key, std::int64_t value) = 0;
};

/// What a format's loader reads one linear from (io/packed_model.hpp implements it over a parsed
/// file). Every accessor throws sparq::error naming what is missing or out of range.
class OpReader {
 public:
  OpReader() = default;
  OpReader(const OpReader&) = delete;
  OpReader& operator=(const OpReader&) = delete;
  virtual ~OpReader() = default;

  /// The shape the model expects of this linear ([rows x cols] = [out x in]).
  [[nodiscard]] virtual std::size_t rows() const noexcept = 0;
  [[nodiscard]] virtual std::size_t cols() const noexcept = 0;
  /// The file's packed-model version (a format newer than version 1 checks it).
  [[nodiscard]] virtual int file_version() const noexcept = 0;
  /// Kernel threads per op (PackedReadOptions::threads).
  [[nodiscard]] virtual int threads() const noexcept = 0;
  /// PackedReadOptions::dense_bitmask_codes: a compact format may load as the dense op of the
  /// same codes when that computes the same outputs faster.
  [[nodiscard]] virtual bool prefer_dense() const noexcept = 0;
  /// Integer metadata "<tensor>.<key>", required to lie in lo..hi.
  [[nodiscard]] virtual std::int64_t meta(const std::string& key, std::int64_t lo, std::int64_t hi) const = 0;
  /// Names the tensor in messages ("blocks.0.wq").
  [[nodiscard]] virtual const std::string& tensor_name() const noexcept = 0;
  /// The section's bytes, or nullptr when the tensor has no such section.
  [[nodiscard]] virtual const std::vector<std::uint8_t>* find_section(std::string_view name) const = 0;
  [[nodiscard]] virtual std::vector<std::string> section_names() const = 0;

  [[nodiscard]] bool has_section(std::string_view name) const { return find_section(name) != nullptr; }
  /// A section's bytes as T values (its size must be a multiple of sizeof(T)).
  template <class T>
  [[nodiscard]] std::vector<T> section(std::string_view name) const {
    static_assert(std::is_trivially_copyable_v<T>);
    const std::vector<std::uint8_t>* s = find_section(name);
    if (s == nullptr) sparq::detail::fail("ContainerTensor '", tensor_name(), "': no section '", name, "'");
    SPARQ_CHECK(s->size() % sizeof(T) == 0, "ContainerTensor '", tensor_name(), "': section '", name, "' has ",
                s->size(), " bytes, not a multiple of ", sizeof(T));
    std::vector<T> v(s->size() / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), s->data(), s->size());
    return v;
  }
  /// Throws unless every section of the tensor is one of `allowed` (a format that is strict about
  /// what its tensor holds).
  void only_sections(std::initializer_list<std::string_view> allowed, std::string_view format) const {
    for (const auto& n : section_names())
      SPARQ_CHECK(std::find(allowed.begin(), allowed.end(), std::string_view(n)) != allowed.end(),
                  "unexpected section '", n, "' in format ", format);
  }
  /// The oldest file version that holds `format`, checked against the file's.
  void require_version(int version, std::string_view format) const {
    SPARQ_CHECK(file_version() >= version, "format '", format, "' needs packed model version ", version,
                ", the file says ", file_version());
  }
};

/// What model::pack_model gives LinearOp::pack: the packing of a dense float op under the caller's
/// PackOptions (model/pack_model.hpp implements it).
class OpPacker {
 public:
  OpPacker() = default;
  OpPacker(const OpPacker&) = delete;
  OpPacker& operator=(const OpPacker&) = delete;
  virtual ~OpPacker() = default;

  /// Packs `d`. `input_bits`: the width of an InputQuantLinear directly around it (0: none); the
  /// returned op computes what that wrapper around `d` computes (it takes the quantization over or
  /// keeps the wrapper).
  [[nodiscard]] virtual std::unique_ptr<LinearOp> pack_dense(const DenseLinear& d, int input_bits) const = 0;
  /// "pack_model: block 3 w1", to start messages with.
  [[nodiscard]] virtual const std::string& where() const noexcept = 0;
};

class LinearOp {
 public:
  LinearOp() = default;
  LinearOp(const LinearOp&) = delete;
  LinearOp& operator=(const LinearOp&) = delete;
  virtual ~LinearOp() = default;

  [[nodiscard]] virtual std::size_t in_features() const noexcept = 0;
  [[nodiscard]] virtual std::size_t out_features() const noexcept = 0;
  [[nodiscard]] virtual std::size_t weight_bytes() const noexcept = 0;
  /// Short human-readable description of the format ("dense f32 64x64", ...).
  [[nodiscard]] virtual std::string describe() const = 0;

  /// y = W x (one token).
  virtual void gemv(const float* x, float* y) const = 0;

  /// Y = X · Wᵀ (all tokens). Default: one gemv per row.
  virtual void gemm(MatrixView<const float> X, MatrixView<float> Y) const {
    for (std::size_t t = 0; t < X.rows(); ++t) gemv(X.row(t), Y.row(t));
  }

  // ---- how the op describes itself to packing, files and exporters ----

  /// model::pack_model's step: the op to install in place of this one, or nullptr to keep this one
  /// as it is. `input_bits`: width of an InputQuantLinear directly around this op (0: none), which
  /// the returned op must include (taken over, or as a wrapper). `inside_correction`: this op is
  /// the inner op of a CompensatedLinear. Default: throws (nothing to pack: not a dense float op).
  [[nodiscard]] virtual std::unique_ptr<LinearOp> pack(const OpPacker& p, int input_bits, bool inside_correction) const {
    (void)input_bits;
    sparq::detail::fail(p.where(), ": expected a dense float op", inside_correction ? " inside the CompensatedLinear" : "",
                        ", found '", describe(), "'");
  }

  /// Writes the op to a packed model file (see OpWriter). Default: throws (no file format).
  virtual void save(OpWriter& w) const {
    (void)w;
    sparq::detail::fail("'", describe(), "' has no packed file format");
  }

  /// The weight the op multiplies by, as a dense float [out x in] matrix (activation quantization,
  /// if the op does any, left out). Default: the op applied to the rows of the identity, exact for
  /// an op that does not quantize its input (formats override it with their own decoding).
  [[nodiscard]] virtual Matrix<float> dense_weights() const {
    const std::size_t in = in_features(), out = out_features();
    Matrix<float> w(out, in, 0.0f);
    constexpr std::size_t chunk = 64;
    Matrix<float> eye(std::min(chunk, in), in, 0.0f), y(std::min(chunk, in), out, 0.0f);
    for (std::size_t j0 = 0; j0 < in; j0 += chunk) {
      const std::size_t n = std::min(chunk, in - j0);
      std::fill(eye.data(), eye.data() + eye.size(), 0.0f);
      for (std::size_t t = 0; t < n; ++t) eye(t, j0 + t) = 1.0f;
      gemm(MatrixView<const float>(eye.data(), n, in), MatrixView<float>(y.data(), n, out));
      for (std::size_t t = 0; t < n; ++t)
        for (std::size_t o = 0; o < out; ++o) w(o, j0 + t) = y(t, o);
    }
    return w;
  }

  /// The float weight a file exporter writes for this op (io/gguf_export.hpp). On entry `w` holds
  /// the model's float copy of the block weight (empty once released); an op whose weight is that
  /// copy (DenseLinear, and the packed ops, whose codes were packed from it) keeps it, others
  /// replace or add to it, and `source` says where the weight came from. Default: dense_weights().
  virtual void export_weights(Matrix<float>& w, std::string& source) const {
    (void)source;
    w = dense_weights();
  }

  /// Width of the activation quantization the op applies to its input (0: none; A8 kernels: 8).
  [[nodiscard]] virtual int activation_bits() const noexcept { return 0; }
  /// True when the op reads float weights it does not hold (a view of a model's block matrices).
  [[nodiscard]] virtual bool reads_float_view() const noexcept { return false; }
  /// Bytes of weight arrays the op holds itself (a view holds none; wrappers add what they wrap).
  [[nodiscard]] virtual std::size_t owned_weight_bytes() const noexcept { return weight_bytes(); }
};

}  // namespace sparq::model
