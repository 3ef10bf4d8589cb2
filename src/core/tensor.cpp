#include "boreas/core/tensor.hpp"

#include <numeric>

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

}  // namespace

Tensor::Tensor(std::vector<std::int64_t> shape, float fill)
    : shape_(std::move(shape)), data_(static_cast<std::size_t>(product(shape_)), fill) {}

Tensor::Tensor(std::vector<std::int64_t> shape, std::vector<float> data)
    : shape_(std::move(shape)), data_(std::move(data)) {
    BOREAS_CHECK(product(shape_) == static_cast<std::int64_t>(data_.size()),
                 "tensor of shape {} cannot hold {} values", shape_string(), data_.size());
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
    for (std::size_t i = 0; i < shape_.size(); ++i) text += (i ? ", " : "") + std::to_string(shape_[i]);
    return text + "]";
}

}  // namespace boreas
