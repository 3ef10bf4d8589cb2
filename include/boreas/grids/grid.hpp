#pragma once
/// Spherical grids: node coordinates in radians, in ECMWF order (rows north to south, each row
/// west to east from longitude 0), plus the structure a grid has (row lengths, mesh level).

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "boreas/grids/geometry.hpp"

namespace boreas::grids {

enum class GridKind { octahedral, reduced_gaussian, regular_latlon, icosahedral, file };

struct Grid {
    std::string name;  ///< canonical spec, e.g. "O96", "N320", "LL1", "TRI5", "file:/path"
    GridKind kind = GridKind::file;
    std::vector<double> latitudes;       ///< radians
    std::vector<double> longitudes;      ///< radians
    std::vector<std::int64_t> row_lengths;  ///< points per row for row-structured grids
    int resolution = 0;  ///< N of O<N>/N<N>, refinement level of TRI<r>

    std::size_t size() const { return latitudes.size(); }
};

/// Parses a grid spec and builds the grid. Specs (case-insensitive prefix):
///   O<N>              octahedral reduced Gaussian (row i from a pole has 4i+16 points)
///   N<N>              classic reduced Gaussian with ECMWF's row lengths (ecCodes samples)
///   LL<d>[x<d2>]      regular lat-lon with spacing d degrees (d2 in longitude), poles included
///   TRI<r>            icosahedral refinement mesh (anemoi TriNodes, level r)
///   file:<path>       nodes from a file (see read_nodes_file)
/// Throws boreas::Error naming the spec and what is accepted.
Grid make_grid(std::string_view spec);

Grid octahedral_grid(int n);
Grid reduced_gaussian_grid(int n);
Grid regular_latlon_grid(double dlat_degrees, double dlon_degrees);
Grid icosahedral_grid(int level);

/// Nodes from a file: a safetensors file with 1-D "latitudes" and "longitudes" (degrees, F32 or
/// F64, as anemoi-datasets stores them), or a text file with one "lat lon" (degrees) per line.
Grid read_nodes_file(const std::filesystem::path& path);

/// The 2N Gaussian latitudes of N<N>/O<N> grids, north to south, radians (ecCodes).
std::vector<double> gaussian_latitudes(int n);
/// ECMWF's row lengths of the classic reduced Gaussian grid N<n> (ecCodes reduced_gg_pl samples).
std::vector<std::int64_t> reduced_gaussian_row_lengths(int n);

std::vector<Vec3> unit_vectors(const Grid& grid);

}  // namespace boreas::grids
