#!/usr/bin/env bash
# The CPU kernels cross-built for aarch64 (Debian's cross toolchain, arm64 libraries through
# multiarch) and their tests run under qemu-user: the generic path as NVIDIA Grace / Neoverse
# hosts run it. Arguments: the source folder, the build folder to use.
# Exit 77 (ctest: skipped) where the toolchain, qemu or the arm64 libraries are missing.
set -euo pipefail
src=$1
build=$2
missing=()
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=("aarch64-linux-gnu-g++ (crossbuild-essential-arm64)")
command -v qemu-aarch64 >/dev/null || missing+=("qemu-aarch64 (qemu-user)")
for lib in libopenblas.so libfmt.so libgtest.a; do
    [[ -e /usr/lib/aarch64-linux-gnu/$lib ]] || missing+=("/usr/lib/aarch64-linux-gnu/$lib")
done
if ((${#missing[@]})); then
    echo "SKIPPED: the aarch64 cross build needs ${missing[*]}: scripts/setup.sh installs them (as root)"
    exit 77
fi
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" -DBOREAS_KERNELS_ONLY=ON \
    -DBOREAS_ENABLE_MICROBENCH=OFF -DBOREAS_ENABLE_MPI=OFF -DBOREAS_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build "$build" -j 2
readelf -h "$build/tests/test_dense" | grep -q "AArch64" || { echo "FAIL: test_dense is not an aarch64 binary"; exit 1; }
# Each test binary once, whole, on the kernel path the (emulated) CPU runs.
ctest --test-dir "$build" -R '@' --output-on-failure --timeout 900
