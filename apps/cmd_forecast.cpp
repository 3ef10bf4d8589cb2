#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "boreas/backends/backend.hpp"
#include "boreas/core/context.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/forecast/forecast.hpp"
#include "boreas/forecast/io.hpp"
#include "boreas/io/atomic_file.hpp"
#include "boreas/model/checkpoint.hpp"
#include "boreas/model/model.hpp"
#include "commands.hpp"

namespace boreas::apps {
namespace {

struct ForecastArguments {
    std::string checkpoint, input, output, json, lead_time = "240h", date;
    bool allow_nan = false, no_initial_state = false;
    std::string precision = "fp32";
    std::string device = "cpu";
    int threads = 0;
    int queue = 2;
    int shards = 0;
};

/// The output of a rank that does not write (model sharding: rank 0 writes).
class DiscardWriter : public forecast::Writer {
  public:
    void write(const forecast::StepResult&) override {}
    void close() override {}
};

/// "240h", "10d", "6h", "90m" or plain hours.
std::int64_t parse_lead_time(const std::string& text) {
    std::size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const auto unit = text.substr(used);
    const std::int64_t scale = unit.empty() || unit == "h" ? 3600
                               : unit == "d"               ? 86400
                               : unit == "m"               ? 60
                                                           : 0;
    BOREAS_CHECK(used > 0 && scale > 0 && value > 0,
                 "--lead-time '{}' is not a positive number of hours (240h), days (10d) or "
                 "minutes (90m)",
                 text);
    return value * scale;
}

int run_forecast_command(const ForecastArguments& args) {
    apply_threads(args.threads);
    Stopwatch total;
    const auto lead = parse_lead_time(args.lead_time);
    Stopwatch read_clock;
    // The checkpoint reader (pickle, metadata, storages) is released before the rollout: only
    // the model, its normaliser and the forecast context stay.
    forecast::ForecastContext context;
    std::optional<model::Model> loaded;
    std::optional<model::Normaliser> normaliser_holder;
    {
        const model::Checkpoint checkpoint(args.checkpoint);
        context = forecast::forecast_context(checkpoint);
        loaded.emplace(checkpoint.model());
        normaliser_holder.emplace(checkpoint.normaliser());
    }
    if (args.precision == "bf16") loaded->keep_weights_in_bf16();
    loaded->set_device(backends::parse_device(args.device, "--device"));
    const auto& model = *loaded;
    const auto& normaliser = *normaliser_holder;
    if (lead % context.timestep != 0)
        log::info(
            "--lead-time {} h is not a multiple of the time step ({} h): the last step ends "
            "after it, as anemoi-inference rounds up",
            lead / 3600.0, context.timestep / 3600);
    const double checkpoint_seconds = read_clock.seconds();
    read_clock.restart();
    std::optional<DateTime> date;
    if (!args.date.empty()) date = DateTime::parse(args.date);
    const auto initial = forecast::read_initial_conditions(args.input, context, date);
    const double input_seconds = read_clock.seconds();
    const bool grib_input = forecast::is_grib(args.input);
    const auto steps = (lead + context.timestep - 1) / context.timestep;
    log::info("{}: {} parameters, {} points, time step {} h; {} steps from {} to {}",
              args.checkpoint, model.parameters().parameter_count(), context.latitudes.size(),
              context.timestep / 3600, steps, initial.date.iso(),
              (initial.date + steps * context.timestep).iso());
    // Under MPI (mpirun -n S boreas forecast ...): the ranks shard the model; every rank holds
    // each step's output and rank 0 writes it.
    const auto& world = dist::Communicator::world();
    if (world.distributed()) {
        BOREAS_CHECK(args.shards == 0 || args.shards == world.size(),
                     "--shards {} but {} rank(s): the forecast shards the model over every rank",
                     args.shards, world.size());
        world.check_same("command line", fmt::format("{}|{}|{}|{}|{}", args.checkpoint, args.input,
                                                     args.output, args.lead_time, args.date));
        log::info("model sharding: {}", world.describe());
    }
    // The output is opened before the first step: an unwritable one fails before any compute.
    forecast::AsyncWriter writer(
        world.rank() != 0
            ? std::make_unique<DiscardWriter>()
            : forecast::make_writer(
                  args.output, context, initial.date,
                  grib_input ? std::optional<std::filesystem::path>(args.input) : std::nullopt,
                  !args.no_initial_state),
        static_cast<std::size_t>(std::max(1, args.queue)));
    forecast::ForecastOptions options;
    options.shards = world.distributed() ? &world : nullptr;
    options.lead_seconds = lead;
    options.allow_nan_input = args.allow_nan;
    options.precision = model::parse_precision(args.precision, "--precision");
    options.write_initial_state = !args.no_initial_state;
    options.progress = [](const forecast::Progress& p) {
        const double eta = p.elapsed_seconds / p.step * (p.steps - p.step);
        log::info("step {}/{} valid {}: {:.2f} s; elapsed {:.0f} s, ETA {:.0f} s", p.step, p.steps,
                  p.valid.iso(), p.step_seconds, p.elapsed_seconds, eta);
    };
    forecast::ForecastTimings timings;
    try {
        timings = forecast::run_forecast(context, model, normaliser, initial, options, writer);
    } catch (...) {
        // Keep what was written complete and valid (e.g. a NaN mid-rollout), then report.
        try {
            writer.close();
        } catch (const std::exception& e) {
            log::warning("closing the output after the error failed too: {}", e.what());
        }
        throw;
    }
    Stopwatch close_clock;
    writer.close();
    const double close_seconds = close_clock.seconds();
    const double wall = total.seconds();
    const double wait = timings.wait + close_seconds;
    log::info(
        "forecast: {} steps in {:.1f} s ({:.2f} s/step model); model {:.1f} s, forcings "
        "{:.2f} s, waiting on output {:.2f} s ({:.2f} %), writer busy {:.1f} s; peak RSS "
        "{:.2f} GiB -> {}",
        timings.steps, wall, timings.model / std::max(1, timings.steps), timings.model,
        timings.forcings, wait, 100.0 * wait / wall, writer.write_seconds(),
        static_cast<double>(peak_rss_bytes()) / (1 << 30), args.output);
    if (!args.json.empty() && world.rank() == 0) {
        nlohmann::ordered_json doc;
        doc["schema"] = "boreas-forecast/1";
        doc["context"] = {{"build", build_context()}, {"system", system_context()}};
        doc["checkpoint"] = args.checkpoint;
        doc["input"] = args.input;
        doc["output"] = args.output;
        doc["base_date"] = initial.date.iso();
        doc["lead_time_seconds"] = lead;
        doc["precision"] = args.precision;
        doc["steps"] = timings.steps;
        doc["points"] = context.latitudes.size();
        doc["seconds"] = {{"total", wall},
                          {"read_checkpoint", checkpoint_seconds},
                          {"read_input", input_seconds},
                          {"forcings", timings.forcings},
                          {"model", timings.model},
                          {"write", writer.write_seconds()},
                          {"wait", wait}};
        doc["wait_share"] = wait / wall;
        doc["step_seconds"] = timings.step_seconds;
        doc["peak_rss_bytes"] = peak_rss_bytes();
        const auto text = doc.dump(2);
        io::write_atomically(args.json, [&](std::ostream& out) { out << text << "\n"; });
    }
    return 0;
}

}  // namespace

Runner add_forecast_command(CLI::App& app) {
    auto* command = app.add_subcommand(
        "forecast", "Run a forecast from an anemoi checkpoint and initial conditions");
    auto args = std::make_shared<ForecastArguments>();
    command->add_option("--checkpoint", args->checkpoint, "anemoi inference checkpoint")
        ->required();
    command
        ->add_option("--input", args->input,
                     "initial conditions: GRIB (fields at every input date), safetensors (one "
                     "tensor per input variable, [dates, points]; metadata 'date') or an anemoi "
                     "dataset STORE.zarr@DATE (its fields at the input dates up to DATE)")
        ->required();
    command->add_option("--lead-time", args->lead_time, "forecast length: 240h, 10d, 90m")
        ->capture_default_str();
    command
        ->add_option("-o,--output", args->output,
                     "where the steps go: .nc (NetCDF), .grib/.grib2 (GRIB, needs GRIB input), "
                     "else a folder of safetensors states")
        ->required();
    command->add_option("--date", args->date,
                        "base date (the last input date), ISO 8601; default: from the input");
    command->add_option("--json", args->json, "write timings (schema boreas-forecast/1) here");
    command->add_flag("--allow-nan", args->allow_nan, "accept non-finite input values");
    command
        ->add_option("--precision", args->precision,
                     "fp32, or bf16: every Linear as under anemoi's bf16 autocast (bf16 inputs "
                     "and weights, fp32 sums, bf16 outputs; AVX512-BF16 where the CPU has it)")
        ->check(CLI::IsMember({"fp32", "bf16"}));
    add_device_option(command, args->device,
                      "Device the model runs on: cpu, cuda or cuda:N (cuda: a build made with the "
                      "cuda preset)");
    command->add_flag("--no-initial-state", args->no_initial_state,
                      "do not write step 0 (the prognostic fields and constant forcings at the "
                      "base date, which anemoi-inference writes by default)");
    command->add_option("--queue", args->queue, "steps the output writer may fall behind")
        ->capture_default_str();
    command->add_option("--threads", args->threads, "OpenMP threads (default: OMP_NUM_THREADS)");
    command
        ->add_option("--shards", args->shards,
                     "Under MPI: model-parallel shards, every rank (mpirun -n S); rank 0 writes")
        ->check(CLI::NonNegativeNumber);
    return [args]() {
        // One voice: rank 0 logs progress; the others only warnings.
        if (dist::Communicator::world().rank() != 0) log::set_level(log::Level::warning);
        return run_forecast_command(*args);
    };
}

}  // namespace boreas::apps
