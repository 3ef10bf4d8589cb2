#include "boreas/core/log.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace boreas::log {
namespace {

Level level_from_environment() {
    const char* text = std::getenv("BOREAS_LOG_LEVEL");
    if (text == nullptr) return Level::info;
    if (std::strcmp(text, "debug") == 0) return Level::debug;
    if (std::strcmp(text, "warning") == 0) return Level::warning;
    if (std::strcmp(text, "error") == 0) return Level::error;
    return Level::info;
}

Level& current_level() {
    static Level current = level_from_environment();
    return current;
}

bool use_colour() {
    static const bool colour = isatty(STDERR_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
    return colour;
}

}  // namespace

void set_level(Level new_level) { current_level() = new_level; }
Level level() { return current_level(); }

void write(Level message_level, std::string_view message) {
    if (message_level < current_level()) return;
    const char* tag = "";
    const char* colour = "";
    switch (message_level) {
        case Level::debug: tag = "debug: "; colour = "\033[2m"; break;
        case Level::info: break;
        case Level::warning: tag = "warning: "; colour = "\033[33m"; break;
        case Level::error: tag = "error: "; colour = "\033[31m"; break;
    }
    if (use_colour() && *colour != '\0') {
        fmt::print(stderr, "{}boreas: {}{}\033[0m\n", colour, tag, message);
    } else {
        fmt::print(stderr, "boreas: {}{}\n", tag, message);
    }
}

}  // namespace boreas::log
