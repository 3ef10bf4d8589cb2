#pragma once
// Weights saved by anemoi-models 0.3.x, the release AIFS-single 1.0 was trained with: other
// module names (spec/model.md 5.1), one fused lin_qkv per transformer layer, layers grouped in
// chunks, and trainable edge rows in the graph's own edge order rather than sorted by destination.

#include <string>

#include "boreas/graphs/graph.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/model/config.hpp"
#include "boreas/model/parameters.hpp"

namespace boreas::model {

/// True when the file uses the 0.3.x layout (a fused lin_qkv or a trainable_data tensor).
bool is_legacy_layout(const io::SafetensorsReader& reader);

/// Fills every parameter of `store` (declared with current names) from a 0.3.x file; throws
/// naming the missing, extra or misshapen tensor.
void load_legacy_weights(ParameterStore& store, const io::SafetensorsReader& reader,
                         const ModelConfig& config, const graphs::Graph& graph);

}  // namespace boreas::model
