// Whole-file helpers every layer may use: read a file into memory, write one atomically.
// They live in core/ so that model/ (tokenizer, perplexity) reads files without including io/;
// io/ re-exports them as io::detail::read_file and io::detail::write_file_atomic.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

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
