#!/usr/bin/env bash
# The CUDA backend names the GPU runtime only in src/backends/cuda/gpu_runtime.hpp, so that it
# builds for HIP by a flag (issue 20): fails on any cuda*/hip* runtime name (cudaMalloc,
# hipStream_t, ...) in code (comments aside) elsewhere in the backend's sources and headers.
# Argument: the source folder.
set -euo pipefail
src=$1
found=0
while IFS= read -r file; do
    [[ $(basename "$file") == gpu_runtime.hpp ]] && continue
    # Code only: drop // comments, then look for runtime names.
    if hits=$(sed -e 's://.*$::' "$file" | grep -nE '\b(cuda|hip)[A-Z][A-Za-z_]*\b'); then
        echo "FAIL: $file names the GPU runtime outside gpu_runtime.hpp:"
        echo "$hits"
        found=1
    fi
done < <(find "$src/src/backends/cuda" "$src/include/boreas/backends/cuda" -type f \
             \( -name '*.cu' -o -name '*.cpp' -o -name '*.hpp' \))
exit $found
