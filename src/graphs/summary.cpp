#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "boreas/graphs/graph.hpp"

namespace boreas::graphs {

/// Unit vectors of the float32 coordinates, computed in float32 as anemoi-graphs'
/// latlon_rad_to_cartesian does; distances between them are then taken in double as sklearn
/// does. Near-ties (common on symmetric grids) then fall the same way in both.
std::vector<grids::Vec3> node_vectors(const NodeSet& nodes) {
    std::vector<grids::Vec3> points(static_cast<std::size_t>(nodes.count()));
    for (std::size_t i = 0; i < points.size(); ++i) {
        const float lat = nodes.coords[2 * i], lon = nodes.coords[2 * i + 1];
        points[i] = {std::cos(lat) * std::cos(lon), std::cos(lat) * std::sin(lon), std::sin(lat)};
    }
    return points;
}


nlohmann::ordered_json summarise(const Graph& graph) {
    nlohmann::ordered_json summary;
    for (const char* name : {"data", "hidden"})
        if (graph.nodes.count(name)) summary["nodes"][name] = graph.nodes.at(name).count();
    for (const auto& [name, edges] : graph.edges) summary["edges"][name] = edges.count();
    for (const auto& [name, edges] : graph.edges) {
        std::int64_t min = INT64_MAX, max = 0, zero = 0;
        const auto targets = static_cast<std::int64_t>(edges.dst_offsets.size()) - 1;
        for (std::int64_t t = 0; t < targets; ++t) {
            const auto degree = edges.dst_offsets[t + 1] - edges.dst_offsets[t];
            min = std::min(min, degree);
            max = std::max(max, degree);
            zero += degree == 0;
        }
        summary["in_degree"][name] = {
            {"min", targets > 0 ? min : 0},
            {"mean", targets > 0 ? static_cast<double>(edges.count()) / static_cast<double>(targets) : 0.0},
            {"max", max},
            {"zero", zero}};
    }
    for (const auto& [name, nodes] : graph.nodes) summary["grids"][name] = nodes.grid;
    for (const auto& [name, edges] : graph.edges) summary["builders"][name] = edges.builder;
    summary["attributes"] = graph.attributes;
    summary["provenance"] = graph.provenance;
    summary["format_version"] = kGraphFormatVersion;
    return summary;
}

namespace {

struct Fnv1a {
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    void bytes(const void* data, std::size_t size) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) hash = (hash ^ p[i]) * 0x100000001b3ULL;
    }
    template <typename T>
    void values(const std::vector<T>& v) {
        const std::uint64_t count = v.size();
        bytes(&count, sizeof count);
        bytes(v.data(), v.size() * sizeof(T));
    }
    void text(const std::string& s) { values(std::vector<char>(s.begin(), s.end())); }
};

}  // namespace

std::string fingerprint(const Graph& graph) {
    Fnv1a f;
    for (const auto& [name, nodes] : graph.nodes) {
        f.text(name);
        f.values(nodes.coords);
    }
    for (const auto& [name, edges] : graph.edges) {
        f.text(name);
        f.values(edges.dst_offsets);
        f.values(edges.src);
        f.values(edges.perm);
        f.values(edges.edge_length);
        f.values(edges.edge_dirs);
    }
    return fmt::format("{:016x}", f.hash);
}

}  // namespace boreas::graphs
