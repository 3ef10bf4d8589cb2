// The GPU roof for `boreas roof` and the bench's per-phase roofline on a GPU: the Linear kernel's
// GEMM rate (cuBLASLt, fp32 and bf16 with fp32 sums) at a square size, and the memory bandwidth of
// a device-to-device copy (read + write bytes), each the best of a few timed runs (events).
#include <algorithm>
#include <string>

#include "boreas/backends/cuda/backend.hpp"
#include "boreas/backends/cuda/kernels.hpp"
#include "gpu_check.hpp"

namespace boreas::backends::cuda {

namespace {

struct DeviceBuffer {
    void* data = nullptr;
    explicit DeviceBuffer(std::size_t bytes) { BOREAS_GPU_CHECK(gpu::malloc_bytes(&data, bytes)); }
    ~DeviceBuffer() { (void)gpu::free_bytes(data); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    template <typename T>
    T* as() {
        return static_cast<T*>(data);
    }
};

/// Best seconds of `runs` runs of `work` on `stream`, after one warm-up.
template <typename Work>
double best_seconds(gpu::Stream stream, int runs, Work&& work) {
    gpu::Event start = nullptr, stop = nullptr;
    BOREAS_GPU_CHECK(gpu::create_event(&start));
    BOREAS_GPU_CHECK(gpu::create_event(&stop));
    work();
    double best = 1e30;
    for (int r = 0; r < runs; ++r) {
        BOREAS_GPU_CHECK(gpu::record_event(start, stream));
        work();
        BOREAS_GPU_CHECK(gpu::record_event(stop, stream));
        BOREAS_GPU_CHECK(gpu::synchronize(stream));
        double seconds = 0;
        BOREAS_GPU_CHECK(gpu::event_seconds(start, stop, &seconds));
        best = std::min(best, seconds);
    }
    (void)gpu::destroy_event(start);
    (void)gpu::destroy_event(stop);
    return best;
}

}  // namespace

nlohmann::ordered_json measure_roof(int index) {
    BOREAS_GPU_CHECK(gpu::set_device(index));
    gpu::DeviceProperties properties;
    BOREAS_GPU_CHECK(gpu::device_properties(index, &properties));
    gpu::Stream stream = nullptr;
    BOREAS_GPU_CHECK(gpu::create_stream(&stream));
    nlohmann::ordered_json roof;
    roof["device"] = "cuda:" + std::to_string(index);
    roof["name"] = properties.name;
    constexpr std::int64_t n = 8192;
    const double flops = 2.0 * static_cast<double>(n) * n * n;
    {
        DeviceBuffer x(n * n * sizeof(float)), w(n * n * sizeof(float)), y(n * n * sizeof(float)),
            w16(n * n * sizeof(std::uint16_t));
        BOREAS_GPU_CHECK(gpu::memset_async(x.data, 0, n * n * sizeof(float), stream));
        BOREAS_GPU_CHECK(gpu::memset_async(w.data, 0, n * n * sizeof(float), stream));
        BOREAS_GPU_CHECK(gpu::memset_async(w16.data, 0, n * n * sizeof(std::uint16_t), stream));
        kernels::LinearParams p;
        p.x = x.as<float>();
        p.weight = w.as<float>();
        p.y = y.as<float>();
        p.rows = p.in = p.out = n;
        const double fp32 = best_seconds(stream, 5, [&] { kernels::cuda::linear(p, stream); });
        p.bf16 = true;
        p.weight_bf16 = w16.as<std::uint16_t>();
        const double bf16 = best_seconds(stream, 5, [&] { kernels::cuda::linear(p, stream); });
        roof["gemm_size"] = n;
        roof["fp32_gemm_gflops"] = flops / fp32 * 1e-9;
        roof["bf16_gemm_gflops"] = flops / bf16 * 1e-9;
        roof["gemm_method"] = "the Linear kernel (cuBLASLt, fp32 sums; bf16 includes rounding x)";
    }
    {
        constexpr std::size_t bytes = std::size_t{1} << 30;
        DeviceBuffer a(bytes), b(bytes);
        BOREAS_GPU_CHECK(gpu::memset_async(a.data, 1, bytes, stream));
        const double seconds = best_seconds(stream, 5, [&] {
            BOREAS_GPU_CHECK(gpu::copy_on_device_async(b.data, a.data, bytes, stream));
        });
        roof["memory_gbs"] = 2.0 * static_cast<double>(bytes) / seconds * 1e-9;
        roof["memory_method"] = "device-to-device copy of 1 GiB (read + write bytes)";
    }
    (void)gpu::destroy_stream(stream);
    return roof;
}

}  // namespace boreas::backends::cuda
