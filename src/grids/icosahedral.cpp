#include "boreas/grids/icosahedral.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "boreas/core/error.hpp"

namespace boreas::grids {
namespace {

using Face = std::array<std::int32_t, 3>;

// The icosahedron trimesh (and so anemoi-graphs) starts from: vertices (+-1, +-t, 0),
// (0, +-1, +-t), (+-t, 0, +-1). Its orientation decides where every mesh node lies: the
// midpoints of (0, +-1, t) and (0, +-1, -t) are the poles from level 1 on.
void icosahedron(std::vector<Vec3>& vertices, std::vector<Face>& faces) {
    const double t = (1.0 + std::sqrt(5.0)) / 2.0;
    const double raw[12][3] = {{-1, t, 0}, {1, t, 0},  {-1, -t, 0}, {1, -t, 0},
                               {0, -1, t}, {0, 1, t},  {0, -1, -t}, {0, 1, -t},
                               {t, 0, -1}, {t, 0, 1},  {-t, 0, -1}, {-t, 0, 1}};
    vertices.clear();
    for (const auto& v : raw) vertices.push_back(normalized({v[0], v[1], v[2]}));
    faces = {{0, 11, 5}, {0, 5, 1},  {0, 1, 7},   {0, 7, 10}, {0, 10, 11},
             {1, 5, 9},  {5, 11, 4}, {11, 10, 2}, {10, 7, 6}, {7, 1, 8},
             {3, 9, 4},  {3, 4, 2},  {3, 2, 6},   {3, 6, 8},  {3, 8, 9},
             {4, 9, 5},  {2, 4, 11}, {6, 2, 10},  {8, 6, 7},  {9, 8, 1}};
}

/// Splits every face in four; the new vertex on each edge is the edge midpoint projected to the
/// unit sphere. Old vertices keep their indices, so coarse meshes stay embedded in fine ones.
void subdivide(std::vector<Vec3>& vertices, std::vector<Face>& faces) {
    std::map<std::pair<std::int32_t, std::int32_t>, std::int32_t> midpoint_of;
    auto midpoint = [&](std::int32_t a, std::int32_t b) {
        auto key = std::minmax(a, b);
        auto [it, inserted] = midpoint_of.try_emplace({key.first, key.second},
                                                       static_cast<std::int32_t>(vertices.size()));
        if (inserted) vertices.push_back(normalized(vertices[a] + vertices[b]));
        return it->second;
    };
    std::vector<Face> finer;
    finer.reserve(faces.size() * 4);
    for (const auto& [a, b, c] : faces) {
        const auto ab = midpoint(a, b), bc = midpoint(b, c), ca = midpoint(c, a);
        finer.push_back({a, ab, ca});
        finer.push_back({b, bc, ab});
        finer.push_back({c, ca, bc});
        finer.push_back({ab, bc, ca});
    }
    faces = std::move(finer);
}

std::vector<std::array<std::int32_t, 2>> unique_edges(const std::vector<Face>& faces) {
    std::vector<std::array<std::int32_t, 2>> edges;
    edges.reserve(faces.size() * 3);
    for (const auto& face : faces) {
        for (int k = 0; k < 3; ++k) {
            auto [lo, hi] = std::minmax(face[k], face[(k + 1) % 3]);
            edges.push_back({lo, hi});
        }
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
    return edges;
}

}  // namespace

IcosahedralMesh icosahedral_mesh(int level) {
    BOREAS_CHECK(level >= 0, "icosahedral mesh: refinement level {} must be >= 0", level);
    std::vector<Vec3> vertices;
    std::vector<Face> faces;
    icosahedron(vertices, faces);
    std::vector<std::vector<std::array<std::int32_t, 2>>> edges_by_level;
    edges_by_level.push_back(unique_edges(faces));
    for (int l = 1; l <= level; ++l) {
        subdivide(vertices, faces);
        edges_by_level.push_back(unique_edges(faces));
    }

    // Node order as anemoi-graphs' TriNodes: latitude descending (north first). anemoi breaks
    // latitude ties through an unstable numpy argsort after a longitude presort, which in
    // practice leaves them in descending longitude; do that explicitly so the order is defined.
    const auto n = vertices.size();
    std::vector<double> lat(n), lon(n);
    for (std::size_t i = 0; i < n; ++i) {
        lat[i] = std::atan2(vertices[i].z, std::hypot(vertices[i].x, vertices[i].y));
        lon[i] = std::atan2(vertices[i].y, vertices[i].x);
    }
    std::vector<std::int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
        return lat[a] > lat[b] || (lat[a] == lat[b] && lon[a] > lon[b]);
    });
    std::vector<std::int32_t> node_of(n);
    for (std::size_t position = 0; position < n; ++position) node_of[order[position]] = static_cast<std::int32_t>(position);

    IcosahedralMesh mesh;
    mesh.level = level;
    for (auto index : order) {
        mesh.vertices.push_back(vertices[index]);
        mesh.latitudes.push_back(lat[index]);
        mesh.longitudes.push_back(lon[index]);
    }
    for (auto& edges : edges_by_level) {
        for (auto& edge : edges) edge = {node_of[edge[0]], node_of[edge[1]]};
        mesh.level_edges.push_back(std::move(edges));
    }
    return mesh;
}

}  // namespace boreas::grids
