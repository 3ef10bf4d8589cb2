// Fused graph-transformer attention over destination-sorted edges (see kernels.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "edge_projection.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
namespace {

constexpr std::int64_t kRowBlock = 12;  // destinations whose edge projections run together

// The sources' keys and values are fp32, or bf16 bits (GraphAttentionParams::k_bf16): the kernel
// is one template over the element, widened to fp32 as it is loaded.
inline float widen(float v) {
    return v;
}
inline float widen(std::uint16_t v) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(v) << 16);
}
#ifdef BOREAS_SIMD_AVX2
inline __m256 load8(const float* p) {
    return _mm256_loadu_ps(p);
}
inline __m256 load8(const std::uint16_t* p) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}
#endif

/// The cache lines of n elements from x, ahead of a gathered row.
template <typename T>
inline void prefetch(const T* x, std::int64_t n) {
    simd::prefetch_row(reinterpret_cast<const float*>(x),
                       n * static_cast<std::int64_t>(sizeof(T)) / 4);
}

/// out[h] = q^h . k^h for h < heads (simd::head_dots with k widened from T).
template <typename T>
void head_dots(const float* q, const T* k, std::int64_t heads, std::int64_t d, float* out) {
    if constexpr (std::is_same_v<T, float>) {
        simd::head_dots(q, k, heads, d, out);
    } else {
        for (std::int64_t h = 0; h < heads; ++h) {
            const float* a = q + h * d;
            const T* b = k + h * d;
            std::int64_t i = 0;
            float sum = 0;
#ifdef BOREAS_SIMD_AVX2
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            for (; i + 16 <= d; i += 16) {
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load8(b + i), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load8(b + i + 8), acc1);
            }
            for (; i + 8 <= d; i += 8)
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load8(b + i), acc0);
            sum = simd::horizontal_sum(_mm256_add_ps(acc0, acc1));
#endif
            for (; i < d; ++i) sum += a[i] * widen(b[i]);
            out[h] = sum;
        }
    }
}

/// The inputs of one head's output row (see head_output).
template <typename T>
struct HeadOutput {
    const T* values;              // v^h of source row 0; rows `stride` apart
    const std::int32_t* sources;  // the destination's edges
    std::int64_t degree, stride, heads;
    const float* weights;    // softmax numerators of head h, `heads` apart per edge
    float inv;               // 1 / their sum
    const float* edge_sums;  // sum_e numerator e_e, `heads` apart per column (null if no edge_dim)
    std::int64_t edge_dim;
    const float* edge_weight_t;  // W_e^h transposed, rows `width` apart (null if no edge_dim)
    std::int64_t width;
    const float* bias;  // b_e^h or null
};

#ifdef BOREAS_SIMD_AVX2
/// out[x] for x in [x0, x0 + 8 V): V vectors of accumulators live in registers through the
/// edges and the edge-feature columns, and out is written once.
template <int V, typename T>
void head_output_block(const HeadOutput<T>& in, std::int64_t x0, float* out) {
    // Three independent accumulator sets (values; even and odd edge-feature columns) keep the
    // dependency chains short: a head's d channels alone give too few vectors to hide latency.
    __m256 values[V], even[V], odd[V];
    for (int i = 0; i < V; ++i) values[i] = even[i] = odd[i] = _mm256_setzero_ps();
    for (std::int64_t e = 0; e < in.degree; ++e) {
        const __m256 w = _mm256_broadcast_ss(in.weights + e * in.heads);
        const T* v = in.values + in.sources[e] * in.stride + x0;
        for (int i = 0; i < V; ++i) values[i] = _mm256_fmadd_ps(w, load8(v + 8 * i), values[i]);
    }
    std::int64_t c = 0;
    for (; c + 2 <= in.edge_dim; c += 2) {
        const __m256 a0 = _mm256_set1_ps(in.edge_sums[c * in.heads] * in.inv),
                     a1 = _mm256_set1_ps(in.edge_sums[(c + 1) * in.heads] * in.inv);
        const float* w0 = in.edge_weight_t + c * in.width + x0;
        const float* w1 = w0 + in.width;
        for (int i = 0; i < V; ++i) {
            even[i] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(w0 + 8 * i), even[i]);
            odd[i] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(w1 + 8 * i), odd[i]);
        }
    }
    if (c < in.edge_dim) {
        const __m256 a = _mm256_set1_ps(in.edge_sums[c * in.heads] * in.inv);
        const float* w = in.edge_weight_t + c * in.width + x0;
        for (int i = 0; i < V; ++i)
            even[i] = _mm256_fmadd_ps(a, _mm256_loadu_ps(w + 8 * i), even[i]);
    }
    const __m256 inv = _mm256_set1_ps(in.inv);
    for (int i = 0; i < V; ++i) {
        __m256 result = _mm256_fmadd_ps(values[i], inv, _mm256_add_ps(even[i], odd[i]));
        if (in.bias) result = _mm256_add_ps(result, _mm256_loadu_ps(in.bias + x0 + 8 * i));
        _mm256_storeu_ps(out + x0 + 8 * i, result);
    }
}
#endif

/// o^h = (sum_e a_e v_e^h + W_e^h sum_e a_e e_e) / sum_e a_e + b_e^h for the softmax numerators
/// a_e of head h: the normalised weights sum to one, so the bias enters once.
template <typename T>
void head_output(const HeadOutput<T>& in, std::int64_t d, float* out) {
    std::int64_t x0 = 0;
#ifdef BOREAS_SIMD_AVX2
    for (; x0 + 32 <= d; x0 += 32) head_output_block<4>(in, x0, out);
    for (; x0 + 8 <= d; x0 += 8) head_output_block<1>(in, x0, out);
#endif
    for (; x0 < d; ++x0) {
        float sum = 0;
        for (std::int64_t e = 0; e < in.degree; ++e)
            sum += in.weights[e * in.heads] * widen(in.values[in.sources[e] * in.stride + x0]);
        sum *= in.inv;
        for (std::int64_t c = 0; c < in.edge_dim; ++c)
            sum += in.edge_sums[c * in.heads] * in.inv * in.edge_weight_t[c * in.width + x0];
        out[x0] = in.bias ? sum + in.bias[x0] : sum;
    }
}

/// q_edge_t[c * heads + h] = row_edge[h * pc + c] for c < de, q_bias[h] = row_edge[h * pc +
/// bias_column]: the row's edge projections from head-major to head-minor, eight heads at a
/// time through 8 x 8 transposes (the element by element loop was 6 % of the kernel).
void transpose_projection(const float* row_edge, std::int64_t heads, std::int64_t pc,
                          std::int64_t de, std::int64_t bias_column, float* q_edge_t,
                          float* q_bias) {
    std::int64_t h0 = 0;
#ifdef BOREAS_SIMD_AVX2
    for (; h0 + 8 <= heads; h0 += 8)
        for (std::int64_t c0 = 0; c0 < pc; c0 += 8) {  // pc is a multiple of 8
            __m256 block[8];
            for (int j = 0; j < 8; ++j) block[j] = _mm256_loadu_ps(row_edge + (h0 + j) * pc + c0);
            simd::transpose8x8(block);
            for (std::int64_t c = c0; c < std::min(c0 + 8, de); ++c)
                _mm256_storeu_ps(q_edge_t + c * heads + h0, block[c - c0]);
            if (bias_column >= c0 && bias_column < c0 + 8)
                _mm256_storeu_ps(q_bias + h0, block[bias_column - c0]);
        }
#endif
    for (std::int64_t h = h0; h < heads; ++h) {
        for (std::int64_t c = 0; c < de; ++c) q_edge_t[c * heads + h] = row_edge[h * pc + c];
        q_bias[h] = row_edge[h * pc + bias_column];
    }
}

template <typename T>
void graph_attention_over(const GraphAttentionParams& p, const T* k, const T* v) {
    const auto heads = p.heads, d = p.head_dim, de = p.edge_dim, width = heads * d;
    BOREAS_CHECK(de == 0 || (p.edge_features && p.edge_weight),
                 "graph_attention: edge_dim {} needs edge features and an edge weight", de);
    const auto q_stride = p.q_stride ? p.q_stride : width;
    const auto kv_stride = p.kv_stride ? p.kv_stride : width;
    const auto out_stride = p.out_stride ? p.out_stride : width;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::int64_t rows = p.batch * p.n_dst, blocks = (rows + kRowBlock - 1) / kRowBlock;

    // W_e transposed to [edge_dim, width] so that the output's W_e (sum alpha e) runs along
    // contiguous channels.
    std::vector<float> edge_weight_t(static_cast<std::size_t>(de * width));
    for (std::int64_t r = 0; r < width; ++r)
        for (std::int64_t c = 0; c < de; ++c)
            edge_weight_t[c * width + r] = p.edge_weight[r * de + c];

    const EdgeProjection projection(p.edge_weight, p.edge_bias, width, de);
    const std::int64_t pc = projection.columns(), bias_column = projection.bias_column();

#pragma omp parallel
    {
        // Per row and head: W_e^h^T q^h (de values), then q^h . b_e^h (EdgeProjection's layout).
        std::vector<float> q_edge(static_cast<std::size_t>(kRowBlock * heads * pc));
        // The per-edge work runs across heads (8 lanes = 8 heads), so these are head-minor:
        // q_edge_t [de, heads], scores [degree, heads] (then the softmax numerators), the weighted
        // edge-feature sums acc_e [de, heads].
        std::vector<float> q_edge_t(static_cast<std::size_t>(de * heads)),
            q_bias(static_cast<std::size_t>(heads));
        std::vector<float> acc_e(static_cast<std::size_t>(de * heads)),
            maxima(static_cast<std::size_t>(heads)), sums(static_cast<std::size_t>(heads));
        std::vector<float> scores;
#pragma omp for schedule(dynamic, 2)
        for (std::int64_t block = 0; block < blocks; ++block) {
            const std::int64_t first = block * kRowBlock;
            const std::int64_t count = std::min(kRowBlock, rows - first);
            projection.project_rows(p.q + first * q_stride, q_stride, count, heads, d,
                                    q_edge.data());
            for (std::int64_t row = first; row < first + count; ++row) {
                const std::int64_t b = row / p.n_dst, j = row % p.n_dst;
                const float* q = p.q + row * q_stride;
                float* out = p.out + row * out_stride;
                const auto begin = p.dst_offsets[j], end = p.dst_offsets[j + 1];
                const std::int64_t degree = end - begin;
                if (degree == 0) {  // no incoming edge: PyG's scatter-sum leaves zeros
                    std::fill(out, out + width, 0.0f);
                    if (p.lse) std::fill(p.lse + row * heads, p.lse + (row + 1) * heads, 0.0f);
                    continue;
                }
                const T* k_base = k + b * p.n_src * kv_stride;
                const T* v_base = v + b * p.n_src * kv_stride;
                const std::int32_t* sources = p.src + begin;
                const float* features = p.edge_features + begin * de;
                const float* row_edge = q_edge.data() + (row - first) * heads * pc;
                transpose_projection(row_edge, heads, pc, de, bias_column, q_edge_t.data(),
                                     q_bias.data());
                if (static_cast<std::int64_t>(scores.size()) < degree * heads)
                    scores.resize(static_cast<std::size_t>(degree * heads));
                // Pass 1: all scores of this destination (a destination has few edges: they stay
                // in L1), then an exact two-pass softmax per head, so nothing needs a rescale.
                // The v rows come in with the k rows, so pass 2 finds them in cache.
                prefetch(v_base + sources[0] * kv_stride, width);
                for (std::int64_t e = 0; e < degree; ++e) {
                    if (e + 1 < degree) {
                        prefetch(k_base + sources[e + 1] * kv_stride, width);
                        prefetch(v_base + sources[e + 1] * kv_stride, width);
                    }
                    float* score = scores.data() + e * heads;
                    head_dots(q, k_base + sources[e] * kv_stride, heads, d, score);
                    simd::add(score, q_bias.data(), heads);
                    simd::add_scaled_columns(score, q_edge_t.data(), features + e * de, de, heads);
                    simd::scale(score, scale, heads);
                }
                simd::column_softmax_numerators(scores.data(), degree, heads, maxima.data(),
                                                sums.data());
                if (p.lse)
                    for (std::int64_t h = 0; h < heads; ++h)
                        p.lse[row * heads + h] = maxima[h] + std::log(sums[h]);
                // Pass 2: the numerator-weighted edge features, then each head's output.
                std::fill(acc_e.begin(), acc_e.end(), 0.0f);
                for (std::int64_t e = 0; e < degree; ++e)
                    simd::add_outer(acc_e.data(), features + e * de, de, scores.data() + e * heads,
                                    heads);
                for (std::int64_t h = 0; h < heads; ++h)
                    head_output(HeadOutput<T>{v_base + h * d, sources, degree, kv_stride, heads,
                                              scores.data() + h, 1.0f / sums[h],
                                              de ? acc_e.data() + h : nullptr, de,
                                              de ? edge_weight_t.data() + h * d : nullptr, width,
                                              p.edge_bias ? p.edge_bias + h * d : nullptr},
                                d, out + h * d);
            }
        }
    }
}

}  // namespace

void graph_attention(const GraphAttentionParams& p) {
    const bool bf16 = p.k_bf16 != nullptr;
    BOREAS_CHECK((bf16 ? p.v_bf16 != nullptr : (p.k && p.v)) && p.q && p.out && p.dst_offsets &&
                     (p.src || p.n_dst == 0) && p.head_dim > 0,
                 "graph_attention: invalid parameters");
    if (bf16)
        graph_attention_over(p, p.k_bf16, p.v_bf16);
    else
        graph_attention_over(p, p.k, p.v);
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
