#include "boreas/data/zarr.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "boreas/core/error.hpp"
#include "boreas/io/zip_archive.hpp"
#include "codecs.hpp"

namespace boreas::data {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

/// Metadata files are small; a larger one is not Zarr metadata.
constexpr std::uint64_t kMaxMetadataBytes = 64ull << 20;
/// A stored chunk larger than this is refused before it is read (blosc1 cannot hold more than
/// 2 GiB; zstd or uncompressed chunks of an O1280 dataset stay below 8 GiB).
constexpr std::uint64_t kMaxChunkBytes = 8ull << 30;

}  // namespace

StoredBytes::~StoredBytes() {
    release();
}

void StoredBytes::release() {
    if (mapped_ != nullptr) ::munmap(mapped_, mapped_size_);
    mapped_ = nullptr;
    mapped_size_ = 0;
}

std::span<const std::byte> StoredBytes::bytes() const {
    if (mapped_ != nullptr) return {static_cast<const std::byte*>(mapped_), mapped_size_};
    return {buffer_.data(), buffer_.size()};
}

ByteBuffer& StoredBytes::buffer(std::size_t size) {
    release();
    buffer_.resize(size);
    return buffer_;
}

bool StoredBytes::map(int fd, std::size_t size) {
    release();
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) return false;
    mapped_ = p;
    mapped_size_ = size;
    return true;
}

bool KeyValueSource::get_into(const std::string& key, std::uint64_t max_bytes,
                              StoredBytes& value) const {
    const auto bytes = get(key, max_bytes);
    if (!bytes) return false;
    std::copy(bytes->begin(), bytes->end(), value.buffer(bytes->size()).begin());
    return true;
}

namespace {

class DirectorySource final : public KeyValueSource {
  public:
    explicit DirectorySource(fs::path root) : root_(std::move(root)), location_(root_.string()) {}

    std::optional<std::vector<std::byte>> get(const std::string& key,
                                              std::uint64_t max_bytes) const override {
        std::vector<std::byte> bytes;
        if (!read(key, max_bytes, bytes)) return std::nullopt;
        return bytes;
    }
    bool get_into(const std::string& key, std::uint64_t max_bytes,
                  StoredBytes& value) const override {
        const fs::path path = root_ / key;
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            std::error_code ec;
            BOREAS_CHECK(!fs::exists(path, ec) || fs::is_directory(path, ec),
                         "store '{}': key '{}' exists but cannot be opened", location_, key);
            return false;
        }
        struct stat info {};
        const bool sized = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
        const auto size = static_cast<std::uint64_t>(sized ? info.st_size : 0);
        bool ok = sized && size <= max_bytes;
        // Chunks of a megabyte or more are mapped; smaller ones cost less to copy than to map.
        if (ok && !(size >= (1u << 20) && value.map(fd, size))) {
            auto& buffer = value.buffer(size);
            std::size_t done = 0;
            while (ok && done < size) {
                const auto n = ::read(fd, buffer.data() + done, size - done);
                ok = n > 0 || (n < 0 && errno == EINTR);
                if (n > 0) done += static_cast<std::size_t>(n);
            }
        }
        ::close(fd);
        if (!sized) {  // a folder (absent chunk of a nested store) or something not a file
            BOREAS_CHECK(fs::is_directory(path), "store '{}': key '{}' is not a file", location_,
                         key);
            return false;
        }
        BOREAS_CHECK(size <= max_bytes,
                     "store '{}': key '{}' holds {} bytes, more than the {} "
                     "expected at most",
                     location_, key, size, max_bytes);
        BOREAS_CHECK(ok, "store '{}': key '{}' cannot be read", location_, key);
        return true;
    }
    const std::string& location() const override { return location_; }

  private:
    bool read(const std::string& key, std::uint64_t max_bytes,
              std::vector<std::byte>& buffer) const {
        const fs::path path = root_ / key;
        std::ifstream in(path, std::ios::binary | std::ios::ate);
        if (!in.is_open()) {
            std::error_code ec;
            BOREAS_CHECK(!fs::exists(path, ec) || fs::is_directory(path, ec),
                         "store '{}': key '{}' exists but cannot be opened", location_, key);
            return false;
        }
        const auto size = static_cast<std::uint64_t>(in.tellg());
        BOREAS_CHECK(size <= max_bytes,
                     "store '{}': key '{}' holds {} bytes, more than the {} "
                     "expected at most",
                     location_, key, size, max_bytes);
        buffer.resize(size);
        in.seekg(0);
        in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(size));
        BOREAS_CHECK(in.good() || size == 0, "store '{}': key '{}' cannot be read", location_, key);
        return true;
    }

    fs::path root_;
    std::string location_;
};

/// libzip handles are not safe from several threads: reads are serialised (stored members, as
/// zarr's ZipStore writes them, are a copy; decompression of chunks happens outside the lock).
class ZipSource final : public KeyValueSource {
  public:
    explicit ZipSource(std::unique_ptr<io::ZipArchive> zip) : zip_(std::move(zip)) {
        // A zipped store directory: its one top-level folder holds the group.
        if (!zip_->contains(".zgroup") && !zip_->contains(".zmetadata") &&
            !zip_->contains("zarr.json")) {
            for (const auto& member : zip_->members()) {
                const auto slash = member.find('/');
                if (slash == std::string::npos) continue;
                const auto top = member.substr(0, slash + 1);
                if (zip_->contains(top + ".zgroup") || zip_->contains(top + "zarr.json")) {
                    prefix_ = top;
                    break;
                }
            }
        }
    }
    std::optional<std::vector<std::byte>> get(const std::string& key,
                                              std::uint64_t max_bytes) const override {
        const std::lock_guard lock(mutex_);
        const std::string member = prefix_ + key;
        if (!zip_->contains(member)) return std::nullopt;
        const auto size = zip_->size(member);
        BOREAS_CHECK(size <= max_bytes,
                     "store '{}': key '{}' holds {} bytes, more than the {} "
                     "expected at most",
                     zip_->name(), key, size, max_bytes);
        return zip_->read(member, max_bytes);
    }
    const std::string& location() const override { return zip_->name(); }

  private:
    std::unique_ptr<io::ZipArchive> zip_;
    std::string prefix_;
    mutable std::mutex mutex_;
};

std::optional<json> read_json(const KeyValueSource& source, const std::string& key) {
    const auto bytes = source.get(key, kMaxMetadataBytes);
    if (!bytes) return std::nullopt;
    const std::string_view text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    return parse_python_json(text, fmt::format("store '{}': '{}'", source.location(), key));
}

std::int64_t checked_product(const std::vector<std::int64_t>& values, std::int64_t factor,
                             const std::string& origin) {
    std::int64_t product = factor;
    for (const auto v : values) {
        BOREAS_CHECK(v == 0 || product <= std::numeric_limits<std::int64_t>::max() / v,
                     "{}: sizes overflow 64 bits", origin);
        product *= v;
    }
    return product;
}

std::vector<std::int64_t> integer_list(const json& value, const char* key,
                                       const std::string& origin, std::int64_t minimum) {
    BOREAS_CHECK(value.contains(key) && value[key].is_array() && value[key].size() <= 32,
                 "{}: '{}' must be a list of at most 32 integers", origin, key);
    std::vector<std::int64_t> out;
    for (const auto& v : value[key]) {
        BOREAS_CHECK(v.is_number_integer() && v.get<std::int64_t>() >= minimum,
                     "{}: '{}' holds {}, integers >= {} expected", origin, key, v.dump(), minimum);
        out.push_back(v.get<std::int64_t>());
    }
    return out;
}

/// numpy's datetime64 unit as a fraction of a second.
bool datetime_unit(const std::string& unit, std::int64_t& num, std::int64_t& den) {
    static const std::map<std::string, std::pair<std::int64_t, std::int64_t>> units = {
        {"W", {604800, 1}}, {"D", {86400, 1}}, {"h", {3600, 1}},     {"m", {60, 1}},
        {"s", {1, 1}},      {"ms", {1, 1000}}, {"us", {1, 1000000}}, {"ns", {1, 1000000000}}};
    const auto it = units.find(unit);
    if (it == units.end()) return false;
    std::tie(num, den) = it->second;
    return true;
}

void parse_dtype(const std::string& text, ArrayMetadata& m, const std::string& origin) {
    const auto bad = [&] {
        BOREAS_FAIL(
            "{}: dtype '{}' is not read (float32/64, integers, bool, datetime64 with "
            "byte order < > or |)",
            origin, text);
    };
    if (text.size() < 3) bad();
    const char order = text[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') bad();
    m.big_endian = order == '>';
    const std::string kind = text.substr(1);
    static const std::map<std::string, std::pair<DType, int>> plain = {
        {"f4", {DType::float32, 4}}, {"f8", {DType::float64, 8}}, {"i1", {DType::int8, 1}},
        {"i2", {DType::int16, 2}},   {"i4", {DType::int32, 4}},   {"i8", {DType::int64, 8}},
        {"u1", {DType::uint8, 1}},   {"u2", {DType::uint16, 2}},  {"u4", {DType::uint32, 4}},
        {"u8", {DType::uint64, 8}},  {"b1", {DType::boolean, 1}}};
    if (const auto it = plain.find(kind); it != plain.end()) {
        std::tie(m.dtype, m.item_bytes) = it->second;
    } else if (kind.starts_with("M8[") && kind.back() == ']') {
        m.dtype = DType::datetime64;
        m.item_bytes = 8;
        if (!datetime_unit(kind.substr(3, kind.size() - 4), m.datetime_unit_seconds_num,
                           m.datetime_unit_seconds_den))
            bad();
    } else {
        bad();
    }
    if (m.item_bytes == 1) m.big_endian = false;
    m.dtype_text = text;
}

bool is_float(DType t) {
    return t == DType::float32 || t == DType::float64;
}

void parse_fill(const json& fill, ArrayMetadata& m, const std::string& origin) {
    if (fill.is_null()) return;
    m.has_fill = true;
    if (fill.is_string()) {
        const auto text = fill.get<std::string>();
        if (m.dtype == DType::datetime64 && text == "NaT") {
            m.fill_integer = std::numeric_limits<std::int64_t>::min();
            return;
        }
        BOREAS_CHECK(
            is_float(m.dtype) && (text == "NaN" || text == "Infinity" || text == "-Infinity"),
            "{}: fill_value '{}' does not suit dtype {}", origin, text, m.dtype_text);
        m.fill_value = text == "NaN"        ? std::numeric_limits<double>::quiet_NaN()
                       : text == "Infinity" ? std::numeric_limits<double>::infinity()
                                            : -std::numeric_limits<double>::infinity();
        return;
    }
    if (fill.is_boolean()) {
        m.fill_integer = fill.get<bool>() ? 1 : 0;
        m.fill_value = static_cast<double>(m.fill_integer);
        return;
    }
    BOREAS_CHECK(fill.is_number(), "{}: fill_value {} is not a number", origin, fill.dump());
    if (is_float(m.dtype)) {
        m.fill_value = fill.get<double>();
    } else {
        BOREAS_CHECK(fill.is_number_integer(),
                     "{}: fill_value {} of an integer array is not an "
                     "integer",
                     origin, fill.dump());
        m.fill_integer = fill.is_number_unsigned()
                             ? static_cast<std::int64_t>(fill.get<std::uint64_t>())
                             : fill.get<std::int64_t>();
        m.fill_value = static_cast<double>(m.fill_integer);
    }
}

template <typename T>
void store_value(std::byte* out, T value) {
    std::memcpy(out, &value, sizeof(T));
}

/// One element of the fill value in native byte order.
std::vector<std::byte> fill_element(const ArrayMetadata& m) {
    std::vector<std::byte> element(static_cast<std::size_t>(m.item_bytes));
    auto* p = element.data();
    switch (m.dtype) {
        case DType::float32:
            store_value(p, static_cast<float>(m.fill_value));
            break;
        case DType::float64:
            store_value(p, m.fill_value);
            break;
        case DType::int8:
            store_value(p, static_cast<std::int8_t>(m.fill_integer));
            break;
        case DType::int16:
            store_value(p, static_cast<std::int16_t>(m.fill_integer));
            break;
        case DType::int32:
            store_value(p, static_cast<std::int32_t>(m.fill_integer));
            break;
        case DType::int64:
        case DType::datetime64:
            store_value(p, m.fill_integer);
            break;
        case DType::uint8:
        case DType::boolean:
            store_value(p, static_cast<std::uint8_t>(m.fill_integer));
            break;
        case DType::uint16:
            store_value(p, static_cast<std::uint16_t>(m.fill_integer));
            break;
        case DType::uint32:
            store_value(p, static_cast<std::uint32_t>(m.fill_integer));
            break;
        case DType::uint64:
            store_value(p, static_cast<std::uint64_t>(m.fill_integer));
            break;
    }
    return element;
}

void byte_swap(std::span<std::byte> data, int item_bytes) {
    for (std::size_t i = 0; i + static_cast<std::size_t>(item_bytes) <= data.size();
         i += static_cast<std::size_t>(item_bytes))
        std::reverse(data.begin() + static_cast<std::ptrdiff_t>(i),
                     data.begin() + static_cast<std::ptrdiff_t>(i) + item_bytes);
}

}  // namespace

// --- sources -------------------------------------------------------------------------------

std::unique_ptr<KeyValueSource> open_source(const fs::path& path) {
    std::error_code ec;
    BOREAS_CHECK(fs::exists(path, ec), "dataset store '{}' does not exist", path.string());
    if (fs::is_directory(path, ec)) return std::make_unique<DirectorySource>(path);
    return std::make_unique<ZipSource>(std::make_unique<io::ZipArchive>(path));
}

std::unique_ptr<KeyValueSource> open_zip_in_memory(std::span<const std::byte> bytes,
                                                   std::string name) {
    return std::make_unique<ZipSource>(std::make_unique<io::ZipArchive>(bytes, std::move(name)));
}

// --- JSON ----------------------------------------------------------------------------------

json parse_python_json(std::string_view text, const std::string& origin) {
    std::string strict;
    strict.reserve(text.size() + 16);
    bool in_string = false, escaped = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            strict += c;
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') in_string = true;
        bool replaced = false;
        for (const std::string_view token : {"NaN", "Infinity", "-Infinity"}) {
            if (text.substr(i, token.size()) == token) {
                strict += '"';
                strict += token;
                strict += '"';
                i += token.size() - 1;
                replaced = true;
                break;
            }
        }
        if (!replaced) strict += c;
    }
    try {
        return json::parse(strict);
    } catch (const json::parse_error& e) {
        BOREAS_FAIL("{} is not valid JSON (byte {})", origin, e.byte);
    } catch (const json::exception& e) {  // numbers beyond double (1E600), found by fuzzing
        BOREAS_FAIL("{} is not JSON Boreas reads: {}", origin, e.what());
    }
}

// --- array metadata --------------------------------------------------------------------------

std::int64_t ArrayMetadata::chunk_elements() const {
    std::int64_t n = 1;
    for (const auto c : chunks) n *= c;
    return n;
}

std::int64_t ArrayMetadata::elements() const {
    std::int64_t n = 1;
    for (const auto s : shape) n *= s;
    return n;
}

std::vector<std::int64_t> ArrayMetadata::chunk_grid() const {
    std::vector<std::int64_t> grid(shape.size());
    for (std::size_t d = 0; d < shape.size(); ++d) grid[d] = (shape[d] + chunks[d] - 1) / chunks[d];
    return grid;
}

std::string ArrayMetadata::chunk_key(std::span<const std::int64_t> index) const {
    std::string key = name.empty() ? "" : name + "/";
    if (index.empty()) return key + "0";
    for (std::size_t d = 0; d < index.size(); ++d) {
        if (d) key += separator;
        key += std::to_string(index[d]);
    }
    return key;
}

ArrayMetadata parse_array_metadata(const json& z, const std::string& name,
                                   const std::string& origin) {
    BOREAS_CHECK(z.is_object(), "{}: not a JSON object", origin);
    BOREAS_CHECK(z.value("zarr_format", json()).is_number_integer() &&
                     z["zarr_format"].get<std::int64_t>() == 2,
                 "{}: zarr_format {} (2 expected)", origin, z.value("zarr_format", json()).dump());
    ArrayMetadata m;
    m.name = name;
    m.shape = integer_list(z, "shape", origin, 0);
    m.chunks = integer_list(z, "chunks", origin, 1);
    BOREAS_CHECK(m.shape.size() == m.chunks.size(), "{}: shape has {} dimensions, chunks {}",
                 origin, m.shape.size(), m.chunks.size());
    BOREAS_CHECK(z.value("dtype", json()).is_string(),
                 "{}: 'dtype' must be a string (structured dtypes are not read)", origin);
    parse_dtype(z["dtype"].get<std::string>(), m, origin);
    checked_product(m.shape, m.item_bytes, origin);
    const auto chunk_bytes = checked_product(m.chunks, m.item_bytes, origin);
    BOREAS_CHECK(static_cast<std::uint64_t>(chunk_bytes) <= kMaxChunkBytes,
                 "{}: chunks of {} bytes (at most {} are read)", origin, chunk_bytes,
                 kMaxChunkBytes);
    const auto order = z.value("order", json("C"));
    BOREAS_CHECK(order == "C" || (order == "F" && m.shape.size() <= 1), "{}: order {} (C expected)",
                 origin, order.dump());
    const auto filters = z.value("filters", json());
    BOREAS_CHECK(filters.is_null() || (filters.is_array() && filters.empty()),
                 "{}: filters {} are not applied by Boreas (none expected)", origin,
                 filters.dump());
    const auto compressor = z.value("compressor", json());
    if (!compressor.is_null()) {
        BOREAS_CHECK(compressor.is_object() && compressor.value("id", json()).is_string(),
                     "{}: compressor {} has no 'id'", origin, compressor.dump());
        m.compressor = compressor["id"].get<std::string>();
        BOREAS_CHECK(!m.compressor.empty() && detail::known_compressor(m.compressor),
                     "{}: compressor '{}' is not read (blosc, zstd, lz4, zlib, gzip or none)",
                     origin, m.compressor);
        if (m.compressor == "blosc" && compressor.value("cname", json()).is_string())
            m.compressor_detail = compressor["cname"].get<std::string>();
    }
    const auto separator = z.value("dimension_separator", json("."));
    BOREAS_CHECK(separator == "." || separator == "/", "{}: dimension_separator {} ('.' or '/')",
                 origin, separator.dump());
    m.separator = separator.get<std::string>()[0];
    parse_fill(z.value("fill_value", json()), m, origin);
    return m;
}

// --- arrays ----------------------------------------------------------------------------------

ZarrArray::ZarrArray(std::shared_ptr<const KeyValueSource> source, ArrayMetadata metadata)
    : source_(std::move(source)), metadata_(std::move(metadata)) {}

std::string ZarrArray::where() const {
    return fmt::format("store '{}', array '{}'", source_->location(), metadata_.name);
}

std::uint64_t ZarrArray::stored_bound(std::span<const std::int64_t> index) const {
    const auto& m = metadata_;
    BOREAS_CHECK(index.size() == m.shape.size(),
                 "{}: chunk index of {} dimensions, the array "
                 "has {}",
                 where(), index.size(), m.shape.size());
    const auto grid = m.chunk_grid();
    for (std::size_t d = 0; d < index.size(); ++d)
        BOREAS_CHECK(index[d] >= 0 && index[d] < grid[d],
                     "{}: chunk {} is outside the array's {} chunks along dimension {}", where(),
                     m.chunk_key(index), grid[d], d);
    return m.compressor.empty() ? static_cast<std::uint64_t>(m.chunk_bytes())
                                : static_cast<std::uint64_t>(m.chunk_bytes()) * 2 + (1 << 16);
}

std::optional<std::vector<std::byte>> ZarrArray::read_raw_chunk(
    std::span<const std::int64_t> index) const {
    const auto bound = stored_bound(index);
    return source_->get(metadata_.chunk_key(index), bound);
}

void ZarrArray::decode_chunk(std::span<const std::byte> stored, std::span<std::byte> out,
                             const std::string& key) const {
    const auto& m = metadata_;
    BOREAS_CHECK(out.size() == static_cast<std::size_t>(m.chunk_bytes()),
                 "{}: a buffer of {} bytes for a chunk of {}", where(), out.size(),
                 m.chunk_bytes());
    const std::string at = fmt::format("store '{}', chunk '{}'", source_->location(), key);
    detail::decompress(m.compressor, stored, out, at);
    if (m.big_endian) byte_swap(out, m.item_bytes);
}

bool ZarrArray::read_chunk(std::span<const std::int64_t> index, std::span<std::byte> out) const {
    StoredBytes stored;
    return read_chunk(index, out, stored);
}

bool ZarrArray::read_chunk(std::span<const std::int64_t> index, std::span<std::byte> out,
                           StoredBytes& stored) const {
    const auto& m = metadata_;
    BOREAS_CHECK(out.size() == static_cast<std::size_t>(m.chunk_bytes()),
                 "{}: a buffer of {} bytes for a chunk of {}", where(), out.size(),
                 m.chunk_bytes());
    const auto bound = stored_bound(index);
    if (!source_->get_into(m.chunk_key(index), bound, stored)) {
        BOREAS_CHECK(m.has_fill,
                     "store '{}': chunk '{}' is missing and the array has no "
                     "fill_value",
                     source_->location(), m.chunk_key(index));
        const auto element = fill_element(m);
        for (std::size_t i = 0; i < out.size(); i += element.size())
            std::memcpy(out.data() + i, element.data(), element.size());
        return false;
    }
    decode_chunk(stored.bytes(), out, m.chunk_key(index));
    return true;
}

void ZarrArray::read_region(std::span<const std::int64_t> start,
                            std::span<const std::int64_t> count, std::span<std::byte> out,
                            StoredBytes* stored) const {
    const auto& m = metadata_;
    const auto nd = m.shape.size();
    BOREAS_CHECK(start.size() == nd && count.size() == nd,
                 "{}: a region of {} dimensions, the array has {}", where(), start.size(), nd);
    std::int64_t elements = 1;
    for (std::size_t d = 0; d < nd; ++d) {
        BOREAS_CHECK(start[d] >= 0 && count[d] >= 0 && start[d] <= m.shape[d] - count[d],
                     "{}: region [{}, {}) along dimension {} is outside its {} elements", where(),
                     start[d], start[d] + count[d], d, m.shape[d]);
        elements *= count[d];
    }
    BOREAS_CHECK(out.size() == static_cast<std::size_t>(elements * m.item_bytes),
                 "{}: a buffer of {} bytes for a region of {}", where(), out.size(),
                 elements * m.item_bytes);
    if (elements == 0) return;
    // A region that is exactly one chunk (one date of an anemoi store) decodes straight into
    // `out`: no chunk buffer, no copy.
    bool one_chunk = true;
    for (std::size_t d = 0; d < nd; ++d)
        one_chunk = one_chunk && start[d] % m.chunks[d] == 0 && count[d] == m.chunks[d];
    if (one_chunk) {
        std::vector<std::int64_t> index(nd);
        for (std::size_t d = 0; d < nd; ++d) index[d] = start[d] / m.chunks[d];
        StoredBytes local;
        read_chunk(index, out, stored ? *stored : local);
        return;
    }
    // Row-major strides of the region and of a chunk, in elements.
    std::vector<std::int64_t> stride(nd, 1), chunk_stride(nd, 1);
    for (std::size_t d = nd; d-- > 1;) {
        stride[d - 1] = stride[d] * count[d];
        chunk_stride[d - 1] = chunk_stride[d] * m.chunks[d];
    }
    std::vector<std::int64_t> first(nd), last(nd), index(nd);
    for (std::size_t d = 0; d < nd; ++d) {
        first[d] = start[d] / m.chunks[d];
        last[d] = (start[d] + count[d] - 1) / m.chunks[d];
    }
    index = first;
    std::vector<std::byte> chunk(static_cast<std::size_t>(m.chunk_bytes()));
    const auto item = static_cast<std::size_t>(m.item_bytes);
    while (true) {
        read_chunk(index, chunk);
        // The part of this chunk inside the region: [lo, hi) in array coordinates.
        std::vector<std::int64_t> lo(nd), hi(nd), at(nd);
        for (std::size_t d = 0; d < nd; ++d) {
            lo[d] = std::max(start[d], index[d] * m.chunks[d]);
            hi[d] = std::min(start[d] + count[d], (index[d] + 1) * m.chunks[d]);
        }
        at = lo;
        const std::int64_t row = nd ? hi[nd - 1] - lo[nd - 1] : 1;
        while (true) {  // one contiguous row along the last dimension at a time
            std::int64_t src = 0, dst = 0;
            for (std::size_t d = 0; d < nd; ++d) {
                src += (at[d] - index[d] * m.chunks[d]) * chunk_stride[d];
                dst += (at[d] - start[d]) * stride[d];
            }
            std::memcpy(out.data() + static_cast<std::size_t>(dst) * item,
                        chunk.data() + static_cast<std::size_t>(src) * item,
                        static_cast<std::size_t>(row) * item);
            std::size_t d = nd ? nd - 1 : 0;
            bool done = true;
            while (d-- > 0) {
                if (++at[d] < hi[d]) {
                    done = false;
                    break;
                }
                at[d] = lo[d];
            }
            if (done) break;
        }
        std::size_t d = nd;
        bool done = true;
        while (d-- > 0) {
            if (++index[d] <= last[d]) {
                done = false;
                break;
            }
            index[d] = first[d];
        }
        if (done) break;
    }
}

std::vector<std::byte> ZarrArray::read_whole() const {
    const auto& m = metadata_;
    BOREAS_CHECK(static_cast<std::uint64_t>(m.elements()) * m.item_bytes <= kMaxMetadataBytes,
                 "{}: {} elements is too large to read whole", where(), m.elements());
    std::vector<std::byte> whole(static_cast<std::size_t>(m.elements() * m.item_bytes));
    const std::vector<std::int64_t> start(m.shape.size(), 0);
    read_region(start, m.shape, whole);
    return whole;
}

namespace {

template <typename T>
T load(const std::byte* p) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
}

/// Element `i` of `bytes` (native order) converted to `Out`; `uint64_fits` says whether a uint64
/// value may be taken (integers: only up to INT64_MAX).
template <typename Out>
Out element(const std::vector<std::byte>& bytes, std::size_t i, const ArrayMetadata& m,
            bool& uint64_fits) {
    const auto* p = bytes.data() + i * static_cast<std::size_t>(m.item_bytes);
    switch (m.dtype) {
        case DType::float32:
            return static_cast<Out>(load<float>(p));
        case DType::float64:
            return static_cast<Out>(load<double>(p));
        case DType::int8:
            return static_cast<Out>(load<std::int8_t>(p));
        case DType::int16:
            return static_cast<Out>(load<std::int16_t>(p));
        case DType::int32:
            return static_cast<Out>(load<std::int32_t>(p));
        case DType::int64:
        case DType::datetime64:
            return static_cast<Out>(load<std::int64_t>(p));
        case DType::uint8:
        case DType::boolean:
            return static_cast<Out>(load<std::uint8_t>(p));
        case DType::uint16:
            return static_cast<Out>(load<std::uint16_t>(p));
        case DType::uint32:
            return static_cast<Out>(load<std::uint32_t>(p));
        case DType::uint64: {
            const auto v = load<std::uint64_t>(p);
            uint64_fits = v <= static_cast<std::uint64_t>(INT64_MAX);
            return static_cast<Out>(v);
        }
    }
    return Out{};
}

}  // namespace

std::vector<double> ZarrArray::read_doubles() const {
    const auto& m = metadata_;
    BOREAS_CHECK(m.dtype != DType::datetime64, "{}: a datetime64 array read as numbers", where());
    const auto bytes = read_whole();
    std::vector<double> out(static_cast<std::size_t>(m.elements()));
    bool fits = true;
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = element<double>(bytes, i, m, fits);
    return out;
}

std::vector<std::int64_t> ZarrArray::read_integers() const {
    const auto& m = metadata_;
    BOREAS_CHECK(!is_float(m.dtype), "{}: a {} array read as integers", where(), m.dtype_text);
    const auto bytes = read_whole();
    std::vector<std::int64_t> out(static_cast<std::size_t>(m.elements()));
    for (std::size_t i = 0; i < out.size(); ++i) {
        bool fits = true;
        out[i] = element<std::int64_t>(bytes, i, m, fits);
        BOREAS_CHECK(fits, "{}: element {} is beyond int64", where(), i);
    }
    return out;
}

std::vector<std::int64_t> ZarrArray::read_datetimes_seconds() const {
    const auto& m = metadata_;
    BOREAS_CHECK(m.dtype == DType::datetime64, "{}: dtype {} (datetime64 expected)", where(),
                 m.dtype_text);
    auto values = read_integers();
    const auto num = m.datetime_unit_seconds_num, den = m.datetime_unit_seconds_den;
    for (std::size_t i = 0; i < values.size(); ++i) {
        const auto v = values[i];
        BOREAS_CHECK(v != std::numeric_limits<std::int64_t>::min(), "{}: element {} is NaT",
                     where(), i);
        BOREAS_CHECK(v % den == 0, "{}: element {} ({} in units of 1/{} s) is not a whole second",
                     where(), i, v, den);
        const auto seconds = v / den;
        BOREAS_CHECK(seconds <= INT64_MAX / num && seconds >= INT64_MIN / num,
                     "{}: element {} overflows seconds", where(), i);
        values[i] = seconds * num;
    }
    return values;
}

// --- groups ----------------------------------------------------------------------------------

struct ZarrGroup::State {
    std::shared_ptr<const KeyValueSource> source;
    json attributes = json::object();
    json consolidated;  // .zmetadata's "metadata", or null
};

ZarrGroup::ZarrGroup(const fs::path& path) : ZarrGroup(open_source(path)) {}

ZarrGroup::ZarrGroup(std::unique_ptr<KeyValueSource> source) : state_(std::make_unique<State>()) {
    state_->source = std::move(source);
    const auto& src = *state_->source;
    const auto& where = src.location();
    if (const auto v3 = src.get("zarr.json", kMaxMetadataBytes)) {
        BOREAS_FAIL(
            "store '{}' is a Zarr v3 store (zarr.json): Boreas reads Zarr v2 stores, as "
            "anemoi-datasets writes them (convert with zarr-python or anemoi-datasets "
            "copy)",
            where);
    }
    if (auto meta = read_json(src, ".zmetadata")) {
        BOREAS_CHECK(meta->is_object() && meta->value("metadata", json()).is_object(),
                     "store '{}': '.zmetadata' has no 'metadata' object", where);
        state_->consolidated = std::move((*meta)["metadata"]);
    }
    json group;
    if (!state_->consolidated.is_null() && state_->consolidated.contains(".zgroup")) {
        group = state_->consolidated[".zgroup"];
    } else {
        auto read = read_json(src, ".zgroup");
        BOREAS_CHECK(read.has_value() || !src.get(".zarray", kMaxMetadataBytes),
                     "store '{}' is a single Zarr array, not a group (anemoi datasets are groups "
                     "of arrays)",
                     where);
        BOREAS_CHECK(read.has_value(), "store '{}' is not a Zarr store: '.zgroup' is missing",
                     where);
        group = std::move(*read);
    }
    BOREAS_CHECK(group.is_object() && group.value("zarr_format", json()) == 2,
                 "store '{}': '.zgroup' has zarr_format {} (2 expected)", where,
                 group.is_object() ? group.value("zarr_format", json()).dump() : group.dump());
    if (!state_->consolidated.is_null() && state_->consolidated.contains(".zattrs")) {
        state_->attributes = state_->consolidated[".zattrs"];
    } else if (auto attrs = read_json(src, ".zattrs")) {
        state_->attributes = std::move(*attrs);
    }
    BOREAS_CHECK(state_->attributes.is_object(), "store '{}': '.zattrs' is not a JSON object",
                 where);
}

ZarrGroup::~ZarrGroup() = default;
ZarrGroup::ZarrGroup(ZarrGroup&&) noexcept = default;
ZarrGroup& ZarrGroup::operator=(ZarrGroup&&) noexcept = default;

const std::string& ZarrGroup::location() const {
    return state_->source->location();
}

const json& ZarrGroup::attributes() const {
    return state_->attributes;
}

bool ZarrGroup::contains(const std::string& array) const {
    const auto key = array + "/.zarray";
    if (!state_->consolidated.is_null()) return state_->consolidated.contains(key);
    return state_->source->get(key, kMaxMetadataBytes).has_value();
}

ZarrArray ZarrGroup::array(const std::string& name) const {
    BOREAS_CHECK(!name.empty() && name.find("..") == std::string::npos && name.front() != '/',
                 "store '{}': '{}' is not an array name", location(), name);
    const auto key = name + "/.zarray";
    const std::string origin = fmt::format("store '{}': '{}'", location(), key);
    json z;
    if (!state_->consolidated.is_null()) {
        BOREAS_CHECK(state_->consolidated.contains(key),
                     "store '{}' has no array '{}' (its consolidated metadata lists no '{}')",
                     location(), name, key);
        z = state_->consolidated[key];
    } else {
        auto read = read_json(*state_->source, key);
        BOREAS_CHECK(read.has_value(), "store '{}' has no array '{}' ('{}' is missing)", location(),
                     name, key);
        z = std::move(*read);
    }
    return ZarrArray(state_->source, parse_array_metadata(z, name, origin));
}

}  // namespace boreas::data
