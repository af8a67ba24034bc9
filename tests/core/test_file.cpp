// core/file.hpp: atomic whole-file writes lose nothing on failure (disk full / size limit, bad path)
// and say why; reads round-trip.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "sparq/core/file.hpp"
#include "sparq_test.hpp"

namespace {
std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("sparq_test_file_") + std::to_string(::getpid()) + "_" + name))
      .string();
}
}  // namespace

TEST_CASE("write_file_atomic writes, replaces and reads back", "[core][file]") {
  const std::string p = temp_path("a.bin");
  const std::vector<char> a(1000, 'a'), b(10, 'b');
  sparq::detail::write_file_atomic(p, a.data(), a.size());
  CHECK(sparq::detail::read_file(p) == a);
  sparq::detail::write_file_atomic(p, b.data(), b.size());
  CHECK(sparq::detail::read_file(p) == b);
  sparq::detail::write_file_atomic(p, nullptr, 0);
  CHECK(sparq::detail::read_file(p).empty());
  CHECK_FALSE(std::filesystem::exists(p + ".tmp-sparq"));
  std::filesystem::remove(p);
  CHECK_THROWS_WITH(sparq::detail::read_file(p), Catch::Contains("cannot open '" + p + "' for reading"));
}

TEST_CASE("write_file_atomic: a failed write leaves the old file as it was and no temporary", "[core][file]") {
  const std::string p = temp_path("keep.bin");
  const std::vector<char> old(100, 'o');
  sparq::detail::write_file_atomic(p, old.data(), old.size());
  SECTION("a directory that does not exist") {
    const std::string q = temp_path("no_such_dir") + "/x.bin";
    CHECK_THROWS_WITH(sparq::detail::write_file_atomic(q, old.data(), old.size()),
                      Catch::Contains("cannot open '" + q + ".tmp-sparq' for writing: No such file or directory"));
    CHECK_FALSE(std::filesystem::exists(q));
  }
  SECTION("the file size limit stops the write half way (as a full disk would)") {
    // RLIMIT_FSIZE makes write() fail with EFBIG past the limit (SIGXFSZ ignored): the same path
    // through the code as ENOSPC on a full disk.
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto* prev = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 64 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    const std::vector<char> big(1 << 20, 'x');
    std::string msg;
    try {
      sparq::detail::write_file_atomic(p, big.data(), big.size());
    } catch (const sparq::error& e) {
      msg = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, prev);
    CHECK_THAT(msg, Catch::Contains("write to '" + p + ".tmp-sparq' failed after") &&
                        Catch::Contains("of 1048576 bytes: File too large; '" + p + "' was not written"));
    CHECK(sparq::detail::read_file(p) == old);
    CHECK_FALSE(std::filesystem::exists(p + ".tmp-sparq"));
  }
  std::filesystem::remove(p);
}

TEST_CASE("FileBytes::map maps a file read-only (same bytes as read_file), moves, and fails by name", "[core][file]") {
  const std::string p = temp_path("map.bin");
  std::vector<char> a(70000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>((i * 131) ^ (i >> 7));
  sparq::detail::write_file_atomic(p, a.data(), a.size());
  sparq::FileBytes m = sparq::FileBytes::map(p);
  CHECK(m.mapped());  // POSIX: a regular file is mapped, not copied
  REQUIRE(m.size() == a.size());
  CHECK(std::equal(m.begin(), m.end(), a.begin()));
  const char* where = m.data();
  sparq::FileBytes moved = std::move(m);  // the mapping moves with the object
  CHECK(moved.data() == where);
  CHECK(m.empty());
  CHECK(moved[12345] == a[12345]);
  // Owned bytes keep their buffer across moves too.
  sparq::FileBytes own(std::vector<char>(a.begin(), a.begin() + 10));
  const char* od = own.data();
  sparq::FileBytes own2 = std::move(own);
  CHECK_FALSE(own2.mapped());
  CHECK(own2.data() == od);
  CHECK(own2.size() == 10);
  own2 = std::move(moved);  // assignment releases the old bytes and takes the mapping
  CHECK(own2.data() == where);
  CHECK(own2.size() == a.size());
  // An empty file has no mapping: it is read (zero bytes).
  sparq::detail::write_file_atomic(p, nullptr, 0);
  const sparq::FileBytes e = sparq::FileBytes::map(p);
  CHECK(e.empty());
  CHECK_FALSE(e.mapped());
  std::filesystem::remove(p);
  CHECK_THROWS_WITH(sparq::FileBytes::map(p), Catch::Contains("cannot open '" + p + "' for reading"));
}
