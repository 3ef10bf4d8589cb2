#pragma once
/// Progress and diagnostics go to stderr; stdout carries only the output a command was asked for.
/// Colour is used only when stderr is a terminal and NO_COLOR is unset (https://no-color.org).

#include <fmt/format.h>

#include <string_view>

namespace boreas::log {

enum class Level { debug, info, warning, error };

/// Messages below this level are dropped (default: info; BOREAS_LOG_LEVEL=debug|info|warning|error).
void set_level(Level level);
Level level();

void write(Level level, std::string_view message);

template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
    write(Level::info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
    if (level() <= Level::debug) write(Level::debug, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void warning(fmt::format_string<Args...> format, Args&&... args) {
    write(Level::warning, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
    write(Level::error, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace boreas::log
