#!/usr/bin/env bash
# The CUDA backend names each vendor API in one portability header only, so that it builds for
# HIP by a flag (issue 20): the runtime (cuda*/hip*: cudaMalloc, hipStream_t, ...) in
# gpu_runtime.hpp, cuBLASLt/hipBLASLt in gpu_blas.hpp, NVTX/roctx ranges in gpu_ranges.hpp. Fails
# on any such name in code (comments aside) elsewhere in the backend's sources and headers.
# Argument: the source folder.
set -euo pipefail
src=$1
found=0
check() {  # check FILE PATTERN HEADER
    local file=$1 pattern=$2 header=$3 hits
    [[ $(basename "$file") == "$header" ]] && return 0
    if hits=$(sed -e 's://.*$::' "$file" | grep -nE "$pattern"); then
        echo "FAIL: $file names an API of $header outside it:"
        echo "$hits"
        found=1
    fi
}
while IFS= read -r file; do
    check "$file" '\b(cuda|hip)[A-Z][A-Za-z_]*\b' gpu_runtime.hpp
    check "$file" '\b(cublas|hipblas|CUBLAS|HIPBLAS)[A-Za-z_]*\b' gpu_blas.hpp
    check "$file" '\b(nvtx|roctx)[A-Za-z_]*\b' gpu_ranges.hpp
done < <(find "$src/src/backends/cuda" "$src/include/boreas/backends/cuda" -type f \
             \( -name '*.cu' -o -name '*.cpp' -o -name '*.hpp' \))
exit $found
