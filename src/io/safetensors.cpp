#include "boreas/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "boreas/core/error.hpp"
#include "boreas/io/atomic_file.hpp"

namespace boreas::io {
namespace {

// The reference implementation's limit (safetensors/src/tensor.rs MAX_HEADER_SIZE).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeName {
    DType dtype;
    const char* name;
    std::size_t size;
};
constexpr DTypeName kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1},    {DType::U64, "U64", 8},
    {DType::U32, "U32", 4}, {DType::U16, "U16", 2}, {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

const DTypeName& lookup(DType dtype) {
    for (const auto& entry : kDTypes)
        if (entry.dtype == dtype) return entry;
    BOREAS_FAIL("unknown dtype enumerator {}", static_cast<int>(dtype));
}

std::int64_t product(const std::vector<std::int64_t>& shape) {
    std::int64_t count = 1;
    for (auto extent : shape) count *= extent;
    return count;
}

}  // namespace

std::size_t dtype_size(DType dtype) { return lookup(dtype).size; }
const char* dtype_name(DType dtype) { return lookup(dtype).name; }
std::int64_t TensorInfo::numel() const { return product(shape); }

std::string shape_string(std::span<const std::int64_t> shape) {
    std::string text = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) text += ", ";
        text += std::to_string(shape[i]);
    }
    return text + "]";
}

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : path_(path) {
    const std::string file = path.string();
    int fd = ::open(path.c_str(), O_RDONLY);
    BOREAS_CHECK(fd >= 0, "cannot open '{}': {}", file, std::strerror(errno));
    struct stat status {};
    if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
        ::close(fd);
        BOREAS_FAIL("'{}' is not a regular file", file);
    }
    const auto file_bytes = static_cast<std::uint64_t>(status.st_size);
    if (file_bytes < 8) {
        ::close(fd);
        BOREAS_FAIL("'{}' is not a safetensors file: {} bytes, expected at least an 8-byte header "
                    "length (truncated?)", file, file_bytes);
    }
    void* mapping = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    BOREAS_CHECK(mapping != MAP_FAILED, "cannot map '{}': {}", file, std::strerror(errno));
    mapping_ = mapping;
    mapping_bytes_ = file_bytes;
    try {
        const auto* bytes = static_cast<const std::byte*>(mapping);
        std::uint64_t header_bytes = 0;
        std::memcpy(&header_bytes, bytes, 8);  // little-endian on every platform Boreas supports
        BOREAS_CHECK(header_bytes <= kMaxHeaderBytes && header_bytes <= file_bytes - 8,
                     "'{}' is not a valid safetensors file: header length {} but the file has "
                     "{} bytes (truncated or not safetensors)",
                     file, header_bytes, file_bytes);
        std::string_view header(reinterpret_cast<const char*>(bytes + 8), header_bytes);
        BOREAS_CHECK(!header.empty() && header.front() == '{',
                     "'{}' is not a valid safetensors file: its header does not start with '{{'",
                     file);
        nlohmann::json json;
        try {
            json = nlohmann::json::parse(header);
        } catch (const nlohmann::json::exception& error) {
            BOREAS_FAIL("'{}' has a corrupt safetensors header: {}", file, error.what());
        }
        BOREAS_CHECK(json.is_object(), "'{}': safetensors header is not a JSON object", file);
        data_ = bytes + 8 + header_bytes;
        const std::uint64_t buffer_bytes = file_bytes - 8 - header_bytes;
        std::uint64_t covered_end = 0;
        for (const auto& [name, entry] : json.items()) {
            if (name == "__metadata__") {
                BOREAS_CHECK(entry.is_object(), "'{}': __metadata__ is not an object", file);
                for (const auto& [key, value] : entry.items()) {
                    BOREAS_CHECK(value.is_string(), "'{}': __metadata__ '{}' is not a string",
                                 file, key);
                    metadata_[key] = value.get<std::string>();
                }
                continue;
            }
            BOREAS_CHECK(entry.is_object() && entry.contains("dtype") &&
                             entry.contains("shape") && entry.contains("data_offsets"),
                         "'{}': tensor '{}' lacks dtype, shape or data_offsets", file, name);
            TensorInfo info{};
            const auto dtype_text = entry["dtype"].is_string() ? entry["dtype"].get<std::string>()
                                                                : std::string("?");
            const DTypeName* match = nullptr;
            for (const auto& candidate : kDTypes)
                if (dtype_text == candidate.name) match = &candidate;
            BOREAS_CHECK(match != nullptr, "'{}': tensor '{}' has unsupported dtype '{}'", file,
                         name, dtype_text);
            info.dtype = match->dtype;
            BOREAS_CHECK(entry["shape"].is_array(), "'{}': tensor '{}' shape is not a list", file,
                         name);
            for (const auto& extent : entry["shape"]) {
                BOREAS_CHECK(extent.is_number_unsigned() || (extent.is_number_integer() &&
                                                             extent.get<std::int64_t>() >= 0),
                             "'{}': tensor '{}' has an invalid extent {}", file, name,
                             extent.dump());
                info.shape.push_back(extent.get<std::int64_t>());
            }
            const auto& offsets = entry["data_offsets"];
            BOREAS_CHECK(offsets.is_array() && offsets.size() == 2 &&
                             offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
                         "'{}': tensor '{}' data_offsets must be two non-negative integers", file,
                         name);
            const auto begin = offsets[0].get<std::uint64_t>();
            const auto end = offsets[1].get<std::uint64_t>();
            const auto expected = static_cast<std::uint64_t>(info.numel()) * match->size;
            BOREAS_CHECK(begin <= end && end - begin == expected,
                         "'{}': tensor '{}' ({} {}) needs {} bytes but its data_offsets span "
                         "[{}, {})", file, name, dtype_text, shape_string(info.shape), expected,
                         begin, end);
            BOREAS_CHECK(end <= buffer_bytes,
                         "'{}': tensor '{}' ends at byte {} of a {}-byte data buffer (file "
                         "truncated?)", file, name, end, buffer_bytes);
            BOREAS_CHECK(begin % match->size == 0,
                         "'{}': tensor '{}' data is not aligned to its element size", file, name);
            info.offset = begin;
            info.bytes = expected;
            covered_end = std::max(covered_end, end);
            tensors_.emplace(name, std::move(info));
        }
        BOREAS_CHECK(covered_end == buffer_bytes,
                     "'{}': data buffer has {} bytes but the tensors cover {} (truncated or "
                     "trailing garbage)", file, buffer_bytes, covered_end);
    } catch (...) {
        ::munmap(mapping_, mapping_bytes_);
        mapping_ = nullptr;
        throw;
    }
}

SafetensorsReader::~SafetensorsReader() {
    if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
}

const TensorInfo& SafetensorsReader::info(const std::string& name) const {
    auto it = tensors_.find(name);
    BOREAS_CHECK(it != tensors_.end(), "'{}' has no tensor '{}'", path_.string(), name);
    return it->second;
}

const TensorInfo& SafetensorsReader::checked(const std::string& name, DType dtype,
                                             const std::vector<std::int64_t>& expected) const {
    const auto& tensor = info(name);
    BOREAS_CHECK(tensor.dtype == dtype, "'{}': tensor '{}' has dtype {}, expected {}",
                 path_.string(), name, dtype_name(tensor.dtype), dtype_name(dtype));
    if (!expected.empty()) {
        bool same = expected.size() == tensor.shape.size();
        for (std::size_t i = 0; same && i < expected.size(); ++i)
            same = expected[i] < 0 || expected[i] == tensor.shape[i];
        BOREAS_CHECK(same, "'{}': tensor '{}' has shape {}, expected {}", path_.string(), name,
                     shape_string(tensor.shape), shape_string(expected));
    }
    return tensor;
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                            const void* data) {
    const auto count = static_cast<std::size_t>(product(shape));
    add(name, dtype, std::move(shape), data, count);
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                            const void* data, std::size_t count) {
    BOREAS_CHECK(name != "__metadata__" && !name.empty(), "invalid tensor name '{}'", name);
    BOREAS_CHECK(static_cast<std::int64_t>(count) == product(shape),
                 "tensor '{}': {} elements do not fill shape {}", name, count, shape_string(shape));
    Entry entry{dtype, std::move(shape), std::vector<std::byte>(count * dtype_size(dtype))};
    if (!entry.bytes.empty()) std::memcpy(entry.bytes.data(), data, entry.bytes.size());
    entries_[name] = std::move(entry);
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
    // Reference order: larger alignment first, then by name; keeps every tensor aligned.
    std::vector<const std::pair<const std::string, Entry>*> order;
    for (const auto& item : entries_) order.push_back(&item);
    std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) {
        return dtype_size(a->second.dtype) > dtype_size(b->second.dtype);
    });
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::size_t offset = 0;
    for (const auto* item : order) {
        const auto& entry = item->second;
        header[item->first] = {{"dtype", dtype_name(entry.dtype)},
                               {"shape", entry.shape},
                               {"data_offsets", {offset, offset + entry.bytes.size()}}};
        offset += entry.bytes.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    const std::uint64_t header_bytes = text.size();
    write_atomically(path, [&](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(&header_bytes), 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const auto* item : order)
            out.write(reinterpret_cast<const char*>(item->second.bytes.data()),
                      static_cast<std::streamsize>(item->second.bytes.size()));
    });
}

}  // namespace boreas::io
