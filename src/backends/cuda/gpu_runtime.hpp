#pragma once
// The GPU runtime behind one set of names, so that the CUDA sources build for HIP (LUMI's MI250X)
// by a build flag: no cuda* or hip* name outside this header (tests/backends/gpu_names_test.sh
// checks). HIP mirrors the CUDA runtime's names with a hip prefix, so each call is written once
// through BOREAS_GPU_NAME. C++17, for device sources too; gpu_check.hpp turns a failed call into
// boreas::Error (host code, C++20).
#if defined(__HIP_PLATFORM_AMD__) || defined(__HIP__)
#include <hip/hip_runtime.h>
#define BOREAS_GPU_HIP 1
#define BOREAS_GPU_NAME(name) hip##name
#else
#include <cuda_runtime.h>
#define BOREAS_GPU_NAME(name) cuda##name
#endif

#include <cstddef>
#include <string>

namespace boreas::gpu {

#if defined(__CUDACC__) || defined(__HIP__)
/// v from the lane whose index differs from this one's by `offset` (a butterfly), within groups
/// of 32 lanes: a CUDA warp, half an AMD wavefront of 64, so the kernels' 32-lane warps work on
/// both. Device code.
__device__ inline float shfl_xor(float v, int offset) {
#if defined(BOREAS_GPU_HIP)
    return __shfl_xor(v, offset, 32);
#else
    return __shfl_xor_sync(0xffffffffu, v, offset);
#endif
}
#endif

using Stream = BOREAS_GPU_NAME(Stream_t);
using Status = BOREAS_GPU_NAME(Error_t);
inline constexpr Status kSuccess = BOREAS_GPU_NAME(Success);

inline const char* error_text(Status s) {
    return BOREAS_GPU_NAME(GetErrorString)(s);
}
inline Status runtime_version(int* version) {
    return BOREAS_GPU_NAME(RuntimeGetVersion)(version);
}
inline Status driver_version(int* version) {
    return BOREAS_GPU_NAME(DriverGetVersion)(version);
}
inline Status device_count(int* n) {
    return BOREAS_GPU_NAME(GetDeviceCount)(n);
}

/// What `boreas info` reports of a device.
struct DeviceProperties {
    std::string name;
    int major = 0, minor = 0;
    std::size_t memory_bytes = 0;
    int multiprocessors = 0;
};
inline Status device_properties(int device, DeviceProperties* out) {
#if defined(BOREAS_GPU_HIP)
    hipDeviceProp_t p{};
#else
    cudaDeviceProp p{};
#endif
    const Status status = BOREAS_GPU_NAME(GetDeviceProperties)(&p, device);
    if (status == kSuccess)
        *out = {p.name, p.major, p.minor, static_cast<std::size_t>(p.totalGlobalMem),
                p.multiProcessorCount};
    return status;
}

inline Status malloc_bytes(void** p, std::size_t bytes) {
    return BOREAS_GPU_NAME(Malloc)(p, bytes);
}
inline Status free_bytes(void* p) {
    return BOREAS_GPU_NAME(Free)(p);
}
/// Stream-ordered allocation from the device's pool (no synchronising malloc per call).
inline Status malloc_async(void** p, std::size_t bytes, Stream s) {
    return BOREAS_GPU_NAME(MallocAsync)(p, bytes, s);
}
inline Status free_async(void* p, Stream s) {
    return BOREAS_GPU_NAME(FreeAsync)(p, s);
}
inline Status copy_to_device(void* dst, const void* src, std::size_t bytes) {
    return BOREAS_GPU_NAME(Memcpy)(dst, src, bytes, BOREAS_GPU_NAME(MemcpyHostToDevice));
}
inline Status copy_to_host(void* dst, const void* src, std::size_t bytes) {
    return BOREAS_GPU_NAME(Memcpy)(dst, src, bytes, BOREAS_GPU_NAME(MemcpyDeviceToHost));
}
inline Status copy_on_device_async(void* dst, const void* src, std::size_t bytes, Stream s) {
    return BOREAS_GPU_NAME(MemcpyAsync)(dst, src, bytes, BOREAS_GPU_NAME(MemcpyDeviceToDevice), s);
}
inline Status last_launch_status() {
    return BOREAS_GPU_NAME(GetLastError)();
}
inline Status synchronize(Stream s) {
    return BOREAS_GPU_NAME(StreamSynchronize)(s);
}
inline Status synchronize_device() {
    return BOREAS_GPU_NAME(DeviceSynchronize)();
}
inline Status set_device(int device) {
    return BOREAS_GPU_NAME(SetDevice)(device);
}
inline Status get_device(int* device) {
    return BOREAS_GPU_NAME(GetDevice)(device);
}
/// Memory the host and the device both address (pages migrate on touch): the model's tensors,
/// which its element-wise loops still read and write on the host.
inline Status malloc_managed(void** p, std::size_t bytes) {
    return BOREAS_GPU_NAME(MallocManaged)(p, bytes, BOREAS_GPU_NAME(MemAttachGlobal));
}
/// Free and total device memory.
inline Status memory_info(std::size_t* free_bytes_out, std::size_t* total_bytes) {
    return BOREAS_GPU_NAME(MemGetInfo)(free_bytes_out, total_bytes);
}
inline Status create_stream(Stream* s) {
    return BOREAS_GPU_NAME(StreamCreateWithFlags)(s, BOREAS_GPU_NAME(StreamNonBlocking));
}
inline Status destroy_stream(Stream s) {
    return BOREAS_GPU_NAME(StreamDestroy)(s);
}
inline Status copy_async(void* dst, const void* src, std::size_t bytes, Stream s) {
    return BOREAS_GPU_NAME(MemcpyAsync)(dst, src, bytes, BOREAS_GPU_NAME(MemcpyDefault), s);
}
inline Status memset_async(void* p, int value, std::size_t bytes, Stream s) {
    return BOREAS_GPU_NAME(MemsetAsync)(p, value, bytes, s);
}
/// Whether the device's kernels can read `p` as it is: device or managed memory (true), or
/// plain host memory that must be copied over first (false). Clears the error a plain host
/// pointer leaves on older runtimes.
inline bool device_addressable(const void* p) {
#if defined(BOREAS_GPU_HIP)
    hipPointerAttribute_t attributes{};
    if (hipPointerGetAttributes(&attributes, p) != kSuccess) {
        (void)hipGetLastError();
        return false;
    }
#if HIP_VERSION_MAJOR >= 6
    return attributes.type == hipMemoryTypeDevice || attributes.type == hipMemoryTypeManaged;
#else
    return attributes.memoryType == hipMemoryTypeDevice || attributes.isManaged;
#endif
#else
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, p) != kSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
#endif
}

/// Stream-ordered timing.
using Event = BOREAS_GPU_NAME(Event_t);
inline Status create_event(Event* e) {
    return BOREAS_GPU_NAME(EventCreate)(e);
}
inline Status destroy_event(Event e) {
    return BOREAS_GPU_NAME(EventDestroy)(e);
}
inline Status record_event(Event e, Stream s) {
    return BOREAS_GPU_NAME(EventRecord)(e, s);
}
inline Status event_seconds(Event start, Event stop, double* seconds) {
    float ms = 0;
    const Status status = BOREAS_GPU_NAME(EventElapsedTime)(&ms, start, stop);
    *seconds = static_cast<double>(ms) * 1e-3;
    return status;
}

}  // namespace boreas::gpu
