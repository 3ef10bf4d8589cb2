#pragma once
/// The CUDA backend's kernels: the parameter structs of boreas/kernels/kernels.hpp with every
/// pointer in device (or managed) memory, queued on a stream (a cudaStream_t, hipStream_t under
/// HIP; null: the default stream). Tested against the CPU kernels (ctest label gpu). Built with
/// BOREAS_ENABLE_CUDA. The backend (backends::cuda) calls them for the model.
#include "boreas/kernels/kernels.hpp"

namespace boreas::kernels::cuda {

/// Graph-transformer attention (kernels::cpu::graph_attention's contract): one warp per
/// destination row and head, an online softmax over its incoming edges, no per-edge x channel
/// tensor, no atomics; fp32 or bf16 keys and values; head_dim up to 256.
void graph_attention(const GraphAttentionParams& p, void* stream = nullptr);

/// Sliding-window self-attention: one warp per (query row, head), online softmax over its
/// window; head_dim up to 256; fp32 or bf16 (WindowAttentionParams::bf16).
void window_attention(const WindowAttentionParams& p, void* stream = nullptr);

/// LayerNorm, one block per row (in place allowed).
void layer_norm(const LayerNormParams& p, void* stream = nullptr);

/// Row copies and residual adds between kernels (CopyRowsParams).
void copy_rows(const CopyRowsParams& p, void* stream = nullptr);

/// Exact (erf) GELU in place.
void gelu(float* x, std::int64_t n, void* stream = nullptr);

/// The Linear through cuBLASLt (fp32 products and sums, never TF32): fp32 with the bias fused
/// in the GEMM's epilogue and the exact GELU after it (cuBLASLt's GELU epilogue is the tanh
/// approximation, anemoi's is erf); bf16 (LinearParams::bf16) on bf16 copies of x and W with
/// fp32 sums, then one epilogue kernel (bias, bf16 rounding, GELU, accumulate or y_bf16). Every
/// LinearParams field is honoured.
void linear(const LinearParams& p, void* stream = nullptr);

/// The transformer MLP (MlpParams): LayerNorm, the two Linears and the GELU, a chunk of rows at
/// a time, its [chunk, hidden] activation in device scratch.
void mlp(const MlpParams& p, void* stream = nullptr);

/// Backward of the Linear (kernels::cpu::linear_backward's contract): dx (=|+=) dy W and
/// dW += dy^T x through cuBLASLt, db += the column sums of dy in a fixed order (deterministic).
void linear_backward(const LinearBackwardParams& p, void* stream = nullptr);

/// Backward of LayerNorm: the rows' moments recomputed, dgamma and dbeta as column sums in a
/// fixed order, then dx (which may alias dy).
void layer_norm_backward(const LayerNormBackwardParams& p, void* stream = nullptr);

/// dx = dy GELU'(x), exact; dx may alias dy.
void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n,
                   void* stream = nullptr);

}  // namespace boreas::kernels::cuda
