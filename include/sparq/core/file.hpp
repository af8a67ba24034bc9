// Whole-file helpers every layer may use: map or read a file, write one atomically.
// They live in core/ so that model/ (tokenizer, perplexity) reads files without including io/;
// io/ re-exports them as io::detail::read_file and io::detail::write_file_atomic.
//
// FileBytes: the readers of model files (GGUF, safetensors, llama2.c, SPRQ) take the file through
// FileBytes::map, which memory-maps it read-only where the platform has mmap (POSIX) instead of
// copying it into the heap: a multi-gigabyte checkpoint then costs page cache, which the kernel
// can drop, not a second private copy next to the f32 weights built from it. Another process
// truncating the file while it is mapped makes later reads fault (SIGBUS); sparq's readers parse
// and convert the bytes right after mapping. Where mmap is missing or fails (e.g. a pipe), the file
// is read into memory as before.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define SPARQ_HAS_MMAP 1
#else
#define SPARQ_HAS_MMAP 0
#endif

#include "sparq/core/error.hpp"

namespace sparq::detail {

/// Reads a whole file; throws sparq::error naming the path on failure.
inline std::vector<char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  SPARQ_CHECK(f.good(), "cannot open '", path, "' for reading");
  const auto size = static_cast<std::streamoff>(f.tellg());
  SPARQ_CHECK(size >= 0, "cannot determine the size of '", path, "'");
  std::vector<char> buf(static_cast<std::size_t>(size));
  f.seekg(0);
  if (size > 0) f.read(buf.data(), size);
  SPARQ_CHECK(f.good(), "short read from '", path, "'");
  return buf;
}

}  // namespace sparq::detail

namespace sparq {

/// The read-only bytes of a file or buffer: memory-mapped (map(), see the file comment) or owned.
/// Move-only; data() stays valid for the object's lifetime and across moves.
class FileBytes {
 public:
  FileBytes() noexcept = default;
  /// Owns `bytes` (no mapping).
  explicit FileBytes(std::vector<char> bytes) noexcept : own_(std::move(bytes)) {
    p_ = own_.data();
    n_ = own_.size();
  }
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  FileBytes(FileBytes&& o) noexcept { *this = std::move(o); }
  FileBytes& operator=(FileBytes&& o) noexcept {
    if (this != &o) {
      release();
      own_ = std::move(o.own_);  // a moved vector keeps its buffer, so p_ below stays valid
      p_ = o.p_;
      n_ = o.n_;
      map_ = o.map_;
      o.p_ = nullptr;
      o.n_ = 0;
      o.map_ = nullptr;
    }
    return *this;
  }
  ~FileBytes() { release(); }

  /// The whole file at `path`, memory-mapped when possible, else read. Throws sparq::error naming
  /// the path when it cannot be opened or read.
  [[nodiscard]] static FileBytes map(const std::string& path) {
#if SPARQ_HAS_MMAP
    errno = 0;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    SPARQ_CHECK(fd >= 0, "cannot open '", path, "' for reading: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      ::close(fd);
      if (m != MAP_FAILED) {
        FileBytes f;
        f.map_ = m;
        f.p_ = static_cast<const char*>(m);
        f.n_ = static_cast<std::size_t>(st.st_size);
        return f;
      }
    } else {
      ::close(fd);
    }
#endif
    return FileBytes(detail::read_file(path));
  }

  [[nodiscard]] const char* data() const noexcept { return p_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  [[nodiscard]] const char* begin() const noexcept { return p_; }
  [[nodiscard]] const char* end() const noexcept { return p_ + n_; }
  [[nodiscard]] char operator[](std::size_t i) const noexcept { return p_[i]; }
  /// True when the bytes are a memory mapping of the file (not a heap copy).
  [[nodiscard]] bool mapped() const noexcept { return map_ != nullptr; }

 private:
  void release() noexcept {
#if SPARQ_HAS_MMAP
    if (map_) ::munmap(map_, n_);
#endif
    map_ = nullptr;
    p_ = nullptr;
    n_ = 0;
    own_.clear();
  }
  std::vector<char> own_;
  const char* p_ = nullptr;
  std::size_t n_ = 0;
  void* map_ = nullptr;
};

}  // namespace sparq

namespace sparq::detail {

/// Writes `bytes` to `path` through a temporary file and a rename, so a failed write never leaves
/// a partial file under the final name (nor the temporary file). A failure — cannot open, a short
/// write (disk full, file size limit), a failed flush or close, a failed rename — throws
/// sparq::error naming the file, how many bytes got out and the system's reason.
inline void write_file_atomic(const std::string& path, const void* bytes, std::size_t n) {
  const std::string tmp = path + ".tmp-sparq";
  errno = 0;
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  SPARQ_CHECK(f != nullptr, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
  const std::size_t wrote = n ? std::fwrite(bytes, 1, n, f) : 0;
  int err = wrote == n ? 0 : errno;
  if (std::fflush(f) != 0 && err == 0) err = errno ? errno : EIO;
  if (std::fclose(f) != 0 && err == 0) err = errno ? errno : EIO;
  if (wrote != n || err != 0) {
    std::remove(tmp.c_str());
    fail("write to '", tmp, "' failed after ", wrote, " of ", n, " bytes: ", std::strerror(err ? err : EIO),
         "; '", path, "' was not written");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace sparq::detail
