#pragma once
// The profiler's range annotations behind one set of names: NVTX (Nsight Systems) on CUDA,
// roctx (rocprof) on HIP. Header-only on CUDA (NVTX 3). Host code.
#if defined(__HIP_PLATFORM_AMD__)
#include <roctracer/roctx.h>
#define BOREAS_GPU_RANGE_PUSH roctxRangePushA
#define BOREAS_GPU_RANGE_POP roctxRangePop
#else
#include <nvtx3/nvToolsExt.h>
#define BOREAS_GPU_RANGE_PUSH nvtxRangePushA
#define BOREAS_GPU_RANGE_POP nvtxRangePop
#endif

namespace boreas::gpu {

inline void range_push(const char* name) {
    BOREAS_GPU_RANGE_PUSH(name);
}
inline void range_pop() {
    BOREAS_GPU_RANGE_POP();
}

}  // namespace boreas::gpu
