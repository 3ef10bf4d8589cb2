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

/// Peak resident set size of this process so far, in bytes (getrusage ru_maxrss).
std::int64_t peak_rss_bytes();

}  // namespace boreas
