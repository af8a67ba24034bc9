#!/usr/bin/env bash
# The main job: builds the tools in Release and runs the compression job on the real model
# (../shared/data by default). Arguments are passed to the tool (e.g. --model PATH, --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"${SPARQ_JOBS:-2}" --target sparq-quantize-model
exec build/release/examples/quantize_model/sparq-quantize-model "$@"
