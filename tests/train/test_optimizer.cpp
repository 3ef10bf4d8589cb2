#include <gtest/gtest.h>

#include <cmath>

#include "boreas/train/optimizer.hpp"

namespace {

using namespace boreas::train;

TEST(AdamW, TwoStepsByHand) {
    // Reference values computed by hand from torch.optim.AdamW's update rule, in double.
    std::vector<float> p = {1.0f, -2.0f};
    const std::vector<float> g1 = {0.5f, -0.25f}, g2 = {-0.1f, 0.3f};
    AdamWState state;
    AdamWOptions options;
    double ref[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
    for (int step = 1; step <= 2; ++step) {
        const auto& g = step == 1 ? g1 : g2;
        adamw_step(p, g, state, step, 1e-2, options);
        for (int i = 0; i < 2; ++i) {
            ref[i] *= 1 - 1e-2 * 0.01;
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
            const double mh = m[i] / (1 - std::pow(0.9, step)), vh = v[i] / (1 - std::pow(0.95, step));
            ref[i] -= 1e-2 * mh / (std::sqrt(vh) + 1e-8);
            EXPECT_NEAR(p[i], ref[i], 1e-6) << "step " << step;
        }
    }
}

TEST(CosineSchedule, TimmWarmupAndCosine) {
    CosineSchedule s{1e-4, 3e-7, 1000, 10000};
    EXPECT_EQ(s.lr(0), 0.0);  // timm: the first step of a warm-up has lr 0
    EXPECT_NEAR(s.lr(500), 5e-5, 1e-15);
    EXPECT_NEAR(s.lr(1000), 3e-7 + 0.5 * (1e-4 - 3e-7) * (1 + std::cos(M_PI * 0.1)), 1e-15);
    EXPECT_NEAR(s.lr(5000), 3e-7 + 0.5 * (1e-4 - 3e-7), 1e-15);
    EXPECT_EQ(s.lr(20000), 3e-7);
}

TEST(Clipping, ValueAndGlobalNorm) {
    std::vector<float> a = {40.0f, -50.0f, 3.0f};
    clip_by_value(a, 32.0f);
    EXPECT_EQ(a, (std::vector<float>{32.0f, -32.0f, 3.0f}));
    std::vector<float> x = {3.0f}, y = {4.0f};
    const double norm = clip_by_global_norm({x, y}, 1.0);
    EXPECT_DOUBLE_EQ(norm, 5.0);
    EXPECT_NEAR(x[0], 0.6f, 1e-6);
    EXPECT_NEAR(y[0], 0.8f, 1e-6);
}

}  // namespace
