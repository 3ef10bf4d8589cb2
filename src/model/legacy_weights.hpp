#pragma once
// Weights saved by anemoi-models 0.3.x, the release AIFS-single 1.0 was trained with: other
// module names (spec/model.md 5.1), one fused lin_qkv per transformer layer, layers grouped in
// chunks, and trainable edge rows in the graph's own edge order rather than sorted by destination.

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "boreas/graphs/graph.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/model/config.hpp"
#include "boreas/model/parameters.hpp"

namespace boreas::model {

/// True when the file uses the 0.3.x layout (a fused lin_qkv or a trainable_data tensor).
bool is_legacy_layout(const io::SafetensorsReader& reader);

/// The older state-dict layouts Boreas maps to its own (0.16+) names; tools/reference/
/// ANEMOI_LAYOUTS.md lists all of anemoi's.
enum class LegacyLayout {
    v0_3,  ///< anemoi-models 0.3.x (AIFS-single 1.0): trainable_data, layer_norm1/2, fused lin_qkv
    v0_7,  ///< anemoi-models 0.7-0.10: node_attributes, named LayerNorms, split q/k/v, MLPs as
           ///< node_dst_mlp.{0,2}; still mapper-owned edges in graph order and chunked blocks
};

/// Where older tensors come from: a safetensors file or a checkpoint's module tree.
struct LegacySource {
    std::string origin;  ///< names the source in errors
    std::vector<std::string> names;
    std::function<std::vector<std::int64_t>(const std::string&)> shape;
    std::function<std::vector<float>(const std::string&)> read;
};

/// Fills every parameter of `store` (declared with current names) from 0.3.x tensors named
/// `prefix` + 0.3.x name; returns the source names it used. Throws naming the missing or
/// misshapen tensor. Trainable edge rows are reordered from the graph's edge order to CSR order
/// through the graph's perm.
std::set<std::string> load_legacy_parameters(ParameterStore& store, const LegacySource& source,
                                             const std::string& prefix, const ModelConfig& config,
                                             const graphs::Graph& graph,
                                             LegacyLayout layout = LegacyLayout::v0_3);

/// The same from a 0.3.x safetensors file; its known buffers (latlons, edge_inc, normaliser) are
/// allowed, any other extra tensor is an error.
void load_legacy_weights(ParameterStore& store, const io::SafetensorsReader& reader,
                         const ModelConfig& config, const graphs::Graph& graph);

}  // namespace boreas::model
