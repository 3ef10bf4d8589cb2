#include "boreas/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "boreas/core/error.hpp"

namespace boreas::io {

void write_atomically(const std::filesystem::path& path,
                      const std::function<void(std::ostream&)>& write) {
    namespace fs = std::filesystem;
    std::error_code ec;
    // A device or pipe (/dev/null, /dev/stdout, a FIFO) is written in place: renaming a file over
    // it would replace the device.
    if (fs::exists(path, ec) && !fs::is_regular_file(path, ec)) {
        std::ofstream out(path, std::ios::binary);
        BOREAS_CHECK(out.good(), "cannot write '{}': {}", path.string(), std::strerror(errno));
        write(out);
        out.flush();
        BOREAS_CHECK(out.good(), "writing '{}' failed: {}", path.string(), std::strerror(errno));
        return;
    }
    const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
    BOREAS_CHECK(fs::is_directory(folder, ec), "cannot write '{}': folder '{}' does not exist",
                 path.string(), folder.string());
    const fs::path temporary =
        folder / fmt::format(".{}.tmp.{}", path.filename().string(), static_cast<long>(getpid()));
    try {
        {
            std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
            BOREAS_CHECK(out.good(), "cannot write '{}': {}", path.string(), std::strerror(errno));
            write(out);
            out.flush();
            BOREAS_CHECK(out.good(), "writing '{}' failed: {}", path.string(), std::strerror(errno));
        }
        // fsync so a crash after the rename cannot leave an empty file under the final name.
        int fd = ::open(temporary.c_str(), O_RDONLY);
        if (fd >= 0) {
            ::fsync(fd);
            ::close(fd);
        }
        fs::rename(temporary, path, ec);
        BOREAS_CHECK(!ec, "cannot write '{}': {}", path.string(), ec.message());
    } catch (...) {
        fs::remove(temporary, ec);
        throw;
    }
}

void write_text_atomically(const std::filesystem::path& path, std::string_view text) {
    write_atomically(path, [&](std::ostream& out) { out.write(text.data(), text.size()); });
}

}  // namespace boreas::io
