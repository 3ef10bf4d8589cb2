#pragma once
/// Phase timing. BOREAS_RANGE("encoder") times the enclosing scope into a tree of named ranges
/// ("processor/chunk0" when nested) that the benchmark harness reads after each step. It is meant
/// for phases (called from the main thread, outside OpenMP regions); when no recorder is enabled
/// a range costs one branch. A CUDA build also emits each range to the profiler (NVTX: Nsight
/// Systems shows the phase tree on the GPU timeline) through the range hooks.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace boreas::trace {

class Recorder {
  public:
    static Recorder& instance();

    void enable(bool on) { enabled_ = on; }
    bool enabled() const { return enabled_; }

    void begin(const char* name);
    void end();
    /// Seconds per range path accumulated since the last call, then cleared.
    std::map<std::string, double> take();

  private:
    struct Open {
        std::string path;
        std::chrono::steady_clock::time_point start;
    };
    bool enabled_ = false;
    std::vector<Open> stack_;
    std::map<std::string, double> totals_;
};

/// A profiler's annotations, called at each range's start and end (both set, or neither).
struct RangeHooks {
    void (*push)(const char* name) = nullptr;
    void (*pop)() = nullptr;
};
/// Installs `hooks` (the CUDA backend's NVTX ranges); empty hooks remove them. Not while ranges
/// are open.
void set_range_hooks(RangeHooks hooks);
namespace detail {
extern RangeHooks range_hooks;
}

class Range {
  public:
    explicit Range(const char* name)
        : active_(Recorder::instance().enabled()), hooked_(detail::range_hooks.push != nullptr) {
        if (active_) Recorder::instance().begin(name);
        if (hooked_) detail::range_hooks.push(name);
    }
    ~Range() {
        if (hooked_) detail::range_hooks.pop();
        if (active_) Recorder::instance().end();
    }
    Range(const Range&) = delete;
    Range& operator=(const Range&) = delete;

  private:
    bool active_;
    bool hooked_;
};

}  // namespace boreas::trace

#define BOREAS_RANGE_CONCAT_(a, b) a##b
#define BOREAS_RANGE_CONCAT(a, b) BOREAS_RANGE_CONCAT_(a, b)
#define BOREAS_RANGE(name) ::boreas::trace::Range BOREAS_RANGE_CONCAT(boreas_range_, __LINE__)(name)
