#pragma once
/// The kernel interface every backend implements. Kernels take plain parameter structs (pointers,
/// sizes, strides) and never allocate per-edge x channel or N x N intermediates. The CPU backend
/// (src/backends/cpu) is always built and is the reference the others are tested against.
///
/// Layout conventions: node features are row-major [rows, channels]; multi-head tensors keep
/// head h in channels [h*d, (h+1)*d) ("(h d)" in einops terms), as anemoi does.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace boreas::kernels {

/// y[rows, out] = x[rows, in] * W^T + b, W row-major [out, in] (torch's Linear layout).
/// `accumulate` adds into y instead of overwriting it. b may be null.
struct LinearParams {
    const float* x = nullptr;
    const float* weight = nullptr;
    const float* bias = nullptr;
    float* y = nullptr;
    std::int64_t rows = 0, in = 0, out = 0;
    std::int64_t x_stride = 0, y_stride = 0;  ///< row strides; 0 means dense (in, out)
    bool accumulate = false;
    bool gelu = false;  ///< y = GELU(x W^T + b), exact (erf) GELU, fused into one pass over y
    /// With gelu: also keep x W^T + b here ([rows, out], dense), for the backward; the rows are
    /// copied in the epilogue while they are in cache.
    float* pre_activation = nullptr;
    /// The weight is given transposed, [in, out] (y = x W + b): the backward's dx = dy W runs
    /// as a Linear over W without a transposed copy.
    bool weight_transposed = false;
    /// Inference in bf16 as anemoi's bf16 autocast runs a Linear: x and W rounded to bf16
    /// (nearest even), products accumulated in fp32, the bias added and the result rounded to
    /// bf16 (and, with gelu, GELU in fp32 of that, rounded again; the pre-activation keeps the
    /// first rounding); with accumulate, the rounded result is added to y in fp32. On CPUs with
    /// AVX512-BF16 (the avx512 path) the products are vdpbf16ps dot products on weights packed
    /// to bf16; elsewhere fp32 FMAs on the rounded values give the same numbers up to the
    /// order of the fp32 sums. Not for training (no backward).
    bool bf16 = false;
    /// With bf16: the result as bf16 bits here instead of y (row stride y_stride, else out); no
    /// gelu, no accumulate. Keys and values that are only read by graph_attention stay so.
    std::uint16_t* y_bf16 = nullptr;
    /// With bf16: W as bf16 bits (same layout as weight), read instead of weight: a model that
    /// keeps its weights in bf16 (model::Model::keep_weights_in_bf16).
    const std::uint16_t* weight_bf16 = nullptr;
};

/// The transformer MLP, inference only: y[rows, out] = GELU(x W_in^T + b_in) W_out^T + b_out
/// (+ y when `accumulate`), x and y dense. Where the widths allow (hidden and out multiples of
/// 16, in and hidden <= 2048, both weights within 8 MiB) the [rows, hidden] activation only
/// ever exists for 48 rows at a time, in cache; otherwise it runs as two Linears through a
/// buffer. The training forward keeps the activation and uses two Linears.
struct MlpParams {
    const float* x = nullptr;
    const float* weight_in = nullptr;   ///< [hidden, in]
    const float* bias_in = nullptr;     ///< [hidden] or null
    const float* weight_out = nullptr;  ///< [out, hidden]
    const float* bias_out = nullptr;    ///< [out] or null
    float* y = nullptr;
    std::int64_t rows = 0, in = 0, hidden = 0, out = 0;
    bool accumulate = false;
    /// The MLP of LayerNorm(x) (layer_norm's arithmetic, bit for bit; gamma and beta [in] or
    /// null): x is normalised a chunk of rows at a time in cache, never as a [rows, in] tensor,
    /// and y may be x itself (the pre-norm residual y = x + MLP(LN(x))).
    bool layer_norm = false;
    const float* norm_gamma = nullptr;
    const float* norm_beta = nullptr;
    float norm_eps = 1e-5f;
    /// Both Linears in bf16 (LinearParams::bf16); the LayerNorm stays fp32, as under autocast.
    bool bf16 = false;
    /// With bf16: the weights as bf16 bits, read instead of weight_in / weight_out.
    const std::uint16_t* weight_in_bf16 = nullptr;
    const std::uint16_t* weight_out_bf16 = nullptr;
};

/// Row-wise LayerNorm over `channels` (biased variance, eps inside the root), in place allowed.
struct LayerNormParams {
    const float* x = nullptr;
    float* y = nullptr;
    const float* gamma = nullptr;
    const float* beta = nullptr;
    std::int64_t rows = 0, channels = 0;
    float eps = 1e-5f;
};

/// Graph-transformer attention (anemoi GraphTransformerConv) over destination-sorted edges:
///   s_ij^h = q_j^h . (k_i^h + eps_ij^h) / sqrt(d),  eps_ij = W_e e_ij + b_e
///   o_j^h  = sum_i softmax_i(s_ij^h) (v_i^h + eps_ij^h)
/// computed per destination with an exact two-pass softmax (a destination's scores fit in L1);
/// eps_ij is never formed: q.eps and the value term go through the edge_dim-wide projections
/// W_e^T q and sum_i alpha_ij e_ij.
/// Batches: destination row b*n_dst+j reads source rows b*n_src+i; edge features are shared.
/// To process a chunk of destinations, point q/out at its rows and dst_offsets at its first
/// offset (offsets stay absolute indices into src/edge_features) and set n_dst to its size.
struct GraphAttentionParams {
    const float* q = nullptr;                   ///< [batch*n_dst, heads*d]
    const float* k = nullptr;                   ///< [batch*n_src, heads*d]
    const float* v = nullptr;                   ///< [batch*n_src, heads*d]
    const float* edge_features = nullptr;       ///< [edges, edge_dim], CSR order
    const float* edge_weight = nullptr;         ///< W_e [heads*d, edge_dim]
    const float* edge_bias = nullptr;           ///< b_e [heads*d]
    const std::int64_t* dst_offsets = nullptr;  ///< [n_dst+1]
    const std::int32_t* src = nullptr;          ///< [edges]
    float* out = nullptr;                       ///< [batch*n_dst, heads*d]
    std::int64_t batch = 1, n_src = 0, n_dst = 0, heads = 1, head_dim = 0, edge_dim = 0;
    std::int64_t q_stride = 0, kv_stride = 0, out_stride = 0;  ///< 0: heads*d
    float* lse =
        nullptr;  ///< optional [batch*n_dst, heads]: log-sum-exp of the scores, for backward
    /// Keys and values stored as bf16 bits (the bf16 forward's mappers, LinearParams::y_bf16),
    /// read instead of k and v (same strides, in elements): half the bytes of the gathered rows
    /// and of the largest tensor of the aifs-n320 forward. Inference only (no backward).
    const std::uint16_t* k_bf16 = nullptr;
    const std::uint16_t* v_bf16 = nullptr;
};

/// Backward of graph_attention (spec/model.md 3.3), deterministic without atomics: a destination
/// pass (D_j = dO_j . O_j, the softmax weights recomputed from the saved log-sum-exp, dq, the
/// edge-feature gradients, and the W_e and b_e gradients through per-destination sums) and a
/// source pass over the edges grouped by source (dk, dv) that reuses the destination pass'
/// per-edge, per-head alpha and ds (2 x edges x heads floats of scratch, never edges x channels).
/// `src_offsets`/`edges_by_src` list, for each source, the CSR positions of its outgoing edges in
/// increasing order (see transpose_csr).
struct GraphAttentionBackwardParams {
    GraphAttentionParams forward;  ///< the forward's parameters, with out and lse filled
    const float* d_out = nullptr;  ///< [batch*n_dst, heads*d]
    const std::int64_t* src_offsets = nullptr;   ///< [n_src+1]
    const std::int64_t* edges_by_src = nullptr;  ///< [edges]
    float* dq = nullptr;                         ///< [batch*n_dst, heads*d], overwritten
    float* dk = nullptr;                         ///< [batch*n_src, heads*d], overwritten
    float* dv = nullptr;                         ///< [batch*n_src, heads*d], overwritten
    std::int64_t dq_stride = 0, dkv_stride = 0;  ///< row strides of dq and of dk, dv; 0: heads*d
    float* d_edge_weight = nullptr;              ///< [heads*d, edge_dim], accumulated (+=)
    float* d_edge_bias = nullptr;                ///< [heads*d], accumulated
    float* d_edge_features = nullptr;  ///< [edges, edge_dim], accumulated (summed over batch)
};

/// Backward of y = x W^T + b: dx (=|+=) dy W, dW += dy^T x, db += sum_rows dy. Any output may be
/// null. Deterministic.
struct LinearBackwardParams {
    const float* x = nullptr;       ///< [rows, in]
    const float* weight = nullptr;  ///< [out, in]
    const float* dy = nullptr;      ///< [rows, out]
    float* dx = nullptr;            ///< [rows, in]
    float* dweight = nullptr;       ///< [out, in]
    float* dbias = nullptr;         ///< [out]
    std::int64_t rows = 0, in = 0, out = 0;
    bool accumulate_dx = false;
};

struct LayerNormBackwardParams {
    const float* x = nullptr;  ///< the forward's input
    const float* gamma = nullptr;
    const float* dy = nullptr;
    float* dx = nullptr;      ///< overwritten (may alias dy)
    float* dgamma = nullptr;  ///< accumulated
    float* dbeta = nullptr;   ///< accumulated
    std::int64_t rows = 0, channels = 0;
    float eps = 1e-5f;
};

/// Sliding-window self-attention: query i attends keys j with |i-j| <= window inside its own
/// batch element (truncated at the sequence ends), scale 1/sqrt(d). Flash-style: key blocks with
/// an online softmax; only a query-block x key-block tile of scores exists at a time.
struct WindowAttentionParams {
    const float* q = nullptr;  ///< [batch*seq, heads*d]
    const float* k = nullptr;
    const float* v = nullptr;
    float* out = nullptr;  ///< [batch*seq, heads*d]
    std::int64_t batch = 1, seq = 0, heads = 1, head_dim = 0, window = 0;
    std::int64_t stride = 0;  ///< row stride of q, k, v (and of out unless out_stride); 0: heads*d
    std::int64_t out_stride = 0;  ///< row stride of out (and of the backward's d_out); 0: `stride`
    float* lse = nullptr;         ///< optional [batch*seq, heads]: log-sum-exp, for backward
    /// Inference in bf16, as SDPA runs under anemoi's bf16 autocast: Q K^T and P V on bf16
    /// operands (q, k, v and the softmax numerators P rounded to bf16) with fp32 sums; the
    /// softmax itself in fp32. vdpbf16ps tiles on AVX512-BF16 (head sizes a multiple of 32),
    /// fp32 FMAs on the rounded values elsewhere. Not for training (no backward).
    bool bf16 = false;
};

/// Backward of window_attention (flash-attention style, spec/model.md 4.1): scores recomputed
/// tile by tile from the saved log-sum-exp; a query pass writes dQ, a key pass dK and dV, so
/// every gradient row has one writer (deterministic, no atomics).
struct WindowAttentionBackwardParams {
    WindowAttentionParams forward;  ///< with out and lse filled by the forward
    const float* d_out = nullptr;   ///< [batch*seq, heads*d], same layout as out
    float* dq = nullptr;            ///< overwritten, same layout as q (row stride `forward.stride`)
    float* dk = nullptr;
    float* dv = nullptr;
};

/// What graph_attention_backward's destination pass leaves for its source pass (host memory):
/// per edge and head the softmax weight and the scaled score gradient, and each edge's
/// destination.
struct GraphAttentionBackwardScratch {
    std::vector<float> alpha, ds;
    std::vector<std::int32_t> edge_dst;
};

/// y[r, c] = x[r, c], or y[r, c] += x[r, c] with `add`, for r < rows, c < cols (row strides;
/// 0: cols): the model's row copies and residual adds between kernels, in the kernel set so that
/// a device backend keeps them on the device. x and y do not overlap unless they are the same
/// rows (y == x with the same strides).
struct CopyRowsParams {
    const float* x = nullptr;
    float* y = nullptr;
    std::int64_t rows = 0, cols = 0;
    std::int64_t x_stride = 0, y_stride = 0;
    bool add = false;
};

/// Fields to rows for the data loader: out[p, c] = in[columns[c] * in_stride + p] * mul[c] +
/// add[c] for p < points, c < width: a date's (variables, points) chunk gathered by column,
/// transposed to (points, variables) and normalised as anemoi does in place (a multiply, then an
/// add: two float roundings, never fused), in one pass.
struct FieldsToRowsParams {
    const float* in = nullptr;
    std::int64_t in_stride = 0;  ///< values between variables in `in` (points x ensembles)
    const std::size_t* columns = nullptr;
    const float* mul = nullptr;
    const float* add = nullptr;
    float* out = nullptr;  ///< [points, width], dense
    std::int64_t points = 0, width = 0;
};

namespace cpu {

/// Instruction-set paths. Every kernel is compiled once per path: "generic" (portable C++,
/// vectorised by the compiler for the build's baseline), "avx2" (AVX2 + FMA) and "avx512"
/// (AVX-512 F/BW/DQ/VL) on x86-64. The first kernel call picks the widest path this CPU runs, or
/// the one the environment variable BOREAS_ISA names (an error if this CPU cannot run it).
/// The paths compiled into this binary, narrowest first.
std::vector<std::string> compiled_paths();
/// Whether this CPU runs `path` (compiled in, and the CPU has its instructions); if not, why.
bool path_supported(const std::string& path, std::string* why = nullptr);
/// The path the kernels run on.
std::string active_path();
/// Runs the kernels on `path` from now on (tests, benchmarks): an error if this CPU cannot.
/// Not while kernels run on other threads.
void select_path(const std::string& path);
/// The fp32 Linear's and MLP's register tile from now on (tests, benchmarks): 256 (6 x 16 ymm)
/// or 512 (12 x 16 zmm, avx512 path only), 0 for the path's own choice (avx512: whichever
/// measures faster on this CPU; the environment variable BOREAS_FP32_TILE=256|512 forces the
/// avx512 path's choice, the other paths have one tile each).
/// Both tiles give the same bits. Not while kernels run on other threads.
void select_fp32_tile(int bits);
/// The active path's fp32 tile width: 512, 256, or 0 (no register tile: OpenBLAS).
int fp32_tile_bits();
/// The kernels' path for result documents: {"name", "selected_by", "compiled", "runnable",
/// "vector_erf", "bf16" ("avx512_bf16": vdpbf16ps; "emulated": fp32 FMAs on bf16-rounded
/// values), "fp32_tile" {"bits", "selected_by"[, "measured_gflops" {"256", "512"}]},
/// "dispatch"}.
nlohmann::ordered_json kernel_path();

void fields_to_rows(const FieldsToRowsParams& p);
void copy_rows(const CopyRowsParams& p);
void linear(const LinearParams& p);
void mlp(const MlpParams& p);
void layer_norm(const LayerNormParams& p);
/// Exact (erf) GELU, in place on n values.
void gelu(float* x, std::int64_t n);
void graph_attention(const GraphAttentionParams& p);
void window_attention(const WindowAttentionParams& p);

void linear_backward(const LinearBackwardParams& p);
void layer_norm_backward(const LayerNormBackwardParams& p);
/// dx = dy * GELU'(x) for exact GELU; dx may alias dy.
void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n);
void graph_attention_backward(const GraphAttentionBackwardParams& p);
/// graph_attention_backward in two passes, for callers that cannot hold k|v and d(k|v) at once
/// (the aifs-n320 encoder: 4.4 GB each). The destination pass needs k, v and writes dq and the
/// edge gradients (dk, dv, src_offsets and edges_by_src are not read); the source pass needs
/// neither k nor v and writes dk, dv for the flattened source rows [row_begin, row_end) of
/// batch * n_src (row b * n_src + i), at dk/dv + (row - row_begin) * dkv_stride. Together, in
/// any split of the rows, the same values as graph_attention_backward.
void graph_attention_backward_destinations(const GraphAttentionBackwardParams& p,
                                           GraphAttentionBackwardScratch& scratch);
void graph_attention_backward_sources(const GraphAttentionBackwardParams& p,
                                      const GraphAttentionBackwardScratch& scratch,
                                      std::int64_t row_begin, std::int64_t row_end);
void window_attention_backward(const WindowAttentionBackwardParams& p);
/// Edges grouped by source: offsets [n_src+1] and CSR positions, increasing within a source.
/// dst_offsets may be a slice of a larger CSR (a chunk of destinations, offsets not rebased): its
/// edges keep their global positions.
void transpose_csr(const std::int64_t* dst_offsets, const std::int32_t* src, std::int64_t n_dst,
                   std::int64_t n_src, std::int64_t* src_offsets, std::int64_t* edges_by_src);

}  // namespace cpu

}  // namespace boreas::kernels
