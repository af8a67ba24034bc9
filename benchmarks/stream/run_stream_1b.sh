#!/usr/bin/env bash
# The end-to-end streaming benchmark of issue 14 (docs/benchmarks.md#streaming-a-11-b-model): writes a
# synthetic TinyLlama-1.1B-shaped Hugging Face directory (bf16, GPT-2 BPE tokenizer cut to 32,000 ids;
# make_synthetic_hf.cpp) once, then compresses it with `sparq-compress --stream` with each recipe on
# 16 x 512 calibration tokens and prints each run's table: seconds per block, compression seconds,
# bytes, peak RSS (getrusage) of the whole process.
# Usage: benchmarks/stream/run_stream_1b.sh [WORK_DIR (default /tmp/sparq-stream-1b)] [recipe ...]
#        (default recipes: jsq-nosearch sparsegpt+smoothquant; W8A8, 50 % unstructured)
# Environment: SPARQ_BUILD (default build/release, configured and built here if needed), SPARQ_JOBS (2).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-/tmp/sparq-stream-1b}"
shift || true
[ $# -gt 0 ] && recipes=("$@") || recipes=(jsq-nosearch sparsegpt+smoothquant)
build="${SPARQ_BUILD:-$root/build/release}"
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"${SPARQ_JOBS:-2}" --target sparq_make_synthetic_hf sparq-compress >/dev/null
mkdir -p "$work"
if [ ! -f "$work/hf/model.safetensors.index.json" ]; then
  "$build/benchmarks/stream/sparq_make_synthetic_hf" "$work/hf" --shape tinyllama
fi
grep -m1 'model name' /proc/cpuinfo || true
echo "cores: $(nproc); memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
for r in "${recipes[@]}"; do
  echo "== $r =="
  "$build/examples/compress/sparq-compress" --model "$work/hf" --stream --recipe "$r" --nsamples 16 --seqlen 512 \
    --out "$work/$r.sprq" --no-real
done
