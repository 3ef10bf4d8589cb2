#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>

#include "boreas/core/error.hpp"
#include "boreas/graphs/builder.hpp"
#include "boreas/io/safetensors.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace boreas::graphs;
using boreas::testing_support::temp_path;

Graph small_graph() {
    GraphOptions options;
    options.data_grid = "O8";
    options.hidden_grid = "TRI1";
    options.hidden_edges = HiddenEdges::multiscale;
    return build_graph(options);
}

std::string load_error(const fs::path& path) {
    return boreas::testing_support::error_of([&] { load_graph(path); });
}

TEST(GraphFile, RoundTripKeepsEverything) {
    const auto graph = small_graph();
    const auto path = temp_path("roundtrip.safetensors");
    save_graph(graph, path);
    const auto loaded = load_graph(path);
    EXPECT_EQ(summarise(loaded), summarise(graph));
    for (const auto& [name, edges] : graph.edges) {
        const auto& other = loaded.edge_set(name);
        EXPECT_EQ(other.src, edges.src) << name;
        EXPECT_EQ(other.dst_offsets, edges.dst_offsets) << name;
        EXPECT_EQ(other.perm, edges.perm) << name;
        EXPECT_EQ(other.edge_length, edges.edge_length) << name;
        EXPECT_EQ(other.edge_dirs, edges.edge_dirs) << name;
    }
    for (const auto& [name, nodes] : graph.nodes) {
        EXPECT_EQ(loaded.node_set(name).coords, nodes.coords);
        EXPECT_EQ(loaded.node_set(name).area_weight, nodes.area_weight);
    }
}

TEST(GraphFile, ReadableAsPlainSafetensors) {
    const auto path = temp_path("plain.safetensors");
    save_graph(small_graph(), path);
    boreas::io::SafetensorsReader reader(path);
    EXPECT_TRUE(reader.contains("edges/data_to_hidden/src"));
    EXPECT_TRUE(reader.contains("nodes/hidden/coords"));
    EXPECT_NE(reader.metadata().at("boreas").find("\"format_version\":1"), std::string::npos);
}

TEST(GraphFile, TruncatedOrCorruptFilesAreRefused) {
    const auto path = temp_path("whole.safetensors");
    save_graph(small_graph(), path);
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const auto cut = temp_path("truncated.safetensors");
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    auto message = load_error(cut);
    EXPECT_NE(message.find(cut.string()), std::string::npos) << message;

    std::string corrupt = bytes;
    corrupt[10] = '\x01';
    const auto bad = temp_path("corrupt.safetensors");
    std::ofstream(bad, std::ios::binary).write(corrupt.data(), static_cast<std::streamsize>(corrupt.size()));
    EXPECT_NE(load_error(bad).find("corrupt safetensors header"), std::string::npos);
}

TEST(GraphFile, NewerFormatVersionIsRefused) {
    boreas::io::SafetensorsWriter writer;
    std::vector<float> coords = {0, 0};
    writer.add<float>("nodes/data/coords", {1, 2}, coords);
    writer.set_metadata("boreas", R"({"format": "boreas-graph", "format_version": 2, "nodes": {}, "edges": {}})");
    const auto path = temp_path("future.safetensors");
    writer.write(path);
    const auto message = load_error(path);
    EXPECT_NE(message.find("graph format version 2, this Boreas reads versions 1 to 1"),
              std::string::npos) << message;
}

TEST(GraphFile, ForeignSafetensorsAndBrokenStructureAreRefused) {
    boreas::io::SafetensorsWriter writer;
    std::vector<float> weights = {1, 2};
    writer.add<float>("encoder.weight", {2}, weights);
    const auto path = temp_path("weights.safetensors");
    writer.write(path);
    EXPECT_NE(load_error(path).find("not a Boreas graph"), std::string::npos);

    auto graph = small_graph();
    graph.edges.at("data_to_hidden").src[0] = 100000;
    EXPECT_THROW(save_graph(graph, temp_path("broken.safetensors")), boreas::Error);
    graph = small_graph();
    graph.edges.at("hidden_to_data").perm[0] = graph.edges.at("hidden_to_data").perm[1];
    EXPECT_THROW(save_graph(graph, temp_path("broken.safetensors")), boreas::Error);
}

TEST(GraphFile, FailedWriteLeavesNothing) {
    const auto folder = temp_path("readonly");
    fs::create_directories(folder);
    EXPECT_THROW(save_graph(small_graph(), folder / "missing" / "g.safetensors"), boreas::Error);
    EXPECT_TRUE(fs::is_empty(folder));
}

}  // namespace
