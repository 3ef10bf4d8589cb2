// The CUDA kernels' host side: parameter checks as one-line errors, device scratch, cuBLASLt
// calls and the launches.
#include "boreas/backends/cuda/kernels.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "dense.hpp"
#include "gpu_blas.hpp"
#include "gpu_check.hpp"
#include "graph_attention.hpp"

namespace boreas::kernels::cuda {

namespace {

gpu::Stream as_stream(void* stream) {
    return static_cast<gpu::Stream>(stream);
}

/// Device scratch for one call, stream-ordered (the driver's pool: no synchronising malloc),
/// released on the stream when the call's work is queued.
class Scratch {
  public:
    explicit Scratch(gpu::Stream stream) : stream_(stream) {}
    ~Scratch() {
        for (void* p : blocks_) (void)gpu::free_async(p, stream_);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    template <typename T>
    T* get(std::int64_t count) {
        void* p = nullptr;
        BOREAS_GPU_CHECK(
            gpu::malloc_async(&p, static_cast<std::size_t>(count) * sizeof(T), stream_));
        blocks_.push_back(p);
        return static_cast<T*>(p);
    }

  private:
    gpu::Stream stream_;
    std::vector<void*> blocks_;
};

/// One cuBLASLt handle and workspace per device, kept for the process' life. The workspace is
/// shared by every stream: calls are serialised (the backend's one stream; the roof and the
/// tests run nothing beside it).
struct Blas {
    gpu::blas::Handle handle = nullptr;
    void* workspace = nullptr;
    static constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;
};

Blas& blas() {
    static std::mutex mutex;
    static std::map<int, Blas> per_device;
    int device = 0;
    BOREAS_GPU_CHECK(gpu::get_device(&device));
    const std::lock_guard lock(mutex);
    Blas& b = per_device[device];
    if (b.handle == nullptr) {
        const auto status = gpu::blas::create(&b.handle);
        BOREAS_CHECK(gpu::blas::ok(status), "cuBLASLt: cannot create a handle (status {})",
                     gpu::blas::code(status));
        BOREAS_GPU_CHECK(gpu::malloc_bytes(&b.workspace, Blas::kWorkspaceBytes));
    }
    return b;
}

void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const void* a, std::int64_t lda, const void* b, std::int64_t ldb, float beta, float* c,
          std::int64_t ldc, const float* bias, gpu::blas::DataType type, gpu::Stream stream) {
    Blas& context = blas();
    const auto status = gpu::blas::matmul(context.handle, transpose_a, transpose_b, m, n, k, 1.0f,
                                          a, lda, b, ldb, beta, c, ldc, bias, type,
                                          context.workspace, Blas::kWorkspaceBytes, stream);
    BOREAS_CHECK(gpu::blas::ok(status),
                 "cuda linear: cuBLASLt matmul [{} x {}] x [{} x {}] failed (status {})", m, k, k,
                 n, gpu::blas::code(status));
}

}  // namespace

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
    BOREAS_GPU_CHECK(launch_graph_attention(p, as_stream(stream)));
}

void window_attention(const WindowAttentionParams& p, void* stream) {
    BOREAS_CHECK(p.q && p.k && p.v && p.out && p.head_dim > 0 && p.heads > 0 && p.window >= 0 &&
                     p.seq >= 0 && p.batch >= 0,
                 "cuda window_attention: invalid parameters");
    BOREAS_CHECK(p.head_dim <= window_attention_max_head_dim(),
                 "cuda window_attention: head_dim {} above the kernel's {}", p.head_dim,
                 window_attention_max_head_dim());
    BOREAS_GPU_CHECK(launch_window_attention(p, as_stream(stream)));
}

void layer_norm(const LayerNormParams& p, void* stream) {
    BOREAS_CHECK(p.x && p.y && p.rows >= 0 && p.channels > 0,
                 "cuda layer_norm: invalid parameters");
    BOREAS_GPU_CHECK(launch_layer_norm(p, as_stream(stream)));
}

void copy_rows(const CopyRowsParams& p, void* stream) {
    BOREAS_CHECK((p.rows * p.cols == 0 || (p.x && p.y)) && p.rows >= 0 && p.cols >= 0,
                 "cuda copy_rows: invalid parameters");
    BOREAS_GPU_CHECK(launch_copy_rows(p, as_stream(stream)));
}

void gelu(float* x, std::int64_t n, void* stream) {
    BOREAS_CHECK(n == 0 || x != nullptr, "cuda gelu: invalid parameters");
    BOREAS_GPU_CHECK(launch_gelu(x, n, as_stream(stream)));
}

void linear(const LinearParams& p, void* stream_handle) {
    const gpu::Stream stream = as_stream(stream_handle);
    BOREAS_CHECK(p.x && (p.weight || p.weight_bf16) && (p.y || p.y_bf16) && p.rows >= 0 &&
                     p.in > 0 && p.out > 0,
                 "cuda linear: invalid parameters");
    BOREAS_CHECK(!(p.gelu && p.accumulate), "cuda linear: gelu with accumulate is not a Linear");
    BOREAS_CHECK(!p.y_bf16 || (p.bf16 && !p.gelu && !p.accumulate),
                 "cuda linear: a bf16 result needs bf16, no gelu and no accumulate");
    BOREAS_CHECK(!p.weight_bf16 || p.bf16, "cuda linear: bf16 weights need the bf16 Linear");
    if (p.rows == 0) return;
    const std::int64_t x_stride = p.x_stride ? p.x_stride : p.in;
    const std::int64_t y_stride = p.y_stride ? p.y_stride : p.out;
    // Row-major y[rows, out] = x W^T is, column-major, y^T[out, rows] = W^T' x^T: A is W (stored
    // [out, in] row-major, i.e. [in, out] column-major, transposed), B is x^T (ld x_stride).
    const bool transpose_a = !p.weight_transposed;
    const std::int64_t lda = p.weight_transposed ? p.out : p.in;
    if (!p.bf16) {
        // The epilogue needs a 16-byte aligned bias; another (a slice) is added by a kernel.
        const bool fused_bias = gpu::blas::alignment_of(p.bias) >= 16;
        gemm(transpose_a, false, p.out, p.rows, p.in, p.weight, lda, p.x, x_stride,
             p.accumulate ? 1.0f : 0.0f, p.y, y_stride, fused_bias ? p.bias : nullptr,
             gpu::blas::kF32, stream);
        if (p.bias && !fused_bias)
            BOREAS_GPU_CHECK(launch_add_bias(p.y, y_stride, p.bias, p.rows, p.out, stream));
        if (p.gelu)
            BOREAS_GPU_CHECK(
                launch_gelu_rows(p.y, y_stride, p.pre_activation, p.rows, p.out, stream));
        return;
    }
    Scratch scratch(stream);
    auto* x16 = scratch.get<std::uint16_t>(p.rows * p.in);
    BOREAS_GPU_CHECK(launch_round_to_bf16(p.x, x_stride, x16, p.rows, p.in, stream));
    const std::uint16_t* w16 = p.weight_bf16;
    if (w16 == nullptr) {
        auto* rounded = scratch.get<std::uint16_t>(p.out * p.in);
        BOREAS_GPU_CHECK(launch_round_to_bf16(p.weight, p.in, rounded, 1, p.out * p.in, stream));
        w16 = rounded;
    }
    auto* acc = scratch.get<float>(p.rows * p.out);
    gemm(transpose_a, false, p.out, p.rows, p.in, w16, lda, x16, p.in, 0.0f, acc, p.out, nullptr,
         gpu::blas::kBF16, stream);
    LinearEpilogue e;
    e.acc = acc;
    e.bias = p.bias;
    e.y = p.y;
    e.y_bf16 = p.y_bf16;
    e.pre_activation = p.pre_activation;
    e.rows = p.rows;
    e.out = p.out;
    e.y_stride = y_stride;
    e.gelu = p.gelu;
    e.accumulate = p.accumulate;
    BOREAS_GPU_CHECK(launch_linear_epilogue(e, stream));
}

void mlp(const MlpParams& p, void* stream_handle) {
    const gpu::Stream stream = as_stream(stream_handle);
    BOREAS_CHECK(p.x && p.y && (p.weight_in || p.weight_in_bf16) &&
                     (p.weight_out || p.weight_out_bf16) && p.rows >= 0 && p.in > 0 &&
                     p.hidden > 0 && p.out > 0,
                 "cuda mlp: invalid parameters");
    if (p.rows == 0) return;
    // Rows per chunk: bounds the [chunk, hidden] activation (64 MiB at hidden 1024).
    constexpr std::int64_t kChunk = 16384;
    Scratch scratch(stream);
    const std::int64_t chunk = std::min(p.rows, kChunk);
    float* normalised = p.layer_norm ? scratch.get<float>(chunk * p.in) : nullptr;
    float* hidden = scratch.get<float>(chunk * p.hidden);
    for (std::int64_t r0 = 0; r0 < p.rows; r0 += chunk) {
        const std::int64_t rows = std::min(chunk, p.rows - r0);
        const float* source = p.x + r0 * p.in;
        if (p.layer_norm) {
            LayerNormParams n;
            n.x = source;
            n.y = normalised;
            n.gamma = p.norm_gamma;
            n.beta = p.norm_beta;
            n.rows = rows;
            n.channels = p.in;
            n.eps = p.norm_eps;
            layer_norm(n, stream_handle);
            source = normalised;
        }
        LinearParams first;
        first.x = source;
        first.weight = p.weight_in;
        first.weight_bf16 = p.weight_in_bf16;
        first.bias = p.bias_in;
        first.y = hidden;
        first.rows = rows;
        first.in = p.in;
        first.out = p.hidden;
        first.gelu = true;
        first.bf16 = p.bf16;
        linear(first, stream_handle);
        LinearParams second;
        second.x = hidden;
        second.weight = p.weight_out;
        second.weight_bf16 = p.weight_out_bf16;
        second.bias = p.bias_out;
        second.y = p.y + r0 * p.out;
        second.rows = rows;
        second.in = p.hidden;
        second.out = p.out;
        second.accumulate = p.accumulate;
        second.bf16 = p.bf16;
        linear(second, stream_handle);
    }
}

void linear_backward(const LinearBackwardParams& p, void* stream_handle) {
    const gpu::Stream stream = as_stream(stream_handle);
    BOREAS_CHECK(p.weight && p.dy && p.rows >= 0 && p.in > 0 && p.out > 0 && (!p.dweight || p.x) &&
                     (!p.dx || p.weight),
                 "cuda linear_backward: invalid parameters");
    if (p.rows == 0) return;
    if (p.dx) {
        // dx[rows, in] = dy W: column-major dx^T[in, rows] = W^T-stored [in, out] x dy^T.
        gemm(false, false, p.in, p.rows, p.out, p.weight, p.in, p.dy, p.out,
             p.accumulate_dx ? 1.0f : 0.0f, p.dx, p.in, nullptr, gpu::blas::kF32, stream);
    }
    if (p.dweight) {
        // dW[out, in] += dy^T x: column-major dW^T[in, out] += x^T[in, rows] (dy^T)^T.
        gemm(false, true, p.in, p.out, p.rows, p.x, p.in, p.dy, p.out, 1.0f, p.dweight, p.in,
             nullptr, gpu::blas::kF32, stream);
    }
    if (p.dbias) BOREAS_GPU_CHECK(launch_add_column_sums(p.dy, p.rows, p.out, p.dbias, stream));
}

void layer_norm_backward(const LayerNormBackwardParams& p, void* stream_handle) {
    const gpu::Stream stream = as_stream(stream_handle);
    BOREAS_CHECK(p.x && p.dy && p.dx && p.rows >= 0 && p.channels > 0,
                 "cuda layer_norm_backward: invalid parameters");
    if (p.rows == 0) return;
    Scratch scratch(stream);
    float* statistics = scratch.get<float>(2 * p.rows);
    float* partials = scratch.get<float>(2 * column_sum_chunks() * p.channels);
    BOREAS_GPU_CHECK(launch_layer_norm_backward(p, statistics, partials, stream));
}

void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n, void* stream) {
    BOREAS_CHECK(n == 0 || (x && dy && dx), "cuda gelu_backward: invalid parameters");
    BOREAS_GPU_CHECK(launch_gelu_backward(x, dy, dx, n, as_stream(stream)));
}

}  // namespace boreas::kernels::cuda
