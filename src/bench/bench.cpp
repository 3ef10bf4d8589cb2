#include "boreas/bench/bench.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <functional>
#include <map>
#include <numeric>
#include <optional>

#include "boreas/backends/backend.hpp"
#include "boreas/bench/roof.hpp"
#include "boreas/core/context.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/core/trace.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/kernels/kernels.hpp"
#include "boreas/model/checkpoint.hpp"
#include "boreas/model/model.hpp"
#include "boreas/train/data_parallel.hpp"
#include "boreas/train/loss.hpp"
#include "boreas/train/optimizer.hpp"
#include "boreas/train/trainer.hpp"
#include "cost_model.hpp"

namespace boreas::bench {
namespace {

std::string utc_now() {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

nlohmann::ordered_json verification(const Tensor& output, const std::string& reference_file) {
    double sum = 0, squares = 0;
    for (float v : output.values()) {
        sum += v;
        squares += static_cast<double>(v) * v;
    }
    const std::string checksum =
        fmt::format("sum {:.9g}, sum of squares {:.9g}, {} values", sum, squares, output.numel());
    bool finite = std::isfinite(sum) && std::isfinite(squares);
    if (reference_file.empty()) {
        return {{"status", finite ? "checksum" : "failed"},
                {"detail", finite ? checksum : "non-finite output: " + checksum}};
    }
    io::SafetensorsReader reader(reference_file);
    const auto expected = reader.view<float>("output", output.shape());
    double worst = 0;
    std::int64_t bad = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const double error = std::abs(output.values()[i] - expected[i]);
        worst = std::max(worst, error / (std::abs(expected[i]) + 1e-2));
        bad += !(error <= 1e-5 + 1e-4 * std::abs(expected[i]));
    }
    return {{"status", bad == 0 && finite ? "passed" : "failed"},
            {"detail", fmt::format("against {}: {} of {} values outside rtol 1e-4 (atol 1e-5); "
                                   "worst relative {:.3g}; {}",
                                   reference_file, bad, expected.size(), worst, checksum)}};
}

nlohmann::ordered_json phase_result(const std::string& name, const std::string& phase,
                                    const std::vector<double>& samples, int warmup,
                                    const PhaseCost& cost, const nlohmann::ordered_json& roof,
                                    double step_median, const nlohmann::ordered_json& params,
                                    const nlohmann::ordered_json& verdict,
                                    bool bf16_dot_roof = false) {
    nlohmann::ordered_json result;
    result["name"] = name;
    result["phase"] = phase;
    result["params"] = params;
    result["metric"] = "time";
    result["unit"] = "s";
    const auto stats = statistics(samples, warmup);
    result["stats"] = stats;
    result["samples"] = samples;
    const double median = stats["median"].get<double>();
    const double spread =
        median > 0 ? (stats["max"].get<double>() - stats["min"].get<double>()) / median : 0;
    result["noisy"] =
        spread > 0.2 || (stats["n"].get<int>() >= 3 && stats["mean"].get<double>() > 0 &&
                         stats["stddev"].get<double>() / stats["mean"].get<double>() > 0.1);
    result["flops"] = cost.flops;
    result["bytes"] = cost.bytes;
    const double gflops = median > 0 ? cost.flops / median / 1e9 : 0;
    const double gbs = median > 0 ? cost.bytes / median / 1e9 : 0;
    result["achieved"] = {{"gflops", gflops}, {"gbs", gbs}};
    // A bf16 forward on AVX512-BF16 is held against the BF16 dot roof; everything else (fp32,
    // and bf16 emulated through fp32 FMAs) against the measured SGEMM.
    const double compute_roof =
        bf16_dot_roof ? roof["bf16_dot_gflops"].value("all", 0.0) : roof.value("sgemm_gflops", 0.0);
    result["compute_roof"] = {{"name", bf16_dot_roof ? "bf16_dot" : "sgemm"},
                              {"gflops", compute_roof}};
    const double bandwidth = roof["triad_gbs"].value("all", 0.0);
    const double intensity = cost.bytes > 0 ? cost.flops / cost.bytes : 0;
    double fraction = 0;
    std::string bound = "memory";
    if (cost.flops > 0 && compute_roof > 0) {
        const double attainable = std::min(compute_roof, intensity * bandwidth);
        fraction = attainable > 0 ? gflops / attainable : 0;
        bound = intensity * bandwidth >= compute_roof ? "compute" : "memory";
    } else if (bandwidth > 0) {
        fraction = gbs / bandwidth;
    }
    // Far below both roofs, the time goes to overheads (small kernels, synchronisation).
    if (fraction < 0.15) bound = "latency";
    result["fraction_of_roof"] = fraction;
    result["bound"] = bound;
    result["share_of_step"] = step_median > 0 ? median / step_median : 0;
    result["peak_rss_bytes"] = peak_rss_bytes();
    result["verification"] = verdict;
    return result;
}

}  // namespace

nlohmann::ordered_json statistics(const std::vector<double>& samples, int warmup) {
    BOREAS_CHECK(!samples.empty(), "no samples to summarise");
    auto sorted = samples;
    std::sort(sorted.begin(), sorted.end());
    const auto n = sorted.size();
    const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    const double mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(n);
    double squares = 0;
    for (double s : sorted) squares += (s - mean) * (s - mean);
    const double stddev = n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : 0.0;
    return {{"median", median}, {"min", sorted.front()}, {"max", sorted.back()},
            {"mean", mean},     {"stddev", stddev},      {"n", n},
            {"warmup", warmup}};
}

namespace {

/// A GPU's roof (Backend::measure_roof) in the keys of the CPU roof the phase roofline reads:
/// fp32 GEMM as "sgemm_gflops" (and the FMA rate), bf16 GEMM as "bf16_dot_gflops", the device
/// memory bandwidth as "triad_gbs"; the device's own document under "device".
nlohmann::ordered_json device_roof(const nlohmann::ordered_json& gpu) {
    nlohmann::ordered_json roof;
    const double fp32 = gpu.value("fp32_gemm_gflops", 0.0);
    const double bf16 = gpu.value("bf16_gemm_gflops", 0.0);
    const double memory = gpu.value("memory_gbs", 0.0);
    roof["fp32_fma_gflops"] = {{"1", fp32}, {"all", fp32}, {"threads", 1}};
    roof["bf16_dot_gflops"] = {{"1", bf16}, {"all", bf16}, {"threads", 1}};
    roof["sgemm_gflops"] = fp32;
    roof["triad_gbs"] = {{"1", memory}, {"all", memory}, {"threads", 1}};
    roof["cached"] = false;
    roof["device"] = gpu;
    return roof;
}

}  // namespace

nlohmann::ordered_json run(const BenchOptions& options) {
    BOREAS_CHECK(options.what == "forward" || options.what == "train" || options.what == "all",
                 "unknown benchmark '{}'; expected forward, train or all", options.what);
    BOREAS_CHECK(options.repetitions >= 1, "--repetitions must be >= 1, found {}",
                 options.repetitions);
    BOREAS_CHECK(options.warmup >= 0, "--warmup must be >= 0, found {}", options.warmup);
    BOREAS_CHECK(options.batch >= 1, "--batch must be >= 1, found {}", options.batch);
    BOREAS_CHECK(options.timeout > 0, "--timeout must be > 0, found {}", options.timeout);
    if (options.threads > 0) omp_set_num_threads(options.threads);
    const std::string start = utc_now();

    std::optional<model::Checkpoint> checkpoint;
    if (!options.checkpoint.empty()) checkpoint.emplace(options.checkpoint);
    auto make_model = [&]() {
        if (checkpoint) return checkpoint->model();
        auto c = model::load_config(options.config, options.overrides);
        if (!options.graph.empty()) c.graph.file = options.graph;
        model::Model m(c, model::graph_for(c));
        if (options.weights.empty())
            m.parameters().initialise(options.seed);
        else
            m.load_weights(options.weights);
        return m;
    };
    model::Model model = make_model();
    // A bf16 forward keeps the Linears' weights in bf16 only, as `boreas forward` does.
    if (options.precision == "bf16") model.keep_weights_in_bf16();
    model.set_device(backends::parse_device(options.device, "--device"));
    backends::Backend& backend = backends::get(model.device());
    const auto& config = model.config();
    Tensor input = options.input.empty()
                       ? model::synthetic_input(model, options.batch, options.seed)
                       : model::read_input(options.input);
    // A checkpoint's inputs are in physical units; the model runs on normalised ones (the
    // synthetic input already is).
    if (checkpoint && !options.input.empty()) checkpoint->normaliser().normalise_input(input);
    const auto batch = input.dim(0);
    const bool on_gpu = model.device().kind != backends::DeviceKind::cpu;
    const auto roof = on_gpu ? device_roof(backend.measure_roof())
                             : measure_roof({.gemm_shapes = {}, .use_cache = !options.fresh_roof});
    // A fresh roof measurement streams 384 MiB of triad arrays and the SGEMM operands: not the
    // model's memory. Hand it back and restart the peak, so peak_rss_bytes is the model's.
    release_free_heap();
    reset_peak_rss();
    backend.reset_peak_memory();

    auto& recorder = trace::Recorder::instance();
    // Times `step` (warm-ups first) into total samples and per-range samples.
    auto measure = [&](const char* what, const std::function<void()>& step,
                       std::vector<double>& totals,
                       std::map<std::string, std::vector<double>>& phases) {
        recorder.enable(true);
        log::info("benchmark {}, config {}: {} warm-up + {} repetitions", what, config.name,
                  options.warmup, options.repetitions);
        for (int w = 0; w < options.warmup; ++w) step();
        recorder.take();
        Stopwatch elapsed;
        while (totals.empty() || static_cast<int>(totals.size()) < options.repetitions ||
               elapsed.seconds() < options.min_time) {
            Stopwatch clock;
            step();
            totals.push_back(clock.seconds());
            for (const auto& [phase, seconds] : recorder.take()) phases[phase].push_back(seconds);
            if (elapsed.seconds() > options.timeout) {
                log::warning("timeout of {} s reached after {} repetitions", options.timeout,
                             totals.size());
                break;
            }
        }
        recorder.enable(false);
    };
    const bool run_forward = options.what != "train";
    const bool run_train = options.what != "forward";
    const auto precision = model::parse_precision(options.precision, "--precision");
    BOREAS_CHECK(!(run_train && precision == model::Precision::bf16),
                 "--precision bf16 is for inference: training runs in fp32 (bench forward "
                 "--precision bf16)");
    // Under MPI (mpirun -n R boreas bench train): data parallel, each rank one replica with its
    // share of the batch, the gradients averaged in the step's "allreduce" phase.
    // Under MPI (mpirun -n R*S boreas bench ...): R replicas (data parallel: each its share of
    // the batch, the gradients averaged in the step's "allreduce" phase) of S shards each
    // (model sharding: every shard computes a share of the rows; "exchange" phases).
    const auto& world = dist::Communicator::world();
    const auto layout = dist::make_layout(world, options.replicas, options.shards);
    BOREAS_CHECK(batch % layout.replicas == 0,
                 "--batch {} does not split into {} equal replica shares", batch, layout.replicas);
    const std::int64_t share = batch / layout.replicas;
    const bool data_parallel = layout.replicas > 1;
    const dist::Communicator* shards = layout.shards > 1 ? &layout.replica_group : nullptr;
    const Tensor local_input =
        data_parallel ? train::batch_rows(input, layout.replica * share, share) : Tensor();
    // Bytes and seconds the model's exchanges moved per step (the all-reduce of data parallel
    // is accounted as its phase).
    struct Communication {
        double bytes = 0, seconds = 0, calls = 0;
    };
    auto traffic_now = [&] {
        const auto& t = layout.replica_group.traffic();
        return Communication{t.bytes_sent, t.seconds, static_cast<double>(t.calls)};
    };
    std::map<std::string, Communication> communication;
    bool allreduce_overlapped = false;
    int allreduce_buckets = 0;
    std::vector<double> allreduce_seconds, allreduce_exposed;  // per step, warm-ups included
    Tensor output;
    std::vector<double> totals, train_totals;
    double first_step_loss = 0;  // the training step's loss on its first (warm-up) call
    std::map<std::string, std::vector<double>> phases, train_phases;
    auto measured = [&](const char* what, const std::function<void()>& step,
                        std::vector<double>& samples,
                        std::map<std::string, std::vector<double>>& phase_samples) {
        const auto before = traffic_now();
        measure(what, step, samples, phase_samples);
        const auto after = traffic_now();
        const auto steps =
            static_cast<double>(options.warmup) + static_cast<double>(samples.size());
        communication[what] = {(after.bytes - before.bytes) / steps,
                               (after.seconds - before.seconds) / steps,
                               (after.calls - before.calls) / steps};
    };
    if (run_forward) {
        model::ForwardOptions forward_options;
        forward_options.shards = shards;
        forward_options.precision = precision;
        measured(
            "forward",
            [&] {
                output = model.forward(data_parallel ? local_input : input, forward_options);
                backend.synchronize();
            },
            totals, phases);
    }
    if (run_train) {
        // One training step: forward and backward of a rollout-1 step on the synthetic input
        // (targets: the input's last step where a variable is also an output), then AdamW.
        const auto& c = model.config();
        const auto vars = static_cast<std::int64_t>(c.variables.size());
        const auto in_names = c.input_variables();
        Tensor train_batch({batch, c.multistep_input + 1, 1, input.dim(3), vars});
        std::vector<std::int64_t> input_column(static_cast<std::size_t>(vars),
                                               -1);  // -1: not an input
        for (std::int64_t v = 0; v < vars; ++v) {
            const auto it = std::find(in_names.begin(), in_names.end(), c.variables[v]);
            if (it != in_names.end()) input_column[v] = it - in_names.begin();
        }
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t t = 0; t <= c.multistep_input; ++t)
                for (std::int64_t n = 0; n < input.dim(3); ++n)
                    for (std::int64_t v = 0; v < vars; ++v) {
                        const std::int64_t source_t =
                            std::min<std::int64_t>(t, c.multistep_input - 1);
                        train_batch.data()
                            [(((b * (c.multistep_input + 1) + t) * input.dim(3)) + n) * vars + v] =
                            input_column[v] < 0
                                ? 0.0f
                                : input
                                      .data()[(((b * c.multistep_input + source_t) * input.dim(3)) +
                                               n) *
                                                  input.dim(4) +
                                              input_column[v]];
                    }
        const Tensor local = data_parallel
                                 ? train::batch_rows(train_batch, layout.replica * share, share)
                                 : Tensor();
        std::map<std::string, train::AdamWState> states;
        std::int64_t optimiser_step = 0;
        // Data parallel: buckets summed during the backward from the second step on; the
        // allreduce phase is what is left after the backward (exposed) and the averaging.
        std::optional<train::ReplicaAverager> averager;
        if (data_parallel) averager.emplace(layout.shard_group);
        measured(
            "train",
            [&] {
                auto result = train::rollout_step(model, data_parallel ? local : train_batch, 1, {},
                                                  options.activation_checkpointing, shards,
                                                  averager ? &*averager : nullptr);
                backend.synchronize();
                if (averager) {
                    BOREAS_RANGE("allreduce");
                    const auto timing = averager->finish(result);
                    allreduce_overlapped = timing.overlapped;
                    allreduce_buckets = timing.buckets;
                    allreduce_seconds.push_back(timing.reduce_seconds);
                    allreduce_exposed.push_back(timing.exposed_seconds);
                }
                if (optimiser_step == 0) first_step_loss = result.loss;  // checked against peers
                BOREAS_RANGE("optimizer");
                ++optimiser_step;
                for (const auto& name : model.parameters().names()) {
                    auto& param = const_cast<Tensor&>(model.parameters().get(name));
                    // A tiny learning rate: the benchmark times the update, it does not train.
                    train::adamw_step(param.storage(),
                                      result.gradients.parameters.at(name).values(), states[name],
                                      optimiser_step, 1e-12, {});
                }
            },
            train_totals, train_phases);
    }
    // The work of this rank: its replica's share of the batch, and of that its shard's share
    // of the rows (the exchanges balance the rows; FLOPs split evenly to within a row).
    auto costs = forward_costs(model.config(), model.graph(), static_cast<int>(share));
    for (auto& [phase, cost] : costs) {
        cost.flops /= layout.shards;
        cost.bytes /= layout.shards;
    }
    const auto verdict =
        !run_forward    ? nlohmann::ordered_json{{"status", "not-checked"},
                                              {"detail", "training step: no reference output"}}
        : data_parallel ? nlohmann::ordered_json{{"status", "not-checked"},
                                                 {"detail",
                                                  "data parallel: each rank holds a share of the "
                                                  "batch's output"}}
                        : verification(output, options.verify);
    nlohmann::ordered_json params = {{"config", config.name},
                                     {"batch", batch},
                                     {"activation_checkpointing", options.activation_checkpointing},
                                     {"threads", omp_get_max_threads()}};
    if (world.distributed())
        params["layout"] = {{"ranks", world.size()},
                            {"replicas", layout.replicas},
                            {"shards", layout.shards},
                            {"batch_per_replica", share},
                            {"communicator", world.describe()}};
    auto with_communication = [&](nlohmann::ordered_json result, const char* what) {
        if (!world.distributed()) return result;
        const auto& c = communication.at(what);
        result["communication"] = {{"bytes_sent_per_step", c.bytes},
                                   {"seconds_per_step", c.seconds},
                                   {"collectives_per_step", c.calls}};
        return result;
    };
    // Across ranks: each phase's median on every rank, their mean and maximum (the slowest
    // rank sets the step; the gap is load imbalance).
    auto with_ranks = [&](nlohmann::ordered_json result) {
        if (!world.distributed()) return result;
        std::vector<double> medians(static_cast<std::size_t>(world.size()), 0.0);
        medians[static_cast<std::size_t>(world.rank())] = result["stats"]["median"].get<double>();
        world.allreduce_sum(std::span<double>(medians));
        result["ranks"] = {{"count", world.size()},
                           {"median_s", medians},
                           {"mean_of_medians_s",
                            std::accumulate(medians.begin(), medians.end(), 0.0) / world.size()},
                           {"max_of_medians_s", *std::max_element(medians.begin(), medians.end())}};
        return result;
    };
    nlohmann::ordered_json document;
    document["schema"] = kSchemaName;
    document["schema_version"] = kSchemaVersion;
    document["context"]["build"] = build_context();
    document["context"]["build"]["kernel_path"] = kernels::cpu::kernel_path();
    document["context"]["system"] = system_context();
    document["context"]["device"] = backend.describe();
    if (model.device().kind != backends::DeviceKind::cpu) {
        const auto memory = backend.memory_stats();
        document["context"]["device"]["peak_memory_bytes"] = memory.peak_in_use;
        document["context"]["device"]["memory_cached_bytes"] = memory.cached;
    }
    document["context"]["run"] = {{"start_utc", start},
                                  {"command_line", options.command_line},
                                  {"implementation", std::string("boreas ") + detail::kVersion},
                                  {"config", config.name},
                                  {"resolved_config", config.source_yaml},
                                  {"threads", omp_get_max_threads()},
                                  {"seed", options.seed},
                                  {"batch", batch},
                                  {"parameters", model.parameters().parameter_count()},
                                  {"weights", !options.checkpoint.empty() ? options.checkpoint
                                              : options.weights.empty()   ? "seeded"
                                                                          : options.weights},
                                  {"input", options.input.empty() ? "synthetic" : options.input}};
    document["roof"] = roof;
    PhaseCost total_cost;  // top-level phases only: processor/chunkK are parts of processor
    for (const auto& [phase, cost] : costs) {
        if (phase.find('/') != std::string::npos) continue;
        total_cost.flops += cost.flops;
        total_cost.bytes += cost.bytes;
    }
    if (run_forward) {
        const double step_median = statistics(totals, options.warmup)["median"].get<double>();
        auto forward_params = params;
        forward_params["precision"] = model::to_string(precision);
        const bool bf16_dot_roof =
            precision == model::Precision::bf16 &&
            (on_gpu || kernels::cpu::kernel_path()["bf16"] == "avx512_bf16") &&
            roof.contains("bf16_dot_gflops") && !roof["bf16_dot_gflops"].is_null();
        document["results"].push_back(with_communication(
            with_ranks(phase_result("forward", "total", totals, options.warmup, total_cost, roof,
                                    step_median, forward_params, verdict, bf16_dot_roof)),
            "forward"));
        // Phases in the order they run: input, encoder, processor (its chunks), decoder, output.
        std::vector<std::string> order;
        for (const char* phase : {"input", "encoder", "processor"}) order.push_back(phase);
        for (int chunk = 0; chunk < config.processor.num_chunks; ++chunk)
            order.push_back("processor/chunk" + std::to_string(chunk));
        for (const char* phase : {"decoder", "output"}) order.push_back(phase);
        for (const auto& [phase, samples] : phases)
            if (std::find(order.begin(), order.end(), phase) == order.end()) order.push_back(phase);
        for (const auto& phase : order) {
            if (!phases.count(phase)) continue;
            auto it = costs.find(phase);
            const PhaseCost cost = it == costs.end() ? PhaseCost{} : it->second;
            document["results"].push_back(with_ranks(
                phase_result("forward/" + phase, phase, phases.at(phase), options.warmup, cost,
                             roof, step_median, forward_params, verdict, bf16_dot_roof)));
        }
    }
    if (run_train) {
        // Model FLOPs: backward = 2 x forward (the usual count; recomputation excluded).
        const double parameters = static_cast<double>(model.parameters().parameter_count());
        const auto output_values =
            batch * model.graph().node_set("data").count() *
            static_cast<std::int64_t>(model.config().output_variables().size());
        std::map<std::string, PhaseCost> train_costs = {
            {"forward", total_cost},
            {"loss", PhaseCost{0, 12.0 * static_cast<double>(output_values)}},
            {"backward", PhaseCost{2 * total_cost.flops, 2 * total_cost.bytes}},
            {"optimizer", PhaseCost{12 * parameters, 4 * 7 * parameters}}};
        PhaseCost step_cost;
        for (const auto& [phase, cost] : train_costs) {
            step_cost.flops += cost.flops;
            step_cost.bytes += cost.bytes;
        }
        // The parts of the forward and backward (the step's phase tree): the encoder phase holds
        // the input features, the decoder phase the output; a backward part counts twice its
        // forward's FLOPs (its recomputation under checkpointing is not counted).
        auto cost_of = [&](std::initializer_list<const char*> parts, double factor) {
            PhaseCost sum;
            for (const char* part : parts)
                if (const auto it = costs.find(part); it != costs.end()) {
                    sum.flops += factor * it->second.flops;
                    sum.bytes += factor * it->second.bytes;
                }
            return sum;
        };
        for (const char* pass : {"forward", "backward"}) {
            const double factor = std::string(pass) == "forward" ? 1.0 : 2.0;
            train_costs[std::string(pass) + "/encoder"] = cost_of({"input", "encoder"}, factor);
            train_costs[std::string(pass) + "/processor"] = cost_of({"processor"}, factor);
            train_costs[std::string(pass) + "/decoder"] = cost_of({"decoder", "output"}, factor);
        }
        train_costs["backward/processor/recompute"] = PhaseCost{};  // not model FLOPs
        train_costs["backward/decoder/recompute"] = PhaseCost{};    // a chunked decoder's
        // The all-reduce moves every gradient once each way (its bytes, no model FLOPs).
        double gradient_bytes = 0;
        for (const auto& name : model.parameters().names())
            gradient_bytes += 4.0 * static_cast<double>(model.parameters().get(name).numel());
        train_costs["allreduce"] = PhaseCost{0.0, 2.0 * gradient_bytes};
        const double step_median = statistics(train_totals, options.warmup)["median"].get<double>();
        auto train_params = params;
        train_params["first_step_loss"] = first_step_loss;

        auto median_after = [&](const std::vector<double>& values) {  // warm-ups dropped
            if (static_cast<int>(values.size()) <= options.warmup) return 0.0;
            const std::vector<double> timed(values.begin() + options.warmup, values.end());
            return statistics(timed, options.warmup)["median"].get<double>();
        };
        if (data_parallel) {
            train_params["data_parallel"] = {{"ranks", world.size()},
                                             {"replicas", layout.replicas},
                                             {"batch_per_rank", share},
                                             {"overlapped", allreduce_overlapped},
                                             {"buckets", allreduce_buckets},
                                             // Medians over the timed steps: the sums' time on
                                             // the background thread, and what the backward
                                             // did not hide.
                                             {"allreduce_s", median_after(allreduce_seconds)},
                                             {"exposed_s", median_after(allreduce_exposed)},
                                             {"communicator", world.describe()}};
        }
        document["results"].push_back(with_communication(
            with_ranks(phase_result("train", "total", train_totals, options.warmup, step_cost, roof,
                                    step_median, train_params, verdict)),
            "train"));
        std::vector<std::string> train_order = {"forward",
                                                "forward/encoder",
                                                "forward/processor",
                                                "forward/decoder",
                                                "loss",
                                                "backward",
                                                "backward/decoder",
                                                "backward/decoder/recompute",
                                                "backward/processor",
                                                "backward/processor/recompute",
                                                "backward/encoder",
                                                "allreduce",
                                                "optimizer"};
        // Model sharding's exchanges (k|v gathers, heads all-to-alls, their adjoints, the
        // gradients' sum over the group): time only, their bytes are in "communication".
        for (const auto& [phase, samples] : train_phases)
            if (phase.find("exchange") != std::string::npos) {
                train_order.push_back(phase);
                train_costs[phase] = PhaseCost{};
            }
        for (const auto& phase : train_order) {
            if (!train_phases.count(phase)) continue;
            document["results"].push_back(with_ranks(
                phase_result("train/" + phase, phase, train_phases.at(phase), options.warmup,
                             train_costs.at(phase), roof, step_median, params, verdict)));
        }
    }
    document["repro"] = options.command_line;
    return document;
}

}  // namespace boreas::bench
