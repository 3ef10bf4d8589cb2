#pragma once
// The CUDA graph attention's launcher (graph_attention.cu, C++17) for the host wrapper
// (kernels.cpp, C++20), which checks the parameters and turns a failed launch into an error.
#include "boreas/kernels/kernels.hpp"
#include "gpu_runtime.hpp"

namespace boreas::kernels::cuda {

/// The largest head_dim the kernel holds in registers (32 lanes x 8 channels).
int graph_attention_max_head_dim();
/// Queues the kernel on `stream`; the launch's status (parameters checked by the caller).
gpu::Status launch_graph_attention(const GraphAttentionParams& p, gpu::Stream stream);

}  // namespace boreas::kernels::cuda
