// The backend registry, device names and the active backend (boreas/backends/backend.hpp).
#include "boreas/backends/backend.hpp"

#include <atomic>
#include <charconv>
#include <map>
#include <memory>
#include <mutex>

#include "boreas/core/error.hpp"

namespace boreas::backends {

namespace {

struct Registry {
    std::mutex mutex;
    std::map<DeviceKind, std::function<Backend&(int)>> factories;
};

Registry& registry() {
    static Registry r;
    return r;
}

std::atomic<Backend*> active_backend{nullptr};

const char* kind_name(DeviceKind kind) {
    return kind == DeviceKind::cpu ? "cpu" : "cuda";
}

}  // namespace

std::string Device::name() const {
    return kind == DeviceKind::cpu ? "cpu"
                                   : std::string(kind_name(kind)) + ":" + std::to_string(index);
}

Device parse_device(const std::string& text, const std::string& origin) {
    if (text == "cpu") return {};
    const std::string prefix = "cuda";
    if (text.compare(0, prefix.size(), prefix) == 0) {
        Device device{DeviceKind::cuda, 0};
        if (text.size() == prefix.size()) return device;
        const char* first = text.data() + prefix.size() + 1;
        const char* last = text.data() + text.size();
        const auto [end, error] = std::from_chars(first, last, device.index);
        if (text[prefix.size()] == ':' && first != last && error == std::errc() && end == last &&
            device.index >= 0)
            return device;
    }
    BOREAS_FAIL("{}: unknown device '{}' (expected cpu, cuda or cuda:N)", origin, text);
}

void register_backend(DeviceKind kind, std::function<Backend&(int)> factory) {
    const std::lock_guard lock(registry().mutex);
    registry().factories[kind] = std::move(factory);
}

std::vector<std::string> available_kinds() {
    const std::lock_guard lock(registry().mutex);
    std::vector<std::string> kinds{"cpu"};
    for (const auto& [kind, factory] : registry().factories)
        if (kind != DeviceKind::cpu) kinds.emplace_back(kind_name(kind));
    return kinds;
}

Backend& get(const Device& device) {
    if (device.kind == DeviceKind::cpu) return cpu();
    std::function<Backend&(int)> factory;
    {
        const std::lock_guard lock(registry().mutex);
        if (auto it = registry().factories.find(device.kind); it != registry().factories.end())
            factory = it->second;
    }
    BOREAS_CHECK(factory != nullptr,
                 "device {}: this build of Boreas has no {} backend (configure with the cuda "
                 "preset: cmake --preset cuda)",
                 device.name(), kind_name(device.kind));
    return factory(device.index);
}

Backend& active() {
    Backend* backend = active_backend.load(std::memory_order_relaxed);
    return backend ? *backend : cpu();
}

ActiveBackendScope::ActiveBackendScope(Backend& backend)
    : previous_(active_backend.exchange(&backend)), memory_(backend.tensor_memory()) {}

ActiveBackendScope::~ActiveBackendScope() {
    active_backend.store(previous_);
}

}  // namespace boreas::backends
