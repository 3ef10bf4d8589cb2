#pragma once
// The GPU runtime behind one set of names, so that the CUDA sources build for HIP (LUMI's MI250X)
// by a build flag: no cuda* or hip* call outside this header. C++17, for device sources too;
// gpu_check.hpp turns a failed call into boreas::Error (host code, C++20).
#if defined(__HIP_PLATFORM_AMD__)
#include <hip/hip_runtime.h>
#else
#include <cuda_runtime.h>
#endif

#include <cstddef>

namespace boreas::gpu {

#if defined(__HIP_PLATFORM_AMD__)
using Stream = hipStream_t;
using Status = hipError_t;
inline constexpr Status kSuccess = hipSuccess;
inline const char* error_text(Status s) {
    return hipGetErrorString(s);
}
inline Status device_count(int* n) {
    return hipGetDeviceCount(n);
}
inline Status malloc_bytes(void** p, std::size_t bytes) {
    return hipMalloc(p, bytes);
}
inline Status free_bytes(void* p) {
    return hipFree(p);
}
inline Status copy_to_device(void* dst, const void* src, std::size_t bytes) {
    return hipMemcpy(dst, src, bytes, hipMemcpyHostToDevice);
}
inline Status copy_to_host(void* dst, const void* src, std::size_t bytes) {
    return hipMemcpy(dst, src, bytes, hipMemcpyDeviceToHost);
}
inline Status last_launch_status() {
    return hipGetLastError();
}
inline Status synchronize(Stream s) {
    return hipStreamSynchronize(s);
}
#else
using Stream = cudaStream_t;
using Status = cudaError_t;
inline constexpr Status kSuccess = cudaSuccess;
inline const char* error_text(Status s) {
    return cudaGetErrorString(s);
}
inline Status device_count(int* n) {
    return cudaGetDeviceCount(n);
}
inline Status malloc_bytes(void** p, std::size_t bytes) {
    return cudaMalloc(p, bytes);
}
inline Status free_bytes(void* p) {
    return cudaFree(p);
}
inline Status copy_to_device(void* dst, const void* src, std::size_t bytes) {
    return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
}
inline Status copy_to_host(void* dst, const void* src, std::size_t bytes) {
    return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
}
inline Status last_launch_status() {
    return cudaGetLastError();
}
inline Status synchronize(Stream s) {
    return cudaStreamSynchronize(s);
}
#endif

}  // namespace boreas::gpu
