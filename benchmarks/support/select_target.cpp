// Linked into every benchmark: SPARQ_TARGET=<name> pins the run-time kernel target before any
// benchmark runs (an unknown or unavailable name is an error, never a silent fallback), and the
// dispatch summary goes to stderr so each run's output says which kernels it measured.
#include <cstdio>
#include <cstdlib>

#include "sparq/kernels/dispatch.hpp"

namespace {

const bool sparq_bench_target_selected = [] {
  namespace sk = sparq::kernels;
  if (const char* name = std::getenv("SPARQ_TARGET"); name != nullptr && *name != '\0') {
    sk::Target t{};
    if (!sk::target_from_name(name, t) || !sk::select_target(t)) {
      std::fprintf(stderr, "SPARQ_TARGET=%s: not a compiled target this CPU runs (%s)\n", name,
                   sk::dispatch_summary().c_str());
      std::exit(2);
    }
  }
  std::fprintf(stderr, "sparq kernels: %s\n", sk::dispatch_summary().c_str());
  return true;
}();

}  // namespace
