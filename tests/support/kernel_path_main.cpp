// main() of the test binaries that run once per kernel path (tests/CMakeLists.txt: KERNEL_PATHS):
// ctest sets BOREAS_ISA; a path this CPU cannot run is reported as skipped (exit code 77, which
// ctest's SKIP_RETURN_CODE turns into "Skipped" with this message), never silently passed.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "boreas/kernels/kernels.hpp"

int main(int argc, char** argv) {
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
