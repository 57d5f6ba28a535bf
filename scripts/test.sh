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
  # The summary ("N% tests passed, F failed out of T") goes to the log; JUnit XML for CI dashboards.
  ctest --preset "$p" -j "$jobs" --output-junit "$PWD/build/$p/ctest-junit.xml"
done
echo "=== all tests passed: ${presets[*]}" >&2
