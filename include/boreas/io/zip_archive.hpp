#pragma once
/// Read-only zip archives through libzip (Debian's libzip): member listing and reads of whole
/// members or byte ranges, every failure a boreas::Error naming the archive and the member.
/// Opens a file or a buffer in memory (the fuzz targets).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct zip;

namespace boreas::io {

class ZipArchive {
  public:
    /// Opens the file; throws naming it if it is missing, not a zip or damaged.
    explicit ZipArchive(const std::filesystem::path& path);
    /// Opens a zip held in memory; `name` stands for it in errors. The bytes are copied.
    ZipArchive(std::span<const std::byte> bytes, std::string name);
    ~ZipArchive();
    ZipArchive(const ZipArchive&) = delete;
    ZipArchive& operator=(const ZipArchive&) = delete;

    const std::string& name() const { return name_; }
    /// Member names in the order of the central directory.
    const std::vector<std::string>& members() const { return members_; }
    bool contains(const std::string& member) const;
    /// Uncompressed size; throws naming the member if it is absent.
    std::uint64_t size(const std::string& member) const;
    /// The whole member; `max_bytes` bounds what a corrupt size may make us allocate.
    std::vector<std::byte> read(const std::string& member,
                                std::uint64_t max_bytes = std::uint64_t{1} << 32) const;
    /// `out.size()` bytes of the member from byte `offset`; throws if the member is shorter.
    void read_range(const std::string& member, std::uint64_t offset,
                    std::span<std::byte> out) const;

  private:
    std::int64_t index_of(const std::string& member) const;
    void load_members();

    std::string name_;
    std::vector<std::byte> buffer_;  // in-memory archives: libzip reads from here
    std::uint64_t archive_bytes_ = 0;
    ::zip* archive_ = nullptr;
    std::vector<std::string> members_;
};

}  // namespace boreas::io
