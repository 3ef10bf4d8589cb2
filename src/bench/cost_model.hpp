#pragma once
// FLOP and byte model of the forward pass, per phase. Model FLOPs only (MLPerf rule): 2mnk per
// Linear, 4 d per edge/key and head for attention (score and value), edge-feature terms;
// LayerNorm, GELU and copies count bytes, not FLOPs. Bytes: every operand read once and every
// result written once (float32), weights once per phase: a lower bound on memory traffic.

#include <map>
#include <string>

#include "boreas/graphs/graph.hpp"
#include "boreas/model/config.hpp"

namespace boreas::bench {

struct PhaseCost {
    double flops = 0;
    double bytes = 0;
};

/// Keys: input, encoder, processor, processor/chunk<k>, decoder, output.
std::map<std::string, PhaseCost> forward_costs(const model::ModelConfig& config,
                                               const graphs::Graph& graph, int batch);

}  // namespace boreas::bench
