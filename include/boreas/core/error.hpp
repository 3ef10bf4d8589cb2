#pragma once
/// One exception type for all of Boreas. It carries where the check failed (file:line) and a
/// message that says what was expected and what was found, so `main` can print one line.

#include <fmt/format.h>

#include <source_location>
#include <stdexcept>
#include <string>

namespace boreas {

class Error : public std::runtime_error {
public:
    Error(std::string message, std::source_location where = std::source_location::current());

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
[[noreturn]] void fail_at(std::source_location where, fmt::format_string<Args...> format,
                          Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...), where);
}

}  // namespace boreas

/// BOREAS_CHECK(cond, "expected {} but found {}", a, b): always evaluates cond.
#define BOREAS_CHECK(cond, ...)                                                 \
    do {                                                                        \
        if (!(cond)) ::boreas::fail_at(std::source_location::current(), __VA_ARGS__); \
    } while (false)

#define BOREAS_FAIL(...) ::boreas::fail_at(std::source_location::current(), __VA_ARGS__)
