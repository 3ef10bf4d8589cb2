#pragma once
/// Writing files so that no half-written output is ever left under the final name.

#include <filesystem>
#include <functional>
#include <ostream>
#include <string_view>

namespace boreas::io {

/// Calls `write` on a stream to a temporary file in the target's folder, flushes and syncs it, then
/// renames it over `path`. On any failure the temporary file is removed and boreas::Error is thrown
/// naming `path`.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(std::ostream&)>& write);

/// Convenience: replaces `path` with `text` atomically.
void write_text_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace boreas::io
