#pragma once
/// safetensors files (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian
/// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
/// then one byte buffer. The reader maps the file and validates every entry before handing out
/// views; the writer produces what the reference implementation produces (8-byte aligned header,
/// tensors sorted by alignment then name) and replaces its target atomically.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace boreas::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

template <typename T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::U8; }

struct TensorInfo {
    DType dtype;
    std::vector<std::int64_t> shape;
    std::size_t offset;  ///< from the start of the data buffer
    std::size_t bytes;

    std::int64_t numel() const;
};

std::string shape_string(std::span<const std::int64_t> shape);

class SafetensorsReader {
public:
    /// Maps and validates the file; throws boreas::Error naming the file and what is wrong.
    explicit SafetensorsReader(const std::filesystem::path& path);
    ~SafetensorsReader();
    SafetensorsReader(const SafetensorsReader&) = delete;
    SafetensorsReader& operator=(const SafetensorsReader&) = delete;

    const std::filesystem::path& path() const { return path_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
    bool contains(const std::string& name) const { return tensors_.count(name) > 0; }

    /// The tensor's description; throws naming the file and tensor if it is absent.
    const TensorInfo& info(const std::string& name) const;

    /// A typed view of the tensor's data, checked against the expected dtype and, where
    /// expected_shape is not empty, the expected shape (-1 matches any extent).
    template <typename T>
    std::span<const T> view(const std::string& name,
                            std::vector<std::int64_t> expected_shape = {}) const {
        const auto& tensor = checked(name, dtype_of<T>(), expected_shape);
        return {reinterpret_cast<const T*>(data_ + tensor.offset),
                static_cast<std::size_t>(tensor.numel())};
    }

private:
    const TensorInfo& checked(const std::string& name, DType dtype,
                              const std::vector<std::int64_t>& expected_shape) const;

    std::filesystem::path path_;
    std::map<std::string, std::string> metadata_;
    std::map<std::string, TensorInfo> tensors_;
    void* mapping_ = nullptr;
    std::size_t mapping_bytes_ = 0;
    const std::byte* data_ = nullptr;
};

class SafetensorsWriter {
public:
    /// Copies the data; the writer owns what it writes.
    void add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
             const void* data);
    template <typename T>
    void add(const std::string& name, std::vector<std::int64_t> shape, std::span<const T> data) {
        add(name, dtype_of<T>(), std::move(shape), data.data(), data.size());
    }
    void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

    /// Writes to a temporary file beside `path`, then renames it: a reader never sees a
    /// half-written file under the final name.
    void write(const std::filesystem::path& path) const;

private:
    void add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
             const void* data, std::size_t count);

    struct Entry {
        DType dtype;
        std::vector<std::int64_t> shape;
        std::vector<std::byte> bytes;
    };
    std::map<std::string, Entry> entries_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace boreas::io
