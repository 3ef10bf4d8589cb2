// The scaling prediction model (bench/scaling.hpp) on a made-up workload and system, where each
// term can be worked out by hand.
#include <gtest/gtest.h>

#include "boreas/bench/scaling.hpp"

namespace {

using boreas::bench::predict;

boreas::bench::Workload workload() {
    boreas::bench::Workload w;
    w.step_s = 1.0;
    w.optimizer_s = 0.1;
    w.overlap_s = 0.5;
    w.gradient_bytes = 4e9;
    w.shard.resize(5);
    w.shard[2] = {1e9, 10};
    w.shard[4] = {1.5e9, 10};
    return w;
}

boreas::bench::SystemFigures system() {
    boreas::bench::SystemFigures s;
    s.devices_per_node = 4;
    s.intra_gbs = 100;
    s.inter_gbs = 10;
    s.intra_latency_us = 1;
    s.inter_latency_us = 10;
    return s;
}

TEST(ScalingModel, OneRankIsTheMeasurement) {
    const auto p = predict(workload(), system(), 1, 1, 1.0);
    EXPECT_DOUBLE_EQ(p.step_s, 1.0);
    EXPECT_DOUBLE_EQ(p.efficiency, 1.0);
}

TEST(ScalingModel, ShardsSplitComputeAndPayTheirExchanges) {
    const auto p = predict(workload(), system(), 1, 2, 1.0);
    EXPECT_DOUBLE_EQ(p.compute_s, 0.9 / 2 + 0.1);                // the optimizer is replicated
    EXPECT_NEAR(p.shard_s, 1e9 / 100e9 + 10 * 1 * 1e-6, 1e-12);  // intra-node: 2 <= 4
    EXPECT_NEAR(p.efficiency, 1.0 / (2 * (p.compute_s + p.shard_s)), 1e-12);
}

TEST(ScalingModel, AllReduceHidesBehindTheBackwardWithinANode) {
    // Ring all-reduce of 4 GB over 4 ranks in a node: 2 x 3/4 x 4 GB / 100 GB/s + 6 x 1 us.
    const auto inside = predict(workload(), system(), 4, 1, 1.0);
    EXPECT_NEAR(inside.allreduce_s, 0.06 + 6e-6, 1e-12);
    EXPECT_DOUBLE_EQ(inside.exposed_s, 0.0);  // 0.06 s < the 0.5 s window
    // 8 ranks span two nodes: the network's 10 GB/s, 0.7 s, 0.2 s of it exposed.
    const auto across = predict(workload(), system(), 8, 1, 1.0);
    EXPECT_NEAR(across.allreduce_s, 2 * 7.0 / 8 * 4e9 / 10e9 + 14 * 10e-6, 1e-12);
    EXPECT_NEAR(across.exposed_s, across.allreduce_s - 0.5, 1e-12);
    EXPECT_LT(across.efficiency, 1.0);
}

TEST(ScalingModel, ReplicasOfShardsDoNotHideTheirAllReduce) {
    // With shards the gradients are final only after the group's sum.
    const auto p = predict(workload(), system(), 2, 4, 1.0);
    EXPECT_DOUBLE_EQ(p.exposed_s, p.allreduce_s);
}

TEST(ScalingModel, EuroHpcSystemsAreComplete) {
    const auto& systems = boreas::bench::eurohpc_systems();
    ASSERT_EQ(systems.size(), 4u);
    for (const auto& s : systems) {
        EXPECT_GT(s.devices_per_node, 0) << s.name;
        EXPECT_GT(s.fp32_tflops, 0) << s.name;
        EXPECT_GT(s.bf16_tflops, s.fp32_tflops) << s.name;
        EXPECT_GT(s.intra_gbs, s.inter_gbs) << s.name;
        EXPECT_FALSE(s.source.empty()) << s.name;
    }
}

}  // namespace
