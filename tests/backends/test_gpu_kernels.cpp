// The CUDA backend's dense kernels against the CPU kernels (the reference): LayerNorm, GELU, the
// Linear (cuBLASLt; every LinearParams option), the MLP and the window attention, in fp32 and
// bf16, and the Linear's, LayerNorm's and GELU's backward. fp32 within 1e-5 relative, plus 1e-5 x
// sqrt(summed terms) absolute: the GPU sums in another order. bf16 within 2 bf16 units in the
// last place of max(|value|, 1) (2^-7): both round the same fp32 values, whose sums differ in
// order, so a value next to a rounding boundary may round the other way. Exits 77 (ctest:
// skipped, with the reason) where no GPU is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "boreas/backends/backend.hpp"
#include "boreas/backends/cuda/backend.hpp"
#include "boreas/backends/cuda/kernels.hpp"
#include "boreas/kernels/kernels.hpp"
#include "support/gpu_test_support.hpp"

namespace {

using namespace boreas::kernels;
using boreas::testing_support::DeviceArray;
using boreas::testing_support::to_bf16;

std::vector<float> random_values(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
    std::mt19937 generator(seed);
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = normal(generator);
    return v;
}

float bf16_value(std::uint16_t bits) {
    const std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

/// fp32: |got - want| <= 1e-5 (|want| + sqrt(terms)); bf16: 2^-7 (|want| + |added| + 1), two
/// bf16 units in the last place of values of order one (a rounding flipped upstream moves a sum
/// by that), where `added` is what the kernel added to `base` (accumulate: the rounded value).
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double terms,
                  bool bf16, const std::string& what, const std::vector<float>* base = nullptr) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double added = base ? std::abs(want[i] - (*base)[i]) : 0.0;
        const double tolerance = bf16 ? 0.0078125 * (std::abs(want[i]) + added + 1.0)
                                      : 1e-5 * (std::abs(want[i]) + std::sqrt(terms));
        ASSERT_NEAR(got[i], want[i], tolerance) << what << ", index " << i;
    }
}

TEST(GpuLayerNorm, MatchesTheCpuKernel) {
    for (const std::int64_t channels : {100, 1024}) {
        const std::int64_t rows = 37;
        const auto x = random_values(rows * channels, 1, 3.0f);
        const auto gamma = random_values(channels, 2), beta = random_values(channels, 3);
        std::vector<float> want(x.size());
        LayerNormParams p;
        p.rows = rows;
        p.channels = channels;
        p.x = x.data();
        p.y = want.data();
        p.gamma = gamma.data();
        p.beta = beta.data();
        cpu::layer_norm(p);
        const DeviceArray<float> dx(x), dgamma(gamma), dbeta(beta);
        p.x = p.y = dx.get();  // in place
        p.gamma = dgamma.get();
        p.beta = dbeta.get();
        cuda::layer_norm(p);
        expect_close(dx.to_host(), want, channels, false, "layer_norm " + std::to_string(channels));
    }
}

TEST(GpuCopyRows, MatchesTheCpuKernel) {
    const std::int64_t rows = 300, cols = 250, xs = 260, ys = 255;
    const auto x = random_values(rows * xs, 5), y0 = random_values(rows * ys, 6);
    for (const bool add : {false, true}) {
        std::vector<float> want = y0;
        CopyRowsParams p;
        p.rows = rows;
        p.cols = cols;
        p.x_stride = xs;
        p.y_stride = ys;
        p.add = add;
        p.x = x.data();
        p.y = want.data();
        cpu::copy_rows(p);
        const DeviceArray<float> dx(x), dy(y0);
        p.x = dx.get();
        p.y = dy.get();
        cuda::copy_rows(p);
        const auto got = dy.to_host();
        for (std::size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], want[i]) << (add ? "add" : "copy") << ", index " << i;
    }
}

TEST(GpuGelu, MatchesTheCpuKernel) {
    auto x = random_values(10001, 4, 3.0f);
    const DeviceArray<float> dx(x);
    cpu::gelu(x.data(), static_cast<std::int64_t>(x.size()));
    cuda::gelu(dx.get(), static_cast<std::int64_t>(x.size()));
    expect_close(dx.to_host(), x, 1, false, "gelu");
}

struct LinearCase {
    std::int64_t rows, in, out;
    bool bias, accumulate, gelu, strided, transposed, bf16, bf16_weights, bf16_result;
};

void PrintTo(const LinearCase& c, std::ostream* os) {
    *os << c.rows << " x " << c.in << " -> " << c.out << (c.bias ? ", bias" : "")
        << (c.accumulate ? ", accumulate" : "") << (c.gelu ? ", gelu" : "")
        << (c.strided ? ", strided" : "") << (c.transposed ? ", W transposed" : "")
        << (c.bf16 ? ", bf16" : "") << (c.bf16_weights ? " weights" : "")
        << (c.bf16_result ? " result" : "");
}

class GpuLinear : public testing::TestWithParam<LinearCase> {};

TEST_P(GpuLinear, MatchesTheCpuKernel) {
    const LinearCase c = GetParam();
    const std::int64_t x_stride = c.strided ? c.in + 5 : c.in;
    const std::int64_t y_stride = c.strided ? c.out + 3 : c.out;
    const auto x = random_values(c.rows * x_stride, 11);
    const auto weight = random_values(c.out * c.in, 12, 1.0f / std::sqrt(float(c.in)));
    const auto bias = random_values(c.out, 13);
    const auto y0 = random_values(c.rows * y_stride, 14);

    LinearParams p;
    p.rows = c.rows;
    p.in = c.in;
    p.out = c.out;
    p.x_stride = x_stride;
    p.y_stride = y_stride;
    p.accumulate = c.accumulate;
    p.gelu = c.gelu;
    p.weight_transposed = c.transposed;
    p.bf16 = c.bf16;
    // The transposed layout: the same W stored [in, out].
    std::vector<float> stored = weight;
    if (c.transposed)
        for (std::int64_t o = 0; o < c.out; ++o)
            for (std::int64_t i = 0; i < c.in; ++i) stored[i * c.out + o] = weight[o * c.in + i];
    std::vector<std::uint16_t> weight16;  // the same layout as the fp32 weight given
    for (float w : stored) weight16.push_back(to_bf16(w));

    std::vector<float> want = y0, want_pre(c.gelu ? c.rows * c.out : 0);
    std::vector<std::uint16_t> want16(c.bf16_result ? c.rows * y_stride : 0);
    p.x = x.data();
    p.weight = stored.data();
    p.weight_bf16 = c.bf16_weights ? weight16.data() : nullptr;
    p.bias = c.bias ? bias.data() : nullptr;
    p.y = c.bf16_result ? nullptr : want.data();
    p.y_bf16 = c.bf16_result ? want16.data() : nullptr;
    p.pre_activation = c.gelu ? want_pre.data() : nullptr;
    cpu::linear(p);

    const DeviceArray<float> dx(x), dweight(stored), dbias(bias), dy(y0),
        dpre(std::vector<float>(want_pre.size()));
    const DeviceArray<std::uint16_t> dweight16(weight16),
        dy16(std::vector<std::uint16_t>(want16.size()));
    p.x = dx.get();
    p.weight = dweight.get();
    p.weight_bf16 = c.bf16_weights ? dweight16.get() : nullptr;
    p.bias = c.bias ? dbias.get() : nullptr;
    p.y = c.bf16_result ? nullptr : dy.get();
    p.y_bf16 = c.bf16_result ? dy16.get() : nullptr;
    p.pre_activation = c.gelu ? dpre.get() : nullptr;
    cuda::linear(p);
    if (c.bf16_result) {
        std::vector<float> got, expected;
        const auto bits = dy16.to_host();
        for (std::int64_t r = 0; r < c.rows; ++r)
            for (std::int64_t o = 0; o < c.out; ++o) {
                got.push_back(bf16_value(bits[r * y_stride + o]));
                expected.push_back(bf16_value(want16[r * y_stride + o]));
            }
        expect_close(got, expected, c.in, true, "y_bf16");
        return;
    }
    expect_close(dy.to_host(), want, c.in, c.bf16, "y", &y0);  // padding included: untouched
    if (c.gelu) expect_close(dpre.to_host(), want_pre, c.in, c.bf16, "pre-activation");
}

INSTANTIATE_TEST_SUITE_P(
    Options, GpuLinear,
    testing::Values(LinearCase{50, 64, 48, false, false, false, false, false, false, false, false},
                    LinearCase{50, 64, 48, true, false, false, false, false, false, false, false},
                    LinearCase{33, 100, 70, true, true, false, true, false, false, false, false},
                    LinearCase{40, 128, 512, true, false, true, false, false, false, false, false},
                    LinearCase{40, 96, 80, false, true, false, false, true, false, false, false},
                    LinearCase{40, 128, 96, true, false, true, true, false, false, false, false},
                    LinearCase{48, 128, 64, true, false, false, false, true, true, true, false},
                    LinearCase{64, 256, 256, true, false, false, false, false, true, false, false},
                    LinearCase{64, 256, 512, true, false, true, false, false, true, false, false},
                    LinearCase{64, 256, 256, true, true, false, true, false, true, true, false},
                    LinearCase{64, 256, 256, true, false, false, true, false, true, true, true}));

struct MlpCase {
    std::int64_t rows, in, hidden, out;
    bool layer_norm, in_place, bf16;
};

class GpuMlp : public testing::TestWithParam<MlpCase> {};

TEST_P(GpuMlp, MatchesTheCpuKernel) {
    const MlpCase c = GetParam();
    const auto x = random_values(c.rows * c.in, 21);
    const auto w_in = random_values(c.hidden * c.in, 22, 1.0f / std::sqrt(float(c.in)));
    const auto b_in = random_values(c.hidden, 23);
    const auto w_out = random_values(c.out * c.hidden, 24, 1.0f / std::sqrt(float(c.hidden)));
    const auto b_out = random_values(c.out, 25);
    const auto gamma = random_values(c.in, 26), beta = random_values(c.in, 27);
    const auto y0 = c.in_place ? x : random_values(c.rows * c.out, 28);
    MlpParams p;
    p.rows = c.rows;
    p.in = c.in;
    p.hidden = c.hidden;
    p.out = c.out;
    p.accumulate = true;
    p.layer_norm = c.layer_norm;
    p.bf16 = c.bf16;
    std::vector<float> want = y0;
    p.x = c.in_place ? want.data() : x.data();
    p.y = want.data();
    p.weight_in = w_in.data();
    p.bias_in = b_in.data();
    p.weight_out = w_out.data();
    p.bias_out = b_out.data();
    p.norm_gamma = gamma.data();
    p.norm_beta = beta.data();
    cpu::mlp(p);
    const DeviceArray<float> dx(x), dy(y0), dw_in(w_in), db_in(b_in), dw_out(w_out), db_out(b_out),
        dgamma(gamma), dbeta(beta);
    p.x = c.in_place ? dy.get() : dx.get();
    p.y = dy.get();
    p.weight_in = dw_in.get();
    p.bias_in = db_in.get();
    p.weight_out = dw_out.get();
    p.bias_out = db_out.get();
    p.norm_gamma = dgamma.get();
    p.norm_beta = dbeta.get();
    cuda::mlp(p);
    expect_close(dy.to_host(), want, c.in + c.hidden, c.bf16, "mlp", &y0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuMlp,
                         testing::Values(MlpCase{70, 64, 256, 64, true, true, false},
                                         MlpCase{70, 48, 96, 32, false, false, false},
                                         MlpCase{20000, 32, 64, 32, true, true, false},  // 2 chunks
                                         MlpCase{70, 64, 256, 64, true, true, true}));

struct WindowCase {
    std::int64_t batch, seq, heads, head_dim, window;
    bool strided, bf16;
};

class GpuWindowAttention : public testing::TestWithParam<WindowCase> {};

TEST_P(GpuWindowAttention, MatchesTheCpuKernel) {
    const WindowCase c = GetParam();
    const std::int64_t width = c.heads * c.head_dim;
    // The transformer's layout: q | k | v side by side in one [rows, 3C] tensor.
    const std::int64_t stride = c.strided ? 3 * width : width;
    const std::int64_t rows = c.batch * c.seq;
    auto qkv = random_values(rows * stride * (c.strided ? 1 : 3), 31);
    // bf16: inputs that are bf16 values already, as the bf16 forward's projections leave them
    // (the CPU's emulated path rounds only the probabilities).
    if (c.bf16)
        for (auto& v : qkv) {
            const std::uint32_t bits = static_cast<std::uint32_t>(to_bf16(v)) << 16;
            std::memcpy(&v, &bits, 4);
        }
    WindowAttentionParams p;
    p.batch = c.batch;
    p.seq = c.seq;
    p.heads = c.heads;
    p.head_dim = c.head_dim;
    p.window = c.window;
    p.stride = stride;
    p.out_stride = width;
    p.bf16 = c.bf16;
    const std::int64_t k_offset = c.strided ? width : rows * stride;
    std::vector<float> want(rows * width), want_lse(c.bf16 ? 0 : rows * c.heads);
    p.q = qkv.data();
    p.k = qkv.data() + k_offset;
    p.v = qkv.data() + 2 * k_offset;
    p.out = want.data();
    p.lse = c.bf16 ? nullptr : want_lse.data();
    cpu::window_attention(p);
    const DeviceArray<float> dqkv(qkv), dout(std::vector<float>(want.size())),
        dlse(std::vector<float>(want_lse.size()));
    p.q = dqkv.get();
    p.k = dqkv.get() + k_offset;
    p.v = dqkv.get() + 2 * k_offset;
    p.out = dout.get();
    p.lse = c.bf16 ? nullptr : dlse.get();
    cuda::window_attention(p);
    expect_close(dout.to_host(), want, 2 * c.window + 1, c.bf16, "out");
    if (!c.bf16) expect_close(dlse.to_host(), want_lse, 2 * c.window + 1, false, "lse");
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuWindowAttention,
                         testing::Values(WindowCase{1, 100, 4, 16, 10, true, false},
                                         WindowCase{2, 300, 8, 32, 64, true, false},
                                         WindowCase{1, 50, 2, 40, 100, false,
                                                    false},  // window > seq
                                         WindowCase{2, 200, 16, 64, 32, true, true}));

TEST(GpuLinearBackward, MatchesTheCpuKernel) {
    for (const bool accumulate : {false, true}) {
        const std::int64_t rows = 300, in = 96, out = 80;
        const auto x = random_values(rows * in, 41), weight = random_values(out * in, 42);
        const auto dy = random_values(rows * out, 43), dx0 = random_values(rows * in, 44);
        const auto dw0 = random_values(out * in, 45), db0 = random_values(out, 46);
        std::vector<float> dx = dx0, dw = dw0, db = db0;
        LinearBackwardParams p;
        p.rows = rows;
        p.in = in;
        p.out = out;
        p.accumulate_dx = accumulate;
        p.x = x.data();
        p.weight = weight.data();
        p.dy = dy.data();
        p.dx = dx.data();
        p.dweight = dw.data();
        p.dbias = db.data();
        cpu::linear_backward(p);
        const DeviceArray<float> d_x(x), d_weight(weight), d_dy(dy), d_dx(dx0), d_dw(dw0),
            d_db(db0);
        p.x = d_x.get();
        p.weight = d_weight.get();
        p.dy = d_dy.get();
        p.dx = d_dx.get();
        p.dweight = d_dw.get();
        p.dbias = d_db.get();
        cuda::linear_backward(p);
        expect_close(d_dx.to_host(), dx, out, false, "dx");
        expect_close(d_dw.to_host(), dw, rows, false, "dweight");
        expect_close(d_db.to_host(), db, rows, false, "dbias");
    }
}

TEST(GpuLayerNormBackward, MatchesTheCpuKernel) {
    for (const bool in_place : {false, true}) {
        const std::int64_t rows = 500, channels = 200;
        const auto x = random_values(rows * channels, 51, 2.0f);
        const auto gamma = random_values(channels, 52), dy = random_values(rows * channels, 53);
        const auto dg0 = random_values(channels, 54), db0 = random_values(channels, 55);
        std::vector<float> dx(dy.size()), dg = dg0, db = db0, dy_cpu = dy;
        LayerNormBackwardParams p;
        p.rows = rows;
        p.channels = channels;
        p.x = x.data();
        p.gamma = gamma.data();
        p.dy = dy_cpu.data();
        p.dx = in_place ? dy_cpu.data() : dx.data();
        p.dgamma = dg.data();
        p.dbeta = db.data();
        cpu::layer_norm_backward(p);
        const DeviceArray<float> d_x(x), d_gamma(gamma), d_dy(dy), d_dx(dx), d_dg(dg0), d_db(db0);
        p.x = d_x.get();
        p.gamma = d_gamma.get();
        p.dy = d_dy.get();
        p.dx = in_place ? d_dy.get() : d_dx.get();
        p.dgamma = d_dg.get();
        p.dbeta = d_db.get();
        cuda::layer_norm_backward(p);
        expect_close(in_place ? d_dy.to_host() : d_dx.to_host(), in_place ? dy_cpu : dx, channels,
                     false, "dx");
        expect_close(d_dg.to_host(), dg, rows, false, "dgamma");
        expect_close(d_db.to_host(), db, rows, false, "dbeta");
    }
}

TEST(GpuGeluBackward, MatchesTheCpuKernel) {
    const auto x = random_values(10001, 61, 3.0f), dy = random_values(10001, 62);
    std::vector<float> dx(x.size());
    cpu::gelu_backward(x.data(), dy.data(), dx.data(), static_cast<std::int64_t>(x.size()));
    const DeviceArray<float> d_x(x), d_dy(dy);
    cuda::gelu_backward(d_x.get(), d_dy.get(), d_dy.get(), static_cast<std::int64_t>(x.size()));
    expect_close(d_dy.to_host(), dx, 1, false, "gelu_backward (in place)");
}

// The backend with arguments in plain host memory (the graph's edge lists, bf16 weight copies):
// staged to the device for the call and the outputs copied back.
TEST(GpuBackend, StagesHostArguments) {
    boreas::backends::cuda::register_backend();
    auto& backend = boreas::backends::get({boreas::backends::DeviceKind::cuda, 0});
    const std::int64_t rows = 64, in = 96, out = 80;
    const auto x = random_values(rows * in, 71), weight = random_values(out * in, 72, 0.1f);
    const auto bias = random_values(out, 73);
    std::vector<float> want(rows * out), got(rows * out, 5.0f);
    LinearParams p;
    p.rows = rows;
    p.in = in;
    p.out = out;
    p.x = x.data();
    p.weight = weight.data();
    p.bias = bias.data();
    p.y = want.data();
    cpu::linear(p);
    p.y = got.data();
    backend.linear(p);
    expect_close(got, want, in, false, "linear through the backend, host arguments");
    // In place (y == x) through the backend: LayerNorm of host rows.
    auto rows_in = random_values(rows * in, 74, 2.0f), expected = rows_in;
    LayerNormParams n;
    n.rows = rows;
    n.channels = in;
    n.x = n.y = expected.data();
    cpu::layer_norm(n);
    n.x = n.y = rows_in.data();
    backend.layer_norm(n);
    expect_close(rows_in, expected, in, false, "layer_norm in place through the backend");
    EXPECT_EQ(backend.describe()["device"], "cuda:0");
}

}  // namespace

int main(int argc, char** argv) {
    return boreas::testing_support::run_gpu_tests(argc, argv);
}
