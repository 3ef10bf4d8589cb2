// The CUDA graph attention against the CPU kernel (the reference) on random destination-sorted
// graphs: heads, head widths up to the kernel's 256, edge features or none, an edge bias or
// none, destinations without edges, strided rows, batches, the log-sum-exp, bf16 keys and
// values. fp32 within 1e-5 (relative, plus 1e-5 absolute), as the CPU is held to anemoi.
// Exits 77 (ctest: skipped, with the reason) where no GPU is present.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "boreas/backends/cuda/kernels.hpp"
#include "boreas/kernels/kernels.hpp"
#include "support/gpu_test_support.hpp"

namespace {

using namespace boreas::kernels;
using boreas::testing_support::DeviceArray;
using boreas::testing_support::to_bf16;

struct Shape {
    std::int64_t batch, n_src, n_dst, heads, head_dim, edge_dim;
    bool bias, strided, bf16;
};

void PrintTo(const Shape& s, std::ostream* os) {
    *os << "batch " << s.batch << ", " << s.n_src << " -> " << s.n_dst << ", " << s.heads
        << " heads of " << s.head_dim << ", edge_dim " << s.edge_dim << (s.bias ? ", bias" : "")
        << (s.strided ? ", strided" : "") << (s.bf16 ? ", bf16 k/v" : "");
}

class GpuGraphAttention : public testing::TestWithParam<Shape> {};

TEST_P(GpuGraphAttention, MatchesTheCpuKernel) {
    const Shape s = GetParam();
    std::mt19937 generator(static_cast<std::uint32_t>(s.n_dst * 13 + s.head_dim * 7 + s.edge_dim));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const std::int64_t width = s.heads * s.head_dim, pad = s.strided ? 8 : 0;
    const std::int64_t q_stride = width + pad, kv_stride = width + 2 * pad,
                       out_stride = width + pad;
    // Destination-sorted CSR: 0 to 9 incoming edges each (every 7th destination has none).
    std::vector<std::int64_t> offsets{0};
    std::vector<std::int32_t> src;
    for (std::int64_t j = 0; j < s.n_dst; ++j) {
        const int degree = j % 7 == 3 ? 0 : static_cast<int>(generator() % 10);
        for (int e = 0; e < degree; ++e)
            src.push_back(static_cast<std::int32_t>(generator() % s.n_src));
        offsets.push_back(static_cast<std::int64_t>(src.size()));
    }
    const auto edges = static_cast<std::int64_t>(src.size());
    auto random = [&](std::int64_t n, float scale) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& x : v) x = scale * normal(generator);
        return v;
    };
    auto q = random(s.batch * s.n_dst * q_stride, 1.0f);
    auto k = random(s.batch * s.n_src * kv_stride, 1.0f);
    auto v = random(s.batch * s.n_src * kv_stride, 1.0f);
    const auto features = random(edges * s.edge_dim, 1.0f);
    const auto edge_weight = random(width * s.edge_dim, 0.5f);
    const auto edge_bias = random(width, 0.5f);
    std::vector<std::uint16_t> k16, v16;
    if (s.bf16) {
        for (float x : k) k16.push_back(to_bf16(x));
        for (float x : v) v16.push_back(to_bf16(x));
    }

    GraphAttentionParams p;
    p.batch = s.batch;
    p.n_src = s.n_src;
    p.n_dst = s.n_dst;
    p.heads = s.heads;
    p.head_dim = s.head_dim;
    p.edge_dim = s.edge_dim;
    p.q_stride = q_stride;
    p.kv_stride = kv_stride;
    p.out_stride = out_stride;
    const auto rows = s.batch * s.n_dst;

    // The CPU reference.
    std::vector<float> out_cpu(static_cast<std::size_t>(rows * out_stride), 7.0f),
        lse_cpu(static_cast<std::size_t>(rows * s.heads));
    // The same parameters on host or device copies of the same arrays.
    const auto with = [&](const float* q_, const float* k_, const float* v_,
                          const std::uint16_t* k16_, const std::uint16_t* v16_,
                          const float* features_, const float* weight_, const float* bias_,
                          const std::int64_t* offsets_, const std::int32_t* src_, float* out_,
                          float* lse_) {
        GraphAttentionParams r = p;
        r.q = q_;
        r.k = s.bf16 ? nullptr : k_;
        r.v = s.bf16 ? nullptr : v_;
        r.k_bf16 = s.bf16 ? k16_ : nullptr;
        r.v_bf16 = s.bf16 ? v16_ : nullptr;
        r.edge_features = s.edge_dim ? features_ : nullptr;
        r.edge_weight = s.edge_dim ? weight_ : nullptr;
        r.edge_bias = s.bias ? bias_ : nullptr;
        r.dst_offsets = offsets_;
        r.src = src_;
        r.out = out_;
        r.lse = lse_;
        return r;
    };
    cpu::graph_attention(with(q.data(), k.data(), v.data(), k16.data(), v16.data(), features.data(),
                              edge_weight.data(), edge_bias.data(), offsets.data(), src.data(),
                              out_cpu.data(), lse_cpu.data()));

    // The GPU, from device copies.
    const DeviceArray<float> dq(q), dk(k), dv(v), dfeatures(features), dweight(edge_weight),
        dbias(edge_bias);
    const DeviceArray<std::uint16_t> dk16(k16), dv16(v16);
    const DeviceArray<std::int64_t> doffsets(offsets);
    const DeviceArray<std::int32_t> dsrc(src);
    const DeviceArray<float> dout(std::vector<float>(out_cpu.size(), 7.0f)),
        dlse(std::vector<float>(lse_cpu.size(), 0.0f));
    cuda::graph_attention(with(dq.get(), dk.get(), dv.get(), dk16.get(), dv16.get(),
                               dfeatures.get(), dweight.get(), dbias.get(), doffsets.get(),
                               dsrc.get(), dout.get(), dlse.get()));
    BOREAS_GPU_CHECK(boreas::gpu::synchronize(nullptr));
    const auto out_gpu = dout.to_host(), lse_gpu = dlse.to_host();

    for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < out_stride; ++c) {
            const float want = out_cpu[r * out_stride + c], got = out_gpu[r * out_stride + c];
            if (c >= width) {  // the row's padding stays untouched
                ASSERT_EQ(got, 7.0f) << "padding, row " << r << ", column " << c;
                continue;
            }
            ASSERT_NEAR(got, want, 1e-5 * (1 + std::abs(want))) << "row " << r << ", channel " << c;
        }
        for (std::int64_t h = 0; h < s.heads; ++h)
            ASSERT_NEAR(lse_gpu[r * s.heads + h], lse_cpu[r * s.heads + h],
                        1e-5 * (1 + std::abs(lse_cpu[r * s.heads + h])))
                << "lse, row " << r << ", head " << h;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuGraphAttention,
    testing::Values(Shape{1, 50, 40, 4, 16, 0, false, false, false},
                    Shape{2, 50, 40, 4, 16, 3, true, false, false},
                    Shape{2, 33, 61, 2, 40, 4, true, true, false},    // d not a multiple of 32
                    Shape{1, 80, 70, 16, 64, 3, true, false, false},  // o96's heads and widths
                    Shape{1, 40, 30, 1, 256, 2, false, true, false},  // the kernel's widest head
                    Shape{2, 50, 40, 8, 32, 3, true, true, true}));   // bf16 keys and values

TEST(GpuGraphAttention, RefusesAHeadWiderThanTheKernel) {
    GraphAttentionParams p;
    float dummy = 0;
    std::int64_t offsets[2] = {0, 0};
    p.q = p.k = p.v = &dummy;
    p.out = &dummy;
    p.dst_offsets = offsets;
    p.head_dim = 512;
    try {
        cuda::graph_attention(p);
        FAIL() << "no error";
    } catch (const boreas::Error& e) {
        EXPECT_NE(std::string(e.what()).find("head_dim 512"), std::string::npos) << e.what();
    }
}

}  // namespace

int main(int argc, char** argv) {
    return boreas::testing_support::run_gpu_tests(argc, argv);
}
