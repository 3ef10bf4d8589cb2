#pragma once
/// Encoder-processor-decoder graphs with anemoi-graphs semantics: a data node set, a hidden node
/// set, and the edge sets data_to_hidden (encoder), hidden_to_data (decoder) and optionally
/// hidden_to_hidden (graph processors). Edges are stored sorted by destination (CSR), which is
/// what the fused graph-attention kernels walk; `perm` keeps anemoi's own edge order.

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "boreas/grids/geometry.hpp"

namespace boreas::graphs {

struct NodeSet {
    std::string grid;              ///< grid spec the nodes came from ("O96", "TRI5", "file:...")
    std::vector<float> coords;     ///< [count, 2]: (lat, lon) in radians, float32 as anemoi's x
    std::vector<float> area_weight;  ///< [count], may be empty

    std::int64_t count() const { return static_cast<std::int64_t>(coords.size() / 2); }
};

struct EdgeSet {
    std::string source, target;      ///< node set names
    std::vector<std::int64_t> dst_offsets;  ///< [target count + 1]
    std::vector<std::int32_t> src;   ///< [E] source node per edge, CSR order
    std::vector<std::int64_t> perm;  ///< [E] position in anemoi's edge_index of CSR edge p
                                     ///< (stored in files only when not the identity)
    std::vector<float> edge_length;  ///< [E]
    std::vector<float> edge_dirs;    ///< [E, 2]
    nlohmann::ordered_json builder;  ///< how the edges were made ({"type": "cutoff", ...})

    std::int64_t count() const { return static_cast<std::int64_t>(src.size()); }
};

struct Graph {
    std::map<std::string, NodeSet> nodes;   ///< "data", "hidden"
    std::map<std::string, EdgeSet> edges;   ///< "data_to_hidden", "hidden_to_data", ...
    nlohmann::ordered_json attributes;      ///< normalisation and conventions of the attributes
    nlohmann::ordered_json provenance;      ///< who built it (Boreas version or anemoi-graphs)

    const NodeSet& node_set(const std::string& name) const;
    const EdgeSet& edge_set(const std::string& name) const;
};

/// Graph file format version this build writes and the newest it reads.
inline constexpr int kGraphFormatVersion = 1;

/// Writes the graph as one safetensors file (tensors + JSON metadata), atomically.
void save_graph(const Graph& graph, const std::filesystem::path& path);
/// Reads and validates a graph file; throws boreas::Error naming the file and the problem.
Graph load_graph(const std::filesystem::path& path);

/// {"nodes": {...}, "edges": {...}, "in_degree": {set: {min, mean, max, zero}}, ...}
nlohmann::ordered_json summarise(const Graph& graph);

/// Unit vectors of a node set as anemoi-graphs computes them (float32 trigonometry on the float32
/// coordinates); every neighbour search runs on these, with distances in double as sklearn does.
std::vector<grids::Vec3> node_vectors(const NodeSet& nodes);

/// 16 hex digits identifying the graph as a model sees it: node coordinates, each edge set's
/// CSR structure, its permutation to anemoi's order and its edge attributes (FNV-1a over the
/// bytes). Weights with trainable edge rows are tied to it: saved weights carry it, and loading
/// them with a graph of another fingerprint is refused.
std::string fingerprint(const Graph& graph);

/// Checks CSR structure, index ranges and attribute sizes; throws naming `where` and the set.
void validate(const Graph& graph, const std::string& where);

}  // namespace boreas::graphs
