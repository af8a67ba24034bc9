#!/usr/bin/env bash
# Installs the Debian packages sparq's build needs, if any are missing (needs root or sudo).
set -euo pipefail
pkgs=(cmake g++ make python3 libxtensor-dev libxsimd-dev xtl-dev catch2 libbenchmark-dev)
# the emulated test legs (scripts/test-emulated.sh): qemu-user, and the aarch64 cross compiler
if [ "${1:-}" = "--emulation" ]; then pkgs+=(qemu-user g++-aarch64-linux-gnu); fi
# the fuzz smoke pass of scripts/test.sh (tests/fuzz, docs/fuzzing.md): clang, and its sanitizer and
# libFuzzer runtimes (libclang-rt-dev, only recommended by clang), unless SPARQ_SKIP_FUZZ=1
if [ "${SPARQ_SKIP_FUZZ:-0}" != "1" ]; then pkgs+=(clang libclang-rt-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "sparq: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
