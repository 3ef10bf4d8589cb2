#pragma once
/// The backend interface: what the model, training and benchmark code call to run kernels and
/// hold memory, whatever the device. A backend implements the kernel set of
/// boreas/kernels/kernels.hpp (forward and backward, same parameter structs, every pointer in
/// memory the backend's kernels can read: host memory for the CPU backend, device or managed
/// memory for a GPU backend) and owns an allocator and a stream. The CPU backend is always built
/// and is the reference; the CUDA backend registers itself where it is built (boreas::backend_cuda,
/// backends::cuda::register_backend). docs/architecture.md says how a backend is added.
///
/// Model code does not name a backend: it calls `backends::active()`, which a model's forward,
/// training forward and backward set to its device's backend for their duration
/// (ActiveBackendScope). One device per process at a time.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "boreas/core/tensor.hpp"
#include "boreas/kernels/kernels.hpp"

namespace boreas::backends {

enum class DeviceKind { cpu, cuda };

/// A device: "cpu", or "cuda" / "cuda:N" (N the CUDA device ordinal, 0 by default).
struct Device {
    DeviceKind kind = DeviceKind::cpu;
    int index = 0;
    /// "cpu", "cuda:N".
    std::string name() const;
    bool operator==(const Device&) const = default;
};

/// Parses "cpu", "cuda" or "cuda:N"; `origin` (a flag, a key) names where the text came from in
/// the one-line error.
Device parse_device(const std::string& text, const std::string& origin);

/// Bytes a backend's allocator holds: in use by live allocations, held in its cache for reuse,
/// and the peak in use since the last reset_peak.
struct MemoryStats {
    std::size_t in_use = 0, cached = 0, peak_in_use = 0;
    std::size_t allocations = 0;           ///< requests served since start (cache hits included)
    std::size_t upstream_allocations = 0;  ///< of which the device allocator was asked for
};

class Backend {
  public:
    virtual ~Backend() = default;

    virtual Device device() const = 0;
    /// For result documents: {"device", ...backend-specific: kernel path, device name, which
    /// kernels run on the device}.
    virtual nlohmann::ordered_json describe() const = 0;

    // Memory: `allocate` returns memory the backend's kernels read and write (aligned to 256
    // bytes); `deallocate` takes the same size back. Copies between host and this memory.
    virtual void* allocate(std::size_t bytes) = 0;
    virtual void deallocate(void* data, std::size_t bytes) = 0;
    virtual void copy_to_device(void* device, const void* host, std::size_t bytes) = 0;
    virtual void copy_to_host(void* host, const void* device, std::size_t bytes) = 0;
    virtual MemoryStats memory_stats() const = 0;
    /// Where a model's tensors live on this backend (TensorMemoryScope): null (the host heap)
    /// for the CPU; host-addressable device memory (CUDA managed memory) for a GPU, so that the
    /// model's element-wise loops still run on the host while its kernels run on the device.
    virtual MemoryResource* tensor_memory() = 0;
    virtual void reset_peak_memory() = 0;
    /// Waits for every kernel queued on the backend's stream (the CPU's return when done).
    virtual void synchronize() = 0;
    /// The device's roof for the per-phase roofline: {"fp32_gemm_gflops", "bf16_gemm_gflops",
    /// "memory_gbs", ...} measured now; null for the CPU, whose roof bench::measure_roof
    /// measures (FMA, BF16 dot, SGEMM, triad).
    virtual nlohmann::ordered_json measure_roof() { return nullptr; }

    // The kernel set (kernels.hpp gives each contract).
    virtual void fields_to_rows(const kernels::FieldsToRowsParams& p) = 0;
    virtual void copy_rows(const kernels::CopyRowsParams& p) = 0;
    virtual void linear(const kernels::LinearParams& p) = 0;
    virtual void mlp(const kernels::MlpParams& p) = 0;
    virtual void layer_norm(const kernels::LayerNormParams& p) = 0;
    virtual void gelu(float* x, std::int64_t n) = 0;
    virtual void graph_attention(const kernels::GraphAttentionParams& p) = 0;
    virtual void window_attention(const kernels::WindowAttentionParams& p) = 0;
    virtual void linear_backward(const kernels::LinearBackwardParams& p) = 0;
    virtual void layer_norm_backward(const kernels::LayerNormBackwardParams& p) = 0;
    virtual void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) = 0;
    virtual void graph_attention_backward(const kernels::GraphAttentionBackwardParams& p) = 0;
    virtual void graph_attention_backward_destinations(
        const kernels::GraphAttentionBackwardParams& p,
        kernels::GraphAttentionBackwardScratch& scratch) = 0;
    virtual void graph_attention_backward_sources(
        const kernels::GraphAttentionBackwardParams& p,
        const kernels::GraphAttentionBackwardScratch& scratch, std::int64_t row_begin,
        std::int64_t row_end) = 0;
    virtual void window_attention_backward(const kernels::WindowAttentionBackwardParams& p) = 0;
    virtual void transpose_csr(const std::int64_t* dst_offsets, const std::int32_t* src,
                               std::int64_t n_dst, std::int64_t n_src, std::int64_t* src_offsets,
                               std::int64_t* edges_by_src) = 0;
};

/// The CPU backend (kernels::cpu, dispatched per instruction-set path; host memory).
Backend& cpu();

/// The backend of `device`: an error naming the device when this build has no backend for it
/// (CUDA without the cuda preset) or the device does not exist.
Backend& get(const Device& device);

/// Device kinds this binary can run ("cpu", and "cuda" where the CUDA backend is registered).
std::vector<std::string> available_kinds();

/// Makes `factory` the backend of `kind` (ordinal -> backend, created once per ordinal, alive
/// until exit). Called by a backend library's register_backend().
void register_backend(DeviceKind kind, std::function<Backend&(int index)> factory);

/// The backend model code runs on now: the CPU's unless an ActiveBackendScope says otherwise.
Backend& active();

/// Runs model code on `backend` while it lives (a model's forward, training forward, backward):
/// its kernels through active(), new tensors in its tensor_memory().
class ActiveBackendScope {
  public:
    explicit ActiveBackendScope(Backend& backend);
    ~ActiveBackendScope();
    ActiveBackendScope(const ActiveBackendScope&) = delete;
    ActiveBackendScope& operator=(const ActiveBackendScope&) = delete;

  private:
    Backend* previous_;
    TensorMemoryScope memory_;
};

}  // namespace boreas::backends
