// GgufWriter: builds a GGUF v3 file (metadata of every type; tensors of every type ggml_encode writes).
//
// Output layout is the one gguf.hpp documents: header, metadata in insertion order, tensor infos
// in insertion order, zero padding to the alignment, then each tensor's data at an offset that is
// a multiple of the alignment (zero padding between tensors). The alignment is the u32 value of
// `general.alignment` if it was set, else 32. add_tensor encodes floats with ggml_encode
// (ggml_blocks.hpp): Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 with ggml's reference quantizers (the codes llama.cpp
// would write), Q4_K/Q6_K with sparq's own rule (valid blocks of the layout, rows a multiple of
// 256); add_tensor_bytes takes blocks already encoded in any type of the table, decode-only ones
// included. Files are written to a temporary name and renamed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/io/byte_cursor.hpp"
#include "sparq/io/ggml_blocks.hpp"
#include "sparq/io/gguf.hpp"
#include "sparq/io/llama2c.hpp"

namespace sparq::io {

class GgufWriter {
 public:
  /// Sets (or replaces) a metadata value; insertion order is kept.
  void set(const std::string& key, GgufValue value) {
    SPARQ_CHECK(!key.empty() && key.size() < (1u << 16), "GgufWriter: metadata key length ", key.size(),
                ", expected 1..65535");
    if (key == "general.alignment") {
      const auto* u = std::get_if<std::uint32_t>(&value);
      SPARQ_CHECK(u != nullptr && *u != 0 && (*u & (*u - 1)) == 0,
                  "GgufWriter: general.alignment must be a u32 power of two");
    }
    for (auto& kv : metadata_) {
      if (kv.first == key) {
        kv.second = std::move(value);
        return;
      }
    }
    metadata_.emplace_back(key, std::move(value));
  }

  /// Adds a tensor from floats, encoded as `type`. dims in ggml order (dims[0] = row length).
  void add_tensor(const std::string& name, const std::vector<std::uint64_t>& dims, GgmlType type,
                  const float* x) {
    const auto n = check_dims(name, dims, type);
    std::vector<char> data(ggml_nbytes(type, n));
    try {
      ggml_encode(type, x, n, data.data());
    } catch (const error& e) {
      sparq::detail::fail("GgufWriter: tensor '", name, "': ", e.what());
    }
    tensors_.push_back({name, dims, type, std::move(data)});
  }

  /// Adds a tensor whose bytes are already encoded in `type`'s layout (e.g. Q4_0 blocks).
  void add_tensor_bytes(const std::string& name, const std::vector<std::uint64_t>& dims, GgmlType type,
                        std::vector<char> data) {
    const auto n = check_dims(name, dims, type);
    SPARQ_CHECK(data.size() == ggml_nbytes(type, n), "GgufWriter: tensor '", name, "' has ", data.size(),
                " bytes, its shape and type ", ggml_type_name(type), " need ", ggml_nbytes(type, n));
    tensors_.push_back({name, dims, type, std::move(data)});
  }

  /// The complete file.
  [[nodiscard]] std::vector<char> serialize() const {
    std::uint64_t alignment = gguf_default_alignment;
    for (const auto& kv : metadata_)
      if (kv.first == "general.alignment") alignment = std::get<std::uint32_t>(kv.second);
    ByteSink s;
    s.put(gguf_magic);
    s.put(std::uint32_t{3});
    s.put(static_cast<std::uint64_t>(tensors_.size()));
    s.put(static_cast<std::uint64_t>(metadata_.size()));
    for (const auto& kv : metadata_) {
      put_string(s, kv.first);
      s.put(static_cast<std::uint32_t>(kv.second.index()));
      put_value(s, kv.second, 0);
    }
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> offsets;
    for (const auto& t : tensors_) {
      put_string(s, t.name);
      s.put(static_cast<std::uint32_t>(t.dims.size()));
      for (auto d : t.dims) s.put(d);
      s.put(static_cast<std::uint32_t>(t.type));
      s.put(offset);
      offsets.push_back(offset);
      offset = detail::align_up(offset + t.data.size(), alignment, "GgufWriter offset");
    }
    s.pad_to(static_cast<std::size_t>(alignment));
    const std::size_t base = s.size();
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      while (s.size() < base + offsets[i]) s.put(char{0});
      s.put_bytes(tensors_[i].data.data(), tensors_[i].data.size());
    }
    s.pad_to(static_cast<std::size_t>(alignment));
    return s.release();
  }

  /// Writes the file (temporary file + rename).
  void write(const std::string& path) const {
    const auto b = serialize();
    detail::write_file_atomic(path, b.data(), b.size());
  }

  [[nodiscard]] std::size_t tensor_count() const noexcept { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    GgmlType type;
    std::vector<char> data;
  };

  static std::size_t check_dims(const std::string& name, const std::vector<std::uint64_t>& dims, GgmlType type) {
    SPARQ_CHECK(!name.empty() && name.size() <= gguf_max_name, "GgufWriter: tensor name '", name,
                "' must have 1..", gguf_max_name, " bytes");
    SPARQ_CHECK(!dims.empty() && dims.size() <= gguf_max_dims, "GgufWriter: tensor '", name, "' has ",
                dims.size(), " dims, expected 1..4");
    std::uint64_t n = 1;
    for (auto d : dims) {
      SPARQ_CHECK(d > 0, "GgufWriter: tensor '", name, "' has a zero dim");
      n = detail::checked_mul(n, d, "GgufWriter: tensor '" + name + "' size");
    }
    SPARQ_CHECK(dims[0] % ggml_block_elems(type) == 0, "GgufWriter: tensor '", name, "' row length ", dims[0],
                " is not a multiple of the ", ggml_type_name(type), " block size ", ggml_block_elems(type));
    return static_cast<std::size_t>(n);
  }
  static void put_string(ByteSink& s, const std::string& v) {
    s.put(static_cast<std::uint64_t>(v.size()));
    s.put_bytes(v.data(), v.size());
  }
  static void put_array(ByteSink& s, const GgufArray& a, std::size_t depth) {
    SPARQ_CHECK(depth < gguf_max_depth, "GgufWriter: arrays nest deeper than ", gguf_max_depth);
    s.put(static_cast<std::uint32_t>(a.elem_type));
    s.put(static_cast<std::uint64_t>(a.size()));
    if (a.elem_type == GgufType::string) {
      for (const auto& v : a.strings) put_string(s, v);
    } else if (a.elem_type == GgufType::array) {
      for (const auto& v : a.arrays) put_array(s, v, depth + 1);
    } else {
      SPARQ_CHECK(gguf_scalar_size(a.elem_type) != 0 && a.raw.size() % gguf_scalar_size(a.elem_type) == 0,
                  "GgufWriter: array of ", gguf_type_name(a.elem_type), " has ", a.raw.size(), " raw bytes");
      s.put_bytes(a.raw.data(), a.raw.size());
    }
  }
  static void put_value(ByteSink& s, const GgufValue& v, std::size_t depth) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            put_string(s, x);
          } else if constexpr (std::is_same_v<T, GgufArray>) {
            put_array(s, x, depth + 1);
          } else if constexpr (std::is_same_v<T, bool>) {
            s.put(static_cast<std::uint8_t>(x ? 1 : 0));
          } else {
            s.put(x);
          }
        },
        v);
  }

  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace sparq::io
