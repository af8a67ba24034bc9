// Linked into every test and benchmark: SPARQ_TARGET=<name> pins the run-time kernel target before
// any test or benchmark runs (an unknown or unavailable name is an error, never a silent fallback),
// so the whole suite can run on one target: SPARQ_TARGET=avx2 ctest. Tests print the dispatch
// summary only when a target is pinned; benchmarks (compiled with SPARQ_SELECT_TARGET_ALWAYS_PRINT)
// always print it to stderr, so each run's output says which kernels it measured.
#include <cstdio>
#include <cstdlib>

#include "sparq/kernels/dispatch.hpp"

namespace {

const bool sparq_test_target_selected = [] {
  namespace sk = sparq::kernels;
  if (const char* name = std::getenv("SPARQ_TARGET"); name != nullptr && *name != '\0') {
    sk::Target t{};
    if (!sk::target_from_name(name, t) || !sk::select_target(t)) {
      std::fprintf(stderr, "SPARQ_TARGET=%s: not a compiled target this CPU runs (%s)\n", name,
                   sk::dispatch_summary().c_str());
      std::exit(2);
    }
#ifndef SPARQ_SELECT_TARGET_ALWAYS_PRINT
    std::fprintf(stderr, "sparq kernels pinned: %s\n", sk::dispatch_summary().c_str());
#endif
  }
#ifdef SPARQ_SELECT_TARGET_ALWAYS_PRINT
  std::fprintf(stderr, "sparq kernels: %s\n", sk::dispatch_summary().c_str());
#endif
  return true;
}();

}  // namespace
