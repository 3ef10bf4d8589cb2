#include "boreas/core/tensor.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <numeric>
#include <utility>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "boreas/core/error.hpp"

namespace boreas {
namespace {

std::int64_t product(const std::vector<std::int64_t>& shape) {
    std::int64_t count = 1;
    for (auto extent : shape) {
        BOREAS_CHECK(extent >= 0, "negative tensor extent {}", extent);
        count *= extent;
    }
    return count;
}

/// Asks for transparent huge pages on the 2 MiB-aligned interior of a fresh, untouched block.
/// Activation buffers of the large configs are hundreds of MiB to GiB: with 4 KiB pages the
/// first touch costs one fault per page (about 5 us each in this VM: 70 s of an aifs-n320 step)
/// and the graph-attention gathers miss the TLB on nearly every source row.
void advise_huge_pages(void* data, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(kHuge - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
    (void)data;
    (void)bytes;
#endif
}

constexpr std::size_t kHugePageMinBytes = std::size_t{8} << 20;
/// Below this many values one thread fills or copies: a parallel region costs microseconds.
constexpr std::int64_t kParallelMinValues = std::int64_t{1} << 18;

std::atomic<MemoryResource*> current_memory{nullptr};

void parallel_fill(float* data, std::int64_t count, float value) {
#pragma omp parallel for schedule(static) if (count >= kParallelMinValues)
    for (std::int64_t i = 0; i < count; ++i) data[i] = value;
}

void parallel_copy(const float* from, std::int64_t count, float* to) {
    constexpr std::int64_t kBlock = 1 << 14;
    const std::int64_t blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (count >= kParallelMinValues)
    for (std::int64_t b = 0; b < blocks; ++b)
        std::copy(from + b * kBlock, from + std::min(count, (b + 1) * kBlock), to + b * kBlock);
}

}  // namespace

MemoryResource* tensor_memory() {
    return current_memory.load(std::memory_order_relaxed);
}

TensorMemoryScope::TensorMemoryScope(MemoryResource* memory)
    : previous_(current_memory.exchange(memory)) {}

TensorMemoryScope::~TensorMemoryScope() {
    current_memory.store(previous_);
}

void Tensor::allocate(std::int64_t count) {
    count_ = count;
    memory_ = tensor_memory();
    const auto bytes = static_cast<std::size_t>(count) * sizeof(float);
    if (count == 0) {
        data_ = nullptr;
    } else if (memory_ != nullptr) {
        data_ = static_cast<float*>(memory_->allocate(bytes));
    } else {
        data_ = static_cast<float*>(::operator new(bytes));
        if (bytes >= kHugePageMinBytes) advise_huge_pages(data_, bytes);
    }
}

void Tensor::release() noexcept {
    if (data_ != nullptr) {
        if (memory_ != nullptr)
            memory_->deallocate(data_, static_cast<std::size_t>(count_) * sizeof(float));
        else
            ::operator delete(data_);
    }
    data_ = nullptr;
    count_ = 0;
}

Tensor::~Tensor() {
    release();
}

Tensor::Tensor(Tensor&& other) noexcept
    : shape_(std::move(other.shape_)),
      data_(std::exchange(other.data_, nullptr)),
      count_(std::exchange(other.count_, 0)),
      memory_(other.memory_) {
    other.shape_.clear();
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
    if (this != &other) {
        release();
        shape_ = std::move(other.shape_);
        other.shape_.clear();
        data_ = std::exchange(other.data_, nullptr);
        count_ = std::exchange(other.count_, 0);
        memory_ = other.memory_;
    }
    return *this;
}

void Tensor::move_to(MemoryResource* memory) {
    if (memory == memory_) return;
    const TensorMemoryScope scope(memory);
    Tensor moved = uninitialised(shape_);
    parallel_copy(data_, count_, moved.data_);
    *this = std::move(moved);
}

Tensor::Tensor(std::vector<std::int64_t> shape, float fill) : shape_(std::move(shape)) {
    allocate(product(shape_));
    parallel_fill(data_, count_, fill);
}

Tensor::Tensor(std::vector<std::int64_t> shape, const std::vector<float>& data)
    : shape_(std::move(shape)) {
    BOREAS_CHECK(product(shape_) == static_cast<std::int64_t>(data.size()),
                 "tensor of shape {} cannot hold {} values", shape_string(), data.size());
    allocate(static_cast<std::int64_t>(data.size()));
    parallel_copy(data.data(), count_, data_);
}

Tensor Tensor::uninitialised(std::vector<std::int64_t> shape) {
    Tensor t;
    const auto count = product(shape);
    t.shape_ = std::move(shape);
    t.allocate(count);
    return t;
}

Tensor::Tensor(const Tensor& other) : shape_(other.shape_) {
    allocate(other.count_);
    parallel_copy(other.data_, count_, data_);
}

Tensor& Tensor::operator=(const Tensor& other) {
    if (this == &other) return *this;
    shape_ = other.shape_;
    if (count_ != other.count_ || memory_ != tensor_memory()) {
        release();  // first: the peak holds one buffer, not two
        allocate(other.count_);
    }
    parallel_copy(other.data_, count_, data_);
    return *this;
}

std::int64_t Tensor::rows() const {
    if (shape_.empty()) return 1;
    const auto c = shape_.back();
    return c == 0 ? 0 : numel() / c;
}

void Tensor::reshape(std::vector<std::int64_t> shape) {
    BOREAS_CHECK(product(shape) == numel(), "cannot reshape {} values to a product of {}", numel(),
                 product(shape));
    shape_ = std::move(shape);
}

std::string Tensor::shape_string() const {
    std::string text = "[";
    for (std::size_t i = 0; i < shape_.size(); ++i)
        text += (i ? ", " : "") + std::to_string(shape_[i]);
    return text + "]";
}

Bf16Buffer::Bf16Buffer(std::size_t count) : memory_(tensor_memory()), count_(count) {
    const std::size_t bytes = count * sizeof(std::uint16_t);
    if (count == 0) return;
    data_ = static_cast<std::uint16_t*>(memory_ ? memory_->allocate(bytes) : ::operator new(bytes));
}

Bf16Buffer::~Bf16Buffer() {
    release();
}

Bf16Buffer::Bf16Buffer(Bf16Buffer&& other) noexcept
    : memory_(other.memory_),
      data_(std::exchange(other.data_, nullptr)),
      count_(std::exchange(other.count_, 0)) {}

Bf16Buffer& Bf16Buffer::operator=(Bf16Buffer&& other) noexcept {
    if (this != &other) {
        release();
        memory_ = other.memory_;
        data_ = std::exchange(other.data_, nullptr);
        count_ = std::exchange(other.count_, 0);
    }
    return *this;
}

void Bf16Buffer::release() noexcept {
    if (data_ != nullptr) {
        if (memory_)
            memory_->deallocate(data_, count_ * sizeof(std::uint16_t));
        else
            ::operator delete(data_);
    }
    data_ = nullptr;
    count_ = 0;
}

void Bf16Buffer::move_to(MemoryResource* memory) {
    if (memory == memory_ || count_ == 0) return;
    const TensorMemoryScope scope(memory);
    Bf16Buffer moved(count_);
    std::copy_n(data_, count_, moved.data_);
    *this = std::move(moved);
}

}  // namespace boreas
