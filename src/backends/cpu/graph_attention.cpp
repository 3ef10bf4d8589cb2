// Fused graph-transformer attention over destination-sorted edges (see kernels.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"

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
        std::vector<float> running_max(static_cast<std::size_t>(heads));
        std::vector<float> running_sum(static_cast<std::size_t>(heads));
#pragma omp for schedule(dynamic, 16)
        for (std::int64_t row = 0; row < rows; ++row) {
            const std::int64_t b = row / p.n_dst, j = row % p.n_dst;
            const float* q = p.q + row * q_stride;
            float* out = p.out + row * out_stride;
            const auto begin = p.dst_offsets[j], end = p.dst_offsets[j + 1];
            if (begin == end) {  // no incoming edge: PyG's scatter-sum leaves zeros
                std::fill(out, out + width, 0.0f);
                if (p.lse) std::fill(p.lse + row * heads, p.lse + (row + 1) * heads, 0.0f);
                continue;
            }
            for (std::int64_t h = 0; h < heads; ++h) {
                const float* qh = q + h * d;
                for (std::int64_t c = 0; c < de; ++c) {
                    float sum = 0;
                    for (std::int64_t x = 0; x < d; ++x) sum += p.edge_weight[(h * d + x) * de + c] * qh[x];
                    q_edge[h * de + c] = sum;
                }
                float bias_term = 0;
                if (p.edge_bias)
                    for (std::int64_t x = 0; x < d; ++x) bias_term += p.edge_bias[h * d + x] * qh[x];
                q_bias[h] = bias_term;
            }
            std::fill(acc_v.begin(), acc_v.end(), 0.0f);
            std::fill(acc_e.begin(), acc_e.end(), 0.0f);
            std::fill(running_max.begin(), running_max.end(), -std::numeric_limits<float>::infinity());
            std::fill(running_sum.begin(), running_sum.end(), 0.0f);
            for (auto e = begin; e < end; ++e) {
                const std::int64_t source = b * p.n_src + p.src[e];
                const float* k = p.k + source * kv_stride;
                const float* v = p.v + source * kv_stride;
                const float* features = p.edge_features + e * de;
                for (std::int64_t h = 0; h < heads; ++h) {
                    float score = q_bias[h];
                    for (std::int64_t x = 0; x < d; ++x) score += q[h * d + x] * k[h * d + x];
                    for (std::int64_t c = 0; c < de; ++c) score += q_edge[h * de + c] * features[c];
                    score *= scale;
                    const float new_max = std::max(running_max[h], score);
                    const float correction = std::exp(running_max[h] - new_max);
                    const float weight = std::exp(score - new_max);
                    running_sum[h] = running_sum[h] * correction + weight;
                    running_max[h] = new_max;
                    float* av = acc_v.data() + h * d;
                    for (std::int64_t x = 0; x < d; ++x) av[x] = av[x] * correction + weight * v[h * d + x];
                    float* ae = acc_e.data() + h * de;
                    for (std::int64_t c = 0; c < de; ++c) ae[c] = ae[c] * correction + weight * features[c];
                }
            }
            if (p.lse)
                for (std::int64_t h = 0; h < heads; ++h)
                    p.lse[row * heads + h] = running_max[h] + std::log(running_sum[h]);
            // o = (sum alpha v) + W_e (sum alpha e) + b_e, since the weights sum to one.
            for (std::int64_t h = 0; h < heads; ++h) {
                const float inv = 1.0f / running_sum[h];
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
