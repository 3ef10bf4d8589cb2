#include "boreas/graphs/halo.hpp"

#include <algorithm>

#include "boreas/core/error.hpp"

namespace boreas::graphs {

namespace {

/// The distinct sources of the edges into rank t's destination rows, ascending.
std::vector<std::int64_t> needed_by(const EdgeSet& edges, int shards, int t) {
    const std::int64_t n_dst = static_cast<std::int64_t>(edges.dst_offsets.size()) - 1;
    const auto e0 = edges.dst_offsets[static_cast<std::size_t>(share_first(n_dst, shards, t))];
    const auto e1 = edges.dst_offsets[static_cast<std::size_t>(share_first(n_dst, shards, t + 1))];
    std::vector<std::int64_t> rows(edges.src.begin() + e0, edges.src.begin() + e1);
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    return rows;
}

int owner_of(std::int64_t row, std::int64_t n_src, int shards) {
    // The largest r with n r / S <= row.
    int r = static_cast<int>(row * shards / std::max<std::int64_t>(n_src, 1));
    while (r + 1 < shards && share_first(n_src, shards, r + 1) <= row) ++r;
    while (r > 0 && share_first(n_src, shards, r) > row) --r;
    return r;
}

}  // namespace

Halo build_halo(const EdgeSet& edges, std::int64_t n_src, int shards, int rank) {
    BOREAS_CHECK(shards >= 1 && rank >= 0 && rank < shards, "halo of rank {} among {}", rank,
                 shards);
    Halo halo;
    halo.rows = needed_by(edges, shards, rank);
    halo.recv_counts.assign(static_cast<std::size_t>(shards), 0);
    for (const auto row : halo.rows)
        ++halo.recv_counts[static_cast<std::size_t>(owner_of(row, n_src, shards))];
    const std::int64_t first = share_first(n_src, shards, rank),
                       last = share_first(n_src, shards, rank + 1);
    halo.send_rows.resize(static_cast<std::size_t>(shards));
    for (int t = 0; t < shards; ++t) {
        const auto rows = t == rank ? halo.rows : needed_by(edges, shards, t);
        auto& send = halo.send_rows[static_cast<std::size_t>(t)];
        for (auto it = std::lower_bound(rows.begin(), rows.end(), first);
             it != rows.end() && *it < last; ++it)
            send.push_back(*it - first);
    }
    halo.local.source = edges.source;
    halo.local.target = edges.target;
    halo.local.dst_offsets = edges.dst_offsets;
    halo.local.src.assign(edges.src.size(), 0);
    const std::int64_t n_dst = static_cast<std::int64_t>(edges.dst_offsets.size()) - 1;
    const auto e0 = edges.dst_offsets[static_cast<std::size_t>(share_first(n_dst, shards, rank))];
    const auto e1 =
        edges.dst_offsets[static_cast<std::size_t>(share_first(n_dst, shards, rank + 1))];
    for (auto e = e0; e < e1; ++e)
        halo.local.src[static_cast<std::size_t>(e)] =
            static_cast<std::int32_t>(std::lower_bound(halo.rows.begin(), halo.rows.end(),
                                                       edges.src[static_cast<std::size_t>(e)]) -
                                      halo.rows.begin());
    return halo;
}

HaloVolume halo_volume(const EdgeSet& edges, std::int64_t n_src, int shards, int rank) {
    HaloVolume volume;
    const std::int64_t first = share_first(n_src, shards, rank),
                       last = share_first(n_src, shards, rank + 1);
    for (int t = 0; t < shards; ++t) {
        const auto rows = needed_by(edges, shards, t);
        if (t == rank) {
            for (const auto row : rows) volume.received += (row < first || row >= last) ? 1 : 0;
            continue;
        }
        volume.sent += std::lower_bound(rows.begin(), rows.end(), last) -
                       std::lower_bound(rows.begin(), rows.end(), first);
    }
    return volume;
}

}  // namespace boreas::graphs
