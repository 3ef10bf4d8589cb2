// boreas scale: a scaling sweep under MPI (each point one `boreas bench train` run, launched by
// mpirun or srun), its efficiency table, and the prediction model for EuroHPC systems validated
// against the sweep (docs/scaling.md).
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "boreas/bench/scaling.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/io/atomic_file.hpp"
#include "boreas/model/model.hpp"
#include "commands.hpp"

namespace boreas::apps {
namespace {

namespace fs = std::filesystem;

struct ScaleOptions {
    std::vector<int> ranks = {1, 2, 4};
    std::string mode = "strong";
    std::vector<std::string> layouts = {"replicas", "shards"};
    std::string config = "small";
    std::vector<std::string> overrides;
    int batch = 0;  // 0: the largest rank count (strong), 1 per replica (weak)
    int threads = 1;
    int warmup = 1;
    int repetitions = 3;
    std::string out = "scale";
    std::string launcher;
    bool measure_link = false;  // internal: run under the launcher by the sweep
    std::string predict;        // a sweep folder: predictions, validated on its points
    int max_ranks = 1024;
    std::string svg;
    std::string precision = "fp32";
    std::string baseline;  // a one-rank bench train document to predict (default: the sweep's)
};

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path);
    BOREAS_CHECK(in.good(), "cannot open '{}'", path.string());
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& error) {
        BOREAS_FAIL("'{}' is not valid JSON: {}", path.string(), error.what());
    }
}

/// The launcher for n ranks: --launcher with {n} replaced, else mpirun (root-safe, shared
/// memory only, as the tests run it) or srun under Slurm.
std::string launcher_for(const ScaleOptions& o, int n) {
    std::string launcher = o.launcher;
    if (launcher.empty()) {
        if (std::getenv("SLURM_JOB_ID") != nullptr) {
            launcher = "srun -n {n}";
        } else {
            launcher = "mpirun -n {n} --oversubscribe --bind-to none";
            if (::geteuid() == 0) launcher += " --allow-run-as-root";
        }
    }
    const auto at = launcher.find("{n}");
    BOREAS_CHECK(at != std::string::npos, "--launcher '{}' has no {{n}} for the rank count",
                 launcher);
    return launcher.replace(at, 3, std::to_string(n));
}

std::string self_path() {
    std::error_code error;
    const auto path = fs::read_symlink("/proc/self/exe", error);
    return error ? std::string("boreas") : path.string();
}

void run_or_fail(const std::string& command) {
    log::info("running: {}", command);
    const int status = std::system(command.c_str());
    BOREAS_CHECK(status == 0, "'{}' failed (status {})", command, status);
}

/// Rank 0 of 2: latency (1-value all-gathers) and bandwidth (8 MiB all-gathers) of the link
/// between two ranks.
int measure_link(const ScaleOptions& o) {
    const auto& world = dist::Communicator::world();
    BOREAS_CHECK(world.size() == 2, "--measure-link runs on 2 ranks, found {}", world.size());
    const std::vector<std::int64_t> one = {1, 1},
                                    big = {std::int64_t{1} << 21, std::int64_t{1} << 21};
    std::vector<float> mine(std::size_t{1} << 21, 1.0f), all(std::size_t{1} << 22);
    auto time = [&](const std::vector<std::int64_t>& counts, int reps) {
        world.barrier();
        const auto start = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) world.allgather_rows(mine.data(), all.data(), counts, 1);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
               reps;
    };
    time(big, 3);
    const double latency = time(one, 2000), seconds = time(big, 20);
    if (world.rank() == 0) {
        const nlohmann::ordered_json link = {
            {"latency_us", latency * 1e6},
            {"gbs", 4.0 * static_cast<double>(big[0]) / seconds / 1e9},
            {"communicator", world.describe()}};
        io::write_text_atomically(fs::path(o.out) / "link.json", link.dump(2) + "\n");
    }
    return 0;
}

struct Point {
    std::string layout;
    int ranks = 1;
    nlohmann::json document;
    double step_s = 0, slowest_s = 0, exchange_bytes = 0, exchange_s = 0, allreduce_s = 0;
};

double median_of(const nlohmann::json& document, const std::string& name) {
    for (const auto& r : document.at("results"))
        if (r.at("name") == name) return r.at("stats").at("median").get<double>();
    return 0;
}

Point read_point(const fs::path& file, const std::string& layout, int ranks) {
    Point p{layout, ranks, read_json(file)};
    for (const auto& r : p.document.at("results")) {
        if (r.at("name") != "train") continue;
        p.step_s = r.at("stats").at("median").get<double>();
        p.slowest_s = r.contains("ranks") ? r["ranks"]["max_of_medians_s"].get<double>() : p.step_s;
        if (r.contains("communication")) {
            p.exchange_bytes = r["communication"]["bytes_sent_per_step"].get<double>();
            p.exchange_s = r["communication"]["seconds_per_step"].get<double>();
        }
    }
    p.allreduce_s = median_of(p.document, "train/allreduce");
    return p;
}

/// The sweep: one bench train run per layout and rank count; the table on stdout and
/// scale.json in the folder.
int run_sweep(const ScaleOptions& o) {
    BOREAS_CHECK(o.mode == "strong" || o.mode == "weak", "--mode {}: expected strong or weak",
                 o.mode);
    BOREAS_CHECK(!o.ranks.empty() && o.ranks.front() == 1,
                 "--ranks must start with 1 (the baseline), found {}",
                 o.ranks.empty() ? 0 : o.ranks.front());
    fs::create_directories(o.out);
    const int largest = *std::max_element(o.ranks.begin(), o.ranks.end());
    const std::string self = self_path();
    if (largest >= 2)
        run_or_fail(
            fmt::format("{} {} scale --measure-link --out {}", launcher_for(o, 2), self, o.out));
    std::vector<Point> points;
    for (const auto& layout : o.layouts) {
        BOREAS_CHECK(layout == "replicas" || layout == "shards",
                     "--layout {}: expected replicas or shards", layout);
        for (const int n : o.ranks) {
            // Strong: the same global batch on every point (replicas split it); weak: a fixed
            // batch per replica (shards always split the same model and batch: strong).
            const int per_replica = o.batch > 0 ? o.batch : (o.mode == "weak" ? 1 : largest);
            const int batch =
                o.mode == "weak" && layout == "replicas" ? per_replica * n : per_replica;
            const auto file = fs::path(o.out) / fmt::format("{}-{}.json", layout, n);
            std::string command = fmt::format(
                "{} bench train --config {} --batch {} --threads {} --warmup {} --repetitions {} "
                "--json {}",
                self, o.config, batch, o.threads, o.warmup, o.repetitions, file.string());
            for (const auto& s : o.overrides) command += fmt::format(" --set '{}'", s);
            if (n > 1)
                command = fmt::format("{} {} --{} {}", launcher_for(o, n), command, layout, n);
            if (n > 1 || layout == o.layouts.front()) run_or_fail(command + " >/dev/null");
            points.push_back(read_point(
                n > 1 ? file : fs::path(o.out) / fmt::format("{}-1.json", o.layouts.front()),
                layout, n));
        }
    }
    const double one = points.front().step_s;
    nlohmann::ordered_json table = nlohmann::ordered_json::array();
    fmt::print(
        "| layout | ranks | batch | step s (rank 0) | slowest rank s | exchange MB/step | "
        "exchange s | exposed all-reduce s | efficiency ({}) |\n|---|---|---|---|---|---|"
        "---|---|---|\n",
        o.mode);
    for (const auto& p : points) {
        const double batch = p.document.at("context").at("run").at("batch").get<double>();
        // Strong: T1 / (n Tn) on the same batch; weak: T1 / Tn at a fixed batch per replica.
        const double ideal = o.mode == "weak" && p.layout == "replicas" ? 1.0 : p.ranks;
        const double efficiency = one / (ideal * p.slowest_s);
        fmt::print("| {} | {} | {:.0f} | {:.3f} | {:.3f} | {:.2f} | {:.4f} | {:.4f} | {:.1f} % |\n",
                   p.layout, p.ranks, batch, p.step_s, p.slowest_s, p.exchange_bytes / 1e6,
                   p.exchange_s, p.allreduce_s, 100 * efficiency);
        table.push_back({{"layout", p.layout},
                         {"ranks", p.ranks},
                         {"batch", batch},
                         {"step_s", p.step_s},
                         {"slowest_rank_step_s", p.slowest_s},
                         {"exchange_bytes_per_step", p.exchange_bytes},
                         {"exchange_s_per_step", p.exchange_s},
                         {"exposed_allreduce_s", p.allreduce_s},
                         {"efficiency", efficiency}});
    }
    const nlohmann::ordered_json document = {
        {"mode", o.mode}, {"config", o.config}, {"threads", o.threads}, {"points", table}};
    io::write_text_atomically(fs::path(o.out) / "scale.json", document.dump(2) + "\n");
    return 0;
}

/// Predictions for the EuroHPC systems from a sweep's one-rank run, validated on the sweep's
/// own points with this host's measured link.
int run_prediction(const ScaleOptions& o) {
    BOREAS_CHECK(o.precision == "fp32" || o.precision == "bf16",
                 "--precision {}: expected fp32 or bf16", o.precision);
    const fs::path folder = o.predict;
    const auto sweep = read_json(folder / "scale.json");
    const auto first = sweep.at("points").at(0);
    const auto layout = first.at("layout").get<std::string>();
    // A one-rank `bench train` document and its model: the workload the predictions scale.
    auto workload_of = [&](const nlohmann::json& document, model::ModelConfig& config) {
        const auto& run = document.at("context").at("run");
        config = model::load_config(run.at("config").get<std::string>(), {});
        if (run.contains("resolved_config"))
            config = model::parse_config(run["resolved_config"].get<std::string>(), config.name);
        const auto graph = model::graph_for(config);
        return bench::workload_from(document, config, *graph, o.max_ranks);
    };
    model::ModelConfig swept_config, config;
    const auto w = workload_of(read_json(folder / fmt::format("{}-1.json", layout)), swept_config);
    const auto target = o.baseline.empty() ? w : workload_of(read_json(o.baseline), config);
    if (o.baseline.empty()) config = swept_config;

    // Validation: this host as a system (its measured link, its cores shared by the ranks).
    const auto link = read_json(folder / "link.json");
    bench::SystemFigures host{"this host",
                              "rank",
                              1 << 20,
                              0,
                              0,
                              link.at("gbs").get<double>(),
                              link.at("gbs").get<double>(),
                              link.at("latency_us").get<double>(),
                              link.at("latency_us").get<double>(),
                              "measured by boreas scale (all-gathers between 2 ranks)"};
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = sweep.at("threads").get<int>();
    fmt::print(
        "Validation on this host ({} cores; link {:.2f} GB/s, {:.1f} us):\n\n| layout | "
        "ranks | measured s | predicted s | error | exchange MB/step measured | "
        "model |\n|---|---|---|---|---|---|---|\n",
        cores, host.intra_gbs, host.intra_latency_us);
    double worst = 0;
    nlohmann::ordered_json validation = nlohmann::ordered_json::array();
    for (const auto& p : sweep.at("points")) {
        const int n = p.at("ranks").get<int>();
        const auto l = p.at("layout").get<std::string>();
        if (n == 1 || sweep.at("mode") != "strong") continue;
        // Ranks beyond the cores share them: each rank's compute slows by that factor.
        const double ratio = std::max(1.0, static_cast<double>(n * threads) / cores);
        const auto pred = l == "shards" ? bench::predict(w, host, 1, n, ratio)
                                        : bench::predict(w, host, n, 1, ratio);
        // A replica of the strong sweep runs 1/n of the batch: its compute is the shard's.
        auto step = pred.step_s;
        if (l == "replicas") {
            auto as_shard = bench::predict(w, host, 1, 1, ratio);
            step = (as_shard.compute_s - w.optimizer_s * ratio) / n + w.optimizer_s * ratio +
                   pred.exposed_s;
        }
        const double measured = p.at("slowest_rank_step_s").get<double>();
        const double error = (step - measured) / measured;
        worst = std::max(worst, std::abs(error));
        const double bytes = l == "shards" && static_cast<std::size_t>(n) < w.shard.size()
                                 ? w.shard[static_cast<std::size_t>(n)].bytes
                                 : 0.0;
        fmt::print("| {} | {} | {:.3f} | {:.3f} | {:+.1f} % | {:.3f} | {:.3f} |\n", l, n, measured,
                   step, 100 * error, p.at("exchange_bytes_per_step").get<double>() / 1e6,
                   bytes / 1e6);
        validation.push_back({{"layout", l},
                              {"ranks", n},
                              {"measured_s", measured},
                              {"predicted_s", step},
                              {"exchange_bytes_measured", p.at("exchange_bytes_per_step")},
                              {"exchange_bytes_model", bytes}});
    }
    fmt::print("\nworst validation error: {:.1f} %\n\n", 100 * worst);

    // The systems: data parallel (weak, batch per replica fixed), sharding within a node
    // (strong), and replicas of node-wide shards.
    nlohmann::ordered_json systems = nlohmann::ordered_json::array();
    std::vector<std::pair<std::string, std::vector<bench::Prediction>>> lines;
    for (const auto& system : bench::eurohpc_systems()) {
        const double peak = o.precision == "bf16" ? system.bf16_tflops : system.fp32_tflops;
        const double ratio = target.host_rank_gflops / (peak * 1e3);
        std::vector<bench::Prediction> replicas, sharded;
        fmt::print(
            "{} ({} per node, {}; prediction for {}, {}):\n\n| replicas x shards | compute s | "
            "shard exchange s | all-reduce s (exposed) | step s | efficiency |\n|---|---|"
            "---|---|---|---|\n",
            system.name, system.devices_per_node, system.device, config.name, o.precision);
        for (int n = 1; n <= o.max_ranks; n *= 2) {
            const auto pr = bench::predict(target, system, n, 1, ratio);
            replicas.push_back(pr);
            if (n >= system.devices_per_node && n / system.devices_per_node >= 1) {
                const int s = system.devices_per_node;
                if (static_cast<std::size_t>(s) < target.shard.size())
                    sharded.push_back(bench::predict(target, system, n / s, s, ratio));
            }
        }
        for (const auto* set : {&replicas, &sharded})
            for (const auto& p : *set) {
                fmt::print("| {} x {} | {:.4f} | {:.4f} | {:.4f} ({:.4f}) | {:.4f} | {:.1f} % |\n",
                           p.replicas, p.shards, p.compute_s, p.shard_s, p.allreduce_s, p.exposed_s,
                           p.step_s, 100 * p.efficiency);
                systems.push_back({{"system", system.name},
                                   {"replicas", p.replicas},
                                   {"shards", p.shards},
                                   {"compute_s", p.compute_s},
                                   {"shard_exchange_s", p.shard_s},
                                   {"allreduce_s", p.allreduce_s},
                                   {"exposed_allreduce_s", p.exposed_s},
                                   {"step_s", p.step_s},
                                   {"efficiency", p.efficiency}});
            }
        fmt::print("\n");
        lines.emplace_back(system.name + ", replicas", replicas);
        if (!sharded.empty())
            lines.emplace_back(
                fmt::format("{}, {} shards x replicas", system.name, system.devices_per_node),
                sharded);
    }
    const nlohmann::ordered_json document = {
        {"prediction", true},       {"config", config.name},           {"precision", o.precision},
        {"validation", validation}, {"worst_validation_error", worst}, {"systems", systems}};
    io::write_text_atomically(folder / "prediction.json", document.dump(2) + "\n");
    if (!o.svg.empty())
        io::write_text_atomically(
            o.svg, bench::prediction_svg(
                       lines, fmt::format("Predicted training efficiency, {} ({}, batch {} per "
                                          "replica) - a model, not a measurement",
                                          config.name, o.precision, target.batch)));
    return 0;
}

}  // namespace

Runner add_scale_command(CLI::App& app) {
    auto o = std::make_shared<ScaleOptions>();
    auto* command = app.add_subcommand(
        "scale", "Scaling sweep under MPI (efficiency table), and predictions for EuroHPC systems");
    command->add_option("--ranks", o->ranks, "Rank counts, starting with 1")
        ->delimiter(',')
        ->capture_default_str();
    command->add_option("--mode", o->mode, "strong (same global batch) or weak (batch per replica)")
        ->capture_default_str();
    command->add_option("--layout", o->layouts, "replicas, shards or both")
        ->delimiter(',')
        ->capture_default_str();
    command->add_option("--config", o->config, "Built-in config or YAML file")
        ->capture_default_str();
    command->add_option("--set", o->overrides, "Override a config key: key.path=value");
    command->add_option("--batch", o->batch,
                        "Global batch (strong) or per replica (weak); default: the largest rank "
                        "count (strong), 1 (weak)");
    command->add_option("--threads", o->threads, "Threads per rank")->capture_default_str();
    command->add_option("--warmup", o->warmup, "Untimed steps per point")->capture_default_str();
    command->add_option("--repetitions", o->repetitions, "Timed steps per point")
        ->capture_default_str();
    command->add_option("--out", o->out, "Folder for the points' documents and scale.json")
        ->capture_default_str();
    command->add_option("--launcher", o->launcher,
                        "Launch command with {n} for the rank count (default: srun -n {n} under "
                        "Slurm, else mpirun -n {n})");
    command->add_flag("--measure-link", o->measure_link)->group("");  // the sweep's own step
    command->add_option("--predict", o->predict,
                        "A sweep folder: predict the EuroHPC systems from its one-rank point and "
                        "validate on its other points");
    command->add_option("--max-ranks", o->max_ranks, "Largest rank count predicted")
        ->capture_default_str();
    command->add_option("--svg", o->svg, "Write the predictions' plot here");
    command->add_option("--baseline", o->baseline,
                        "A one-rank `boreas bench train` document (JSON) whose config the "
                        "systems are predicted for (default: the sweep's one-rank point)");
    command
        ->add_option("--precision", o->precision,
                     "Peak the systems' compute is scaled by: fp32 or bf16")
        ->capture_default_str();
    return [o]() {
        if (o->measure_link) return measure_link(*o);
        if (!o->predict.empty()) return run_prediction(*o);
        return run_sweep(*o);
    };
}

}  // namespace boreas::apps
