#include <fmt/format.h>

#include <cmath>

#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/train/trainer.hpp"
#include "commands.hpp"

namespace boreas::apps {

Runner add_train_command(CLI::App& app) {
    auto o = std::make_shared<train::TrainOptions>();
    auto dir = std::make_shared<std::string>();
    auto* command = app.add_subcommand(
        "train", "Train the model (rollout, AdamW, cosine schedule, checkpoints)");
    command->add_option("--config", o->config, "Built-in config or YAML file")
        ->capture_default_str();
    command->add_option("--set", o->overrides, "Override a config key: key.path=value");
    command
        ->add_option("--data", o->data,
                     "synthetic, or an anemoi dataset (Zarr store directory or zip): samples "
                     "in anemoi-training's order, normalised from the store's statistics")
        ->capture_default_str();
    command
        ->add_option("--data-threads", o->data_threads,
                     "Loader worker threads, each reading whole samples, ahead of the step")
        ->capture_default_str();
    command->add_option("--data-queue", o->data_queue, "Batches read ahead of the step")
        ->capture_default_str();
    command->add_option("--validation-from", o->validation_from,
                        "Hold out the dataset's dates from this one (ISO) on: validation loss "
                        "over every held-out window, kept in the checkpoints' history");
    command->add_option("--validate-every", o->validate_every,
                        "Steps between validations (default: at each checkpoint) and at the end");
    command->add_option("--steps", o->steps, "Optimiser steps")->capture_default_str();
    command->add_option("--rollout", o->rollout, "Autoregressive steps per sample")
        ->capture_default_str();
    command
        ->add_option("--batch", o->batch, "Samples per step (the global batch, over all replicas)")
        ->capture_default_str();
    command
        ->add_option("--replicas", o->replicas,
                     "Data-parallel replicas (launch with mpirun -n R*S or srun); default: the "
                     "rank count over --shards")
        ->check(CLI::NonNegativeNumber);
    command
        ->add_option("--shards", o->shards,
                     "Model-parallel shards per replica: each computes a share of the rows "
                     "(default: the rank count over --replicas, else 1)")
        ->check(CLI::NonNegativeNumber);
    command->add_option("--lr", o->lr, "Peak learning rate (cosine schedule)")
        ->capture_default_str();
    command->add_option("--min-lr", o->min_lr, "Final learning rate")->capture_default_str();
    command->add_option("--warmup", o->warmup, "Linear warm-up steps")->capture_default_str();
    command->add_option("--clip", o->clip_value, "Clip gradients by value (0: off)")
        ->capture_default_str();
    command->add_option("--seed", o->seed, "Seed of weights and data")->capture_default_str();
    add_device_option(command, o->device,
                      "Device the model runs on: cpu, cuda or cuda:N (cuda: a build made with the "
                      "cuda preset)");
    command->add_option("--checkpoint-dir", *dir,
                        "Write checkpoints here (atomic step-NNNNNNNN folders)");
    command->add_option("--checkpoint-every", o->checkpoint_every, "Steps between checkpoints")
        ->capture_default_str();
    command->add_flag("--resume", o->resume, "Continue from the newest complete checkpoint");
    command->add_flag("--skip-nonfinite", o->skip_nonfinite,
                      "Skip a step whose loss or gradients are not finite instead of stopping");
    command->add_flag("--activation-checkpointing,!--no-activation-checkpointing",
                      o->activation_checkpointing,
                      "Recompute activations in backward (default on)");
    command->add_option("--threads", o->threads,
                        "OpenMP threads (results are bit-identical at a fixed count)");
    return [o, dir]() {
        o->checkpoint_dir = *dir;
        const auto& world = dist::Communicator::world();
        // One voice: rank 0 logs progress and prints the results; the others only warnings.
        if (world.rank() != 0) log::set_level(log::Level::warning);
        const auto summary = train::run_training(*o);
        if (world.rank() != 0) return 0;
        const auto& l = summary.losses;
        if (!l.empty()) {
            fmt::print(
                "steps {}..{}: loss {:.6g} -> {:.6g} ({:.1f}x lower), {:.3f} s/step, peak RSS "
                "{:.0f} MiB\n",
                summary.first_step + 1, l.size(),
                l[summary.first_step < static_cast<std::int64_t>(l.size()) ? summary.first_step
                                                                           : 0],
                l.back(), l.front() / l.back(), summary.seconds_per_step,
                static_cast<double>(peak_rss_bytes()) / (1 << 20));
            fmt::print("losses:");
            for (double v : l) fmt::print(" {:.9g}", v);
            fmt::print("\n");
        }
        if (!summary.validation.empty()) {
            fmt::print("validation:");
            for (const auto& [step, loss] : summary.validation)
                fmt::print(" {}:{:.9g}", step, loss);
            fmt::print("\n");
        }
        return 0;
    };
}

}  // namespace boreas::apps
