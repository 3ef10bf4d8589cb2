// libFuzzer target: Zarr v2 metadata and chunk decoding from arbitrary bytes. The input is
// "<.zarray JSON>\0<.zattrs JSON>\0<chunk bytes>": the group's attributes are parsed as Python
// writes JSON, the array's metadata is checked, and every chunk of the array (each one the same
// stored bytes, decoded by the compressor the metadata names) is read, as is the whole array
// when it is small. Anything but a boreas::Error is a bug. Seeds: tools/reference/
// make_zarr_fuzz_corpus.py (every codec of the committed fixture stores).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/data/zarr.hpp"

namespace {

class MemorySource final : public boreas::data::KeyValueSource {
  public:
    std::map<std::string, std::vector<std::byte>> keys;
    std::vector<std::byte> chunk;  // every chunk key of array "a" holds these bytes

    std::optional<std::vector<std::byte>> get(const std::string& key,
                                              std::uint64_t max_bytes) const override {
        if (const auto it = keys.find(key); it != keys.end()) return it->second;
        if (key.starts_with("a/") && key.find(".z") == std::string::npos) {
            BOREAS_CHECK(chunk.size() <= max_bytes, "chunk larger than {}", max_bytes);
            return chunk;
        }
        return std::nullopt;
    }
    const std::string& location() const override { return name_; }

  private:
    std::string name_ = "fuzz";
};

std::vector<std::byte> bytes_of(std::string_view text) {
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    return {p, p + text.size()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto first = input.find('\0');
    if (first == std::string_view::npos) return 0;
    const auto second = input.find('\0', first + 1);
    if (second == std::string_view::npos) return 0;
    auto source = std::make_unique<MemorySource>();
    source->keys[".zgroup"] = bytes_of(R"({"zarr_format": 2})");
    source->keys[".zattrs"] = bytes_of(input.substr(first + 1, second - first - 1));
    source->keys["a/.zarray"] = bytes_of(input.substr(0, first));
    source->chunk = bytes_of(input.substr(second + 1));
    try {
        const boreas::data::ZarrGroup group(std::move(source));
        const auto array = group.array("a");
        const auto& m = array.metadata();
        if (m.chunk_bytes() > (1 << 22)) return 0;  // bound memory, not a bug
        std::vector<std::byte> out(static_cast<std::size_t>(m.chunk_bytes()));
        const auto grid = m.chunk_grid();
        std::vector<std::int64_t> index(grid.size(), 0);
        bool empty = false;
        for (const auto g : grid) empty = empty || g == 0;
        if (!empty) {
            (void)array.read_chunk(index, out);
            for (std::size_t d = 0; d < grid.size(); ++d) index[d] = grid[d] - 1;
            (void)array.read_chunk(index, out);
        }
        if (m.elements() <= (1 << 16)) {
            if (m.dtype == boreas::data::DType::datetime64)
                (void)array.read_datetimes_seconds();
            else
                (void)array.read_doubles();
        }
    } catch (const boreas::Error&) {
        // malformed input: refused with a message, as it should be
    }
    return 0;
}
