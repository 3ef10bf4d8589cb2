#!/usr/bin/env bash
# The GPU backend's device code builds for HIP (AMD MI250X, gfx90a: LUMI) through the portability
# headers: every .cu of src/backends/cuda compiled by hipcc (Debian's ROCm 5.2, scripts/setup.sh).
# The host side (kernels.cpp, cuda_backend.cpp) needs hipBLASLt, which Debian 12 does not
# package: not compiled here (docs/gpu.md). Argument: the source folder. Exit 77 (skipped, with
# the reason) without hipcc.
set -uo pipefail
src=$1
command -v hipcc >/dev/null || { echo "SKIPPED: hipcc not installed (scripts/setup.sh installs it)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for file in "$src"/src/backends/cuda/*.cu; do
    if ! hipcc -x hip --offload-arch=gfx90a -std=c++17 -Wall -Werror -I"$src/include" \
        -c "$file" -o "$work/$(basename "$file").o" >"$work/log" 2>&1; then
        echo "FAIL: $(basename "$file") does not compile for HIP (gfx90a):"
        grep -E "error" "$work/log" | head -n 10
        status=1
    else
        echo "ok: $(basename "$file")"
    fi
done
exit $status
