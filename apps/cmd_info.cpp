#include <fmt/format.h>

#include "boreas/core/context.hpp"
#include "boreas/kernels/kernels.hpp"
#include "commands.hpp"

#ifdef BOREAS_WITH_CUDA
#include "boreas/backends/cuda/device_info.hpp"
#endif

namespace boreas::apps {
namespace {

nlohmann::ordered_json full_context() {
    nlohmann::ordered_json info;
    info["build"] = build_context();
    info["build"]["kernel_path"] = kernels::cpu::kernel_path();
    info["system"] = system_context();
#ifdef BOREAS_WITH_CUDA
    info["cuda"] = backends::cuda::device_report();
#else
    info["cuda"] = {{"built", false}};
#endif
    return info;
}

void print_section(const std::string& title, const nlohmann::ordered_json& section, int indent) {
    fmt::print("{:{}}{}\n", "", indent, title);
    for (const auto& [key, value] : section.items()) {
        if (value.is_object() && !value.empty()) {
            print_section(key, value, indent + 2);
        } else {
            fmt::print("{:{}}{:<24} {}\n", "", indent + 2, key,
                       value.is_string() ? value.get<std::string>() : value.dump());
        }
    }
}

}  // namespace

Runner add_info_command(CLI::App& app) {
    auto* command = app.add_subcommand(
        "info", "Print the build and system context (what every Boreas result records)");
    auto json = std::make_shared<bool>(false);
    command->add_flag("--json", *json, "Print JSON instead of text");
    return [json]() {
        const auto info = full_context();
        if (*json) {
            fmt::print("{}\n", info.dump(2));
        } else {
            for (const auto& [key, value] : info.items()) print_section(key, value, 0);
        }
        return 0;
    };
}

}  // namespace boreas::apps
