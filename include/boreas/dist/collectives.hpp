#pragma once
/// The collectives that model sharding and data parallel need, behind one interface: on host
/// memory over MPI (dist::Communicator) or on device memory over NCCL
/// (backends::cuda::NcclCollectives, the cuda preset). Every sum adds the ranks' values in rank
/// order, so results are the same bits on every rank and do not depend on timing.
#include <cstdint>
#include <span>

namespace boreas::dist {

class Collectives {
  public:
    virtual ~Collectives() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    /// values[i] = sum over ranks of values[i], in rank order, on every rank.
    virtual void allreduce_sum(std::span<float> values) const = 0;
    /// Rank r contributes rows_per_rank[r] rows of `width` floats; every rank receives all of
    /// them in rank order.
    virtual void allgather_rows(const float* mine, float* all,
                                std::span<const std::int64_t> rows_per_rank,
                                std::int64_t width) const = 0;
    /// The adjoint of allgather_rows: each rank receives the rank-ordered sum of its rows.
    virtual void reduce_scatter_rows(const float* all, float* mine,
                                     std::span<const std::int64_t> rows_per_rank,
                                     std::int64_t width) const = 0;
    /// send_counts[r] values to rank r, recv_counts[r] values from rank r, packed in rank order.
    virtual void alltoall(const float* send, std::span<const std::int64_t> send_counts, float* recv,
                          std::span<const std::int64_t> recv_counts) const = 0;
};

}  // namespace boreas::dist
