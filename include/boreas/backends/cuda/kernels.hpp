#pragma once
/// The CUDA backend's kernels: the parameter structs of boreas/kernels/kernels.hpp with every
/// pointer in device memory, queued on a stream (null: the default stream). Tested against the
/// CPU kernels (ctest label gpu). Built with BOREAS_ENABLE_CUDA.
#include "boreas/kernels/kernels.hpp"

namespace boreas::kernels::cuda {

/// Graph-transformer attention (kernels::cpu::graph_attention's contract): one warp per
/// destination row and head, an online softmax over its incoming edges, no per-edge x channel
/// tensor, no atomics; fp32 or bf16 keys and values; head_dim up to 256. `stream` is a
/// cudaStream_t (hipStream_t under HIP), or null.
void graph_attention(const GraphAttentionParams& p, void* stream = nullptr);

}  // namespace boreas::kernels::cuda
