#include "boreas/io/zip_archive.hpp"

#include <zip.h>

#include <algorithm>

#include "boreas/core/error.hpp"

namespace boreas::io {
namespace {

std::string zip_error_text(int code) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    return text;
}

}  // namespace

ZipArchive::ZipArchive(const std::filesystem::path& path) : name_(path.string()) {
    int code = 0;
    archive_ = zip_open(name_.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
    BOREAS_CHECK(archive_ != nullptr, "{}: cannot open as a zip archive: {}", name_,
                 zip_error_text(code));
    std::error_code error;
    archive_bytes_ = std::filesystem::file_size(path, error);
    BOREAS_CHECK(!error, "{}: cannot read its size: {}", name_, error.message());
    load_members();
}

ZipArchive::ZipArchive(std::span<const std::byte> bytes, std::string name)
    : name_(std::move(name)), buffer_(bytes.begin(), bytes.end()), archive_bytes_(bytes.size()) {
    zip_error_t error;
    zip_error_init(&error);
    // libzip wants a non-null pointer even for an empty buffer.
    static const std::byte empty{};
    zip_source_t* source = zip_source_buffer_create(buffer_.empty() ? &empty : buffer_.data(),
                                                    buffer_.size(), 0, &error);
    if (source) {
        archive_ = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
        if (!archive_) zip_source_free(source);
    }
    const std::string text = archive_ ? "" : zip_error_strerror(&error);
    zip_error_fini(&error);
    BOREAS_CHECK(archive_ != nullptr, "{}: cannot open as a zip archive: {}", name_, text);
    load_members();
}

ZipArchive::~ZipArchive() {
    if (archive_) zip_discard(archive_);
}

void ZipArchive::load_members() {
    const zip_int64_t count = zip_get_num_entries(archive_, 0);
    BOREAS_CHECK(count >= 0, "{}: cannot list the zip's members", name_);
    members_.reserve(static_cast<std::size_t>(count));
    for (zip_int64_t i = 0; i < count; ++i) {
        const char* member = zip_get_name(archive_, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
        BOREAS_CHECK(member != nullptr, "{}: zip member {} has no readable name", name_, i);
        members_.emplace_back(member);
    }
}

std::int64_t ZipArchive::index_of(const std::string& member) const {
    const zip_int64_t index = zip_name_locate(archive_, member.c_str(), ZIP_FL_ENC_RAW);
    BOREAS_CHECK(index >= 0, "{}: no member '{}'", name_, member);
    return index;
}

bool ZipArchive::contains(const std::string& member) const {
    return zip_name_locate(archive_, member.c_str(), ZIP_FL_ENC_RAW) >= 0;
}

std::uint64_t ZipArchive::size(const std::string& member) const {
    zip_stat_t stat;
    zip_stat_init(&stat);
    const zip_uint64_t wanted = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    BOREAS_CHECK(
        zip_stat_index(archive_, static_cast<zip_uint64_t>(index_of(member)), 0, &stat) == 0 &&
            (stat.valid & wanted) == wanted,
        "{}: cannot stat member '{}'", name_, member);
    // A size is only a claim in a directory entry: hold it against the bytes that can back it,
    // so a damaged or hostile entry cannot make a reader allocate gigabytes. Stored members
    // (torch writes every record stored) hold exactly their size; deflate expands at most
    // 1032:1.
    BOREAS_CHECK(stat.comp_size <= archive_bytes_,
                 "{}: member '{}' claims {} compressed bytes in a {}-byte archive: truncated or "
                 "corrupt",
                 name_, member, stat.comp_size, archive_bytes_);
    const bool stored = stat.comp_method == ZIP_CM_STORE;
    BOREAS_CHECK(stored ? stat.size == stat.comp_size : stat.size / 1032 <= stat.comp_size + 1,
                 "{}: member '{}' claims {} bytes from {} compressed bytes: corrupt", name_, member,
                 stat.size, stat.comp_size);
    return stat.size;
}

std::vector<std::byte> ZipArchive::read(const std::string& member, std::uint64_t max_bytes) const {
    const auto bytes = size(member);
    BOREAS_CHECK(bytes <= max_bytes, "{}: member '{}' claims {} bytes, more than the {} expected",
                 name_, member, bytes, max_bytes);
    std::vector<std::byte> out(bytes);
    read_range(member, 0, out);
    return out;
}

void ZipArchive::read_range(const std::string& member, std::uint64_t offset,
                            std::span<std::byte> out) const {
    const auto total = size(member);
    BOREAS_CHECK(offset <= total && out.size() <= total - offset,
                 "{}: member '{}' has {} bytes, fewer than the {} needed from byte {}", name_,
                 member, total, out.size(), offset);
    zip_file_t* file = zip_fopen_index(archive_, static_cast<zip_uint64_t>(index_of(member)), 0);
    BOREAS_CHECK(file != nullptr, "{}: cannot open member '{}': {}", name_, member,
                 zip_strerror(archive_));
    struct Closer {
        zip_file_t* f;
        ~Closer() { zip_fclose(f); }
    } closer{file};
    if (offset > 0) {
        // Stored members (torch writes every record stored) seek; compressed ones are read
        // through and dropped.
        zip_stat_t stat;
        zip_stat_init(&stat);
        const bool stored = zip_stat(archive_, member.c_str(), ZIP_FL_ENC_RAW, &stat) == 0 &&
                            (stat.valid & ZIP_STAT_COMP_METHOD) && stat.comp_method == ZIP_CM_STORE;
        if (stored) {
            BOREAS_CHECK(zip_fseek(file, static_cast<zip_int64_t>(offset), SEEK_SET) == 0,
                         "{}: cannot seek in member '{}': {}", name_, member,
                         zip_file_strerror(file));
        } else {
            std::vector<std::byte> skip(std::min<std::uint64_t>(offset, 1 << 20));
            for (std::uint64_t left = offset; left > 0;) {
                const auto chunk = std::min<std::uint64_t>(left, skip.size());
                const auto got = zip_fread(file, skip.data(), chunk);
                BOREAS_CHECK(got == static_cast<zip_int64_t>(chunk),
                             "{}: member '{}' is truncated or corrupt: {}", name_, member,
                             zip_file_strerror(file));
                left -= chunk;
            }
        }
    }
    std::size_t done = 0;
    while (done < out.size()) {
        const auto got = zip_fread(file, out.data() + done, out.size() - done);
        BOREAS_CHECK(got > 0, "{}: member '{}' is truncated or corrupt ({} of {} bytes read): {}",
                     name_, member, done, out.size(),
                     got < 0 ? zip_file_strerror(file) : "end of data");
        done += static_cast<std::size_t>(got);
    }
}

}  // namespace boreas::io
