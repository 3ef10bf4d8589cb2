#pragma once
/// Zarr v2 compressors as numcodecs writes them, decoded into a buffer of the chunk's exact size.

#include <cstddef>
#include <span>
#include <string>

namespace boreas::data::detail {

/// Whether `id` is a compressor this reader decodes ("" is none).
bool known_compressor(const std::string& id);

/// Decodes `stored` (one chunk as numcodecs' compressor `id` wrote it) into `out`, which must
/// come out exactly full; throws naming `where` (store, array and chunk key) otherwise.
void decompress(const std::string& id, std::span<const std::byte> stored, std::span<std::byte> out,
                const std::string& where);

}  // namespace boreas::data::detail
