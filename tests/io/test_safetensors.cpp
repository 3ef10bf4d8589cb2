#include <gtest/gtest.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/io/safetensors.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using boreas::io::SafetensorsReader;
using boreas::io::SafetensorsWriter;
using boreas::testing_support::error_of;
using boreas::testing_support::temp_path;

namespace {

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A valid file with a float [2,3] tensor "a" and an int64 [4] tensor "b".
fs::path sample_file(const std::string& name) {
    SafetensorsWriter writer;
    std::vector<float> a = {1, 2, 3, 4, 5, 6};
    std::vector<std::int64_t> b = {-1, 0, 1, 1LL << 40};
    writer.add<float>("a", {2, 3}, a);
    writer.add<std::int64_t>("b", {4}, b);
    writer.set_metadata("note", "hello");
    auto path = temp_path(name);
    writer.write(path);
    return path;
}

TEST(Safetensors, RoundTrip) {
    auto path = sample_file("roundtrip.safetensors");
    SafetensorsReader reader(path);
    auto a = reader.view<float>("a", {2, 3});
    ASSERT_EQ(a.size(), 6u);
    EXPECT_EQ(a[5], 6.0f);
    auto b = reader.view<std::int64_t>("b");
    EXPECT_EQ(b[3], 1LL << 40);
    EXPECT_EQ(reader.metadata().at("note"), "hello");
    // The header is padded to 8 bytes, so every tensor is aligned as the reference writer does.
    auto bytes = read_bytes(path);
    std::uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    EXPECT_EQ(header % 8, 0u);
}

TEST(Safetensors, NamesTensorAndExpectation) {
    SafetensorsReader reader(sample_file("expect.safetensors"));
    auto missing = error_of([&] { reader.view<float>("c"); });
    EXPECT_NE(missing.find("no tensor 'c'"), std::string::npos) << missing;
    auto dtype = error_of([&] { reader.view<std::int32_t>("a"); });
    EXPECT_NE(dtype.find("tensor 'a' has dtype F32, expected I32"), std::string::npos) << dtype;
    auto shape = error_of([&] { reader.view<float>("a", {3, 2}); });
    EXPECT_NE(shape.find("shape [2, 3], expected [3, 2]"), std::string::npos) << shape;
}

TEST(Safetensors, TruncatedFilesAreRefused) {
    auto path = sample_file("full.safetensors");
    const auto bytes = read_bytes(path);
    for (std::size_t keep : {std::size_t{0}, std::size_t{5}, std::size_t{20}, bytes.size() - 1}) {
        auto cut = temp_path("cut.safetensors");
        write_bytes(cut, bytes.substr(0, keep));
        auto message = error_of([&] { SafetensorsReader reader(cut); });
        EXPECT_NE(message.find(cut.string()), std::string::npos) << keep << ": " << message;
    }
}

TEST(Safetensors, CorruptHeaderIsRefused) {
    auto path = sample_file("corrupt.safetensors");
    auto bytes = read_bytes(path);
    bytes[bytes.find('"')] = '#';  // breaks the JSON header
    write_bytes(path, bytes);
    auto message = error_of([&] { SafetensorsReader reader(path); });
    EXPECT_NE(message.find("corrupt safetensors header"), std::string::npos) << message;

    auto inconsistent = temp_path("inconsistent.safetensors");
    std::string header = R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})";
    std::uint64_t length = header.size();
    write_bytes(inconsistent, std::string(reinterpret_cast<char*>(&length), 8) + header +
                                  std::string(8, '\0'));
    message = error_of([&] { SafetensorsReader reader(inconsistent); });
    EXPECT_NE(message.find("tensor 'x' (F32 [4]) needs 16 bytes"), std::string::npos) << message;
}

TEST(Safetensors, MissingFileAndUnwritableFolder) {
    auto message = error_of([] { SafetensorsReader reader("/nonexistent/file.safetensors"); });
    EXPECT_NE(message.find("cannot open '/nonexistent/file.safetensors'"), std::string::npos);
    SafetensorsWriter writer;
    std::vector<float> one = {1};
    writer.add<float>("x", {1}, one);
    message = error_of([&] { writer.write("/nonexistent/folder/out.safetensors"); });
    EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
}

TEST(Safetensors, WritingToADeviceKeepsTheDevice) {
    SafetensorsWriter writer;
    std::vector<float> one = {1};
    writer.add<float>("x", {1}, one);
    writer.write("/dev/null");
    EXPECT_FALSE(fs::is_regular_file("/dev/null"));
    EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST(Safetensors, WriterRefusesShapeMismatch) {
    SafetensorsWriter writer;
    std::vector<float> three = {1, 2, 3};
    EXPECT_THROW(writer.add<float>("x", {2, 2}, three), boreas::Error);
}

}  // namespace
