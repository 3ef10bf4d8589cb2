#pragma once
// Fixtures committed zstd-compressed to keep tests/data under its 10 MB budget: unpacked once
// per test process into the scratch folder. Link the test with PkgConfig::ZSTD.

#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "boreas/core/error.hpp"
#include "support/test_support.hpp"

namespace boreas::testing_support {

/// `path` itself when it exists, else `path` + ".zst" decompressed into the scratch folder.
inline std::filesystem::path unpacked_fixture(const std::filesystem::path& path) {
    if (std::filesystem::exists(path)) return path;
    const auto packed = path.string() + ".zst";
    const auto out = temp_path(path.filename().string());
    if (std::filesystem::exists(out)) return out;
    std::ifstream in(packed, std::ios::binary);
    BOREAS_CHECK(in.good(), "fixture '{}' is missing (neither it nor '{}' exists)", path.string(),
                 packed);
    const std::string input((std::istreambuf_iterator<char>(in)), {});
    ZSTD_DStream* stream = ZSTD_createDStream();
    ZSTD_inBuffer source{input.data(), input.size(), 0};
    std::vector<char> buffer(ZSTD_DStreamOutSize());
    const auto partial = out.string() + ".partial";
    std::ofstream file(partial, std::ios::binary);
    std::size_t rc = 1;
    while (source.pos < source.size) {
        ZSTD_outBuffer sink{buffer.data(), buffer.size(), 0};
        rc = ZSTD_decompressStream(stream, &sink, &source);
        BOREAS_CHECK(!ZSTD_isError(rc), "fixture '{}': {}", packed, ZSTD_getErrorName(rc));
        file.write(buffer.data(), static_cast<std::streamsize>(sink.pos));
    }
    ZSTD_freeDStream(stream);
    BOREAS_CHECK(rc == 0, "fixture '{}' is truncated", packed);
    file.close();
    std::filesystem::rename(partial, out);
    return out;
}

}  // namespace boreas::testing_support
