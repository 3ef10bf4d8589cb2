#pragma once
// Small helpers shared by the test suites.

#include <unistd.h>

#include <filesystem>
#include <string>

#include "boreas/core/error.hpp"

namespace boreas::testing_support {

/// The message of the boreas::Error that `action` throws, or "" if it throws none.
template <typename Action>
std::string error_of(Action&& action) {
    try {
        action();
    } catch (const boreas::Error& error) {
        return error.message();
    }
    return "";
}

/// A path in a per-process scratch folder under the system's temporary directory.
inline std::filesystem::path temp_path(const std::string& name) {
    const auto folder =
        std::filesystem::temp_directory_path() / ("boreas_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(folder);
    return folder / name;
}

}  // namespace boreas::testing_support
