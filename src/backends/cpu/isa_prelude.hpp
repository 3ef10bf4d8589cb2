#pragma once
// Force-included (-include) first into every kernel source, which is compiled once per
// instruction-set path (src/CMakeLists.txt: BOREAS_KERNEL_ISAS) into its own namespace
// boreas::kernels::cpu::BOREAS_ISA_NS; dispatch.cpp picks one path at run time.
//
// Every system and library header a kernel source uses is included here, *before* the target
// pragma below raises the instruction set. GCC gives a function the target of the point where
// it is defined, so the templates and inline functions of these headers (std::vector's growth,
// std::sort, ...) are compiled for the build's baseline even when a kernel instantiates them.
// Those are emitted as weak symbols that the linker keeps one copy of; had the AVX-512 copy of
// std::vector<float>::_M_default_append won, an AVX2-only CPU would die on it. The kernels' own
// code (namespaced per path, so never merged across paths) is compiled for the path.
// tests/backends/isa_symbols_test.sh checks the objects: no weak symbol outside the path's
// namespace may contain a VEX or EVEX instruction.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <numbers>
#include <numeric>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "blas_threads.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/tensor.hpp"
#include "boreas/kernels/kernels.hpp"
#include "kernel_table.hpp"

#if defined(BOREAS_ISA_AVX512)
// x86-64-v4: AVX-512 F, BW, DQ and VL.
#pragma GCC target("avx2,fma,f16c,bmi2,avx512f,avx512bw,avx512dq,avx512vl")
#elif defined(BOREAS_ISA_AVX2)
// x86-64-v3.
#pragma GCC target("avx2,fma,f16c,bmi2")
#endif
