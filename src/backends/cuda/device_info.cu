#include <cuda_runtime.h>

#include "boreas/backends/cuda/device_info.hpp"

namespace boreas::backends::cuda {

nlohmann::ordered_json device_report() {
    nlohmann::ordered_json report;
    report["built"] = true;
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    report["runtime_version"] = runtime;
    report["driver_version"] = driver;
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        report["devices"] = nlohmann::ordered_json::array();
        report["status"] = cudaGetErrorString(status);
        return report;
    }
    report["status"] = "ok";
    for (int device = 0; device < count; ++device) {
        cudaDeviceProp properties{};
        if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) continue;
        report["devices"].push_back(
            {{"index", device},
             {"name", properties.name},
             {"compute_capability", std::to_string(properties.major) + "." +
                                        std::to_string(properties.minor)},
             {"memory_bytes", properties.totalGlobalMem},
             {"multiprocessors", properties.multiProcessorCount}});
    }
    return report;
}

}  // namespace boreas::backends::cuda
