#pragma once
/// A dense float32 tensor owning its data, row-major. Deliberately small: model code works on
/// [rows, channels] matrices and hands raw pointers to the kernels.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace boreas {

namespace detail {
/// Leaves values uninitialised when a vector grows: Tensor fills or copies them itself, with
/// all threads for large tensors (one thread zeroing or copying a 100 MB activation leaves the
/// others idle, and first touch by the threads that use the pages is what NUMA nodes want).
template <class T>
struct UninitialisedAllocator : std::allocator<T> {
    using std::allocator<T>::allocator;
    template <class U>
    struct rebind {
        using other = UninitialisedAllocator<U>;
    };
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        if constexpr (sizeof...(Args) == 0)
            ::new (static_cast<void*>(p)) U;
        else
            ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};
}  // namespace detail

class Tensor {
  public:
    Tensor() = default;
    explicit Tensor(std::vector<std::int64_t> shape, float fill = 0.0f);
    Tensor(std::vector<std::int64_t> shape, const std::vector<float>& data);
    /// A tensor whose values are left as the allocator gives them, for outputs that a kernel
    /// overwrites whole: saves a fill pass over memory.
    static Tensor uninitialised(std::vector<std::int64_t> shape);
    Tensor(const Tensor& other);
    Tensor& operator=(const Tensor& other);
    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;

    const std::vector<std::int64_t>& shape() const { return shape_; }
    std::int64_t dim(std::size_t i) const { return shape_.at(i); }
    std::size_t rank() const { return shape_.size(); }
    std::int64_t numel() const { return static_cast<std::int64_t>(data_.size()); }
    /// Rows and columns of the tensor seen as a matrix [product of leading dims, last dim].
    std::int64_t rows() const;
    std::int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }

    float* data() { return data_.data(); }
    const float* data() const { return data_.data(); }
    float* row(std::int64_t r) { return data_.data() + r * cols(); }
    const float* row(std::int64_t r) const { return data_.data() + r * cols(); }
    std::span<const float> values() const { return data_; }
    std::span<float> storage() { return data_; }

    /// Same data, new shape with the same element count.
    void reshape(std::vector<std::int64_t> shape);
    std::string shape_string() const;

  private:
    std::vector<std::int64_t> shape_;
    std::vector<float, detail::UninitialisedAllocator<float>> data_;
};

}  // namespace boreas
