#pragma once
// Launchers of the element-wise and row-wise CUDA kernels (dense.cu, C++17) for the host side
// (kernels.cpp, C++20): LayerNorm, GELU, bf16 rounding and the Linear's epilogue. Each queues
// its kernel on `stream` and returns the launch status; parameters are checked by the caller.
#include <cstdint>

#include "boreas/kernels/kernels.hpp"
#include "gpu_runtime.hpp"

namespace boreas::kernels::cuda {

gpu::Status launch_layer_norm(const LayerNormParams& p, gpu::Stream stream);
gpu::Status launch_copy_rows(const CopyRowsParams& p, gpu::Stream stream);
/// x = GELU(x) (exact, erf) on n values.
gpu::Status launch_gelu(float* x, std::int64_t n, gpu::Stream stream);
/// out[r, c] = bf16(in[r * in_stride + c]) (nearest even) for r < rows, c < cols: out dense.
gpu::Status launch_round_to_bf16(const float* in, std::int64_t in_stride, std::uint16_t* out,
                                 std::int64_t rows, std::int64_t cols, gpu::Stream stream);

/// What follows the bf16 Linear's GEMM (kernels::LinearParams::bf16): v = acc + bias rounded to
/// bf16; pre = v; with gelu v = bf16(GELU(v)); then y_bf16 = v, or y (+)= v.
struct LinearEpilogue {
    const float* acc = nullptr;  ///< [rows, out], dense
    const float* bias = nullptr;
    float* y = nullptr;
    std::uint16_t* y_bf16 = nullptr;
    float* pre_activation = nullptr;
    std::int64_t rows = 0, out = 0, y_stride = 0;
    bool gelu = false, accumulate = false;
};
gpu::Status launch_linear_epilogue(const LinearEpilogue& e, gpu::Stream stream);

/// y[r, c] += bias[c] over [rows, out] at row stride y_stride (a bias the GEMM's epilogue cannot
/// take: not 16-byte aligned).
gpu::Status launch_add_bias(float* y, std::int64_t y_stride, const float* bias, std::int64_t rows,
                            std::int64_t out, gpu::Stream stream);

/// The fp32 Linear's GELU after the GEMM (bias already added): pre = y; y = GELU(y), over
/// [rows, out] at row stride y_stride.
gpu::Status launch_gelu_rows(float* y, std::int64_t y_stride, float* pre, std::int64_t rows,
                             std::int64_t out, gpu::Stream stream);

/// sums[c] += sum over rows of values[r * cols + c], in a fixed order (deterministic): partial
/// sums over column_sum_chunks() row chunks, then the chunks in order.
gpu::Status launch_add_column_sums(const float* values, std::int64_t rows, std::int64_t cols,
                                   float* sums, gpu::Stream stream);
/// Row chunks of the column sums; layer_norm_backward's `partials` holds 2 x this x channels.
int column_sum_chunks();
/// kernels::cpu::layer_norm_backward's contract: the rows' moments into `statistics` [2 rows],
/// dgamma and dbeta (column sums through `partials`) before dx, which may alias dy.
gpu::Status launch_layer_norm_backward(const LayerNormBackwardParams& p, float* statistics,
                                       float* partials, gpu::Stream stream);
/// dx = dy GELU'(x) (exact); dx may alias dy.
gpu::Status launch_gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n,
                                 gpu::Stream stream);

/// The largest head_dim window_attention holds in registers.
int window_attention_max_head_dim();
gpu::Status launch_window_attention(const WindowAttentionParams& p, gpu::Stream stream);

}  // namespace boreas::kernels::cuda
