# Run-time kernel dispatch for programs that use sparq (installed with the package).
#
#   sparq_add_dispatch(<name> [LINK_LIBRARIES <libs>...] [OPTIONS <compile options>...] [NATIVE])
#
# creates an INTERFACE library <name>. A program that links it gets one kernel table per SIMD
# target of the build's architecture, each compiled from sparq_dispatch_target.cpp with that
# target's flags, and sparq's kernel entry points then run the best table the CPU supports
# (include/sparq/kernels/dispatch.hpp). The program's own code needs no ISA flag at all:
#   x86-64:  sse2 (no flags), avx2 (-mavx2 -mfma -mf16c), avx512 (F/CD/DQ/BW/VL + the avx2 set),
#            avx512vnni (avx512 + VNNI)
#   aarch64: neon (no flags)
#   other:   one table for the baseline of the compiler's target
# NATIVE builds a single table with -march=native (runs only on CPUs like the build machine).
# LINK_LIBRARIES should carry what the program's own sparq code is built with (e.g. OpenMP, which
# the kernels' row loops use for threads > 1; sanitizers). The objects are linked least capable
# first, so that an inline function emitted by several tables is kept from the least capable one.
# -ffp-contract=off keeps the compiler from fusing multiplies and adds that the kernels keep apart
# (results are then the same on every target where the kernels promise it, see docs/kernels.md).

set(SPARQ_DISPATCH_SOURCE "${CMAKE_CURRENT_LIST_DIR}/sparq_dispatch_target.cpp")

set(SPARQ_FLAGS_sse2 "")
set(SPARQ_FLAGS_avx2 -mavx2 -mfma -mf16c)
set(SPARQ_FLAGS_avx512 -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma -mf16c)
set(SPARQ_FLAGS_avx512vnni ${SPARQ_FLAGS_avx512} -mavx512vnni)
set(SPARQ_FLAGS_neon "")
set(SPARQ_FLAGS_baseline "")
set(SPARQ_FLAGS_native -march=native)

# The dispatch targets of the architecture being built for, least capable first. A non-empty
# SPARQ_DISPATCH_TARGETS_ONLY list (e.g. "sse2;avx2") compiles only those tables: the CPU then runs
# the best of them it supports (sse2 / neon / baseline should stay in the list for other CPUs).
function(sparq_dispatch_targets out)
  string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" proc)
  if(SPARQ_DISPATCH_TARGETS_ONLY)
    set(${out} ${SPARQ_DISPATCH_TARGETS_ONLY} PARENT_SCOPE)
  elseif(proc MATCHES "^(x86_64|amd64|x64)$")
    set(${out} sse2 avx2 avx512 avx512vnni PARENT_SCOPE)
  elseif(proc MATCHES "^(aarch64|arm64)$")
    set(${out} neon PARENT_SCOPE)
  else()
    set(${out} baseline PARENT_SCOPE)
  endif()
endfunction()

function(sparq_add_dispatch name)
  cmake_parse_arguments(D "NATIVE" "" "LINK_LIBRARIES;OPTIONS" ${ARGN})
  if(D_NATIVE)
    set(targets native)
  else()
    sparq_dispatch_targets(targets)
  endif()
  add_library(${name} INTERFACE)
  foreach(t IN LISTS targets)
    set(obj ${name}_${t})
    add_library(${obj} OBJECT ${SPARQ_DISPATCH_SOURCE})
    target_link_libraries(${obj} PRIVATE sparq::sparq ${D_LINK_LIBRARIES})
    target_compile_options(${obj} PRIVATE ${SPARQ_FLAGS_${t}} -ffp-contract=off ${D_OPTIONS})
    target_sources(${name} INTERFACE $<TARGET_OBJECTS:${obj}>)
  endforeach()
endfunction()
