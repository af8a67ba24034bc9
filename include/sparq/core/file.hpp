// Whole-file helpers every layer may use: read a file into memory, write one atomically.
// They live in core/ so that model/ (tokenizer, perplexity) reads files without including io/;
// io/ re-exports them as io::detail::read_file and io::detail::write_file_atomic.
#pragma once

#include <cstddef>
#include <cstdio>
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
/// a partial file under the final name.
inline void write_file_atomic(const std::string& path, const void* bytes, std::size_t n) {
  const std::string tmp = path + ".tmp-sparq";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    SPARQ_CHECK(f.good(), "cannot open '", tmp, "' for writing");
    f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
    f.flush();
    if (!f.good()) {
      f.close();
      std::remove(tmp.c_str());
      fail("write to '", tmp, "' failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace sparq::detail
