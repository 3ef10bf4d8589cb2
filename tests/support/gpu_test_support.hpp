#pragma once
// Shared by the GPU kernel tests: device copies of host arrays, bf16 rounding as the CPU's, and
// the skip (exit 77, ctest: skipped with the reason) where no GPU is present.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gpu_check.hpp"

namespace boreas::testing_support {

/// Device memory holding a copy of `host`, freed on scope exit.
template <typename T>
class DeviceArray {
  public:
    explicit DeviceArray(const std::vector<T>& host) : size_(host.size()) {
        if (size_ == 0) return;
        BOREAS_GPU_CHECK(gpu::malloc_bytes(&data_, bytes()));
        BOREAS_GPU_CHECK(gpu::copy_to_device(data_, host.data(), bytes()));
    }
    ~DeviceArray() {
        if (data_) (void)gpu::free_bytes(data_);
    }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
    T* get() const { return static_cast<T*>(data_); }
    std::vector<T> to_host() const {
        BOREAS_GPU_CHECK(gpu::synchronize(nullptr));
        std::vector<T> host(size_);
        if (size_) BOREAS_GPU_CHECK(gpu::copy_to_host(host.data(), data_, bytes()));
        return host;
    }

  private:
    std::size_t bytes() const { return size_ * sizeof(T); }
    std::size_t size_;
    void* data_ = nullptr;
};

/// Round to nearest even (finite inputs), as the CPU kernels' bf16 paths.
inline std::uint16_t to_bf16(float x) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, 4);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<std::uint16_t>(bits >> 16);
}

/// main() of a GPU test: exit 77 with the reason where no GPU is present.
inline int run_gpu_tests(int argc, char** argv) {
    int devices = 0;
    const auto status = gpu::device_count(&devices);
    if (status != gpu::kSuccess || devices == 0) {
        std::printf("SKIPPED: no GPU (%s)\n",
                    status != gpu::kSuccess ? gpu::error_text(status) : "no device");
        return 77;
    }
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}

}  // namespace boreas::testing_support
