// core/file.hpp: atomic whole-file writes lose nothing on failure (disk full / size limit, bad path)
// and say why; reads round-trip.
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
