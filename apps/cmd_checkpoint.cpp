#include <fmt/format.h>

#include "boreas/model/checkpoint.hpp"
#include "commands.hpp"

namespace boreas::apps {
namespace {

void print_text(const nlohmann::ordered_json& info) {
    fmt::print("checkpoint   {} (archive {})\n", info["file"].get<std::string>(),
               info["archive"].get<std::string>());
    std::string writers;
    for (const auto& [name, version] : info["writer"].items())
        writers +=
            fmt::format("{}{} {}", writers.empty() ? "" : ", ", name, version.get<std::string>());
    fmt::print("written by   {}\n", writers.empty() ? "unknown" : writers);
    fmt::print("task         {}, timestep {}, {} input step(s), {} output step(s), precision {}\n",
               info["task"].dump(), info["timestep"].dump(), info["multistep_input"].get<int>(),
               info["multistep_output"].get<int>(), info["precision"].dump());
    std::map<std::string, std::vector<std::string>> roles;
    for (const auto& v : info["variables"])
        roles[v["role"].get<std::string>()].push_back(v["name"].get<std::string>());
    for (const auto& [role, names] : roles)
        fmt::print("{:<12} {} ({})\n", role, fmt::join(names, " "), names.size());
    for (const auto& [name, count] : info["nodes"].items())
        fmt::print("nodes        {}: {}\n", name, count.get<std::int64_t>());
    for (const auto& [name, count] : info["edges"].items())
        fmt::print("edges        {}: {}\n", name, count.get<std::int64_t>());
    fmt::print("parameters   {} in {} tensors; {} buffers, {} non-persistent\n",
               info["parameters"].get<std::int64_t>(),
               info["tensors"]["parameters"].get<std::int64_t>(),
               info["tensors"]["buffers"].get<std::int64_t>(),
               info["tensors"]["non_persistent_buffers"].get<std::int64_t>());
    const auto& b = info["boreas"];
    fmt::print(
        "Boreas runs  {} mappers, {} processor, {} channels, {} layers{}{}; {} inputs -> {} "
        "outputs\n",
        b["mappers"].get<std::string>(), b["processor"].get<std::string>(),
        b["num_channels"].get<int>(), b["num_layers"].get<int>(),
        b["processor"] == "gnn" ? "" : fmt::format(", {} heads", b["num_heads"].get<int>()),
        b["window_size"].is_null() ? "" : fmt::format(", window {}", b["window_size"].get<int>()),
        b["inputs"].get<int>(), b["outputs"].get<int>());
    fmt::print(
        "accepted     {} anemoi settings without effect on the numbers (--json lists them)\n",
        b["accepted_without_effect"].size());
}

}  // namespace

Runner add_checkpoint_command(CLI::App& app) {
    auto* command = app.add_subcommand(
        "checkpoint", "Inspect anemoi checkpoints (read natively, nothing executed)");
    command->require_subcommand(1);
    auto file = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* info =
        command->add_subcommand("info", "What a checkpoint holds and what Boreas will run");
    info->add_option("checkpoint", *file, "anemoi inference checkpoint (inference-*.ckpt)")
        ->required();
    info->add_flag("--json", *json, "Print JSON (schema docs/checkpoint-info-schema.json)");
    return [file, json]() {
        const model::Checkpoint checkpoint(*file);
        const auto description = checkpoint.describe();
        if (*json)
            fmt::print("{}\n", description.dump(2));
        else
            print_text(description);
        return 0;
    };
}

}  // namespace boreas::apps
