// Linear against its definition computed in double: y = x W^T + b (+ y when accumulating), then
// the exact GELU, with the pre-activation kept. The shapes cover both paths of the kernel (the
// packed register tile where in <= 2048, OpenBLAS otherwise), row counts with partial 6-row
// tiles and partial 48-row chunks, outputs with a partial last 16-column panel, inputs whose
// width is not a multiple of 8, weights split into column blocks, strided rows, and a call
// from inside a parallel region.
#include <gtest/gtest.h>
#include <omp.h>

#include <array>
#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "boreas/kernels/kernels.hpp"
#include "support/bf16.hpp"

namespace {

using namespace boreas::kernels;

// The packed path runs on the avx2 and avx512 kernel paths (simd.hpp); on the generic path
// every Linear goes through OpenBLAS, whose results may depend on its own threading.
bool packed_path_active() {
    return cpu::active_path() != "generic";
}

/// `action` once on the 256-bit and once on the 512-bit fp32 tile (the path's choice restored
/// after); false where the path has no 512-bit tile.
template <typename Action>
bool on_both_fp32_tiles(Action&& action) {
    if (cpu::active_path() != "avx512") return false;
    const int before = cpu::fp32_tile_bits();
    cpu::select_fp32_tile(256);
    action(256);
    cpu::select_fp32_tile(512);
    action(512);
    cpu::select_fp32_tile(before);
    return true;
}

struct Shape {
    std::int64_t rows, in, out;
    bool bias, gelu, accumulate, strided;
};

void PrintTo(const Shape& s, std::ostream* os) {
    *os << s.rows << " rows, " << s.in << " -> " << s.out << (s.bias ? ", bias" : "")
        << (s.gelu ? ", GELU" : "") << (s.accumulate ? ", accumulate" : "")
        << (s.strided ? ", strided" : "");
}

struct Case {
    Shape shape;
    std::vector<float> x, weight, bias, y_before;
    std::int64_t ldx, ldy;
};

Case make_case(const Shape& s) {
    std::mt19937 generator(static_cast<std::uint32_t>(s.rows * 31 + s.in * 7 + s.out));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random = [&](std::int64_t n, float scale) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& value : v) value = scale * normal(generator);
        return v;
    };
    Case c{s, {}, {}, {}, {}, s.strided ? s.in + 5 : s.in, s.strided ? s.out + 16 : s.out};
    c.x = random(s.rows * c.ldx, 1.0f);
    c.weight = random(s.out * s.in, 1.0f / std::sqrt(static_cast<float>(s.in)));
    c.bias = random(s.out, 0.5f);
    c.y_before = random(s.rows * c.ldy, 1.0f);
    return c;
}

/// Runs linear on the case; returns y (its padding columns must come back untouched).
std::vector<float> run(const Case& c, std::vector<float>* pre_activation) {
    const Shape& s = c.shape;
    std::vector<float> y = c.y_before;
    LinearParams p;
    p.x = c.x.data();
    p.weight = c.weight.data();
    p.bias = s.bias ? c.bias.data() : nullptr;
    p.y = y.data();
    p.rows = s.rows;
    p.in = s.in;
    p.out = s.out;
    p.x_stride = s.strided ? c.ldx : 0;
    p.y_stride = s.strided ? c.ldy : 0;
    p.accumulate = s.accumulate;
    p.gelu = s.gelu;
    if (pre_activation) {
        pre_activation->assign(static_cast<std::size_t>(s.rows * s.out), NAN);
        p.pre_activation = pre_activation->data();
    }
    cpu::linear(p);
    return y;
}

void expect_matches_definition(const Case& c, const std::vector<float>& y,
                               const std::vector<float>* pre_activation) {
    const Shape& s = c.shape;
    for (std::int64_t r = 0; r < s.rows; ++r) {
        for (std::int64_t o = 0; o < s.out; ++o) {
            double sum = s.bias ? c.bias[o] : 0.0;
            for (std::int64_t i = 0; i < s.in; ++i)
                sum += static_cast<double>(c.x[r * c.ldx + i]) * c.weight[o * s.in + i];
            if (s.accumulate) sum += c.y_before[r * c.ldy + o];
            if (pre_activation) {
                ASSERT_NEAR((*pre_activation)[r * s.out + o], sum, 1e-5 * (1 + std::abs(sum)))
                    << "pre-activation, row " << r << ", column " << o;
            }
            const double expected = s.gelu ? 0.5 * sum * (1 + std::erf(sum / std::sqrt(2.0))) : sum;
            ASSERT_NEAR(y[r * c.ldy + o], expected, 1e-5 * (1 + std::abs(expected)))
                << "row " << r << ", column " << o;
        }
        for (std::int64_t o = s.out; o < c.ldy; ++o)
            ASSERT_EQ(y[r * c.ldy + o], c.y_before[r * c.ldy + o]) << "padding of row " << r;
    }
}

class Linear : public ::testing::TestWithParam<Shape> {};

TEST_P(Linear, MatchesTheDefinition) {
    const Case c = make_case(GetParam());
    std::vector<float> pre_activation;
    std::vector<float>* keep = GetParam().gelu ? &pre_activation : nullptr;
    const auto y = run(c, keep);
    expect_matches_definition(c, y, keep);
}

// The 512-bit tile (12 x 16 zmm) runs every output's sum as the same chain of FMAs as the
// 256-bit one (6 x 16 ymm), and adds bias and residual in the same order: the same bits.
TEST_P(Linear, BothFp32TilesGiveTheSameBits) {
    const Case c = make_case(GetParam());
    std::vector<float> y[2], pre[2];
    std::vector<float>* keep[2] = {nullptr, nullptr};
    if (GetParam().gelu) keep[0] = &pre[0], keep[1] = &pre[1];
    if (!on_both_fp32_tiles([&](int bits) { y[bits / 512] = run(c, keep[bits / 512]); }))
        GTEST_SKIP() << "the 512-bit tile is on the avx512 path only (this is "
                     << cpu::active_path() << ")";
    EXPECT_EQ(y[1], y[0]);
    EXPECT_EQ(pre[1], pre[0]);
    expect_matches_definition(c, y[1], keep[1]);
}

// Each calling thread packs into its own buffers. The packed path sums every output in the same
// order whatever the threading, so its results are identical; OpenBLAS may split the sum
// differently when it runs threads of its own, so there only rounding may differ.
TEST_P(Linear, GivesTheSameResultInsideAParallelRegion) {
    const Shape& s = GetParam();
    const Case c = make_case(s);
    const auto outside = run(c, nullptr);
    std::vector<std::vector<float>> inside(2);
#pragma omp parallel for num_threads(2)
    for (int t = 0; t < 2; ++t) inside[static_cast<std::size_t>(t)] = run(c, nullptr);
    const bool packed_path = packed_path_active() && s.in <= 2048;
    for (const auto& y : inside) {
        if (packed_path) {
            EXPECT_EQ(y, outside);
            continue;
        }
        for (std::size_t i = 0; i < y.size(); ++i)
            ASSERT_NEAR(y[i], outside[i], 1e-5 * (1 + std::abs(outside[i]))) << "value " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Linear,
    ::testing::Values(
        // packed tiles: 100 rows = 16 full tiles and a 4-row tile, two chunks of 48 rows and a
        // partial one; in = 37 leaves a 5-column tail after the 8-wide transposes
        Shape{100, 37, 48, true, false, false, false}, Shape{100, 64, 32, true, true, false, false},
        Shape{53, 40, 16, false, false, true, false}, Shape{53, 40, 16, true, false, true, true},
        Shape{7, 256, 64, true, true, false, true}, Shape{5, 24, 16, true, true, false, false},
        Shape{1, 8, 16, false, false, false, false}, Shape{300, 96, 64, true, true, false, true},
        // in 2048: 32 panels per 4 MiB column block, so 528 outputs make two blocks
        Shape{13, 2048, 528, true, true, false, false},
        // partial last panel: 45 = 2 panels + 13 columns, 7 columns only, 102 (the extractor)
        Shape{100, 37, 45, true, true, false, true}, Shape{30, 33, 7, true, false, true, false},
        Shape{5, 40, 23, true, false, true, true}, Shape{50, 256, 102, true, false, false, false},
        // OpenBLAS: in beyond the packed path's 2048
        Shape{20, 2056, 32, true, true, false, false},
        Shape{20, 2056, 45, true, false, true, true}));

// A weight given transposed ([in, out], the backward's dx = dy W) gives what the same weight
// gives stored [out, in]: bit for bit on the packed path (the panels are the same), within
// rounding through OpenBLAS.
#ifdef BOREAS_BLAS_OPENBLAS
extern "C" int openblas_get_num_threads(void);

TEST(Linear, LeavesOpenBlasSingleThreaded) {
    // The kernels split rows over OpenMP threads themselves; an OpenBLAS pool under each
    // thread's sgemm made 2 threads slower than 1 (docs/performance.md, issue 17). A Linear
    // wide enough for the OpenBLAS path (in > 2048) sets it to one thread.
    std::vector<float> x(8 * 2304, 0.5f), w(4 * 2304, 0.25f), y(8 * 4);
    boreas::kernels::LinearParams p;
    p.x = x.data();
    p.weight = w.data();
    p.y = y.data();
    p.rows = 8;
    p.in = 2304;
    p.out = 4;
    boreas::kernels::cpu::linear(p);
    EXPECT_EQ(openblas_get_num_threads(), 1);
    EXPECT_FLOAT_EQ(y[0], 2304 * 0.125f);
}
#endif

TEST(Linear, TransposedWeightMatchesStoredWeight) {
    for (const auto& [rows, in, out] :
         {std::array<std::int64_t, 3>{53, 40, 23}, std::array<std::int64_t, 3>{7, 256, 64},
          std::array<std::int64_t, 3>{20, 2056, 45}}) {
        const Case c = make_case(Shape{rows, in, out, true, false, true, false});
        std::vector<float> transposed(static_cast<std::size_t>(in * out));
        for (std::int64_t o = 0; o < out; ++o)
            for (std::int64_t i = 0; i < in; ++i) transposed[i * out + o] = c.weight[o * in + i];
        const auto stored = run(c, nullptr);
        std::vector<float> y = c.y_before;
        LinearParams p;
        p.x = c.x.data();
        p.weight = transposed.data();
        p.weight_transposed = true;
        p.bias = c.bias.data();
        p.y = y.data();
        p.rows = rows;
        p.in = in;
        p.out = out;
        p.accumulate = true;
        cpu::linear(p);
        if (packed_path_active() && in <= 2048) {
            EXPECT_EQ(y, stored) << rows << " x " << in << " -> " << out;
            continue;
        }
        for (std::size_t i = 0; i < y.size(); ++i)
            ASSERT_NEAR(y[i], stored[i], 1e-5 * (1 + std::abs(stored[i]))) << "value " << i;
    }
}

struct MlpShape {
    std::int64_t rows, in, hidden, out;
    bool biases, accumulate;
};

void PrintTo(const MlpShape& s, std::ostream* os) {
    *os << s.rows << " rows, " << s.in << " -> " << s.hidden << " -> " << s.out
        << (s.biases ? ", biases" : "") << (s.accumulate ? ", accumulate" : "");
}

struct MlpCase {
    std::vector<float> x, w_in, b_in, w_out, b_out, y_before;
};

/// Random x, weights (scaled by 1 / sqrt(fan-in)), biases and a prior y for an MLP shape.
MlpCase make_mlp_case(const MlpShape& s, std::uint32_t seed) {
    std::mt19937 generator(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random = [&](std::int64_t n, float scale) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& value : v) value = scale * normal(generator);
        return v;
    };
    MlpCase c;
    c.x = random(s.rows * s.in, 1.0f);
    c.w_in = random(s.hidden * s.in, 1.0f / std::sqrt(static_cast<float>(s.in)));
    c.b_in = random(s.hidden, 0.5f);
    c.w_out = random(s.out * s.hidden, 1.0f / std::sqrt(static_cast<float>(s.hidden)));
    c.b_out = random(s.out, 0.5f);
    c.y_before = random(s.rows * s.out, 1.0f);
    return c;
}

/// The MLP's parameters for a shape (biases where the shape has them), writing y.
MlpParams mlp_params(const MlpShape& s, const std::vector<float>& x, const std::vector<float>& w_in,
                     const std::vector<float>& b_in, const std::vector<float>& w_out,
                     const std::vector<float>& b_out, float* y) {
    MlpParams p;
    p.x = x.data();
    p.weight_in = w_in.data();
    p.bias_in = s.biases ? b_in.data() : nullptr;
    p.weight_out = w_out.data();
    p.bias_out = s.biases ? b_out.data() : nullptr;
    p.y = y;
    p.rows = s.rows;
    p.in = s.in;
    p.hidden = s.hidden;
    p.out = s.out;
    p.accumulate = s.accumulate;
    return p;
}

class Mlp : public ::testing::TestWithParam<MlpShape> {};

// The fused MLP against GELU(x W_in^T + b_in) W_out^T + b_out (+ y) in double, and against the
// same two steps through Linear: the fused kernel sums in the same order as the Linears (and
// falls back to them), so it must give the model exactly the numbers it gave before.
TEST_P(Mlp, MatchesTheDefinitionAndTwoLinears) {
    const MlpShape s = GetParam();
    const auto [x, w_in, b_in, w_out, b_out, y_before] =
        make_mlp_case(s, static_cast<std::uint32_t>(s.rows * 17 + s.hidden * 3 + s.out));

    std::vector<float> fused = y_before;
    const MlpParams p = mlp_params(s, x, w_in, b_in, w_out, b_out, fused.data());
    cpu::mlp(p);

    std::vector<float> hidden(static_cast<std::size_t>(s.rows * s.hidden)), two_step = y_before;
    LinearParams first;
    first.x = x.data();
    first.weight = w_in.data();
    first.bias = p.bias_in;
    first.y = hidden.data();
    first.rows = s.rows;
    first.in = s.in;
    first.out = s.hidden;
    first.gelu = true;
    cpu::linear(first);
    LinearParams second;
    second.x = hidden.data();
    second.weight = w_out.data();
    second.bias = p.bias_out;
    second.y = two_step.data();
    second.rows = s.rows;
    second.in = s.hidden;
    second.out = s.out;
    second.accumulate = s.accumulate;
    cpu::linear(second);
    EXPECT_EQ(fused, two_step);

    std::vector<double> h(static_cast<std::size_t>(s.hidden));
    for (std::int64_t r = 0; r < s.rows; ++r) {
        for (std::int64_t j = 0; j < s.hidden; ++j) {
            double sum = s.biases ? b_in[j] : 0.0;
            for (std::int64_t i = 0; i < s.in; ++i)
                sum += static_cast<double>(x[r * s.in + i]) * w_in[j * s.in + i];
            h[j] = 0.5 * sum * (1 + std::erf(sum / std::sqrt(2.0)));
        }
        for (std::int64_t o = 0; o < s.out; ++o) {
            double sum = s.biases ? b_out[o] : 0.0;
            for (std::int64_t j = 0; j < s.hidden; ++j) sum += h[j] * w_out[o * s.hidden + j];
            if (s.accumulate) sum += y_before[r * s.out + o];
            ASSERT_NEAR(fused[r * s.out + o], sum, 2e-5 * (1 + std::abs(sum)))
                << "row " << r << ", column " << o;
        }
    }
}

// The fused MLP on the 512-bit tile (both GEMMs: the first stores its tiles k-major through
// two 6-row halves) against the 256-bit tile: the same bits.
TEST_P(Mlp, BothFp32TilesGiveTheSameBits) {
    const MlpShape s = GetParam();
    const auto [x, w_in, b_in, w_out, b_out, y_before] =
        make_mlp_case(s, static_cast<std::uint32_t>(s.rows * 5 + s.hidden + s.out));
    std::vector<float> y[2];
    const bool ran = on_both_fp32_tiles([&](int bits) {
        auto& out = y[bits / 512];
        out = y_before;
        cpu::mlp(mlp_params(s, x, w_in, b_in, w_out, b_out, out.data()));
    });
    if (!ran)
        GTEST_SKIP() << "the 512-bit tile is on the avx512 path only (this is "
                     << cpu::active_path() << ")";
    EXPECT_EQ(y[1], y[0]);
}

// The MLP of LayerNorm(x), normalised chunk by chunk inside the kernel, against layer_norm
// then the MLP: the same bits, also with y = x (the pre-norm residual the model runs in place).
class MlpOfLayerNorm : public ::testing::TestWithParam<MlpShape> {};

TEST_P(MlpOfLayerNorm, MatchesLayerNormThenMlpInPlace) {
    const MlpShape s = GetParam();  // the residual form: in == out, accumulating
    std::mt19937 generator(static_cast<std::uint32_t>(s.rows * 29 + s.hidden));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random = [&](std::int64_t n, float scale, float offset) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& value : v) value = offset + scale * normal(generator);
        return v;
    };
    const auto x = random(s.rows * s.in, 2.0f, 0.5f);
    const auto gamma = random(s.in, 0.3f, 1.0f), beta = random(s.in, 0.2f, 0.0f);
    const auto w_in = random(s.hidden * s.in, 1.0f / std::sqrt(static_cast<float>(s.in)), 0.0f);
    const auto b_in = random(s.hidden, 0.5f, 0.0f);
    const auto w_out =
        random(s.out * s.hidden, 1.0f / std::sqrt(static_cast<float>(s.hidden)), 0.0f);
    const auto b_out = random(s.out, 0.5f, 0.0f);

    std::vector<float> normalised(x.size());
    LayerNormParams norm;
    norm.x = x.data();
    norm.y = normalised.data();
    norm.gamma = gamma.data();
    norm.beta = beta.data();
    norm.rows = s.rows;
    norm.channels = s.in;
    cpu::layer_norm(norm);
    MlpParams p;
    p.weight_in = w_in.data();
    p.bias_in = s.biases ? b_in.data() : nullptr;
    p.weight_out = w_out.data();
    p.bias_out = s.biases ? b_out.data() : nullptr;
    p.rows = s.rows;
    p.in = s.in;
    p.hidden = s.hidden;
    p.out = s.out;
    p.accumulate = true;
    std::vector<float> separate = x;
    p.x = normalised.data();
    p.y = separate.data();
    cpu::mlp(p);

    std::vector<float> in_place = x;
    p.x = in_place.data();
    p.y = in_place.data();
    p.layer_norm = true;
    p.norm_gamma = gamma.data();
    p.norm_beta = beta.data();
    cpu::mlp(p);
    EXPECT_EQ(in_place, separate);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Mlp,
    ::testing::Values(
        // fused: partial tiles and chunks, in not a multiple of 8
        MlpShape{100, 37, 64, 48, true, false}, MlpShape{53, 32, 48, 16, true, true},
        MlpShape{5, 24, 32, 16, false, false}, MlpShape{7, 256, 1024, 256, true, true},
        // two Linears: hidden or out not a multiple of 16, weights beyond 8 MiB
        MlpShape{30, 33, 40, 16, true, true}, MlpShape{30, 32, 48, 45, true, false},
        MlpShape{13, 1024, 2048, 1024, true, true}));

INSTANTIATE_TEST_SUITE_P(
    Shapes, MlpOfLayerNorm,
    ::testing::Values(
        // fused: one partial chunk, several chunks with a partial tile, the small model's widths
        MlpShape{7, 256, 1024, 256, true, true}, MlpShape{61, 48, 64, 48, true, true},
        MlpShape{100, 32, 48, 32, false, true},
        // two Linears: hidden not a multiple of 16, weights beyond 8 MiB
        MlpShape{9, 40, 40, 40, true, true}, MlpShape{13, 1024, 2048, 1024, true, true}));

// bf16 (LinearParams::bf16), against the definition in double on bf16-rounded x and W, the
// sum rounded to bf16 (and GELU'd and rounded again). An fp32 sum and the double one may round
// to neighbouring bf16 values, so a result may differ by one bf16 step (two after GELU); most
// must be exact, and every non-accumulated result must be a bf16 value.
float bf16(double v) {
    return boreas::testing_support::round_to_bf16(static_cast<float>(v));
}

bool is_bf16_value(float v) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return (bits & 0xFFFFu) == 0;
}

struct Bf16Shape {
    Shape shape;
    bool transposed;
};

void PrintTo(const Bf16Shape& s, std::ostream* os) {
    PrintTo(s.shape, os);
    *os << (s.transposed ? ", transposed weight" : "");
}

class LinearBf16 : public ::testing::TestWithParam<Bf16Shape> {};

TEST_P(LinearBf16, MatchesTheDefinitionOnRoundedValues) {
    const Shape& s = GetParam().shape;
    const bool transposed = GetParam().transposed;
    const Case c = make_case(s);
    std::vector<float> stored = c.weight;  // [out, in], or [in, out] when transposed
    if (transposed)
        for (std::int64_t o = 0; o < s.out; ++o)
            for (std::int64_t i = 0; i < s.in; ++i) stored[i * s.out + o] = c.weight[o * s.in + i];
    std::vector<float> y = c.y_before, pre(static_cast<std::size_t>(s.rows * s.out), NAN);
    LinearParams p;
    p.x = c.x.data();
    p.weight = stored.data();
    p.weight_transposed = transposed;
    p.bias = s.bias ? c.bias.data() : nullptr;
    p.y = y.data();
    p.rows = s.rows, p.in = s.in, p.out = s.out;
    p.x_stride = s.strided ? c.ldx : 0;
    p.y_stride = s.strided ? c.ldy : 0;
    p.accumulate = s.accumulate;
    p.gelu = s.gelu;
    p.pre_activation = s.gelu ? pre.data() : nullptr;
    p.bf16 = true;
    cpu::linear(p);
    std::int64_t exact = 0, total = 0;
    for (std::int64_t r = 0; r < s.rows; ++r) {
        for (std::int64_t o = 0; o < s.out; ++o) {
            double sum = 0;
            for (std::int64_t i = 0; i < s.in; ++i)
                sum += static_cast<double>(bf16(c.x[r * c.ldx + i])) * bf16(c.weight[o * s.in + i]);
            const float rounded = bf16(sum + (s.bias ? c.bias[o] : 0.0));
            double expected = rounded;
            const double step = std::ldexp(1.0, -7) * std::abs(expected) + 1e-30;
            double tolerance = step;
            if (s.gelu) {
                ASSERT_NEAR(pre[r * s.out + o], rounded, step)
                    << "pre-activation " << r << ", " << o;
                expected = bf16(0.5 * rounded * (1 + std::erf(rounded / std::sqrt(2.0))));
                tolerance = 2 * std::ldexp(1.0, -7) * std::abs(expected) + 2 * step;
            }
            const float got = y[r * c.ldy + o];
            if (s.accumulate) {
                expected += c.y_before[r * c.ldy + o];
                tolerance += 1e-6 * std::abs(expected);
            } else {
                ASSERT_TRUE(is_bf16_value(got)) << got << " at " << r << ", " << o;
            }
            ASSERT_NEAR(got, expected, tolerance) << "row " << r << ", column " << o;
            exact += static_cast<double>(got) == expected;
            ++total;
        }
        for (std::int64_t o = s.out; o < c.ldy; ++o)
            ASSERT_EQ(y[r * c.ldy + o], c.y_before[r * c.ldy + o]) << "padding of row " << r;
    }
    if (!s.accumulate) {
        EXPECT_GE(exact, total * 9 / 10) << "results on the rounded definition";
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearBf16,
    ::testing::Values(
        // partial 12-row tiles and 96-row chunks, partial 32-column panels, odd widths
        Bf16Shape{{1, 7, 5, true, false, false, false}, false},
        Bf16Shape{{13, 64, 32, true, false, false, false}, false},
        Bf16Shape{{100, 72, 40, true, true, false, false}, false},
        Bf16Shape{{97, 33, 70, false, false, true, true}, false},
        Bf16Shape{{250, 256, 100, true, false, true, false}, false},
        Bf16Shape{{30, 1030, 48, true, true, false, true}, false},
        Bf16Shape{{50, 48, 33, true, false, false, false}, true}));

TEST(LinearBf16, MlpEqualsItsTwoLinears) {
    const std::int64_t rows = 1100, in = 64, hidden = 96, out = 64;  // two 1024-row chunks
    std::mt19937 generator(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random = [&](std::int64_t n, float scale) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (float& value : v) value = scale * normal(generator);
        return v;
    };
    const auto x = random(rows * in, 1), w_in = random(hidden * in, 0.125f),
               b_in = random(hidden, 0.5f), w_out = random(out * hidden, 0.1f),
               b_out = random(out, 0.5f), gamma = random(in, 1), beta = random(in, 1);
    std::vector<float> normalised(x.size()), h(static_cast<std::size_t>(rows * hidden));
    std::vector<float> expected = x;
    cpu::layer_norm({x.data(), normalised.data(), gamma.data(), beta.data(), rows, in});
    LinearParams first;
    first.x = normalised.data(), first.weight = w_in.data(), first.bias = b_in.data();
    first.y = h.data(), first.rows = rows, first.in = in, first.out = hidden;
    first.gelu = first.bf16 = true;
    cpu::linear(first);
    LinearParams second;
    second.x = h.data(), second.weight = w_out.data(), second.bias = b_out.data();
    second.y = expected.data(), second.rows = rows, second.in = hidden, second.out = out;
    second.accumulate = second.bf16 = true;
    cpu::linear(second);
    std::vector<float> y = x;  // in place: y = x + MLP(LN(x))
    MlpParams p;
    p.x = y.data(), p.y = y.data();
    p.weight_in = w_in.data(), p.bias_in = b_in.data();
    p.weight_out = w_out.data(), p.bias_out = b_out.data();
    p.rows = rows, p.in = in, p.hidden = hidden, p.out = out;
    p.accumulate = p.layer_norm = p.bf16 = true;
    p.norm_gamma = gamma.data(), p.norm_beta = beta.data();
    cpu::mlp(p);
    EXPECT_EQ(y, expected);
}

TEST(LinearBf16, KernelPathNamesTheBf16Method) {
    const std::string method = cpu::kernel_path()["bf16"].get<std::string>();
    EXPECT_TRUE(method == "avx512_bf16" || method == "emulated") << method;
    if (cpu::active_path() != "avx512") {
        EXPECT_EQ(method, "emulated");
    }
}

}  // namespace
