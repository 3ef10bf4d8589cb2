// Sliding-window self-attention (kernels::cpu::window_attention's contract) on the GPU: one warp
// per (query row, head) walks the keys of its window with an online softmax, channels in
// registers (8 per lane), so no score matrix exists and each warp owns its output row segment.
// A first, simple kernel: every key costs a warp reduction; a flash-style tiled kernel (or
// cuDNN's SDPA with a window) is the faster design, to be measured against this one on a GPU.
// bf16: q, k, v rounded to bf16 and the softmax numerators too before they weight v, sums in
// fp32, as the CPU's bf16 path (up to where the running maximum sits when a numerator is
// rounded).
#include <cstdint>

#include "dense.hpp"

namespace boreas::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kMaxPerLane = 8;

__device__ inline float round_bf16(float v) {
    std::uint32_t u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return v;
    u += 0x7fffu + ((u >> 16) & 1u);
    return __uint_as_float(u & 0xffff0000u);
}

__device__ inline float warp_sum(float v) {
    for (int offset = kWarp / 2; offset > 0; offset /= 2) v += gpu::shfl_xor(v, offset);
    return v;
}

__global__ void window_attention_kernel(WindowAttentionParams p, std::int64_t stride,
                                        std::int64_t out_stride, float scale) {
    const std::int64_t warp =
        (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
    const int lane = threadIdx.x % kWarp;
    const std::int64_t rows = p.batch * p.seq;
    if (warp >= rows * p.heads) return;
    const std::int64_t row = warp / p.heads, h = warp % p.heads;
    const std::int64_t b = row / p.seq, i = row % p.seq;
    const std::int64_t d = p.head_dim;
    const std::int64_t first = i - p.window < 0 ? 0 : i - p.window;
    const std::int64_t last = i + p.window >= p.seq ? p.seq - 1 : i + p.window;
    float q_reg[kMaxPerLane], acc[kMaxPerLane];
    for (int r = 0; r < kMaxPerLane; ++r) {
        const std::int64_t c = lane + static_cast<std::int64_t>(r) * kWarp;
        float v = c < d ? p.q[row * stride + h * d + c] : 0.0f;
        q_reg[r] = p.bf16 ? round_bf16(v) : v;
        acc[r] = 0.0f;
    }
    float running_max = -INFINITY, denominator = 0.0f;
    for (std::int64_t j = first; j <= last; ++j) {
        const std::int64_t key_row = b * p.seq + j;
        const float* k = p.k + key_row * stride + h * d;
        float partial = 0.0f;
        for (int r = 0; r < kMaxPerLane; ++r) {
            const std::int64_t c = lane + static_cast<std::int64_t>(r) * kWarp;
            if (c < d) partial += q_reg[r] * (p.bf16 ? round_bf16(k[c]) : k[c]);
        }
        const float s = warp_sum(partial) * scale;
        const float new_max = s > running_max ? s : running_max;
        const float correction = expf(running_max - new_max);
        float weight = expf(s - new_max);
        denominator = denominator * correction + weight;
        if (p.bf16) weight = round_bf16(weight);
        const float* v = p.v + key_row * stride + h * d;
        for (int r = 0; r < kMaxPerLane; ++r) {
            const std::int64_t c = lane + static_cast<std::int64_t>(r) * kWarp;
            if (c < d) acc[r] = acc[r] * correction + weight * (p.bf16 ? round_bf16(v[c]) : v[c]);
        }
        running_max = new_max;
    }
    float* out = p.out + row * out_stride + h * d;
    for (int r = 0; r < kMaxPerLane; ++r) {
        const std::int64_t c = lane + static_cast<std::int64_t>(r) * kWarp;
        if (c < d) out[c] = acc[r] / denominator;
    }
    if (p.lse && lane == 0) p.lse[row * p.heads + h] = running_max + logf(denominator);
}

}  // namespace

int window_attention_max_head_dim() {
    return kWarp * kMaxPerLane;
}

gpu::Status launch_window_attention(const WindowAttentionParams& p, gpu::Stream stream) {
    const std::int64_t warps = p.batch * p.seq * p.heads;
    if (warps == 0) return gpu::kSuccess;
    const std::int64_t stride = p.stride ? p.stride : p.heads * p.head_dim;
    const std::int64_t out_stride = p.out_stride ? p.out_stride : stride;
    constexpr int kThreads = 256;
    const auto blocks = static_cast<unsigned>((warps * kWarp + kThreads - 1) / kThreads);
    window_attention_kernel<<<blocks, kThreads, 0, stream>>>(
        p, stride, out_stride, 1.0f / sqrtf(static_cast<float>(p.head_dim)));
    return gpu::last_launch_status();
}

}  // namespace boreas::kernels::cuda
