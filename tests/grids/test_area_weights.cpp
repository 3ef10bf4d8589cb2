#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "boreas/grids/area_weights.hpp"
#include "boreas/grids/icosahedral.hpp"

namespace {

using namespace boreas::grids;

double total(const std::vector<double>& areas) {
    return std::accumulate(areas.begin(), areas.end(), 0.0);
}

TEST(AreaWeights, CellsTileTheSphere) {
    for (const char* spec : {"O16", "N32", "LL10", "TRI3"}) {
        auto areas = voronoi_areas(unit_vectors(make_grid(spec)));
        EXPECT_NEAR(total(areas), 4 * std::numbers::pi, 1e-9) << spec;
        EXPECT_GT(*std::min_element(areas.begin(), areas.end()), 0.0) << spec;
    }
}

TEST(AreaWeights, IcosahedronCellsAreEqual) {
    // The 12 Voronoi cells of the icosahedron's vertices are congruent pentagons.
    auto areas = voronoi_areas(icosahedral_mesh(0).vertices);
    for (double a : areas) EXPECT_NEAR(a, 4 * std::numbers::pi / 12, 1e-12);
}

TEST(AreaWeights, RegularGridPolarCapIsExact) {
    // On a regular lat-lon grid the pole's cell is the cap bounded by the bisectors with the
    // next row: a regular polygon with nlon sides, symmetric about the pole.
    auto grid = make_grid("LL10");
    auto areas = voronoi_areas(unit_vectors(grid));
    const int nlon = 36;
    // Bisector between the pole and a point 10 degrees down: great circle 5 degrees from the pole
    // along that meridian; the cell is a regular 36-gon with apothem 5 degrees.
    const double apothem = 5 * std::numbers::pi / 180;
    const double half_angle = std::numbers::pi / nlon;
    // Spherical regular polygon area: n * (2 * asin(...)) via right triangles with legs
    // apothem and the half side; angle at the pole = half_angle.
    const double half_side = std::atan(std::tan(half_angle) * std::sin(apothem));
    // Right spherical triangle with legs a (apothem) and b (half side): excess E with
    // tan(E/2) = tan(a/2) tan(b/2).
    const double excess = 2 * std::atan(std::tan(apothem / 2) * std::tan(half_side / 2));
    // The grid repeats the pole nlon times; the copies share the cell.
    double pole = 0;
    for (int j = 0; j < nlon; ++j) {
        EXPECT_NEAR(areas[j], 2 * excess, 1e-12);
        pole += areas[j];
    }
    EXPECT_NEAR(pole, 2 * nlon * excess, 1e-12);
    // All points of one row have the same area.
    for (int j = 1; j < nlon; ++j) EXPECT_NEAR(areas[nlon + j], areas[nlon], 1e-12);
}

}  // namespace
