#pragma once
/// k-d tree over points on the unit sphere (xyz), for nearest-neighbour and radius queries.
/// Wraps nanoflann so its API version stays out of the rest of Boreas.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "boreas/grids/geometry.hpp"

namespace boreas::grids {

struct Neighbour {
    std::uint32_t index;
    double chord_squared;
};

class SphereIndex {
public:
    explicit SphereIndex(std::vector<Vec3> points);
    ~SphereIndex();
    SphereIndex(SphereIndex&&) noexcept;

    std::size_t size() const { return points_.size(); }
    const std::vector<Vec3>& points() const { return points_; }

    /// The k nearest points to `query`, nearest first (ties by index). Thread-safe.
    void nearest(const Vec3& query, std::size_t k, std::vector<Neighbour>& out) const;
    /// Every point within `chord` (inclusive) of `query`, nearest first. Thread-safe.
    void within(const Vec3& query, double chord, std::vector<Neighbour>& out) const;

private:
    struct Tree;
    std::vector<Vec3> points_;
    std::unique_ptr<Tree> tree_;
};

}  // namespace boreas::grids
