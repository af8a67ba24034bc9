# Build settings for sparq's own tests, benchmarks and tools (never applied to sparq::sparq users).
#
# Portability: nothing here adds an ISA flag by default. Tools, tests and benchmarks are x86-64
# (or aarch64) baseline code linked with sparq_dispatch, one kernel table per SIMD target chosen at
# run time (cmake/SparqDispatch.cmake), so one build runs on any CPU of the architecture.
# SPARQ_NATIVE=ON builds everything with -march=native instead (runs only on the build machine's
# kind of CPU). Kernel tests are also built once per ISA (sparq_add_test ISAS), each variant
# skipping itself (exit 77) on a CPU that lacks its ISA.
option(SPARQ_NATIVE "Build tools, tests and benchmarks for this machine's CPU only (-march=native)" OFF)

include(${CMAKE_CURRENT_LIST_DIR}/SparqDispatch.cmake)

add_library(sparq_internal INTERFACE)
target_link_libraries(sparq_internal INTERFACE sparq::sparq)
# -ffp-contract=off: no multiply-add fusion the source did not ask for (same float results on
# every target; g++ fuses by default in GNU mode when FMA is available).
target_compile_options(sparq_internal INTERFACE -Wall -Wextra -Wpedantic -Wshadow -ffp-contract=off)
if(SPARQ_NATIVE)
  target_compile_options(sparq_internal INTERFACE ${SPARQ_FLAGS_native})
endif()
if(SPARQ_USE_OPENMP)
  find_package(OpenMP)
  if(OpenMP_CXX_FOUND)
    target_link_libraries(sparq_internal INTERFACE OpenMP::OpenMP_CXX)
  endif()
endif()
if(SPARQ_SANITIZE)
  target_compile_options(sparq_internal INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                  -fno-sanitize-recover=undefined)
  target_link_options(sparq_internal INTERFACE -fsanitize=address,undefined)
endif()

# The kernel tables every tool, test and benchmark links (one per target, or one native table).
if(SPARQ_NATIVE)
  sparq_add_dispatch(sparq_dispatch NATIVE LINK_LIBRARIES sparq_internal)
else()
  sparq_add_dispatch(sparq_dispatch LINK_LIBRARIES sparq_internal)
endif()

# The ISA variants of kernel tests: x86-64 builds one per target; elsewhere only the baseline.
# SPARQ_TEST_ISAS_ONLY (a list, e.g. "sse2;avx2") builds only those variants: the sanitizer pass of
# scripts/test.sh uses it to skip variants the build machine could only report as skipped.
set(SPARQ_TEST_ISAS_ONLY "" CACHE STRING "Build only these ISA variants of the kernel tests (empty: all)")
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" sparq_proc)
if(SPARQ_TEST_ISAS_ONLY)
  set(SPARQ_TEST_ISAS ${SPARQ_TEST_ISAS_ONLY})
elseif(SPARQ_NATIVE)
  set(SPARQ_TEST_ISAS native)
elseif(sparq_proc MATCHES "^(x86_64|amd64|x64)$")
  set(SPARQ_TEST_ISAS sse2 avx2 avx512vnni)
elseif(sparq_proc MATCHES "^(aarch64|arm64)$")
  set(SPARQ_TEST_ISAS neon)
else()
  set(SPARQ_TEST_ISAS baseline)
endif()

# Root of the shared real data (models, text). CI always has it beside the project root.
set(SPARQ_SHARED_DATA "${PROJECT_SOURCE_DIR}/../shared/data" CACHE PATH "Path to shared/data")
get_filename_component(SPARQ_SHARED_DATA "${SPARQ_SHARED_DATA}" ABSOLUTE)
