// The CUDA backend (boreas/backends/cuda/backend.hpp): memory, staging of host arguments,
// device kernels where they exist and host kernels over managed memory where they do not yet.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "boreas/backends/caching_pool.hpp"
#include "boreas/backends/cuda/backend.hpp"
#include "boreas/backends/cuda/kernels.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/trace.hpp"
#include "gpu_check.hpp"
#include "gpu_ranges.hpp"

namespace boreas::backends::cuda {

namespace {

namespace kc = kernels::cpu;
namespace kd = kernels::cuda;

/// Kernels that run on the device, and those that still run on the host (managed memory).
const char* const kDeviceKernels[] = {"copy_rows",
                                      "linear",
                                      "mlp",
                                      "layer_norm",
                                      "gelu",
                                      "graph_attention",
                                      "window_attention",
                                      "linear_backward",
                                      "layer_norm_backward",
                                      "gelu_backward"};
const char* const kHostKernels[] = {"graph_attention_backward", "window_attention_backward",
                                    "transpose_csr", "fields_to_rows"};

/// Count of T values a strided [rows, width] view spans.
std::int64_t span_of(std::int64_t rows, std::int64_t stride, std::int64_t width) {
    return rows <= 0 ? 0 : (rows - 1) * stride + width;
}

class ManagedMemory final : public MemoryResource {
  public:
    explicit ManagedMemory(CachingPool& pool) : pool_(pool) {}
    void* allocate(std::size_t bytes) override { return pool_.allocate(bytes); }
    void deallocate(void* data, std::size_t bytes) override { pool_.deallocate(data, bytes); }

  private:
    CachingPool& pool_;
};

class CudaBackend;

/// Device copies of a call's arguments that sit in plain host memory, made before the call and
/// (for outputs) copied back after it; device and managed pointers pass through unchanged.
class Staging {
  public:
    /// `staged` (optional) counts the bytes copied over, both ways.
    explicit Staging(gpu::Stream stream, std::size_t* staged = nullptr)
        : stream_(stream), staged_(staged) {}
    Staging(const Staging&) = delete;
    Staging& operator=(const Staging&) = delete;
    ~Staging() {
        for (auto& block : blocks_) (void)gpu::free_async(block.device, stream_);
    }
    template <typename T>
    const T* in(const T* p, std::int64_t count) {
        return static_cast<const T*>(stage(const_cast<T*>(p), count * sizeof(T), false));
    }
    template <typename T>
    T* out(T* p, std::int64_t count) {
        return static_cast<T*>(stage(p, count * sizeof(T), true));
    }
    /// Waits for the call, copies the outputs back.
    void finish() {
        for (auto& block : blocks_)
            if (block.copy_back) {
                BOREAS_GPU_CHECK(gpu::copy_async(block.host, block.device, block.bytes, stream_));
                if (staged_) *staged_ += block.bytes;
            }
        BOREAS_GPU_CHECK(gpu::synchronize(stream_));
    }

  private:
    struct Block {
        void* host;
        void* device;
        std::size_t bytes;
        bool copy_back;
    };
    void* stage(void* p, std::size_t bytes, bool copy_back) {
        if (p == nullptr || bytes == 0 || gpu::device_addressable(p)) return p;
        void* device = nullptr;
        BOREAS_GPU_CHECK(gpu::malloc_async(&device, bytes, stream_));
        blocks_.push_back({p, device, bytes, copy_back});
        BOREAS_GPU_CHECK(gpu::copy_async(device, p, bytes, stream_));
        if (staged_) *staged_ += bytes;
        return device;
    }
    gpu::Stream stream_;
    std::size_t* staged_;
    std::vector<Block> blocks_;
};

/// Per kernel: calls, seconds (wall, synchronisation and staging included: each call ends
/// synchronised) and bytes staged, for describe() and so the bench documents.
struct KernelStat {
    std::int64_t calls = 0;
    double seconds = 0;
    std::size_t staged_bytes = 0;
};

/// Times one kernel call into its KernelStat.
class Timed {
  public:
    Timed(KernelStat& stat, std::mutex& mutex)
        : stat_(stat), mutex_(mutex), start_(std::chrono::steady_clock::now()) {}
    ~Timed() {
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
        const std::lock_guard lock(mutex_);
        ++stat_.calls;
        stat_.seconds += elapsed.count();
        stat_.staged_bytes += staged;
    }
    Timed(const Timed&) = delete;
    Timed& operator=(const Timed&) = delete;
    std::size_t staged = 0;  ///< Staging's counter for this call

  private:
    KernelStat& stat_;
    std::mutex& mutex_;
    std::chrono::steady_clock::time_point start_;
};

class CudaBackend final : public Backend {
  public:
    explicit CudaBackend(int index)
        : index_(index),
          managed_([this](std::size_t bytes) { return allocate_managed(bytes); },
                   [this](void* p, std::size_t bytes) {
                       (void)gpu::free_bytes(p);
                       managed_total_ -= bytes;
                   },
                   "cuda:" + std::to_string(index)),
          device_(
              [](std::size_t bytes) -> void* {
                  void* p = nullptr;
                  if (gpu::malloc_bytes(&p, bytes) == gpu::kSuccess) return p;
                  (void)gpu::last_launch_status();  // clear the error, or a launch reports it
                  return nullptr;
              },
              [](void* p, std::size_t) { (void)gpu::free_bytes(p); },
              "cuda:" + std::to_string(index)),
          tensor_memory_(managed_) {
        int count = 0;
        const gpu::Status status = gpu::device_count(&count);
        BOREAS_CHECK(status == gpu::kSuccess, "device cuda:{}: no usable GPU ({})", index,
                     gpu::error_text(status));
        BOREAS_CHECK(index < count, "device cuda:{}: this machine has {} CUDA device(s)", index,
                     count);
        BOREAS_GPU_CHECK(gpu::set_device(index));
        BOREAS_GPU_CHECK(gpu::create_stream(&stream_));
        gpu::DeviceProperties properties;
        BOREAS_GPU_CHECK(gpu::device_properties(index, &properties));
        name_ = properties.name;
        capability_ = std::to_string(properties.major) + "." + std::to_string(properties.minor);
        memory_bytes_ = properties.memory_bytes;
        // Managed memory beyond what the device holds would migrate pages back and forth, and
        // asking for more than is free can hang the GPU: stay within 90 % of what is free now.
        std::size_t free_bytes = 0, total_bytes = 0;
        BOREAS_GPU_CHECK(gpu::memory_info(&free_bytes, &total_bytes));
        managed_limit_ = free_bytes / 10 * 9;
    }

    Device device() const override { return {DeviceKind::cuda, index_}; }

    nlohmann::ordered_json describe() const override {
        nlohmann::ordered_json d;
        d["device"] = device().name();
        d["name"] = name_;
        d["compute_capability"] = capability_;
        d["memory_bytes"] = memory_bytes_;
        d["tensor_memory"] = "managed (caching pool)";
        d["kernels_on_device"] = kDeviceKernels;
        d["kernels_on_host"] = kHostKernels;
        d["host_kernel_path"] = kc::kernel_path()["name"];
        // Where the time went, per kernel since the start: wall seconds of the calls (each ends
        // synchronised, so device time, staging and host kernels are all inside) and the bytes
        // staged between host and device.
        const std::lock_guard lock(stats_mutex_);
        for (const auto& [name, stat] : stats_)
            d["kernel_calls"][name] = {{"calls", stat.calls},
                                       {"seconds", stat.seconds},
                                       {"staged_bytes", stat.staged_bytes}};
        return d;
    }

    void* allocate(std::size_t bytes) override {
        bind();
        return device_.allocate(bytes);
    }
    void deallocate(void* data, std::size_t bytes) override { device_.deallocate(data, bytes); }
    void copy_to_device(void* device, const void* host, std::size_t bytes) override {
        bind();
        BOREAS_GPU_CHECK(gpu::copy_to_device(device, host, bytes));
    }
    void copy_to_host(void* host, const void* device, std::size_t bytes) override {
        bind();
        BOREAS_GPU_CHECK(gpu::copy_to_host(host, device, bytes));
    }
    MemoryStats memory_stats() const override {
        const auto a = managed_.stats(), b = device_.stats();
        MemoryStats s;
        s.in_use = a.in_use + b.in_use;
        s.cached = a.cached + b.cached;
        s.peak_in_use = a.peak_in_use + b.peak_in_use;
        s.allocations = a.allocations + b.allocations;
        s.upstream_allocations = a.upstream_allocations + b.upstream_allocations;
        return s;
    }
    void reset_peak_memory() override {
        managed_.reset_peak();
        device_.reset_peak();
    }
    MemoryResource* tensor_memory() override { return &tensor_memory_; }
    nlohmann::ordered_json measure_roof() override { return cuda::measure_roof(index_); }
    void synchronize() override {
        bind();
        BOREAS_GPU_CHECK(gpu::synchronize(stream_));
    }

    // Device kernels.
    void linear(const kernels::LinearParams& p) override {
        DeviceCall call(*this, "linear");
        Staging& s = call.staging;
        kernels::LinearParams d = p;
        const std::int64_t x_stride = p.x_stride ? p.x_stride : p.in;
        const std::int64_t y_stride = p.y_stride ? p.y_stride : p.out;
        d.x = s.in(p.x, span_of(p.rows, x_stride, p.in));
        d.weight = s.in(p.weight, p.out * p.in);
        d.weight_bf16 = s.in(p.weight_bf16, p.out * p.in);
        d.bias = s.in(p.bias, p.out);
        d.y = s.out(p.y, span_of(p.rows, y_stride, p.out));
        d.y_bf16 = s.out(p.y_bf16, span_of(p.rows, y_stride, p.out));
        d.pre_activation = s.out(p.pre_activation, p.rows * p.out);
        kd::linear(d, stream_);
        s.finish();
    }
    void mlp(const kernels::MlpParams& p) override {
        DeviceCall call(*this, "mlp");
        Staging& s = call.staging;
        kernels::MlpParams d = p;
        d.x = s.in(p.x, p.rows * p.in);
        d.weight_in = s.in(p.weight_in, p.hidden * p.in);
        d.weight_in_bf16 = s.in(p.weight_in_bf16, p.hidden * p.in);
        d.bias_in = s.in(p.bias_in, p.hidden);
        d.weight_out = s.in(p.weight_out, p.out * p.hidden);
        d.weight_out_bf16 = s.in(p.weight_out_bf16, p.out * p.hidden);
        d.bias_out = s.in(p.bias_out, p.out);
        d.norm_gamma = s.in(p.norm_gamma, p.in);
        d.norm_beta = s.in(p.norm_beta, p.in);
        // y may be x (the residual MLP): the same host rows staged once, as the output.
        d.y = s.out(p.y, p.rows * p.out);
        if (p.y == p.x) d.x = d.y;
        kd::mlp(d, stream_);
        s.finish();
    }
    void copy_rows(const kernels::CopyRowsParams& p) override {
        DeviceCall call(*this, "copy_rows");
        Staging& s = call.staging;
        kernels::CopyRowsParams d = p;
        const std::int64_t xs = p.x_stride ? p.x_stride : p.cols;
        const std::int64_t ys = p.y_stride ? p.y_stride : p.cols;
        d.y = s.out(p.y, span_of(p.rows, ys, p.cols));
        d.x = p.x == p.y ? d.y : s.in(p.x, span_of(p.rows, xs, p.cols));
        kd::copy_rows(d, stream_);
        s.finish();
    }
    void layer_norm(const kernels::LayerNormParams& p) override {
        DeviceCall call(*this, "layer_norm");
        Staging& s = call.staging;
        kernels::LayerNormParams d = p;
        d.y = s.out(p.y, p.rows * p.channels);
        d.x = p.x == p.y ? d.y : s.in(p.x, p.rows * p.channels);
        d.gamma = s.in(p.gamma, p.channels);
        d.beta = s.in(p.beta, p.channels);
        kd::layer_norm(d, stream_);
        s.finish();
    }
    void gelu(float* x, std::int64_t n) override {
        DeviceCall call(*this, "gelu");
        Staging& s = call.staging;
        kd::gelu(s.out(x, n), n, stream_);
        s.finish();
    }
    void graph_attention(const kernels::GraphAttentionParams& p) override {
        DeviceCall call(*this, "graph_attention");
        Staging& s = call.staging;
        kernels::GraphAttentionParams d = p;
        const std::int64_t width = p.heads * p.head_dim;
        const std::int64_t q_stride = p.q_stride ? p.q_stride : width;
        const std::int64_t kv_stride = p.kv_stride ? p.kv_stride : width;
        const std::int64_t out_stride = p.out_stride ? p.out_stride : width;
        // Offsets are absolute positions in src and the edge features: the edges up to the
        // last destination's end.
        std::int64_t edges = 0;
        if (gpu::device_addressable(p.dst_offsets)) {
            BOREAS_GPU_CHECK(
                gpu::copy_async(&edges, p.dst_offsets + p.n_dst, sizeof(edges), stream_));
            BOREAS_GPU_CHECK(gpu::synchronize(stream_));
        } else {
            edges = p.dst_offsets[p.n_dst];
        }
        const std::int64_t dst_rows = p.batch * p.n_dst, src_rows = p.batch * p.n_src;
        d.q = s.in(p.q, span_of(dst_rows, q_stride, width));
        d.k = s.in(p.k, span_of(src_rows, kv_stride, width));
        d.v = s.in(p.v, span_of(src_rows, kv_stride, width));
        d.k_bf16 = s.in(p.k_bf16, span_of(src_rows, kv_stride, width));
        d.v_bf16 = s.in(p.v_bf16, span_of(src_rows, kv_stride, width));
        d.edge_features = s.in(p.edge_features, edges * p.edge_dim);
        d.edge_weight = s.in(p.edge_weight, width * p.edge_dim);
        d.edge_bias = s.in(p.edge_bias, width);
        d.dst_offsets = s.in(p.dst_offsets, p.n_dst + 1);
        d.src = s.in(p.src, edges);
        d.out = s.out(p.out, span_of(dst_rows, out_stride, width));
        d.lse = s.out(p.lse, dst_rows * p.heads);
        kd::graph_attention(d, stream_);
        s.finish();
    }
    void window_attention(const kernels::WindowAttentionParams& p) override {
        DeviceCall call(*this, "window_attention");
        Staging& s = call.staging;
        kernels::WindowAttentionParams d = p;
        const std::int64_t width = p.heads * p.head_dim;
        const std::int64_t stride = p.stride ? p.stride : width;
        const std::int64_t out_stride = p.out_stride ? p.out_stride : stride;
        const std::int64_t rows = p.batch * p.seq;
        d.q = s.in(p.q, span_of(rows, stride, width));
        d.k = s.in(p.k, span_of(rows, stride, width));
        d.v = s.in(p.v, span_of(rows, stride, width));
        d.out = s.out(p.out, span_of(rows, out_stride, width));
        d.lse = s.out(p.lse, rows * p.heads);
        kd::window_attention(d, stream_);
        s.finish();
    }

    void linear_backward(const kernels::LinearBackwardParams& p) override {
        DeviceCall call(*this, "linear_backward");
        Staging& s = call.staging;
        kernels::LinearBackwardParams d = p;
        d.x = s.in(p.x, p.rows * p.in);
        d.weight = s.in(p.weight, p.out * p.in);
        d.dy = s.in(p.dy, p.rows * p.out);
        d.dx = s.out(p.dx, p.rows * p.in);
        d.dweight = s.out(p.dweight, p.out * p.in);
        d.dbias = s.out(p.dbias, p.out);
        kd::linear_backward(d, stream_);
        s.finish();
    }
    void layer_norm_backward(const kernels::LayerNormBackwardParams& p) override {
        DeviceCall call(*this, "layer_norm_backward");
        Staging& s = call.staging;
        kernels::LayerNormBackwardParams d = p;
        const std::int64_t n = p.rows * p.channels;
        d.x = s.in(p.x, n);
        d.gamma = s.in(p.gamma, p.channels);
        d.dx = s.out(p.dx, n);
        d.dy = p.dy == p.dx ? d.dx : s.in(p.dy, n);
        d.dgamma = s.out(p.dgamma, p.channels);
        d.dbeta = s.out(p.dbeta, p.channels);
        kd::layer_norm_backward(d, stream_);
        s.finish();
    }
    void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) override {
        DeviceCall call(*this, "gelu_backward");
        Staging& s = call.staging;
        float* d_dx = s.out(dx, n);
        const float* d_dy = dy == dx ? d_dx : s.in(dy, n);
        kd::gelu_backward(s.in(x, n), d_dy, d_dx, n, stream_);
        s.finish();
    }

    // Host kernels over managed memory, after the device's work is done.
    void fields_to_rows(const kernels::FieldsToRowsParams& p) override {
        const HostCall call(*this, "fields_to_rows");
        kc::fields_to_rows(p);
    }
    void graph_attention_backward(const kernels::GraphAttentionBackwardParams& p) override {
        const HostCall call(*this, "graph_attention_backward");
        kc::graph_attention_backward(p);
    }
    void graph_attention_backward_destinations(
        const kernels::GraphAttentionBackwardParams& p,
        kernels::GraphAttentionBackwardScratch& scratch) override {
        const HostCall call(*this, "graph_attention_backward_destinations");
        kc::graph_attention_backward_destinations(p, scratch);
    }
    void graph_attention_backward_sources(const kernels::GraphAttentionBackwardParams& p,
                                          const kernels::GraphAttentionBackwardScratch& scratch,
                                          std::int64_t row_begin, std::int64_t row_end) override {
        const HostCall call(*this, "graph_attention_backward_sources");
        kc::graph_attention_backward_sources(p, scratch, row_begin, row_end);
    }
    void window_attention_backward(const kernels::WindowAttentionBackwardParams& p) override {
        const HostCall call(*this, "window_attention_backward");
        kc::window_attention_backward(p);
    }
    void transpose_csr(const std::int64_t* dst_offsets, const std::int32_t* src, std::int64_t n_dst,
                       std::int64_t n_src, std::int64_t* src_offsets,
                       std::int64_t* edges_by_src) override {
        const HostCall call(*this, "transpose_csr");
        kc::transpose_csr(dst_offsets, src, n_dst, n_src, src_offsets, edges_by_src);
    }

  private:
    /// One kernel call on the device: timed into its KernelStat, on this backend's device and
    /// stream, its plain-host arguments staged.
    struct DeviceCall {
        DeviceCall(CudaBackend& backend, const char* name)
            : timed(backend.stat(name), backend.stats_mutex_),
              staging((backend.bind(), backend.stream_), &timed.staged) {}
        Timed timed;
        Staging staging;
    };
    /// One kernel call on the host over managed memory, once the device's work is done.
    struct HostCall {
        HostCall(CudaBackend& backend, const char* name)
            : timed(backend.stat(name), backend.stats_mutex_) {
            backend.synchronize();
        }
        Timed timed;
    };

    KernelStat& stat(const char* name) {
        const std::lock_guard lock(stats_mutex_);
        return stats_[name];  // std::map: references stay valid as entries are added
    }

    /// Managed memory within managed_limit_ (null beyond it or when the runtime refuses: the
    /// pool then empties its cache and retries, else reports the device out of memory).
    void* allocate_managed(std::size_t bytes) {
        if (managed_total_.load() + bytes > managed_limit_) return nullptr;
        void* p = nullptr;
        if (gpu::malloc_managed(&p, bytes) != gpu::kSuccess) {
            (void)gpu::last_launch_status();  // clear the error, or the next launch reports it
            return nullptr;
        }
        managed_total_ += bytes;
        return p;
    }

    /// The runtime's current device is per host thread: set it before each call.
    void bind() const { BOREAS_GPU_CHECK(gpu::set_device(index_)); }

    int index_;
    mutable std::mutex stats_mutex_;
    std::map<std::string, KernelStat> stats_;
    std::atomic<std::size_t> managed_total_{0};
    std::size_t managed_limit_ = 0;  // set by the constructor before any allocation
    CachingPool managed_, device_;
    ManagedMemory tensor_memory_;
    gpu::Stream stream_ = nullptr;
    std::string name_, capability_;
    std::size_t memory_bytes_ = 0;
};

}  // namespace

void register_backend() {
    // Every BOREAS_RANGE (the bench's phase tree) as an NVTX range: one push and pop each.
    trace::set_range_hooks({&gpu::range_push, &gpu::range_pop});
    backends::register_backend(DeviceKind::cuda, [](int index) -> Backend& {
        static std::mutex mutex;
        static std::map<int, std::unique_ptr<CudaBackend>> backends;
        const std::lock_guard lock(mutex);
        auto& backend = backends[index];
        if (!backend) backend = std::make_unique<CudaBackend>(index);
        return *backend;
    });
}

}  // namespace boreas::backends::cuda
