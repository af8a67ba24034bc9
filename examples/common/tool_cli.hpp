// The command-line helper the sparq tools share: each tool declares its options once (name, value
// kind, range, help) and gets parsing, range checks, error messages that name the option and the
// value, and a --help text generated from the same table. Not part of the library (tools only).
//
//   sparq_tools::Cli cli("sparq-ppl", "Perplexity of a Llama model on a text.");
//   cli.text("--model", "PATH", &model, "llama2.c, GGUF or SPRQ model");
//   cli.integer("--max-tokens", &max_tokens, 0, 1LL << 40, "tokens scored, 0 = all");
//   return sparq_tools::run(cli, argc, argv, [&] { ... return 0; });
//
// Exit codes (run): 0 success or --help; 2 bad command line (message + "see --help"); 1 any other
// error (sparq::error, I/O), printed as "<tool>: <message>".
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sparq_tools {

/// A bad command line: what is wrong, naming the option and the value.
struct CliError {
  std::string msg;
};

class Cli {
 public:
  Cli(std::string tool, std::string summary) : tool_(std::move(tool)), summary_(std::move(summary)) {}

  [[nodiscard]] const std::string& tool() const noexcept { return tool_; }

  /// --name without a value: sets *dst = value.
  Cli& flag(const std::string& name, bool* dst, std::string help, bool value = true) {
    return add({name, "", std::move(help), [dst, value](const std::string&) { *dst = value; }, false});
  }
  /// --name without a value: runs `fn` (e.g. a pair --progress / --no-progress setting one tri-state).
  Cli& action(const std::string& name, std::function<void()> fn, std::string help) {
    return add({name, "", std::move(help), [fn = std::move(fn)](const std::string&) { fn(); }, false});
  }
  /// --name N, an integer in [lo, hi].
  Cli& integer(const std::string& name, long long* dst, long long lo, long long hi, std::string help) {
    return add({name, "N", std::move(help),
                [name, dst, lo, hi](const std::string& v) {
                  errno = 0;
                  char* end = nullptr;
                  const long long x = std::strtoll(v.c_str(), &end, 10);
                  if (v.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi)
                    throw CliError{name + " expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                   "], got '" + v + "'"};
                  *dst = x;
                },
                true});
  }
  /// --name X, a finite number in [lo, hi] (or [lo, hi) when hi_open).
  Cli& number(const std::string& name, double* dst, double lo, double hi, std::string help, bool hi_open = false) {
    return add({name, "X", std::move(help),
                [name, dst, lo, hi, hi_open](const std::string& v) {
                  char* end = nullptr;
                  const double x = std::strtod(v.c_str(), &end);
                  if (v.empty() || *end != '\0' || !std::isfinite(x) || x < lo || (hi_open ? x >= hi : x > hi))
                    throw CliError{name + " expects a number in [" + fmt(lo) + ", " + fmt(hi) + (hi_open ? ")" : "]") +
                                   ", got '" + v + "'"};
                  *dst = x;
                },
                true});
  }
  /// --name N, an integer from `allowed` ("--wbits expects 4 or 8, got '5'").
  Cli& integer_of(const std::string& name, long long* dst, std::vector<long long> allowed, std::string help) {
    std::string list;
    for (std::size_t i = 0; i < allowed.size(); ++i)
      list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + std::to_string(allowed[i]);
    return add({name, "N", std::move(help),
                [name, dst, allowed, list](const std::string& v) {
                  errno = 0;
                  char* end = nullptr;
                  const long long x = std::strtoll(v.c_str(), &end, 10);
                  if (v.empty() || *end != '\0' || errno == ERANGE ||
                      std::find(allowed.begin(), allowed.end(), x) == allowed.end())
                    throw CliError{name + " expects " + list + ", got '" + v + "'"};
                  *dst = x;
                },
                true});
  }
  /// --name VALUE, repeatable: every value is appended to *dst (in command-line order).
  Cli& texts(const std::string& name, const std::string& meta, std::vector<std::string>* dst, std::string help) {
    return add({name, meta, std::move(help),
                [name, dst](const std::string& v) {
                  if (v.empty()) throw CliError{name + " expects a non-empty value"};
                  dst->push_back(v);
                },
                true});
  }
  /// --name VALUE, any non-empty text (a path, a prompt may be empty: allow_empty).
  Cli& text(const std::string& name, const std::string& meta, std::string* dst, std::string help,
            bool allow_empty = false) {
    return add({name, meta, std::move(help),
                [name, dst, allow_empty](const std::string& v) {
                  if (v.empty() && !allow_empty) throw CliError{name + " expects a non-empty value"};
                  *dst = v;
                },
                true});
  }
  /// --name VALUE, one of `choices`.
  Cli& choice(const std::string& name, std::string* dst, std::vector<std::string> choices, std::string help) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    return add({name, "WORD", std::move(help) + " (" + list + ")",
                [name, dst, choices, list](const std::string& v) {
                  for (const auto& c : choices)
                    if (v == c) {
                      *dst = v;
                      return;
                    }
                  throw CliError{name + " expects one of " + list + ", got '" + v + "'"};
                },
                true});
  }
  /// A free-form note printed after the options in --help (defaults that need words, data dir...).
  Cli& note(std::string text) {
    notes_.push_back(std::move(text));
    return *this;
  }

  /// The --help text: summary, then one line (or more) per option in declaration order.
  [[nodiscard]] std::string usage() const {
    std::string u = "usage: " + tool_ + " [options]\n";
    for (const auto& line : split(summary_)) u += "  " + line + "\n";
    u += "options:\n";
    std::size_t w = 6;  // "--help"
    for (const auto& o : opts_) w = std::max(w, head(o).size());
    for (const auto& o : opts_) {
      const auto lines = split(o.help);
      std::string h = head(o);
      u += "  " + h + std::string(w - h.size() + 2, ' ') + (lines.empty() ? "" : lines[0]) + "\n";
      for (std::size_t i = 1; i < lines.size(); ++i) u += std::string(w + 4, ' ') + lines[i] + "\n";
    }
    u += "  --help" + std::string(w - 6 + 2, ' ') + "this text\n";
    for (const auto& n : notes_)
      for (const auto& line : split(n)) u += "  " + line + "\n";
    return u;
  }

  /// Parses argv[1..]. Returns false when --help / -h was given (the caller prints usage()).
  /// Throws CliError on an unknown option, a missing or bad value.
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      if (k == "--help" || k == "-h") return false;
      const Opt* o = find(k);
      if (o == nullptr) {
        if (k.rfind("--", 0) != 0) throw CliError{"unexpected argument '" + k + "' (options start with --)"};
        throw CliError{"unknown option '" + k + "'"};
      }
      if (!o->takes_value) {
        o->set("");
        continue;
      }
      if (i + 1 >= argc) throw CliError{k + " needs a value"};
      o->set(argv[++i]);
    }
    return true;
  }

 private:
  struct Opt {
    std::string name, meta, help;
    std::function<void(const std::string&)> set;
    bool takes_value;
  };
  Cli& add(Opt o) {
    opts_.push_back(std::move(o));
    return *this;
  }
  [[nodiscard]] const Opt* find(const std::string& name) const {
    for (const auto& o : opts_)
      if (o.name == name) return &o;
    return nullptr;
  }
  [[nodiscard]] static std::string head(const Opt& o) { return o.meta.empty() ? o.name : o.name + " " + o.meta; }
  [[nodiscard]] static std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t a = 0;
    while (a <= s.size() && !s.empty()) {
      const std::size_t b = s.find('\n', a);
      out.push_back(s.substr(a, b == std::string::npos ? std::string::npos : b - a));
      if (b == std::string::npos) break;
      a = b + 1;
    }
    return out;
  }
  [[nodiscard]] static std::string fmt(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", x);
    return b;
  }

  std::string tool_, summary_;
  std::vector<Opt> opts_;
  std::vector<std::string> notes_;
};

/// Parses the command line and runs `body` (which returns the exit code). --help prints usage() to
/// stdout (exit 0); a bad command line prints "<tool>: <what>" and a pointer to --help to stderr
/// (exit 2); an exception from body prints "<tool>: <what>" (exit 1).
inline int run(Cli& cli, int argc, char** argv, const std::function<int()>& body) {
  try {
    if (!cli.parse(argc, argv)) {
      std::fputs(cli.usage().c_str(), stdout);
      return 0;
    }
  } catch (const CliError& e) {
    std::fprintf(stderr, "%s: %s (see %s --help)\n", cli.tool().c_str(), e.msg.c_str(), cli.tool().c_str());
    return 2;
  }
  try {
    return body();
  } catch (const CliError& e) {  // a check of option combinations inside body
    std::fprintf(stderr, "%s: %s (see %s --help)\n", cli.tool().c_str(), e.msg.c_str(), cli.tool().c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", cli.tool().c_str(), e.what());
    return 1;
  }
}

/// The data directory the tools default to: $SPARQ_DATA_DIR, else the build's (compiled-in) one.
[[nodiscard]] inline std::string data_dir(const char* built_in) {
  const char* env = std::getenv("SPARQ_DATA_DIR");
  return env && *env ? env : built_in;
}

}  // namespace sparq_tools
