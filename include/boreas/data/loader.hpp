#pragma once
/// Training batches from an anemoi dataset: the sampler's order (one persistent worker's stream,
/// epoch after epoch), each batch's windows read, transposed to (dates, ensemble, points,
/// variables) and normalised, prepared by background threads ahead of the step that needs them
/// (a bounded queue), and a function of the step number alone so that a resumed run sees the
/// same batches.

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "boreas/core/tensor.hpp"
#include "boreas/data/dataset.hpp"
#include "boreas/data/sampler.hpp"

namespace boreas::data {

struct LoaderOptions {
    SamplerOptions sampler;  ///< multistep, rollout, increment, seed (replica/worker)
    int batch = 1;
    std::vector<std::string> variables;  ///< the batch's columns, in the model's order
    std::vector<float> mul, add;         ///< normalisation per column: x * mul + add
    /// Date indices a window must lie in, [first_date, end_date): training and validation
    /// periods of one store.
    std::int64_t first_date = 0, end_date = INT64_MAX;
    bool shuffle = true;  ///< false: anchors in date order (anemoi's validation loader)
    int threads = 1;      ///< worker threads, each reading whole samples, across batches
    int queue = 2;        ///< batches prepared ahead
    /// Data parallel: only samples [share_first, share_first + share_count) of each global
    /// batch of `batch` samples are read (0: all). Every replica draws the same global batches.
    int share_first = 0, share_count = 0;
};

/// What the loader spent: for `boreas train --data` and `bench data`.
struct LoaderStats {
    std::int64_t batches = 0, samples = 0, chunks = 0;
    double read_seconds = 0;  ///< time the workers spent reading samples, summed over them
    double wait_seconds = 0;  ///< time `batch()` callers waited for a batch
};

class BatchLoader {
  public:
    BatchLoader(const std::filesystem::path& store, LoaderOptions options);
    ~BatchLoader();
    BatchLoader(const BatchLoader&) = delete;
    BatchLoader& operator=(const BatchLoader&) = delete;

    const AnemoiDataset& dataset() const { return dataset_; }
    /// Usable anchors (windows without a missing date).
    std::int64_t anchors() const { return static_cast<std::int64_t>(anchors_.size()); }
    /// The dates (anchors) of batch `step` (of this loader's share of it).
    std::vector<std::int64_t> anchors_of(std::int64_t step);
    /// Batch `step`: [batch, dates, 1, points, variables], normalised (ensemble member 0).
    /// Steps are expected in increasing order (the next ones are prepared meanwhile); any step
    /// may be asked for.
    Tensor batch(std::int64_t step);
    /// Hands a batch back once the step is done with it: a later batch is written into its
    /// memory instead of fresh pages (which the kernel would fault in and zero: at O96 that is
    /// 55 MB per sample). Optional.
    void give_back(Tensor batch);
    LoaderStats stats() const;

  private:
    // Per worker, kept across samples: a date's stored and decoded chunk.
    struct Scratch {
        StoredBytes stored;
        std::vector<float> chunk;
    };
    // A batch under way: its samples are handed to the workers one by one.
    struct Pending {
        std::int64_t step = 0;
        std::vector<std::int64_t> anchors;
        Tensor tensor;
        int started = 0;     // samples handed to a worker
        int unfinished = 0;  // samples not yet written
        bool abandoned = false;
    };
    void read_sample(std::int64_t anchor, float* out, Scratch& scratch) const;
    void open_batch();  // with mutex_ held
    void work();

    AnemoiDataset dataset_;
    LoaderOptions options_;
    std::vector<std::size_t> columns_;
    std::vector<std::int64_t> anchors_, offsets_;
    // The anchor stream: one worker's epochs, generated as far as needed.
    std::unique_ptr<WorkerSampler> sampler_;
    std::vector<std::int64_t> stream_;
    std::mutex stream_mutex_;

    mutable std::mutex mutex_;
    std::condition_variable ready_, wanted_;
    std::vector<std::shared_ptr<Pending>> pending_;  // in step order
    std::map<std::int64_t, Tensor> prepared_;
    std::vector<Tensor> spare_;  // batches given back
    std::exception_ptr failure_;
    std::int64_t next_ = 0;  // the next step to open
    bool stop_ = false;
    LoaderStats stats_;
    std::vector<std::thread> workers_;
};

}  // namespace boreas::data
