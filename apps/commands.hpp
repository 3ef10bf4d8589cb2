#pragma once
// Subcommands of the `boreas` binary. Each registers its options on the parent app and returns
// the function that runs it once the command line is parsed.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace boreas::apps {

using Runner = std::function<int()>;

Runner add_info_command(CLI::App& app);
Runner add_graph_command(CLI::App& app);
Runner add_forward_command(CLI::App& app);
/// `command_line` is stored in results as the reproduction command.
Runner add_bench_command(CLI::App& app, const std::string& command_line);
Runner add_roof_command(CLI::App& app);
Runner add_train_command(CLI::App& app);
Runner add_scale_command(CLI::App& app);
Runner add_compare_command(CLI::App& app);
Runner add_checkpoint_command(CLI::App& app);
Runner add_forecast_command(CLI::App& app);

/// `--device cpu|cuda[:N]` into `target`, its name checked as the command line is parsed (before
/// any work: a graph build, a checkpoint read), with `help`.
CLI::Option* add_device_option(CLI::App* command, std::string& target, const std::string& help);

/// Sets the OpenMP thread count when `threads` > 0.
void apply_threads(int threads);

}  // namespace boreas::apps
