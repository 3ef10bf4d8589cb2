#include "boreas/backends/caching_pool.hpp"

#include <algorithm>
#include <utility>

#include "boreas/core/error.hpp"

namespace boreas::backends {

namespace {
constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kLargeGranule = std::size_t{2} << 20;
constexpr std::size_t kSmallLimit = std::size_t{1} << 20;

std::size_t round_up(std::size_t bytes, std::size_t granule) {
    return (bytes + granule - 1) / granule * granule;
}
}  // namespace

CachingPool::CachingPool(std::function<void*(std::size_t)> upstream_allocate,
                         std::function<void(void*, std::size_t)> upstream_free, std::string name)
    : upstream_allocate_(std::move(upstream_allocate)),
      upstream_free_(std::move(upstream_free)),
      name_(std::move(name)) {}

CachingPool::~CachingPool() {
    release_cached_locked();
}

std::size_t CachingPool::rounded(std::size_t bytes) {
    return bytes <= kSmallLimit ? round_up(bytes, kSmallGranule) : round_up(bytes, kLargeGranule);
}

void* CachingPool::allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    const std::size_t size = rounded(bytes);
    const std::lock_guard lock(mutex_);
    ++stats_.allocations;
    void* data = nullptr;
    if (auto it = free_.find(size); it != free_.end()) {
        data = it->second;
        free_.erase(it);
        stats_.cached -= size;
    } else {
        data = upstream_allocate_(size);
        if (data == nullptr && !free_.empty()) {
            release_cached_locked();
            data = upstream_allocate_(size);
        }
        BOREAS_CHECK(data != nullptr,
                     "{}: out of memory allocating {} bytes ({} in use by Boreas, peak {})", name_,
                     size, stats_.in_use, stats_.peak_in_use);
        ++stats_.upstream_allocations;
    }
    stats_.in_use += size;
    stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
    return data;
}

void CachingPool::deallocate(void* data, std::size_t bytes) {
    if (data == nullptr) return;
    const std::size_t size = rounded(bytes);
    const std::lock_guard lock(mutex_);
    free_.emplace(size, data);
    stats_.in_use -= size;
    stats_.cached += size;
}

void CachingPool::release_cached() {
    const std::lock_guard lock(mutex_);
    release_cached_locked();
}

void CachingPool::release_cached_locked() {
    for (auto& [size, data] : free_) upstream_free_(data, size);
    free_.clear();
    stats_.cached = 0;
}

MemoryStats CachingPool::stats() const {
    const std::lock_guard lock(mutex_);
    return stats_;
}

void CachingPool::reset_peak() {
    const std::lock_guard lock(mutex_);
    stats_.peak_in_use = stats_.in_use;
}

}  // namespace boreas::backends
