#!/usr/bin/env bash
# Builds and runs the whole test suite twice: release (gcc) and ASan+UBSan (clang, with libFuzzer
# smoke runs of every fuzz target). Usage: scripts/test.sh [release|asan ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
presets=("$@")
((${#presets[@]})) || presets=(release asan)
jobs=$(nproc)
for p in "${presets[@]}"; do
  echo "=== $p build" >&2
  cmake --preset "$p" >/dev/null
  cmake --build --preset "$p" -j "$jobs"
  echo "=== $p tests" >&2
  ctest --preset "$p" -j "$jobs"
done
