#!/usr/bin/env bash
# The emulated legs of the test command (scripts/test.sh runs this after the Release tests; it needs
# the Release build in build/release). Both use Debian's qemu-user, so they run on any x86-64 host:
#
#  1. x86-64 without AVX2 (qemu-x86_64 -cpu Nehalem: SSE4.2, no AVX): the baseline kernel, quantizer
#     and pruner tests, the dispatch test (which must fall back to the sse2 table) and the quantizer
#     tests. Any AVX instruction reached on this path raises SIGILL and fails the leg. Then the same
#     dispatch test under -cpu Haswell (AVX2 + FMA + F16C, no AVX-512): on an AVX-512 host this is
#     the proof that the avx2 table and the baseline code around it never execute AVX-512.
#  2. aarch64 (NEON): the kernel, quantizer and pruner tests cross-built with g++-aarch64-linux-gnu
#     (one table, the neon one) and run under qemu-aarch64.
#
# Environment: SPARQ_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${SPARQ_JOBS:-2}"
rel=build/release
data="$(cd .. && pwd)/shared/data"

echo "== x86-64 baseline leg: qemu-x86_64 -cpu Nehalem (no AVX) =="
for t in tests/kernels/test_kernels_sse2 tests/quant/test_quant_kernels_sse2 tests/prune/test_prune_kernels_sse2 \
         tests/kernels/test_kernels_dispatch tests/quant/test_quant; do
  echo "-- $t"
  qemu-x86_64 -cpu Nehalem "$rel/$t" 2>&1 | tail -n 2
  test "${PIPESTATUS[0]}" -eq 0
done
echo "-- tests/kernels/test_kernels_dispatch under -cpu Haswell (AVX2, no AVX-512)"
qemu-x86_64 -cpu Haswell "$rel/tests/kernels/test_kernels_dispatch" 2>&1 | grep -v "TCG doesn't support" | tail -n 2
test "${PIPESTATUS[0]}" -eq 0

echo "== aarch64 leg: g++-aarch64-linux-gnu + qemu-aarch64 (NEON) =="
out=build/aarch64
mkdir -p "$out"
cxx=aarch64-linux-gnu-g++
flags=(-std=c++20 -O2 -fopenmp -ffp-contract=off -Wall -Wextra -Wpedantic -Wshadow -Iinclude -Itests/support
       -Itests/kernels "-DSPARQ_DATA_DIR=\"$data\"")
# The Catch2 main (Debian's prebuilt one is for the host), every test source as its own object, and
# one executable per area as in tests/*/CMakeLists.txt (test names are unique per area only).
kernels=(tests/kernels/test_gemv_dense.cpp tests/kernels/test_gemv_nm.cpp tests/kernels/test_gemm_half.cpp
         tests/kernels/test_gemv_bitmask.cpp tests/kernels/test_gemv_nm_a8.cpp tests/kernels/test_canonical.cpp
         tests/kernels/test_dispatch.cpp)
quant=(tests/quant/test_kernels.cpp tests/quant/test_tables.cpp tests/quant/test_quantizer.cpp tests/quant/test_errors.cpp)
prune=(tests/prune/test_linalg.cpp tests/prune/test_metrics.cpp tests/prune/test_sparse_gpt.cpp
       tests/prune/test_formats_owl.cpp)
printf '#define CATCH_CONFIG_MAIN\n#include <catch2/catch.hpp>\n' > "$out/catch_main.cpp"
obj() { echo "$out/$(echo "$1" | tr '/' '_' | sed 's/\.cpp$/.o/')"; }
make_rules="$out/Makefile"
{
  echo "all: $out/kernels $out/quant $out/prune"
  echo "$out/catch_main.o: $out/catch_main.cpp"
  printf '\t%s -std=c++20 -O1 -c %s -o %s\n' "$cxx" "$out/catch_main.cpp" "$out/catch_main.o"
  for s in "${kernels[@]}" "${quant[@]}" "${prune[@]}" cmake/sparq_dispatch_target.cpp tests/support/select_target.cpp; do
    echo "$(obj "$s"): $s \$(wildcard include/sparq/*/*.hpp include/sparq/*/*/*.hpp)"
    printf '\t%s %s -c %s -o %s\n' "$cxx" "$(printf '%q ' "${flags[@]}")" "$s" "$(obj "$s")"
  done
  common="$out/catch_main.o $(obj cmake/sparq_dispatch_target.cpp) $(obj tests/support/select_target.cpp)"
  for area in kernels quant prune; do
    declare -n list="$area"
    objs=""
    for s in "${list[@]}"; do objs+=" $(obj "$s")"; done
    echo "$out/$area:$objs $common"
    printf '\t%s -fopenmp %s %s -o %s\n' "$cxx" "$objs" "$common" "$out/$area"
  done
} > "$make_rules"
make -s -f "$make_rules" -j"$jobs"
for area in kernels quant prune; do
  echo "-- aarch64 $area"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/$area" 2>&1 | tail -n 2
  test "${PIPESTATUS[0]}" -eq 0
done
echo "emulated legs: x86-64 baseline and aarch64 passed"
