# Cross build for aarch64 (NVIDIA Grace, Neoverse) with Debian's cross toolchain
# (crossbuild-essential-arm64), against arm64 libraries installed through multiarch
# (dpkg --add-architecture arm64) and, for the two -dev packages that are not Multi-Arch: same
# (libnetcdf-dev, libyaml-cpp-dev), unpacked into BOREAS_ARM64_PREFIX (scripts/setup.sh does
# both). Test binaries run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR):
# tests/cross/aarch64_test.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# No -L prefix for qemu: the guest's dynamic loader and C library then both come from the arm64
# multiarch libc6 (/lib/ld-linux-aarch64.so.1), which the arm64 libraries pulled in. With
# -L /usr/aarch64-linux-gnu the loader came from the cross toolchain's libc (2.36-8cross1) and
# libc.so.6 from multiarch (2.36-9+deb12u14): a mismatched pair whose pthread_create never
# returned, so every test that started a thread hung.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
# Libraries and CMake packages from the arm64 multiarch folders and the unpacked prefix (and the
# architecture-independent headers such as nlohmann/json); programs from the host.
set(BOREAS_ARM64_PREFIX /opt/boreas/arm64 CACHE PATH
    "arm64 files of the -dev packages that multiarch cannot install (scripts/setup.sh)")
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${BOREAS_ARM64_PREFIX})
# pkg-config reads the arm64 .pc files only; their -L/usr/lib/aarch64-linux-gnu is searched under
# the roots above too, which finds libnetcdf.so in the prefix.
set(ENV{PKG_CONFIG_LIBDIR}
    "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig:${BOREAS_ARM64_PREFIX}/usr/lib/aarch64-linux-gnu/pkgconfig")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
