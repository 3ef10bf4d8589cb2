#pragma once
// The rank-ordered sum of the NCCL collectives (nccl_collectives.cpp), a CUDA kernel in its own
// translation unit: nvcc compiles it as C++17, the collectives are C++20 host code.
#include <cstdint>

#include "gpu_runtime.hpp"

namespace boreas::backends::cuda {

/// out[i] = blocks[0 n + i] + blocks[1 n + i] + ... + blocks[(ranks - 1) n + i], rank by rank,
/// enqueued on `stream`.
gpu::Status launch_sum_in_rank_order(const float* blocks, int ranks, std::int64_t n, float* out,
                                     gpu::Stream stream);

}  // namespace boreas::backends::cuda
