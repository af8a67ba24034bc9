#!/usr/bin/env bash
# Compares sparq's byte-level BPE tokenizer token for token with independent JavaScript tokenizers
# (gpt-3-encoder and js-tiktoken for GPT-2, llama3-tokenizer-js for Llama 3) on thousands of
# generated strings, and times the encoding of 10 KB / 100 KB / 1 MB of text. Not run by CI (it needs
# npm packages); docs/tokenizers.md describes it.
#
#   bash scripts/check-tokenizers.sh [--count N] [--seed S]      default: 5000 strings per vocabulary
#   bash scripts/check-tokenizers.sh --write-testdata            regenerate tests/data/tokenizers/
#                                                                (400 GPT-2 cases, seed 7)
# Needs node + npm, a C++20 compiler, nlohmann-json and Debian's unicode-data (installed with apt-get
# when missing). The npm packages go to a scratch folder under /tmp, never into the repository.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${SPARQ_TOKCHECK_DIR:-/tmp/sparq-tokcheck}"
mkdir -p "$work"

need_apt=()
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
[ -f /usr/share/unicode/UnicodeData.txt ] || need_apt+=(unicode-data)
[ -f /usr/include/nlohmann/json.hpp ] || need_apt+=(nlohmann-json3-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

# Pinned versions: the references must not move under the test data.
pkgs=(gpt-3-encoder@1.1.4 js-tiktoken@1.0.21 llama3-tokenizer-js@1.2.0)
if [ ! -f "$work/node_modules/llama3-tokenizer-js/package.json" ] || [ ! -f "$work/node_modules/js-tiktoken/package.json" ] \
   || [ ! -f "$work/node_modules/gpt-3-encoder/package.json" ]; then
  (cd "$work" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund "${pkgs[@]}" >/dev/null)
fi

if [ "${1:-}" = "--write-testdata" ]; then
  shift
  exec node "$root/scripts/check-tokenizers.mjs" --pkgs "$work" --write-testdata "$root/tests/data/tokenizers" \
    --count 400 --seed 7 "$@"
fi

driver="$work/tokenize-cases"
if [ ! -x "$driver" ] || [ -n "$(find "$root/include" "$root/scripts/tokenize-cases.cpp" -newer "$driver" -print -quit)" ]; then
  echo "building $driver"
  "${CXX:-g++}" -std=c++20 -O2 -I"$root/include" "$root/scripts/tokenize-cases.cpp" -o "$driver"
fi
node "$root/scripts/check-tokenizers.mjs" --pkgs "$work" --driver "$driver" --work "$work" --count 5000 "$@"
