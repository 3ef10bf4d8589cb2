#pragma once
/// The training loop: synthetic or anemoi-dataset batches, rollout steps, AdamW with a cosine
/// schedule, gradient clipping, non-finite checks, and atomic checkpoints that a resumed run
/// continues bit for bit at a fixed thread count.

#include <climits>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "boreas/data/loader.hpp"
#include "boreas/dist/communicator.hpp"
#include "boreas/model/model.hpp"
#include "boreas/train/loss.hpp"
#include "boreas/train/optimizer.hpp"

namespace boreas::train {

struct TrainOptions {
    std::string config = "small";
    std::vector<std::string> overrides;
    std::string data = "synthetic";  ///< or an anemoi dataset store (directory or zip)
    int data_threads = 1;            ///< samples of a batch read in parallel
    int data_queue = 2;              ///< batches read ahead
    /// Hold out the store's dates from this one on (ISO date) for validation; empty: none.
    std::string validation_from;
    int validate_every = 0;  ///< steps between validations (0: at each checkpoint) and at the end
    int steps = 200;
    int rollout = 1;
    int batch = 1;  ///< the global batch: samples per optimiser step over all replicas
    /// Data-parallel replicas (0: one per MPI rank). Each takes an equal share of the global
    /// batch; gradients and loss are averaged over replicas before the optimiser step.
    int replicas = 0;
    /// Model-parallel shards per replica (0: the rank count over --replicas, else 1). Ranks =
    /// replicas x shards; a replica's shards split its rows (Model::forward_train).
    int shards = 0;
    std::uint64_t seed = 1;
    double lr = 1e-3;
    double min_lr = 1e-5;
    int warmup = 10;
    double clip_value = 32;  ///< anemoi's gradient_clip_val (algorithm "value"); 0: off
    std::filesystem::path checkpoint_dir;  ///< empty: no checkpoints
    int checkpoint_every = 50;
    bool resume = false;
    bool skip_nonfinite =
        false;  ///< skip a step with a non-finite loss or gradient instead of stopping
    bool activation_checkpointing = true;  ///< recompute encoder and processor chunks in backward
    int threads = 0;
    std::string device = "cpu";  ///< the model's device: cpu, cuda or cuda:N
};

/// Smooth fields that move: each variable is a*cos(lat)*sin(lon - c*t + phi) + b*sin(k*lat) with
/// per-variable constants; diagnostics are products of two prognostic fields; forcings follow
/// their names (cos/sin of latitude and longitude) or stay fixed. The next state is a known
/// function of the last ones, so a model can learn it and the loss must fall.
/// Returns [batch, T + R, 1, N, V_dataset] for training step `step`.
/// Samples [first, first + count) of a batch (its leading dimension): one replica's share.
Tensor batch_rows(const Tensor& batch, std::int64_t first, std::int64_t count);

Tensor synthetic_batch(const model::Model& model, int batch, int rollout, std::uint64_t seed,
                       std::int64_t step);

struct TrainSummary {
    std::vector<double> losses;  ///< one per step run (skipped steps: NaN)
    std::int64_t first_step = 0;
    double seconds_per_step = 0;
    double data_wait_seconds = 0;  ///< steps waiting for dataset batches
    double allreduce_seconds = 0;  ///< data parallel: averaging left exposed after the backward
    bool allreduce_overlapped = false;  ///< buckets were summed during the backward
    std::int64_t allreduce_bytes = 0;   ///< per step: the gradients' size, reduced once
    std::vector<std::pair<std::int64_t, double>> validation;  ///< (step, validation loss)
};

/// Which windows of a store a loader draws: date indices [first_date, end_date) and whether
/// shuffled (training) or in date order (validation); batch 0 means the run's batch size.
struct DatasetSplit {
    std::int64_t first_date = 0, end_date = INT64_MAX;
    bool shuffle = true;
    int batch = 0;
    int share_first = 0, share_count = 0;  ///< data parallel: this replica's samples (0: all)
};

/// The loader `run_training` uses for `--data STORE`: the model's variables as columns,
/// normalised with the config's methods from the store's statistics (anemoi's normaliser, remaps
/// included), the store's grid checked against the model's data nodes.
std::unique_ptr<data::BatchLoader> dataset_loader(const TrainOptions& options,
                                                  const model::Model& model,
                                                  DatasetSplit split = {});

TrainSummary run_training(const TrainOptions& options);

}  // namespace boreas::train
