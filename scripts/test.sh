#!/usr/bin/env bash
# The test command: builds everything (tests, benchmarks, tools) in Release and runs every test
# with CTest, then builds the test programs that handle untrusted bytes and raw memory again in
# Debug with AddressSanitizer + UBSan and runs them (the list and why: sanitizer_programs below).
# Between the two, the emulated legs (scripts/test-emulated.sh): x86-64 without AVX2 under
# qemu-x86_64, and an aarch64 cross-build under qemu-aarch64. Last, a fuzz smoke pass: every
# libFuzzer target of tests/fuzz (clang, ASan + UBSan) for SPARQ_FUZZ_SECONDS (default 5) seconds
# from its seed corpus, failing on any crash (docs/fuzzing.md).
# Environment: SPARQ_JOBS (default 2), SPARQ_SKIP_SANITIZERS=1 to skip the sanitizer pass,
# SPARQ_SKIP_EMULATION=1 to skip the emulated legs, SPARQ_SKIP_FUZZ=1 to skip the fuzz smoke pass.
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
  # Kernel tables: sse2 (the fallback the dispatch test selects) and this CPU's best target. ISA test
  # variants: the best one only. Its for_each_arch loops run every target it is compiled for and the
  # CPU supports (sse2 included), so the sse2 variant would run the same kernel code a second time
  # (the Release pass and the Nehalem leg run every variant). Built at -O0: the sanitizers check the
  # same accesses at any level, and -O1 triples the compile time (test_io's unity translation unit:
  # 62 s at -O0, 207 s at -O1) to save about 50 s of test run (whole pass: 252 s against 656 s).
  isas=""
  test_isas=""
  if [ "$(uname -m)" = "x86_64" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
    has() { for f in "$@"; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
    best=sse2
    if has avx2 fma f16c; then best=avx2; fi
    if has avx512f avx512cd avx512dq avx512bw avx512vl avx2 fma f16c; then best=avx512; fi
    if [ "$best" = avx512 ] && has avx512_vnni; then best=avx512vnni; fi
    isas="sse2"
    [ "$best" != sse2 ] && isas="sse2;$best"
    test_isas="$best"
  fi
  # The sanitizer pass covers the programs whose code parses untrusted bytes or indexes raw memory,
  # where AddressSanitizer and UBSan find what assertions cannot (out-of-bounds reads, overflowing
  # size arithmetic, misaligned or uninitialised loads):
  #   test_io, test_entropy   readers of hostile files: GGUF, safetensors, SPRQ container, llama2c,
  #                           HF checkpoints, ggml blocks; the rANS entropy coder (the readers that
  #                           tests/fuzz fuzzes with clang: briefly in the fuzz pass below)
  #   test_kernels*, test_kernels_dispatch, test_quant_kernels*, test_prune_kernels*
  #                           the SIMD kernels: tails, strides, packed layouts, dispatch tables
  #   test_core, test_quant   MatrixView, fp16/bf16, files, statistics; quantizers and packed codes
  #   test_packed             the packed model: packing, (de)serialisation, the packed kernels
  #   test_tokenizer          tokenizer files and text (UTF-8, byte fallback, merges)
  # Left to the Release pass: test_model, test_joint, test_calib_quant, test_prune, test_lowrank*:
  # numeric algorithms (forward passes, GPTQ, SmoothQuant, AWQ, SparseGPT, SVD, the joint
  # compressor) on real data, which reach memory only through the containers and kernels above and
  # are the slowest programs to build and run under the sanitizers; and the script tests (doc
  # citations, layering, compile-fail cases, consumer package), which do not depend on build flags.
  sanitizer_programs="test_io;test_entropy;test_kernels;test_kernels_dispatch;test_quant_kernels;test_prune_kernels"
  sanitizer_programs+=";test_core;test_quant;test_packed;test_tokenizer"
  echo "== Debug build with -fsanitize=address,undefined (kernel tables: ${isas:-all}; ISA test variants: ${test_isas:-all}; programs: ${sanitizer_programs//;/ }) =="
  cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O0" \
        -DSPARQ_SANITIZE=ON -DSPARQ_BUILD_BENCHMARKS=OFF -DSPARQ_BUILD_EXAMPLES=OFF \
        -DSPARQ_HEADER_CHECK=OFF -DSPARQ_TEST_ISAS_ONLY="$test_isas" -DSPARQ_DISPATCH_TARGETS_ONLY="$isas" \
        -DSPARQ_TESTS_ONLY="$sanitizer_programs" >/dev/null
  cmake --build build/asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j"$jobs"
fi

if [ "${SPARQ_SKIP_FUZZ:-0}" != "1" ]; then
  # Builds only the fuzz targets (tests/fuzz configured on its own, -O1) and runs each briefly on the
  # seeds fuzz_make_seeds writes; a crash, sanitizer report, leak or timeout fails the command.
  secs="${SPARQ_FUZZ_SECONDS:-5}"
  echo "== Fuzz smoke: every libFuzzer target for ${secs}s (clang, ASan + UBSan; docs/fuzzing.md) =="
  SPARQ_FUZZ_BUILD="$PWD/build/fuzz-smoke" SPARQ_JOBS="$jobs" bash tests/fuzz/run_fuzzers.sh "$secs"
fi
