#pragma once
/// Scaling out: the model sharding's traffic per step (exact, the same count as the
/// communicator's counters), and a communication-and-compute model that predicts the training
/// step for replicas x shards on a system from a one-rank measurement and the system's published
/// link figures (docs/scaling.md: sources, assumptions, validation).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "boreas/graphs/graph.hpp"
#include "boreas/model/config.hpp"

namespace boreas::bench {

/// A system's devices (ranks) and links, per device and direction, from public documentation.
struct SystemFigures {
    std::string name;    ///< "LUMI-G"
    std::string device;  ///< "MI250X GCD"
    int devices_per_node = 1;
    double fp32_tflops = 0, bf16_tflops = 0;  ///< dense peak per device
    double intra_gbs = 0, inter_gbs = 0;      ///< per device, one direction, GB/s
    double intra_latency_us = 0, inter_latency_us = 0;
    std::string source;  ///< where the figures come from (docs/scaling.md lists the URLs)
};

/// LUMI-G, Leonardo Booster, MareNostrum 5 ACC, JUPITER Booster.
const std::vector<SystemFigures>& eurohpc_systems();

/// What one rank sends per step for model sharding over `shards` ranks: bytes, collective
/// calls and the latency hops they cost on a ring (S - 1 per call).
struct ShardTraffic {
    double bytes = 0;
    double collectives = 0;
};
/// Training (forward, backward and the gradients' sum over the group) or forward only, for a
/// replica's batch; `values` = parameter count + input values (the group's gradient sum).
ShardTraffic shard_traffic(const model::ModelConfig& config, const graphs::Graph& graph,
                           std::int64_t batch, int shards, bool training, double values);

/// A training step measured on one rank (`boreas bench train` document) and its model.
struct Workload {
    std::string config;
    std::int64_t batch = 1;  ///< per replica
    double step_s = 0;       ///< median step
    double optimizer_s = 0;  ///< replicated on every shard
    double overlap_s = 0;    ///< backward after the decoder's: hides the all-reduce
    double gradient_bytes = 0;
    double host_rank_gflops = 0;      ///< the measuring rank's SGEMM roof
    std::vector<ShardTraffic> shard;  ///< index S: traffic for S shards (0, 1 unused)
};
Workload workload_from(const nlohmann::json& train_document, const model::ModelConfig& config,
                       const graphs::Graph& graph, int max_shards);

struct Prediction {
    int replicas = 1, shards = 1;
    double compute_s = 0, shard_s = 0, allreduce_s = 0, exposed_s = 0, step_s = 0;
    double efficiency = 0;  ///< T(1, 1) / (shards x T(replicas, shards))
};
/// `compute_ratio`: the system's per-rank compute time over the measuring rank's (Boreas taken
/// to reach the same fraction of each roof).
Prediction predict(const Workload& w, const SystemFigures& system, int replicas, int shards,
                   double compute_ratio);

/// An SVG plot of efficiency against ranks (log scale) for each system and layout, with
/// published reference points.
std::string prediction_svg(
    const std::vector<std::pair<std::string, std::vector<Prediction>>>& lines,
    const std::string& title);

}  // namespace boreas::bench
