#!/usr/bin/env bash
# The GPU check, run on a GPU host (x86-64, one H100/H200, another image than the build host, no
# network) from the repository root of a copy of the tree. Nothing compiles there: on a CPU host
# first
#   cmake --preset cuda && cmake --build --preset cuda && tools/device/bundle.sh
# (nvcc targets sm_80 and sm_90 without a GPU), and carry build/gpu-bundle.tar.xz over (the
# binaries and the shared libraries they need; CUDA's own come from the GPU host). Then
#   OUT=folder tools/device/check.sh [build/gpu-bundle.tar.xz]
# Writes $OUT/summary.txt and $OUT/check-results.tar.gz (the device tool brings back at most 8
# files), in about 8 minutes at most (each step has its own time limit; a failed or timed-out
# step does not stop the others). The archive holds:
#   device.json         boreas info --json: driver, runtime, devices
#   gpu-*.xml, gpu-tests.log   the gpu tests: every CUDA kernel against the CPU kernel, and the
#                       reference tests (anemoi fixtures: forward, bf16, gradients, rollout) with
#                       the model on the GPU (BOREAS_TEST_DEVICE=cuda)
#   roof.json           boreas roof --device cuda: cuBLASLt fp32/bf16 GEMM, device bandwidth
#   bench-*.json        boreas bench forward (o96, aifs-n320; fp32 and bf16) and train (o96,
#                       batch 8) on cuda, per-phase roofline against the GPU roof
#   summary.txt         each step's exit status and seconds, the tests' tails, each bench's
#                       median, fraction of the roof and peak device memory
# Exit status: 0 when every gpu test passed.
set -uo pipefail
bundle=${1:-build/gpu-bundle.tar.xz}
final=${OUT:-out}
mkdir -p "$final"
final=$(cd "$final" && pwd)
out=$(mktemp -d)  # every result, archived into $final at the end
repo=$(pwd)
[[ -f $bundle ]] || { echo "check.sh: no $bundle (tools/device/bundle.sh on the build host)" >&2; exit 2; }
work=$(mktemp -d)
# xz where the host has it, else Python's tarfile (lzma), which every image with python3 has.
if command -v xz >/dev/null; then
    tar -C "$work" -xJf "$bundle"
else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle" "$work"
fi || { echo "check.sh: cannot unpack $bundle" >&2; exit 2; }
bin=$work/gpu-bundle/bin
# CUDA's libraries from this host: the toolkit's, else a Python package's (PyTorch's wheels).
cuda_libs=""
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib; do
    [[ -e $dir/libcublasLt.so.13 ]] && cuda_libs+=":$dir"
done
if [[ -z $cuda_libs ]]; then
    found=$(find /usr /opt -name 'libcublasLt.so.13' -print -quit 2>/dev/null)
    [[ -n $found ]] && cuda_libs+=":$(dirname "$found")"
    found=$(find /usr /opt -name 'libcudart.so.13' -print -quit 2>/dev/null)
    [[ -n $found ]] && cuda_libs+=":$(dirname "$found")"
fi
export LD_LIBRARY_PATH=$work/gpu-bundle/lib$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export ECCODES_DEFINITION_PATH=$work/gpu-bundle/share/eccodes/definitions
export ECCODES_SAMPLES_PATH=$work/gpu-bundle/share/eccodes/samples
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
export BOREAS_TEST_DATA=$repo/tests/data
summary=$out/summary.txt
{
    echo "host: $(hostname), $(nproc) cores, $(date -u +%FT%TZ)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    echo "CUDA libraries from:${cuda_libs:- (none found: the binaries will not start)}"
    ldd "$bin/boreas" | grep "not found"
} >"$summary" 2>&1

step() {  # step NAME LIMIT_SECONDS COMMAND...: runs it, logs to NAME.log, records status and time
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local status=$?
    echo "$name: exit $status in $((SECONDS - start)) s$([[ $status == 124 ]] && echo " (time limit $limit s)")" >>"$summary"
    return $status
}

step device 30 "$bin/boreas" info --json && cp "$out/device.log" "$out/device.json"
tests=0
gtest() {  # gtest NAME LIMIT BINARY [ENV=VALUE...]: one gpu test binary, XML to gpu-NAME.xml
    local name=$1 limit=$2 binary=$3
    shift 3
    step "gpu-$name" "$limit" env "$@" "$bin/$binary" --gtest_output="xml:$out/gpu-$name.xml"
    local status=$?
    grep -E "^\[  (PASSED|FAILED) |SKIPPED" "$out/gpu-$name.log" | head -n 12 >>"$summary"
    ((status == 0)) || tests=1
}
gtest graph-attention 30 test_gpu_graph_attention
gtest kernels 40 test_gpu_kernels
gtest model-reference 60 test_model_reference BOREAS_TEST_DEVICE=cuda
gtest train-reference 90 test_train_reference BOREAS_TEST_DEVICE=cuda
cat "$out"/gpu-*.log >"$out/gpu-tests.log" 2>/dev/null
step roof 30 "$bin/boreas" roof --device cuda --json && cp "$out/roof.log" "$out/roof.json"

bench() {  # bench NAME LIMIT ARGS...
    local name=$1 limit=$2
    shift 2
    step "bench-$name" "$limit" "$bin/boreas" bench "$@" --device cuda \
        --json "$out/bench-$name.json" --timeout $((limit / 2))
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
calls = device.get("kernel_calls", {})
top = sorted(calls.items(), key=lambda kv: -kv[1]["seconds"])[:6]
print("  kernels (all runs): " + ", ".join(
    f'{name} {c["seconds"]:.2f} s/{c["calls"]} calls/{c["staged_bytes"] / 1e9:.2f} GB staged'
    for name, c in top))
PY
}
bench o96-fp32 45 forward --config o96 --warmup 1 --repetitions 5
bench o96-bf16 45 forward --config o96 --precision bf16 --warmup 1 --repetitions 5
bench n320-bf16 100 forward --config aifs-n320 --precision bf16 --warmup 1 --repetitions 3
bench n320-fp32 90 forward --config aifs-n320 --warmup 1 --repetitions 3
bench o96-train 60 train --config o96 --batch 8 --warmup 1 --repetitions 2
rm -rf "$work"
tar -C "$out" -czf "$final/check-results.tar.gz" .
cp "$summary" "$final/summary.txt"
cat "$summary"
exit $tests
