#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a while.
# Not part of the default CI. Usage: tests/fuzz/run_fuzzers.sh [seconds per target, default 60]
# Environment: SPARQ_FUZZ_BUILD (build dir, default build/fuzz), CXX (default clang++-14 or clang++).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
secs="${1:-60}"
build="${SPARQ_FUZZ_BUILD:-$root/build/fuzz}"
cxx="${CXX:-$(command -v clang++-14 || command -v clang++)}"
cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${SPARQ_JOBS:-2}" --target fuzz_gguf fuzz_safetensors fuzz_container fuzz_make_seeds
seeds="$build/seeds"
"$build/fuzz_make_seeds" "$seeds"
# The real model as a GGUF seed (libFuzzer keeps its first max_len bytes: metadata + tensor table).
real="$root/../shared/data/models/stories260K.gguf"
[ -f "$real" ] && cp "$real" "$seeds/gguf/"
status=0
for reader in gguf safetensors container; do
  corpus="$build/corpus_$reader"
  mkdir -p "$corpus"
  echo "== fuzz_$reader for ${secs}s =="
  if ! ASAN_OPTIONS=detect_leaks=1 "$build/fuzz_$reader" -max_total_time="$secs" -max_len=65536 \
       -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$build/crash_${reader}_" \
       "$corpus" "$seeds/$reader" 2>"$build/fuzz_$reader.log"; then
    echo "fuzz_$reader FAILED: see $build/fuzz_$reader.log and $build/crash_${reader}_*"
    status=1
  fi
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|^#[0-9]+ *DONE" \
       "$build/fuzz_$reader.log" || true
done
exit $status
