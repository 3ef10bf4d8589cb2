// The CUDA kernels' host side: parameter checks as one-line errors, then the launch.
#include "boreas/backends/cuda/kernels.hpp"

#include "gpu_check.hpp"
#include "graph_attention.hpp"

namespace boreas::kernels::cuda {

void graph_attention(const GraphAttentionParams& p, void* stream) {
    const bool bf16 = p.k_bf16 != nullptr;
    BOREAS_CHECK((bf16 ? p.v_bf16 != nullptr : (p.k && p.v)) && p.q && p.out && p.dst_offsets &&
                     (p.src || p.n_dst == 0) && p.head_dim > 0 && p.heads > 0,
                 "cuda graph_attention: invalid parameters");
    BOREAS_CHECK(p.head_dim <= graph_attention_max_head_dim(),
                 "cuda graph_attention: head_dim {} above the kernel's {}", p.head_dim,
                 graph_attention_max_head_dim());
    BOREAS_CHECK(p.edge_dim == 0 || (p.edge_features && p.edge_weight),
                 "cuda graph_attention: edge_dim {} needs edge features and an edge weight",
                 p.edge_dim);
    BOREAS_GPU_CHECK(launch_graph_attention(p, static_cast<gpu::Stream>(stream)));
}

}  // namespace boreas::kernels::cuda
