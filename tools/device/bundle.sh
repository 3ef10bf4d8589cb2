#!/usr/bin/env bash
# Packs what tools/device/check.sh runs on a GPU host into one archive that travels with the
# working tree (the device tool's `carry`): the GPU host is another image (no Debian libraries,
# no network), so the binaries go with the shared libraries they were linked against here,
# except glibc's (the host's is as new or newer) and the NVIDIA driver's and CUDA's (the host has
# CUDA 13: libcudart, libcublasLt; check.sh finds them there).
#   tools/device/bundle.sh [BUILD_DIR]   (default build/cuda) -> BUILD_DIR/../gpu-bundle.tar.xz
# Holds bin/ (boreas and the gpu test binaries), lib/ and share/eccodes (definitions, samples).
# Size checked against the device tool's 64 MiB.
set -euo pipefail
build=${1:-build/cuda}
archive=$(dirname "$build")/gpu-bundle.tar.xz
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gpu-bundle/bin" "$stage/gpu-bundle/lib"
binaries=("$build/boreas" "$build/tests/test_gpu_graph_attention" "$build/tests/test_gpu_kernels"
          "$build/tests/test_model_reference" "$build/tests/test_train_reference")
for binary in "${binaries[@]}"; do
    [[ -x $binary ]] || { echo "bundle.sh: $binary missing (cmake --build --preset cuda)" >&2; exit 2; }
    cp "$binary" "$stage/gpu-bundle/bin/"
done
# Libraries that stay the host's: glibc, the driver, CUDA's runtime and libraries.
host_owned='^(linux-vdso|ld-linux|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libcuda|libcudart|libcublas|libcublasLt|libnvrtc|libnvJitLink)\.so'
ldd "${binaries[@]}" | awk '/=> \//{print $1, $3}' | sort -u | while read -r name path; do
    [[ $name =~ $host_owned ]] && continue
    cp -L "$path" "$stage/gpu-bundle/lib/$name"
done
# ecCodes' definitions and samples: reduced Gaussian grids (N320) take their row lengths from a
# GRIB sample.
eccodes=${ECCODES_DIR:-/usr/share/eccodes}
mkdir -p "$stage/gpu-bundle/share/eccodes"
cp -r "$eccodes/definitions" "$eccodes/samples" "$stage/gpu-bundle/share/eccodes/"
tar -C "$stage" -cJf "$archive" gpu-bundle
size=$(stat -c %s "$archive")
echo "bundle.sh: $archive, $((size / 1048576)) MiB ($(ls "$stage/gpu-bundle/lib" | wc -l) libraries)"
((size < 48 * 1048576)) || { echo "bundle.sh: over 48 MiB: the working tree and the bundle must stay under 64 MiB" >&2; exit 1; }
