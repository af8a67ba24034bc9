// ByteCursor and ByteSink: bounds-checked little-endian reading and writing for the file readers.
//
// Every read checks `n <= remaining()` before touching memory, so a hostile length can never move
// the cursor past the end of the buffer; `checked_mul`/`checked_add` detect size_t overflow in
// sizes computed from file fields. The library assumes a little-endian host (x86-64, AArch64).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sparq/core/error.hpp"

namespace sparq::io {

static_assert(std::endian::native == std::endian::little,
              "sparq's file formats are little-endian and read by memcpy: big-endian hosts are not supported");

namespace detail {

/// a * b, or throws sparq::error naming `what` when the product does not fit in 64 bits.
[[nodiscard]] inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    sparq::detail::fail(what, ": ", a, " * ", b, " overflows 64 bits");
  }
  return r;
}

/// a + b, or throws sparq::error naming `what` on 64-bit overflow.
[[nodiscard]] inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    sparq::detail::fail(what, ": ", a, " + ", b, " overflows 64 bits");
  }
  return r;
}

/// Smallest multiple of `alignment` (a power of two) that is >= x; throws on overflow.
[[nodiscard]] inline std::uint64_t align_up(std::uint64_t x, std::uint64_t alignment, std::string_view what) {
  return checked_add(x, alignment - 1, what) & ~(alignment - 1);
}

}  // namespace detail

/// A read cursor over [data, data + size). Never reads outside it; every failure throws
/// sparq::error naming `what` (the file), the field being read, the offset and the sizes.
class ByteCursor {
 public:
  ByteCursor(const char* data, std::size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  [[nodiscard]] std::size_t offset() const noexcept { return pos_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return size_ - pos_; }
  [[nodiscard]] const char* data() const noexcept { return data_; }
  [[nodiscard]] const std::string& what() const noexcept { return what_; }

  /// Throws unless `n` more bytes are available.
  void need(std::uint64_t n, std::string_view field) const {
    if (n > remaining()) {
      sparq::detail::fail(what_, ": truncated while reading ", field, " at offset ", pos_, ": need ", n,
                          " bytes, ", remaining(), " left");
    }
  }

  /// Reads one little-endian trivially copyable value.
  template <class T>
  [[nodiscard]] T read(std::string_view field) {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  /// Returns a pointer to the next n bytes and advances past them.
  [[nodiscard]] const char* take(std::uint64_t n, std::string_view field) {
    need(n, field);
    const char* p = data_ + pos_;
    pos_ += static_cast<std::size_t>(n);
    return p;
  }

  /// Reads a string of `n` bytes (n already decoded by the caller, checked here against the end
  /// of the buffer and against `max_len`).
  [[nodiscard]] std::string read_bytes_as_string(std::uint64_t n, std::uint64_t max_len, std::string_view field) {
    if (n > max_len) {
      sparq::detail::fail(what_, ": ", field, " at offset ", pos_, " has length ", n, ", expected at most ",
                          max_len);
    }
    const char* p = take(n, field);
    return std::string(p, static_cast<std::size_t>(n));
  }

  void skip(std::uint64_t n, std::string_view field) { (void)take(n, field); }
  void seek(std::size_t pos) {
    SPARQ_CHECK(pos <= size_, what_, ": seek to ", pos, " past the end (", size_, " bytes)");
    pos_ = pos;
  }

 private:
  const char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::string what_;
};

/// An append-only little-endian byte buffer for the writers.
class ByteSink {
 public:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const char* c = reinterpret_cast<const char*>(&v);
    buf_.insert(buf_.end(), c, c + sizeof(T));
  }
  void put_bytes(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
  }
  void pad_to(std::size_t alignment, char fill = 0) {
    while (buf_.size() % alignment != 0) buf_.push_back(fill);
  }
  [[nodiscard]] std::size_t size() const noexcept { return buf_.size(); }
  [[nodiscard]] std::vector<char>& bytes() noexcept { return buf_; }
  [[nodiscard]] std::vector<char> release() noexcept { return std::move(buf_); }

 private:
  std::vector<char> buf_;
};

}  // namespace sparq::io
