#pragma once
/// A caching allocator over a device allocator (PyTorch's CUDA caching allocator, simplified): a
/// freed block goes to a free list of its rounded size and serves the next request of that size,
/// so a model's forward, which frees and asks for the same shapes layer after layer and step
/// after step, calls the device allocator (cudaMalloc: a device synchronisation, about a
/// millisecond) only while it warms up. Sizes round up to 512 bytes below 1 MiB and to 2 MiB
/// above, so blocks of nearby sizes are shared. When the device allocator fails, the cached
/// blocks are released and the request retried once. Thread-safe.

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "boreas/backends/backend.hpp"

namespace boreas::backends {

class CachingPool {
  public:
    /// `upstream_allocate(bytes)` returns memory or null when out of memory; `upstream_free`
    /// returns it (with the bytes it was asked for). `name` (a device) goes into the
    /// out-of-memory error.
    CachingPool(std::function<void*(std::size_t)> upstream_allocate,
                std::function<void(void*, std::size_t)> upstream_free, std::string name);
    ~CachingPool();  ///< returns every cached block (live ones are the owners' to free first)
    CachingPool(const CachingPool&) = delete;
    CachingPool& operator=(const CachingPool&) = delete;

    /// A block of at least `bytes` (null for 0); an error naming the device, the request and
    /// what the pool holds when the device has no room even after the cache is emptied.
    void* allocate(std::size_t bytes);
    /// Takes back a block from allocate with the same `bytes`.
    void deallocate(void* data, std::size_t bytes);
    /// Returns every cached block to the device allocator.
    void release_cached();
    MemoryStats stats() const;
    void reset_peak();

    /// The size a request of `bytes` is served with.
    static std::size_t rounded(std::size_t bytes);

  private:
    std::function<void*(std::size_t)> upstream_allocate_;
    std::function<void(void*, std::size_t)> upstream_free_;
    std::string name_;
    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_;  ///< rounded size -> cached block
    MemoryStats stats_;
    void release_cached_locked();
};

}  // namespace boreas::backends
