#pragma once
/// dist::Collectives on device memory over NCCL (the cuda preset, where NCCL is found). Every
/// pointer is device memory of the current device; each call is enqueued on the stream given at
/// construction and returns without waiting. Sums stay rank-ordered as on MPI: a reduce-scatter
/// by grouped ncclSend/ncclRecv, each rank adding its segment rank by rank in a kernel, then an
/// all-gather; so a run on GPUs is decomposition-invariant the same way (NCCL's own
/// ncclAllReduce is not ordered).
#include <memory>

#include "boreas/dist/collectives.hpp"
#include "boreas/dist/communicator.hpp"

namespace boreas::backends::cuda {

class NcclCollectives final : public dist::Collectives {
  public:
    /// Collective over `group`: rank 0's ncclUniqueId reaches the others through MPI. `stream`
    /// is a cudaStream_t (null: the default stream).
    explicit NcclCollectives(const dist::Communicator& group, void* stream = nullptr);
    ~NcclCollectives() override;
    NcclCollectives(const NcclCollectives&) = delete;
    NcclCollectives& operator=(const NcclCollectives&) = delete;

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    void allreduce_sum(std::span<float> values) const override;
    void allgather_rows(const float* mine, float* all, std::span<const std::int64_t> rows_per_rank,
                        std::int64_t width) const override;
    void reduce_scatter_rows(const float* all, float* mine,
                             std::span<const std::int64_t> rows_per_rank,
                             std::int64_t width) const override;
    void alltoall(const float* send, std::span<const std::int64_t> send_counts, float* recv,
                  std::span<const std::int64_t> recv_counts) const override;

  private:
    struct State;
    std::unique_ptr<State> state_;
    int rank_ = 0, size_ = 1;
};

}  // namespace boreas::backends::cuda
