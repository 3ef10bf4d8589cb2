// Model sharding (ctest label mpi; run under mpirun -n 2 and -n 4): the forward sharded over the
// ranks equals the single-process forward on every rank, for the transformer, graph-transformer
// and GNN processors with their mappers (the fixtures' configs with anemoi-trained-layout
// weights, batch 2), block by block through the trace. Run alone it is one rank and checks the
// one-rank path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

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

INSTANTIATE_TEST_SUITE_P(Processors, ShardedForward,
                         testing::Values("transformer", "graphtransformer", "gnn", "gnn_mappers"));

}  // namespace
