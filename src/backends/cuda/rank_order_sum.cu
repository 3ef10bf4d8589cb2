#include "rank_order_sum.hpp"

namespace boreas::backends::cuda {

namespace {

__global__ void sum_in_rank_order(const float* blocks, int ranks, std::int64_t n, float* out) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        float sum = blocks[i];
        for (int r = 1; r < ranks; ++r) sum += blocks[r * n + i];
        out[i] = sum;
    }
}

}  // namespace

gpu::Status launch_sum_in_rank_order(const float* blocks, int ranks, std::int64_t n, float* out,
                                     gpu::Stream stream) {
    const int threads = 256;
    const std::int64_t wanted = (n + threads - 1) / threads;
    const int grid = static_cast<int>(wanted < 4096 ? wanted : 4096);
    sum_in_rank_order<<<grid, threads, 0, stream>>>(blocks, ranks, n, out);
    return gpu::last_launch_status();
}

}  // namespace boreas::backends::cuda
