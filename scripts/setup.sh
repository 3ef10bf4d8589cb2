#!/usr/bin/env bash
# Installs Boreas' build and test dependencies from Debian bookworm packages (idempotent; needs root).
# Nothing is downloaded at configure or build time: every dependency comes from here.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev libopenblas-openmp-dev
  libnanoflann-dev libeccodes-dev libeccodes-data libzip-dev libnetcdf-dev
  libblosc-dev libzstd-dev liblz4-dev zlib1g-dev libssl-dev
  libopenmpi-dev openmpi-bin
  python3 python3-jsonschema
  # ROCm 5.2's HIP compiler: the GPU kernels built for AMD GPUs (tests/backends/hip_compile_test.sh)
  hipcc
)

# The packages among the arguments that are not installed, one per line.
not_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

mapfile -t missing < <(not_installed "${packages[@]}")

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root or install them yourself" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The aarch64 cross build, its kernel, unit and reference tests run under qemu-user
# (tests/cross/aarch64_test.sh): Debian's cross toolchain, qemu, and the arm64 libraries the
# tests link, through multiarch (the architecture is added once; nothing of the host's is
# replaced).
cross=(crossbuild-essential-arm64 qemu-user
       libopenblas-dev:arm64 libfmt-dev:arm64 libgtest-dev:arm64
       libeccodes-dev:arm64 libzip-dev:arm64 libblosc-dev:arm64 libzstd-dev:arm64
       liblz4-dev:arm64 zlib1g-dev:arm64 libssl-dev:arm64 libnetcdf19:arm64 libyaml-cpp0.7:arm64)
mapfile -t cross_missing < <(not_installed "${cross[@]}")
if ((${#cross_missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: the aarch64 cross test will be skipped (missing ${cross_missing[*]}; run as root)" >&2
  else
    echo "setup.sh: installing ${cross_missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      dpkg --add-architecture arm64
    fi
    apt-get update -qq
    # The toolchain with recommends (the cross compilers bring their C library that way), the
    # arm64 libraries without. An arm64 library must have the same version as the host's copy,
    # so apt may upgrade a host package; it never removes one.
    apt-get install -y -qq --no-remove "${cross[@]:0:2}" >/dev/null
    apt-get install -y -qq --no-remove --no-install-recommends "${cross[@]:2}" >/dev/null
  fi
fi

# libnetcdf-dev and libyaml-cpp-dev are not Multi-Arch: same (their arm64 packages would
# replace the host's), so their arm64 files are unpacked, with the runtime libraries they link
# to, into a prefix of their own that only the cross build reads (cmake/aarch64-linux-gnu.cmake).
# The runtime libraries themselves came through multiarch above, for qemu.
arm64_prefix=/opt/boreas/arm64
arm64_unpacked=(libnetcdf-dev libnetcdf19 libyaml-cpp-dev libyaml-cpp0.7)
arm64_stamp=$(for p in "${arm64_unpacked[@]}"; do
  dpkg-query -W -f='${Package}:${Architecture} ${Version}\n' "$p:arm64" 2>/dev/null || true
done)
if [[ $(id -u) -eq 0 && -n $arm64_stamp && "$(cat "$arm64_prefix/.unpacked" 2>/dev/null)" != "$arm64_stamp" ]]; then
  echo "setup.sh: unpacking ${arm64_unpacked[*]} (arm64) into $arm64_prefix" >&2
  work=$(mktemp -d)
  chown _apt "$work" 2>/dev/null || true
  (cd "$work" && apt-get download -qq "${arm64_unpacked[@]/%/:arm64}")
  mkdir -p "$work/root"
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  printf '%s\n' "$arm64_stamp" >"$work/root/.unpacked"
  rm -rf "$arm64_prefix" && mkdir -p "$(dirname "$arm64_prefix")" && mv "$work/root" "$arm64_prefix"
  rm -rf "$work"
fi

# Prefer the OpenMP build of OpenBLAS so BLAS threads and Boreas' OpenMP threads share one pool.
if [[ $(id -u) -eq 0 ]] && command -v update-alternatives >/dev/null; then
  lib=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
  [[ -e $lib ]] && update-alternatives --set libblas.so.3-x86_64-linux-gnu "$lib" >/dev/null 2>&1 || true
fi
echo "setup.sh: dependencies present" >&2
