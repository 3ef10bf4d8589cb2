#include "boreas/train/trainer.hpp"

#include <omp.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "boreas/backends/backend.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/data/loader.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/io/atomic_file.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/model/normaliser.hpp"
#include "boreas/train/data_parallel.hpp"

namespace boreas::train {
namespace {

namespace fs = std::filesystem;

std::string step_name(std::int64_t step) {
    return fmt::format("step-{:08d}", step);
}

/// The newest complete checkpoint (directories appear only by an atomic rename).
fs::path latest_checkpoint(const fs::path& dir) {
    fs::path best;
    if (!fs::is_directory(dir)) return best;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const auto name = entry.path().filename().string();
        if (entry.is_directory() && name.rfind("step-", 0) == 0 &&
            fs::exists(entry.path() / "state.json") &&
            (best.empty() || name > best.filename().string()))
            best = entry.path();
    }
    return best;
}

/// Keys whose values differ between two YAML documents (dotted paths).
void differing_keys(const YAML::Node& a, const YAML::Node& b, const std::string& path,
                    std::vector<std::string>& out) {
    if (a.IsMap() && b.IsMap()) {
        std::set<std::string> keys;
        for (const auto& item : a) keys.insert(item.first.as<std::string>());
        for (const auto& item : b) keys.insert(item.first.as<std::string>());
        for (const auto& key : keys)
            differing_keys(a[key], b[key], path.empty() ? key : path + "." + key, out);
        return;
    }
    if (YAML::Dump(a) != YAML::Dump(b)) out.push_back(path);
}

struct Optimiser {
    std::map<std::string, AdamWState> state;
};

/// Loss curves kept in each checkpoint: the training loss of every step, the validation loss at
/// the steps it was measured.
struct History {
    std::vector<double> losses;
    std::vector<std::pair<std::int64_t, double>> validation;
};

void save_checkpoint(const fs::path& dir, std::int64_t step, const model::Model& model,
                     const Optimiser& optimiser, const History& history) {
    fs::create_directories(dir);
    const fs::path final_dir = dir / step_name(step);
    const fs::path temporary =
        dir / fmt::format(".tmp-{}-{}", step_name(step), static_cast<long>(::getpid()));
    fs::remove_all(temporary);
    fs::create_directories(temporary);
    model.save_weights(temporary / "weights.safetensors");
    io::SafetensorsWriter moments;
    for (const auto& [name, s] : optimiser.state) {
        const auto shape = model.parameters().get(name).shape();
        moments.add<float>(name + ".exp_avg", shape, s.exp_avg);
        moments.add<float>(name + ".exp_avg_sq", shape, s.exp_avg_sq);
    }
    moments.write(temporary / "optimizer.safetensors");
    nlohmann::ordered_json validation = nlohmann::ordered_json::array();
    for (const auto& [at, loss] : history.validation)
        validation.push_back({{"step", at}, {"loss", loss}});
    nlohmann::ordered_json state = {{"step", step},
                                    {"config", model.config().source_yaml},
                                    {"losses", history.losses},
                                    {"validation", validation}};
    io::write_text_atomically(temporary / "state.json", state.dump(2));
    fs::remove_all(final_dir);
    fs::rename(temporary, final_dir);  // a checkpoint appears whole or not at all
}

std::int64_t load_checkpoint(const fs::path& path, model::Model& model, Optimiser& optimiser,
                             History& history) {
    std::ifstream in(path / "state.json");
    const auto state = nlohmann::json::parse(in);
    const auto saved = YAML::Load(state.at("config").get<std::string>());
    const auto current = YAML::Load(model.config().source_yaml);
    std::vector<std::string> keys;
    differing_keys(saved, current, "", keys);
    if (!keys.empty()) {
        std::string list;
        for (const auto& k : keys) list += (list.empty() ? "" : ", ") + k;
        BOREAS_FAIL("checkpoint '{}' was written for another config; differing keys: {}",
                    path.string(), list);
    }
    model.load_weights(path / "weights.safetensors");
    io::SafetensorsReader moments(path / "optimizer.safetensors");
    for (const auto& name : model.parameters().names()) {
        if (!moments.contains(name + ".exp_avg")) continue;
        const auto m = moments.view<float>(name + ".exp_avg");
        const auto v = moments.view<float>(name + ".exp_avg_sq");
        optimiser.state[name] = {std::vector<float>(m.begin(), m.end()),
                                 std::vector<float>(v.begin(), v.end())};
    }
    history.losses = state.at("losses").get<std::vector<double>>();
    history.validation.clear();
    for (const auto& v : state.value("validation", nlohmann::json::array()))
        history.validation.emplace_back(v.at("step").get<std::int64_t>(),
                                        v.at("loss").get<double>());
    return state.at("step").get<std::int64_t>();
}

}  // namespace

Tensor synthetic_batch(const model::Model& model, int batch, int rollout, std::uint64_t seed,
                       std::int64_t step) {
    const auto& c = model.config();
    const auto& coords = model.graph().node_set("data").coords;
    const auto nodes = model.graph().node_set("data").count();
    const auto vars = static_cast<std::int64_t>(c.variables.size());
    const std::int64_t times = c.multistep_input + rollout;
    // Per-variable constants: fixed by the seed, shared by every step.
    std::mt19937_64 constants(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    struct Wave {
        float a, b, speed, phase, k;
    };
    std::vector<Wave> waves(static_cast<std::size_t>(vars));
    for (auto& w : waves)
        w = {uniform(constants), 0.5f * uniform(constants),
             0.05f + 0.1f * std::abs(uniform(constants)), 3.0f * uniform(constants),
             1.0f + 2.0f * std::abs(uniform(constants))};
    std::mt19937_64 per_step(seed * 7919 + static_cast<std::uint64_t>(step));
    Tensor out({batch, times, 1, nodes, vars});
    for (std::int64_t b = 0; b < batch; ++b) {
        const float t0 = 20.0f * std::abs(uniform(per_step));
        for (std::int64_t t = 0; t < times; ++t)
            for (std::int64_t n = 0; n < nodes; ++n) {
                const float lat = coords[2 * n], lon = coords[2 * n + 1];
                float* row = out.data() + ((b * times + t) * nodes + n) * vars;
                for (std::int64_t v = 0; v < vars; ++v) {
                    const auto& w = waves[v];
                    const float time = t0 + static_cast<float>(t);
                    row[v] = w.a * std::cos(lat) * std::sin(lon - w.speed * time + w.phase) +
                             w.b * std::sin(w.k * lat);
                }
                // Forcings that are functions of position carry their meaning.
                for (std::int64_t v = 0; v < vars; ++v) {
                    const auto& name = c.variables[v];
                    if (name == "cos_latitude") row[v] = std::cos(lat);
                    if (name == "sin_latitude") row[v] = std::sin(lat);
                    if (name == "cos_longitude") row[v] = std::cos(lon);
                    if (name == "sin_longitude") row[v] = std::sin(lon);
                }
                // Diagnostics: the product of the first two variables (learnable from the state).
                for (const auto& name : c.diagnostic) {
                    const auto v = std::find(c.variables.begin(), c.variables.end(), name) -
                                   c.variables.begin();
                    row[v] = row[0] * row[1 % vars];
                }
            }
    }
    return out;
}

/// Batches from an anemoi dataset for `model`: its variables as columns (the store may hold
/// more, in any order), normalised with the config's methods from the store's statistics (as
/// anemoi-training builds its normaliser), on the model's data grid (checked point by point).
std::unique_ptr<data::BatchLoader> dataset_loader(const TrainOptions& options,
                                                  const model::Model& model, DatasetSplit split) {
    const auto& config = model.config();
    data::LoaderOptions loader;
    loader.first_date = split.first_date;
    loader.end_date = split.end_date;
    loader.shuffle = split.shuffle;
    loader.sampler.multistep_input = config.multistep_input;
    loader.sampler.rollout = options.rollout;
    loader.sampler.base_seed = options.seed;
    loader.batch = split.batch > 0 ? split.batch : options.batch;
    loader.variables = config.variables;
    loader.threads = options.data_threads;
    loader.queue = options.data_queue;
    loader.share_first = split.share_first;
    loader.share_count = split.share_count;
    const data::AnemoiDataset dataset(options.data);
    // anemoi-training's time increment: the model's time step in store dates (default 6 h).
    const std::int64_t timestep = config.timestep_seconds > 0 ? config.timestep_seconds : 6 * 3600;
    const auto frequency = dataset.frequency_seconds();
    BOREAS_CHECK(frequency > 0 && timestep % frequency == 0,
                 "dataset '{}': the model's time step ({} s, data.timestep) is not a multiple of "
                 "the store's frequency ({} s)",
                 dataset.location(), timestep, frequency);
    loader.sampler.time_increment = static_cast<int>(timestep / frequency);
    const auto stats = dataset.statistics();
    model::Statistics ordered;
    for (const auto& name : config.variables) {
        const auto v = dataset.variable_index(name);
        ordered.mean.push_back(stats.mean[v]);
        ordered.stdev.push_back(stats.stdev[v]);
        ordered.minimum.push_back(stats.minimum[v]);
        ordered.maximum.push_back(stats.maximum[v]);
    }
    const model::Normaliser normaliser(config, ordered);
    loader.mul = normaliser.mul();
    loader.add = normaliser.add();
    const auto& nodes = model.graph().node_set("data");
    BOREAS_CHECK(dataset.points() == nodes.count(),
                 "dataset '{}' has {} grid points; the model's data grid ({}) has {}",
                 dataset.location(), dataset.points(), nodes.grid, nodes.count());
    const auto lats = dataset.latitudes(), lons = dataset.longitudes();
    constexpr double kDegrees = 180.0 / 3.14159265358979323846;
    for (std::int64_t p = 0; p < nodes.count(); ++p) {
        const double lat = nodes.coords[static_cast<std::size_t>(2 * p)] * kDegrees;
        const double lon = nodes.coords[static_cast<std::size_t>(2 * p + 1)] * kDegrees;
        BOREAS_CHECK(
            std::abs(lat - lats[static_cast<std::size_t>(p)]) <= 1e-3 &&
                std::abs(std::remainder(lon - lons[static_cast<std::size_t>(p)], 360.0)) <= 1e-3,
            "dataset '{}': point {} is at ({}, {}), the model's data node at ({}, {}): "
            "another grid or point order",
            dataset.location(), p, lats[static_cast<std::size_t>(p)],
            lons[static_cast<std::size_t>(p)], lat, lon);
    }
    auto batches = std::make_unique<data::BatchLoader>(options.data, loader);
    log::info("{}: {} ({} dates, {} usable windows of {} dates, {} missing), {} variables",
              split.shuffle ? "data" : "validation data", dataset.location(),
              dataset.dates().size(), batches->anchors(), config.multistep_input + options.rollout,
              dataset.missing_indices().size(), config.variables.size());
    return batches;
}

Tensor batch_rows(const Tensor& batch, std::int64_t first, std::int64_t count) {
    auto shape = batch.shape();
    const std::int64_t per_sample = batch.numel() / shape[0];
    shape[0] = count;
    Tensor out = Tensor::uninitialised(shape);
    std::copy_n(batch.data() + first * per_sample, count * per_sample, out.data());
    return out;
}

TrainSummary run_training(const TrainOptions& options) {
    BOREAS_CHECK(options.steps >= 1 && options.rollout >= 1 && options.batch >= 1,
                 "--steps, --rollout and --batch must be >= 1");
    if (options.threads > 0) omp_set_num_threads(options.threads);
    const auto& world = dist::Communicator::world();
    const auto layout = dist::make_layout(world, options.replicas, options.shards);
    const int replicas = layout.replicas;
    BOREAS_CHECK(options.batch % replicas == 0,
                 "--batch {} does not split into {} equal replica shares", options.batch, replicas);
    const std::int64_t share = options.batch / replicas, first_sample = layout.replica * share;
    const dist::Communicator* shards = layout.shards > 1 ? &layout.replica_group : nullptr;
    if (world.distributed()) {
        world.check_same("command line (config, overrides, options)",
                         fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}x{}", options.config,
                                     fmt::join(options.overrides, ","), options.data, options.steps,
                                     options.batch, options.rollout, options.seed,
                                     options.checkpoint_dir.string(), replicas, layout.shards));
        log::info(
            "{}: {} replica(s) x {} shard(s); rank {} is shard {} of replica {}, which takes "
            "samples [{}, {}) of each global batch of {}",
            world.describe(), replicas, layout.shards, world.rank(), layout.shard, layout.replica,
            first_sample, first_sample + share, options.batch);
        if (layout.shards > 1 && options.activation_checkpointing)
            log::info("model sharding keeps each shard's own activations (no recomputation)");
    }
    auto config = model::load_config(options.config, options.overrides);
    auto graph = model::graph_for(config);
    model::Model model(config, graph);
    model.parameters().initialise(options.seed);
    model.set_device(backends::parse_device(options.device, "--device"));
    Optimiser optimiser;
    TrainSummary summary;
    History history;
    auto& losses = history.losses;
    std::int64_t start = 0;
    if (options.resume) {
        BOREAS_CHECK(!options.checkpoint_dir.empty(), "--resume needs --checkpoint-dir");
        const auto latest = latest_checkpoint(options.checkpoint_dir);
        if (latest.empty()) {
            log::warning("no checkpoint in '{}'; starting from step 0",
                         options.checkpoint_dir.string());
        } else {
            start = load_checkpoint(latest, model, optimiser, history);
            log::info("resumed from {} (step {})", latest.string(), start);
        }
    }
    const CosineSchedule schedule{options.lr, options.min_lr, options.warmup, options.steps};
    const AdamWOptions adamw;
    LossConfig loss_config;
    summary.first_step = start;
    // --validation-from: the store's dates from there on are held out; training windows end
    // before it, validation windows (in date order, one at a time) start at or after it.
    DatasetSplit training, held_out;
    if (!options.validation_from.empty()) {
        BOREAS_CHECK(options.data != "synthetic", "--validation-from needs --data STORE");
        const data::AnemoiDataset dataset(options.data);
        const auto first = dataset.date_index(DateTime::parse(options.validation_from));
        training.end_date = first;
        held_out = {first, INT64_MAX, false, 1};
    }
    // Data parallel: a replica reads only its share of each global batch (validation, one
    // window at a time, runs whole on every rank).
    if (replicas > 1) {
        training.share_first = static_cast<int>(first_sample);
        training.share_count = static_cast<int>(share);
    }
    const auto loader =
        options.data == "synthetic" ? nullptr : dataset_loader(options, model, training);
    const auto validation_loader =
        options.validation_from.empty() ? nullptr : dataset_loader(options, model, held_out);
    const std::int64_t validate_every =
        options.validate_every > 0 ? options.validate_every : options.checkpoint_every;
    auto validate = [&](std::int64_t step) {  // the mean loss over every validation window
        double sum = 0;
        for (std::int64_t w = 0; w < validation_loader->anchors(); ++w) {
            Tensor batch = validation_loader->batch(w);
            // Forward only: no tape, no backward (anemoi's validation_step under no_grad).
            sum += rollout_loss(model, batch, options.rollout, loss_config, shards).loss;
            validation_loader->give_back(std::move(batch));
        }
        const double loss = sum / static_cast<double>(validation_loader->anchors());
        history.validation.emplace_back(step, loss);
        log::info("step {:>5}  validation loss {:.6g} ({} windows)", step, loss,
                  validation_loader->anchors());
    };
    // Data parallel: gradients averaged over the replicas, bucket by bucket during the backward.
    std::optional<ReplicaAverager> averager;
    if (replicas > 1) averager.emplace(layout.shard_group);
    Stopwatch clock;
    for (std::int64_t step = start; step < options.steps; ++step) {
        Tensor batch =
            loader ? loader->batch(step)
                   : synthetic_batch(model, options.batch, options.rollout, options.seed, step);
        // Every rank draws the same global batch and keeps its share (the dataset loader reads
        // only that share): the samples, and so the result, do not depend on the rank count.
        const bool slice = replicas > 1 && !loader;
        const Tensor local = slice ? batch_rows(batch, first_sample, share) : Tensor();
        auto result =
            rollout_step(model, slice ? local : batch, options.rollout, loss_config,
                         options.activation_checkpointing, shards, averager ? &*averager : nullptr);
        if (loader) loader->give_back(std::move(batch));
        if (averager) {
            Stopwatch allreduce;
            const auto timing = averager->finish(result);
            summary.allreduce_seconds += allreduce.seconds();
            summary.allreduce_overlapped = summary.allreduce_overlapped || timing.overlapped;
        }
        std::string bad;
        if (!std::isfinite(result.loss)) bad = "the loss";
        for (const auto& [name, grad] : result.gradients.parameters) {
            if (!bad.empty()) break;
            for (float g : grad.values())
                if (!std::isfinite(g)) {
                    bad = "the gradient of '" + name + "'";
                    break;
                }
        }
        if (!bad.empty()) {
            BOREAS_CHECK(options.skip_nonfinite,
                         "step {}: {} is not finite (loss {}); pass "
                         "--skip-nonfinite to skip such steps",
                         step + 1, bad, result.loss);
            log::warning("step {}: {} is not finite; step skipped", step + 1, bad);
            losses.push_back(std::nan(""));
            continue;
        }
        // The schedule is stepped once per optimiser step; warm-up step 0 has lr 0 (timm), so
        // Boreas counts optimiser steps from 1.
        const double lr = schedule.lr(step + 1);
        for (const auto& name : model.parameters().names()) {
            auto& grad = result.gradients.parameters.at(name);
            if (options.clip_value > 0)
                clip_by_value(grad.storage(), static_cast<float>(options.clip_value));
            auto& param = const_cast<Tensor&>(model.parameters().get(name));
            adamw_step(param.storage(), grad.values(), optimiser.state[name], step + 1, lr, adamw);
        }
        losses.push_back(result.loss);
        log::info("step {:>5}  loss {:.6g}  lr {:.3g}", step + 1, result.loss, lr);
        if (validation_loader && ((step + 1) % validate_every == 0 || step + 1 == options.steps))
            validate(step + 1);
        // Rank 0 writes (every rank holds the same weights and moments); the others wait, so a
        // checkpoint exists for all before any rank goes on.
        if (!options.checkpoint_dir.empty() &&
            ((step + 1) % options.checkpoint_every == 0 || step + 1 == options.steps)) {
            if (world.rank() == 0)
                save_checkpoint(options.checkpoint_dir, step + 1, model, optimiser, history);
            world.barrier();
        }
    }
    if (loader) {
        const auto stats = loader->stats();
        summary.data_wait_seconds = stats.wait_seconds;
        log::info(
            "data: {} batches read in {:.2f} thread-seconds by the loader; steps waited {:.2f} s "
            "({:.1f} % of {:.2f} s)",
            stats.batches, stats.read_seconds, stats.wait_seconds,
            100.0 * stats.wait_seconds / std::max(clock.seconds(), 1e-9), clock.seconds());
    }
    if (replicas > 1) {
        std::int64_t values = 0;
        for (const auto& name : model.parameters().names())
            values += model.parameters().get(name).numel();
        summary.allreduce_bytes = values * static_cast<std::int64_t>(sizeof(float));
        log::info(
            "data parallel: {} replicas; averaging gradients ({:.1f} MB per step, {} the "
            "backward) left {:.3f} s of {:.3f} s ({:.1f} %) exposed on rank {}",
            replicas, static_cast<double>(summary.allreduce_bytes) / 1e6,
            summary.allreduce_overlapped ? "in buckets of 4 MiB overlapped with"
                                         : "not overlapped with (MPI without THREAD_MULTIPLE)",
            summary.allreduce_seconds, clock.seconds(),
            100.0 * summary.allreduce_seconds / std::max(clock.seconds(), 1e-9), world.rank());
    }
    summary.losses = losses;
    summary.validation = history.validation;
    const auto run = options.steps - start;
    summary.seconds_per_step = run > 0 ? clock.seconds() / static_cast<double>(run) : 0;
    return summary;
}

}  // namespace boreas::train
