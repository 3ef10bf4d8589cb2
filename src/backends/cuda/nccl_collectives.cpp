#include "boreas/backends/cuda/nccl_collectives.hpp"

#include <nccl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "boreas/core/error.hpp"
#include "gpu_check.hpp"
#include "rank_order_sum.hpp"

namespace boreas::backends::cuda {

namespace {

void check_nccl(ncclResult_t code, const char* call) {
    BOREAS_CHECK(code == ncclSuccess, "{} failed: {}", call, ncclGetErrorString(code));
}

}  // namespace

struct NcclCollectives::State {
    ncclComm_t comm = nullptr;
    gpu::Stream stream = nullptr;

    /// A device scratch buffer from the stream-ordered pool (no synchronising malloc per call).
    float* scratch(std::size_t values) const {
        void* p = nullptr;
        BOREAS_GPU_CHECK(gpu::malloc_async(&p, values * sizeof(float), stream));
        return static_cast<float*>(p);
    }
    void release(float* p) const { BOREAS_GPU_CHECK(gpu::free_async(p, stream)); }
    void sum(const float* blocks, int ranks, std::int64_t n, float* out) const {
        if (n == 0) return;
        BOREAS_GPU_CHECK(launch_sum_in_rank_order(blocks, ranks, n, out, stream));
    }
};

NcclCollectives::NcclCollectives(const dist::Communicator& group, void* stream)
    : state_(std::make_unique<State>()), rank_(group.rank()), size_(group.size()) {
    state_->stream = static_cast<gpu::Stream>(stream);
    ncclUniqueId id{};
    if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    group.broadcast_bytes(&id, sizeof(id), 0);
    check_nccl(ncclCommInitRank(&state_->comm, size_, id, rank_), "ncclCommInitRank");
}

NcclCollectives::~NcclCollectives() {
    if (state_ && state_->comm) ncclCommDestroy(state_->comm);
}

void NcclCollectives::allreduce_sum(std::span<float> values) const {
    if (size_ <= 1 || values.empty()) return;
    const std::size_t ranks = static_cast<std::size_t>(size_);
    const std::size_t segment = (values.size() + ranks - 1) / ranks;
    float* gathered = state_->scratch(segment * ranks);
    float* summed = state_->scratch(segment * ranks);
    // Reduce-scatter: rank r collects every rank's segment r (the last one may be short).
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (std::size_t r = 0; r < ranks; ++r) {
        const std::size_t first = r * segment;
        const std::size_t count =
            first < values.size() ? std::min(segment, values.size() - first) : 0;
        if (count > 0)
            check_nccl(ncclSend(values.data() + first, count, ncclFloat, static_cast<int>(r),
                                state_->comm, state_->stream),
                       "ncclSend");
        const std::size_t mine = static_cast<std::size_t>(rank_) * segment;
        const std::size_t expected =
            mine < values.size() ? std::min(segment, values.size() - mine) : 0;
        if (expected > 0)
            check_nccl(ncclRecv(gathered + r * segment, expected, ncclFloat, static_cast<int>(r),
                                state_->comm, state_->stream),
                       "ncclRecv");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    state_->sum(gathered, size_, static_cast<std::int64_t>(segment), summed);
    // All-gather of the summed segments (padded to equal size).
    check_nccl(ncclAllGather(summed, gathered, segment, ncclFloat, state_->comm, state_->stream),
               "ncclAllGather");
    BOREAS_GPU_CHECK(gpu::copy_on_device_async(values.data(), gathered,
                                               values.size() * sizeof(float), state_->stream));
    state_->release(summed);
    state_->release(gathered);
}

void NcclCollectives::allgather_rows(const float* mine, float* all,
                                     std::span<const std::int64_t> rows_per_rank,
                                     std::int64_t width) const {
    BOREAS_CHECK(static_cast<int>(rows_per_rank.size()) == size_,
                 "allgather_rows: {} row counts for {} ranks", rows_per_rank.size(), size_);
    std::int64_t offset = 0;
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
        const auto count =
            static_cast<std::size_t>(rows_per_rank[static_cast<std::size_t>(r)] * width);
        const auto own =
            static_cast<std::size_t>(rows_per_rank[static_cast<std::size_t>(rank_)] * width);
        if (r == rank_) {
            BOREAS_GPU_CHECK(gpu::copy_on_device_async(all + offset * width, mine,
                                                       own * sizeof(float), state_->stream));
        } else {
            if (own > 0)
                check_nccl(ncclSend(mine, own, ncclFloat, r, state_->comm, state_->stream),
                           "ncclSend");
            if (count > 0)
                check_nccl(ncclRecv(all + offset * width, count, ncclFloat, r, state_->comm,
                                    state_->stream),
                           "ncclRecv");
        }
        offset += rows_per_rank[static_cast<std::size_t>(r)];
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

void NcclCollectives::reduce_scatter_rows(const float* all, float* mine,
                                          std::span<const std::int64_t> rows_per_rank,
                                          std::int64_t width) const {
    BOREAS_CHECK(static_cast<int>(rows_per_rank.size()) == size_,
                 "reduce_scatter_rows: {} row counts for {} ranks", rows_per_rank.size(), size_);
    const std::int64_t own = rows_per_rank[static_cast<std::size_t>(rank_)] * width;
    float* received = state_->scratch(static_cast<std::size_t>(own * size_));
    std::int64_t offset = 0;
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
        const std::int64_t count = rows_per_rank[static_cast<std::size_t>(r)] * width;
        if (r == rank_) {
            BOREAS_GPU_CHECK(gpu::copy_on_device_async(
                received + r * own, all + offset * width,
                static_cast<std::size_t>(own) * sizeof(float), state_->stream));
        } else {
            if (count > 0)
                check_nccl(ncclSend(all + offset * width, static_cast<std::size_t>(count),
                                    ncclFloat, r, state_->comm, state_->stream),
                           "ncclSend");
            if (own > 0)
                check_nccl(ncclRecv(received + r * own, static_cast<std::size_t>(own), ncclFloat, r,
                                    state_->comm, state_->stream),
                           "ncclRecv");
        }
        offset += rows_per_rank[static_cast<std::size_t>(r)];
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    state_->sum(received, size_, own, mine);
    state_->release(received);
}

void NcclCollectives::alltoall(const float* send, std::span<const std::int64_t> send_counts,
                               float* recv, std::span<const std::int64_t> recv_counts) const {
    BOREAS_CHECK(static_cast<int>(send_counts.size()) == size_ &&
                     static_cast<int>(recv_counts.size()) == size_,
                 "alltoall: {} send and {} receive counts for {} ranks", send_counts.size(),
                 recv_counts.size(), size_);
    std::int64_t sent = 0, received = 0;
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
        const auto s = static_cast<std::size_t>(send_counts[static_cast<std::size_t>(r)]);
        const auto c = static_cast<std::size_t>(recv_counts[static_cast<std::size_t>(r)]);
        if (r == rank_) {
            BOREAS_GPU_CHECK(gpu::copy_on_device_async(recv + received, send + sent,
                                                       s * sizeof(float), state_->stream));
        } else {
            if (s > 0)
                check_nccl(ncclSend(send + sent, s, ncclFloat, r, state_->comm, state_->stream),
                           "ncclSend");
            if (c > 0)
                check_nccl(ncclRecv(recv + received, c, ncclFloat, r, state_->comm, state_->stream),
                           "ncclRecv");
        }
        sent += send_counts[static_cast<std::size_t>(r)];
        received += recv_counts[static_cast<std::size_t>(r)];
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

}  // namespace boreas::backends::cuda
