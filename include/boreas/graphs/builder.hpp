#pragma once
/// Builds graphs as anemoi-graphs does (spec/model.md section 7, model-audit.md 1.5).

#include <string>

#include "boreas/graphs/graph.hpp"
#include "boreas/grids/grid.hpp"

namespace boreas::graphs {

/// Which anemoi-graphs behaviour to reproduce.
///  current:  anemoi-graphs >= 0.8 (anemoi-core): cutoff radius on chord distance, edge_dirs
///            (u_x, u_y) with pole special cases, unit-std with the unbiased std.
///  aifs-1.0: anemoi-graphs 0.4-era graphs of AIFS-single 1.0: haversine radius, edge_dirs
///            (u_y, -u_x), unit-std with the population std.
enum class Convention { current, aifs_1_0 };

enum class Norm { none, unit_std, unit_max, unit_sum, unit_range };

enum class HiddenEdges { none, multiscale, knn };

struct GraphOptions {
    std::string data_grid = "O96";
    std::string hidden_grid = "O48";
    double cutoff_factor = 0.6;      ///< encoder radius = factor x max nearest-neighbour distance
    int max_neighbours = 64;         ///< per hidden node in the encoder (current convention only)
    int knn = 3;                     ///< decoder: hidden neighbours of each data node
    HiddenEdges hidden_edges = HiddenEdges::none;
    int hidden_knn = 16;             ///< for HiddenEdges::knn
    int multiscale_hops = 1;         ///< for HiddenEdges::multiscale (only 1 is supported)
    /// Coarsest icosahedral level whose edges join the multi-scale set. anemoi-training's graph
    /// configs pass scale_resolutions = r, which anemoi-graphs turns into levels 1..r; a bare
    /// MultiScaleEdges uses 0..r.
    int multiscale_min_level = 1;
    Norm edge_norm = Norm::unit_std;
    Norm area_norm = Norm::unit_max;
    Convention convention = Convention::current;
};

Convention parse_convention(const std::string& text);
Norm parse_norm(const std::string& text);
HiddenEdges parse_hidden_edges(const std::string& text);
const char* to_string(Convention convention);
const char* to_string(Norm norm);
const char* to_string(HiddenEdges edges);

/// Validates the options against the grids and builds every node and edge set with attributes.
Graph build_graph(const GraphOptions& options);
Graph build_graph(const GraphOptions& options, const grids::Grid& data, const grids::Grid& hidden);

}  // namespace boreas::graphs
