#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU and a CUDA toolkit (CUDAToolkit_ROOT, default
# /usr/local/cuda): builds with -DCML_WITH_CUDA=ON, runs the cuBLAS worker tests, the GroupCover tests
# and the GroupCover benchmark with the worker on the GPU. Results (test log, bench JSON) go to $OUT
# when set, else build/cuda/device-check. Usage: scripts/device_check.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build/cuda/device-check}
mkdir -p "$out"
nvidia-smi -L | tee "$out/gpu.txt"
cmake --preset release -B build/cuda -DCML_WITH_CUDA=ON -DCUDAToolkit_ROOT="${CUDAToolkit_ROOT:-/usr/local/cuda}" >/dev/null
cmake --build build/cuda -j "$(nproc)" --target cml groupcover_cuda_test groupcover_test groupcover_net_test
ctest --test-dir build/cuda -L groupcover -R 'groupcover_(cuda|net)_test|groupcover_test' --output-on-failure \
  | tee "$out/ctest.txt"
bench=(build/cuda/apps/cml/cml bench groupcover --json)
[[ "${1:-}" == --quick ]] && bench+=(--quick)
CML_BENCH_WORKER_CUDA=1 "${bench[@]}" > "$out/bench_groupcover_cuda.json"
echo "device check passed; results in $out" >&2
