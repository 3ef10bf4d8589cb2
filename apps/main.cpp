// The `boreas` command line: one binary, one subcommand per job. Errors from anywhere end here:
// one line on stderr, a non-zero exit.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "boreas/backends/backend.hpp"
#include "boreas/core/context.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/dist/communicator.hpp"
#include "commands.hpp"

#ifdef BOREAS_WITH_CUDA
#include "boreas/backends/cuda/backend.hpp"
#endif

namespace boreas::apps {

CLI::Option* add_device_option(CLI::App* command, std::string& target, const std::string& help) {
    return command->add_option("--device", target, help)
        ->capture_default_str()
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                backends::Device device;
                try {
                    device = backends::parse_device(text, "--device");
                } catch (const Error&) {
                    return "unknown device '" + text + "' (expected cpu, cuda or cuda:N)";
                }
                const auto kinds = backends::available_kinds();
                const std::string kind = device.kind == backends::DeviceKind::cpu ? "cpu" : "cuda";
                if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
                    return "this build of Boreas has no " + kind +
                           " backend (configure with the cuda preset: cmake --preset cuda)";
                return {};
            },
            "DEVICE"));
}

void apply_threads(int threads) {
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#else
    (void)threads;
#endif
}

}  // namespace boreas::apps

int main(int argc, char** argv) {
    using namespace boreas;
#ifdef __GLIBC__
    // A forward step allocates and frees the same activation buffers layer after layer. glibc
    // serves blocks above 128 KiB (adapting up to 32 MiB) with fresh mmaps and trims the heap top
    // above 128 KiB, so every layer paid the first touch of new pages again: page faults and
    // zeroing, and in a VM whose freed memory goes back to the host, the host's faults too
    // (aifs-n320: 4.4 GB of encoder K|V zeroed at 0.26 GB/s, 17 s of a step). All blocks now come
    // from the heap, which is never trimmed: a freed buffer's pages serve the next layer and the
    // next step. Peak RSS stays the peak of live buffers plus fragmentation (docs/performance.md).
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);
#endif
#ifdef BOREAS_WITH_CUDA
    backends::cuda::register_backend();  // --device cuda[:N]
#endif
    CLI::App app{"Boreas: AIFS/Anemoi-class weather model engine and benchmark suite", "boreas"};
    app.set_version_flag("--version", std::string("boreas ") + detail::kVersion);
    app.require_subcommand(1);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "Print debug progress on stderr");

    std::vector<std::pair<CLI::App*, apps::Runner>> commands;
    auto remember = [&](apps::Runner runner) {
        commands.emplace_back(app.get_subcommands({}).back(), std::move(runner));
    };
    remember(apps::add_info_command(app));
    remember(apps::add_graph_command(app));
    remember(apps::add_forward_command(app));
    remember(apps::add_forecast_command(app));
    std::string command_line = "boreas";
    for (int i = 1; i < argc; ++i) command_line += std::string(" ") + argv[i];
    remember(apps::add_bench_command(app, command_line));
    remember(apps::add_roof_command(app));
    remember(apps::add_train_command(app));
    remember(apps::add_scale_command(app));
    remember(apps::add_compare_command(app));
    remember(apps::add_checkpoint_command(app));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        return app.exit(error);
    }
    if (verbose) log::set_level(log::Level::debug);
    try {
        for (auto& [command, run] : commands)
            if (command->parsed()) return run();
        return 0;
    } catch (const Error& error) {
        log::error("{}{}", dist::rank_prefix(), error.message());
        log::debug("raised at {}", error.location());
        return dist::end_run(1);
    } catch (const std::bad_alloc&) {
        // Say what ran out and how much was in use, not just "std::bad_alloc".
        log::error(
            "{}out of memory: an allocation failed with {:.2f} GiB resident at the peak "
            "(ulimit -v, the cgroup or the machine's memory); a smaller config, batch or "
            "--activation-checkpointing needs less",
            dist::rank_prefix(), static_cast<double>(peak_rss_bytes()) / (1u << 30));
        return dist::end_run(1);
    } catch (const std::exception& error) {
        log::error("{}{}", dist::rank_prefix(), error.what());
        return dist::end_run(1);
    }
}
