// The backend interface: device names, the registry, the caching pool, and that the model's
// forward and training step reach their kernels and memory through it only. A recording backend
// (registered as "cuda" in this process) forwards every call to the CPU backend, counts them and
// hands out tensor memory of its own: the model run on it must give the CPU's numbers bit for
// bit, call every kernel it needs through it, and keep its parameters and tensors in its memory.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "boreas/backends/backend.hpp"
#include "boreas/backends/caching_pool.hpp"
#include "boreas/model/model.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace backends = boreas::backends;
namespace kernels = boreas::kernels;
using boreas::Tensor;
using boreas::testing_support::error_of;
const fs::path kData = BOREAS_TEST_DATA;
const fs::path kRoot = kData.parent_path().parent_path();

TEST(Device, NamesParse) {
    EXPECT_EQ(backends::parse_device("cpu", "--device").kind, backends::DeviceKind::cpu);
    const auto cuda = backends::parse_device("cuda", "--device");
    EXPECT_EQ(cuda.kind, backends::DeviceKind::cuda);
    EXPECT_EQ(cuda.index, 0);
    EXPECT_EQ(cuda.name(), "cuda:0");
    const auto third = backends::parse_device("cuda:2", "--device");
    EXPECT_EQ(third.index, 2);
    EXPECT_EQ(third.name(), "cuda:2");
    EXPECT_EQ(backends::parse_device("cpu", "x").name(), "cpu");
}

TEST(Device, UnknownNamesAreOneLineErrors) {
    for (const char* text : {"gpu", "cuda:", "cuda:-1", "cuda:x", "cuda1", "cuda:1x", "CPU", ""}) {
        const auto message = error_of([&] { backends::parse_device(text, "--device"); });
        EXPECT_NE(message.find("--device: unknown device '" + std::string(text) + "'"),
                  std::string::npos)
            << message;
        EXPECT_EQ(message.find('\n'), std::string::npos);
    }
}

TEST(Device, CpuIsAlwaysThere) {
    EXPECT_EQ(backends::get({}).device().kind, backends::DeviceKind::cpu);
    EXPECT_EQ(&backends::active(), &backends::cpu());
    EXPECT_EQ(backends::available_kinds().front(), "cpu");
    EXPECT_EQ(backends::cpu().describe()["device"], "cpu");
}

/// A device allocator for the pool tests: hands out heap blocks, refuses above a byte budget.
struct FakeDevice {
    explicit FakeDevice(std::size_t bytes) : budget(bytes) {}
    std::size_t budget = 0, used = 0;
    std::map<void*, std::size_t> live;
    int allocations = 0, frees = 0;
    void* allocate(std::size_t bytes) {
        if (used + bytes > budget) return nullptr;
        used += bytes;
        ++allocations;
        void* data = std::malloc(bytes);
        live[data] = bytes;
        return data;
    }
    void release(void* data) {
        used -= live.at(data);
        live.erase(data);
        ++frees;
        std::free(data);
    }
};

backends::CachingPool pool_on(FakeDevice& device) {
    return backends::CachingPool([&](std::size_t b) { return device.allocate(b); },
                                 [&](void* p, std::size_t) { device.release(p); }, "fake:0");
}

TEST(CachingPool, ReusesFreedBlocksOfTheSameRoundedSize) {
    FakeDevice device(std::size_t{64} << 20);
    auto pool = pool_on(device);
    EXPECT_EQ(backends::CachingPool::rounded(1), 512u);
    EXPECT_EQ(backends::CachingPool::rounded(1000), 1024u);
    EXPECT_EQ(backends::CachingPool::rounded((1 << 20) + 1), std::size_t{2} << 20);
    void* a = pool.allocate(1000);
    pool.deallocate(a, 1000);
    void* b = pool.allocate(900);  // rounds to the same 1024 bytes
    EXPECT_EQ(a, b);
    EXPECT_EQ(device.allocations, 1);
    void* c = pool.allocate(3 << 20);
    EXPECT_EQ(device.allocations, 2);
    const auto stats = pool.stats();
    EXPECT_EQ(stats.in_use, 1024u + (std::size_t{4} << 20));
    EXPECT_EQ(stats.peak_in_use, stats.in_use);
    EXPECT_EQ(stats.allocations, 3u);
    EXPECT_EQ(stats.upstream_allocations, 2u);
    pool.deallocate(c, 3 << 20);
    pool.deallocate(b, 900);
    EXPECT_EQ(pool.stats().in_use, 0u);
    EXPECT_EQ(pool.stats().cached, 1024u + (std::size_t{4} << 20));
    pool.reset_peak();
    EXPECT_EQ(pool.stats().peak_in_use, 0u);
    pool.release_cached();
    EXPECT_EQ(device.frees, 2);
    EXPECT_EQ(pool.allocate(0), nullptr);
}

TEST(CachingPool, EmptiesItsCacheBeforeGivingUp) {
    FakeDevice device(std::size_t{8} << 20);
    auto pool = pool_on(device);
    void* a = pool.allocate(std::size_t{6} << 20);
    pool.deallocate(a, std::size_t{6} << 20);       // cached: the device is nearly full
    void* b = pool.allocate(std::size_t{4} << 20);  // fails, empties the cache, retries
    EXPECT_NE(b, nullptr);
    EXPECT_EQ(device.frees, 1);
    const auto message = error_of([&] { pool.allocate(std::size_t{6} << 20); });
    EXPECT_NE(message.find("fake:0: out of memory allocating 6291456 bytes"), std::string::npos)
        << message;
    pool.deallocate(b, std::size_t{4} << 20);
}

/// Tensor memory that counts what it hands out (heap underneath).
struct CountingMemory : boreas::MemoryResource {
    std::set<void*> live;
    std::size_t allocations = 0;
    void* allocate(std::size_t bytes) override {
        ++allocations;
        void* data = std::malloc(bytes);
        live.insert(data);
        return data;
    }
    void deallocate(void* data, std::size_t) override {
        EXPECT_EQ(live.erase(data), 1u) << "memory freed that was not ours";
        std::free(data);
    }
};

TEST(TensorMemory, ScopesMoveAndCopies) {
    CountingMemory memory;
    Tensor host({2, 3}, 1.5f);
    EXPECT_EQ(host.memory(), nullptr);
    {
        const boreas::TensorMemoryScope scope(&memory);
        Tensor inside({4}, 2.0f);
        EXPECT_EQ(inside.memory(), &memory);
        Tensor copy = host;  // copies go to the scope's memory
        EXPECT_EQ(copy.memory(), &memory);
        EXPECT_EQ(copy.values()[5], 1.5f);
        Tensor moved = std::move(inside);
        EXPECT_EQ(moved.memory(), &memory);
        EXPECT_EQ(moved.values()[3], 2.0f);
    }
    EXPECT_TRUE(memory.live.empty());
    const Tensor* address = &host;
    host.move_to(&memory);
    EXPECT_EQ(address, &host);
    EXPECT_EQ(host.memory(), &memory);
    EXPECT_EQ(host.values()[4], 1.5f);
    EXPECT_EQ(memory.live.size(), 1u);
    host.move_to(nullptr);
    EXPECT_TRUE(memory.live.empty());
    EXPECT_EQ(host.values()[0], 1.5f);
}

/// The CPU backend with every call counted and tensors in memory of its own.
class RecordingBackend final : public backends::Backend {
  public:
    std::map<std::string, int> calls;
    CountingMemory memory;

    backends::Device device() const override { return {backends::DeviceKind::cuda, 0}; }
    nlohmann::ordered_json describe() const override { return {{"device", "recording"}}; }
    void* allocate(std::size_t b) override { return cpu().allocate(b); }
    void deallocate(void* d, std::size_t b) override { cpu().deallocate(d, b); }
    void copy_to_device(void* d, const void* h, std::size_t b) override {
        cpu().copy_to_device(d, h, b);
    }
    void copy_to_host(void* h, const void* d, std::size_t b) override {
        cpu().copy_to_host(h, d, b);
    }
    backends::MemoryStats memory_stats() const override { return {}; }
    boreas::MemoryResource* tensor_memory() override { return &memory; }
    void reset_peak_memory() override {}
    void synchronize() override { ++calls["synchronize"]; }
    void fields_to_rows(const kernels::FieldsToRowsParams& p) override {
        ++calls["fields_to_rows"];
        cpu().fields_to_rows(p);
    }
    void copy_rows(const kernels::CopyRowsParams& p) override {
        ++calls["copy_rows"];
        cpu().copy_rows(p);
    }
    void linear(const kernels::LinearParams& p) override {
        ++calls["linear"];
        cpu().linear(p);
    }
    void mlp(const kernels::MlpParams& p) override {
        ++calls["mlp"];
        cpu().mlp(p);
    }
    void layer_norm(const kernels::LayerNormParams& p) override {
        ++calls["layer_norm"];
        cpu().layer_norm(p);
    }
    void gelu(float* x, std::int64_t n) override {
        ++calls["gelu"];
        cpu().gelu(x, n);
    }
    void graph_attention(const kernels::GraphAttentionParams& p) override {
        ++calls["graph_attention"];
        cpu().graph_attention(p);
    }
    void window_attention(const kernels::WindowAttentionParams& p) override {
        ++calls["window_attention"];
        cpu().window_attention(p);
    }
    void linear_backward(const kernels::LinearBackwardParams& p) override {
        ++calls["linear_backward"];
        cpu().linear_backward(p);
    }
    void layer_norm_backward(const kernels::LayerNormBackwardParams& p) override {
        ++calls["layer_norm_backward"];
        cpu().layer_norm_backward(p);
    }
    void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) override {
        ++calls["gelu_backward"];
        cpu().gelu_backward(x, dy, dx, n);
    }
    void graph_attention_backward(const kernels::GraphAttentionBackwardParams& p) override {
        ++calls["graph_attention_backward"];
        cpu().graph_attention_backward(p);
    }
    void graph_attention_backward_destinations(const kernels::GraphAttentionBackwardParams& p,
                                               kernels::GraphAttentionBackwardScratch& s) override {
        ++calls["graph_attention_backward_destinations"];
        cpu().graph_attention_backward_destinations(p, s);
    }
    void graph_attention_backward_sources(const kernels::GraphAttentionBackwardParams& p,
                                          const kernels::GraphAttentionBackwardScratch& s,
                                          std::int64_t b, std::int64_t e) override {
        ++calls["graph_attention_backward_sources"];
        cpu().graph_attention_backward_sources(p, s, b, e);
    }
    void window_attention_backward(const kernels::WindowAttentionBackwardParams& p) override {
        ++calls["window_attention_backward"];
        cpu().window_attention_backward(p);
    }
    void transpose_csr(const std::int64_t* o, const std::int32_t* s, std::int64_t nd,
                       std::int64_t ns, std::int64_t* so, std::int64_t* e) override {
        ++calls["transpose_csr"];
        cpu().transpose_csr(o, s, nd, ns, so, e);
    }

  private:
    static backends::Backend& cpu() { return backends::cpu(); }
};

RecordingBackend& recording() {
    static RecordingBackend backend;
    return backend;
}

boreas::model::Model make_model(const std::string& variant) {
    auto config = boreas::model::load_config((kData / "model" / (variant + ".yaml")).string(), {});
    config.graph.file = (kRoot / config.graph.file).string();
    boreas::model::Model model(config, boreas::model::graph_for(config));
    model.parameters().initialise(3, 0.3f);
    return model;
}

void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
    ASSERT_EQ(a.shape(), b.shape()) << what;
    for (std::int64_t i = 0; i < a.numel(); ++i)
        ASSERT_EQ(a.values()[i], b.values()[i]) << what << " index " << i;
}

class ModelOnABackend : public testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        backends::register_backend(backends::DeviceKind::cuda,
                                   [](int) -> backends::Backend& { return recording(); });
        recording().calls.clear();
    }
};

TEST_P(ModelOnABackend, ForwardRunsThroughTheInterfaceWithTheCpusNumbers) {
    auto on_cpu = make_model(GetParam());
    auto on_device = make_model(GetParam());
    on_device.set_device(backends::parse_device("cuda", "test"));
    EXPECT_EQ(on_device.device().kind, backends::DeviceKind::cuda);
    for (const auto& name : on_device.parameters().names())
        ASSERT_EQ(on_device.parameters().get(name).memory(), &recording().memory) << name;
    const Tensor input = boreas::model::synthetic_input(on_cpu, 2, 7);
    const auto before = recording().memory.allocations;
    const Tensor expected = on_cpu.forward(input);
    EXPECT_EQ(recording().calls.size(), 0u) << "the CPU model called the other backend";
    const Tensor output = on_device.forward(input);
    expect_same(output, expected, "forward");
    EXPECT_EQ(output.memory(), &recording().memory);
    EXPECT_GT(recording().memory.allocations, before);
    EXPECT_GT(recording().calls["linear"] + recording().calls["mlp"], 0);
    EXPECT_GT(recording().calls["layer_norm"] + recording().calls["mlp"], 0);
    EXPECT_GT(recording().calls["copy_rows"], 0) << "row copies and residual adds on the host";
    EXPECT_EQ(&backends::active(), &backends::cpu()) << "the forward left its backend active";
    EXPECT_EQ(boreas::tensor_memory(), nullptr);
}

TEST_P(ModelOnABackend, Bf16ForwardKeepsItsWeightsInTheBackendsMemory) {
    auto on_cpu = make_model(GetParam());
    auto on_device = make_model(GetParam());
    on_cpu.keep_weights_in_bf16();
    on_device.keep_weights_in_bf16();
    on_device.set_device(backends::parse_device("cuda", "test"));
    int bf16_weights = 0;
    const auto& store = on_device.parameters();
    for (const auto& name : store.names())
        if (const auto* bits = store.bf16_bits(&store.get(name))) {
            ++bf16_weights;
            EXPECT_EQ(recording().memory.live.count(const_cast<std::uint16_t*>(bits)), 1u) << name;
        }
    EXPECT_GT(bf16_weights, 0);
    boreas::model::ForwardOptions options;
    options.precision = boreas::model::Precision::bf16;
    const Tensor input = boreas::model::synthetic_input(on_cpu, 2, 8);
    expect_same(on_device.forward(input, options), on_cpu.forward(input, options), "bf16");
}

TEST_P(ModelOnABackend, TrainingStepRunsThroughTheInterfaceWithTheCpusNumbers) {
    auto on_cpu = make_model(GetParam());
    auto on_device = make_model(GetParam());
    on_device.set_device(backends::parse_device("cuda:0", "test"));
    const Tensor input = boreas::model::synthetic_input(on_cpu, 2, 9);
    auto run = [&](const boreas::model::Model& model) {
        boreas::model::TrainingTape tape;
        const Tensor output = model.forward_train(input, tape, /*activation_checkpointing=*/true);
        Tensor d_output(output.shape());
        for (std::int64_t i = 0; i < d_output.numel(); ++i)
            d_output.storage()[i] = 0.01f * static_cast<float>(i % 13) - 0.05f;
        auto gradients = model.zero_gradients(input);
        model.backward(tape, d_output, gradients);
        return gradients;
    };
    const auto expected = run(on_cpu);
    EXPECT_EQ(recording().calls.size(), 0u);
    const auto gradients = run(on_device);
    for (const auto& [name, gradient] : expected.parameters) {
        expect_same(gradients.parameters.at(name), gradient, name);
        EXPECT_EQ(gradients.parameters.at(name).memory(), &recording().memory) << name;
    }
    expect_same(gradients.input, expected.input, "input gradient");
    EXPECT_GT(recording().calls["linear_backward"], 0);
    EXPECT_GT(recording().calls["layer_norm_backward"], 0);
}

INSTANTIATE_TEST_SUITE_P(Processors, ModelOnABackend,
                         testing::Values("transformer", "graphtransformer", "gnn"));

}  // namespace
