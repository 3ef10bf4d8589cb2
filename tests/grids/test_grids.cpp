#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <fstream>
#include <numeric>

#include "boreas/core/error.hpp"
#include "boreas/grids/grid.hpp"
#include "boreas/grids/icosahedral.hpp"
#include "support/test_support.hpp"

namespace {

using namespace boreas::grids;

/// Roots of the Legendre polynomial P_2N by Newton's method: an independent check of ecCodes.
std::vector<double> legendre_latitudes(int n) {
    const int degree = 2 * n;
    std::vector<double> lats;
    for (int i = 1; i <= degree; ++i) {
        double x = std::cos(std::numbers::pi * (i - 0.25) / (degree + 0.5));
        for (int iteration = 0; iteration < 100; ++iteration) {
            double p0 = 1, p1 = x;
            for (int k = 2; k <= degree; ++k) {
                const double pk = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
                p0 = p1;
                p1 = pk;
            }
            const double derivative = degree * (x * p1 - p0) / (x * x - 1);
            const double step = p1 / derivative;
            x -= step;
            if (std::abs(step) < 1e-16) break;
        }
        lats.push_back(std::asin(x));
    }
    return lats;
}

TEST(Grids, GaussianLatitudesMatchLegendreRoots) {
    for (int n : {4, 16, 96, 320}) {
        auto lats = gaussian_latitudes(n);
        auto expected = legendre_latitudes(n);
        ASSERT_EQ(lats.size(), expected.size());
        for (std::size_t i = 0; i < lats.size(); ++i)
            EXPECT_NEAR(lats[i], expected[i], 1e-12) << "N" << n << " row " << i;
    }
}

TEST(Grids, OctahedralCountsAndRows) {
    EXPECT_EQ(make_grid("O96").size(), 40320u);
    EXPECT_EQ(make_grid("O48").size(), 10944u);
    EXPECT_EQ(make_grid("o16").size(), 1600u);
    auto grid = octahedral_grid(4);
    ASSERT_EQ(grid.row_lengths.size(), 8u);
    EXPECT_EQ(grid.row_lengths.front(), 20);
    EXPECT_EQ(grid.row_lengths[3], 32);
    EXPECT_EQ(grid.row_lengths[4], 32);
    EXPECT_EQ(grid.row_lengths.back(), 20);
}

TEST(Grids, EcmwfOrderNorthToSouthWestToEastFromZero) {
    auto grid = octahedral_grid(8);
    EXPECT_GT(grid.latitudes.front(), 0);
    EXPECT_LT(grid.latitudes.back(), 0);
    EXPECT_TRUE(std::is_sorted(grid.latitudes.rbegin(), grid.latitudes.rend()));
    EXPECT_EQ(grid.longitudes[0], 0.0);
    EXPECT_NEAR(grid.longitudes[1], 2 * std::numbers::pi / 20, 1e-15);
    EXPECT_EQ(grid.longitudes[20], 0.0);  // second row starts at 0 again
    for (std::size_t i = 0; i < grid.size(); ++i) {
        EXPECT_GE(grid.longitudes[i], 0.0);
        EXPECT_LT(grid.longitudes[i], 2 * std::numbers::pi);
    }
}

TEST(Grids, ClassicReducedGaussianRowsFromEcCodes) {
    auto grid = make_grid("N320");
    EXPECT_EQ(grid.size(), 542080u);
    ASSERT_EQ(grid.row_lengths.size(), 640u);
    EXPECT_EQ(grid.row_lengths.front(), 18);   // ECMWF's N320 starts with 18 points at the pole
    EXPECT_EQ(grid.row_lengths[319], 1280);    // and reaches 4N at the equator
    EXPECT_EQ(grid.row_lengths.front(), grid.row_lengths.back());
}

TEST(Grids, RegularLatLonIncludesPoles) {
    auto grid = make_grid("LL1");
    EXPECT_EQ(grid.size(), 181u * 360u);
    EXPECT_NEAR(grid.latitudes.front(), std::numbers::pi / 2, 1e-15);
    EXPECT_NEAR(grid.latitudes.back(), -std::numbers::pi / 2, 1e-15);
    EXPECT_EQ(make_grid("LL2x3").size(), 91u * 120u);
}

TEST(Grids, IcosahedralMeshLevels) {
    for (int level = 0; level <= 4; ++level) {
        auto mesh = icosahedral_mesh(level);
        const std::size_t nodes = 10 * (std::size_t{1} << (2 * level)) + 2;
        EXPECT_EQ(mesh.vertices.size(), nodes);
        ASSERT_EQ(mesh.level_edges.size(), static_cast<std::size_t>(level + 1));
        for (int l = 0; l <= level; ++l)
            EXPECT_EQ(mesh.level_edges[l].size(), 30u * (std::size_t{1} << (2 * l)));
        EXPECT_TRUE(std::is_sorted(mesh.latitudes.rbegin(), mesh.latitudes.rend()));
        for (const auto& v : mesh.vertices) EXPECT_NEAR(norm(v), 1.0, 1e-14);
    }
    // From level 1 the poles are nodes (midpoints of (0, +-1, +-t)).
    auto mesh = icosahedral_mesh(1);
    EXPECT_NEAR(mesh.latitudes.front(), std::numbers::pi / 2, 1e-15);
    EXPECT_NEAR(mesh.latitudes.back(), -std::numbers::pi / 2, 1e-15);
    // All edges of one level have about the same length; the level-0 edges are the longest.
    auto edge_angle = [&](const std::array<std::int32_t, 2>& e) {
        return std::acos(dot(mesh.vertices[e[0]], mesh.vertices[e[1]]));
    };
    EXPECT_NEAR(edge_angle(mesh.level_edges[0][0]), std::atan(2.0), 1e-12);
}

TEST(Grids, NodesFromTextFile) {
    auto path = std::filesystem::temp_directory_path() / "boreas_test_nodes.txt";
    {
        std::ofstream out(path);
        out << "# lat lon\n10 20\n-30 350\n";
    }
    auto grid = make_grid("file:" + path.string());
    ASSERT_EQ(grid.size(), 2u);
    EXPECT_NEAR(grid.latitudes[1], -30 * std::numbers::pi / 180, 1e-15);
    {
        std::ofstream out(path);
        out << "10 20\n95 0\n";
    }
    EXPECT_THROW(make_grid("file:" + path.string()), boreas::Error);
}

std::string error_of(const std::string& spec) {
    return boreas::testing_support::error_of([&] { make_grid(spec); });
}

TEST(Grids, BadSpecsNameTheProblem) {
    EXPECT_NE(error_of("Q96").find("unknown grid 'Q96'"), std::string::npos);
    EXPECT_NE(error_of("").find("empty grid name"), std::string::npos);
    EXPECT_NE(error_of("O0").find("N must be between 1"), std::string::npos);
    EXPECT_NE(error_of("O-5").find("N must be between 1"), std::string::npos);
    EXPECT_NE(error_of("Oabc").find("unknown grid"), std::string::npos);
    EXPECT_NE(error_of("O12x").find("expected a whole number"), std::string::npos);
    EXPECT_NE(error_of("N33").find("no sample"), std::string::npos);
    EXPECT_NE(error_of("LL7").find("must divide 180"), std::string::npos);
    EXPECT_NE(error_of("LL0").find("positive spacing"), std::string::npos);
    EXPECT_NE(error_of("TRI-1").find("between 0 and 9"), std::string::npos);
    EXPECT_NE(error_of("TRI12").find("between 0 and 9"), std::string::npos);
    EXPECT_NE(error_of("file:/nonexistent").find("cannot open node file"), std::string::npos);
}

}  // namespace
