#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan; only these targets, -O1) and runs
# each for a while from the seed corpus fuzz_make_seeds writes; exits 1 if any target found a crash,
# a sanitizer report, a leak, a timeout (a unit running over 10 s) or an out-of-memory.
# scripts/test.sh runs it as its fuzz smoke pass (15 s per target); long runs: docs/fuzzing.md.
# Usage: tests/fuzz/run_fuzzers.sh [seconds per target, default 60] [target ...]   (default: all)
# Environment: SPARQ_FUZZ_BUILD (build dir, default build/fuzz), SPARQ_FUZZ_CXX (default clang++, else
# clang++-14), SPARQ_JOBS (build parallelism, default 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
secs="${1:-60}"
shift || true
all=(gguf safetensors container rans tokenizer_json hf_json llama2c)
[ $# -gt 0 ] && targets=("$@") || targets=("${all[@]}")
build="${SPARQ_FUZZ_BUILD:-$root/build/fuzz}"
cxx="${SPARQ_FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}"
[ -n "$cxx" ] || { echo "run_fuzzers.sh: clang++ not found (Debian: apt-get install clang libclang-rt-dev)" >&2; exit 1; }
start=$SECONDS
cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${SPARQ_JOBS:-2}" --target fuzz_make_seeds "${targets[@]/#/fuzz_}"
echo "fuzz targets built in $((SECONDS - start)) s"
seeds="$build/seeds"
"$build/fuzz_make_seeds" "$seeds" >/dev/null
# The real model as a GGUF seed (libFuzzer keeps its first max_len bytes: metadata + tensor table).
real="$root/../shared/data/models/stories260K.gguf"
[ -f "$real" ] && cp "$real" "$seeds/gguf/"
# The real llama2.c tokenizer (512 pieces, byte fallback) as a llama2c seed.
[ -f "$root/../shared/data/models/tok512.bin" ] && cp "$root/../shared/data/models/tok512.bin" "$seeds/llama2c/"
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus_$t"
  mkdir -p "$corpus" "$seeds/$t"
  case "$t" in
    tokenizer_json | hf_json) max_len=16384 ;;
    *) max_len=65536 ;;
  esac
  echo "== fuzz_$t for ${secs}s =="
  if ! ASAN_OPTIONS=detect_leaks=1 "$build/fuzz_$t" -max_total_time="$secs" -max_len="$max_len" -timeout=10 \
       -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$build/crash_${t}_" \
       "$corpus" "$seeds/$t" 2>"$build/fuzz_$t.log"; then
    echo "fuzz_$t FAILED: see $build/fuzz_$t.log and $build/crash_${t}_*"
    grep -E "^(==[0-9]+==ERROR|SUMMARY)" "$build/fuzz_$t.log" | head -5 || true
    status=1
  fi
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" "$build/fuzz_$t.log" || true
done
echo "fuzz pass: $((SECONDS - start)) s in total (build included)"
exit $status
