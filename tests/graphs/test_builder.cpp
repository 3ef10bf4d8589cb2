#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "boreas/core/error.hpp"
#include "boreas/graphs/builder.hpp"
#include "boreas/graphs/edge_attributes.hpp"
#include "boreas/grids/geometry.hpp"
#include "support/test_support.hpp"

namespace {

using namespace boreas::graphs;
using boreas::grids::Vec3;
using boreas::testing_support::error_of;

/// Position of node i, as every search sees it (cached per node set).
Vec3 xyz(const NodeSet& nodes, std::int64_t i) {
    static std::map<const NodeSet*, std::vector<Vec3>> cache;
    auto& points = cache[&nodes];
    if (points.size() != static_cast<std::size_t>(nodes.count())) points = node_vectors(nodes);
    return points[i];
}
double chord(Vec3 a, Vec3 b) { return boreas::grids::norm(a - b); }
/// Squared chord summed as the k-d tree sums it, so exact ties stay ties.
double chord_squared(Vec3 a, Vec3 b) {
    const Vec3 d = a - b;
    return d.x * d.x + d.y * d.y + d.z * d.z;
}

std::set<std::pair<int, int>> edge_pairs(const EdgeSet& edges) {
    std::set<std::pair<int, int>> pairs;
    for (std::size_t t = 0; t + 1 < edges.dst_offsets.size(); ++t)
        for (auto e = edges.dst_offsets[t]; e < edges.dst_offsets[t + 1]; ++e)
            pairs.insert({edges.src[e], static_cast<int>(t)});
    return pairs;
}

GraphOptions small_options() {
    GraphOptions options;
    options.data_grid = "O16";
    options.hidden_grid = "O4";
    return options;
}

TEST(GraphBuilder, CutoffEdgesEqualBruteForce) {
    auto options = small_options();
    auto graph = build_graph(options);
    const auto& data = graph.node_set("data");
    const auto& hidden = graph.node_set("hidden");
    // Radius from an O(N^2) scan of the hidden grid.
    double reference = 0;
    for (std::int64_t i = 0; i < hidden.count(); ++i) {
        double nearest = 1e9;
        for (std::int64_t j = 0; j < hidden.count(); ++j)
            if (i != j) nearest = std::min(nearest, chord(xyz(hidden, i), xyz(hidden, j)));
        reference = std::max(reference, nearest);
    }
    const double radius = options.cutoff_factor * reference;
    std::set<std::pair<int, int>> expected;
    for (std::int64_t t = 0; t < hidden.count(); ++t)
        for (std::int64_t s = 0; s < data.count(); ++s)
            if (chord(xyz(data, s), xyz(hidden, t)) <= radius) expected.insert({int(s), int(t)});
    EXPECT_EQ(edge_pairs(graph.edge_set("data_to_hidden")), expected);
    // O4's largest nearest-neighbour distance (spec/model-audit.md 1.5: 0.193007 rad).
    EXPECT_NEAR(graph.edge_set("data_to_hidden").builder["reference_distance"].get<double>(),
                0.193007, 2e-6);
}

TEST(GraphBuilder, KnnEdgesEqualBruteForce) {
    auto graph = build_graph(small_options());
    const auto& data = graph.node_set("data");
    const auto& hidden = graph.node_set("hidden");
    const auto& decoder = graph.edge_set("hidden_to_data");
    ASSERT_EQ(decoder.count(), 3 * data.count());
    for (std::int64_t t = 0; t < data.count(); ++t) {
        std::vector<std::pair<double, int>> all;
        for (std::int64_t s = 0; s < hidden.count(); ++s)
            all.push_back({chord_squared(xyz(data, t), xyz(hidden, s)), int(s)});
        std::sort(all.begin(), all.end());
        std::set<int> expected = {all[0].second, all[1].second, all[2].second};
        std::set<int> found(decoder.src.begin() + decoder.dst_offsets[t],
                            decoder.src.begin() + decoder.dst_offsets[t + 1]);
        EXPECT_EQ(found, expected) << "data node " << t;
    }
}

TEST(GraphBuilder, EveryHiddenNodeHasEncoderEdges) {
    auto graph = build_graph(small_options());
    const auto summary = summarise(graph);
    EXPECT_EQ(summary["in_degree"]["data_to_hidden"]["zero"], 0);
    EXPECT_GE(summary["in_degree"]["data_to_hidden"]["min"], 1);
}

TEST(GraphBuilder, EdgeAttributesFollowTheirDefinition) {
    auto options = small_options();
    options.edge_norm = Norm::none;
    auto graph = build_graph(options);
    const auto& edges = graph.edge_set("data_to_hidden");
    const auto& data = graph.node_set("data");
    const auto& hidden = graph.node_set("hidden");
    for (std::int64_t t = 0; t < hidden.count(); ++t) {
        for (auto e = edges.dst_offsets[t]; e < edges.dst_offsets[t + 1]; ++e) {
            const auto s = edges.src[e];
            const double angle =
                boreas::grids::haversine(data.coords[2 * s], data.coords[2 * s + 1],
                                         hidden.coords[2 * t], hidden.coords[2 * t + 1]);
            EXPECT_NEAR(edges.edge_length[e], angle, 1e-6 * angle);  // float32 vs double
            EXPECT_NEAR(std::hypot(edges.edge_dirs[2 * e], edges.edge_dirs[2 * e + 1]), 1.0, 1e-6);
        }
    }
    // A source due north of its destination points along +x after the rotation (current
    // convention) and along -y in the AIFS-1.0 convention.
    NodeSet north, south;
    north.coords = {0.1f, 0.0f};
    south.coords = {0.0f, 0.0f};
    EdgeSet one;
    one.src = {0};
    one.dst_offsets = {0, 1};
    auto current = edge_directions(one, north, south, Convention::current);
    auto old = edge_directions(one, north, south, Convention::aifs_1_0);
    EXPECT_NEAR(current[0], -1.0, 1e-6);  // rotated to the pole, "north" lies along -x
    EXPECT_NEAR(current[1], 0.0, 1e-6);
    EXPECT_NEAR(old[0], current[1], 1e-6);   // (u_y, -u_x)
    EXPECT_NEAR(old[1], -current[0], 1e-6);
}

TEST(GraphBuilder, UnitStdConventions) {
    std::vector<float> values = {1, 2, 3, 4};
    auto population = values, unbiased = values;
    normalise(population, Norm::unit_std, Convention::aifs_1_0);
    normalise(unbiased, Norm::unit_std, Convention::current);
    EXPECT_NEAR(population[3], 4 / std::sqrt(1.25), 1e-6);
    EXPECT_NEAR(unbiased[3], 4 / std::sqrt(5.0 / 3.0), 1e-6);
}

TEST(GraphBuilder, MultiscaleEdgesCoverEveryLevel) {
    auto options = small_options();
    options.hidden_grid = "TRI2";
    options.hidden_edges = HiddenEdges::multiscale;
    auto graph = build_graph(options);
    // Levels 1 and 2 (anemoi-training's default) have 120 and 480 undirected edges, all distinct.
    EXPECT_EQ(graph.edge_set("hidden_to_hidden").count(), 2 * (120 + 480));
    options.multiscale_min_level = 0;
    graph = build_graph(options);
    const auto& processor = graph.edge_set("hidden_to_hidden");
    EXPECT_EQ(processor.count(), 2 * (30 + 120 + 480));
    auto pairs = edge_pairs(processor);
    for (const auto& [s, t] : pairs) EXPECT_TRUE(pairs.count({t, s})) << s << "->" << t;
    options.multiscale_min_level = 3;
    EXPECT_THROW(build_graph(options), boreas::Error);
}

TEST(GraphBuilder, HiddenKnnIncludesSelf) {
    auto options = small_options();
    options.hidden_edges = HiddenEdges::knn;
    options.hidden_knn = 4;
    auto graph = build_graph(options);
    const auto& processor = graph.edge_set("hidden_to_hidden");
    EXPECT_EQ(processor.count(), 4 * graph.node_set("hidden").count());
    EXPECT_TRUE(edge_pairs(processor).count({0, 0}));
}

TEST(GraphBuilder, BadOptionsAreRefused) {
    auto options = small_options();
    options.cutoff_factor = 0;
    EXPECT_NE(error_of([&] { build_graph(options); }).find("cutoff factor must be > 0"),
              std::string::npos);
    options.cutoff_factor = -1;
    EXPECT_NE(error_of([&] { build_graph(options); }).find("cutoff factor must be > 0"),
              std::string::npos);
    options = small_options();
    options.knn = 209;
    EXPECT_NE(error_of([&] { build_graph(options); }).find("larger than the hidden grid O4 (208"),
              std::string::npos);
    options = small_options();
    options.hidden_edges = HiddenEdges::multiscale;
    EXPECT_NE(error_of([&] { build_graph(options); }).find("need an icosahedral hidden grid"),
              std::string::npos);
    EXPECT_NE(error_of([] { parse_convention("aifs-2"); }).find("current, aifs-1.0"),
              std::string::npos);
}

}  // namespace
