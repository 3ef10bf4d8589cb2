// Element-wise and row-wise kernels of the CUDA backend: LayerNorm (one block per row, fp32
// moments as the CPU kernel: mean, then the biased variance around it), exact GELU, bf16
// rounding (nearest even, as the CPU's bf16 path rounds) and the bf16 Linear's epilogue.
#include <cstdint>

#include "dense.hpp"

namespace boreas::kernels::cuda {
namespace {

constexpr int kBlock = 256;

__device__ inline std::uint16_t to_bf16_bits(float v) {
    std::uint32_t u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<std::uint16_t>(u >> 16);
}
__device__ inline float bf16_value(std::uint16_t bits) {
    return __uint_as_float(static_cast<std::uint32_t>(bits) << 16);
}
__device__ inline float round_bf16(float v) {
    return bf16_value(to_bf16_bits(v));
}
__device__ inline float gelu_exact(float v) {
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
}

/// Sum over the block (kBlock threads); every thread gets the result.
__device__ inline float block_sum(float v, float* shared) {
    for (int offset = 16; offset > 0; offset /= 2) v += gpu::shfl_xor(v, offset);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();  // shared is reused between calls
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < kBlock / 32; ++w) total += shared[w];
    return total;
}

__global__ void layer_norm_kernel(LayerNormParams p) {
    __shared__ float shared[kBlock / 32];
    const std::int64_t row = blockIdx.x;
    const float* x = p.x + row * p.channels;
    float* y = p.y + row * p.channels;
    float sum = 0.0f;
    for (std::int64_t c = threadIdx.x; c < p.channels; c += kBlock) sum += x[c];
    const float mean = block_sum(sum, shared) / static_cast<float>(p.channels);
    float squares = 0.0f;
    for (std::int64_t c = threadIdx.x; c < p.channels; c += kBlock) {
        const float d = x[c] - mean;
        squares += d * d;
    }
    const float variance = block_sum(squares, shared) / static_cast<float>(p.channels);
    const float inv = 1.0f / sqrtf(variance + p.eps);
    // x may be y: every thread read its values above, and block_sum's barriers separate the
    // reads from these writes.
    for (std::int64_t c = threadIdx.x; c < p.channels; c += kBlock) {
        const float n = (x[c] - mean) * inv;
        y[c] = n * (p.gamma ? p.gamma[c] : 1.0f) + (p.beta ? p.beta[c] : 0.0f);
    }
}

__global__ void copy_rows_kernel(CopyRowsParams p, std::int64_t x_stride, std::int64_t y_stride) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (i >= p.rows * p.cols) return;
    const std::int64_t r = i / p.cols, c = i % p.cols;
    const float v = p.x[r * x_stride + c];
    if (p.add)
        p.y[r * y_stride + c] += v;
    else
        p.y[r * y_stride + c] = v;
}

__global__ void gelu_kernel(float* x, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (i < n) x[i] = gelu_exact(x[i]);
}

__global__ void gelu_rows_kernel(float* y, std::int64_t y_stride, float* pre, std::int64_t rows,
                                 std::int64_t out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (i >= rows * out) return;
    const std::int64_t r = i / out, c = i % out;
    const float v = y[r * y_stride + c];
    if (pre) pre[i] = v;
    y[r * y_stride + c] = gelu_exact(v);
}

__global__ void add_bias_kernel(float* y, std::int64_t y_stride, const float* bias,
                                std::int64_t rows, std::int64_t out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (i >= rows * out) return;
    y[(i / out) * y_stride + i % out] += bias[i % out];
}

__global__ void round_to_bf16_kernel(const float* in, std::int64_t in_stride, std::uint16_t* out,
                                     std::int64_t rows, std::int64_t cols) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (i >= rows * cols) return;
    const std::int64_t r = i / cols, c = i % cols;
    out[i] = to_bf16_bits(in[r * in_stride + c]);
}

__global__ void linear_epilogue_kernel(LinearEpilogue e) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (i >= e.rows * e.out) return;
    const std::int64_t r = i / e.out, c = i % e.out;
    float v = round_bf16(e.acc[i] + (e.bias ? e.bias[c] : 0.0f));
    if (e.gelu && e.pre_activation) e.pre_activation[i] = v;
    if (e.gelu) v = round_bf16(gelu_exact(v));
    const std::int64_t at = r * e.y_stride + c;
    if (e.y_bf16)
        e.y_bf16[at] = to_bf16_bits(v);
    else if (e.accumulate)
        e.y[at] += v;
    else
        e.y[at] = v;
}

// Column sums in a fixed order: chunk k of the rows summed per column by one thread (columns
// side by side in a warp: coalesced), then the chunks summed in order.
constexpr int kColumnSumChunks = 64;

/// partials[k, c] = sum over rows r of chunk k of term(r, c); term gets the row and column.
template <typename Term>
__global__ void column_partials_kernel(std::int64_t rows, std::int64_t cols, float* partials,
                                       Term term) {
    const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    const std::int64_t k = blockIdx.y;
    if (c >= cols) return;
    const std::int64_t r0 = rows * k / kColumnSumChunks, r1 = rows * (k + 1) / kColumnSumChunks;
    float sum = 0.0f;
    for (std::int64_t r = r0; r < r1; ++r) sum += term(r, c);
    partials[k * cols + c] = sum;
}

__global__ void add_partials_kernel(const float* partials, std::int64_t cols, float* sums) {
    const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (c >= cols) return;
    float sum = 0.0f;
    for (int k = 0; k < kColumnSumChunks; ++k) sum += partials[k * cols + c];
    sums[c] += sum;
}

struct Values {
    const float* values;
    std::int64_t cols;
    __device__ float operator()(std::int64_t r, std::int64_t c) const {
        return values[r * cols + c];
    }
};

/// dy x the normalised input, from the rows' saved moments.
struct GradientTimesNormalised {
    const float* x;
    const float* dy;
    const float* statistics;  // [rows, 2]: mean, 1 / sqrt(var + eps)
    std::int64_t cols;
    __device__ float operator()(std::int64_t r, std::int64_t c) const {
        const float n = (x[r * cols + c] - statistics[2 * r]) * statistics[2 * r + 1];
        return dy[r * cols + c] * n;
    }
};

__global__ void row_moments_kernel(const float* x, std::int64_t channels, float eps,
                                   float* statistics) {
    __shared__ float shared[kBlock / 32];
    const std::int64_t row = blockIdx.x;
    const float* xr = x + row * channels;
    float sum = 0.0f;
    for (std::int64_t c = threadIdx.x; c < channels; c += kBlock) sum += xr[c];
    const float mean = block_sum(sum, shared) / static_cast<float>(channels);
    float squares = 0.0f;
    for (std::int64_t c = threadIdx.x; c < channels; c += kBlock) {
        const float d = xr[c] - mean;
        squares += d * d;
    }
    const float variance = block_sum(squares, shared) / static_cast<float>(channels);
    if (threadIdx.x == 0) {
        statistics[2 * row] = mean;
        statistics[2 * row + 1] = 1.0f / sqrtf(variance + eps);
    }
}

__global__ void layer_norm_dx_kernel(LayerNormBackwardParams p, const float* statistics) {
    __shared__ float shared[kBlock / 32];
    const std::int64_t row = blockIdx.x, channels = p.channels;
    const float* x = p.x + row * channels;
    const float* dy = p.dy + row * channels;
    const float mean = statistics[2 * row], inv = statistics[2 * row + 1];
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (std::int64_t c = threadIdx.x; c < channels; c += kBlock) {
        const float g = dy[c] * (p.gamma ? p.gamma[c] : 1.0f);
        sum_g += g;
        sum_gx += g * ((x[c] - mean) * inv);
    }
    const float mean_g = block_sum(sum_g, shared) / static_cast<float>(channels);
    const float mean_gx = block_sum(sum_gx, shared) / static_cast<float>(channels);
    float* dx = p.dx + row * channels;
    // dx may be dy: each thread reads then writes its own columns.
    for (std::int64_t c = threadIdx.x; c < channels; c += kBlock) {
        const float g = dy[c] * (p.gamma ? p.gamma[c] : 1.0f);
        dx[c] = inv * (g - mean_g - ((x[c] - mean) * inv) * mean_gx);
    }
}

__global__ void gelu_backward_kernel(const float* x, const float* dy, float* dx, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kBlock + threadIdx.x;
    if (i >= n) return;
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
    const float pdf = 0.3989422804014327f * expf(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
}

unsigned blocks_for(std::int64_t n) {
    return static_cast<unsigned>((n + kBlock - 1) / kBlock);
}

}  // namespace

gpu::Status launch_layer_norm(const LayerNormParams& p, gpu::Stream stream) {
    if (p.rows == 0) return gpu::kSuccess;
    layer_norm_kernel<<<static_cast<unsigned>(p.rows), kBlock, 0, stream>>>(p);
    return gpu::last_launch_status();
}

gpu::Status launch_copy_rows(const CopyRowsParams& p, gpu::Stream stream) {
    if (p.rows * p.cols == 0) return gpu::kSuccess;
    copy_rows_kernel<<<blocks_for(p.rows * p.cols), kBlock, 0, stream>>>(
        p, p.x_stride ? p.x_stride : p.cols, p.y_stride ? p.y_stride : p.cols);
    return gpu::last_launch_status();
}

gpu::Status launch_gelu(float* x, std::int64_t n, gpu::Stream stream) {
    if (n == 0) return gpu::kSuccess;
    gelu_kernel<<<blocks_for(n), kBlock, 0, stream>>>(x, n);
    return gpu::last_launch_status();
}

gpu::Status launch_gelu_rows(float* y, std::int64_t y_stride, float* pre, std::int64_t rows,
                             std::int64_t out, gpu::Stream stream) {
    if (rows * out == 0) return gpu::kSuccess;
    gelu_rows_kernel<<<blocks_for(rows * out), kBlock, 0, stream>>>(y, y_stride, pre, rows, out);
    return gpu::last_launch_status();
}

gpu::Status launch_add_bias(float* y, std::int64_t y_stride, const float* bias, std::int64_t rows,
                            std::int64_t out, gpu::Stream stream) {
    if (rows * out == 0) return gpu::kSuccess;
    add_bias_kernel<<<blocks_for(rows * out), kBlock, 0, stream>>>(y, y_stride, bias, rows, out);
    return gpu::last_launch_status();
}

gpu::Status launch_round_to_bf16(const float* in, std::int64_t in_stride, std::uint16_t* out,
                                 std::int64_t rows, std::int64_t cols, gpu::Stream stream) {
    if (rows * cols == 0) return gpu::kSuccess;
    round_to_bf16_kernel<<<blocks_for(rows * cols), kBlock, 0, stream>>>(in, in_stride, out, rows,
                                                                         cols);
    return gpu::last_launch_status();
}

gpu::Status launch_linear_epilogue(const LinearEpilogue& e, gpu::Stream stream) {
    if (e.rows * e.out == 0) return gpu::kSuccess;
    linear_epilogue_kernel<<<blocks_for(e.rows * e.out), kBlock, 0, stream>>>(e);
    return gpu::last_launch_status();
}

int column_sum_chunks() {
    return kColumnSumChunks;
}

gpu::Status launch_add_column_sums(const float* values, std::int64_t rows, std::int64_t cols,
                                   float* sums, gpu::Stream stream) {
    if (rows == 0 || cols == 0) return gpu::kSuccess;
    void* partials = nullptr;
    gpu::Status status =
        gpu::malloc_async(&partials, sizeof(float) * kColumnSumChunks * cols, stream);
    if (status != gpu::kSuccess) return status;
    const dim3 grid(blocks_for(cols), kColumnSumChunks);
    column_partials_kernel<<<grid, kBlock, 0, stream>>>(rows, cols, static_cast<float*>(partials),
                                                        Values{values, cols});
    add_partials_kernel<<<blocks_for(cols), kBlock, 0, stream>>>(static_cast<float*>(partials),
                                                                 cols, sums);
    status = gpu::last_launch_status();
    const gpu::Status freed = gpu::free_async(partials, stream);
    return status != gpu::kSuccess ? status : freed;
}

gpu::Status launch_layer_norm_backward(const LayerNormBackwardParams& p, float* statistics,
                                       float* partials, gpu::Stream stream) {
    if (p.rows == 0) return gpu::kSuccess;
    const auto rows = static_cast<unsigned>(p.rows);
    row_moments_kernel<<<rows, kBlock, 0, stream>>>(p.x, p.channels, p.eps, statistics);
    // dgamma and dbeta first: dx may overwrite dy.
    const dim3 grid(blocks_for(p.channels), kColumnSumChunks);
    if (p.dgamma) {
        column_partials_kernel<<<grid, kBlock, 0, stream>>>(
            p.rows, p.channels, partials,
            GradientTimesNormalised{p.x, p.dy, statistics, p.channels});
        add_partials_kernel<<<blocks_for(p.channels), kBlock, 0, stream>>>(partials, p.channels,
                                                                           p.dgamma);
    }
    if (p.dbeta) {
        float* second = partials + kColumnSumChunks * p.channels;
        column_partials_kernel<<<grid, kBlock, 0, stream>>>(p.rows, p.channels, second,
                                                            Values{p.dy, p.channels});
        add_partials_kernel<<<blocks_for(p.channels), kBlock, 0, stream>>>(second, p.channels,
                                                                           p.dbeta);
    }
    layer_norm_dx_kernel<<<rows, kBlock, 0, stream>>>(p, statistics);
    return gpu::last_launch_status();
}

gpu::Status launch_gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n,
                                 gpu::Stream stream) {
    if (n == 0) return gpu::kSuccess;
    gelu_backward_kernel<<<blocks_for(n), kBlock, 0, stream>>>(x, dy, dx, n);
    return gpu::last_launch_status();
}

}  // namespace boreas::kernels::cuda
