// The CPU backend behind the backend interface: kernels::cpu (run-time dispatched per
// instruction-set path) on host memory. Compiled once, for the build's baseline.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "boreas/backends/backend.hpp"
#include "boreas/core/error.hpp"

namespace boreas::backends {

namespace {

namespace kc = kernels::cpu;

class CpuBackend final : public Backend {
  public:
    Device device() const override { return {}; }

    nlohmann::ordered_json describe() const override {
        nlohmann::ordered_json d;
        d["device"] = "cpu";
        d["kernel_path"] = kc::kernel_path();
        return d;
    }

    void* allocate(std::size_t bytes) override {
        if (bytes == 0) return nullptr;
        const std::size_t size = (bytes + kAlignment - 1) / kAlignment * kAlignment;
        void* data = std::aligned_alloc(kAlignment, size);
        BOREAS_CHECK(data != nullptr, "cpu: out of memory allocating {} bytes", size);
        const auto now = in_use_.fetch_add(size) + size;
        auto peak = peak_.load();
        while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
        }
        ++allocations_;
        return data;
    }
    void deallocate(void* data, std::size_t bytes) override {
        if (data == nullptr) return;
        in_use_ -= (bytes + kAlignment - 1) / kAlignment * kAlignment;
        std::free(data);
    }
    void copy_to_device(void* device, const void* host, std::size_t bytes) override {
        std::copy_n(static_cast<const char*>(host), bytes, static_cast<char*>(device));
    }
    void copy_to_host(void* host, const void* device, std::size_t bytes) override {
        std::copy_n(static_cast<const char*>(device), bytes, static_cast<char*>(host));
    }
    MemoryStats memory_stats() const override {
        MemoryStats s;
        s.in_use = in_use_.load();
        s.peak_in_use = peak_.load();
        s.allocations = s.upstream_allocations = allocations_.load();
        return s;
    }
    MemoryResource* tensor_memory() override { return nullptr; }
    void reset_peak_memory() override { peak_.store(in_use_.load()); }
    void synchronize() override {}

    void fields_to_rows(const kernels::FieldsToRowsParams& p) override { kc::fields_to_rows(p); }
    void copy_rows(const kernels::CopyRowsParams& p) override { kc::copy_rows(p); }
    void linear(const kernels::LinearParams& p) override { kc::linear(p); }
    void mlp(const kernels::MlpParams& p) override { kc::mlp(p); }
    void layer_norm(const kernels::LayerNormParams& p) override { kc::layer_norm(p); }
    void gelu(float* x, std::int64_t n) override { kc::gelu(x, n); }
    void graph_attention(const kernels::GraphAttentionParams& p) override {
        kc::graph_attention(p);
    }
    void window_attention(const kernels::WindowAttentionParams& p) override {
        kc::window_attention(p);
    }
    void linear_backward(const kernels::LinearBackwardParams& p) override {
        kc::linear_backward(p);
    }
    void layer_norm_backward(const kernels::LayerNormBackwardParams& p) override {
        kc::layer_norm_backward(p);
    }
    void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) override {
        kc::gelu_backward(x, dy, dx, n);
    }
    void graph_attention_backward(const kernels::GraphAttentionBackwardParams& p) override {
        kc::graph_attention_backward(p);
    }
    void graph_attention_backward_destinations(
        const kernels::GraphAttentionBackwardParams& p,
        kernels::GraphAttentionBackwardScratch& scratch) override {
        kc::graph_attention_backward_destinations(p, scratch);
    }
    void graph_attention_backward_sources(const kernels::GraphAttentionBackwardParams& p,
                                          const kernels::GraphAttentionBackwardScratch& scratch,
                                          std::int64_t row_begin, std::int64_t row_end) override {
        kc::graph_attention_backward_sources(p, scratch, row_begin, row_end);
    }
    void window_attention_backward(const kernels::WindowAttentionBackwardParams& p) override {
        kc::window_attention_backward(p);
    }
    void transpose_csr(const std::int64_t* dst_offsets, const std::int32_t* src, std::int64_t n_dst,
                       std::int64_t n_src, std::int64_t* src_offsets,
                       std::int64_t* edges_by_src) override {
        kc::transpose_csr(dst_offsets, src, n_dst, n_src, src_offsets, edges_by_src);
    }

  private:
    static constexpr std::size_t kAlignment = 256;
    std::atomic<std::size_t> in_use_{0}, peak_{0}, allocations_{0};
};

}  // namespace

Backend& cpu() {
    static CpuBackend backend;
    return backend;
}

}  // namespace boreas::backends
