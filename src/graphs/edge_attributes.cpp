#include "boreas/graphs/edge_attributes.hpp"

#include <algorithm>
#include <array>
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

float lat_of(const NodeSet& nodes, std::int64_t i) { return nodes.coords[2 * i]; }
float lon_of(const NodeSet& nodes, std::int64_t i) { return nodes.coords[2 * i + 1]; }

Vec3 xyz_of(const NodeSet& nodes, std::int64_t i) {
    return grids::to_xyz(lat_of(nodes, i), lon_of(nodes, i));
}

/// anemoi-graphs >= 0.8 compute_directions for one edge, in double: rotate the source by the
/// rotation that takes the destination to the north pole (Rodrigues), keep the normalised (x, y).
/// anemoi's own pole branches never fire on float32 coordinates (their test dot > 1 - 1e-8 is
/// dot > 1 in float32, and float32(pi/2) lies just past the pole), so its general path serves every
/// edge; the same holds here, where the axis of a float32 pole is tiny but not zero.
std::array<float, 2> direction_current(Vec3 s, Vec3 t) {
    const Vec3 axis{t.y, -t.x, 0.0};  // t x (0, 0, 1)
    const double sin_theta = grids::norm(axis);
    const double cos_theta = std::clamp(t.z, -1.0, 1.0);
    Vec3 u = s;
    if (sin_theta > 0) {
        const Vec3 k = (1.0 / sin_theta) * axis;
        u = cos_theta * s + sin_theta * cross(k, s) + (dot(k, s) * (1.0 - cos_theta)) * k;
    }
    const double length = std::max(std::hypot(u.x, u.y), 1e-8);
    return {static_cast<float>(u.x / length), static_cast<float>(u.y / length)};
}

/// anemoi-graphs <= 0.7 (AIFS-1.0 graphs): scipy's Rotation works in float64, and the feature is
/// normalize(u x z)[:2] = (u_y, -u_x) / |.|.
std::array<float, 2> direction_aifs_1_0(Vec3 src, Vec3 dst) {
    const Vec3 pole{0, 0, 1};
    const Vec3 axis_raw = cross(dst, pole);
    const double axis_norm = grids::norm(axis_raw);
    Vec3 u = src;
    if (axis_norm > 0) {
        const Vec3 k = (1.0 / axis_norm) * axis_raw;
        const double cos_angle = std::clamp(dot(dst, pole), -1.0, 1.0);
        const double sin_angle = std::sin(std::acos(cos_angle));
        u = cos_angle * src + sin_angle * cross(k, src) + (dot(k, src) * (1.0 - cos_angle)) * k;
    }
    const double a = u.y, b = -u.x;
    const double length = std::max(std::hypot(a, b), 1e-10);
    return {static_cast<float>(a / length), static_cast<float>(b / length)};
}

}  // namespace

std::vector<float> edge_lengths(const EdgeSet& edges, const NodeSet& source,
                                const NodeSet& target) {
    std::vector<float> lengths(edges.src.size());
    for_each_edge(edges, [&](std::int64_t e, std::int64_t s, std::int64_t t) {
        lengths[e] = static_cast<float>(grids::haversine(lat_of(source, s), lon_of(source, s),
                                                         lat_of(target, t), lon_of(target, t)));
    });
    return lengths;
}

std::vector<float> edge_directions(const EdgeSet& edges, const NodeSet& source,
                                   const NodeSet& target, Convention convention) {
    std::vector<float> dirs(2 * edges.src.size());
    for_each_edge(edges, [&](std::int64_t e, std::int64_t s, std::int64_t t) {
        const Vec3 src = xyz_of(source, s), dst = xyz_of(target, t);
        const auto d = convention == Convention::current ? direction_current(src, dst)
                                                         : direction_aifs_1_0(src, dst);
        dirs[2 * e] = d[0];
        dirs[2 * e + 1] = d[1];
    });
    return dirs;
}

void normalise(std::vector<float>& values, Norm norm, Convention convention) {
    if (norm == Norm::none || values.empty()) return;
    // Statistics in double (torch accumulates float32 reductions in double on the CPU), rounded
    // to float32, then applied in float32 as anemoi-graphs does.
    const auto n = static_cast<double>(values.size());
    auto divide_all = [&](double divisor) {
        const auto d = static_cast<float>(divisor);
        for (float& v : values) v /= d;
    };
    switch (norm) {
        case Norm::none:
            return;
        case Norm::unit_std: {
            double sum = 0;
            for (float v : values) sum += v;
            const double mean = sum / n;
            double squares = 0;
            for (float v : values) squares += (v - mean) * (v - mean);
            // numpy's np.std (population) in the AIFS-1.0 era; torch.std (unbiased) since 0.5.
            const double dof = convention == Convention::aifs_1_0 ? n : std::max(n - 1.0, 1.0);
            const double std_dev = std::sqrt(squares / dof);
            if (std_dev > 0) divide_all(std_dev);  // anemoi skips a zero std
            return;
        }
        case Norm::unit_max: {
            const float max = *std::max_element(values.begin(), values.end());
            BOREAS_CHECK(max != 0, "unit-max normalisation of an attribute whose maximum is 0");
            divide_all(max);
            return;
        }
        case Norm::unit_sum: {
            double sum = 0;
            for (float v : values) sum += v;
            BOREAS_CHECK(sum != 0, "unit-sum normalisation of an attribute that sums to 0");
            divide_all(sum);
            return;
        }
        case Norm::unit_range: {
            auto [lo, hi] = std::minmax_element(values.begin(), values.end());
            const float min = *lo, range = *hi - *lo;
            BOREAS_CHECK(range > 0, "unit-range normalisation of a constant attribute");
            for (float& v : values) v = (v - min) / range;
            return;
        }
    }
}

}  // namespace boreas::graphs
