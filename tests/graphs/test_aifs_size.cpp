// The AIFS-single 1.0 graph shape: N320 data grid, O96 hidden grid, cutoff 0.6, k = 3.
#include <gtest/gtest.h>

#include "boreas/graphs/builder.hpp"

namespace {

TEST(AifsGraph, N320ToO96) {
    boreas::graphs::GraphOptions options;
    options.data_grid = "N320";
    options.hidden_grid = "O96";
    const auto graph = boreas::graphs::build_graph(options);
    const auto summary = boreas::graphs::summarise(graph);
    EXPECT_EQ(summary["nodes"]["data"], 542080);
    EXPECT_EQ(summary["nodes"]["hidden"], 40320);
    EXPECT_EQ(summary["edges"]["hidden_to_data"], 1626240);
    EXPECT_EQ(summary["in_degree"]["data_to_hidden"]["zero"], 0);
    EXPECT_GE(summary["in_degree"]["data_to_hidden"]["min"], 1);
    // spec/model.md section 5: the O96 reference distance is 0.019505 rad.
    EXPECT_NEAR(graph.edge_set("data_to_hidden").builder["reference_distance"].get<double>(),
                0.0195050, 1e-6);
    double total = 0;
    for (float w : graph.node_set("data").area_weight) total += w;
    EXPECT_GT(total, 0.5 * 542080);  // unit-max weights of a near-uniform grid are mostly ~1
}

}  // namespace
