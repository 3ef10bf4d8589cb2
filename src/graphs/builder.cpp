#include "boreas/graphs/builder.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "boreas/core/context.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/graphs/edge_attributes.hpp"
#include "boreas/grids/area_weights.hpp"
#include "boreas/grids/icosahedral.hpp"
#include "boreas/grids/spatial_index.hpp"

namespace boreas::graphs {
namespace {

using grids::Neighbour;
using grids::SphereIndex;
using grids::Vec3;

struct Named {
    const char* name;
    int value;
};

template <typename Enum, std::size_t N>
Enum parse_enum(const std::string& text, const Named (&table)[N], const char* what) {
    std::string accepted;
    for (const auto& entry : table) {
        if (text == entry.name) return static_cast<Enum>(entry.value);
        accepted += accepted.empty() ? entry.name : std::string(", ") + entry.name;
    }
    BOREAS_FAIL("unknown {} '{}'; expected one of: {}", what, text, accepted);
}

template <typename Enum, std::size_t N>
const char* enum_name(Enum value, const Named (&table)[N]) {
    for (const auto& entry : table)
        if (entry.value == static_cast<int>(value)) return entry.name;
    return "?";
}

constexpr Named kConventions[] = {{"current", static_cast<int>(Convention::current)},
                                  {"aifs-1.0", static_cast<int>(Convention::aifs_1_0)}};
constexpr Named kNorms[] = {{"none", static_cast<int>(Norm::none)},
                            {"unit-std", static_cast<int>(Norm::unit_std)},
                            {"unit-max", static_cast<int>(Norm::unit_max)},
                            {"unit-sum", static_cast<int>(Norm::unit_sum)},
                            {"unit-range", static_cast<int>(Norm::unit_range)}};
constexpr Named kHiddenEdges[] = {{"none", static_cast<int>(HiddenEdges::none)},
                                  {"multiscale", static_cast<int>(HiddenEdges::multiscale)},
                                  {"knn", static_cast<int>(HiddenEdges::knn)}};

NodeSet make_node_set(const grids::Grid& grid) {
    NodeSet nodes;
    nodes.grid = grid.name;
    nodes.coords.resize(2 * grid.size());
    for (std::size_t i = 0; i < grid.size(); ++i) {
        nodes.coords[2 * i] = static_cast<float>(grid.latitudes[i]);
        nodes.coords[2 * i + 1] = static_cast<float>(grid.longitudes[i]);
    }
    return nodes;
}

/// CSR from one source list per destination (each list is sorted by source index here, so the
/// stored order is canonical: destination-major, then source ascending).
EdgeSet csr_from_lists(std::vector<std::vector<std::int32_t>>& sources_of, std::string source,
                       std::string target) {
    EdgeSet edges;
    edges.source = std::move(source);
    edges.target = std::move(target);
    edges.dst_offsets.assign(sources_of.size() + 1, 0);
    for (std::size_t t = 0; t < sources_of.size(); ++t)
        edges.dst_offsets[t + 1] = edges.dst_offsets[t] + static_cast<std::int64_t>(sources_of[t].size());
    edges.src.resize(static_cast<std::size_t>(edges.dst_offsets.back()));
#pragma omp parallel for schedule(static)
    for (std::size_t t = 0; t < sources_of.size(); ++t) {
        auto& list = sources_of[t];
        std::sort(list.begin(), list.end());
        std::copy(list.begin(), list.end(), edges.src.begin() + edges.dst_offsets[t]);
    }
    // Boreas builds edges in the order anemoi's target-major sparse adjacency lists them.
    edges.perm.resize(edges.src.size());
    std::iota(edges.perm.begin(), edges.perm.end(), std::int64_t{0});
    return edges;
}

/// Largest distance from a node to its nearest other node (chord; anemoi's
/// get_grid_reference_distance).
double max_nearest_neighbour_chord(const SphereIndex& index) {
    double result = 0;
    const auto n = static_cast<std::int64_t>(index.size());
#pragma omp parallel
    {
        std::vector<Neighbour> found;
        double local = 0;
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < n; ++i) {
            index.nearest(index.points()[i], 2, found);
            for (const auto& neighbour : found)
                if (neighbour.chord_squared > 0) {
                    local = std::max(local, std::sqrt(neighbour.chord_squared));
                    break;
                }
        }
#pragma omp critical
        result = std::max(result, local);
    }
    return result;
}

EdgeSet cutoff_edges(const std::vector<Vec3>& source_points, const std::vector<Vec3>& target_points,
                     const SphereIndex& target_index, const GraphOptions& options) {
    const double reference = max_nearest_neighbour_chord(target_index);
    BOREAS_CHECK(reference > 0, "hidden grid '{}': all nodes coincide", options.hidden_grid);
    // Current anemoi-graphs compares chords; the AIFS-1.0 era compared haversine angles.
    const double radius = options.convention == Convention::current
                              ? options.cutoff_factor * reference
                              : grids::chord_from_arc(options.cutoff_factor *
                                                      grids::arc_from_chord(reference));
    log::debug("cutoff: reference distance {:.6g} rad, radius {:.6g} rad",
               grids::arc_from_chord(reference), grids::arc_from_chord(radius));
    SphereIndex source_index(source_points);
    const auto targets = static_cast<std::int64_t>(target_points.size());
    std::vector<std::vector<std::int32_t>> sources_of(target_points.size());
    const bool capped = options.convention == Convention::current && options.max_neighbours > 0;
#pragma omp parallel
    {
        std::vector<Neighbour> found;
#pragma omp for schedule(dynamic, 64)
        for (std::int64_t t = 0; t < targets; ++t) {
            source_index.within(target_points[t], radius, found);
            // anemoi-graphs >= 0.5 keeps at most max_num_neighbours per target, the nearest.
            if (capped && found.size() > static_cast<std::size_t>(options.max_neighbours))
                found.resize(options.max_neighbours);
            auto& list = sources_of[t];
            list.reserve(found.size());
            for (const auto& neighbour : found) list.push_back(static_cast<std::int32_t>(neighbour.index));
        }
    }
    auto edges = csr_from_lists(sources_of, "data", "hidden");
    edges.builder = {{"type", "cutoff"},
                     {"cutoff_factor", options.cutoff_factor},
                     {"reference_distance", grids::arc_from_chord(reference)},
                     {"radius", grids::arc_from_chord(radius)}};
    if (capped) edges.builder["max_num_neighbours"] = options.max_neighbours;
    return edges;
}

EdgeSet knn_edges(const SphereIndex& source_index, const std::vector<Vec3>& target_points, int k,
                  std::string source, std::string target) {
    const auto targets = static_cast<std::int64_t>(target_points.size());
    std::vector<std::vector<std::int32_t>> sources_of(target_points.size());
#pragma omp parallel
    {
        std::vector<Neighbour> found;
#pragma omp for schedule(dynamic, 1024)
        for (std::int64_t t = 0; t < targets; ++t) {
            source_index.nearest(target_points[t], static_cast<std::size_t>(k), found);
            auto& list = sources_of[t];
            for (const auto& neighbour : found) list.push_back(static_cast<std::int32_t>(neighbour.index));
        }
    }
    auto edges = csr_from_lists(sources_of, std::move(source), std::move(target));
    edges.builder = {{"type", "knn"}, {"k", k}};
    return edges;
}

EdgeSet multiscale_edges(const grids::Grid& hidden, int hops, int min_level) {
    BOREAS_CHECK(hidden.kind == grids::GridKind::icosahedral,
                 "multi-scale hidden edges need an icosahedral hidden grid (TRI<level>), found '{}'",
                 hidden.name);
    BOREAS_CHECK(hops == 1, "multi-scale edges: only x_hops = 1 is supported, found {}", hops);
    BOREAS_CHECK(min_level >= 0 && min_level <= hidden.resolution,
                 "multi-scale edges: the coarsest level {} must be between 0 and the mesh level {}",
                 min_level, hidden.resolution);
    const auto mesh = grids::icosahedral_mesh(hidden.resolution);
    std::vector<std::vector<std::int32_t>> sources_of(mesh.vertices.size());
    for (int level = min_level; level <= hidden.resolution; ++level) {
        for (const auto& [a, b] : mesh.level_edges[level]) {
            sources_of[b].push_back(a);
            sources_of[a].push_back(b);
        }
    }
    for (auto& list : sources_of) {  // an edge of several levels is one edge
        std::sort(list.begin(), list.end());
        list.erase(std::unique(list.begin(), list.end()), list.end());
    }
    auto edges = csr_from_lists(sources_of, "hidden", "hidden");
    nlohmann::ordered_json levels = nlohmann::ordered_json::array();
    for (int level = min_level; level <= hidden.resolution; ++level) levels.push_back(level);
    edges.builder = {{"type", "multiscale"}, {"x_hops", hops}, {"scale_resolutions", levels}};
    return edges;
}

void add_edge_attributes(EdgeSet& edges, const NodeSet& source, const NodeSet& target,
                         const GraphOptions& options) {
    edges.edge_length = edge_lengths(edges, source, target);
    edges.edge_dirs = edge_directions(edges, source, target, options.convention);
    normalise(edges.edge_length, options.edge_norm, options.convention);
    normalise(edges.edge_dirs, options.edge_norm, options.convention);
}

void add_area_weights(NodeSet& nodes, const GraphOptions& options) {
    // anemoi-graphs takes the float32 coordinates to float64 before the Cartesian conversion and
    // scipy's SphericalVoronoi; the float64 areas are cast to float32, then normalised.
    std::vector<Vec3> points(static_cast<std::size_t>(nodes.count()));
    for (std::size_t i = 0; i < points.size(); ++i)
        points[i] = grids::to_xyz(nodes.coords[2 * i], nodes.coords[2 * i + 1]);
    const auto areas = grids::voronoi_areas(points);
    nodes.area_weight.assign(areas.begin(), areas.end());
    normalise(nodes.area_weight, options.area_norm, options.convention);
}

void check_options(const GraphOptions& options, const grids::Grid& data, const grids::Grid& hidden) {
    BOREAS_CHECK(std::isfinite(options.cutoff_factor) && options.cutoff_factor > 0,
                 "cutoff factor must be > 0, found {}", options.cutoff_factor);
    BOREAS_CHECK(options.knn >= 1, "k (hidden neighbours per data node) must be >= 1, found {}",
                 options.knn);
    BOREAS_CHECK(static_cast<std::size_t>(options.knn) <= hidden.size(),
                 "k = {} is larger than the hidden grid {} ({} nodes)", options.knn, hidden.name,
                 hidden.size());
    BOREAS_CHECK(hidden.size() >= 2, "hidden grid {} has {} node(s); at least 2 are needed",
                 hidden.name, hidden.size());
    BOREAS_CHECK(data.size() < static_cast<std::size_t>(INT32_MAX) &&
                     hidden.size() < static_cast<std::size_t>(INT32_MAX),
                 "grids over 2^31 nodes are not supported");
    if (options.hidden_edges == HiddenEdges::knn) {
        BOREAS_CHECK(options.hidden_knn >= 1 &&
                         static_cast<std::size_t>(options.hidden_knn) <= hidden.size(),
                     "hidden k = {} must be between 1 and the hidden grid size {}",
                     options.hidden_knn, hidden.size());
    }
}

}  // namespace

Convention parse_convention(const std::string& text) {
    return parse_enum<Convention>(text, kConventions, "graph convention");
}
Norm parse_norm(const std::string& text) { return parse_enum<Norm>(text, kNorms, "normalisation"); }
HiddenEdges parse_hidden_edges(const std::string& text) {
    return parse_enum<HiddenEdges>(text, kHiddenEdges, "hidden edge builder");
}
const char* to_string(Convention convention) { return enum_name(convention, kConventions); }
const char* to_string(Norm norm) { return enum_name(norm, kNorms); }
const char* to_string(HiddenEdges edges) { return enum_name(edges, kHiddenEdges); }

Graph build_graph(const GraphOptions& options) {
    Stopwatch clock;
    auto data = grids::make_grid(options.data_grid);
    auto hidden = grids::make_grid(options.hidden_grid);
    log::debug("grids {} ({} nodes) and {} ({} nodes) in {:.2f} s", data.name, data.size(),
               hidden.name, hidden.size(), clock.seconds());
    return build_graph(options, data, hidden);
}

Graph build_graph(const GraphOptions& options, const grids::Grid& data_grid,
                  const grids::Grid& hidden_grid) {
    check_options(options, data_grid, hidden_grid);
    Stopwatch clock;
    Graph graph;
    auto& data = graph.nodes["data"] = make_node_set(data_grid);
    auto& hidden = graph.nodes["hidden"] = make_node_set(hidden_grid);
    const auto data_points = node_vectors(data);
    const auto hidden_points = node_vectors(hidden);
    SphereIndex hidden_index(hidden_points);

    auto& encoder = graph.edges["data_to_hidden"] =
        cutoff_edges(data_points, hidden_points, hidden_index, options);
    auto& decoder = graph.edges["hidden_to_data"] =
        knn_edges(hidden_index, data_points, options.knn, "hidden", "data");
    if (options.hidden_edges == HiddenEdges::multiscale) {
        graph.edges["hidden_to_hidden"] =
            multiscale_edges(hidden_grid, options.multiscale_hops, options.multiscale_min_level);
    } else if (options.hidden_edges == HiddenEdges::knn) {
        graph.edges["hidden_to_hidden"] =
            knn_edges(hidden_index, hidden_points, options.hidden_knn, "hidden", "hidden");
    }
    log::debug("edges in {:.2f} s", clock.seconds());

    add_edge_attributes(encoder, data, hidden, options);
    add_edge_attributes(decoder, hidden, data, options);
    if (auto it = graph.edges.find("hidden_to_hidden"); it != graph.edges.end())
        add_edge_attributes(it->second, hidden, hidden, options);
    log::debug("edge attributes in {:.2f} s", clock.seconds());

    add_area_weights(data, options);
    add_area_weights(hidden, options);
    log::debug("area weights in {:.2f} s", clock.seconds());

    graph.attributes = {
        {"edge_length", {{"norm", to_string(options.edge_norm)}}},
        {"edge_dirs", {{"norm", to_string(options.edge_norm)},
                       {"convention", to_string(options.convention)}}},
        {"area_weight", {{"norm", to_string(options.area_norm)}, {"method", "spherical-voronoi"}}}};
    graph.provenance = {{"created_by", std::string("boreas ") + detail::kVersion},
                        {"git_commit", detail::kGitCommit},
                        {"convention", to_string(options.convention)}};
    return graph;
}

}  // namespace boreas::graphs
