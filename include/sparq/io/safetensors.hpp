// SafetensorsFile / SafetensorsWriter: the safetensors format (8-byte header length, JSON, data).
//
// Layout: uint64 little-endian N; N bytes of UTF-8 JSON
//   {"<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string value>", ...}}   (metadata optional)
// padded with trailing spaces; then the data buffer. Offsets are relative to the start of the data
// buffer (byte 8 + N); tensors are row-major (C order), little-endian.
// Reader checks (each failure throws sparq::error naming the tensor/field): N <= file size - 8 and
// N <= 100 MB; the JSON is an object nested at most 3 deep with no duplicate keys; each entry has
// exactly dtype/shape/data_offsets; dtype is known; shape entries are unsigned integers whose
// product times the dtype size does not overflow and equals end - begin; begin <= end <= data
// size; sorted by offset, tensors tile the data buffer exactly (no gap, no overlap, nothing left
// over), as the reference implementation requires; metadata values are strings.
// Writer: tensors sorted by name, laid out contiguously in that order, header padded with spaces
// so the data starts at a multiple of 8; temporary file + rename.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/core/half.hpp"
#include "sparq/io/byte_cursor.hpp"
#include "sparq/io/llama2c.hpp"

namespace sparq::io {

/// safetensors element types.
enum class SafeDtype : std::uint8_t { BOOL, U8, I8, F8_E4M3, F8_E5M2, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64 };

inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

[[nodiscard]] constexpr std::size_t safe_dtype_size(SafeDtype t) noexcept {
  switch (t) {
    case SafeDtype::BOOL: case SafeDtype::U8: case SafeDtype::I8: case SafeDtype::F8_E4M3: case SafeDtype::F8_E5M2:
      return 1;
    case SafeDtype::U16: case SafeDtype::I16: case SafeDtype::F16: case SafeDtype::BF16: return 2;
    case SafeDtype::U32: case SafeDtype::I32: case SafeDtype::F32: return 4;
    case SafeDtype::U64: case SafeDtype::I64: case SafeDtype::F64: return 8;
  }
  return 0;
}

[[nodiscard]] constexpr const char* safe_dtype_name(SafeDtype t) noexcept {
  constexpr const char* names[] = {"BOOL", "U8",  "I8",  "F8_E4M3", "F8_E5M2", "U16", "I16", "F16",
                                   "BF16", "U32", "I32", "F32",     "U64",     "I64", "F64"};
  return names[static_cast<int>(t)];
}

[[nodiscard]] inline bool safe_dtype_from_name(std::string_view s, SafeDtype& out) noexcept {
  for (int i = 0; i <= static_cast<int>(SafeDtype::F64); ++i) {
    if (s == safe_dtype_name(static_cast<SafeDtype>(i))) {
      out = static_cast<SafeDtype>(i);
      return true;
    }
  }
  return false;
}

struct SafetensorsTensor {
  std::string name;
  SafeDtype dtype = SafeDtype::F32;
  std::vector<std::uint64_t> shape;  ///< row-major, outermost first
  std::uint64_t begin = 0, end = 0;  ///< relative to the data buffer
  [[nodiscard]] std::uint64_t n_elements() const noexcept {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;  // validated not to overflow
    return n;
  }
};

/// A parsed, validated safetensors file; owns the bytes.
class SafetensorsFile {
 public:
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsTensor> tensors;  ///< sorted by data offset
  std::uint64_t data_offset = 0;           ///< 8 + N
  FileBytes bytes;  ///< the whole file (memory-mapped by read_safetensors)
  std::string what = "safetensors";

  [[nodiscard]] const SafetensorsTensor* find(std::string_view name) const noexcept {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  [[nodiscard]] const SafetensorsTensor& tensor(std::string_view name) const {
    const auto* t = find(name);
    if (t == nullptr) sparq::detail::fail(what, ": tensor '", name, "' not found");
    return *t;
  }
  [[nodiscard]] const char* data(const SafetensorsTensor& t) const noexcept {
    return bytes.data() + data_offset + t.begin;
  }
  /// Elements of an F32/F16/BF16 tensor as floats (F32 bit for bit).
  [[nodiscard]] std::vector<float> floats(const SafetensorsTensor& t) const {
    const std::size_t n = static_cast<std::size_t>(t.n_elements());
    std::vector<float> out(n);
    const char* p = data(t);
    switch (t.dtype) {
      case SafeDtype::F32:
        if (n) std::memcpy(out.data(), p, n * 4);
        break;
      case SafeDtype::F16:
      case SafeDtype::BF16:
        for (std::size_t i = 0; i < n; ++i) {
          std::uint16_t h;
          std::memcpy(&h, p + 2 * i, 2);
          out[i] = t.dtype == SafeDtype::F16 ? fp16_to_float(h) : bf16_to_float(h);
        }
        break;
      default:
        sparq::detail::fail(what, ": tensor '", t.name, "' has dtype ", safe_dtype_name(t.dtype),
                            ", expected F32, F16 or BF16 for a float read");
    }
    return out;
  }
};

namespace detail {

/// Maximum nesting depth of '{'/'[' outside strings; throws on unbalanced or unterminated input.
inline std::size_t json_depth(std::string_view s, const std::string& what) {
  std::size_t depth = 0, max_depth = 0;
  bool in_str = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (in_str) {
      if (ch == '\\') ++i;
      else if (ch == '"') in_str = false;
    } else if (ch == '"') {
      in_str = true;
    } else if (ch == '{' || ch == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > 3) sparq::detail::fail(what, ": JSON header nests deeper than 3 levels at byte ", i);
    } else if (ch == '}' || ch == ']') {
      if (depth == 0) sparq::detail::fail(what, ": unbalanced JSON header at byte ", i);
      --depth;
    }
  }
  return max_depth;
}

/// Parses JSON text without exceptions (a discarded value on a syntax error). nlohmann keeps the
/// last of repeated keys silently; `duplicate` receives the first key repeated within one object
/// (empty if none), so callers can reject such input.
inline nlohmann::json parse_json_unique_keys(std::string_view text, std::string& duplicate) {
  std::vector<std::set<std::string>> keys;
  duplicate.clear();
  auto cb = [&](int /*depth*/, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) keys.emplace_back();
    else if (ev == E::object_end && !keys.empty()) keys.pop_back();
    else if (ev == E::key && !keys.empty() && parsed.is_string()) {
      if (!keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  return nlohmann::json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
}

inline std::uint64_t json_uint(const nlohmann::json& v, const std::string& what, const std::string& field) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    sparq::detail::fail(what, ": ", field, " = ", v.dump(), ", expected a non-negative integer");
  }
  return v.get<std::uint64_t>();
}

}  // namespace detail

namespace detail {

/// Parses and validates the JSON header `header` of a safetensors file whose data buffer has
/// `data_size` bytes, filling f.tensors (sorted by offset) and f.metadata. Every check of the file
/// comment that does not need the data bytes themselves is done here.
inline void parse_safetensors_header(SafetensorsFile& f, std::string_view header, std::uint64_t data_size) {
  const std::string& what = f.what;
  const auto n = header.size();
  SPARQ_CHECK(n >= 2, what, ": header length ", n, " is too short for a JSON object");
  SPARQ_CHECK(header[0] == '{', what, ": header must start with '{', found byte ",
              int(static_cast<unsigned char>(header[0])));
  (void)detail::json_depth(header, what);
  std::string dup;
  nlohmann::json j = detail::parse_json_unique_keys(header, dup);
  SPARQ_CHECK(!j.is_discarded(), what, ": header is not valid JSON");
  SPARQ_CHECK(dup.empty(), what, ": duplicate JSON key '", dup, "' in the header");
  SPARQ_CHECK(j.is_object(), what, ": header is not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      SPARQ_CHECK(v.is_object(), what, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        SPARQ_CHECK(m.value().is_string(), what, ": __metadata__ value of '", m.key(), "' is not a string");
        f.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    SPARQ_CHECK(!name.empty() && name.size() <= (1u << 16), what, ": tensor name length ", name.size(),
                ", expected 1..65536");
    SPARQ_CHECK(v.is_object(), what, ": entry '", name, "' is not an object");
    SPARQ_CHECK(v.size() == 3 && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), what,
                ": tensor '", name, "' must have exactly the keys dtype, shape, data_offsets");
    SafetensorsTensor t;
    t.name = name;
    const auto& dt = v["dtype"];
    SPARQ_CHECK(dt.is_string() && safe_dtype_from_name(dt.get<std::string>(), t.dtype), what, ": tensor '", name,
                "' has dtype ", dt.dump(), ", expected one of BOOL U8 I8 F8_E4M3 F8_E5M2 U16 I16 F16 BF16 U32 I32 "
                "F32 U64 I64 F64");
    const auto& sh = v["shape"];
    SPARQ_CHECK(sh.is_array() && sh.size() <= 16, what, ": tensor '", name, "' shape must be an array of at most 16 dims");
    std::uint64_t count = 1;
    for (const auto& d : sh) {
      t.shape.push_back(detail::json_uint(d, what, "tensor '" + name + "' shape entry"));
      count = detail::checked_mul(count, t.shape.back(), what + ": tensor '" + name + "' element count");
    }
    const std::uint64_t nbytes =
        detail::checked_mul(count, safe_dtype_size(t.dtype), what + ": tensor '" + name + "' byte size");
    const auto& off = v["data_offsets"];
    SPARQ_CHECK(off.is_array() && off.size() == 2, what, ": tensor '", name, "' data_offsets must be [begin, end]");
    t.begin = detail::json_uint(off[0], what, "tensor '" + name + "' data_offsets[0]");
    t.end = detail::json_uint(off[1], what, "tensor '" + name + "' data_offsets[1]");
    SPARQ_CHECK(t.begin <= t.end && t.end <= data_size, what, ": tensor '", name, "' data_offsets [", t.begin, ", ",
                t.end, "] do not fit the data buffer of ", data_size, " bytes");
    SPARQ_CHECK(t.end - t.begin == nbytes, what, ": tensor '", name, "' spans ", t.end - t.begin,
                " bytes, but its shape and dtype ", safe_dtype_name(t.dtype), " need ", nbytes);
    f.tensors.push_back(std::move(t));
  }
  std::sort(f.tensors.begin(), f.tensors.end(),
            [](const auto& a, const auto& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t pos = 0;
  for (const auto& t : f.tensors) {
    SPARQ_CHECK(t.begin == pos, what, ": tensor '", t.name, "' starts at data offset ", t.begin, ", expected ", pos,
                t.begin < pos ? " (overlap)" : " (gap)");
    pos = t.end;
  }
  SPARQ_CHECK(pos == data_size, what, ": tensors cover ", pos, " bytes of a ", data_size, "-byte data buffer");
}

}  // namespace detail

/// Parses and validates a safetensors file held in `bytes` (ownership taken).
[[nodiscard]] inline SafetensorsFile parse_safetensors(FileBytes bytes, std::string what = "safetensors file") {
  SafetensorsFile f;
  f.what = what;
  ByteCursor c(bytes.data(), bytes.size(), what);
  const auto n = c.read<std::uint64_t>("header length");
  SPARQ_CHECK(n <= c.remaining(), what, ": header length ", n, " exceeds the ", c.remaining(), " bytes after it");
  SPARQ_CHECK(n <= safetensors_max_header, what, ": header length ", n, " exceeds the limit of ",
              safetensors_max_header);
  SPARQ_CHECK(n >= 2, what, ": header length ", n, " is too short for a JSON object");
  const std::string_view header(c.take(n, "header"), static_cast<std::size_t>(n));
  f.data_offset = 8 + n;
  detail::parse_safetensors_header(f, header, c.remaining());
  f.bytes = std::move(bytes);
  return f;
}

[[nodiscard]] inline SafetensorsFile parse_safetensors(std::vector<char> bytes, std::string what = "safetensors file") {
  return parse_safetensors(FileBytes(std::move(bytes)), std::move(what));
}

[[nodiscard]] inline SafetensorsFile parse_safetensors(const char* data, std::size_t size,
                                                       std::string what = "safetensors file") {
  return parse_safetensors(std::vector<char>(data, data + size), std::move(what));
}

/// Reads and validates a safetensors file, memory-mapped (core/file.hpp FileBytes).
[[nodiscard]] inline SafetensorsFile read_safetensors(const std::string& path) {
  return parse_safetensors(FileBytes::map(path), "safetensors file '" + path + "'");
}

/// Reads only the header of a safetensors file (8 + N bytes, not the data) and validates it as
/// parse_safetensors does, against the file's real size: names, dtypes, shapes and offsets, the
/// tensors tiling the data buffer. The result has `tensors`, `metadata` and `data_offset` but no
/// `bytes` (do not call data() or floats() on it). Lets a caller check shapes, and bound what it
/// will allocate by the bytes actually present, before reading any tensor data.
[[nodiscard]] inline SafetensorsFile read_safetensors_header(const std::string& path) {
  SafetensorsFile f;
  f.what = "safetensors file '" + path + "'";
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  SPARQ_CHECK(in.good(), "cannot open '", path, "' for reading");
  const auto size_off = static_cast<std::streamoff>(in.tellg());
  SPARQ_CHECK(size_off >= 0, "cannot determine the size of '", path, "'");
  const auto size = static_cast<std::uint64_t>(size_off);
  SPARQ_CHECK(size >= 8, f.what, ": ", size, " bytes is too short for the 8-byte header length");
  in.seekg(0);
  char len[8];
  in.read(len, 8);
  SPARQ_CHECK(in.good(), "short read from '", path, "'");
  ByteCursor c(len, 8, f.what);
  const auto n = c.read<std::uint64_t>("header length");
  SPARQ_CHECK(n <= size - 8, f.what, ": header length ", n, " exceeds the ", size - 8, " bytes after it");
  SPARQ_CHECK(n <= safetensors_max_header, f.what, ": header length ", n, " exceeds the limit of ",
              safetensors_max_header);
  SPARQ_CHECK(n >= 2, f.what, ": header length ", n, " is too short for a JSON object");
  std::string header(static_cast<std::size_t>(n), '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  SPARQ_CHECK(in.good(), "short read from '", path, "'");
  f.data_offset = 8 + n;
  detail::parse_safetensors_header(f, header, size - 8 - n);
  return f;
}

/// Builds a safetensors file. Names are unique; output is sorted by name.
class SafetensorsWriter {
 public:
  /// Adds a float tensor stored as F32, F16 or BF16 (round to nearest even).
  void add(const std::string& name, SafeDtype dtype, const std::vector<std::uint64_t>& shape, const float* x) {
    const auto n = count(name, shape);
    std::vector<char> b(n * safe_dtype_size(dtype));
    switch (dtype) {
      case SafeDtype::F32:
        if (n) std::memcpy(b.data(), x, n * 4);
        break;
      case SafeDtype::F16:
      case SafeDtype::BF16:
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint16_t h = dtype == SafeDtype::F16 ? float_to_fp16(x[i]) : float_to_bf16(x[i]);
          std::memcpy(b.data() + 2 * i, &h, 2);
        }
        break;
      default:
        sparq::detail::fail("SafetensorsWriter: tensor '", name, "': float data cannot be stored as ",
                            safe_dtype_name(dtype));
    }
    put(name, dtype, shape, std::move(b));
  }
  /// Adds a tensor from its raw little-endian bytes.
  void add_bytes(const std::string& name, SafeDtype dtype, const std::vector<std::uint64_t>& shape,
                 std::vector<char> data) {
    const auto n = count(name, shape);
    SPARQ_CHECK(data.size() == n * safe_dtype_size(dtype), "SafetensorsWriter: tensor '", name, "' has ",
                data.size(), " bytes, shape and dtype ", safe_dtype_name(dtype), " need ", n * safe_dtype_size(dtype));
    put(name, dtype, shape, std::move(data));
  }
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  [[nodiscard]] std::vector<char> serialize() const {
    nlohmann::json j = nlohmann::json::object();
    std::uint64_t pos = 0;
    for (const auto& [name, t] : tensors_) {
      nlohmann::json e;
      e["dtype"] = safe_dtype_name(t.dtype);
      e["shape"] = t.shape;
      e["data_offsets"] = {pos, pos + t.data.size()};
      j[name] = std::move(e);
      pos += t.data.size();
    }
    if (!metadata_.empty()) j["__metadata__"] = metadata_;
    std::string h;
    try {
      h = j.dump();
    } catch (const nlohmann::json::exception& e) {
      sparq::detail::fail("SafetensorsWriter: cannot encode the header (names must be UTF-8): ", e.what());
    }
    while ((8 + h.size()) % 8 != 0) h.push_back(' ');
    ByteSink s;
    s.put(static_cast<std::uint64_t>(h.size()));
    s.put_bytes(h.data(), h.size());
    for (const auto& kv : tensors_) s.put_bytes(kv.second.data.data(), kv.second.data.size());
    return s.release();
  }
  void write(const std::string& path) const {
    const auto b = serialize();
    detail::write_file_atomic(path, b.data(), b.size());
  }

 private:
  struct Tensor {
    SafeDtype dtype;
    std::vector<std::uint64_t> shape;
    std::vector<char> data;
  };
  static std::size_t count(const std::string& name, const std::vector<std::uint64_t>& shape) {
    SPARQ_CHECK(!name.empty() && name != "__metadata__", "SafetensorsWriter: invalid tensor name '", name, "'");
    std::uint64_t n = 1;
    for (auto d : shape) n = detail::checked_mul(n, d, "SafetensorsWriter: tensor '" + name + "' size");
    return static_cast<std::size_t>(n);
  }
  void put(const std::string& name, SafeDtype dtype, const std::vector<std::uint64_t>& shape, std::vector<char> d) {
    SPARQ_CHECK(tensors_.find(name) == tensors_.end(), "SafetensorsWriter: duplicate tensor name '", name, "'");
    tensors_.emplace(name, Tensor{dtype, shape, std::move(d)});
  }
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace sparq::io
