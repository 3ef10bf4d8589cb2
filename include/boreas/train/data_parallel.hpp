#pragma once
/// Data parallel: the replicas' gradients averaged while the backward goes on. The first step
/// learns in which part of the backward (decoder, each processor layer, processor, encoder) each
/// gradient tensor becomes final; from the second step on, each part's final tensors are packed
/// into buckets of about kBucketBytes and summed over the replicas on a background thread
/// (dist::AsyncAllreduce) while the backward goes on. Sums are element-wise in rank order: the
/// averaged gradients are the same bits as one all-reduce after the backward.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "boreas/dist/async_allreduce.hpp"
#include "boreas/model/model.hpp"
#include "boreas/train/loss.hpp"

namespace boreas::train {

class ReplicaAverager : public model::GradientObserver {
  public:
    static constexpr std::size_t kBucketBytes = std::size_t{4} << 20;

    /// `replicas`: the ranks holding the same shard of every replica (dist::Layout::shard_group);
    /// collective over them.
    explicit ReplicaAverager(const dist::Communicator& replicas);

    void begin(model::Gradients& gradients) override;
    void touched(const Tensor& gradient) override;
    void part_done() override;

    struct Timing {
        double exposed_seconds = 0;  ///< waited for the sums after the backward
        double reduce_seconds = 0;   ///< the sums' own time (on the background thread)
        double bytes = 0;            ///< gradient bytes summed per step
        int buckets = 0;
        bool overlapped = false;  ///< buckets were sent during the backward
    };
    /// After the step's backward: sends what is left, waits, and averages result's gradients
    /// and loss over the replicas.
    Timing finish(StepResult& result);

  private:
    void flush();

    const dist::Communicator& group_;
    dist::AsyncAllreduce reducer_;
    std::vector<std::string> names_;                       // the gradients, in name order
    std::unordered_map<const float*, std::size_t> index_;  // a gradient's data -> its index
    std::vector<std::int64_t> sizes_;
    std::vector<const float*> data_;
    bool learned_ = false;
    std::vector<int> last_part_;                  // learning: last part touching each
    std::vector<std::vector<std::size_t>> plan_;  // per part: the tensors final after it
    int part_ = 0;
    std::vector<char> sent_;
    std::vector<std::size_t> pending_;
    std::size_t pending_bytes_ = 0;
    std::vector<std::vector<float>> buckets_;
    std::vector<std::vector<std::size_t>> members_;
    double reduced_seconds_ = 0;  // the reducer's traffic seconds at the last finish
};

}  // namespace boreas::train
