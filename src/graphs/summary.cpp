#include <algorithm>

#include "boreas/graphs/graph.hpp"

namespace boreas::graphs {

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

}  // namespace boreas::graphs
