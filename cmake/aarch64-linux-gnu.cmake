# Cross build for aarch64 (NVIDIA Grace, Neoverse) with Debian's cross toolchain
# (crossbuild-essential-arm64), against arm64 libraries installed through multiarch
# (dpkg --add-architecture arm64; libopenblas-dev:arm64 libfmt-dev:arm64 libgtest-dev:arm64).
# Test binaries run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR): tests/cross/aarch64_test.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# One thread under emulation: qemu-user runs guest threads on the host's cores, and threads that
# spin while they wait (libgomp's barriers, OpenBLAS' idle pool) made a test binary take minutes
# per test on 2 cores. The kernels' threaded paths are exercised by the native tests.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    qemu-aarch64 -L /usr/aarch64-linux-gnu)
# Libraries and CMake packages from the arm64 multiarch folders (and the architecture-independent
# headers such as nlohmann/json); programs from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
