#include "boreas/backends/cuda/device_info.hpp"
#include "gpu_runtime.hpp"

namespace boreas::backends::cuda {

nlohmann::ordered_json device_report() {
    nlohmann::ordered_json report;
    report["built"] = true;
    int runtime = 0, driver = 0;
    (void)gpu::runtime_version(&runtime);
    (void)gpu::driver_version(&driver);
    report["runtime_version"] = runtime;
    report["driver_version"] = driver;
    int count = 0;
    const gpu::Status status = gpu::device_count(&count);
    if (status != gpu::kSuccess) {
        report["devices"] = nlohmann::ordered_json::array();
        report["status"] = gpu::error_text(status);
        return report;
    }
    report["status"] = "ok";
    for (int device = 0; device < count; ++device) {
        gpu::DeviceProperties properties;
        if (gpu::device_properties(device, &properties) != gpu::kSuccess) continue;
        report["devices"].push_back({{"index", device},
                                     {"name", properties.name},
                                     {"compute_capability", std::to_string(properties.major) + "." +
                                                                std::to_string(properties.minor)},
                                     {"memory_bytes", properties.memory_bytes},
                                     {"multiprocessors", properties.multiprocessors}});
    }
    return report;
}

}  // namespace boreas::backends::cuda
