#!/usr/bin/env bash
# The test command: builds everything (tests, benchmarks, tools) in Release and runs the unit tests
# with CTest, then builds the tests again in Debug with AddressSanitizer + UBSan and runs them.
# Between the two, the emulated legs (scripts/test-emulated.sh): x86-64 without AVX2 under
# qemu-x86_64, and an aarch64 cross-build under qemu-aarch64.
# Environment: SPARQ_JOBS (default 2), SPARQ_SKIP_SANITIZERS=1 to skip the sanitizer pass,
# SPARQ_SKIP_EMULATION=1 to skip the emulated legs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh $([ "${SPARQ_SKIP_EMULATION:-0}" = "1" ] || echo --emulation)
jobs="${SPARQ_JOBS:-2}"

echo "== Release build: tests, benchmarks, tools =="
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$jobs"
ctest --test-dir build/release --output-on-failure -j"$jobs"

if [ "${SPARQ_SKIP_EMULATION:-0}" != "1" ]; then
  bash scripts/test-emulated.sh
fi

if [ "${SPARQ_SKIP_SANITIZERS:-0}" != "1" ]; then
  # Only the kernel tables and ISA test variants this CPU runs (sse2 + its best target): the others
  # would only be compiled to be skipped (the Release pass builds and runs every one it can).
  isas=""
  if [ "$(uname -m)" = "x86_64" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
    has() { for f in "$@"; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
    best=sse2
    if has avx2 fma f16c; then best=avx2; fi
    if has avx512f avx512cd avx512dq avx512bw avx512vl avx2 fma f16c; then best=avx512; fi
    if [ "$best" = avx512 ] && has avx512_vnni; then best=avx512vnni; fi
    isas="sse2"
    [ "$best" != sse2 ] && isas="sse2;$best"
  fi
  echo "== Debug build with -fsanitize=address,undefined (kernel targets: ${isas:-all}) =="
  cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
        -DSPARQ_SANITIZE=ON -DSPARQ_BUILD_BENCHMARKS=OFF -DSPARQ_BUILD_EXAMPLES=OFF \
        -DSPARQ_HEADER_CHECK=OFF -DSPARQ_TEST_ISAS_ONLY="$isas" -DSPARQ_DISPATCH_TARGETS_ONLY="$isas" >/dev/null
  cmake --build build/asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j"$jobs" -E consumer_package
fi
