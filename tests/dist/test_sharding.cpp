// Model sharding (ctest label mpi; run under mpirun -n 2 and -n 4): the forward sharded over the
// ranks equals the single-process forward on every rank, for the transformer, graph-transformer
// and GNN processors with their mappers (the fixtures' configs with anemoi-trained-layout
// weights, batch 2), block by block through the trace; the sharded training step gives the
// single-process output, parameter gradients and input gradient. Run alone it is one rank and
// checks the one-rank path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "boreas/bench/scaling.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/model/model.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using boreas::Tensor;
using boreas::dist::Communicator;
const fs::path kData = BOREAS_TEST_DATA;
const fs::path kRoot = kData.parent_path().parent_path();

boreas::model::Model make_model(const std::string& variant,
                                std::vector<std::string> overrides = {}) {
    auto config =
        boreas::model::load_config((kData / "model" / (variant + ".yaml")).string(), overrides);
    config.graph.file = (kRoot / config.graph.file).string();
    boreas::model::Model model(config, boreas::model::graph_for(config));
    model.load_weights(boreas::testing_support::complete_weights(variant));
    return model;
}

/// Largest |a - b| / (|b| + 1e-6 x RMS(b)): fp32 agreement judged against the tensor's scale.
double worst_relative(const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.numel(), b.numel());
    double squares = 0;
    for (float v : b.values()) squares += static_cast<double>(v) * v;
    const double floor = 1e-6 * std::max(1.0, std::sqrt(squares / std::max<double>(1, b.numel())));
    double worst = 0;
    for (std::int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(a.values()[i]) - b.values()[i]) /
                                    (std::abs(static_cast<double>(b.values()[i])) + floor));
    return worst;
}

class ShardedForward : public testing::TestWithParam<std::string> {};

TEST_P(ShardedForward, EqualsOneProcessBlockByBlock) {
    auto& world = Communicator::world();
    const auto model = make_model(GetParam());
    const Tensor input = boreas::model::synthetic_input(model, 2, 5);
    std::map<std::string, Tensor> whole, sharded;
    boreas::model::ForwardOptions one;
    one.trace = [&](const std::string& name, const Tensor& value) { whole[name] = value; };
    const Tensor reference = model.forward(input, one);
    boreas::model::ForwardOptions shards;
    shards.shards = &world;
    shards.trace = [&](const std::string& name, const Tensor& value) { sharded[name] = value; };
    const Tensor output = model.forward(input, shards);
    ASSERT_EQ(output.shape(), reference.shape());
    for (const auto& [name, value] : whole) {
        ASSERT_TRUE(sharded.count(name)) << name << " not traced by the sharded forward";
        const double worst = worst_relative(sharded.at(name), value);
        EXPECT_LE(worst, 1e-5) << GetParam() << " " << name << " on " << world.size() << " ranks";
        if (world.rank() == 0)
            std::printf("%s %s on %d ranks: worst relative difference %.2e\n", GetParam().c_str(),
                        name.c_str(), world.size(), worst);
    }
    EXPECT_LE(worst_relative(output, reference), 1e-5);
}

TEST(ShardedForwardGroups, ReplicasOfShardsEachEqualOneProcess) {
    // 4 ranks as 2 replicas x 2 shards: each replica's group shards its own input.
    auto& world = Communicator::world();
    if (world.size() % 2 != 0 || world.size() < 4) GTEST_SKIP() << "needs 4 ranks (or 2k, k >= 2)";
    const int shards = 2, replica = world.rank() / shards;
    const auto group = world.split(replica, world.rank() % shards);
    ASSERT_EQ(group.size(), shards);
    const auto model = make_model("transformer");
    const Tensor input = boreas::model::synthetic_input(model, 1, 7 + replica);
    boreas::model::ForwardOptions options;
    options.shards = &group;
    EXPECT_LE(worst_relative(model.forward(input, options), model.forward(input)), 1e-5);
    EXPECT_GT(group.traffic().bytes_sent, 0);
}

TEST(ShardedForwardErrors, HeadsThatDoNotSplitAreRefused) {
    auto& world = Communicator::world();
    if (world.size() < 2) GTEST_SKIP() << "needs 2 ranks or more";
    // 4 heads of 8 channels cannot split over 3 ranks; with 2 or 4 ranks use 1 head.
    const int heads = world.size() == 3 ? 4 : 1;
    const auto model =
        make_model("transformer", {"model.processor.num_heads=" + std::to_string(heads)});
    const Tensor input = boreas::model::synthetic_input(model, 1, 5);
    boreas::model::ForwardOptions options;
    options.shards = &world;
    const auto message =
        boreas::testing_support::error_of([&] { (void)model.forward(input, options); });
    EXPECT_NE(message.find("heads do not split"), std::string::npos) << message;
}

/// Largest |a - b| over the tensor, relative to its largest |b| (at least `floor`): gradients
/// summed in another order differ by rounding of the tensor's scale, not of each entry.
double worst_scaled(const Tensor& a, const Tensor& b, double floor = 1e-30) {
    double scale = floor, worst = 0;
    for (float v : b.values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
    for (std::int64_t i = 0; i < b.numel(); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(a.values()[i]) - b.values()[i]));
    return worst / scale;
}

class ShardedTraining : public testing::TestWithParam<std::string> {};

TEST_P(ShardedTraining, GradientsEqualOneProcess) {
    auto& world = Communicator::world();
    auto model = make_model(GetParam());
    model.parameters().initialise(11, 0.3f);  // non-zero trainable tensors and LayerNorm affines
    const Tensor input = boreas::model::synthetic_input(model, 2, 5);
    auto tape = std::make_unique<boreas::model::TrainingTape>();
    const Tensor reference = model.forward_train(input, *tape);
    std::vector<float> r(static_cast<std::size_t>(reference.numel()));
    std::mt19937 generator(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& v : r) v = normal(generator);
    const Tensor d_output(reference.shape(), r);
    auto expected = model.zero_gradients(input);
    model.backward(*tape, d_output, expected);

    auto sharded_tape = std::make_unique<boreas::model::TrainingTape>();
    const double sent_before = world.traffic().bytes_sent;
    const Tensor output = model.forward_train(input, *sharded_tape, false, &world);
    EXPECT_LE(worst_relative(output, reference), 1e-5) << "output";
    auto grads = model.zero_gradients(input);
    model.backward(*sharded_tape, d_output, grads);
    double worst = 0;
    std::string where;
    for (const auto& [name, value] : expected.parameters) {
        // The key bias' gradient is zero but for rounding (softmax is shift-invariant): judged
        // against the scale of the key weight's gradient.
        double floor = 1e-30;
        if (const auto at = name.rfind("lin_key.bias"); at != std::string::npos)
            for (float v : expected.parameters.at(name.substr(0, at) + "lin_key.weight").values())
                floor = std::max(floor, static_cast<double>(std::abs(v)));
        const double err = worst_scaled(grads.parameters.at(name), value, floor);
        EXPECT_LE(err, 1e-5) << name << " on " << world.size() << " ranks";
        if (err > worst) worst = err, where = name;
    }
    // The scaling model's traffic count is exact: what rank 0 sent in the step.
    if (world.rank() == 0 && world.size() > 1) {
        const double values =
            static_cast<double>(model.parameters().parameter_count() + input.numel());
        const auto modelled = boreas::bench::shard_traffic(model.config(), model.graph(), 2,
                                                           world.size(), true, values);
        EXPECT_EQ(world.traffic().bytes_sent - sent_before, modelled.bytes);
    }
    const double input_err = worst_scaled(grads.input, expected.input);
    EXPECT_LE(input_err, 1e-5) << "input gradient";
    if (world.rank() == 0)
        std::printf(
            "%s training on %d ranks: worst gradient difference %.2e of its tensor's "
            "scale (%s), input gradient %.2e\n",
            GetParam().c_str(), world.size(), worst, where.c_str(), input_err);
}

INSTANTIATE_TEST_SUITE_P(Processors, ShardedTraining,
                         testing::Values("transformer", "graphtransformer"));

INSTANTIATE_TEST_SUITE_P(Processors, ShardedForward,
                         testing::Values("transformer", "graphtransformer", "gnn", "gnn_mappers"));

}  // namespace
