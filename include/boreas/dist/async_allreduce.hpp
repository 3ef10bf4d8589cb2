#pragma once
/// Rank-ordered sums of gradient buckets on a background thread, so a replica's all-reduce runs
/// while its backward goes on (PyTorch DDP's bucketed all-reduce). Buckets are summed in the
/// order they were submitted, each element in rank order (Communicator::allreduce_sum): the
/// result does not depend on timing, nor on how the values were cut into buckets.
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <thread>

#include "boreas/dist/communicator.hpp"

namespace boreas::dist {

class AsyncAllreduce {
  public:
    /// Collective over `group`: the sums run on a communicator of their own (a split of
    /// `group`), so they never interleave with the main thread's collectives. Without
    /// MPI_THREAD_MULTIPLE from the MPI library, submit() sums at once (no overlap).
    explicit AsyncAllreduce(const Communicator& group);
    ~AsyncAllreduce();
    AsyncAllreduce(const AsyncAllreduce&) = delete;
    AsyncAllreduce& operator=(const AsyncAllreduce&) = delete;

    /// Queues `values` (which must stay alive and untouched until wait()) for a sum over the
    /// group; returns at once.
    void submit(std::span<float> values);
    /// Waits until every submitted bucket is summed (rethrowing the thread's error); returns the
    /// seconds spent waiting: the communication the backward did not hide.
    double wait();
    bool overlapping() const { return overlapping_; }
    const Communicator& communicator() const { return comm_; }

  private:
    void run();
    Communicator comm_;
    bool overlapping_ = false;
    std::mutex mutex_;
    std::condition_variable work_, done_;
    std::deque<std::span<float>> queue_;
    int in_flight_ = 0;
    bool stopping_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace boreas::dist
