// Fused graph-transformer attention over destination-sorted edges (see kernels.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
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

#pragma omp parallel
    {
        std::vector<float> q_edge(static_cast<std::size_t>(heads * de));  // W_e^h^T q^h
        std::vector<float> q_bias(static_cast<std::size_t>(heads));       // q^h . b_e^h
        std::vector<float> acc_v(static_cast<std::size_t>(width));
        std::vector<float> acc_e(static_cast<std::size_t>(heads * de));
        std::vector<float> sums(static_cast<std::size_t>(heads));
        std::vector<float> weights;  // [heads, degree]: scores, then softmax numerators
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
            std::fill(q_edge.begin(), q_edge.end(), 0.0f);
            for (std::int64_t h = 0; h < heads; ++h) {
                const float* qh = q + h * d;
                for (std::int64_t x = 0; x < d; ++x)
                    for (std::int64_t c = 0; c < de; ++c)
                        q_edge[h * de + c] += p.edge_weight[(h * d + x) * de + c] * qh[x];
                q_bias[h] = p.edge_bias ? simd::dot(p.edge_bias + h * d, qh, d) : 0.0f;
            }
            // Pass 1: all scores of this destination, then an exact (two-pass) softmax per head:
            // every destination has few edges, so the scores fit in L1 and no running rescale of
            // the accumulators is needed.
            if (static_cast<std::int64_t>(weights.size()) < heads * degree)
                weights.resize(static_cast<std::size_t>(heads * degree));
            for (std::int64_t e = 0; e < degree; ++e) {
                const float* k = p.k + (b * p.n_src + p.src[begin + e]) * kv_stride;
                const float* features = p.edge_features + (begin + e) * de;
                for (std::int64_t h = 0; h < heads; ++h) {
                    float score = q_bias[h] + simd::dot(q + h * d, k + h * d, d);
                    for (std::int64_t c = 0; c < de; ++c) score += q_edge[h * de + c] * features[c];
                    weights[h * degree + e] = score * scale;
                }
            }
            for (std::int64_t h = 0; h < heads; ++h) {
                float* w = weights.data() + h * degree;
                const float m = simd::max(w, degree);
                sums[h] = simd::exp_shifted_sum(w, m, degree);
                if (p.lse) p.lse[row * heads + h] = m + std::log(sums[h]);
            }
            // Pass 2: weighted sums of the values and of the edge features.
            std::fill(acc_v.begin(), acc_v.end(), 0.0f);
            std::fill(acc_e.begin(), acc_e.end(), 0.0f);
            for (std::int64_t e = 0; e < degree; ++e) {
                const float* v = p.v + (b * p.n_src + p.src[begin + e]) * kv_stride;
                const float* features = p.edge_features + (begin + e) * de;
                for (std::int64_t h = 0; h < heads; ++h) {
                    const float weight = weights[h * degree + e];
                    simd::axpy(acc_v.data() + h * d, weight, v + h * d, d);
                    for (std::int64_t c = 0; c < de; ++c) acc_e[h * de + c] += weight * features[c];
                }
            }
            // o = (sum alpha v) + W_e (sum alpha e) + b_e, since the weights sum to one.
            for (std::int64_t h = 0; h < heads; ++h) {
                const float inv = 1.0f / sums[h];
                for (std::int64_t x = 0; x < d; ++x) {
                    float value = acc_v[h * d + x];
                    const float* w = p.edge_weight + (h * d + x) * de;
                    for (std::int64_t c = 0; c < de; ++c) value += w[c] * acc_e[h * de + c];
                    out[h * d + x] = value * inv + (p.edge_bias ? p.edge_bias[h * d + x] : 0.0f);
                }
            }
        }
    }
}

}  // namespace boreas::kernels::cpu
