// Finite-difference checks of every backward kernel on random small shapes: the analytic
// gradient of L = sum(r * f(inputs)) for a random r against central differences of L.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "boreas/kernels/kernels.hpp"
#include "support/bf16.hpp"

namespace {

using namespace boreas::kernels;

std::vector<float> random_vector(std::size_t n, std::mt19937& generator, float scale = 1.0f) {
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = normal(generator);
    return v;
}

double weighted_sum(const std::vector<float>& y, const std::vector<float>& r) {
    double sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * r[i];
    return sum;
}

/// Checks `analytic[i]` against central differences of `loss` w.r.t. `values[i]` for a sample
/// of indices.
void check_gradient(const char* what, std::vector<float>& values,
                    const std::vector<float>& analytic, const std::function<double()>& loss,
                    float step = 1e-2f, double tolerance = 2e-2) {
    ASSERT_EQ(values.size(), analytic.size()) << what;
    std::mt19937 pick(7);
    const std::size_t samples = std::min<std::size_t>(values.size(), 24);
    double scale = 1e-3;
    for (float g : analytic) scale = std::max(scale, static_cast<double>(std::abs(g)));
    for (std::size_t s = 0; s < samples; ++s) {
        const std::size_t i = values.size() <= 24 ? s : pick() % values.size();
        const float saved = values[i];
        values[i] = saved + step;
        const double plus = loss();
        values[i] = saved - step;
        const double minus = loss();
        values[i] = saved;
        const double numeric = (plus - minus) / (2.0 * step);
        EXPECT_NEAR(analytic[i], numeric, tolerance * scale) << what << "[" << i << "]";
    }
}

TEST(Backward, Linear) {
    std::mt19937 generator(1);
    const int rows = 5, in = 7, out = 3;
    auto x = random_vector(rows * in, generator), w = random_vector(out * in, generator),
         b = random_vector(out, generator), r = random_vector(rows * out, generator);
    auto loss = [&] {
        std::vector<float> y(rows * out);
        LinearParams p{x.data(), w.data(), b.data(), y.data(), rows, in, out};
        cpu::linear(p);
        return weighted_sum(y, r);
    };
    std::vector<float> dx(x.size()), dw(w.size(), 0.0f), db(b.size(), 0.0f);
    LinearBackwardParams bp{x.data(),  w.data(), r.data(), dx.data(), dw.data(),
                            db.data(), rows,     in,       out};
    cpu::linear_backward(bp);
    check_gradient("dx", x, dx, loss);
    check_gradient("dW", w, dw, loss);
    check_gradient("db", b, db, loss);
}

TEST(Backward, LayerNorm) {
    std::mt19937 generator(2);
    const int rows = 4, c = 9;
    auto x = random_vector(rows * c, generator), gamma = random_vector(c, generator),
         beta = random_vector(c, generator), r = random_vector(rows * c, generator);
    auto loss = [&] {
        std::vector<float> y(rows * c);
        LayerNormParams p{x.data(), y.data(), gamma.data(), beta.data(), rows, c};
        cpu::layer_norm(p);
        return weighted_sum(y, r);
    };
    std::vector<float> dx(x.size()), dgamma(c, 0.0f), dbeta(c, 0.0f);
    LayerNormBackwardParams bp{x.data(),      gamma.data(), r.data(), dx.data(),
                               dgamma.data(), dbeta.data(), rows,     c};
    cpu::layer_norm_backward(bp);
    check_gradient("dx", x, dx, loss, 1e-2f);
    check_gradient("dgamma", gamma, dgamma, loss);
    check_gradient("dbeta", beta, dbeta, loss);
}

TEST(Backward, Gelu) {
    std::mt19937 generator(3);
    auto x = random_vector(40, generator, 2.0f), r = random_vector(40, generator);
    auto loss = [&] {
        auto y = x;
        cpu::gelu(y.data(), static_cast<std::int64_t>(y.size()));
        return weighted_sum(y, r);
    };
    std::vector<float> dx(x.size());
    cpu::gelu_backward(x.data(), r.data(), dx.data(), static_cast<std::int64_t>(x.size()));
    check_gradient("dx", x, dx, loss, 1e-3f);
}

/// Points a graph-attention call at dense tensors: q [batch n_dst, heads d], k and v
/// [batch n_src, heads d], out and lse like q; edge features, W_e and b_e.
GraphAttentionParams graph_params(const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v, const std::vector<float>& features,
                                  const std::vector<float>& w, const std::vector<float>& bias,
                                  const std::vector<std::int64_t>& offsets,
                                  const std::vector<std::int32_t>& src, std::vector<float>& out,
                                  std::vector<float>& lse, std::int64_t batch, std::int64_t n_src,
                                  std::int64_t n_dst, std::int64_t heads, std::int64_t d,
                                  std::int64_t de) {
    GraphAttentionParams p;
    p.q = q.data();
    p.k = k.data();
    p.v = v.data();
    p.edge_features = features.data();
    p.edge_weight = w.data();
    p.edge_bias = bias.data();
    p.dst_offsets = offsets.data();
    p.src = src.data();
    p.out = out.data();
    p.lse = lse.data();
    p.batch = batch;
    p.n_src = n_src;
    p.n_dst = n_dst;
    p.heads = heads;
    p.head_dim = d;
    p.edge_dim = de;
    return p;
}

/// The small bipartite case the graph-attention tests share (destination 2 has no incoming
/// edge; source 5 has none outgoing): q, k, v, edge features, W_e, b_e and an upstream
/// gradient r, drawn in that order from `seed`.
struct GraphCase {
    static constexpr std::int64_t batch = 2, n_src = 6, n_dst = 4, heads = 2, d = 3, de = 5,
                                  width = heads * d;
    std::vector<std::int64_t> offsets = {0, 3, 5, 5, 9};
    std::vector<std::int32_t> src = {0, 1, 4, 2, 3, 0, 1, 2, 4};
    std::int64_t edges = 9;
    std::vector<float> q, k, v, features, w, bias, r;

    explicit GraphCase(unsigned seed) {
        std::mt19937 generator(seed);
        q = random_vector(batch * n_dst * width, generator);
        k = random_vector(batch * n_src * width, generator);
        v = random_vector(batch * n_src * width, generator);
        features = random_vector(edges * de, generator);
        w = random_vector(width * de, generator, 0.5f);
        bias = random_vector(width, generator);
        r = random_vector(batch * n_dst * width, generator);
    }
};

TEST(Backward, GraphAttention) {
    GraphCase c(4);
    auto& [offsets, src, edges, q, k, v, features, w, bias, r] = c;
    constexpr auto batch = GraphCase::batch, n_src = GraphCase::n_src, n_dst = GraphCase::n_dst,
                   heads = GraphCase::heads, d = GraphCase::d, de = GraphCase::de,
                   width = GraphCase::width;
    std::vector<float> out(batch * n_dst * width), lse(batch * n_dst * heads);
    auto forward = [&] {
        return graph_params(q, k, v, features, w, bias, offsets, src, out, lse, batch, n_src, n_dst,
                            heads, d, de);
    };
    auto loss = [&] {
        cpu::graph_attention(forward());
        return weighted_sum(out, r);
    };
    loss();
    std::vector<std::int64_t> src_offsets(n_src + 1), by_src(edges);
    cpu::transpose_csr(offsets.data(), src.data(), n_dst, n_src, src_offsets.data(), by_src.data());
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size()), dw(w.size(), 0.0f),
        db(bias.size(), 0.0f), dfeatures(features.size(), 0.0f);
    GraphAttentionBackwardParams bp;
    bp.forward = forward();
    bp.d_out = r.data();
    bp.src_offsets = src_offsets.data();
    bp.edges_by_src = by_src.data();
    bp.dq = dq.data();
    bp.dk = dk.data();
    bp.dv = dv.data();
    bp.d_edge_weight = dw.data();
    bp.d_edge_bias = db.data();
    bp.d_edge_features = dfeatures.data();
    cpu::graph_attention_backward(bp);
    check_gradient("dq", q, dq, loss);
    check_gradient("dk", k, dk, loss);
    check_gradient("dv", v, dv, loss);
    check_gradient("dW_edge", w, dw, loss);
    check_gradient("db_edge", bias, db, loss);
    check_gradient("dedge_features", features, dfeatures, loss);
    // Rows of the isolated destination get no gradient into q.
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t x = 0; x < width; ++x) EXPECT_EQ(dq[(b * n_dst + 2) * width + x], 0.0f);
}

TEST(Backward, GraphAttentionTwoPassesMatchOne) {
    // The destination pass, then the source pass over uneven row ranges that cross a batch
    // element (as the encoder runs it after releasing k|v): the same bits as one call. The
    // second half of the destinations is a CSR slice (offsets not rebased), as a decoder chunk.
    GraphCase c(7);
    auto& [offsets, src, edges, q, k, v, features, w, bias, r] = c;
    constexpr auto batch = GraphCase::batch, n_src = GraphCase::n_src, n_dst = GraphCase::n_dst,
                   heads = GraphCase::heads, d = GraphCase::d, de = GraphCase::de,
                   width = GraphCase::width;
    for (const std::int64_t j0 : {std::int64_t{0}, std::int64_t{2}}) {
        const std::int64_t rows = n_dst - j0;
        std::vector<float> out(batch * rows * width), lse(batch * rows * heads);
        auto p = graph_params(q, k, v, features, w, bias, offsets, src, out, lse, batch, n_src,
                              rows, heads, d, de);
        p.dst_offsets = offsets.data() + j0;
        cpu::graph_attention(p);
        std::vector<std::int64_t> src_offsets(n_src + 1), by_src(offsets[n_dst] - offsets[j0]);
        cpu::transpose_csr(p.dst_offsets, src.data(), rows, n_src, src_offsets.data(),
                           by_src.data());
        auto run = [&](bool two_passes) {
            std::vector<float> dq(batch * rows * width), dk(k.size(), -1.0f), dv(v.size(), -1.0f),
                dw(w.size(), 0.0f), db(bias.size(), 0.0f), dfeatures(features.size(), 0.0f);
            GraphAttentionBackwardParams bp;
            bp.forward = p;
            bp.d_out = r.data();
            bp.src_offsets = src_offsets.data();
            bp.edges_by_src = by_src.data();
            bp.dq = dq.data();
            bp.dk = dk.data();
            bp.dv = dv.data();
            bp.d_edge_weight = dw.data();
            bp.d_edge_bias = db.data();
            bp.d_edge_features = dfeatures.data();
            if (!two_passes) {
                cpu::graph_attention_backward(bp);
            } else {
                GraphAttentionBackwardScratch scratch;
                cpu::graph_attention_backward_destinations(bp, scratch);
                for (const auto& [begin, end] :
                     {std::pair<std::int64_t, std::int64_t>{0, 4}, {4, 5}, {5, 12}}) {
                    bp.dk = dk.data() + begin * width;
                    bp.dv = dv.data() + begin * width;
                    cpu::graph_attention_backward_sources(bp, scratch, begin, end);
                }
            }
            return std::vector<std::vector<float>>{dq, dk, dv, dw, db, dfeatures};
        };
        const auto one = run(false), two = run(true);
        for (std::size_t i = 0; i < one.size(); ++i)
            EXPECT_EQ(one[i], two[i]) << "output " << i << ", destinations from " << j0;
    }
}

TEST(Backward, GraphAttentionFusedLayoutMatchesSeparate) {
    // The training block's layout: q beside the skip projection ([n_dst, 2C], q first), k|v side
    // by side ([n_src, 2C]) and their gradients likewise. Same values as separate matrices.
    std::mt19937 generator(10);
    const std::int64_t batch = 2, n_src = 6, n_dst = 4, heads = 2, d = 3, de = 5, width = heads * d;
    const std::vector<std::int64_t> offsets = {0, 3, 5, 5, 9};
    const std::vector<std::int32_t> src = {0, 1, 4, 2, 3, 0, 1, 2, 4};
    const auto edges = static_cast<std::int64_t>(src.size());
    const std::int64_t dst_rows = batch * n_dst, src_rows = batch * n_src;
    auto q = random_vector(dst_rows * width, generator),
         k = random_vector(src_rows * width, generator),
         v = random_vector(src_rows * width, generator),
         features = random_vector(edges * de, generator),
         w = random_vector(width * de, generator, 0.5f), bias = random_vector(width, generator),
         g = random_vector(dst_rows * width, generator);
    std::vector<std::int64_t> src_offsets(n_src + 1), by_src(edges);
    cpu::transpose_csr(offsets.data(), src.data(), n_dst, n_src, src_offsets.data(), by_src.data());
    // Returns out, dq, dk, dv (dense [rows, width]) and dW_edge.
    auto run = [&](bool fused) {
        std::vector<float> q2(dst_rows * 2 * width), kv(src_rows * 2 * width), dq2(q2.size()),
            dkv(kv.size());
        for (std::int64_t r = 0; r < dst_rows; ++r)
            std::copy_n(&q[r * width], width, &q2[r * 2 * width]);
        for (std::int64_t r = 0; r < src_rows; ++r) {
            std::copy_n(&k[r * width], width, &kv[r * 2 * width]);
            std::copy_n(&v[r * width], width, &kv[r * 2 * width + width]);
        }
        std::vector<float> out(dst_rows * width), lse(dst_rows * heads), dq(q.size()), dk(k.size()),
            dv(v.size()), dw(w.size(), 0.0f), db(bias.size(), 0.0f),
            dfeatures(features.size(), 0.0f);
        GraphAttentionBackwardParams bp;
        auto& p = bp.forward;
        p = graph_params(q, k, v, features, w, bias, offsets, src, out, lse, batch, n_src, n_dst,
                         heads, d, de);
        if (fused) {
            p.q = q2.data();
            p.k = kv.data();
            p.v = kv.data() + width;
            p.q_stride = 2 * width;
            p.kv_stride = 2 * width;
        }
        cpu::graph_attention(p);
        bp.d_out = g.data();
        bp.src_offsets = src_offsets.data();
        bp.edges_by_src = by_src.data();
        bp.dq = fused ? dq2.data() : dq.data();
        bp.dk = fused ? dkv.data() : dk.data();
        bp.dv = fused ? dkv.data() + width : dv.data();
        bp.dq_stride = fused ? 2 * width : 0;
        bp.dkv_stride = fused ? 2 * width : 0;
        bp.d_edge_weight = dw.data();
        bp.d_edge_bias = db.data();
        bp.d_edge_features = dfeatures.data();
        cpu::graph_attention_backward(bp);
        if (fused) {
            for (std::int64_t r = 0; r < dst_rows; ++r)
                std::copy_n(&dq2[r * 2 * width], width, &dq[r * width]);
            for (std::int64_t r = 0; r < src_rows; ++r) {
                std::copy_n(&dkv[r * 2 * width], width, &dk[r * width]);
                std::copy_n(&dkv[r * 2 * width + width], width, &dv[r * width]);
            }
        }
        return std::vector<std::vector<float>>{out, dq, dk, dv, dw};
    };
    const auto separate = run(false), fused = run(true);
    const char* names[] = {"out", "dq", "dk", "dv", "dW_edge"};
    for (std::size_t t = 0; t < separate.size(); ++t)
        for (std::size_t i = 0; i < separate[t].size(); ++i)
            ASSERT_NEAR(separate[t][i], fused[t][i], 1e-6f) << names[t] << "[" << i << "]";
}

TEST(Backward, GraphAttentionIsRepeatable) {
    // Same inputs, same thread count: bitwise the same gradients (no atomics).
    std::mt19937 generator(5);
    const std::int64_t n = 30, heads = 2, d = 4, de = 3, width = heads * d;
    std::vector<std::int64_t> offsets(n + 1);
    std::vector<std::int32_t> src;
    for (std::int64_t j = 0; j < n; ++j) {
        offsets[j] = static_cast<std::int64_t>(src.size());
        for (int e = 0; e < 4; ++e) src.push_back(static_cast<std::int32_t>((j * 7 + e * 3) % n));
    }
    offsets[n] = static_cast<std::int64_t>(src.size());
    const auto edges = static_cast<std::int64_t>(src.size());
    auto q = random_vector(n * width, generator), k = random_vector(n * width, generator),
         v = random_vector(n * width, generator), features = random_vector(edges * de, generator),
         w = random_vector(width * de, generator), bias = random_vector(width, generator),
         g = random_vector(n * width, generator);
    std::vector<float> out(n * width), lse(n * heads);
    const GraphAttentionParams p =
        graph_params(q, k, v, features, w, bias, offsets, src, out, lse, 1, n, n, heads, d, de);
    cpu::graph_attention(p);
    std::vector<std::int64_t> src_offsets(n + 1), by_src(edges);
    cpu::transpose_csr(offsets.data(), src.data(), n, n, src_offsets.data(), by_src.data());
    auto run = [&] {
        std::vector<float> dq(q.size()), dk(k.size()), dv(v.size()), dw(w.size(), 0.0f);
        GraphAttentionBackwardParams bp;
        bp.forward = p;
        bp.d_out = g.data();
        bp.src_offsets = src_offsets.data();
        bp.edges_by_src = by_src.data();
        bp.dq = dq.data();
        bp.dk = dk.data();
        bp.dv = dv.data();
        bp.d_edge_weight = dw.data();
        cpu::graph_attention_backward(bp);
        dq.insert(dq.end(), dk.begin(), dk.end());
        dq.insert(dq.end(), dw.begin(), dw.end());
        return dq;
    };
    EXPECT_EQ(run(), run());
}

}  // namespace

namespace {

class WindowAttentionBackward : public testing::TestWithParam<std::array<std::int64_t, 5>> {};

TEST_P(WindowAttentionBackward, MatchesFiniteDifferences) {
    std::mt19937 generator(6);
    const auto [batch, seq, heads, d, window] = GetParam();
    const std::int64_t width = heads * d;
    auto q = random_vector(batch * seq * width, generator),
         k = random_vector(batch * seq * width, generator),
         v = random_vector(batch * seq * width, generator),
         r = random_vector(batch * seq * width, generator);
    std::vector<float> out(q.size()), lse(batch * seq * heads);
    auto forward = [&] {
        WindowAttentionParams p;
        p.q = q.data();
        p.k = k.data();
        p.v = v.data();
        p.out = out.data();
        p.lse = lse.data();
        p.batch = batch;
        p.seq = seq;
        p.heads = heads;
        p.head_dim = d;
        p.window = window;
        return p;
    };
    auto loss = [&] {
        cpu::window_attention(forward());
        return weighted_sum(out, r);
    };
    loss();
    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    WindowAttentionBackwardParams bp;
    bp.forward = forward();
    bp.d_out = r.data();
    bp.dq = dq.data();
    bp.dk = dk.data();
    bp.dv = dv.data();
    cpu::window_attention_backward(bp);
    check_gradient("dq", q, dq, loss);
    check_gradient("dk", k, dk, loss);
    check_gradient("dv", v, dv, loss);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, WindowAttentionBackward,
    testing::Values(
        // batch, seq, heads, d, window. Two batch elements, a window truncated at both ends that
        // spans several key blocks:
        std::array<std::int64_t, 5>{2, 150, 2, 4, 70},
        // one head over a long sequence: the keys split into segments whose dQ partials overlap
        std::array<std::int64_t, 5>{1, 300, 1, 4, 20},
        // wider heads, and a sequence with more queries in a key block's reach than one
        // 256-row tile
        std::array<std::int64_t, 5>{2, 150, 2, 16, 70},
        std::array<std::int64_t, 5>{1, 300, 1, 32, 20},
        std::array<std::int64_t, 5>{1, 601, 2, 16, 200}));

TEST(Backward, WindowAttentionFusedLayoutMatchesSeparate) {
    // The training layer's layout: q|k|v side by side in one [rows, 3C] matrix (and dq|dk|dv
    // likewise), out and d_out in their own [rows, C]. Same values as separate matrices.
    std::mt19937 generator(9);
    const std::int64_t batch = 2, seq = 130, heads = 2, d = 8, window = 40, width = heads * d;
    const std::int64_t rows = batch * seq;
    auto q = random_vector(rows * width, generator), k = random_vector(rows * width, generator),
         v = random_vector(rows * width, generator), g = random_vector(rows * width, generator);
    auto run = [&](bool fused, std::vector<float>& out, std::vector<float>& dq,
                   std::vector<float>& dk, std::vector<float>& dv) {
        std::vector<float> qkv(rows * 3 * width), d_qkv(rows * 3 * width), lse(rows * heads);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < width; ++c) {
                qkv[r * 3 * width + c] = q[r * width + c];
                qkv[r * 3 * width + width + c] = k[r * width + c];
                qkv[r * 3 * width + 2 * width + c] = v[r * width + c];
            }
        out.assign(rows * width, 0.0f);
        WindowAttentionBackwardParams bp;
        auto& p = bp.forward;
        p.q = fused ? qkv.data() : q.data();
        p.k = fused ? qkv.data() + width : k.data();
        p.v = fused ? qkv.data() + 2 * width : v.data();
        p.stride = fused ? 3 * width : 0;
        p.out = out.data();
        p.out_stride = fused ? width : 0;
        p.lse = lse.data();
        p.batch = batch;
        p.seq = seq;
        p.heads = heads;
        p.head_dim = d;
        p.window = window;
        cpu::window_attention(p);
        std::vector<float> sq(rows * width), sk(rows * width), sv(rows * width);
        bp.d_out = g.data();
        bp.dq = fused ? d_qkv.data() : sq.data();
        bp.dk = fused ? d_qkv.data() + width : sk.data();
        bp.dv = fused ? d_qkv.data() + 2 * width : sv.data();
        cpu::window_attention_backward(bp);
        dq = sq;
        dk = sk;
        dv = sv;
        if (fused)
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t c = 0; c < width; ++c) {
                    dq[r * width + c] = d_qkv[r * 3 * width + c];
                    dk[r * width + c] = d_qkv[r * 3 * width + width + c];
                    dv[r * width + c] = d_qkv[r * 3 * width + 2 * width + c];
                }
    };
    std::vector<float> out_a, dq_a, dk_a, dv_a, out_b, dq_b, dk_b, dv_b;
    run(false, out_a, dq_a, dk_a, dv_a);
    run(true, out_b, dq_b, dk_b, dv_b);
    for (std::size_t i = 0; i < out_a.size(); ++i) {
        ASSERT_NEAR(out_a[i], out_b[i], 1e-5f) << "out[" << i << "]";
        ASSERT_NEAR(dq_a[i], dq_b[i], 1e-5f) << "dq[" << i << "]";
        ASSERT_NEAR(dk_a[i], dk_b[i], 1e-5f) << "dk[" << i << "]";
        ASSERT_NEAR(dv_a[i], dv_b[i], 1e-5f) << "dv[" << i << "]";
    }
}

struct WindowShape {
    std::int64_t batch, seq, heads, d, window;
    bool fused;  // q, k, v side by side in one [rows, 3 * heads * d] buffer, as the model has them
};

void PrintTo(const WindowShape& s, std::ostream* os) {
    *os << "batch " << s.batch << ", seq " << s.seq << ", heads " << s.heads << ", d " << s.d
        << ", window " << s.window << (s.fused ? ", fused" : ", separate");
}

/// Query i's softmax over keys |i - j| <= window of (batch b, head h), directly in double:
/// the numerators e^(s_j - max) for j in [first, first + numerators.size()), their max and sum.
struct DirectSoftmax {
    std::int64_t first = 0;
    std::vector<double> numerators;
    double max = -1e300, sum = 0;
};
DirectSoftmax direct_softmax(const float* q, const float* k, std::int64_t stride, std::int64_t seq,
                             std::int64_t d, std::int64_t window, std::int64_t b, std::int64_t h,
                             std::int64_t i) {
    DirectSoftmax result;
    result.first = std::max<std::int64_t>(0, i - window);
    const std::int64_t last = std::min(seq - 1, i + window);
    for (std::int64_t j = result.first; j <= last; ++j) {
        double s = 0;
        for (std::int64_t x = 0; x < d; ++x)
            s += static_cast<double>(q[(b * seq + i) * stride + h * d + x]) *
                 k[(b * seq + j) * stride + h * d + x];
        result.numerators.push_back(s / std::sqrt(static_cast<double>(d)));
        result.max = std::max(result.max, result.numerators.back());
    }
    for (auto& s : result.numerators) result.sum += (s = std::exp(s - result.max));
    return result;
}

class WindowAttentionForward : public ::testing::TestWithParam<WindowShape> {};

TEST_P(WindowAttentionForward, MatchesDirectSoftmax) {
    // The tiled online softmax against a direct per-query softmax over |i - j| <= w, in double.
    const auto [batch, seq, heads, d, window, fused] = GetParam();
    const std::int64_t width = heads * d, rows = batch * seq;
    const std::int64_t stride = fused ? 3 * width : width;
    std::mt19937 generator(8);
    const auto qkv = random_vector(static_cast<std::size_t>(rows * 3 * width), generator);
    const float* q = qkv.data();
    const float* k = fused ? q + width : q + rows * width;
    const float* v = fused ? q + 2 * width : q + 2 * rows * width;
    std::vector<float> out(static_cast<std::size_t>(rows * width)),
        lse(static_cast<std::size_t>(rows * heads));
    WindowAttentionParams p;
    p.q = q;
    p.k = k;
    p.v = v;
    p.out = out.data();
    p.batch = batch;
    p.seq = seq;
    p.heads = heads;
    p.head_dim = d;
    p.window = window;
    p.stride = stride;
    p.out_stride = width;
    p.lse = lse.data();
    cpu::window_attention(p);
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t h = 0; h < heads; ++h)
            for (std::int64_t i = 0; i < seq; ++i) {
                const auto softmax = direct_softmax(q, k, stride, seq, d, window, b, h, i);
                const std::int64_t row = b * seq + i;
                ASSERT_NEAR(lse[row * heads + h], softmax.max + std::log(softmax.sum), 1e-4)
                    << "batch " << b << " head " << h << " query " << i;
                for (std::int64_t x = 0; x < d; ++x) {
                    double o = 0;
                    for (std::size_t e = 0; e < softmax.numerators.size(); ++e)
                        o += softmax.numerators[e] / softmax.sum *
                             v[(b * seq + softmax.first + static_cast<std::int64_t>(e)) * stride +
                               h * d + x];
                    ASSERT_NEAR(out[row * width + h * d + x], o, 1e-5)
                        << "batch " << b << " head " << h << " query " << i << " channel " << x;
                }
            }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, WindowAttentionForward,
    ::testing::Values(
        // OpenBLAS tiles (head size not a multiple of 16).
        WindowShape{1, 300, 1, 8, 100, false},
        // Register tiles, all heads in one task: a partial last query block and panel, two batch
        // elements, the model's fused layout.
        WindowShape{2, 301, 3, 16, 40, true},
        // Register tiles, one head per task (the heads' reach is over 1 MiB), three key blocks
        // per query block (a reach of 1,248 keys): the running maxima rescale.
        WindowShape{1, 1500, 2, 64, 600, true},
        // A window wider than the sequence.
        WindowShape{1, 90, 2, 32, 200, false}));

// bf16 (WindowAttentionParams::bf16, as SDPA under bf16 autocast): on bf16-valued q, k, v the
// output equals the direct softmax in double with the numerators rounded to bf16, to bf16
// precision (the kernel rounds them against each key block's running maximum, the reference
// against the row's). Runs on every path: vdpbf16ps tiles on avx512 with AVX512-BF16 (head
// sizes a multiple of 32), the fp32 kernel on rounded numerators elsewhere.
using boreas::testing_support::round_to_bf16;

class WindowAttentionBf16 : public ::testing::TestWithParam<WindowShape> {};

TEST_P(WindowAttentionBf16, MatchesTheRoundedSoftmax) {
    const auto [batch, seq, heads, d, window, fused] = GetParam();
    const std::int64_t width = heads * d, rows = batch * seq;
    const std::int64_t stride = fused ? 3 * width : width;
    std::mt19937 generator(9);
    auto qkv = random_vector(static_cast<std::size_t>(rows * 3 * width), generator);
    for (float& x : qkv) x = round_to_bf16(x);
    const float* q = qkv.data();
    const float* k = fused ? q + width : q + rows * width;
    const float* v = fused ? q + 2 * width : q + 2 * rows * width;
    std::vector<float> out(static_cast<std::size_t>(rows * width), NAN);
    WindowAttentionParams p;
    p.q = q, p.k = k, p.v = v, p.out = out.data();
    p.batch = batch, p.seq = seq, p.heads = heads, p.head_dim = d, p.window = window;
    p.stride = stride, p.out_stride = width;
    p.bf16 = true;
    cpu::window_attention(p);
    double worst = 0;
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t h = 0; h < heads; ++h)
            for (std::int64_t i = 0; i < seq; ++i) {
                const auto softmax = direct_softmax(q, k, stride, seq, d, window, b, h, i);
                for (std::int64_t x = 0; x < d; ++x) {
                    double o = 0;
                    for (std::size_t e = 0; e < softmax.numerators.size(); ++e)
                        o += round_to_bf16(static_cast<float>(softmax.numerators[e])) *
                             v[(b * seq + softmax.first + static_cast<std::int64_t>(e)) * stride +
                               h * d + x];
                    o /= softmax.sum;
                    const float got = out[(b * seq + i) * width + h * d + x];
                    worst = std::max(worst, std::abs(got - o));
                    ASSERT_NEAR(got, o, 4e-3)
                        << "batch " << b << " head " << h << " query " << i << " channel " << x;
                }
            }
    RecordProperty("worst_abs_error", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, WindowAttentionBf16,
    ::testing::Values(
        WindowShape{1, 300, 1, 8, 100, false},    // OpenBLAS tiles: always the fp32 kernel
        WindowShape{2, 301, 3, 32, 40, true},     // 32-channel heads, partial panels and blocks
        WindowShape{1, 1500, 2, 64, 600, true},   // three key blocks per query block: rescaling
        WindowShape{1, 90, 2, 64, 200, false}));  // a window wider than the sequence

}  // namespace
