#pragma once
/// Wall-clock timing and process memory high-water mark.

#include <chrono>
#include <cstdint>

namespace boreas {

class Stopwatch {
  public:
    Stopwatch() : start_(std::chrono::steady_clock::now()) {}
    void restart() { start_ = std::chrono::steady_clock::now(); }
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

  private:
    std::chrono::steady_clock::time_point start_;
};

/// Peak resident set size of this process since it started or since the last successful
/// reset_peak_rss(), in bytes: VmHWM of /proc/self/status, else getrusage's ru_maxrss.
std::int64_t peak_rss_bytes();

/// Restarts the peak at the current resident set (Linux: "5" into /proc/self/clear_refs), so
/// that memory a process used before (the roof measurement's buffers, say) is not reported as
/// the peak of what follows. Returns false where the kernel does not allow it; the peak then
/// keeps counting from the start.
bool reset_peak_rss();

/// Returns the heap's free pages to the system (glibc malloc_trim; a no-op elsewhere). The
/// binary keeps freed memory in its heap for reuse (apps/main.cpp); this is for memory that no
/// later step will reuse.
void release_free_heap();

}  // namespace boreas
