// Linked into each ISA variant of a kernel test (tests/CMakeLists.txt, sparq_add_test ISAS) and
// compiled without ISA flags: before any code built for the variant's ISA runs, it exits with 77
// (CTest: skipped) when this CPU cannot run that ISA, instead of dying with SIGILL.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "sparq/kernels/dispatch.hpp"

#ifndef SPARQ_TEST_ISA
#error "SPARQ_TEST_ISA must name the variant's ISA"
#endif

namespace {

__attribute__((constructor(101))) void sparq_isa_guard() {
  const std::string_view isa = SPARQ_TEST_ISA;
  sparq::kernels::Target t{};
  if (isa == "native" || isa == "baseline") return;  // built for this machine / no ISA flags
  if (!sparq::kernels::target_from_name(isa, t)) {
    std::fprintf(stderr, "isa_guard: unknown ISA '%s'\n", SPARQ_TEST_ISA);
    std::_Exit(2);
  }
  if (!sparq::kernels::cpu_supports_target(t)) {
    std::printf("skipped: this CPU cannot run %s code (the variant built for it)\n", SPARQ_TEST_ISA);
    std::fflush(stdout);
    std::_Exit(77);
  }
}

}  // namespace
