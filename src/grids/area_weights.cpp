#include "boreas/grids/area_weights.hpp"

#include <algorithm>
#include <cmath>

#include "boreas/core/error.hpp"
#include "boreas/grids/spatial_index.hpp"

namespace boreas::grids {
namespace {

struct Corner {
    Vec3 position;
    bool from_start;  ///< a corner of the starting polygon, not cut by any bisector
};

/// Keeps the part of the convex spherical polygon closer to p than to q: the side of the plane
/// through the origin with normal p - q. The chord between two kept vertices projects radially
/// onto their great-circle arc, so the crossing point is found on the chord and projected.
void clip(std::vector<Corner>& polygon, std::vector<Corner>& scratch, Vec3 p, Vec3 q) {
    const Vec3 normal = p - q;
    scratch.clear();
    const std::size_t n = polygon.size();
    for (std::size_t i = 0; i < n; ++i) {
        const Corner& a = polygon[i];
        const Corner& b = polygon[(i + 1) % n];
        const double da = dot(a.position, normal);
        const double db = dot(b.position, normal);
        if (da >= 0) scratch.push_back(a);
        if ((da >= 0) != (db >= 0)) {
            const double t = da / (da - db);
            scratch.push_back({normalized(a.position + t * (b.position - a.position)), false});
        }
    }
    polygon.swap(scratch);
}

/// Area of the spherical triangle (a, b, c) of unit vectors (Van Oosterom and Strackee, 1983).
double triangle_area(Vec3 a, Vec3 b, Vec3 c) {
    const double numerator = std::abs(dot(a, cross(b, c)));
    const double denominator = 1.0 + dot(a, b) + dot(b, c) + dot(c, a);
    return 2.0 * std::atan2(numerator, denominator);
}

/// A spherical square centred on p with corners 80 degrees away: it holds any Voronoi cell whose
/// points lie within 76 degrees of p, i.e. every cell of a grid with more than a few nodes.
void start_polygon(Vec3 p, std::vector<Corner>& polygon) {
    const Vec3 helper = std::abs(p.z) < 0.9 ? Vec3{0, 0, 1} : Vec3{1, 0, 0};
    const Vec3 e1 = normalized(cross(helper, p));
    const Vec3 e2 = cross(p, e1);
    const double angle = 80.0 * 3.14159265358979323846 / 180.0;
    const double c = std::cos(angle), s = std::sin(angle) / std::sqrt(2.0);
    polygon = {{c * p + s * (e1 + e2), true},
               {c * p + s * (e2 - e1), true},
               {c * p - s * (e1 + e2), true},
               {c * p + s * (e1 - e2), true}};
}

}  // namespace

std::vector<double> voronoi_areas(const std::vector<Vec3>& points) {
    const std::size_t n = points.size();
    BOREAS_CHECK(n >= 4, "area weights need at least 4 nodes, found {}", n);
    SphereIndex index(points);
    std::vector<double> areas(n);
    bool failed = false;
    std::size_t failed_node = 0;

#pragma omp parallel
    {
        std::vector<Neighbour> neighbours;
        std::vector<Corner> polygon, scratch;
#pragma omp for schedule(dynamic, 256)
        for (std::size_t i = 0; i < n; ++i) {
            const Vec3 p = points[i];
            for (std::size_t k = std::min<std::size_t>(24, n);; k = std::min(2 * k, n)) {
                index.nearest(p, k, neighbours);
                start_polygon(p, polygon);
                std::size_t coincident = 0;  // p itself and its duplicates
                for (const auto& neighbour : neighbours) {
                    if (neighbour.chord_squared == 0.0) {
                        ++coincident;
                        continue;
                    }
                    clip(polygon, scratch, p, points[neighbour.index]);
                }
                double radius_squared = 0;
                bool bounded = !polygon.empty();
                for (const auto& corner : polygon) {
                    const Vec3 d = corner.position - p;
                    radius_squared = std::max(radius_squared, dot(d, d));
                    bounded = bounded && !corner.from_start;
                }
                // Exact once no unused node can cut the cell: every unused node is at least as
                // far as the farthest used one, which must exceed twice the cell's radius.
                const bool complete = k >= n || 4.0 * radius_squared < neighbours.back().chord_squared;
                if (complete) {
                    if (!bounded) {
#pragma omp critical
                        {
                            failed = true;
                            failed_node = i;
                        }
                    }
                    double area = 0;
                    for (std::size_t v = 0; v < polygon.size(); ++v)
                        area += triangle_area(p, polygon[v].position,
                                              polygon[(v + 1) % polygon.size()].position);
                    // Duplicated nodes (the poles of a regular lat-lon grid) share their cell.
                    areas[i] = area / static_cast<double>(std::max<std::size_t>(coincident, 1));
                    break;
                }
            }
        }
    }
    BOREAS_CHECK(!failed,
                 "area weights: the Voronoi cell of node {} spans more than a hemisphere; the "
                 "nodes do not cover the sphere", failed_node);
    return areas;
}

}  // namespace boreas::grids
