// The graph-transformer attention (spec/model.md 3.3) on the GPU: one warp per (destination row,
// head), its incoming edges (destination-sorted CSR) in one pass with an online softmax, so
// neither the per-edge scores nor a per-edge x channel tensor exist, and no atomics: each warp
// owns its output row segment. Same parameters as kernels::cpu::graph_attention, device
// pointers throughout.
//
//   e_ij = W_e f_ij + b_e (per head: its d rows of W_e), computed per edge in registers
//   s_ij = q_i . (k_j + e_ij) / sqrt(d)
//   out_i = sum_j softmax_j(s_ij) (v_j + e_ij), lse_i = log sum_j exp(s_ij)
//   no incoming edge: out_i = 0, lse_i = 0 (PyG's scatter-sum, as the CPU kernel)
#include <cstdint>

#include "boreas/kernels/kernels.hpp"
#include "graph_attention.hpp"

namespace boreas::kernels::cuda {
namespace {

constexpr int kWarp = 32;
// Channels per lane held in registers: head_dim <= 32 * kMaxPerLane (256).
constexpr int kMaxPerLane = 8;

__device__ inline float widen(float v) {
    return v;
}
__device__ inline float widen(std::uint16_t v) {
    return __uint_as_float(static_cast<unsigned>(v) << 16);
}

__device__ inline float warp_sum(float v) {
    for (int offset = kWarp / 2; offset > 0; offset /= 2) v += gpu::shfl_xor(v, offset);
    return v;
}

template <typename T>
__global__ void graph_attention_kernel(GraphAttentionParams p, const T* k, const T* v,
                                       std::int64_t q_stride, std::int64_t kv_stride,
                                       std::int64_t out_stride, float scale) {
    const std::int64_t warp =
        (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int lane = threadIdx.x % kWarp;
    const std::int64_t rows = p.batch * p.n_dst;
    if (warp >= rows * p.heads) return;
    const std::int64_t row = warp / p.heads, h = warp % p.heads;
    const std::int64_t b = row / p.n_dst, j = row % p.n_dst;
    const std::int64_t d = p.head_dim, de = p.edge_dim;
    const float* q = p.q + row * q_stride + h * d;
    float* out = p.out + row * out_stride + h * d;
    const std::int64_t begin = p.dst_offsets[j], end = p.dst_offsets[j + 1];
    if (begin == end) {
        for (std::int64_t c = lane; c < d; c += kWarp) out[c] = 0.0f;
        if (p.lse && lane == 0) p.lse[row * p.heads + h] = 0.0f;
        return;
    }
    float q_reg[kMaxPerLane], acc[kMaxPerLane];
    for (int i = 0; i < kMaxPerLane; ++i) {
        const std::int64_t c = lane + static_cast<std::int64_t>(i) * kWarp;
        q_reg[i] = c < d ? q[c] : 0.0f;
        acc[i] = 0.0f;
    }
    const T* k_base = k + b * p.n_src * kv_stride + h * d;
    const T* v_base = v + b * p.n_src * kv_stride + h * d;
    float running_max = -INFINITY, running_sum = 0.0f;
    for (std::int64_t e = begin; e < end; ++e) {
        const std::int64_t s = p.src[e];
        const T* key = k_base + s * kv_stride;
        const T* value = v_base + s * kv_stride;
        const float* f = de ? p.edge_features + e * de : nullptr;
        float edge[kMaxPerLane];
        float partial = 0.0f;
        for (int i = 0; i < kMaxPerLane; ++i) {
            const std::int64_t c = lane + static_cast<std::int64_t>(i) * kWarp;
            if (c >= d) {
                edge[i] = 0.0f;
                continue;
            }
            float projected = 0.0f;
            if (de) {
                const float* w = p.edge_weight + (h * d + c) * de;
                for (std::int64_t t = 0; t < de; ++t) projected = fmaf(w[t], f[t], projected);
            }
            if (p.edge_bias) projected += p.edge_bias[h * d + c];
            edge[i] = projected;
            partial = fmaf(q_reg[i], widen(key[c]) + projected, partial);
        }
        const float score = warp_sum(partial) * scale;
        const float new_max = fmaxf(running_max, score);
        const float rescale = expf(running_max - new_max);  // 0 on the first edge
        const float weight = expf(score - new_max);
        running_sum = running_sum * rescale + weight;
        for (int i = 0; i < kMaxPerLane; ++i) {
            const std::int64_t c = lane + static_cast<std::int64_t>(i) * kWarp;
            if (c < d) acc[i] = acc[i] * rescale + weight * (widen(value[c]) + edge[i]);
        }
        running_max = new_max;
    }
    const float inverse = 1.0f / running_sum;
    for (int i = 0; i < kMaxPerLane; ++i) {
        const std::int64_t c = lane + static_cast<std::int64_t>(i) * kWarp;
        if (c < d) out[c] = acc[i] * inverse;
    }
    if (p.lse && lane == 0) p.lse[row * p.heads + h] = running_max + logf(running_sum);
}

}  // namespace

int graph_attention_max_head_dim() {
    return kWarp * kMaxPerLane;
}

gpu::Status launch_graph_attention(const GraphAttentionParams& p, gpu::Stream stream) {
    const std::int64_t width = p.heads * p.head_dim;
    const std::int64_t q_stride = p.q_stride ? p.q_stride : width;
    const std::int64_t kv_stride = p.kv_stride ? p.kv_stride : width;
    const std::int64_t out_stride = p.out_stride ? p.out_stride : width;
    const float scale = 1.0f / sqrtf(static_cast<float>(p.head_dim));
    const std::int64_t warps = p.batch * p.n_dst * p.heads;
    if (warps == 0) return gpu::kSuccess;
    constexpr int kThreads = 256;  // 8 warps per block
    const std::int64_t blocks = (warps * kWarp + kThreads - 1) / kThreads;
    if (p.k_bf16)
        graph_attention_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
            p, p.k_bf16, p.v_bf16, q_stride, kv_stride, out_stride, scale);
    else
        graph_attention_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
            p, p.k, p.v, q_stride, kv_stride, out_stride, scale);
    return gpu::last_launch_status();
}

}  // namespace boreas::kernels::cuda
