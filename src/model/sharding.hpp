#pragma once
// Model sharding's row shares and exchanges (sharded_forward.cpp, sharded_training.cpp). A rank
// of a group of S owns rows [n r / S, n (r + 1) / S) of each node set, for every batch element;
// its tensors hold them batch-major: row b * own + (j - first).
#include <algorithm>
#include <vector>

#include "boreas/core/trace.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/graphs/halo.hpp"
#include "model_impl.hpp"

namespace boreas::model::detail {

struct Sharding {
    const dist::Communicator& comm;
    std::int64_t batch;

    int size() const { return comm.size(); }
    /// Rank r's rows of a node set with n nodes.
    RowRange range(std::int64_t n, int r) const { return {n * r / size(), n * (r + 1) / size()}; }
    RowRange mine(std::int64_t n) const { return range(n, comm.rank()); }
    /// Rows each rank holds of a node set: batch x its share.
    std::vector<std::int64_t> counts(std::int64_t n) const {
        std::vector<std::int64_t> c(static_cast<std::size_t>(size()));
        for (int r = 0; r < size(); ++r) {
            const auto rr = range(n, r);
            c[static_cast<std::size_t>(r)] = batch * (rr.last - rr.first);
        }
        return c;
    }

    /// Calls fn(rank, b, first, rows, block_row) for each rank's rows of each batch element, in
    /// the order of the rank-ordered blocks (block_row: the first row's place there).
    template <typename Fn>
    void for_blocks(std::int64_t n, Fn&& fn) const {
        std::int64_t offset = 0;
        for (int r = 0; r < size(); ++r) {
            const auto rr = range(n, r);
            const std::int64_t rows = rr.last - rr.first;
            for (std::int64_t b = 0; b < batch; ++b) fn(r, b, rr.first, rows, offset + b * rows);
            offset += batch * rows;
        }
    }

    /// The whole [batch * n, width] tensor from every rank's [batch * own, width] share.
    Tensor gather(const Tensor& own, std::int64_t n) const {
        BOREAS_RANGE("exchange");
        const std::int64_t width = own.cols();
        Tensor full = Tensor::uninitialised({batch * n, width});
        if (batch == 1) {  // the rank-ordered shares are the node order already
            comm.allgather_rows(own.data(), full.data(), counts(n), width);
            return full;
        }
        Tensor blocks = Tensor::uninitialised({batch * n, width});
        comm.allgather_rows(own.data(), blocks.data(), counts(n), width);
        for_blocks(
            n, [&](int, std::int64_t b, std::int64_t first, std::int64_t rows, std::int64_t at) {
                std::copy_n(blocks.row(at), rows * width, full.row(b * n + first));
            });
        return full;
    }

    /// The halo buffer [batch * H, width] of this rank's destinations (graphs::Halo: the H
    /// source rows its edges read, ascending) from every rank's [batch * own, width] share: one
    /// all-to-all of just those rows.
    Tensor halo_exchange(const Tensor& own, const graphs::Halo& halo) const {
        BOREAS_RANGE("exchange");
        const std::int64_t width = own.cols(), h = static_cast<std::int64_t>(halo.rows.size());
        const std::int64_t own_rows = own.rows() / batch;
        std::vector<std::int64_t> to(static_cast<std::size_t>(size())), from(to.size());
        std::int64_t total = 0;
        for (int t = 0; t < size(); ++t) {
            const auto& rows = halo.send_rows[static_cast<std::size_t>(t)];
            to[static_cast<std::size_t>(t)] =
                batch * static_cast<std::int64_t>(rows.size()) * width;
            from[static_cast<std::size_t>(t)] =
                batch * halo.recv_counts[static_cast<std::size_t>(t)] * width;
            total += static_cast<std::int64_t>(rows.size());
        }
        Tensor send = Tensor::uninitialised({std::max<std::int64_t>(1, batch * total), width});
        std::int64_t at = 0;
        for (int t = 0; t < size(); ++t)
            for (std::int64_t b = 0; b < batch; ++b)
                for (const auto row : halo.send_rows[static_cast<std::size_t>(t)])
                    std::copy_n(own.row(b * own_rows + row), width, send.row(at++));
        Tensor received = Tensor::uninitialised({std::max<std::int64_t>(1, batch * h), width});
        comm.alltoall(send.data(), to, received.data(), from);
        if (batch == 1) return received;
        // [owner][b][its rows] -> [b][halo row]
        Tensor out = Tensor::uninitialised({batch * h, width});
        std::int64_t block = 0, first = 0;
        for (int r = 0; r < size(); ++r) {
            const std::int64_t n = halo.recv_counts[static_cast<std::size_t>(r)];
            for (std::int64_t b = 0; b < batch; ++b)
                std::copy_n(received.row(block + b * n), n * width, out.row(b * h + first));
            block += batch * n;
            first += n;
        }
        return out;
    }

    /// The adjoint of halo_exchange: each owner's rows of d_halo [batch * H, width] go back and
    /// are added into its share [batch * own_rows, width], rank by rank in rank order.
    Tensor halo_reduce(const Tensor& d_halo, const graphs::Halo& halo,
                       std::int64_t own_rows) const {
        BOREAS_RANGE("exchange");
        const std::int64_t width = d_halo.cols(), h = static_cast<std::int64_t>(halo.rows.size());
        std::vector<std::int64_t> to(static_cast<std::size_t>(size())), from(to.size());
        std::int64_t total = 0;
        for (int t = 0; t < size(); ++t) {
            const auto n =
                static_cast<std::int64_t>(halo.send_rows[static_cast<std::size_t>(t)].size());
            to[static_cast<std::size_t>(t)] =
                batch * halo.recv_counts[static_cast<std::size_t>(t)] * width;
            from[static_cast<std::size_t>(t)] = batch * n * width;
            total += n;
        }
        Tensor send = Tensor::uninitialised({std::max<std::int64_t>(1, batch * h), width});
        if (batch == 1) {
            std::copy_n(d_halo.data(), h * width, send.data());
        } else {
            std::int64_t block = 0, first = 0;
            for (int r = 0; r < size(); ++r) {
                const std::int64_t n = halo.recv_counts[static_cast<std::size_t>(r)];
                for (std::int64_t b = 0; b < batch; ++b)
                    std::copy_n(d_halo.row(b * h + first), n * width, send.row(block + b * n));
                block += batch * n;
                first += n;
            }
        }
        Tensor received = Tensor::uninitialised({std::max<std::int64_t>(1, batch * total), width});
        comm.alltoall(send.data(), to, received.data(), from);
        Tensor mine({batch * own_rows, width});
        std::int64_t at = 0;
        for (int t = 0; t < size(); ++t)
            for (std::int64_t b = 0; b < batch; ++b)
                for (const auto row : halo.send_rows[static_cast<std::size_t>(t)]) {
                    float* target = mine.row(b * own_rows + row);
                    const float* source = received.row(at++);
                    for (std::int64_t c = 0; c < width; ++c) target[c] += source[c];
                }
        return mine;
    }

    /// anemoi's shard_heads: own rows [batch * own, parts * C] with all heads (parts side by
    /// side, e.g. q|k|v) -> every row of the sequence [batch * seq, parts * C / S] with this
    /// rank's heads (columns [rank C / S, (rank + 1) C / S) of each part).
    Tensor rows_to_heads(const Tensor& own, std::int64_t seq, int parts) const {
        BOREAS_RANGE("exchange");
        const int ranks = size();
        const std::int64_t share = own.cols() / parts / ranks, c = share * ranks, rows = own.rows();
        Tensor send = Tensor::uninitialised({ranks * rows, parts * share});
#pragma omp parallel for schedule(static)
        for (std::int64_t r = 0; r < rows; ++r)
            for (int t = 0; t < ranks; ++t)
                for (int part = 0; part < parts; ++part)
                    std::copy_n(own.row(r) + part * c + t * share, share,
                                send.row(t * rows + r) + part * share);
        std::vector<std::int64_t> to(static_cast<std::size_t>(ranks), rows * parts * share),
            from = counts(seq);
        for (auto& count : from) count *= parts * share;
        Tensor heads = Tensor::uninitialised({batch * seq, parts * share});
        if (batch == 1) {
            comm.alltoall(send.data(), to, heads.data(), from);
            return heads;
        }
        Tensor received = Tensor::uninitialised({batch * seq, parts * share});
        comm.alltoall(send.data(), to, received.data(), from);
        for_blocks(seq,
                   [&](int, std::int64_t b, std::int64_t first, std::int64_t n, std::int64_t at) {
                       std::copy_n(received.row(at), n * parts * share, heads.row(b * seq + first));
                   });
        return heads;
    }

    /// The inverse of rows_to_heads: [batch * seq, parts * C / S] of this rank's heads -> own
    /// rows [batch * own, parts * C] with all heads.
    Tensor heads_to_rows(const Tensor& heads, std::int64_t seq, int parts) const {
        BOREAS_RANGE("exchange");
        const int ranks = size();
        const std::int64_t share = heads.cols() / parts, c = share * ranks;
        const auto own = range(seq, comm.rank());
        const std::int64_t rows = batch * (own.last - own.first);
        Tensor send = Tensor::uninitialised({batch * seq, parts * share});
        if (batch == 1) {
            std::copy_n(heads.data(), heads.numel(), send.data());
        } else {
            for_blocks(
                seq, [&](int, std::int64_t b, std::int64_t first, std::int64_t n, std::int64_t at) {
                    std::copy_n(heads.row(b * seq + first), n * parts * share, send.row(at));
                });
        }
        std::vector<std::int64_t> to = counts(seq),
                                  from(static_cast<std::size_t>(ranks), rows * parts * share);
        for (auto& count : to) count *= parts * share;
        Tensor received = Tensor::uninitialised({ranks * rows, parts * share});
        comm.alltoall(send.data(), to, received.data(), from);
        Tensor out = Tensor::uninitialised({rows, parts * c});
#pragma omp parallel for schedule(static)
        for (std::int64_t r = 0; r < rows; ++r)
            for (int t = 0; t < ranks; ++t)
                for (int part = 0; part < parts; ++part)
                    std::copy_n(received.row(t * rows + r) + part * share, share,
                                out.row(r) + part * c + t * share);
        return out;
    }
};

/// Row (b, j) of a node set's own share, j in the rank's range.
inline std::int64_t own_row(std::int64_t b, std::int64_t j, RowRange range) {
    return b * (range.last - range.first) + j - range.first;
}

}  // namespace boreas::model::detail
