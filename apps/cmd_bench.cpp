#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "boreas/backends/backend.hpp"
#include "boreas/bench/bench.hpp"
#include "boreas/bench/roof.hpp"
#include "boreas/core/error.hpp"
#include "boreas/data/bench.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/io/atomic_file.hpp"
#include "commands.hpp"

namespace boreas::apps {
namespace {

/// Fails before a long run if `path` could not be written at the end.
void check_writable(const std::string& path, const char* what) {
    if (path.empty()) return;
    const auto folder = std::filesystem::path(path).has_parent_path()
                            ? std::filesystem::path(path).parent_path()
                            : std::filesystem::path(".");
    BOREAS_CHECK(std::filesystem::is_directory(folder) && ::access(folder.c_str(), W_OK) == 0,
                 "cannot write the {} file '{}': folder '{}' is missing or not writable", what,
                 path, folder.string());
}

nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    BOREAS_CHECK(in.good(), "cannot open '{}'", path);
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& error) {
        BOREAS_FAIL("'{}' is not valid JSON: {}", path, error.what());
    }
}

}  // namespace

Runner add_bench_command(CLI::App& app, const std::string& command_line) {
    auto options = std::make_shared<bench::BenchOptions>();
    auto json = std::make_shared<std::string>();
    auto csv = std::make_shared<std::string>();
    auto* command = app.add_subcommand(
        "bench", "Benchmark the model: per-phase times against the measured roof");
    command
        ->add_option("what", options->what,
                     "forward | train | all (the model), or data (an anemoi dataset's loader)")
        ->required();
    auto data = std::make_shared<data::DataBenchOptions>();
    command->add_option("--dataset", data->store, "data: the anemoi dataset (Zarr store)");
    command->add_option("--data-threads", data->threads, "data: loader thread counts to measure")
        ->capture_default_str();
    command->add_option("--batches", data->batches, "data: timed batches per thread count")
        ->capture_default_str();
    command->add_option("--chunks", data->chunks, "data: chunks timed for read and decompression")
        ->capture_default_str();
    command->add_option("--rollout", data->rollout, "data: rollout steps per sample")
        ->capture_default_str();
    auto* config = command->add_option("--config", options->config, "Built-in config or YAML file")
                       ->capture_default_str();
    auto* set =
        command->add_option("--set", options->overrides, "Override a config key: key.path=value");
    auto* checkpoint = command->add_option("--checkpoint", options->checkpoint,
                                           "anemoi inference checkpoint: config, graph and weights "
                                           "from it (--input in physical units)");
    command->add_option("--warmup", options->warmup, "Untimed steps first")->capture_default_str();
    command->add_option("--repetitions", options->repetitions, "Timed steps (at least)")
        ->capture_default_str();
    command
        ->add_option("--min-time", options->min_time, "Repeat until this many seconds were timed")
        ->capture_default_str();
    command->add_option("--timeout", options->timeout, "Stop repeating after this many seconds")
        ->capture_default_str();
    command->add_option("--threads", options->threads, "OpenMP threads (default: OMP_NUM_THREADS)");
    command->add_option("--batch", options->batch, "Batch size")->capture_default_str();
    command->add_option("--seed", options->seed, "Seed of weights and input")
        ->capture_default_str();
    command->add_option("--verify", options->verify,
                        "Compare the output with this forward output file");
    command->add_option("--input", options->input, "Input file (default: seeded synthetic input)");
    auto* weights = command->add_option("--weights", options->weights,
                                        "Weights file (default: seeded initialisation)");
    auto* graph =
        command->add_option("--graph", options->graph, "Graph file (default: the config's graph)");
    for (auto* option : {config, set, weights, graph}) checkpoint->excludes(option);
    command->add_flag("--activation-checkpointing,!--no-activation-checkpointing",
                      options->activation_checkpointing,
                      "train: recompute activations in backward (default on)");
    command->add_flag("--fresh-roof", options->fresh_roof,
                      "Measure the roof again instead of reusing this boot's");
    command
        ->add_option("--replicas", options->replicas,
                     "Under MPI: data-parallel replicas, each with its share of --batch "
                     "(default: the rank count over --shards)")
        ->check(CLI::NonNegativeNumber);
    command
        ->add_option("--shards", options->shards,
                     "Under MPI: model-parallel shards per replica (default: the rank count "
                     "over --replicas, else 1)")
        ->check(CLI::NonNegativeNumber);
    command
        ->add_option("--precision", options->precision,
                     "forward: fp32, or bf16 (every Linear as under anemoi's bf16 autocast; "
                     "phases held against the BF16 dot roof where the CPU has AVX512-BF16)")
        ->check(CLI::IsMember({"fp32", "bf16"}));
    add_device_option(command, options->device,
                      "Device the model runs on: cpu, cuda or cuda:N (cuda: a build made with the "
                      "cuda preset)");
    command->add_option("--json", *json, "Write the result document (JSON) here");
    command->add_option("--csv", *csv, "Write the per-phase results (CSV) here");
    options->command_line = command_line;
    return [options, json, csv, data]() {
        check_writable(*json, "JSON");
        check_writable(*csv, "CSV");
        if (options->what == "data") {
            BOREAS_CHECK(!data->store.empty(), "bench data needs --dataset STORE");
            data->batch = options->batch;
            const auto document = data::bench_data(*data);
            if (!json->empty()) io::write_text_atomically(*json, document.dump(2) + "\n");
            const auto& c = document["chunks"];
            fmt::print("chunks: {} read at {:.1f} MB/s (compressed), decoded at {:.1f} MB/s{}\n",
                       c["count"].get<int>(), c["read_mb_per_s"].get<double>(),
                       c["decode_mb_per_s"].get<double>(),
                       c.contains("blosc_mb_per_s") ? fmt::format(" (c-blosc alone {:.1f} MB/s)",
                                                                  c["blosc_mb_per_s"].get<double>())
                                                    : "");
            for (const auto& p : c["parallel_decode"])
                fmt::print(
                    "decoding on {} thread(s): {:.1f} MB/s{}\n", p["threads"].get<int>(),
                    p["mb_per_s"].get<double>(),
                    p.contains("vs_blosc_single_thread_times_threads")
                        ? fmt::format(" ({:.0f} % of c-blosc's single-thread rate x threads)",
                                      100 * p["vs_blosc_single_thread_times_threads"].get<double>())
                        : "");
            for (const auto& l : document["loader"])
                fmt::print(
                    "loader, {} thread(s): {:.2f} samples/s, {:.1f} MB/s decompressed, "
                    "{:.3g} CPU-s per sample\n",
                    l["threads"].get<int>(), l["samples_per_s"].get<double>(),
                    l["decompressed_mb_per_s"].get<double>(),
                    l["cpu_seconds_per_sample"].get<double>());
            return 0;
        }
        const auto document = bench::run(*options);
        // Under MPI every rank measured; rank 0 writes and prints (the document holds the
        // other ranks' medians per phase).
        if (dist::Communicator::world().rank() != 0) return 0;
        if (!json->empty()) io::write_text_atomically(*json, document.dump(2) + "\n");
        if (!csv->empty()) io::write_text_atomically(*csv, bench::format_csv(document));
        fmt::print("{}", bench::format_table(document));
        return 0;
    };
}

Runner add_roof_command(CLI::App& app) {
    auto json = std::make_shared<bool>(false);
    auto fresh = std::make_shared<bool>(false);
    auto* command =
        app.add_subcommand("roof", "Measure this machine's FMA, BF16-dot, SGEMM and triad roofs");
    command->add_flag("--json", *json, "Print JSON");
    command->add_flag("--fresh", *fresh, "Measure again instead of reusing this boot's result");
    auto device = std::make_shared<std::string>("cpu");
    add_device_option(command, *device,
                      "cpu, or cuda / cuda:N: that GPU's roof (cuBLASLt fp32 and bf16 GEMM, "
                      "device memory bandwidth) instead of the CPU's");
    return [json, fresh, device]() {
        const auto target = backends::parse_device(*device, "--device");
        if (target.kind != backends::DeviceKind::cpu) {
            const auto roof = backends::get(target).measure_roof();
            if (*json) {
                fmt::print("{}\n", roof.dump(2));
                return 0;
            }
            fmt::print("{} ({})\n", roof["name"].get<std::string>(), target.name());
            fmt::print("FP32 GEMM GFLOP/s {:10.1f}  (n {})\n",
                       roof["fp32_gemm_gflops"].get<double>(), roof["gemm_size"].get<long>());
            fmt::print("BF16 GEMM GFLOP/s {:10.1f}\n", roof["bf16_gemm_gflops"].get<double>());
            fmt::print("Memory    GB/s    {:10.1f}\n", roof["memory_gbs"].get<double>());
            return 0;
        }
        bench::RoofOptions options;
        options.use_cache = !*fresh;
        const auto roof = bench::measure_roof(options);
        if (*json) {
            fmt::print("{}\n", roof.dump(2));
            return 0;
        }
        auto per = [](const nlohmann::ordered_json& value) {
            return fmt::format("{:8.1f} (1 thread) {:8.1f} ({} threads)", value.value("1", 0.0),
                               value.value("all", 0.0), value.value("threads", 0));
        };
        fmt::print("FP32 FMA  GFLOP/s {}\n", per(roof["fp32_fma_gflops"]));
        if (roof["bf16_dot_gflops"].is_null()) {
            fmt::print("BF16 dot  unavailable: {}\n", roof.value("bf16_unavailable_reason", ""));
        } else {
            fmt::print("BF16 dot  GFLOP/s {}\n", per(roof["bf16_dot_gflops"]));
        }
        for (const auto& g : roof["sgemm"])
            fmt::print("SGEMM     GFLOP/s {:8.1f}  m {} n {} k {} ({} threads)\n",
                       g["gflops"].get<double>(), g["m"].get<long>(), g["n"].get<long>(),
                       g["k"].get<long>(), g["threads"].get<int>());
        fmt::print("Triad     GB/s    {}\n", per(roof["triad_gbs"]));
        return 0;
    };
}

Runner add_compare_command(CLI::App& app) {
    auto files = std::make_shared<std::vector<std::string>>();
    auto options = std::make_shared<bench::CompareOptions>();
    auto* command =
        app.add_subcommand("compare", "Compare benchmark documents: ratios and verdicts per phase");
    command
        ->add_option("files", *files,
                     "BASE.json NEW.json [MORE.json ...]: each compared with the first")
        ->required()
        ->expected(2, -1);
    command->add_option("--tolerance", options->tolerance, "Relative difference still called SAME")
        ->capture_default_str();
    command->add_flag("--force", options->force, "Compare documents of different configs");
    return [files, options]() {
        const auto base = read_json(files->front());
        for (std::size_t i = 1; i < files->size(); ++i) {
            const auto other = read_json((*files)[i]);
            if (data::is_data_bench_document(base) || data::is_data_bench_document(other))
                fmt::print("{}", data::compare_data_bench(base, files->front(), other, (*files)[i],
                                                          options->tolerance, options->force));
            else
                fmt::print("{}",
                           bench::compare(base, files->front(), other, (*files)[i], *options));
        }
        return 0;
    };
}

}  // namespace boreas::apps
