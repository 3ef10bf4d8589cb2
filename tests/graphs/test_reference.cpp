// Boreas' graphs against graphs built by anemoi-graphs itself (tests/data/graphs, made by
// tools/reference/make_graph_fixtures.py; versions in tests/data/graphs/VERSIONS.json).
// Nodes are matched by position, so node order may differ; edges are compared as sets.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "boreas/graphs/builder.hpp"
#include "boreas/grids/spatial_index.hpp"

namespace {

using namespace boreas::graphs;
using boreas::grids::Vec3;

// Coordinates are float32 in both graphs; anemoi computes attributes in float32, Boreas in
// double from the same float32 coordinates, so a few float32 ulps of difference remain.
constexpr double kCoordTolerance = 1e-6;  // radians
constexpr double kRelTolerance = 1e-6;
constexpr double kAbsTolerance = 1e-6;

std::vector<Vec3> vectors(const NodeSet& nodes) {
    std::vector<Vec3> out(static_cast<std::size_t>(nodes.count()));
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = boreas::grids::to_xyz(nodes.coords[2 * i], nodes.coords[2 * i + 1]);
    return out;
}

/// For each reference node, the index of the Boreas node at the same position (-1 if none).
std::vector<std::int32_t> match_nodes(const NodeSet& reference, const NodeSet& ours) {
    boreas::grids::SphereIndex index(vectors(ours));
    std::vector<std::int32_t> match(static_cast<std::size_t>(reference.count()), -1);
    std::vector<boreas::grids::Neighbour> found;
    const auto points = vectors(reference);
    for (std::size_t i = 0; i < points.size(); ++i) {
        index.nearest(points[i], 1, found);
        if (!found.empty() && std::sqrt(found[0].chord_squared) < kCoordTolerance)
            match[i] = static_cast<std::int32_t>(found[0].index);
    }
    return match;
}

bool close(double ours, double theirs) {
    return std::abs(ours - theirs) <= kAbsTolerance + kRelTolerance * std::abs(theirs);
}

GraphOptions recipe_of(const Graph& reference) {
    GraphOptions options;
    options.data_grid = reference.node_set("data").grid;
    options.hidden_grid = reference.node_set("hidden").grid;
    const auto& encoder = reference.edge_set("data_to_hidden").builder;
    options.cutoff_factor = encoder.at("cutoff_factor").get<double>();
    options.knn = reference.edge_set("hidden_to_data").builder.at("k").get<int>();
    if (reference.edges.count("hidden_to_hidden")) options.hidden_edges = HiddenEdges::multiscale;
    options.edge_norm = parse_norm(reference.attributes.at("edge_length").at("norm").get<std::string>());
    options.area_norm = parse_norm(reference.attributes.at("area_weight").at("norm").get<std::string>());
    return options;
}

class AnemoiReference : public testing::TestWithParam<std::string> {};

TEST_P(AnemoiReference, SameGraph) {
    const auto path = std::filesystem::path(BOREAS_TEST_DATA) / "graphs" / (GetParam() + ".safetensors");
    const auto reference = load_graph(path);
    const auto ours = build_graph(recipe_of(reference));

    std::map<std::string, std::vector<std::int32_t>> node_map;
    for (const auto& [name, theirs] : reference.nodes) {
        const auto& mine = ours.node_set(name);
        ASSERT_EQ(mine.count(), theirs.count()) << name;
        auto& map = node_map[name] = match_nodes(theirs, mine);
        std::set<std::int32_t> distinct(map.begin(), map.end());
        EXPECT_EQ(distinct.count(-1), 0u) << name << ": a reference node has no Boreas twin";
        EXPECT_EQ(distinct.size(), map.size()) << name << ": node matching is not one to one";
        if (HasFailure()) return;
        int bad_weights = 0;
        for (std::size_t i = 0; i < map.size(); ++i)
            if (!close(mine.area_weight[map[i]], theirs.area_weight[i]) && bad_weights++ < 5)
                ADD_FAILURE() << name << " area_weight of node " << i << ": Boreas "
                              << mine.area_weight[map[i]] << ", anemoi " << theirs.area_weight[i];
    }

    for (const auto& [name, theirs] : reference.edges) {
        ASSERT_TRUE(ours.edges.count(name)) << name;
        const auto& mine = ours.edge_set(name);
        const auto& source_map = node_map.at(theirs.source);
        const auto& target_map = node_map.at(theirs.target);
        // (source, target) in Boreas numbering -> CSR position, for both graphs.
        std::map<std::pair<std::int32_t, std::int32_t>, std::int64_t> our_edges, their_edges;
        for (std::size_t t = 0; t + 1 < mine.dst_offsets.size(); ++t)
            for (auto e = mine.dst_offsets[t]; e < mine.dst_offsets[t + 1]; ++e)
                our_edges[{mine.src[e], static_cast<std::int32_t>(t)}] = e;
        for (std::size_t t = 0; t + 1 < theirs.dst_offsets.size(); ++t)
            for (auto e = theirs.dst_offsets[t]; e < theirs.dst_offsets[t + 1]; ++e)
                their_edges[{source_map[theirs.src[e]], target_map[t]}] = e;
        EXPECT_EQ(our_edges.size(), their_edges.size()) << name;
        int missing = 0, bad_attributes = 0;
        for (const auto& [pair, theirs_e] : their_edges) {
            auto it = our_edges.find(pair);
            if (it == our_edges.end()) {
                if (missing++ < 5)
                    ADD_FAILURE() << name << ": anemoi edge " << pair.first << "->" << pair.second
                                  << " is missing in Boreas";
                continue;
            }
            const auto e = it->second;
            const bool same = close(mine.edge_length[e], theirs.edge_length[theirs_e]) &&
                              close(mine.edge_dirs[2 * e], theirs.edge_dirs[2 * theirs_e]) &&
                              close(mine.edge_dirs[2 * e + 1], theirs.edge_dirs[2 * theirs_e + 1]);
            if (!same && bad_attributes++ < 5)
                ADD_FAILURE() << name << " edge " << pair.first << "->" << pair.second
                              << ": Boreas (" << mine.edge_length[e] << "; "
                              << mine.edge_dirs[2 * e] << ", " << mine.edge_dirs[2 * e + 1]
                              << ") anemoi (" << theirs.edge_length[theirs_e] << "; "
                              << theirs.edge_dirs[2 * theirs_e] << ", "
                              << theirs.edge_dirs[2 * theirs_e + 1] << ")";
        }
        EXPECT_EQ(missing, 0) << name;
        EXPECT_EQ(bad_attributes, 0) << name;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, AnemoiReference,
                         testing::Values("o16_o4", "o32_o8", "o16_tri2", "o32_tri3"));

}  // namespace
