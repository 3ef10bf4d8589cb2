#pragma once
// The named configs `boreas --config NAME` knows without a file.

#include <string>
#include <vector>

namespace boreas::model::detail {

struct BuiltinConfig {
    std::string name;
    std::string yaml;
};

const std::vector<BuiltinConfig>& builtin_configs();

}  // namespace boreas::model::detail
