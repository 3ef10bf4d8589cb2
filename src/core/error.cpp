#include "boreas/core/error.hpp"

#include <string_view>

namespace boreas {
namespace {

std::string short_location(const SourceLocation& where) {
    std::string_view file = where.file_name();
    // Keep the path from the project's top folders on, so messages do not leak build paths.
    for (std::string_view top : {"/src/", "/include/", "/apps/", "/tests/"}) {
        if (auto pos = file.rfind(top); pos != std::string_view::npos) {
            file.remove_prefix(pos + 1);
            break;
        }
    }
    return fmt::format("{}:{}", file, where.line());
}

}  // namespace

Error::Error(std::string message, SourceLocation where)
    : std::runtime_error(fmt::format("{} [{}]", message, short_location(where))),
      message_(std::move(message)),
      location_(short_location(where)) {}

}  // namespace boreas
