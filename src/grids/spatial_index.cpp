#include "boreas/grids/spatial_index.hpp"

#include <algorithm>
#include <nanoflann.hpp>

namespace boreas::grids {
namespace {

struct PointCloud {
    const std::vector<Vec3>* points;
    std::size_t kdtree_get_point_count() const { return points->size(); }
    double kdtree_get_pt(std::size_t i, std::size_t dim) const {
        const Vec3& p = (*points)[i];
        return dim == 0 ? p.x : (dim == 1 ? p.y : p.z);
    }
    template <class Box>
    bool kdtree_get_bbox(Box&) const {
        return false;
    }
};

using KdTree = nanoflann::KDTreeSingleIndexAdaptor<nanoflann::L2_Simple_Adaptor<double, PointCloud>,
                                                   PointCloud, 3, std::uint32_t>;

void sort_by_distance(std::vector<Neighbour>& out) {
    std::sort(out.begin(), out.end(), [](const Neighbour& a, const Neighbour& b) {
        return a.chord_squared < b.chord_squared ||
               (a.chord_squared == b.chord_squared && a.index < b.index);
    });
}

}  // namespace

struct SphereIndex::Tree {
    PointCloud cloud;
    KdTree tree;
    explicit Tree(const std::vector<Vec3>* points)
        : cloud{points}, tree(3, cloud, nanoflann::KDTreeSingleIndexAdaptorParams(16)) {
        tree.buildIndex();
    }
};

SphereIndex::SphereIndex(std::vector<Vec3> points)
    : points_(std::move(points)), tree_(std::make_unique<Tree>(&points_)) {}
SphereIndex::~SphereIndex() = default;
SphereIndex::SphereIndex(SphereIndex&& other) noexcept
    : points_(std::move(other.points_)), tree_(std::move(other.tree_)) {
    // The tree points at the vector object, which moved; re-point it at ours.
    if (tree_) tree_->cloud.points = &points_;
}

void SphereIndex::nearest(const Vec3& query, std::size_t k, std::vector<Neighbour>& out) const {
    k = std::min(k, points_.size());
    // Ask for a few more than k so that ties at the k-th distance are broken by index, not by
    // the tree's traversal order.
    const std::size_t wanted = std::min(k + 4, points_.size());
    std::vector<std::uint32_t> indices(wanted);
    std::vector<double> distances(wanted);
    const double q[3] = {query.x, query.y, query.z};
    const std::size_t found = tree_->tree.knnSearch(q, wanted, indices.data(), distances.data());
    out.resize(found);
    for (std::size_t i = 0; i < found; ++i) out[i] = {indices[i], distances[i]};
    sort_by_distance(out);
    if (out.size() > k) out.resize(k);
}

void SphereIndex::within(const Vec3& query, double chord, std::vector<Neighbour>& out) const {
    std::vector<std::pair<std::uint32_t, double>> matches;
    const double q[3] = {query.x, query.y, query.z};
    nanoflann::SearchParams params;
    params.sorted = false;
    const double limit = chord * chord;
    // nanoflann's radius test is strict; widen it by a few ulps and apply the inclusive test here.
    tree_->tree.radiusSearch(q, limit * (1.0 + 1e-12), matches, params);
    out.clear();
    for (const auto& [index, distance] : matches)
        if (distance <= limit) out.push_back({index, distance});
    sort_by_distance(out);
}

}  // namespace boreas::grids
