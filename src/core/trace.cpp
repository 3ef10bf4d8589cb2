#include "boreas/core/trace.hpp"

namespace boreas::trace {

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
    totals_[open.path] +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - open.start).count();
    stack_.pop_back();
}

std::map<std::string, double> Recorder::take() {
    auto out = std::move(totals_);
    totals_.clear();
    return out;
}

}  // namespace boreas::trace
