#pragma once
/// Zarr v2 stores, the format anemoi-datasets writes: a group in a directory or a zip file, its
/// attributes, and its arrays read chunk by chunk through the compressors anemoi's stores use
/// (blosc with any of its codecs, zstd, lz4, zlib, gzip, none). A chunk that is absent reads as
/// the array's fill value (anemoi's missing dates rely on it). Zarr v3 stores are refused by name.
///
/// Every failure is a boreas::Error naming the store, the array and the chunk key. Reads are safe
/// from several threads at once.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "boreas/core/tensor.hpp"

namespace boreas::data {

/// The bytes behind a store's keys ("data/.zarray", "data/0.0.0.0"): a directory or a zip file.
/// Bytes read from a store into memory the caller keeps: resizing does not zero them first.
using ByteBuffer = std::vector<std::byte, boreas::detail::UninitialisedAllocator<std::byte>>;

/// A stored value held for decoding, kept by the reader from read to read: a large file of a
/// directory store is mapped (decompression reads the page cache itself, no copy); anything
/// else is read into a buffer whose memory is reused.
class StoredBytes {
  public:
    StoredBytes() = default;
    ~StoredBytes();
    StoredBytes(const StoredBytes&) = delete;
    StoredBytes& operator=(const StoredBytes&) = delete;

    std::span<const std::byte> bytes() const;
    /// The buffer to fill, `size` bytes long (any mapping is released).
    ByteBuffer& buffer(std::size_t size);
    /// Maps `size` bytes of the open file `fd` read-only (the previous value released);
    /// false when the system refuses (the caller reads instead).
    bool map(int fd, std::size_t size);

  private:
    void release();
    ByteBuffer buffer_;
    void* mapped_ = nullptr;
    std::size_t mapped_size_ = 0;
};

class KeyValueSource {
  public:
    virtual ~KeyValueSource() = default;
    /// The value of `key`, or nothing when the key is absent; throws when it cannot be read or
    /// is larger than `max_bytes`.
    virtual std::optional<std::vector<std::byte>> get(const std::string& key,
                                                      std::uint64_t max_bytes) const = 0;
    /// The same into `value` (its memory reused from call to call, so that reading chunk after
    /// chunk faults in no fresh pages); false when the key is absent.
    virtual bool get_into(const std::string& key, std::uint64_t max_bytes,
                          StoredBytes& value) const;
    /// The directory or zip file, as given, for error messages.
    virtual const std::string& location() const = 0;
};

/// A directory, or a zip file (zarr's ZipStore, or a zipped store directory whose one top-level
/// folder holds the group), chosen by what `path` is.
std::unique_ptr<KeyValueSource> open_source(const std::filesystem::path& path);
/// A zip held in memory (the fuzz target); `name` stands for it in errors.
std::unique_ptr<KeyValueSource> open_zip_in_memory(std::span<const std::byte> bytes,
                                                   std::string name);

enum class DType {
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint16,
    uint32,
    uint64,
    boolean,
    datetime64
};

/// One array's `.zarray`, checked.
struct ArrayMetadata {
    std::string name;  ///< the array's path in the group ("data", "latitudes")
    std::vector<std::int64_t> shape, chunks;
    DType dtype = DType::float32;
    std::string dtype_text;  ///< as written: "<f4", "<M8[s]"
    int item_bytes = 4;
    bool big_endian = false;  ///< values are byte-swapped into native (little) order
    std::int64_t datetime_unit_seconds_num = 1;  ///< datetime64: one unit is num/den seconds
    std::int64_t datetime_unit_seconds_den = 1;
    std::string compressor;         ///< "blosc", "zstd", "lz4", "zlib", "gzip", "" for none
    std::string compressor_detail;  ///< blosc's cname, for reports
    char separator = '.';           ///< dimension_separator of chunk keys
    bool has_fill = false;          ///< fill_value is not null
    double fill_value = 0;          ///< NaN for "NaN"; datetime "NaT" as INT64_MIN
    std::int64_t fill_integer = 0;  ///< the fill value of integer and datetime arrays

    std::int64_t chunk_elements() const;
    std::int64_t chunk_bytes() const { return chunk_elements() * item_bytes; }
    /// Chunks along each dimension (ceil(shape / chunks)).
    std::vector<std::int64_t> chunk_grid() const;
    std::int64_t elements() const;
    /// "data/3.0.0.0" (or "data/3/0/0/0") for chunk `index`.
    std::string chunk_key(std::span<const std::int64_t> index) const;
};

class ZarrGroup;

/// One array of a group. Cheap to copy; shares the group's source.
class ZarrArray {
  public:
    const ArrayMetadata& metadata() const { return metadata_; }
    /// The chunk at grid position `index`, decoded into `out` (exactly chunk_bytes(), values in
    /// native byte order, C order, edge chunks padded as zarr stores them). Returns false when
    /// the chunk is absent and `out` was filled with the fill value (a missing chunk of an array
    /// without a fill value is an error naming the key).
    bool read_chunk(std::span<const std::int64_t> index, std::span<std::byte> out) const;
    /// The same, the stored bytes read into `stored` (a buffer the caller keeps across reads).
    bool read_chunk(std::span<const std::int64_t> index, std::span<std::byte> out,
                    StoredBytes& stored) const;
    /// The compressed bytes of a chunk as stored, or nothing when absent (benchmarks time
    /// decompression apart from reading).
    std::optional<std::vector<std::byte>> read_raw_chunk(std::span<const std::int64_t> index) const;
    /// Decodes bytes from read_raw_chunk into `out`; `key` names them in errors.
    void decode_chunk(std::span<const std::byte> stored, std::span<std::byte> out,
                      const std::string& key) const;
    /// Elements [start, start + count) of every dimension into `out` (C order, native byte
    /// order, exactly the region's size), read chunk by chunk.
    /// `stored`, when given, holds the stored bytes of the chunks read (kept by the caller).
    void read_region(std::span<const std::int64_t> start, std::span<const std::int64_t> count,
                     std::span<std::byte> out, StoredBytes* stored = nullptr) const;
    /// The whole array as doubles (numeric arrays; for the small ones: coordinates, statistics).
    std::vector<double> read_doubles() const;
    /// The whole array as 64-bit integers (integer and datetime64 arrays; datetimes in units).
    std::vector<std::int64_t> read_integers() const;
    /// A datetime64 array as seconds since 1970-01-01 (whole seconds; NaT refused by name).
    std::vector<std::int64_t> read_datetimes_seconds() const;
    /// A clear name: "store 'PATH', array 'data'".
    std::string where() const;

  private:
    friend class ZarrGroup;
    ZarrArray(std::shared_ptr<const KeyValueSource> source, ArrayMetadata metadata);
    std::vector<std::byte> read_whole() const;
    /// Checks a chunk index; the most bytes its stored form may take.
    std::uint64_t stored_bound(std::span<const std::int64_t> index) const;

    std::shared_ptr<const KeyValueSource> source_;
    ArrayMetadata metadata_;
};

/// The root group of a Zarr v2 store. Consolidated metadata (`.zmetadata`) is used when present;
/// otherwise `.zgroup`, `.zattrs` and each array's `.zarray` are read.
class ZarrGroup {
  public:
    explicit ZarrGroup(const std::filesystem::path& path);
    explicit ZarrGroup(std::unique_ptr<KeyValueSource> source);
    ~ZarrGroup();
    ZarrGroup(ZarrGroup&&) noexcept;
    ZarrGroup& operator=(ZarrGroup&&) noexcept;

    const std::string& location() const;
    /// The root `.zattrs` (an empty object when absent); Python's NaN and Infinity read as the
    /// strings "NaN", "Infinity", "-Infinity".
    const nlohmann::json& attributes() const;
    bool contains(const std::string& array) const;
    /// Throws naming the store and the array when `.zarray` is missing or invalid.
    ZarrArray array(const std::string& name) const;

  private:
    struct State;
    std::unique_ptr<State> state_;
};

/// JSON as Python writes it: NaN, Infinity and -Infinity outside strings become the strings
/// "NaN", "Infinity", "-Infinity". Throws naming `origin` on anything else that is not JSON.
nlohmann::json parse_python_json(std::string_view text, const std::string& origin);

/// The `.zarray` text of array `name`, parsed and checked (shape, chunks, dtype, order, filters,
/// compressor, fill value, separator); `origin` names it in errors.
ArrayMetadata parse_array_metadata(const nlohmann::json& zarray, const std::string& name,
                                   const std::string& origin);

}  // namespace boreas::data
