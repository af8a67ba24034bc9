// Container: sparq's own checksummed file ("SPRQ") for packed tensors of any sparq format.
//
// A tensor is a name, a format tag (free text such as "f32", "int4_g32_sym", "nm24_f32"), dims,
// and named byte sections ("codes", "scales", "zeros", "indices", ...). The container does not
// interpret sections; the code that owns a format packs and unpacks them. A metadata map holds
// string -> string | int64 | float64. Byte layout (little-endian; str = u32 length + bytes):
//   header, 32 bytes: "SPRQ", u32 version (1 or 2), u64 file_size, u32 n_tensors, u32 flags (0),
//                     u32 reserved (0), u32 CRC-32 of bytes 0..27
//   metadata record: u64 payload length M, M payload bytes, u32 CRC-32 of the payload;
//                     payload = u32 n_entries, then per entry (keys in increasing byte
//                     order): str key, u8 kind (0 string, 1 int64, 2 float64), value
//                     (str | i64 | f64)
//   n_tensors tensor records: u64 payload length T, T payload bytes, u32 CRC-32 of the payload;
//                     payload = str name, str format, u32 n_dims, u64 dims[n_dims],
//                     u32 n_sections, per section: str name, u64 byte length B, B bytes
//                     (version 2: str name, u8 encoding (0 raw, 1 rANS), u64 B, B bytes; an
//                     rANS section's B bytes are one io/rans.hpp stream of the section bytes)
//   trailer, 8 bytes: u32 CRC-32 of every byte before it, "QRPS"
// CRC-32 is the IEEE 802.3 / zlib polynomial (reflected 0xEDB88320, init and final xor
// 0xFFFFFFFF; crc32("123456789") = 0xCBF43926). The reader rejects a bad magic, version, flag,
// size, checksum, count, length, duplicate name or trailing byte with sparq::error; every length is
// checked against the bytes left before it is used. See docs/formats.md.
//
// ENTROPY CODING (version 2). A section whose `encoding` is not raw is written as an rANS stream
// with its own frequency table (io/entropy.hpp) when that is smaller than its bytes, else raw.
// The writer writes version 1 (byte-identical to before) when every section is stored raw, and
// version 2 when at least one is coded, so old files and old writers' output read unchanged.
// The reader decodes every coded section (decoded size bounded by entropy_max_decoded of its
// stored size, corrupted streams rejected with sparq::error) and reports the stored form in
// ContainerSection::encoding / stored_bytes.
#pragma once

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sparq/core/error.hpp"
#include "sparq/core/file.hpp"
#include "sparq/io/byte_cursor.hpp"
#include "sparq/io/entropy.hpp"
#include "sparq/io/llama2c.hpp"

namespace sparq::io {

inline constexpr std::uint32_t container_version = 1;         ///< files with every section raw
inline constexpr std::uint32_t container_version_coded = 2;   ///< files with entropy-coded sections
inline constexpr std::size_t container_max_dims = 8;
inline constexpr std::size_t container_max_sections = 64;
inline constexpr std::uint32_t container_max_name = 4096;

namespace detail {
inline constexpr std::array<std::uint32_t, 256> crc32_table = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
    t[i] = c;
  }
  return t;
}();
}  // namespace detail

/// CRC-32 (IEEE / zlib). Pass the previous result as `crc` to continue over more bytes.
[[nodiscard]] inline std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = detail::crc32_table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

using ContainerValue = std::variant<std::string, std::int64_t, double>;

/// One named byte section of a tensor.
struct ContainerSection {
  std::string name;
  std::vector<std::uint8_t> bytes;  ///< always the decoded bytes
  /// Writing: how to store the bytes (raw unless set; the writer still stores raw when coding
  /// does not pay). After parse_container: how they were stored (raw, rans8, rans4 or rans2).
  SectionEncoding encoding = SectionEncoding::raw;
  /// After parse_container: bytes the section occupied in the file (0 for sections built in memory).
  std::uint64_t stored_bytes = 0;
};

struct ContainerTensor {
  std::string name;
  std::string format;                ///< e.g. "f32", "int4_g32_sym", "nm24_f32"
  std::vector<std::uint64_t> dims;   ///< logical shape, outermost first
  std::vector<ContainerSection> sections;

  /// Adds a section holding n trivially copyable values (bytes copied as they are in memory).
  template <class T>
  void add_section(const std::string& section, const T* data, std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    SPARQ_CHECK(find_section(section) == nullptr, "ContainerTensor '", name, "': duplicate section '", section, "'");
    ContainerSection s{section, std::vector<std::uint8_t>(n * sizeof(T))};
    if (n) std::memcpy(s.bytes.data(), data, n * sizeof(T));
    sections.push_back(std::move(s));
  }
  template <class T>
  void add_section(const std::string& section, const std::vector<T>& v) {
    add_section(section, v.data(), v.size());
  }
  [[nodiscard]] const ContainerSection* find_section(std::string_view section) const noexcept {
    for (const auto& s : sections)
      if (s.name == section) return &s;
    return nullptr;
  }
  /// Asks the writer to entropy-code one section (see io/entropy.hpp for the encodings).
  void set_encoding(std::string_view section, SectionEncoding e) {
    for (auto& s : sections)
      if (s.name == section) {
        s.encoding = e;
        return;
      }
    sparq::detail::fail("ContainerTensor '", name, "': no section '", section, "'");
  }
  /// A section's bytes reinterpreted as T values (size checked to be a multiple of sizeof(T)).
  template <class T>
  [[nodiscard]] std::vector<T> section_as(std::string_view section) const {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* s = find_section(section);
    if (s == nullptr) sparq::detail::fail("ContainerTensor '", name, "': no section '", section, "'");
    SPARQ_CHECK(s->bytes.size() % sizeof(T) == 0, "ContainerTensor '", name, "': section '", section, "' has ",
                s->bytes.size(), " bytes, not a multiple of ", sizeof(T));
    std::vector<T> v(s->bytes.size() / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), s->bytes.data(), s->bytes.size());
    return v;
  }
  /// Product of dims (1 for no dims); throws on overflow.
  [[nodiscard]] std::uint64_t n_elements() const {
    std::uint64_t n = 1;
    for (auto d : dims) n = detail::checked_mul(n, d, "ContainerTensor '" + name + "' element count");
    return n;
  }
};

/// A set of tensors and metadata, read or written as one "SPRQ" file.
struct Container {
  std::map<std::string, ContainerValue> metadata;
  std::vector<ContainerTensor> tensors;

  [[nodiscard]] const ContainerTensor* find(std::string_view name) const noexcept {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  [[nodiscard]] const ContainerTensor& tensor(std::string_view name) const {
    const auto* t = find(name);
    if (t == nullptr) sparq::detail::fail("Container: no tensor '", name, "'");
    return *t;
  }
  /// Adds a tensor (names must be unique).
  ContainerTensor& add(ContainerTensor t) {
    SPARQ_CHECK(find(t.name) == nullptr, "Container: duplicate tensor '", t.name, "'");
    tensors.push_back(std::move(t));
    return tensors.back();
  }
  /// Asks the writer to entropy-code every section of every tensor with `e`.
  void set_encoding(SectionEncoding e) {
    for (auto& t : tensors)
      for (auto& s : t.sections) s.encoding = e;
  }
  /// Adds a plain float matrix as format "f32" with one section "data".
  ContainerTensor& add_f32(const std::string& name, std::vector<std::uint64_t> dims, const float* data) {
    ContainerTensor t{name, "f32", std::move(dims), {}};
    t.add_section("data", data, static_cast<std::size_t>(t.n_elements()));
    return add(std::move(t));
  }
};

namespace detail {

inline void container_put_str(ByteSink& s, const std::string& v, std::string_view what) {
  SPARQ_CHECK(v.size() <= 0xffffffffu, "container writer: ", what, " is too long");
  s.put(static_cast<std::uint32_t>(v.size()));
  s.put_bytes(v.data(), v.size());
}
inline std::string container_str(ByteCursor& c, std::uint32_t max_len, std::string_view field) {
  const auto n = c.read<std::uint32_t>(field);
  return c.read_bytes_as_string(n, max_len, field);
}
inline void container_put_record(ByteSink& s, const std::vector<char>& payload) {
  s.put(static_cast<std::uint64_t>(payload.size()));
  s.put_bytes(payload.data(), payload.size());
  s.put(crc32(payload.data(), payload.size()));
}
/// Reads one record (length, payload, CRC) and returns a cursor over its payload.
inline ByteCursor container_record(ByteCursor& c, const std::string& what) {
  const auto len = c.read<std::uint64_t>(std::string(what) + " length");
  const char* p = c.take(len, what);
  const auto crc = c.read<std::uint32_t>(std::string(what) + " checksum");
  const auto actual = crc32(p, static_cast<std::size_t>(len));
  if (crc != actual) {
    sparq::detail::fail(c.what(), ": ", what, " checksum mismatch (stored 0x", std::hex, crc, ", computed 0x", actual,
                        std::dec, ")");
  }
  return ByteCursor(p, static_cast<std::size_t>(len), c.what() + " " + what);
}

}  // namespace detail

namespace detail {

/// The metadata record's payload.
[[nodiscard]] inline std::vector<char> container_metadata_payload(const std::map<std::string, ContainerValue>& md) {
  ByteSink m;
  m.put(static_cast<std::uint32_t>(md.size()));
  for (const auto& [k, v] : md) {
    SPARQ_CHECK(!k.empty() && k.size() <= container_max_name, "container writer: metadata key length ", k.size(),
                ", expected 1..", container_max_name);
    container_put_str(m, k, "metadata key");
    m.put(static_cast<std::uint8_t>(v.index()));
    if (const auto* str = std::get_if<std::string>(&v)) container_put_str(m, *str, "metadata value");
    else if (const auto* i = std::get_if<std::int64_t>(&v)) m.put(*i);
    else m.put(std::get<double>(v));
  }
  return m.release();
}

/// The sections of `t` as the writer stores them (entropy-coded where asked for and smaller).
[[nodiscard]] inline std::vector<EntropyEncoded> container_encode(const ContainerTensor& t) {
  std::vector<EntropyEncoded> coded;
  for (const auto& sec : t.sections) coded.push_back(entropy_encode(sec.bytes.data(), sec.bytes.size(), sec.encoding));
  return coded;
}
[[nodiscard]] inline bool container_any_coded(const std::vector<EntropyEncoded>& coded) noexcept {
  for (const auto& e : coded)
    if (e.encoding != SectionEncoding::raw) return true;
  return false;
}

/// A tensor record's payload; `with_encoding`: the version-2 layout (a u8 encoding per section).
/// Checks the tensor's name, format, dims and sections first.
[[nodiscard]] inline std::vector<char> container_tensor_payload(const ContainerTensor& t,
                                                               const std::vector<EntropyEncoded>& coded,
                                                               bool with_encoding) {
  SPARQ_CHECK(!t.name.empty() && t.name.size() <= container_max_name, "container writer: tensor name length ",
              t.name.size(), ", expected 1..", container_max_name);
  SPARQ_CHECK(t.format.size() <= container_max_name, "container writer: tensor '", t.name, "' format too long");
  SPARQ_CHECK(t.dims.size() <= container_max_dims, "container writer: tensor '", t.name, "' has ", t.dims.size(),
              " dims, expected at most ", container_max_dims);
  SPARQ_CHECK(t.sections.size() <= container_max_sections, "container writer: tensor '", t.name, "' has ",
              t.sections.size(), " sections, expected at most ", container_max_sections);
  (void)t.n_elements();
  ByteSink r;
  container_put_str(r, t.name, "tensor name");
  container_put_str(r, t.format, "tensor format");
  r.put(static_cast<std::uint32_t>(t.dims.size()));
  for (auto d : t.dims) r.put(d);
  r.put(static_cast<std::uint32_t>(t.sections.size()));
  std::set<std::string_view> snames;
  for (std::size_t k = 0; k < t.sections.size(); ++k) {
    const auto& sec = t.sections[k];
    SPARQ_CHECK(!sec.name.empty() && sec.name.size() <= container_max_name && snames.insert(sec.name).second,
                "container writer: tensor '", t.name, "' section name '", sec.name, "' is empty, too long or repeated");
    container_put_str(r, sec.name, "section name");
    const auto& enc = coded[k];
    const bool is_coded = enc.encoding != SectionEncoding::raw;
    if (with_encoding) r.put(static_cast<std::uint8_t>(is_coded ? 1 : 0));
    const auto& stored = is_coded ? enc.stream : sec.bytes;
    r.put(static_cast<std::uint64_t>(stored.size()));
    r.put_bytes(stored.data(), stored.size());
  }
  return r.release();
}

/// The 32-byte header with its CRC.
[[nodiscard]] inline std::array<char, 32> container_header(bool coded, std::uint64_t file_size, std::uint64_t n_tensors) {
  SPARQ_CHECK(n_tensors <= 0xffffffffu, "container writer: too many tensors");
  ByteSink s;
  s.put_bytes("SPRQ", 4);
  s.put(coded ? container_version_coded : container_version);
  s.put(file_size);
  s.put(static_cast<std::uint32_t>(n_tensors));
  s.put(std::uint32_t{0});
  s.put(std::uint32_t{0});
  s.put(crc32(s.bytes().data(), 28));
  std::array<char, 32> h{};
  std::memcpy(h.data(), s.bytes().data(), 32);
  return h;
}

}  // namespace detail

/// The file bytes of a container (see the file comment for the layout).
[[nodiscard]] inline std::vector<char> serialize_container(const Container& ct) {
  SPARQ_CHECK(ct.tensors.size() <= 0xffffffffu, "container writer: too many tensors");
  std::set<std::string_view> names;
  // Entropy-code the sections that ask for it; the version follows from the result.
  std::vector<std::vector<EntropyEncoded>> coded(ct.tensors.size());
  bool any_coded = false;
  for (std::size_t i = 0; i < ct.tensors.size(); ++i) {
    coded[i] = detail::container_encode(ct.tensors[i]);
    any_coded = any_coded || detail::container_any_coded(coded[i]);
  }
  ByteSink s;
  const auto header = detail::container_header(any_coded, 0, ct.tensors.size());  // size patched below
  s.put_bytes(header.data(), header.size());
  detail::container_put_record(s, detail::container_metadata_payload(ct.metadata));
  for (std::size_t ti = 0; ti < ct.tensors.size(); ++ti) {
    const auto& t = ct.tensors[ti];
    const auto payload = detail::container_tensor_payload(t, coded[ti], any_coded);
    SPARQ_CHECK(names.insert(t.name).second, "container writer: duplicate tensor '", t.name, "'");
    detail::container_put_record(s, payload);
  }
  auto& b = s.bytes();
  const std::uint64_t total = b.size() + 8;
  std::memcpy(b.data() + 8, &total, 8);
  const std::uint32_t hcrc = crc32(b.data(), 28);
  std::memcpy(b.data() + 28, &hcrc, 4);
  s.put(crc32(b.data(), b.size()));
  s.put_bytes("QRPS", 4);
  return s.release();
}

/// Parses and verifies a container held in memory.
[[nodiscard]] inline Container parse_container(const char* data, std::size_t size,
                                               const std::string& what = "sparq container") {
  ByteCursor c(data, size, what);
  const char* magic = c.take(4, "magic");
  SPARQ_CHECK(std::memcmp(magic, "SPRQ", 4) == 0, what, ": bad magic, expected \"SPRQ\"");
  const auto version = c.read<std::uint32_t>("version");
  SPARQ_CHECK(version == container_version || version == container_version_coded, what, ": version ", version,
              " is not supported, expected ", container_version, " or ", container_version_coded);
  const auto file_size = c.read<std::uint64_t>("file_size");
  SPARQ_CHECK(file_size == size, what, ": header says ", file_size, " bytes, the file has ", size,
              size < file_size ? " (truncated)" : " (trailing bytes)");
  const auto n_tensors = c.read<std::uint32_t>("n_tensors");
  const auto flags = c.read<std::uint32_t>("flags");
  const auto reserved = c.read<std::uint32_t>("reserved");
  const auto hcrc = c.read<std::uint32_t>("header checksum");
  SPARQ_CHECK(hcrc == crc32(data, 28), what, ": header checksum mismatch (the header says version ", version,
              ", ", n_tensors, " tensors)");
  SPARQ_CHECK(flags == 0 && reserved == 0, what, ": flags ", flags, " / reserved ", reserved, ", expected 0 / 0");
  SPARQ_CHECK(size >= 40, what, ": ", size, " bytes is too short for header and trailer");
  const auto fcrc_stored = [&] {
    std::uint32_t v;
    std::memcpy(&v, data + size - 8, 4);
    return v;
  }();
  SPARQ_CHECK(std::memcmp(data + size - 4, "QRPS", 4) == 0, what, ": missing trailer \"QRPS\"");
  SPARQ_CHECK(fcrc_stored == crc32(data, size - 8), what, ": file checksum mismatch");
  // Each tensor record takes at least 8 + 4 + 4 + 4 + 4 + 4 bytes.
  SPARQ_CHECK(n_tensors <= c.remaining() / 28, what, ": n_tensors = ", n_tensors, " cannot fit in ", c.remaining(),
              " bytes");
  Container ct;
  {
    auto m = detail::container_record(c, "metadata record");
    const auto n = m.read<std::uint32_t>("n_entries");
    SPARQ_CHECK(n <= m.remaining() / 5, what, ": metadata n_entries = ", n, " cannot fit in its record");
    for (std::uint32_t i = 0; i < n; ++i) {
      std::string key = detail::container_str(m, container_max_name, "metadata key");
      SPARQ_CHECK(!key.empty(), what, ": empty metadata key");
      const auto kind = m.read<std::uint8_t>("metadata kind");
      ContainerValue v;
      if (kind == 0) v = detail::container_str(m, 0xffffffffu, "metadata string");
      else if (kind == 1) v = m.read<std::int64_t>("metadata int64");
      else if (kind == 2) v = m.read<double>("metadata float64");
      else sparq::detail::fail(what, ": metadata '", key, "' has kind ", int(kind), ", expected 0, 1 or 2");
      SPARQ_CHECK(ct.metadata.empty() || ct.metadata.rbegin()->first < key, what, ": metadata key '", key,
                  "' is repeated or out of order (keys are stored sorted)");
      ct.metadata.emplace_hint(ct.metadata.end(), std::move(key), std::move(v));
    }
    SPARQ_CHECK(m.remaining() == 0, what, ": ", m.remaining(), " unexplained bytes at the end of the metadata record");
  }
  std::set<std::string> names;
  for (std::uint32_t i = 0; i < n_tensors; ++i) {
    auto r = detail::container_record(c, "tensor record " + std::to_string(i));
    ContainerTensor t;
    t.name = detail::container_str(r, container_max_name, "tensor name");
    SPARQ_CHECK(!t.name.empty(), what, ": tensor record ", i, " has an empty name");
    SPARQ_CHECK(names.insert(t.name).second, what, ": duplicate tensor '", t.name, "'");
    t.format = detail::container_str(r, container_max_name, "tensor format");
    const auto nd = r.read<std::uint32_t>("n_dims");
    SPARQ_CHECK(nd <= container_max_dims, what, ": tensor '", t.name, "' has n_dims = ", nd, ", expected at most ",
                container_max_dims);
    for (std::uint32_t d = 0; d < nd; ++d) t.dims.push_back(r.read<std::uint64_t>("dim"));
    try {
      (void)t.n_elements();
    } catch (const error& e) {
      sparq::detail::fail(what, ": ", e.what());
    }
    const auto ns = r.read<std::uint32_t>("n_sections");
    SPARQ_CHECK(ns <= container_max_sections, what, ": tensor '", t.name, "' has ", ns,
                " sections, expected at most ", container_max_sections);
    for (std::uint32_t k = 0; k < ns; ++k) {
      ContainerSection s;
      s.name = detail::container_str(r, container_max_name, "section name");
      SPARQ_CHECK(!s.name.empty() && t.find_section(s.name) == nullptr, what, ": tensor '", t.name,
                  "' has an empty or repeated section name '", s.name, "'");
      std::uint8_t enc = 0;
      if (version == container_version_coded) {
        enc = r.read<std::uint8_t>("section encoding");
        SPARQ_CHECK(enc <= 1, what, ": tensor '", t.name, "' section '", s.name, "' has encoding ", int(enc),
                    ", expected 0 (raw) or 1 (rANS)");
      }
      const auto len = r.read<std::uint64_t>("section length");
      const char* p = r.take(len, "section bytes");
      const auto* up = reinterpret_cast<const std::uint8_t*>(p);
      s.stored_bytes = len;
      if (enc == 0) {
        s.bytes.assign(up, up + len);
      } else {
        const std::string swhat = what + " tensor '" + t.name + "' section '" + s.name + "'";
        s.encoding = static_cast<SectionEncoding>(rans_stream_info(up, static_cast<std::size_t>(len), swhat).symbol_bits);
        s.bytes = entropy_decode(up, static_cast<std::size_t>(len), swhat);
      }
      t.sections.push_back(std::move(s));
    }
    SPARQ_CHECK(r.remaining() == 0, what, ": ", r.remaining(), " unexplained bytes at the end of tensor '", t.name, "'");
    ct.tensors.push_back(std::move(t));
  }
  SPARQ_CHECK(c.remaining() == 8, what, ": ", c.remaining() - 8, " unexplained bytes before the trailer");
  return ct;
}

[[nodiscard]] inline Container read_container(const std::string& path) {
  const FileBytes b = FileBytes::map(path);  // memory-mapped, not copied (core/file.hpp)
  return parse_container(b.data(), b.size(), "sparq container '" + path + "'");
}

/// Writes a container (temporary file + rename).
inline void write_container(const std::string& path, const Container& ct) {
  const auto b = serialize_container(ct);
  detail::write_file_atomic(path, b.data(), b.size());
}

/// Tensor records spooled to a temporary file as they are made, for a container too large to hold
/// in memory at once (a model compressed block by block): `add` encodes and writes one tensor,
/// write_container(path, ct, spool, at) later places the spooled records among ct's tensors. The
/// records are kept in the version-2 layout and rewritten without the encoding byte when the file
/// ends up version 1, so the file is byte-identical to serialize_container of the whole container.
/// The spool file is removed when the object is destroyed.
class ContainerSpool {
 public:
  /// Creates (or truncates) the spool file at `path`.
  explicit ContainerSpool(std::string path) : path_(std::move(path)) {
    errno = 0;
    f_ = std::fopen(path_.c_str(), "w+b");
    SPARQ_CHECK(f_ != nullptr, "ContainerSpool: cannot open '", path_, "' for writing: ", std::strerror(errno));
  }
  ContainerSpool(const ContainerSpool&) = delete;
  ContainerSpool& operator=(const ContainerSpool&) = delete;
  ~ContainerSpool() {
    if (f_ != nullptr) std::fclose(f_);
    std::remove(path_.c_str());
  }

  /// Encodes `t` (its sections' encodings as for serialize_container) and appends its record.
  void add(const ContainerTensor& t) {
    const auto coded = detail::container_encode(t);
    const auto payload = detail::container_tensor_payload(t, coded, true);
    SPARQ_CHECK(names_.insert(t.name).second, "container writer: duplicate tensor '", t.name, "'");
    ByteSink s;
    detail::container_put_record(s, payload);
    write(s.bytes().data(), s.size());
    any_coded_ = any_coded_ || detail::container_any_coded(coded);
    bytes_ += s.size();
    sections_ += t.sections.size();
    ++count_;
  }

  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] bool any_coded() const noexcept { return any_coded_; }
  [[nodiscard]] const std::set<std::string>& names() const noexcept { return names_; }
  /// Bytes the records take in a file of version 2 (coded) or 1.
  [[nodiscard]] std::uint64_t record_bytes(bool coded) const noexcept { return coded ? bytes_ : bytes_ - sections_; }

  /// Calls f(record bytes) for each record in order, in the layout of version 2 (coded) or 1.
  template <class F>
  void for_each_record(bool coded, F&& f) {
    SPARQ_CHECK(std::fflush(f_) == 0 && std::fseek(f_, 0, SEEK_SET) == 0, "ContainerSpool: cannot rewind '", path_, "'");
    std::vector<char> rec;
    for (std::size_t i = 0; i < count_; ++i) {
      std::uint64_t len = 0;
      read(&len, 8);
      rec.resize(static_cast<std::size_t>(len) + 12);
      std::memcpy(rec.data(), &len, 8);
      read(rec.data() + 8, static_cast<std::size_t>(len) + 4);
      if (!coded) rec = without_encoding(rec);
      f(rec);
    }
    SPARQ_CHECK(std::fseek(f_, 0, SEEK_END) == 0, "ContainerSpool: cannot seek '", path_, "'");
  }

 private:
  void write(const void* p, std::size_t n) {
    errno = 0;
    if (std::fwrite(p, 1, n, f_) != n)
      sparq::detail::fail("ContainerSpool: write to '", path_, "' failed: ", std::strerror(errno ? errno : EIO));
  }
  void read(void* p, std::size_t n) {
    if (std::fread(p, 1, n, f_) != n) sparq::detail::fail("ContainerSpool: '", path_, "' is shorter than written");
  }
  /// A version-2 record (every section raw) in the version-1 layout, its CRC recomputed.
  [[nodiscard]] static std::vector<char> without_encoding(const std::vector<char>& rec) {
    const char* p = rec.data() + 8;
    std::vector<char> out(rec.size());
    std::size_t i = 0, o = 8;
    auto copy = [&](std::size_t n) {
      std::memcpy(out.data() + o, p + i, n);
      i += n;
      o += n;
    };
    auto u32 = [&] {
      std::uint32_t v = 0;
      std::memcpy(&v, p + i, 4);
      return v;
    };
    auto u64 = [&] {
      std::uint64_t v = 0;
      std::memcpy(&v, p + i, 8);
      return v;
    };
    copy(4 + u32());  // name
    copy(4 + u32());  // format
    const std::uint32_t nd = u32();
    copy(4 + 8 * std::size_t{nd});
    const std::uint32_t ns = u32();
    copy(4);
    for (std::uint32_t k = 0; k < ns; ++k) {
      copy(4 + u32());  // section name
      ++i;              // the encoding byte (0: every section is raw in a version-1 file)
      copy(8 + static_cast<std::size_t>(u64()));
    }
    const std::uint64_t len = o - 8;
    std::memcpy(out.data(), &len, 8);
    const std::uint32_t c = crc32(out.data() + 8, static_cast<std::size_t>(len));
    std::memcpy(out.data() + o, &c, 4);
    out.resize(o + 4);
    return out;
  }

  std::string path_;
  std::FILE* f_ = nullptr;
  std::set<std::string> names_;
  bool any_coded_ = false;
  std::uint64_t bytes_ = 0, sections_ = 0;
  std::size_t count_ = 0;
};

/// Writes the container whose tensors are ct.tensors[0, at), then the spooled tensors, then
/// ct.tensors[at, end): the same bytes serialize_container gives for that container (temporary file
/// + rename; nothing is written under `path` on failure). The spool can be written once.
inline void write_container(const std::string& path, const Container& ct, ContainerSpool& spool, std::size_t at) {
  SPARQ_CHECK(at <= ct.tensors.size(), "write_container: spool position ", at, ", expected at most ", ct.tensors.size());
  // Sizes first, then the bytes. The tensors given here can be a model's embedding and classifier,
  // so one is encoded and serialised at a time, in both passes (entropy coding is deterministic:
  // the second pass stores what the first one measured); nothing but one record is held.
  bool any_coded = spool.any_coded();
  std::set<std::string> names = spool.names();
  std::uint64_t total = 32 + spool.record_bytes(false) + 8, sections = spool.record_bytes(true) - spool.record_bytes(false);
  for (const auto& t : ct.tensors) {
    const auto coded = detail::container_encode(t);
    any_coded = any_coded || detail::container_any_coded(coded);
    total += detail::container_tensor_payload(t, coded, false).size() + 12;  // + 1 byte per section if coded
    sections += t.sections.size();
    SPARQ_CHECK(names.insert(t.name).second, "container writer: duplicate tensor '", t.name, "'");
  }
  if (any_coded) total += sections;
  ByteSink meta;
  detail::container_put_record(meta, detail::container_metadata_payload(ct.metadata));
  total += meta.size();

  const std::string tmp = path + ".tmp-sparq";
  errno = 0;
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  SPARQ_CHECK(f != nullptr, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
  std::uint32_t crc = 0;
  std::uint64_t wrote = 0;
  auto put = [&](const void* p, std::size_t n) {
    errno = 0;
    if (std::fwrite(p, 1, n, f) != n) {
      const int err = errno ? errno : EIO;
      sparq::detail::fail("write to '", tmp, "' failed after ", wrote, " of ", total, " bytes: ", std::strerror(err),
                          "; '", path, "' was not written");
    }
    crc = crc32(p, n, crc);
    wrote += n;
  };
  try {
    const auto header = detail::container_header(any_coded, total, ct.tensors.size() + spool.size());
    put(header.data(), header.size());
    put(meta.bytes().data(), meta.size());
    auto put_tensor = [&](std::size_t i) {  // the record's three parts, the payload not copied again
      const std::vector<char> payload =
          detail::container_tensor_payload(ct.tensors[i], detail::container_encode(ct.tensors[i]), any_coded);
      const std::uint64_t len = payload.size();
      const std::uint32_t pcrc = crc32(payload.data(), payload.size());
      put(&len, 8);
      put(payload.data(), payload.size());
      put(&pcrc, 4);
    };
    for (std::size_t i = 0; i < at; ++i) put_tensor(i);
    spool.for_each_record(any_coded, [&](const std::vector<char>& r) { put(r.data(), r.size()); });
    for (std::size_t i = at; i < ct.tensors.size(); ++i) put_tensor(i);
    const std::uint32_t c = crc;
    put(&c, 4);
    put("QRPS", 4);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  SPARQ_CHECK(wrote == total, "write_container: wrote ", wrote, " bytes, expected ", total);
  const bool ok = std::fflush(f) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    sparq::detail::fail("write to '", tmp, "' failed: ", std::strerror(errno ? errno : EIO), "; '", path, "' was not written");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    sparq::detail::fail("cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace sparq::io
