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
/// Leaves values uninitialised when a vector grows (byte buffers that are overwritten whole).
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

/// Where tensors keep their values: the host heap by default; a backend's memory while a
/// TensorMemoryScope names it (the CUDA backend's managed memory, so that a model's tensors are
/// read by its kernels on the device and by its element-wise loops on the host). The memory must
/// be addressable from the host.
class MemoryResource {
  public:
    virtual ~MemoryResource() = default;
    virtual void* allocate(std::size_t bytes) = 0;
    virtual void deallocate(void* data, std::size_t bytes) = 0;
};

/// The memory new tensors take their values from: null for the host heap. One per process (as
/// the active backend is), so tensors made on worker threads go to the same memory.
MemoryResource* tensor_memory();

/// New tensors take their values from `memory` (null: the host heap) while this lives.
class TensorMemoryScope {
  public:
    explicit TensorMemoryScope(MemoryResource* memory);
    ~TensorMemoryScope();
    TensorMemoryScope(const TensorMemoryScope&) = delete;
    TensorMemoryScope& operator=(const TensorMemoryScope&) = delete;

  private:
    MemoryResource* previous_;
};

/// bf16 bits (uint16) owned like a Tensor's values: from the memory tensors take theirs from
/// when it is made (tensor_memory(): the host heap, or a backend's), so that a backend's kernels
/// read and write them in place. The bf16 forward's keys and values, weights kept in bf16.
class Bf16Buffer {
  public:
    Bf16Buffer() = default;
    /// `count` values, uninitialised.
    explicit Bf16Buffer(std::size_t count);
    ~Bf16Buffer();
    Bf16Buffer(Bf16Buffer&& other) noexcept;
    Bf16Buffer& operator=(Bf16Buffer&& other) noexcept;
    Bf16Buffer(const Bf16Buffer&) = delete;
    Bf16Buffer& operator=(const Bf16Buffer&) = delete;

    std::uint16_t* data() const { return data_; }
    std::size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    /// The same values in `memory` (null: the host heap); nothing happens when they are there.
    void move_to(MemoryResource* memory);

  private:
    void release() noexcept;
    MemoryResource* memory_ = nullptr;
    std::uint16_t* data_ = nullptr;
    std::size_t count_ = 0;
};

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
    Tensor(Tensor&& other) noexcept;
    Tensor& operator=(Tensor&& other) noexcept;
    ~Tensor();

    const std::vector<std::int64_t>& shape() const { return shape_; }
    std::int64_t dim(std::size_t i) const { return shape_.at(i); }
    std::size_t rank() const { return shape_.size(); }
    std::int64_t numel() const { return count_; }
    /// Rows and columns of the tensor seen as a matrix [product of leading dims, last dim].
    std::int64_t rows() const;
    std::int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }

    float* data() { return data_; }
    const float* data() const { return data_; }
    float* row(std::int64_t r) { return data_ + r * cols(); }
    const float* row(std::int64_t r) const { return data_ + r * cols(); }
    std::span<const float> values() const { return {data_, static_cast<std::size_t>(count_)}; }
    std::span<float> storage() { return {data_, static_cast<std::size_t>(count_)}; }
    /// The memory the values came from (null: the host heap).
    MemoryResource* memory() const { return memory_; }
    /// The same values in `memory` (null: the host heap); the tensor itself (same address) is
    /// kept, so pointers to it stay valid. Nothing happens when they are there already.
    void move_to(MemoryResource* memory);

    /// Same data, new shape with the same element count.
    void reshape(std::vector<std::int64_t> shape);
    std::string shape_string() const;

  private:
    std::vector<std::int64_t> shape_;
    float* data_ = nullptr;
    std::int64_t count_ = 0;
    MemoryResource* memory_ = nullptr;  ///< where data_ came from; null: the host heap

    /// count_ values from tensor_memory(), untouched (data_ was released).
    void allocate(std::int64_t count);
    void release() noexcept;
};

}  // namespace boreas
