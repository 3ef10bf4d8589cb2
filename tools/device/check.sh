#!/usr/bin/env bash
# The GPU check, run on a GPU host (x86-64, one H100/H200, no network) from a build made on a
# CPU-only host and carried over (`cmake --preset cuda && cmake --build --preset cuda`: nvcc
# targets sm_80 and sm_90 without a GPU); nothing compiles here.
#   tools/device/check.sh [BUILD_DIR]   (default build/cuda); results go to $OUT (default ./out)
# Writes: device.json (boreas info --json: driver, runtime, devices), gpu-tests.log and
# gpu-tests.xml (ctest -L gpu: every CUDA kernel against the CPU kernel), summary.txt.
# Exit status: ctest's (0 when every gpu test passed).
set -uo pipefail
build=${1:-build/cuda}
out=${OUT:-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[[ -x $build/boreas ]] || { echo "check.sh: no boreas binary in $build (build the cuda preset first)" >&2; exit 2; }
{
    echo "host: $(hostname), $(nproc) cores, $(date -u +%FT%TZ)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
} >"$out/summary.txt" 2>&1
"$build/boreas" info --json >"$out/device.json" 2>>"$out/summary.txt"
timeout 300 ctest --test-dir "$build" -L gpu --output-on-failure --output-junit "$out/gpu-tests.xml" \
    >"$out/gpu-tests.log" 2>&1
status=$?
tail -n 5 "$out/gpu-tests.log" >>"$out/summary.txt"
cat "$out/summary.txt"
exit $status
