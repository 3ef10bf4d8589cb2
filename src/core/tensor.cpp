#include "boreas/core/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>

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

/// Allocates `count` values, untouched (huge pages asked for large blocks).
template <class Vector>
void allocate(Vector& data, std::size_t count) {
    if (count * sizeof(float) >= kHugePageMinBytes) {
        data.reserve(count);
        advise_huge_pages(data.data(), count * sizeof(float));
    }
    data.resize(count);  // the allocator leaves the values uninitialised
}

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

Tensor::Tensor(std::vector<std::int64_t> shape, float fill) : shape_(std::move(shape)) {
    const auto count = product(shape_);
    allocate(data_, static_cast<std::size_t>(count));
    parallel_fill(data_.data(), count, fill);
}

Tensor::Tensor(std::vector<std::int64_t> shape, const std::vector<float>& data)
    : shape_(std::move(shape)) {
    BOREAS_CHECK(product(shape_) == static_cast<std::int64_t>(data.size()),
                 "tensor of shape {} cannot hold {} values", shape_string(), data.size());
    allocate(data_, data.size());
    parallel_copy(data.data(), static_cast<std::int64_t>(data.size()), data_.data());
}

Tensor Tensor::uninitialised(std::vector<std::int64_t> shape) {
    Tensor t;
    const auto count = product(shape);
    t.shape_ = std::move(shape);
    allocate(t.data_, static_cast<std::size_t>(count));
    return t;
}

Tensor::Tensor(const Tensor& other) : shape_(other.shape_) {
    allocate(data_, other.data_.size());
    parallel_copy(other.data_.data(), other.numel(), data_.data());
}

Tensor& Tensor::operator=(const Tensor& other) {
    if (this == &other) return *this;
    shape_ = other.shape_;
    if (data_.size() != other.data_.size()) {
        data_ = {};  // release first: the peak holds one buffer, not two
        allocate(data_, other.data_.size());
    }
    parallel_copy(other.data_.data(), other.numel(), data_.data());
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

}  // namespace boreas
