#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "boreas/train/loss.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using boreas::Tensor;
using namespace boreas::train;

TEST(Loss, VariableScalingFollowsPressureLevels) {
    LossConfig config;
    config.variable_weights = {{"t_850", 6.0}, {"sp", 10.0}};
    const auto s = variable_scaling({"z_500", "t_850", "q_50", "sp", "2t", "cos_latitude"}, config);
    EXPECT_DOUBLE_EQ(s[0], 0.5);          // max(0.2, 0.001 * 500)
    EXPECT_DOUBLE_EQ(s[1], 6.0 * 0.85);
    EXPECT_DOUBLE_EQ(s[2], 0.2);          // 0.05 clipped to the intercept
    EXPECT_DOUBLE_EQ(s[3], 10.0);
    EXPECT_DOUBLE_EQ(s[4], 1.0);
    EXPECT_DOUBLE_EQ(s[5], 1.0);
}

TEST(Loss, WeightedMseByHand) {
    // B = 1, N = 2, V = 2: loss = sum_n w_n mean_v s_v e^2.
    Tensor prediction({1, 1, 1, 2, 2}, std::vector<float>{1, 2, 3, 4});
    Tensor target({1, 1, 1, 2, 2}, std::vector<float>{0, 0, 3, 2});
    Tensor d(prediction.shape());
    const double loss = weighted_mse(prediction, target, {0.25, 0.75}, {1.0, 2.0}, 1.0, d);
    EXPECT_DOUBLE_EQ(loss, 0.25 * (1 + 2 * 4) / 2 + 0.75 * (0 + 2 * 4) / 2);
    EXPECT_FLOAT_EQ(d.data()[1], static_cast<float>(2 * 2.0 * 2 * 0.25 / 2));
}

TEST(Loss, RolloutGradientsMatchFiniteDifferences) {
    const fs::path data = BOREAS_TEST_DATA;
    auto config = boreas::model::load_config((data / "model" / "transformer.yaml").string(), {"model.bounding=[]"});
    config.graph.file = (data.parent_path().parent_path() / config.graph.file).string();
    boreas::model::Model model(config, boreas::model::graph_for(config));
    model.parameters().initialise(2, 0.3f);
    const std::int64_t nodes = model.graph().node_set("data").count();
    Tensor batch({2, 4, 1, nodes, 8});  // T = 2 inputs + R = 2 targets, all 8 dataset variables
    std::mt19937 generator(9);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& v : batch.storage()) v = normal(generator);
    LossConfig loss_config;
    const auto step = rollout_step(model, batch, 2, loss_config);
    ASSERT_EQ(step.step_losses.size(), 2u);
    EXPECT_NEAR(step.loss, 0.5 * (step.step_losses[0] + step.step_losses[1]), 1e-12);
    auto loss = [&] { return rollout_step(model, batch, 2, loss_config).loss; };
    for (const std::string name : {"processor.proc.1.mlp.mlp.2.weight", "encoder.data.proc.lin_query.weight",
                                   "decoder.data.node_data_extractor.1.weight",
                                   "node_attributes.trainable_tensors.data.trainable"}) {
        const auto values = const_cast<Tensor&>(model.parameters().get(name)).storage();
        boreas::testing_support::check_finite_differences(name, values, step.gradients.parameters.at(name).values(),
                                                          loss, 4, 4, 1e-6);
    }
}

}  // namespace
