#pragma once
/// Model sharding's halos: with the destination rows of an edge set split into S contiguous
/// shares (and its source rows likewise), which source rows each rank needs from each other
/// rank. Every rank derives every rank's needs from the graph itself, so no request travels.
#include <cstdint>
#include <vector>

#include "boreas/graphs/graph.hpp"

namespace boreas::graphs {

/// Rank r's rows of a node set of n over S ranks: [n r / S, n (r + 1) / S).
inline std::int64_t share_first(std::int64_t n, int shards, int rank) {
    return n * rank / shards;
}

struct Halo {
    /// The source rows this rank's destinations read, ascending (so grouped by owner in rank
    /// order): the halo buffer's rows.
    std::vector<std::int64_t> rows;
    std::vector<std::int64_t> recv_counts;  ///< per owner rank: its rows in `rows`
    /// Per destination rank: the rows of this rank's share it needs (offsets in the share).
    std::vector<std::vector<std::int64_t>> send_rows;
    /// The edge set with each source replaced by its row in the halo buffer (for this rank's
    /// destinations; other edges keep 0). dst_offsets are the original ones.
    EdgeSet local;
};

/// The halo of `rank` among `shards` for `edges` (sources from a node set of n_src rows).
Halo build_halo(const EdgeSet& edges, std::int64_t n_src, int shards, int rank);

/// Source rows rank `rank` sends and receives for `edges` (its share of each, per batch element):
/// the volumes of a halo exchange without building it.
struct HaloVolume {
    std::int64_t sent = 0, received = 0;
};
HaloVolume halo_volume(const EdgeSet& edges, std::int64_t n_src, int shards, int rank);

}  // namespace boreas::graphs
