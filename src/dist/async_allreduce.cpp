#include "boreas/dist/async_allreduce.hpp"

#include <chrono>

namespace boreas::dist {

AsyncAllreduce::AsyncAllreduce(const Communicator& group)
    : comm_(group.split(0, group.rank())),
      overlapping_(group.size() > 1 && Communicator::thread_multiple()) {
    if (overlapping_) thread_ = std::thread([this] { run(); });
}

AsyncAllreduce::~AsyncAllreduce() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    work_.notify_all();
    thread_.join();
}

void AsyncAllreduce::submit(std::span<float> values) {
    if (!overlapping_) {
        comm_.allreduce_sum(values);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(values);
        ++in_flight_;
    }
    work_.notify_one();
}

double AsyncAllreduce::wait() {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return in_flight_ == 0; });
    if (error_) {
        auto error = error_;
        error_ = nullptr;
        std::rethrow_exception(error);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void AsyncAllreduce::run() {
    for (;;) {
        std::span<float> values;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, nothing left
            values = queue_.front();
            queue_.pop_front();
        }
        try {
            if (!error_) comm_.allreduce_sum(values);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            error_ = std::current_exception();
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --in_flight_;
        }
        done_.notify_all();
    }
}

}  // namespace boreas::dist
