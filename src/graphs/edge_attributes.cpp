#include "boreas/graphs/edge_attributes.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "boreas/core/error.hpp"
#include "boreas/grids/geometry.hpp"

namespace boreas::graphs {
namespace {

using grids::Vec3;

/// Calls f(edge, source node, target node) for every edge in CSR order, in parallel.
template <typename F>
void for_each_edge(const EdgeSet& edges, F&& f) {
    const auto targets = static_cast<std::int64_t>(edges.dst_offsets.size()) - 1;
#pragma omp parallel for schedule(dynamic, 512)
    for (std::int64_t t = 0; t < targets; ++t)
        for (auto e = edges.dst_offsets[t]; e < edges.dst_offsets[t + 1]; ++e)
            f(e, static_cast<std::int64_t>(edges.src[e]), t);
}

double lat_of(const NodeSet& nodes, std::int64_t i) { return nodes.coords[2 * i]; }
double lon_of(const NodeSet& nodes, std::int64_t i) { return nodes.coords[2 * i + 1]; }
Vec3 xyz_of(const NodeSet& nodes, std::int64_t i) {
    return grids::to_xyz(lat_of(nodes, i), lon_of(nodes, i));
}

/// Rotates `v` by the rotation that takes `destination` to the north pole, about the axis
/// destination x z (Rodrigues' formula; scipy's Rotation.from_rotvec in the old code does the
/// same rotation).
Vec3 rotate_to_north_pole(Vec3 v, Vec3 destination) {
    const Vec3 pole{0, 0, 1};
    const Vec3 axis_raw = cross(destination, pole);
    const double axis_norm = grids::norm(axis_raw);
    if (axis_norm == 0.0) {
        // Destination on the z axis: nothing to rotate at the north pole; at the south pole a
        // half turn about x (y, z -> -y, -z), the limit anemoi-graphs >= 0.8 also takes.
        return destination.z > 0 ? v : Vec3{v.x, -v.y, -v.z};
    }
    const Vec3 k = (1.0 / axis_norm) * axis_raw;
    const double cos_angle = std::clamp(dot(destination, pole), -1.0, 1.0);
    const double sin_angle = axis_norm;  // |d x z| = sin of the angle between d and z
    return cos_angle * v + sin_angle * cross(k, v) + (dot(k, v) * (1.0 - cos_angle)) * k;
}

}  // namespace

std::vector<double> edge_lengths(const EdgeSet& edges, const NodeSet& source,
                                 const NodeSet& target) {
    std::vector<double> lengths(edges.src.size());
    for_each_edge(edges, [&](std::int64_t e, std::int64_t s, std::int64_t t) {
        lengths[e] = grids::haversine(lat_of(source, s), lon_of(source, s), lat_of(target, t),
                                      lon_of(target, t));
    });
    return lengths;
}

std::vector<double> edge_directions(const EdgeSet& edges, const NodeSet& source,
                                    const NodeSet& target, Convention convention) {
    std::vector<double> dirs(2 * edges.src.size());
    for_each_edge(edges, [&](std::int64_t e, std::int64_t s, std::int64_t t) {
        const Vec3 u = rotate_to_north_pole(xyz_of(source, s), xyz_of(target, t));
        double a = u.x, b = u.y;
        if (convention == Convention::aifs_1_0) {
            // normalize(u x z)[:2] in anemoi-graphs <= 0.7; it adds 1e-10 to a zero vector.
            a = u.y;
            b = -u.x;
        }
        double length = std::hypot(a, b);
        if (length < 1e-12) length = 1e-12;
        dirs[2 * e] = a / length;
        dirs[2 * e + 1] = b / length;
    });
    return dirs;
}

void normalise(std::vector<double>& values, Norm norm, Convention convention) {
    if (norm == Norm::none || values.empty()) return;
    const auto n = static_cast<double>(values.size());
    switch (norm) {
        case Norm::none:
            return;
        case Norm::unit_std: {
            const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
            double squares = 0;
            for (double v : values) squares += (v - mean) * (v - mean);
            // numpy's np.std (population) in the AIFS-1.0 era; torch.std (unbiased) since 0.5.
            const double dof = convention == Convention::aifs_1_0 ? n : std::max(n - 1.0, 1.0);
            const double std_dev = std::sqrt(squares / dof);
            BOREAS_CHECK(std_dev > 0, "unit-std normalisation of a constant attribute");
            for (double& v : values) v /= std_dev;
            return;
        }
        case Norm::unit_max: {
            const double max = *std::max_element(values.begin(), values.end());
            BOREAS_CHECK(max != 0, "unit-max normalisation of an attribute whose maximum is 0");
            for (double& v : values) v /= max;
            return;
        }
        case Norm::unit_sum: {
            const double sum = std::accumulate(values.begin(), values.end(), 0.0);
            BOREAS_CHECK(sum != 0, "unit-sum normalisation of an attribute that sums to 0");
            for (double& v : values) v /= sum;
            return;
        }
        case Norm::unit_range: {
            auto [lo, hi] = std::minmax_element(values.begin(), values.end());
            const double min = *lo, range = *hi - *lo;
            BOREAS_CHECK(range > 0, "unit-range normalisation of a constant attribute");
            for (double& v : values) v = (v - min) / range;
            return;
        }
    }
}

}  // namespace boreas::graphs
