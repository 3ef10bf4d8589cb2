#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

#include "boreas/backends/backend.hpp"
#include "boreas/core/context.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/data/dataset.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/io/atomic_file.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/model/checkpoint.hpp"
#include "boreas/model/model.hpp"
#include "commands.hpp"

namespace boreas::apps {
namespace {

struct ForwardArguments {
    std::string config = "tiny";
    std::string checkpoint;
    std::vector<std::string> overrides;
    std::string weights;
    std::string graph;
    std::string input;
    std::string statistics;
    std::string save_weights, save_graph, save_config, save_input;
    std::string output;
    std::uint64_t seed = 1;
    int batch = 1;
    bool allow_nan = false;
    int threads = 0;
    int shards = 0;
    std::string precision = "fp32";
    std::string device = "cpu";
};

/// The model from an anemoi checkpoint: config, graph, weights and normaliser all from it.
model::Model checkpoint_model(const ForwardArguments& args,
                              std::optional<model::Normaliser>& normaliser) {
    Stopwatch clock;
    const model::Checkpoint checkpoint(args.checkpoint);
    auto model = checkpoint.model();
    normaliser.emplace(checkpoint.normaliser());
    log::info(
        "{}: {} parameters, {} -> {} nodes, read in {:.2f} s; {} anemoi settings accepted "
        "without effect",
        args.checkpoint, model.parameters().parameter_count(),
        model.graph().node_set("data").count(), model.graph().node_set("hidden").count(),
        clock.seconds(), model.config().accepted.size());
    for (const auto& line : model.config().accepted) log::debug("accepted: {}", line);
    return model;
}

model::Model configured_model(const ForwardArguments& args,
                              std::optional<model::Normaliser>& normaliser) {
    auto config = model::load_config(args.config, args.overrides);
    if (!args.graph.empty()) config.graph.file = args.graph;
    auto graph = model::graph_for(config);
    model::Model model(std::move(config), graph);
    if (args.weights.empty()) {
        model.parameters().initialise(args.seed);
        log::info("{} parameters, seeded initialisation (seed {})",
                  model.parameters().parameter_count(), args.seed);
    } else {
        model.load_weights(args.weights);
        log::info("{} parameters from {}", model.parameters().parameter_count(), args.weights);
    }
    if (!args.statistics.empty()) {
        normaliser.emplace(model.config(), model::read_statistics(args.statistics,
                                                                  model.config().variables.size()));
    }
    return model;
}

/// The model's input from an anemoi dataset as anemoi-training forms it: every input variable
/// (forcings included, as the store holds them) at the multistep input dates ending at the date
/// after '@', ensemble member 0, physical units: [1, T, 1, N, V_in]. The step between dates is
/// the checkpoint's time step, else the dataset's frequency.
Tensor dataset_window(const data::DatasetInput& input, const model::ModelConfig& config,
                      std::int64_t timestep) {
    BOREAS_CHECK(input.date.has_value(), "input dataset '{}' needs a date: STORE@2024-01-01T06",
                 input.store.string());
    const data::AnemoiDataset dataset(input.store);
    if (timestep == 0) timestep = dataset.frequency_seconds();
    const int steps = config.multistep_input;
    std::vector<std::int64_t> indices;
    for (int t = 0; t < steps; ++t)
        indices.push_back(dataset.date_index(*input.date + (t - steps + 1) * timestep));
    std::vector<std::size_t> columns;
    for (const auto& name : config.input_variables())
        columns.push_back(dataset.variable_index(name));
    const Tensor sample = dataset.read_sample(indices, columns);  // [T, E, N, V_in]
    const auto members = sample.dim(1), grid = sample.dim(2), width = sample.dim(3);
    Tensor window({1, steps, 1, grid, width});
    for (int t = 0; t < steps; ++t)  // member 0 of each date
        std::copy_n(sample.data() + t * members * grid * width, grid * width,
                    window.data() + t * grid * width);
    log::info("input: {} at {} ({} dates every {} s, {} variables, member 0 of {})",
              dataset.location(), input.date->iso(), steps, timestep, width, members);
    return window;
}

int run_forward(const ForwardArguments& args) {
    apply_threads(args.threads);
    Stopwatch total;
    std::optional<model::Normaliser> normaliser;
    auto model = args.checkpoint.empty() ? configured_model(args, normaliser)
                                         : checkpoint_model(args, normaliser);
    // Exports for side-by-side runs (tools/peer): the exact model this run uses.
    if (!args.save_weights.empty()) model.save_weights(args.save_weights);
    if (!args.save_graph.empty()) graphs::save_graph(model.graph(), args.save_graph);
    if (!args.save_config.empty())
        io::write_text_atomically(args.save_config, model.config().source_yaml);
    const auto dataset_input = data::parse_dataset_input(args.input);
    const Tensor input =
        args.input == "synthetic" ? model::synthetic_input(model, args.batch, args.seed)
        : dataset_input
            ? dataset_window(*dataset_input, model.config(),
                             args.checkpoint.empty()
                                 ? 0
                                 : model::Checkpoint(args.checkpoint).timestep_seconds())
            : model::read_input(args.input);
    const auto grid_points = model.graph().node_set("data").count();
    BOREAS_CHECK(
        input.rank() != 5 || input.dim(3) == grid_points,
        "input '{}' has {} grid points, but {} runs on a data grid of {}: inputs must be on "
        "the grid the model was trained on",
        args.input, input.dim(3),
        args.checkpoint.empty() ? "the model" : "checkpoint '" + args.checkpoint + "'",
        grid_points);
    if (!args.save_input.empty()) {
        io::SafetensorsWriter writer;
        writer.add<float>("input", input.shape(), input.values());
        writer.write(args.save_input);
    }
    Tensor model_input = input;
    // The synthetic input is drawn in normalised units already; a file is in physical units
    // whenever there is a normaliser (a checkpoint's, or --statistics).
    if (normaliser && args.input != "synthetic") normaliser->normalise_input(model_input);
    // Under MPI (mpirun -n S boreas forward ...): the ranks shard the model (every rank runs the
    // same command; rank 0 writes the output).
    const auto& world = dist::Communicator::world();
    if (world.distributed()) {
        BOREAS_CHECK(args.shards == 0 || args.shards == world.size(),
                     "--shards {} but {} rank(s): the forward shards the model over every rank",
                     args.shards, world.size());
        world.check_same(
            "command line",
            fmt::format("{}|{}|{}|{}|{}|{}", args.config, fmt::join(args.overrides, ","),
                        args.checkpoint, args.input, args.batch, args.seed));
        log::info("model sharding: {}", world.describe());
    }
    // bf16: only the bf16 copies of the Linears' weights are needed from here on.
    if (args.precision == "bf16") model.keep_weights_in_bf16();
    model.set_device(backends::parse_device(args.device, "--device"));
    Stopwatch step;
    model::ForwardOptions options;
    options.allow_nan = args.allow_nan;
    options.precision = model::parse_precision(args.precision, "--precision");
    options.shards = world.distributed() ? &world : nullptr;
    Tensor output = model.forward(model_input, options);
    const double step_seconds = step.seconds();
    if (world.rank() != 0) return 0;
    if (normaliser) normaliser->denormalise_output(output);

    io::SafetensorsWriter writer;
    writer.add<float>("output", output.shape(), output.values());
    nlohmann::ordered_json meta = {
        {"config", model.config().name},      {"units", normaliser ? "physical" : "normalised"},
        {"precision", args.precision},        {"step_seconds", step_seconds},
        {"peak_rss_bytes", peak_rss_bytes()}, {"build", build_context()}};
    writer.set_metadata("boreas", meta.dump());
    writer.write(args.output);
    log::info("forward step {:.3f} s, total {:.2f} s, peak RSS {:.0f} MiB -> {}", step_seconds,
              total.seconds(), static_cast<double>(peak_rss_bytes()) / (1 << 20), args.output);
    return 0;
}

}  // namespace

Runner add_forward_command(CLI::App& app) {
    auto args = std::make_shared<ForwardArguments>();
    auto* command = app.add_subcommand("forward", "Run one forecast step of a model");
    auto* config = command
                       ->add_option("--config", args->config,
                                    "Built-in config (tiny, small, o96, aifs-n320) or a YAML file")
                       ->capture_default_str();
    auto* checkpoint = command->add_option(
        "--checkpoint", args->checkpoint,
        "anemoi inference checkpoint: config, graph, weights and normaliser from it; input and "
        "output in physical units");
    auto* set = command->add_option("--set", args->overrides,
                                    "Override a config key: model.num_channels=256");
    auto* weights = command->add_option(
        "--weights", args->weights,
        "safetensors with anemoi state-dict names (default: seeded initialisation)");
    auto* graph =
        command->add_option("--graph", args->graph, "Graph file (default: the config's graph)");
    command
        ->add_option("--input", args->input,
                     "safetensors with 'input' [batch, steps, (1,) nodes, vars], an anemoi dataset "
                     "STORE.zarr@DATE (the input dates up to DATE), or 'synthetic' "
                     "(drawn in normalised units)")
        ->required();
    command->add_option("-o,--output", args->output, "Where to write the output (safetensors)")
        ->required();
    auto* statistics = command->add_option(
        "--statistics", args->statistics,
        "Dataset statistics (mean, stdev, minimum, maximum): input and output are "
        "then in physical units, normalised as data.normalizer says");
    command->add_option("--seed", args->seed, "Seed for weights and synthetic input")
        ->capture_default_str();
    command->add_option("--batch", args->batch, "Batch size of a synthetic input")
        ->capture_default_str();
    command->add_flag("--allow-nan", args->allow_nan, "Accept non-finite input values");
    command->add_option("--save-weights", args->save_weights,
                        "Also write the weights used (anemoi names) to this file");
    command->add_option("--save-graph", args->save_graph, "Also write the graph used to this file");
    command->add_option("--save-input", args->save_input, "Also write the input used to this file");
    command->add_option("--save-config", args->save_config,
                        "Also write the resolved config (YAML) to this file");
    command->add_option("--threads", args->threads, "OpenMP threads (default: OMP_NUM_THREADS)");
    command
        ->add_option("--shards", args->shards,
                     "Under MPI: model-parallel shards, every rank (mpirun -n S); rank 0 writes")
        ->check(CLI::NonNegativeNumber);
    command
        ->add_option("--precision", args->precision,
                     "fp32, or bf16: every Linear as under anemoi's bf16 autocast (bf16 inputs and "
                     "weights, fp32 sums, bf16 outputs; AVX512-BF16 where the CPU has it)")
        ->check(CLI::IsMember({"fp32", "bf16"}));
    add_device_option(command, args->device,
                      "Device the model runs on: cpu, cuda or cuda:N (cuda: a build made with the "
                      "cuda preset)");
    for (auto* option : {config, set, weights, graph, statistics}) checkpoint->excludes(option);
    return [args]() {
        // One voice: rank 0 logs progress; the others only warnings.
        if (dist::Communicator::world().rank() != 0) log::set_level(log::Level::warning);
        return run_forward(*args);
    };
}

}  // namespace boreas::apps
