#!/usr/bin/env bash
# The GPU check, run on a GPU host (x86-64, one H100/H200, no network) from a build made on a
# CPU-only host and carried over (`cmake --preset cuda && cmake --build --preset cuda`: nvcc
# targets sm_80 and sm_90 without a GPU); nothing compiles here.
#   tools/device/check.sh [BUILD_DIR]   (default build/cuda); results go to $OUT (default ./out)
# Writes, in about 8 minutes at most (each step has its own time limit and the script goes on
# past a failed or timed-out step):
#   device.json        boreas info --json: driver, runtime, devices
#   gpu-tests.log/.xml ctest -L gpu: every CUDA kernel against the CPU kernel, and the reference
#                      tests (anemoi fixtures, forward and gradients) with the model on the GPU
#   roof.json          boreas roof --device cuda: cuBLASLt fp32/bf16 GEMM, device bandwidth
#   bench-*.json/.log  boreas bench forward (o96, aifs-n320; fp32 and bf16) and train (o96,
#                      batch 8) on cuda, with per-phase roofline against roof.json's numbers
#   summary.txt        one line per step: its exit status and seconds, and the medians
# Exit status: the gpu tests' (0 when every one passed).
set -uo pipefail
build=${1:-build/cuda}
out=${OUT:-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
boreas=$build/boreas
[[ -x $boreas ]] || { echo "check.sh: no boreas binary in $build (build the cuda preset first)" >&2; exit 2; }
summary=$out/summary.txt
{
    echo "host: $(hostname), $(nproc) cores, $(date -u +%FT%TZ)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
} >"$summary" 2>&1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

step() {  # step NAME LIMIT_SECONDS COMMAND...: runs it, logs to NAME.log, records status and time
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local status=$?
    echo "$name: exit $status in $((SECONDS - start)) s$([[ $status == 124 ]] && echo " (time limit $limit s)")" >>"$summary"
    return $status
}

step device 30 "$boreas" info --json && cp "$out/device.log" "$out/device.json"
step gpu-tests 200 ctest --test-dir "$build" -L gpu --output-on-failure \
    --output-junit "$out/gpu-tests.xml"
tests=$?
tail -n 4 "$out/gpu-tests.log" >>"$summary"
step roof 40 "$boreas" roof --device cuda --json && cp "$out/roof.log" "$out/roof.json"

bench() {  # bench NAME LIMIT ARGS...
    local name=$1 limit=$2
    shift 2
    step "bench-$name" "$limit" "$boreas" bench "$@" --device cuda --json "$out/bench-$name.json" \
        --timeout $((limit / 2))
    [[ -f $out/bench-$name.json ]] && command -v python3 >/dev/null &&
        python3 - "$out/bench-$name.json" >>"$summary" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
device = d["context"].get("device", {})
for r in d["results"]:
    if r["phase"] == "total":
        print(f'  {r["name"]}: median {r["stats"]["median"]:.4f} s, '
              f'{100 * r["fraction_of_roof"]:.0f} % of roof, '
              f'peak device memory {device.get("peak_memory_bytes", 0) / 1e9:.2f} GB')
PY
}
bench o96-fp32 60 forward --config o96 --warmup 1 --repetitions 5
bench o96-bf16 60 forward --config o96 --precision bf16 --warmup 1 --repetitions 5
bench n320-bf16 100 forward --config aifs-n320 --precision bf16 --warmup 1 --repetitions 3
bench n320-fp32 100 forward --config aifs-n320 --warmup 1 --repetitions 3
bench o96-train 80 train --config o96 --batch 8 --warmup 1 --repetitions 2
cat "$summary"
exit $tests
