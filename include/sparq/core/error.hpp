// sparq::error, the library's one exception type, and the checks that throw it.
#pragma once

#include <cmath>
#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>

namespace sparq {

/// Thrown by every public entry point on bad input: wrong shapes, non-finite values, unsupported
/// bit widths, group sizes or patterns, truncated or inconsistent files. The message names the
/// offending value and what was expected. Hot-path kernels never throw; their callers check.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

/// Streams every argument into one string (floats with enough digits to round-trip).
template <class... Args>
[[nodiscard]] std::string concat(const Args&... args) {
  std::ostringstream os;
  os.precision(9);
  (os << ... << args);
  return os.str();
}

/// Throws sparq::error with the concatenated message.
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw error(concat(args...));
}

}  // namespace detail

/// Throws sparq::error(message...) when `cond` is false. The message is built only on failure.
#define SPARQ_CHECK(cond, ...)                 \
  do {                                         \
    if (!(cond)) ::sparq::detail::fail(__VA_ARGS__); \
  } while (0)

/// Throws sparq::error naming `what` and the first non-finite index if any of x[0..n) is NaN/Inf.
inline void check_finite(const float* x, std::size_t n, const char* what) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      detail::fail(what, ": non-finite value ", x[i], " at index ", i, " (expected finite values)");
    }
  }
}

}  // namespace sparq
