#include "boreas/core/trace.hpp"

#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"

namespace boreas::trace {

namespace detail {
RangeHooks range_hooks;
}

void set_range_hooks(RangeHooks hooks) {
    detail::range_hooks = (hooks.push && hooks.pop) ? hooks : RangeHooks{};
}

Recorder& Recorder::instance() {
    static Recorder recorder;
    return recorder;
}

void Recorder::begin(const char* name) {
    std::string path = stack_.empty() ? std::string(name) : stack_.back().path + "/" + name;
    stack_.push_back({std::move(path), std::chrono::steady_clock::now()});
}

void Recorder::end() {
    if (stack_.empty()) return;
    const auto& open = stack_.back();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - open.start).count();
    totals_[open.path] += seconds;
    // Where memory goes, phase by phase (BOREAS_LOG_LEVEL=debug): the peak so far, at each end.
    if (log::level() <= log::Level::debug)
        log::debug("range {}: {:.3f} s, peak resident {:.2f} GiB so far", open.path, seconds,
                   static_cast<double>(peak_rss_bytes()) / (1 << 30));
    stack_.pop_back();
}

std::map<std::string, double> Recorder::take() {
    auto out = std::move(totals_);
    totals_.clear();
    return out;
}

}  // namespace boreas::trace
