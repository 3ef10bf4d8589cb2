#include "boreas/train/data_parallel.hpp"

#include <algorithm>

#include "boreas/core/error.hpp"

namespace boreas::train {

ReplicaAverager::ReplicaAverager(const dist::Communicator& replicas)
    : group_(replicas), reducer_(replicas) {}

void ReplicaAverager::begin(model::Gradients& gradients) {
    names_.clear();
    index_.clear();
    sizes_.clear();
    data_.clear();
    for (const auto& [name, grad] : gradients.parameters) {
        index_[grad.data()] = names_.size();
        names_.push_back(name);
        sizes_.push_back(grad.numel());
        data_.push_back(grad.data());
    }
    if (!learned_) last_part_.assign(names_.size(), -1);
    BOREAS_CHECK(!learned_ || plan_.empty() ||
                     std::all_of(plan_.begin(), plan_.end(),
                                 [&](const auto& part) {
                                     return std::all_of(part.begin(), part.end(),
                                                        [&](auto i) { return i < names_.size(); });
                                 }),
                 "the gradients changed between steps");
    sent_.assign(names_.size(), 0);
    part_ = 0;
    pending_.clear();
    pending_bytes_ = 0;
    buckets_.clear();
    members_.clear();
}

void ReplicaAverager::touched(const Tensor& gradient) {
    const auto it = index_.find(gradient.data());
    if (it == index_.end()) return;  // not one of the step's parameter gradients
    if (!learned_) {
        last_part_[it->second] = part_;
        return;
    }
    BOREAS_CHECK(!sent_[it->second],
                 "the gradient of '{}' changed after its all-reduce started (part {} of the "
                 "backward): the backward's order differs from the first step's",
                 names_[it->second], part_);
}

void ReplicaAverager::part_done() {
    if (learned_ && static_cast<std::size_t>(part_) < plan_.size()) {
        for (const auto i : plan_[static_cast<std::size_t>(part_)]) {
            pending_.push_back(i);
            pending_bytes_ += static_cast<std::size_t>(sizes_[i]) * sizeof(float);
            sent_[i] = 1;
        }
        if (pending_bytes_ >= kBucketBytes) flush();
    }
    ++part_;
}

void ReplicaAverager::flush() {
    if (pending_.empty()) return;
    std::int64_t total = 0;
    for (const auto i : pending_) total += sizes_[i];
    auto& bucket = buckets_.emplace_back(static_cast<std::size_t>(total));
    std::int64_t at = 0;
    for (const auto i : pending_) {
        std::copy_n(data_[i], sizes_[i], bucket.begin() + at);
        at += sizes_[i];
    }
    members_.push_back(pending_);
    pending_.clear();
    pending_bytes_ = 0;
    reducer_.submit(std::span<float>(bucket));
}

ReplicaAverager::Timing ReplicaAverager::finish(StepResult& result) {
    result.gradients.observer = nullptr;
    Timing timing;
    timing.overlapped = learned_ && reducer_.overlapping() && !buckets_.empty();
    // What is left: every tensor not sent yet, in name order.
    for (std::size_t i = 0; i < names_.size(); ++i)
        if (!sent_[i]) {
            pending_.push_back(i);
            sent_[i] = 1;
        }
    flush();
    timing.exposed_seconds = reducer_.wait();
    const double reduced = reducer_.communicator().traffic().seconds;
    timing.reduce_seconds = reduced - reduced_seconds_;
    reduced_seconds_ = reduced;
    const float scale = 1.0f / static_cast<float>(group_.size());
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
        std::int64_t at = 0;
        for (const auto i : members_[b]) {
            float* g = result.gradients.parameters.at(names_[i]).data();
            for (std::int64_t k = 0; k < sizes_[i]; ++k) g[k] = buckets_[b][at + k] * scale;
            at += sizes_[i];
        }
        timing.bytes += 4.0 * static_cast<double>(buckets_[b].size());
    }
    timing.buckets = static_cast<int>(buckets_.size());
    buckets_.clear();
    members_.clear();
    double loss = result.loss;
    group_.allreduce_sum(std::span<double>(&loss, 1));
    result.loss = loss / group_.size();
    if (!learned_) {
        // Each tensor goes with the last part that touched it (never touched: with the rest).
        int parts = part_;
        plan_.assign(static_cast<std::size_t>(parts), {});
        for (std::size_t i = 0; i < names_.size(); ++i)
            if (last_part_[i] >= 0 && last_part_[i] < parts)
                plan_[static_cast<std::size_t>(last_part_[i])].push_back(i);
        learned_ = true;
    }
    return timing;
}

}  // namespace boreas::train
