// The graph-attention forward against the definition (spec/model.md 3.3), computed naively in
// double: the edge embedding eps_ij = W_e e_ij + b_e formed per edge and channel, scores
// q.(k + eps) / sqrt(d), a softmax per destination and head, o = sum alpha (v + eps). The shapes
// cover the kernel's vector paths (8-head groups, 32-channel output blocks, 4-row projection
// tiles) and their remainders, destinations without edges, batches and fused row strides.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "boreas/kernels/kernels.hpp"
#include "support/bf16.hpp"

namespace {

using namespace boreas::kernels;

struct Shape {
    std::int64_t batch, n_src, n_dst, heads, d, edge_dim;
    bool bias, fused;
};

void PrintTo(const Shape& s, std::ostream* os) {
    *os << "batch " << s.batch << ", " << s.n_src << " -> " << s.n_dst << ", " << s.heads
        << " heads x " << s.d << ", edge_dim " << s.edge_dim << (s.bias ? ", bias" : "")
        << (s.fused ? ", fused strides" : "");
}

class GraphAttentionForward : public ::testing::TestWithParam<Shape> {};

TEST_P(GraphAttentionForward, MatchesTheDefinition) {
    const Shape s = GetParam();
    const std::int64_t width = s.heads * s.d, de = s.edge_dim;
    std::mt19937 generator(static_cast<std::uint32_t>(s.heads * 131 + s.d * 7 + de));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random = [&](std::int64_t n, float scale) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& x : v) x = scale * normal(generator);
        return v;
    };
    // Degrees 0..6 in turn (destination 0 has none); sources spread over the source rows.
    std::vector<std::int64_t> offsets = {0};
    std::vector<std::int32_t> src;
    for (std::int64_t j = 0; j < s.n_dst; ++j) {
        for (std::int64_t e = 0; e < j % 7; ++e)
            src.push_back(static_cast<std::int32_t>((j * 5 + e * 3) % s.n_src));
        offsets.push_back(static_cast<std::int64_t>(src.size()));
    }
    const auto edges = static_cast<std::int64_t>(src.size());
    // Fused layout: q beside another block of width channels, k and v side by side in one row.
    const std::int64_t q_stride = s.fused ? 2 * width : width, kv_stride = 2 * width;
    const auto q = random(s.batch * s.n_dst * q_stride, 0.5f);
    const auto kv = random(s.batch * s.n_src * kv_stride, 1.0f);
    const auto features = random(edges * de, 1.0f), w = random(width * de, 0.5f);
    const auto bias = random(width, 0.5f);
    // Fused shapes write every other block of width channels, as the model's out_stride does.
    const std::int64_t out_stride = s.fused ? 2 * width : width;
    std::vector<float> out(static_cast<std::size_t>(s.batch * s.n_dst * out_stride), NAN),
        lse(static_cast<std::size_t>(s.batch * s.n_dst * s.heads), NAN);

    GraphAttentionParams p;
    p.q = q.data();
    p.k = kv.data();
    p.v = kv.data() + width;
    p.edge_features = de ? features.data() : nullptr;
    p.edge_weight = de ? w.data() : nullptr;
    p.edge_bias = s.bias ? bias.data() : nullptr;
    p.dst_offsets = offsets.data();
    p.src = src.data();
    p.out = out.data();
    p.lse = lse.data();
    p.batch = s.batch;
    p.n_src = s.n_src;
    p.n_dst = s.n_dst;
    p.heads = s.heads;
    p.head_dim = s.d;
    p.edge_dim = de;
    p.q_stride = q_stride;
    p.kv_stride = kv_stride;
    p.out_stride = out_stride;
    cpu::graph_attention(p);

    const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
    std::vector<double> eps(static_cast<std::size_t>(width)), scores, expected(s.d);
    for (std::int64_t b = 0; b < s.batch; ++b)
        for (std::int64_t j = 0; j < s.n_dst; ++j) {
            const std::int64_t row = b * s.n_dst + j;
            for (std::int64_t h = 0; h < s.heads; ++h) {
                const auto begin = offsets[j], end = offsets[j + 1];
                auto edge_embedding = [&](std::int64_t e) {
                    for (std::int64_t x = h * s.d; x < (h + 1) * s.d; ++x) {
                        double sum = s.bias ? bias[x] : 0.0;
                        for (std::int64_t c = 0; c < de; ++c)
                            sum += static_cast<double>(w[x * de + c]) * features[e * de + c];
                        eps[x] = sum;
                    }
                };
                scores.assign(static_cast<std::size_t>(end - begin), 0.0);
                double maximum = -INFINITY;
                for (std::int64_t e = begin; e < end; ++e) {
                    edge_embedding(e);
                    const float* k = kv.data() + (b * s.n_src + src[e]) * kv_stride;
                    double dot = 0;
                    for (std::int64_t x = h * s.d; x < (h + 1) * s.d; ++x)
                        dot += static_cast<double>(q[row * q_stride + x]) * (k[x] + eps[x]);
                    scores[e - begin] = dot * scale;
                    maximum = std::max(maximum, scores[e - begin]);
                }
                double total = 0;
                for (auto& score : scores) total += (score = std::exp(score - maximum));
                std::fill(expected.begin(), expected.end(), 0.0);
                for (std::int64_t e = begin; e < end; ++e) {
                    edge_embedding(e);
                    const float* v = kv.data() + (b * s.n_src + src[e]) * kv_stride + width;
                    for (std::int64_t x = 0; x < s.d; ++x)
                        expected[x] +=
                            scores[e - begin] / total * (v[h * s.d + x] + eps[h * s.d + x]);
                }
                for (std::int64_t x = 0; x < s.d; ++x)
                    ASSERT_NEAR(out[row * out_stride + h * s.d + x], expected[x], 2e-5)
                        << "batch " << b << ", destination " << j << ", head " << h << ", channel "
                        << x;
                // PyG's scatter leaves zeros where nothing arrives; lse is 0 there.
                const double expected_lse = end > begin ? maximum + std::log(total) : 0.0;
                ASSERT_NEAR(lse[row * s.heads + h], expected_lse,
                            2e-5 * std::max(1.0, std::abs(expected_lse)))
                    << "destination " << j << ", head " << h;
            }
        }

    // Keys and values stored as bf16 bits (the bf16 forward) give what the fp32 kernel gives on
    // the same values rounded to bf16: the loads widen them exactly; only the order of the fp32
    // sums may differ.
    std::vector<float> rounded = kv;
    std::vector<std::uint16_t> bits(kv.size());
    for (std::size_t i = 0; i < kv.size(); ++i) {
        rounded[i] = boreas::testing_support::round_to_bf16(kv[i]);
        bits[i] = boreas::testing_support::bf16_bits(kv[i]);
    }
    std::vector<float> from_rounded(out.size(), NAN), from_bits(out.size(), NAN);
    p.k = rounded.data();
    p.v = rounded.data() + width;
    p.out = from_rounded.data();
    p.lse = nullptr;
    cpu::graph_attention(p);
    p.k = p.v = nullptr;
    p.k_bf16 = bits.data();
    p.v_bf16 = bits.data() + width;
    p.out = from_bits.data();
    cpu::graph_attention(p);
    for (std::int64_t row = 0; row < s.batch * s.n_dst; ++row)
        for (std::int64_t x = 0; x < width; ++x) {
            const float a = from_bits[row * out_stride + x], b = from_rounded[row * out_stride + x];
            ASSERT_NEAR(a, b, 1e-5 * (1 + std::abs(b))) << "bf16 keys and values, row " << row;
        }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GraphAttentionForward,
    ::testing::Values(
        // small's heads, edge_dim 3 + 8 (16 projection columns); 43 destinations: 3 blocks of
        // 12 (two 6-row projection tiles each) and a 7-row tail (a 6-row and a one-row tile)
        Shape{1, 9, 43, 8, 32, 11, true, false},
        Shape{2, 7, 11, 16, 64, 3, true, true},  // aifs' heads, fused strides
        Shape{1, 9, 21, 8, 32, 4, false, true},  // even edge_dim, no bias, in the 32-channel blocks
        Shape{1, 5, 10, 4, 8, 0, false, false},  // tiny's heads, no edge term
        Shape{2, 6, 9, 9, 40, 5, true, true},    // 8-head group + 1, 32 + 8 channels
        Shape{1, 6, 7, 3, 5, 2, false, false}),  // scalar head dots and outputs
    [](const ::testing::TestParamInfo<Shape>& param) {
        const Shape& s = param.param;
        return "heads" + std::to_string(s.heads) + "_d" + std::to_string(s.d) + "_de" +
               std::to_string(s.edge_dim) + (s.fused ? "_fused" : "");
    });

}  // namespace
