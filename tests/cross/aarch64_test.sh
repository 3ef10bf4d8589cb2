#!/usr/bin/env bash
# Boreas cross-built for aarch64 (Debian's cross toolchain, arm64 libraries through multiarch and
# /opt/boreas/arm64) and tested under qemu-user, as NVIDIA Grace / Neoverse hosts run it (the
# generic kernel path): every reference test, the kernels' tests, the unit tests of the parsers
# and data stack, and the fuzz corpora. Not here, for time under emulation: test_model and
# test_train (minutes each under qemu; the reference tests cover the forward and the gradients
# against anemoi), benchmarks and the command-line scripts.
# Arguments: the source folder, the build folder to use.
# Exit 77 (ctest: skipped) where the toolchain, qemu or the arm64 libraries are missing.
set -euo pipefail
src=$1
build=$2
prefix=/opt/boreas/arm64
missing=()
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=("aarch64-linux-gnu-g++ (crossbuild-essential-arm64)")
command -v qemu-aarch64 >/dev/null || missing+=("qemu-aarch64 (qemu-user)")
for lib in libopenblas.so libfmt.so libgtest.a libeccodes.so libzip.so libblosc.so libzstd.so \
    liblz4.so libz.so libcrypto.so; do
    [[ -e /usr/lib/aarch64-linux-gnu/$lib ]] || missing+=("/usr/lib/aarch64-linux-gnu/$lib")
done
for lib in libnetcdf.so libyaml-cpp.so; do
    [[ -e $prefix/usr/lib/aarch64-linux-gnu/$lib ]] || missing+=("$prefix/usr/lib/aarch64-linux-gnu/$lib")
done
[[ -e /lib/ld-linux-aarch64.so.1 ]] || missing+=("/lib/ld-linux-aarch64.so.1 (libc6:arm64)")
if ((${#missing[@]})); then
    echo "SKIPPED: the aarch64 cross build needs ${missing[*]}: scripts/setup.sh installs them (as root)"
    exit 77
fi

kernels=(test_backward test_graph_attention test_dense test_layout)
units=(test_core test_io test_dataset test_grids test_graphs)
references=(test_dataset_reference test_graphs_reference test_normaliser test_model_reference
            test_train_reference test_checkpoint test_forecast)
fuzz=(fuzz_checkpoint fuzz_forecast_input fuzz_zarr)

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" -DBOREAS_ARM64_PREFIX="$prefix" \
    -DBOREAS_ENABLE_MICROBENCH=OFF -DBOREAS_ENABLE_MPI=OFF -DBOREAS_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build "$build" -j 2 --target "${kernels[@]}" "${units[@]}" "${references[@]}" \
    "${fuzz[@]/%/_replay}"
readelf -h "$build/tests/test_model_reference" | grep -q "AArch64" ||
    { echo "FAIL: test_model_reference is not an aarch64 binary"; exit 1; }

# Every reference test the build registers: one that this script did not build fails here as
# "Not Run", so a new reference test cannot be left out unnoticed.
ctest --test-dir "$build" -L reference --output-on-failure --timeout 900
names=$(IFS='|'; echo "${kernels[*]}|${units[*]}")
corpora=$(IFS='|'; echo "${fuzz[*]}")
ctest --test-dir "$build" -R "^((${names})(@generic)?|(${corpora})_corpus)$" --output-on-failure \
    --timeout 900
