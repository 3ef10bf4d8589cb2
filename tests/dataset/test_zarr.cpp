// The Zarr v2 reader on stores written here byte by byte with the compression libraries
// themselves: every codec, fill values for absent chunks, regions across chunk edges, byte
// order, and one-line errors naming the store and chunk key for every kind of damage.
#include <blosc.h>
#include <gtest/gtest.h>
#include <lz4.h>
#include <zip.h>
#include <zlib.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/data/zarr.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using boreas::data::ZarrGroup;
using boreas::testing_support::error_of;
using boreas::testing_support::temp_path;
using json = nlohmann::json;

namespace {

using Bytes = std::vector<std::byte>;

Bytes as_bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    return Bytes(p, p + size);
}

Bytes compress(const std::string& codec, const Bytes& raw, int typesize = 4,
               const char* cname = "lz4") {
    if (codec.empty()) return raw;
    if (codec == "blosc") {
        Bytes out(raw.size() + BLOSC_MAX_OVERHEAD);
        const int n = blosc_compress_ctx(5, 1, static_cast<std::size_t>(typesize), raw.size(),
                                         raw.data(), out.data(), out.size(), cname, 0, 1);
        EXPECT_GT(n, 0) << cname;
        out.resize(static_cast<std::size_t>(n));
        return out;
    }
    if (codec == "zstd") {
        Bytes out(ZSTD_compressBound(raw.size()));
        const auto n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3);
        EXPECT_FALSE(ZSTD_isError(n));
        out.resize(n);
        return out;
    }
    if (codec == "lz4") {  // numcodecs: little-endian size, then the block
        Bytes out(4 + static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(raw.size()))));
        const auto size = static_cast<std::uint32_t>(raw.size());
        for (int i = 0; i < 4; ++i) out[i] = static_cast<std::byte>(size >> (8 * i) & 0xff);
        const int n = LZ4_compress_default(
            reinterpret_cast<const char*>(raw.data()), reinterpret_cast<char*>(out.data() + 4),
            static_cast<int>(raw.size()), static_cast<int>(out.size() - 4));
        out.resize(4 + static_cast<std::size_t>(n));
        return out;
    }
    // zlib or gzip (window bits 15 + 16 writes a gzip header)
    z_stream stream{};
    EXPECT_EQ(
        deflateInit2(&stream, 6, Z_DEFLATED, codec == "gzip" ? 31 : 15, 8, Z_DEFAULT_STRATEGY),
        Z_OK);
    Bytes out(deflateBound(&stream, raw.size()));
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw.data()));
    stream.avail_in = static_cast<uInt>(raw.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
    out.resize(stream.total_out);
    deflateEnd(&stream);
    return out;
}

void write_file(const fs::path& path, const Bytes& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
}
void write_text(const fs::path& path, const std::string& text) {
    write_file(path, as_bytes(text.data(), text.size()));
}

json compressor_json(const std::string& codec, const char* cname = "lz4") {
    if (codec.empty()) return nullptr;
    if (codec == "blosc")
        return {{"id", "blosc"}, {"cname", cname}, {"clevel", 5}, {"shuffle", 1}, {"blocksize", 0}};
    return {{"id", codec}};
}

/// A group with a float32 array `data` of shape (5, 7) in chunks (2, 4): values v = 10 r + c,
/// chunk (1, 1) absent (reads as the fill value NaN).
struct SmallStore {
    fs::path root;
    std::string codec;
    explicit SmallStore(const std::string& name, std::string compressor = "lz4",
                        const char* cname = "lz4", char separator = '.')
        : root(temp_path(name)), codec(std::move(compressor)) {
        fs::remove_all(root);
        write_text(root / ".zgroup", R"({"zarr_format": 2})");
        write_text(root / ".zattrs", R"({"variables": ["a", "b"], "odd": NaN, "big": -Infinity,
                                        "text": "NaN stays text"})");
        json z = {{"zarr_format", 2},    {"shape", {5, 7}},
                  {"chunks", {2, 4}},    {"dtype", "<f4"},
                  {"order", "C"},        {"filters", nullptr},
                  {"fill_value", "NaN"}, {"compressor", compressor_json(codec, cname)}};
        if (separator == '/') z["dimension_separator"] = "/";
        write_text(root / "data" / ".zarray", z.dump());
        for (int i = 0; i < 3; ++i) {
            for (int j = 0; j < 2; ++j) {
                if (i == 1 && j == 1) continue;
                std::vector<float> chunk(8, -1.0f);  // padding beyond the edge stays -1
                for (int r = 0; r < 2; ++r)
                    for (int c = 0; c < 4; ++c) {
                        const int row = 2 * i + r, col = 4 * j + c;
                        if (row < 5 && col < 7)
                            chunk[r * 4 + c] = static_cast<float>(10 * row + col);
                    }
                const auto key = std::to_string(i) + separator + std::to_string(j);
                write_file(root / "data" / key,
                           compress(codec, as_bytes(chunk.data(), chunk.size() * 4), 4, cname));
            }
        }
    }
    ~SmallStore() { fs::remove_all(root); }
};

void expect_small_store_values(const ZarrGroup& group, const std::string& label) {
    const auto data = group.array("data");
    const auto values = data.read_doubles();
    ASSERT_EQ(values.size(), 35u) << label;
    for (int row = 0; row < 5; ++row)
        for (int col = 0; col < 7; ++col) {
            const double v = values[static_cast<std::size_t>(row * 7 + col)];
            if (row / 2 == 1 && col / 4 == 1)
                EXPECT_TRUE(std::isnan(v)) << label << " (" << row << ", " << col << ")";
            else
                EXPECT_EQ(v, 10 * row + col) << label << " (" << row << ", " << col << ")";
        }
}

TEST(Zarr, ReadsEveryCodecWithFillForAbsentChunks) {
    const std::vector<std::pair<std::string, const char*>> codecs = {
        {"", ""},          {"blosc", "lz4"},   {"blosc", "zstd"}, {"blosc", "blosclz"},
        {"blosc", "zlib"}, {"blosc", "lz4hc"}, {"zstd", ""},      {"lz4", ""},
        {"zlib", ""},      {"gzip", ""}};
    for (const auto& [codec, cname] : codecs) {
        const std::string label = codec + ":" + cname;
        const SmallStore store("codec_" + codec + "_" + cname, codec, cname);
        const ZarrGroup group(store.root);
        expect_small_store_values(group, label);
        const auto& m = group.array("data").metadata();
        EXPECT_EQ(m.compressor, codec);
        // An absent chunk reports itself and fills.
        std::vector<float> chunk(8);
        const std::int64_t absent[2] = {1, 1}, present[2] = {0, 1};
        EXPECT_FALSE(
            group.array("data").read_chunk(absent, std::as_writable_bytes(std::span(chunk))));
        EXPECT_TRUE(std::isnan(chunk[0]));
        EXPECT_TRUE(
            group.array("data").read_chunk(present, std::as_writable_bytes(std::span(chunk))));
        EXPECT_EQ(chunk[3], -1.0f) << "edge chunks keep their padding";
    }
}

TEST(Zarr, NestedKeysZipsAndPythonJson) {
    const SmallStore nested("nested", "zstd", "", '/');
    expect_small_store_values(ZarrGroup(nested.root), "nested");
    // A zipped store directory: the group is in its one top-level folder.
    const SmallStore flat("zipped", "blosc");
    const auto zip = temp_path("zipped.zip");
    fs::remove(zip);
    {
        int error = 0;
        zip_t* archive = zip_open(zip.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
        ASSERT_NE(archive, nullptr);
        for (const auto& entry : fs::recursive_directory_iterator(flat.root)) {
            if (!entry.is_regular_file()) continue;
            const auto name = "zipped/" + fs::relative(entry.path(), flat.root).string();
            zip_source_t* source = zip_source_file(archive, entry.path().c_str(), 0, -1);
            ASSERT_NE(source, nullptr);
            const auto index = zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_UTF_8);
            ASSERT_GE(index, 0);
            zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
        }
        ASSERT_EQ(zip_close(archive), 0);
    }
    {
        const ZarrGroup group(zip);
        expect_small_store_values(group, "zip");
        EXPECT_EQ(group.attributes()["variables"][1], "b");
    }
    fs::remove(zip);
    const ZarrGroup group(flat.root);
    const auto& attrs = group.attributes();
    EXPECT_EQ(attrs["odd"], "NaN");
    EXPECT_EQ(attrs["big"], "-Infinity");
    EXPECT_EQ(attrs["text"], "NaN stays text");
    EXPECT_TRUE(group.contains("data"));
    EXPECT_FALSE(group.contains("dates"));
}

TEST(Zarr, RegionsAcrossChunksAndByteOrder) {
    const SmallStore store("region", "zlib");
    const ZarrGroup group(store.root);
    const auto data = group.array("data");
    std::vector<float> region(3 * 4);
    const std::int64_t start[2] = {1, 2}, count[2] = {3, 4};
    data.read_region(start, count, std::as_writable_bytes(std::span(region)));
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) {
            const int row = 1 + r, col = 2 + c;
            const float v = region[static_cast<std::size_t>(r * 4 + c)];
            if (row / 2 == 1 && col / 4 == 1)
                EXPECT_TRUE(std::isnan(v));
            else
                EXPECT_EQ(v, 10 * row + col);
        }
    // Big-endian float64 and a datetime64[h] array, both uncompressed.
    const auto root = temp_path("order");
    fs::remove_all(root);
    write_text(root / ".zgroup", R"({"zarr_format": 2})");
    write_text(root / "be" / ".zarray",
               R"({"zarr_format": 2, "shape": [3], "chunks": [3], "dtype": ">f8",
                   "compressor": null, "fill_value": 0, "order": "C", "filters": null})");
    Bytes be;
    for (const double v : {1.5, -2.25, 1e300}) {
        std::uint64_t bits = 0;
        std::memcpy(&bits, &v, 8);
        for (int i = 7; i >= 0; --i) be.push_back(static_cast<std::byte>(bits >> (8 * i) & 0xff));
    }
    write_file(root / "be" / "0", be);
    EXPECT_EQ(ZarrGroup(root).array("be").read_doubles(), (std::vector<double>{1.5, -2.25, 1e300}));
    write_text(root / "dates" / ".zarray",
               R"({"zarr_format": 2, "shape": [2], "chunks": [1], "dtype": "<M8[h]",
                   "compressor": null, "fill_value": null, "order": "C", "filters": null})");
    const std::int64_t hours[2] = {473352, 473358};  // 2024-01-01T00 and T06
    write_file(root / "dates" / "0", as_bytes(&hours[0], 8));
    write_file(root / "dates" / "1", as_bytes(&hours[1], 8));
    EXPECT_EQ(ZarrGroup(root).array("dates").read_datetimes_seconds(),
              (std::vector<std::int64_t>{1704067200, 1704088800}));
    // An absent chunk of an array without a fill value is an error naming the key.
    fs::remove(root / "dates" / "1");
    const auto missing = error_of([&] { ZarrGroup(root).array("dates").read_integers(); });
    EXPECT_NE(missing.find("chunk 'dates/1' is missing and the array has no fill_value"),
              std::string::npos)
        << missing;
    fs::remove_all(root);
}

TEST(Zarr, DamageIsNamedWithStoreAndChunk) {
    for (const std::string codec : {"blosc", "zstd", "lz4", "zlib", "gzip", ""}) {
        const SmallStore store("damage_" + codec, codec);
        const auto chunk = store.root / "data" / "0.0";
        std::ifstream in(chunk, std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(in)), {});
        const Bytes bytes = as_bytes(text.data(), text.size());
        // Truncated.
        write_file(chunk, Bytes(bytes.begin(),
                                bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2)));
        const auto truncated =
            error_of([&] { ZarrGroup(store.root).array("data").read_doubles(); });
        EXPECT_NE(truncated.find("chunk 'data/0.0'"), std::string::npos)
            << codec << ": " << truncated;
        EXPECT_NE(truncated.find(store.root.string()), std::string::npos) << truncated;
        // A corrupt header (uncompressed chunks have none).
        if (codec.empty()) continue;
        auto corrupt = bytes;
        for (std::size_t i = 0; i < std::min<std::size_t>(corrupt.size(), 16); ++i)
            corrupt[i] = static_cast<std::byte>(0xA5);
        write_file(chunk, corrupt);
        const auto header = error_of([&] { ZarrGroup(store.root).array("data").read_doubles(); });
        EXPECT_NE(header.find("chunk 'data/0.0'"), std::string::npos) << codec << ": " << header;
    }
    for (const std::string codec : {"blosc", "zstd", "lz4", "zlib", "gzip", ""}) {
        const SmallStore store("size_" + codec, codec);
        const auto chunk = store.root / "data" / "0.0";
        // A chunk of the wrong size (a chunk of 4 values where 8 are expected).
        std::vector<float> four(4, 1.0f);
        write_file(chunk, compress(codec, as_bytes(four.data(), 16)));
        const auto size = error_of([&] { ZarrGroup(store.root).array("data").read_doubles(); });
        EXPECT_NE(size.find("chunk 'data/0.0'"), std::string::npos) << codec << ": " << size;
        EXPECT_NE(size.find("32"), std::string::npos) << codec << ": " << size;
    }
}

TEST(Zarr, BadMetadataIsNamed) {
    const SmallStore store("metadata");
    const auto zarray = store.root / "data" / ".zarray";
    auto expect = [&](const std::string& text, const std::string& what) {
        write_text(zarray, text);
        const auto message = error_of([&] { ZarrGroup(store.root).array("data"); });
        EXPECT_NE(message.find(what), std::string::npos) << text << " -> " << message;
        EXPECT_NE(message.find("data/.zarray"), std::string::npos) << message;
    };
    const std::string base = R"("zarr_format": 2, "shape": [5, 7], "chunks": [2, 4], "order": "C",
                                 "filters": null, "fill_value": "NaN", "compressor": null)";
    expect("{" + base + R"(, "dtype": "<c8"})", "dtype '<c8' is not read");
    expect("{" + base + R"(, "dtype": [["a", "<f4"]]})", "structured dtypes are not read");
    expect(R"({"zarr_format": 2, "shape": [5, 7], "chunks": [2], "dtype": "<f4"})",
           "shape has 2 dimensions, chunks 1");
    expect(R"({"zarr_format": 2, "shape": [5, 7], "chunks": [0, 4], "dtype": "<f4"})",
           "'chunks' holds 0");
    expect(R"({"zarr_format": 2, "shape": [5, 7], "chunks": [2, 4], "dtype": "<f4",
               "filters": [{"id": "delta", "dtype": "<f4"}]})",
           "filters");
    expect(R"({"zarr_format": 2, "shape": [5, 7], "chunks": [2, 4], "dtype": "<f4",
               "compressor": {"id": "bz2"}})",
           "compressor 'bz2' is not read");
    expect(R"({"zarr_format": 2, "shape": [5, 7], "chunks": [2, 4], "dtype": "<i4",
               "fill_value": "NaN"})",
           "fill_value 'NaN' does not suit dtype <i4");
    expect(R"({"zarr_format": 2, "shape": [4000000000, 4000000000, 4000000000], "chunks": [1, 1, 1],
               "dtype": "<f8"})",
           "overflow");
    expect(R"({"zarr_format": 2, "shape": [5, 7], "chunks": [2, 4], "dtype": "<f4")",
           "not valid JSON");
    fs::remove(zarray);
    const auto absent = error_of([&] { ZarrGroup(store.root).array("data"); });
    EXPECT_NE(absent.find("has no array 'data' ('data/.zarray' is missing)"), std::string::npos)
        << absent;
    // Not a store, a v3 store, a lone array.
    const auto root = temp_path("not_a_store");
    fs::remove_all(root);
    fs::create_directories(root);
    EXPECT_NE(error_of([&] { ZarrGroup{root}; }).find("'.zgroup' is missing"), std::string::npos);
    write_text(root / ".zarray", "{}");
    EXPECT_NE(error_of([&] { ZarrGroup{root}; }).find("a single Zarr array, not a group"),
              std::string::npos);
    write_text(root / "zarr.json", R"({"zarr_format": 3, "node_type": "group"})");
    EXPECT_NE(error_of([&] { ZarrGroup{root}; }).find("is a Zarr v3 store"), std::string::npos);
    fs::remove_all(root);
    EXPECT_NE(error_of([&] { ZarrGroup{root}; }).find("does not exist"), std::string::npos);
}

}  // namespace
