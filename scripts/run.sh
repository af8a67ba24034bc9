#!/usr/bin/env bash
# The main job: builds the tools in Release and compresses the real model (../shared/data by
# default) with every recipe up to JSQ, printing a quality and size table. Arguments go to
# sparq-compress (e.g. --model PATH, --recipe jsq, --json out.json, --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"${SPARQ_JOBS:-2}" --target sparq-compress
exec build/release/examples/compress/sparq-compress "$@"
