// Fused graph-transformer attention over destination-sorted edges (see kernels.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "edge_projection.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu {

void graph_attention(const GraphAttentionParams& p) {
    const auto heads = p.heads, d = p.head_dim, de = p.edge_dim, width = heads * d;
    BOREAS_CHECK(p.q && p.k && p.v && p.out && p.dst_offsets && (p.src || p.n_dst == 0) && d > 0,
                 "graph_attention: invalid parameters");
    BOREAS_CHECK(de == 0 || (p.edge_features && p.edge_weight),
                 "graph_attention: edge_dim {} needs edge features and an edge weight", de);
    const auto q_stride = p.q_stride ? p.q_stride : width;
    const auto kv_stride = p.kv_stride ? p.kv_stride : width;
    const auto out_stride = p.out_stride ? p.out_stride : width;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::int64_t rows = p.batch * p.n_dst;

    // W_e transposed to [edge_dim, width] so that the per-destination projections W_e^T q and
    // W_e (sum alpha e) run along contiguous channels.
    std::vector<float> edge_weight_t(static_cast<std::size_t>(de * width));
    for (std::int64_t r = 0; r < width; ++r)
        for (std::int64_t c = 0; c < de; ++c)
            edge_weight_t[c * width + r] = p.edge_weight[r * de + c];

    const EdgeProjection projection(p.edge_weight, p.edge_bias, width, de);
    const std::int64_t pc = projection.columns(), bias_column = projection.bias_column();

#pragma omp parallel
    {
        // Per head: W_e^h^T q^h (de values), then q^h . b_e^h (EdgeProjection's layout).
        std::vector<float> q_edge(static_cast<std::size_t>(heads * pc));
        // The per-edge work runs across heads (8 lanes = 8 heads), so these are head-minor:
        // q_edge_t [de, heads], scores [degree, heads] (then the softmax numerators), the weighted
        // edge-feature sums acc_e [de, heads].
        std::vector<float> q_edge_t(static_cast<std::size_t>(de * heads)),
            q_bias(static_cast<std::size_t>(heads));
        std::vector<float> acc_e(static_cast<std::size_t>(de * heads)),
            maxima(static_cast<std::size_t>(heads)), sums(static_cast<std::size_t>(heads));
        std::vector<float> scores;
#pragma omp for schedule(dynamic, 16)
        for (std::int64_t row = 0; row < rows; ++row) {
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
            const float* k_base = p.k + b * p.n_src * kv_stride;
            const float* v_base = p.v + b * p.n_src * kv_stride;
            const std::int32_t* sources = p.src + begin;
            const float* features = p.edge_features + begin * de;
            projection.project(q, heads, d, q_edge.data());
            for (std::int64_t h = 0; h < heads; ++h) {
                for (std::int64_t c = 0; c < de; ++c) q_edge_t[c * heads + h] = q_edge[h * pc + c];
                q_bias[h] = q_edge[h * pc + bias_column];
            }
            if (static_cast<std::int64_t>(scores.size()) < degree * heads)
                scores.resize(static_cast<std::size_t>(degree * heads));
            // Pass 1: all scores of this destination (a destination has few edges: they stay in
            // L1), then an exact two-pass softmax per head, so the accumulators need no rescale.
            for (std::int64_t e = 0; e < degree; ++e) {
                if (e + 1 < degree) simd::prefetch_row(k_base + sources[e + 1] * kv_stride, width);
                const float* k = k_base + sources[e] * kv_stride;
                float* score = scores.data() + e * heads;
                for (std::int64_t h = 0; h < heads; ++h)
                    score[h] = q_bias[h] + simd::dot(q + h * d, k + h * d, d);
                simd::add_scaled_columns(score, q_edge_t.data(), features + e * de, de, heads);
                simd::scale(score, scale, heads);
            }
            simd::prefetch_row(v_base + sources[0] * kv_stride, width);
            simd::column_softmax_numerators(scores.data(), degree, heads, maxima.data(),
                                            sums.data());
            if (p.lse)
                for (std::int64_t h = 0; h < heads; ++h)
                    p.lse[row * heads + h] = maxima[h] + std::log(sums[h]);
            // Pass 2: weighted sums of the values (into out) and of the edge features.
            std::fill(out, out + width, 0.0f);
            std::fill(acc_e.begin(), acc_e.end(), 0.0f);
            for (std::int64_t e = 0; e < degree; ++e) {
                if (e + 1 < degree) simd::prefetch_row(v_base + sources[e + 1] * kv_stride, width);
                const float* v = v_base + sources[e] * kv_stride;
                const float* weight = scores.data() + e * heads;
                for (std::int64_t h = 0; h < heads; ++h)
                    simd::axpy(out + h * d, weight[h], v + h * d, d);
                simd::add_outer(acc_e.data(), features + e * de, de, weight, heads);
            }
            // o = (sum alpha v + W_e sum alpha e) / sum + b_e: the normalised weights sum to one.
            for (std::int64_t h = 0; h < heads; ++h) {
                const float inv = 1.0f / sums[h];
                float* oh = out + h * d;
                simd::scale(oh, inv, d);
                for (std::int64_t c = 0; c < de; ++c)
                    simd::axpy(oh, acc_e[c * heads + h] * inv,
                               edge_weight_t.data() + c * width + h * d, d);
                if (p.edge_bias) simd::add(oh, p.edge_bias + h * d, d);
            }
        }
    }
}

}  // namespace boreas::kernels::cpu
