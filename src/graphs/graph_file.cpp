#include <algorithm>
#include <cmath>
#include <numeric>

#include "boreas/core/error.hpp"
#include "boreas/graphs/graph.hpp"
#include "boreas/io/safetensors.hpp"

namespace boreas::graphs {
namespace {

constexpr const char* kMetadataKey = "boreas";
constexpr const char* kFormatName = "boreas-graph";

std::string node_tensor(const std::string& set, const char* what) {
    return "nodes/" + set + "/" + what;
}
std::string edge_tensor(const std::string& set, const char* what) {
    return "edges/" + set + "/" + what;
}

template <typename T>
std::vector<T> copy_of(std::span<const T> view) {
    return std::vector<T>(view.begin(), view.end());
}

template <typename T>
void check_finite(const std::vector<T>& values, const std::string& file, const std::string& name) {
    for (std::size_t i = 0; i < values.size(); ++i)
        BOREAS_CHECK(std::isfinite(values[i]), "'{}': tensor '{}' has a non-finite value at {}",
                     file, name, i);
}

}  // namespace

const NodeSet& Graph::node_set(const std::string& name) const {
    auto it = nodes.find(name);
    BOREAS_CHECK(it != nodes.end(), "graph has no node set '{}'", name);
    return it->second;
}

const EdgeSet& Graph::edge_set(const std::string& name) const {
    auto it = edges.find(name);
    BOREAS_CHECK(it != edges.end(), "graph has no edge set '{}'", name);
    return it->second;
}

void validate(const Graph& graph, const std::string& where) {
    for (const char* required : {"data", "hidden"})
        BOREAS_CHECK(graph.nodes.count(required) == 1, "{}: no '{}' node set", where, required);
    for (const auto& [name, nodes] : graph.nodes) {
        BOREAS_CHECK(nodes.coords.size() % 2 == 0 && nodes.count() > 0,
                     "{}: node set '{}' has no (lat, lon) pairs", where, name);
        BOREAS_CHECK(nodes.area_weight.empty() ||
                         static_cast<std::int64_t>(nodes.area_weight.size()) == nodes.count(),
                     "{}: node set '{}' has {} nodes but {} area weights", where, name,
                     nodes.count(), nodes.area_weight.size());
    }
    for (const char* required : {"data_to_hidden", "hidden_to_data"})
        BOREAS_CHECK(graph.edges.count(required) == 1, "{}: no '{}' edge set", where, required);
    for (const auto& [name, edges] : graph.edges) {
        BOREAS_CHECK(graph.nodes.count(edges.source) && graph.nodes.count(edges.target),
                     "{}: edge set '{}' joins unknown node sets '{}' -> '{}'", where, name,
                     edges.source, edges.target);
        const auto sources = graph.nodes.at(edges.source).count();
        const auto targets = graph.nodes.at(edges.target).count();
        const auto count = edges.count();
        BOREAS_CHECK(static_cast<std::int64_t>(edges.dst_offsets.size()) == targets + 1,
                     "{}: edge set '{}' has {} destination offsets, expected {} ({} nodes + 1)",
                     where, name, edges.dst_offsets.size(), targets + 1, targets);
        BOREAS_CHECK(edges.dst_offsets.front() == 0 && edges.dst_offsets.back() == count,
                     "{}: edge set '{}' offsets run from {} to {}, expected 0 to {}", where, name,
                     edges.dst_offsets.front(), edges.dst_offsets.back(), count);
        BOREAS_CHECK(std::is_sorted(edges.dst_offsets.begin(), edges.dst_offsets.end()),
                     "{}: edge set '{}' offsets are not non-decreasing", where, name);
        auto bad = std::find_if(edges.src.begin(), edges.src.end(),
                                [&](std::int32_t s) { return s < 0 || s >= sources; });
        BOREAS_CHECK(bad == edges.src.end(),
                     "{}: edge set '{}' edge {} has source {} outside [0, {})", where, name,
                     bad - edges.src.begin(), bad == edges.src.end() ? 0 : *bad, sources);
        BOREAS_CHECK(static_cast<std::int64_t>(edges.perm.size()) == count,
                     "{}: edge set '{}' perm has {} entries, expected {}", where, name,
                     edges.perm.size(), count);
        std::vector<char> seen(static_cast<std::size_t>(count), 0);
        for (auto p : edges.perm) {
            BOREAS_CHECK(p >= 0 && p < count && !seen[p],
                         "{}: edge set '{}' perm is not a permutation of 0..{}", where, name,
                         count - 1);
            seen[p] = 1;
        }
        BOREAS_CHECK(static_cast<std::int64_t>(edges.edge_length.size()) == count &&
                         static_cast<std::int64_t>(edges.edge_dirs.size()) == 2 * count,
                     "{}: edge set '{}' has {} edges but {} lengths and {} direction values",
                     where, name, count, edges.edge_length.size(), edges.edge_dirs.size());
    }
}

void save_graph(const Graph& graph, const std::filesystem::path& path) {
    validate(graph, "graph to save");
    nlohmann::ordered_json meta;
    meta["format"] = kFormatName;
    meta["format_version"] = kGraphFormatVersion;
    meta["provenance"] = graph.provenance;
    io::SafetensorsWriter writer;
    for (const auto& [name, nodes] : graph.nodes) {
        meta["nodes"][name] = {{"count", nodes.count()}, {"grid", nodes.grid}};
        writer.add<float>(node_tensor(name, "coords"), {nodes.count(), 2}, nodes.coords);
        if (!nodes.area_weight.empty())
            writer.add<float>(node_tensor(name, "area_weight"), {nodes.count()}, nodes.area_weight);
    }
    for (const auto& [name, edges] : graph.edges) {
        meta["edges"][name] = {{"source", edges.source},
                               {"target", edges.target},
                               {"count", edges.count()},
                               {"builder", edges.builder}};
        const auto count = edges.count();
        writer.add<std::int32_t>(edge_tensor(name, "src"), {count}, edges.src);
        writer.add<std::int64_t>(edge_tensor(name, "dst_offsets"),
                                 {static_cast<std::int64_t>(edges.dst_offsets.size())},
                                 edges.dst_offsets);
        // The permutation is stored only when it is not the identity (Boreas' own graphs).
        bool identity = true;
        for (std::int64_t p = 0; identity && p < count; ++p) identity = edges.perm[p] == p;
        if (!identity) writer.add<std::int64_t>(edge_tensor(name, "perm"), {count}, edges.perm);
        writer.add<float>(edge_tensor(name, "edge_length"), {count, 1}, edges.edge_length);
        writer.add<float>(edge_tensor(name, "edge_dirs"), {count, 2}, edges.edge_dirs);
    }
    meta["attributes"] = graph.attributes;
    writer.set_metadata(kMetadataKey, meta.dump());
    writer.write(path);
}

Graph load_graph(const std::filesystem::path& path) {
    const std::string file = path.string();
    io::SafetensorsReader reader(path);
    auto it = reader.metadata().find(kMetadataKey);
    BOREAS_CHECK(it != reader.metadata().end(),
                 "'{}' is a safetensors file but not a Boreas graph (no '{}' metadata)", file,
                 kMetadataKey);
    nlohmann::ordered_json meta;
    try {
        meta = nlohmann::ordered_json::parse(it->second);
    } catch (const nlohmann::json::exception& error) {
        BOREAS_FAIL("'{}': graph metadata is not valid JSON: {}", file, error.what());
    }
    BOREAS_CHECK(meta.is_object() && meta.value("format", "") == kFormatName,
                 "'{}': metadata format is not '{}'", file, kFormatName);
    BOREAS_CHECK(meta.contains("format_version") && meta["format_version"].is_number_integer(),
                 "'{}': graph metadata has no integer format_version", file);
    const int version = meta["format_version"].get<int>();
    BOREAS_CHECK(version >= 1 && version <= kGraphFormatVersion,
                 "'{}' is graph format version {}, this Boreas reads versions 1 to {}; upgrade "
                 "Boreas to read it", file, version, kGraphFormatVersion);
    BOREAS_CHECK(meta.contains("nodes") && meta["nodes"].is_object() && meta.contains("edges") &&
                     meta["edges"].is_object(),
                 "'{}': graph metadata lacks 'nodes' or 'edges'", file);

    Graph graph;
    try {
        for (const auto& [name, info] : meta["nodes"].items()) {
            const auto count = info.at("count").get<std::int64_t>();
            NodeSet nodes;
            nodes.grid = info.value("grid", "");
            nodes.coords = copy_of(reader.view<float>(node_tensor(name, "coords"), {count, 2}));
            check_finite(nodes.coords, file, node_tensor(name, "coords"));
            if (reader.contains(node_tensor(name, "area_weight")))
                nodes.area_weight =
                    copy_of(reader.view<float>(node_tensor(name, "area_weight"), {count}));
            graph.nodes.emplace(name, std::move(nodes));
        }
        for (const auto& [name, info] : meta["edges"].items()) {
            const auto count = info.at("count").get<std::int64_t>();
            EdgeSet edges;
            edges.source = info.at("source").get<std::string>();
            edges.target = info.at("target").get<std::string>();
            edges.builder = info.value("builder", nlohmann::ordered_json::object());
            edges.src = copy_of(reader.view<std::int32_t>(edge_tensor(name, "src"), {count}));
            edges.dst_offsets =
                copy_of(reader.view<std::int64_t>(edge_tensor(name, "dst_offsets"), {-1}));
            if (reader.contains(edge_tensor(name, "perm"))) {
                edges.perm = copy_of(reader.view<std::int64_t>(edge_tensor(name, "perm"), {count}));
            } else {
                edges.perm.resize(static_cast<std::size_t>(count));
                std::iota(edges.perm.begin(), edges.perm.end(), std::int64_t{0});
            }
            edges.edge_length =
                copy_of(reader.view<float>(edge_tensor(name, "edge_length"), {count, 1}));
            edges.edge_dirs =
                copy_of(reader.view<float>(edge_tensor(name, "edge_dirs"), {count, 2}));
            check_finite(edges.edge_length, file, edge_tensor(name, "edge_length"));
            check_finite(edges.edge_dirs, file, edge_tensor(name, "edge_dirs"));
            graph.edges.emplace(name, std::move(edges));
        }
    } catch (const nlohmann::json::exception& error) {
        BOREAS_FAIL("'{}': graph metadata is malformed: {}", file, error.what());
    }
    graph.attributes = meta.value("attributes", nlohmann::ordered_json::object());
    graph.provenance = meta.value("provenance", nlohmann::ordered_json::object());
    validate(graph, "'" + file + "'");
    return graph;
}

}  // namespace boreas::graphs
