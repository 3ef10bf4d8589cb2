#pragma once
/// One exception type for all of Boreas. It carries where the check failed (file:line) and a
/// message that says what was expected and what was found, so `main` can print one line.

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace boreas {

#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
/// clang 14 with libstdc++ 12 (the fuzz build) has no std::source_location; the builtins it
/// rests on are there.
struct SourceLocation {
    static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                            unsigned line = __builtin_LINE()) noexcept {
        SourceLocation where;
        where.file_ = file;
        where.line_ = line;
        return where;
    }
    constexpr const char* file_name() const noexcept { return file_; }
    constexpr unsigned line() const noexcept { return line_; }

  private:
    const char* file_ = "";
    unsigned line_ = 0;
};
#endif

class Error : public std::runtime_error {
public:
  Error(std::string message, SourceLocation where = SourceLocation::current());

  /// The message without the source location: what a user reads.
  const std::string& message() const noexcept { return message_; }
  /// "file.cpp:123": where in Boreas the error was raised, for bug reports.
  const std::string& location() const noexcept { return location_; }

private:
    std::string message_;
    std::string location_;
};

/// Throws boreas::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail_at(SourceLocation where, fmt::format_string<Args...> format,
                          Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...), where);
}

}  // namespace boreas

/// BOREAS_CHECK(cond, "expected {} but found {}", a, b): always evaluates cond.
#define BOREAS_CHECK(cond, ...)                                                           \
    do {                                                                                  \
        if (!(cond)) ::boreas::fail_at(::boreas::SourceLocation::current(), __VA_ARGS__); \
    } while (false)

#define BOREAS_FAIL(...) ::boreas::fail_at(::boreas::SourceLocation::current(), __VA_ARGS__)
