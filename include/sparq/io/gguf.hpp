// GgufFile: a validated GGUF v3 (and v2) file held in memory — typed metadata, tensor infos, data.
//
// Layout (little-endian; strings are uint64 length + bytes, no terminator):
//   "GGUF", uint32 version, uint64 tensor_count, uint64 kv_count,
//   kv_count x { string key, uint32 value_type, value },
//       value_type: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte, 0 or 1),
//                   8 string, 9 array { uint32 elem_type, uint64 count, count values },
//                   10 u64, 11 i64, 12 f64
//   tensor_count x { string name, uint32 n_dims, uint64 dims[n_dims] (ne0 = innermost, the row
//                    length), uint32 ggml_type, uint64 offset (relative to the data section) },
//   zero padding to `general.alignment` (uint32, default 32), the data section.
// Safety: every length, count and offset is checked against the end of the buffer with
// overflow-checked arithmetic before use; array/string counts are bounded by the bytes left, so a
// hostile file cannot make the reader allocate more than a small multiple of its own size; arrays
// nest at most gguf_max_depth deep; tensors must have 1..4 dims, each > 0, an element count that
// fits 2^62, a type of ggml_blocks.hpp's table (every one decodes: the float types, the 32-element
// blocks Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/IQ4_NL and the 256-element K-quants Q2_K..Q6_K), a row length
// that is a multiple of the type's block (the byte size comes from the same table), an aligned
// offset, data inside the file, and no overlap with another tensor. Keys and tensor names are
// unique. Any violation throws sparq::error naming the field, its value and the expected range.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/io/byte_cursor.hpp"
#include "sparq/io/ggml_blocks.hpp"
#include "sparq/io/llama2c.hpp"

namespace sparq::io {

/// GGUF metadata value types (the uint32 codes stored in the file).
enum class GgufType : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12
};

inline constexpr std::uint32_t gguf_magic = 0x46554747u;  // "GGUF" read as little-endian uint32
inline constexpr std::uint64_t gguf_default_alignment = 32;
inline constexpr std::size_t gguf_max_dims = 4;
inline constexpr std::size_t gguf_max_depth = 8;            ///< nesting of arrays
inline constexpr std::uint64_t gguf_max_string = 1ull << 28;  ///< bytes of one string value
inline constexpr std::uint64_t gguf_max_name = 63;          ///< tensor name bytes (ggml's limit)

[[nodiscard]] constexpr const char* gguf_type_name(GgufType t) noexcept {
  constexpr const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                   "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

/// Size in bytes of a scalar GGUF type (0 for string and array).
[[nodiscard]] constexpr std::size_t gguf_scalar_size(GgufType t) noexcept {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    default: return 0;
  }
}

/// A GGUF array. Scalar elements are kept packed (`raw`, little-endian, gguf_scalar_size each);
/// string elements in `strings`; nested arrays in `arrays`. Exactly one of them is used.
struct GgufArray {
  GgufType elem_type = GgufType::u8;
  std::vector<char> raw;
  std::vector<std::string> strings;
  std::vector<GgufArray> arrays;

  [[nodiscard]] std::size_t size() const noexcept {
    if (elem_type == GgufType::string) return strings.size();
    if (elem_type == GgufType::array) return arrays.size();
    const std::size_t s = gguf_scalar_size(elem_type);
    return s ? raw.size() / s : 0;
  }

  /// Element i of a scalar array converted to double (integers exactly up to 2^53).
  [[nodiscard]] double number(std::size_t i) const {
    SPARQ_CHECK(i < size(), "GGUF array: index ", i, " out of range (size ", size(), ")");
    const char* p = raw.data() + i * gguf_scalar_size(elem_type);
    auto rd = [p](auto v) {
      std::memcpy(&v, p, sizeof v);
      return static_cast<double>(v);
    };
    switch (elem_type) {
      case GgufType::u8: return rd(std::uint8_t{});
      case GgufType::i8: return rd(std::int8_t{});
      case GgufType::u16: return rd(std::uint16_t{});
      case GgufType::i16: return rd(std::int16_t{});
      case GgufType::u32: return rd(std::uint32_t{});
      case GgufType::i32: return rd(std::int32_t{});
      case GgufType::f32: return rd(float{});
      case GgufType::boolean: return rd(std::uint8_t{});
      case GgufType::u64: return rd(std::uint64_t{});
      case GgufType::i64: return rd(std::int64_t{});
      case GgufType::f64: return rd(double{});
      default: break;
    }
    sparq::detail::fail("GGUF array of ", gguf_type_name(elem_type), " holds no numbers");
  }

  /// Builds a scalar array from a vector of T (T one of the GGUF scalar C++ types).
  template <class T>
  [[nodiscard]] static GgufArray of(GgufType t, const std::vector<T>& v) {
    GgufArray a;
    a.elem_type = t;
    SPARQ_CHECK(gguf_scalar_size(t) == sizeof(T), "GgufArray::of: element size ", sizeof(T),
                " does not match GGUF type ", gguf_type_name(t));
    a.raw.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(a.raw.data(), v.data(), a.raw.size());
    return a;
  }
  [[nodiscard]] static GgufArray of_strings(std::vector<std::string> v) {
    GgufArray a;
    a.elem_type = GgufType::string;
    a.strings = std::move(v);
    return a;
  }
};

/// A metadata value; the variant index equals the GgufType code.
using GgufValue = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t,
                               std::int32_t, float, bool, std::string, GgufArray, std::uint64_t,
                               std::int64_t, double>;
static_assert(std::variant_size_v<GgufValue> == 13);

[[nodiscard]] inline GgufType gguf_type_of(const GgufValue& v) noexcept {
  return static_cast<GgufType>(v.index());
}

/// One tensor's description; data lives at file data_offset + offset, n_bytes long.
struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  ///< ggml order: dims[0] = ne0 = row length
  GgmlType type = GgmlType::F32;
  std::uint64_t offset = 0;         ///< relative to the data section
  std::uint64_t n_elements = 0;
  std::uint64_t n_bytes = 0;

  [[nodiscard]] std::uint64_t row_length() const noexcept { return dims.empty() ? 0 : dims[0]; }
  [[nodiscard]] std::uint64_t n_rows() const noexcept {
    return row_length() ? n_elements / row_length() : 0;
  }
};

/// A parsed, validated GGUF file; owns the file's bytes.
class GgufFile {
 public:
  std::uint32_t version = 3;
  std::uint64_t alignment = gguf_default_alignment;
  std::uint64_t data_offset = 0;  ///< absolute offset of the data section
  std::vector<std::pair<std::string, GgufValue>> metadata;  ///< in file order
  std::vector<GgufTensorInfo> tensors;                      ///< in file order
  FileBytes bytes;  ///< the whole file (memory-mapped by read_gguf)
  std::string what = "GGUF";                                ///< used in error messages

  [[nodiscard]] const GgufValue* find(std::string_view key) const noexcept {
    for (const auto& kv : metadata)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  [[nodiscard]] const GgufTensorInfo* find_tensor(std::string_view name) const noexcept {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  [[nodiscard]] const GgufTensorInfo& tensor(std::string_view name) const {
    const auto* t = find_tensor(name);
    if (t == nullptr) sparq::detail::fail(what, ": tensor '", name, "' not found");
    return *t;
  }

  /// An integer value of any GGUF integer type (negative values rejected); nullopt when absent.
  [[nodiscard]] std::optional<std::uint64_t> find_uint(std::string_view key) const {
    const auto* v = find(key);
    if (v == nullptr) return std::nullopt;
    return std::visit(
        [&](const auto& x) -> std::uint64_t {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            if constexpr (std::is_signed_v<T>) {
              if (x < 0) sparq::detail::fail(what, ": metadata '", key, "' = ", static_cast<std::int64_t>(x),
                                             ", expected a non-negative integer");
            }
            return static_cast<std::uint64_t>(x);
          } else {
            sparq::detail::fail(what, ": metadata '", key, "' has type ", gguf_type_name(gguf_type_of(*v)),
                                ", expected an integer");
          }
        },
        *v);
  }
  [[nodiscard]] std::uint64_t get_uint(std::string_view key) const {
    const auto v = find_uint(key);
    if (!v) sparq::detail::fail(what, ": missing metadata key '", key, "'");
    return *v;
  }
  /// A float32/float64 value; nullopt when absent.
  [[nodiscard]] std::optional<double> find_float(std::string_view key) const {
    const auto* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (const auto* f = std::get_if<float>(v)) return static_cast<double>(*f);
    if (const auto* d = std::get_if<double>(v)) return *d;
    sparq::detail::fail(what, ": metadata '", key, "' has type ", gguf_type_name(gguf_type_of(*v)),
                        ", expected f32 or f64");
  }
  [[nodiscard]] const std::string* find_string(std::string_view key) const {
    const auto* v = find(key);
    if (v == nullptr) return nullptr;
    if (const auto* s = std::get_if<std::string>(v)) return s;
    sparq::detail::fail(what, ": metadata '", key, "' has type ", gguf_type_name(gguf_type_of(*v)),
                        ", expected string");
  }
  [[nodiscard]] const GgufArray* find_array(std::string_view key) const {
    const auto* v = find(key);
    if (v == nullptr) return nullptr;
    if (const auto* a = std::get_if<GgufArray>(v)) return a;
    sparq::detail::fail(what, ": metadata '", key, "' has type ", gguf_type_name(gguf_type_of(*v)),
                        ", expected array");
  }

  /// Pointer to a tensor's bytes (validated at parse time to lie inside `bytes`).
  [[nodiscard]] const char* tensor_data(const GgufTensorInfo& t) const noexcept {
    return bytes.data() + data_offset + t.offset;
  }
  /// A tensor's elements converted to float (F32 copied bit for bit; others dequantized).
  [[nodiscard]] std::vector<float> tensor_floats(const GgufTensorInfo& t) const {
    std::vector<float> out(static_cast<std::size_t>(t.n_elements));
    ggml_decode(t.type, tensor_data(t), out.size(), out.data());
    return out;
  }
};

namespace detail {

inline std::string gguf_read_string(ByteCursor& c, std::uint64_t max_len, std::string_view field) {
  const auto n = c.read<std::uint64_t>(field);
  return c.read_bytes_as_string(n, max_len, field);
}

inline GgufType gguf_read_type(ByteCursor& c, std::string_view field, const std::string& key) {
  const auto t = c.read<std::uint32_t>(field);
  if (t > 12) {
    sparq::detail::fail(c.what(), ": metadata '", key, "' has unknown value type ", t, " at offset ",
                        c.offset() - 4, ", expected 0..12");
  }
  return static_cast<GgufType>(t);
}

inline GgufArray gguf_read_array(ByteCursor& c, const std::string& key, std::size_t depth);

inline GgufValue gguf_read_value(ByteCursor& c, GgufType t, const std::string& key, std::size_t depth) {
  switch (t) {
    case GgufType::u8: return c.read<std::uint8_t>("u8 value");
    case GgufType::i8: return c.read<std::int8_t>("i8 value");
    case GgufType::u16: return c.read<std::uint16_t>("u16 value");
    case GgufType::i16: return c.read<std::int16_t>("i16 value");
    case GgufType::u32: return c.read<std::uint32_t>("u32 value");
    case GgufType::i32: return c.read<std::int32_t>("i32 value");
    case GgufType::f32: return c.read<float>("f32 value");
    case GgufType::boolean: {
      const auto b = c.read<std::uint8_t>("bool value");
      if (b > 1) sparq::detail::fail(c.what(), ": metadata '", key, "' bool value ", int(b), ", expected 0 or 1");
      return b == 1;
    }
    case GgufType::string: return gguf_read_string(c, gguf_max_string, "string value");
    case GgufType::array: return gguf_read_array(c, key, depth + 1);
    case GgufType::u64: return c.read<std::uint64_t>("u64 value");
    case GgufType::i64: return c.read<std::int64_t>("i64 value");
    case GgufType::f64: return c.read<double>("f64 value");
  }
  sparq::detail::fail(c.what(), ": metadata '", key, "': bad type");
}

inline GgufArray gguf_read_array(ByteCursor& c, const std::string& key, std::size_t depth) {
  if (depth > gguf_max_depth) {
    sparq::detail::fail(c.what(), ": metadata '", key, "' nests arrays ", depth, " deep, expected at most ",
                        gguf_max_depth);
  }
  GgufArray a;
  a.elem_type = gguf_read_type(c, "array element type", key);
  const auto n = c.read<std::uint64_t>("array length");
  // Each element takes at least this many bytes in the file: bounds n by the bytes left.
  const std::size_t min_elem = a.elem_type == GgufType::string  ? 8
                               : a.elem_type == GgufType::array ? 12
                                                                : gguf_scalar_size(a.elem_type);
  if (n > c.remaining() / min_elem) {
    sparq::detail::fail(c.what(), ": metadata '", key, "' array of ", n, " ", gguf_type_name(a.elem_type),
                        " needs at least ", min_elem, " bytes each, but only ", c.remaining(), " bytes are left");
  }
  const auto count = static_cast<std::size_t>(n);
  if (a.elem_type == GgufType::string) {
    a.strings.reserve(count);
    for (std::size_t i = 0; i < count; ++i) a.strings.push_back(gguf_read_string(c, gguf_max_string, "array string"));
  } else if (a.elem_type == GgufType::array) {
    a.arrays.reserve(count);
    for (std::size_t i = 0; i < count; ++i) a.arrays.push_back(gguf_read_array(c, key, depth + 1));
  } else {
    const char* p = c.take(count * min_elem, "array data");
    a.raw.assign(p, p + count * min_elem);
    if (a.elem_type == GgufType::boolean) {
      for (std::size_t i = 0; i < count; ++i) {
        if (static_cast<unsigned char>(a.raw[i]) > 1) {
          sparq::detail::fail(c.what(), ": metadata '", key, "' bool element ", i, " = ",
                              int(static_cast<unsigned char>(a.raw[i])), ", expected 0 or 1");
        }
      }
    }
  }
  return a;
}

}  // namespace detail

/// Parses and validates a GGUF file held in `bytes` (ownership taken). `what` names it in errors.
[[nodiscard]] inline GgufFile parse_gguf(FileBytes bytes, std::string what = "GGUF file") {
  GgufFile f;
  f.what = what;
  ByteCursor c(bytes.data(), bytes.size(), what);
  const auto magic = c.read<std::uint32_t>("magic");
  SPARQ_CHECK(magic == gguf_magic, what, ": bad magic 0x", std::hex, magic, std::dec,
              ", expected \"GGUF\" (0x46554747)");
  f.version = c.read<std::uint32_t>("version");
  SPARQ_CHECK(f.version == 2 || f.version == 3, what, ": GGUF version ", f.version,
              " is not supported, expected 3 (or 2, same layout); a big-endian file reads as 50331648");
  const auto n_tensors = c.read<std::uint64_t>("tensor_count");
  const auto n_kv = c.read<std::uint64_t>("kv_count");
  // Minimal encoded sizes: a kv is >= 8 (key length) + 4 (type) + 1; a tensor info >= 8+4+8+4+8.
  SPARQ_CHECK(n_kv <= c.remaining() / 13, what, ": kv_count = ", n_kv, " cannot fit in the ", c.remaining(),
              " bytes left");
  SPARQ_CHECK(n_tensors <= c.remaining() / 32, what, ": tensor_count = ", n_tensors, " cannot fit in the ",
              c.remaining(), " bytes left");

  std::unordered_map<std::string, std::size_t> seen;
  f.metadata.reserve(static_cast<std::size_t>(n_kv));
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = detail::gguf_read_string(c, 1u << 16, "metadata key");
    SPARQ_CHECK(!key.empty(), what, ": metadata key ", i, " is empty");
    const GgufType t = detail::gguf_read_type(c, "metadata value type", key);
    GgufValue v = detail::gguf_read_value(c, t, key, 0);
    if (!seen.emplace(key, i).second) sparq::detail::fail(what, ": duplicate metadata key '", key, "'");
    f.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const auto* a = f.find("general.alignment")) {
    const auto* u = std::get_if<std::uint32_t>(a);
    SPARQ_CHECK(u != nullptr, what, ": general.alignment has type ", gguf_type_name(gguf_type_of(*a)),
                ", expected u32");
    SPARQ_CHECK(*u != 0 && (*u & (*u - 1)) == 0, what, ": general.alignment = ", *u,
                ", expected a power of two");
    f.alignment = *u;
  }

  seen.clear();
  f.tensors.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = detail::gguf_read_string(c, gguf_max_name, "tensor name");
    SPARQ_CHECK(!t.name.empty(), what, ": tensor ", i, " has an empty name");
    const auto nd = c.read<std::uint32_t>("n_dims");
    SPARQ_CHECK(nd >= 1 && nd <= gguf_max_dims, what, ": tensor '", t.name, "' has n_dims = ", nd,
                ", expected 1..", gguf_max_dims);
    std::uint64_t n = 1;
    for (std::uint32_t d = 0; d < nd; ++d) {
      const auto dim = c.read<std::uint64_t>("tensor dim");
      SPARQ_CHECK(dim > 0 && dim < (1ull << 62), what, ": tensor '", t.name, "' dim ", d, " = ", dim,
                  ", expected 1..2^62-1");
      t.dims.push_back(dim);
      n = detail::checked_mul(n, dim, what + ": tensor '" + t.name + "' element count");
    }
    SPARQ_CHECK(n < (1ull << 62), what, ": tensor '", t.name, "' has ", n, " elements, expected < 2^62");
    t.n_elements = n;
    const auto type = c.read<std::uint32_t>("tensor type");
    SPARQ_CHECK(ggml_type_supported(type), what, ": tensor '", t.name, "' has ggml type ", type,
                ", expected one of ", ggml_type_list());
    t.type = static_cast<GgmlType>(type);
    const std::uint64_t be = ggml_block_elems(t.type);
    SPARQ_CHECK(t.dims[0] % be == 0, what, ": tensor '", t.name, "' of type ", ggml_type_name(t.type),
                " has row length ", t.dims[0], ", expected a multiple of ", be);
    // Block sizes from the type table (ggml_blocks.hpp). n < 2^62 and no type takes more than 4
    // bytes an element, so the 64-bit product cannot overflow.
    t.n_bytes = n / be * ggml_block_bytes(t.type);
    t.offset = c.read<std::uint64_t>("tensor offset");
    SPARQ_CHECK(t.offset % f.alignment == 0, what, ": tensor '", t.name, "' offset ", t.offset,
                " is not a multiple of the alignment ", f.alignment);
    if (!seen.emplace(t.name, i).second) sparq::detail::fail(what, ": duplicate tensor name '", t.name, "'");
    f.tensors.push_back(std::move(t));
  }
  f.data_offset = detail::align_up(c.offset(), f.alignment, what + ": data section offset");
  const std::uint64_t data_size = f.data_offset <= bytes.size() ? bytes.size() - f.data_offset : 0;
  SPARQ_CHECK(f.tensors.empty() || f.data_offset <= bytes.size(), what, ": truncated: the data section starts at ",
              f.data_offset, " but the file has ", bytes.size(), " bytes");
  // Padding before the data section must be zero (as written by ggml); a non-zero byte means the
  // tensor infos were misread.
  for (std::size_t p = c.offset(); p < std::min<std::uint64_t>(f.data_offset, bytes.size()); ++p) {
    SPARQ_CHECK(bytes[p] == 0, what, ": non-zero padding byte at offset ", p, " before the data section");
  }
  std::vector<const GgufTensorInfo*> order;
  order.reserve(f.tensors.size());
  for (const auto& t : f.tensors) {
    const auto end = detail::checked_add(t.offset, t.n_bytes, what + ": tensor '" + t.name + "' end");
    SPARQ_CHECK(end <= data_size, what, ": tensor '", t.name, "' data [", t.offset, ", ", end,
                ") lies outside the data section of ", data_size, " bytes");
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < order.size(); ++i) {
    const auto* a = order[i - 1];
    const auto* b = order[i];
    SPARQ_CHECK(b->offset >= a->offset + a->n_bytes, what, ": tensor '", b->name, "' at data offset ", b->offset,
                " overlaps tensor '", a->name, "' [", a->offset, ", ", a->offset + a->n_bytes, ")");
  }
  f.bytes = std::move(bytes);
  return f;
}

/// Parses a GGUF file held in `bytes` (ownership taken).
[[nodiscard]] inline GgufFile parse_gguf(std::vector<char> bytes, std::string what = "GGUF file") {
  return parse_gguf(FileBytes(std::move(bytes)), std::move(what));
}

/// Parses a GGUF file from memory (the bytes are copied).
[[nodiscard]] inline GgufFile parse_gguf(const char* data, std::size_t size, std::string what = "GGUF file") {
  return parse_gguf(std::vector<char>(data, data + size), std::move(what));
}

/// Reads and validates a GGUF file, memory-mapped (core/file.hpp FileBytes): the tensors are read
/// from the mapping, never copied as a whole.
[[nodiscard]] inline GgufFile read_gguf(const std::string& path) {
  return parse_gguf(FileBytes::map(path), "GGUF file '" + path + "'");
}

}  // namespace sparq::io
