#pragma once
/// Node area weights: the area (steradians) of each node's spherical Voronoi cell, as anemoi-graphs'
/// SphericalAreaWeights computes them with scipy's SphericalVoronoi.

#include <vector>

#include "boreas/grids/grid.hpp"

namespace boreas::grids {

/// Voronoi cell areas in steradians; they sum to 4*pi. Coincident nodes (the poles of a regular
/// lat-lon grid) share their cell equally (scipy's SphericalVoronoi refuses them). Each cell is clipped from the bisector
/// planes of the node's nearest neighbours, with enough neighbours that no farther node can
/// cut it (the cell's radius is under half the distance to the farthest neighbour used).
std::vector<double> voronoi_areas(const std::vector<Vec3>& points);

}  // namespace boreas::grids
