#!/usr/bin/env bash
# Builds cml (release) and runs `cml demo`. Extra arguments go to `cml demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target cml
exec build/release/apps/cml/cml demo "$@"
