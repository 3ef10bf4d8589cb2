// main() of the test binaries that run once per kernel path (tests/CMakeLists.txt: KERNEL_PATHS):
// ctest sets BOREAS_ISA; a path this CPU cannot run is reported as skipped (exit code 77, which
// ctest's SKIP_RETURN_CODE turns into "Skipped" with this message), never silently passed. The
// NAME@cuda tests of a CUDA build set BOREAS_TEST_DEVICE=cuda instead: the reference tests' models
// then run on the GPU (skipped likewise where there is none).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "boreas/backends/backend.hpp"
#include "boreas/kernels/kernels.hpp"

#ifdef BOREAS_WITH_CUDA
#include "boreas/backends/cuda/backend.hpp"
#include "boreas/backends/cuda/device_info.hpp"
#endif

int main(int argc, char** argv) {
    if (const char* device = std::getenv("BOREAS_TEST_DEVICE");
        device != nullptr && *device != '\0' && std::string(device) != "cpu") {
#ifdef BOREAS_WITH_CUDA
        boreas::backends::cuda::register_backend();
        const auto report = boreas::backends::cuda::device_report();
        if (report["devices"].empty()) {
            std::printf("SKIPPED: device %s: no GPU (%s)\n", device,
                        report["status"].get<std::string>().c_str());
            return 77;
        }
#else
        std::printf("SKIPPED: device %s: this build has no CUDA backend\n", device);
        return 77;
#endif
        std::printf("device: %s\n", device);
    }
    if (const char* path = std::getenv("BOREAS_ISA"); path != nullptr && *path != '\0') {
        std::string why;
        if (!boreas::kernels::cpu::path_supported(path, &why)) {
            std::printf("SKIPPED: kernel path %s: %s\n", path, why.c_str());
            return 77;
        }
    }
    testing::InitGoogleTest(&argc, argv);
    std::printf("kernel path: %s\n", boreas::kernels::cpu::active_path().c_str());
    return RUN_ALL_TESTS();
}
