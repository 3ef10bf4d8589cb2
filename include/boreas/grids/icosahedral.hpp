#pragma once
/// Icosahedral refinement meshes as anemoi-graphs builds them (TriNodes: trimesh's icosphere,
/// each level splitting every triangle in four and projecting the new vertices to the sphere).

#include <array>
#include <cstdint>
#include <vector>

#include "boreas/grids/geometry.hpp"

namespace boreas::grids {

struct IcosahedralMesh {
    int level = 0;
    /// Vertices of the finest level in node order (latitude descending, see icosahedral.cpp).
    std::vector<Vec3> vertices;
    std::vector<double> latitudes, longitudes;
    /// For every level 0..level, its undirected edges as node indices of the finest level
    /// (every coarse vertex is also a vertex of the finer levels).
    std::vector<std::vector<std::array<std::int32_t, 2>>> level_edges;
};

IcosahedralMesh icosahedral_mesh(int level);

}  // namespace boreas::grids
