#pragma once
/// Which samples an anemoi training run reads, in which order: anemoi-training 0.16's windows
/// (multistep input dates up to an anchor, then the rollout targets), its usable anchors (no date
/// of a window missing), its split over model replicas and dataloader workers, and its seeded
/// shuffle, reproduced exactly: numpy's SeedSequence, PCG64 and Generator.choice are ported here
/// so the same seed gives the same order (tests/data/datasets/samples.json holds anemoi's own).

#include <cstdint>
#include <span>
#include <vector>

namespace boreas::data {

/// PCG64's 128-bit state (GCC and clang's extension, as numpy's own C uses where it can).
__extension__ typedef unsigned __int128 Uint128;

/// numpy.random.SeedSequence(entropy, spawn_key).generate_state(1, uint32)[0].
std::uint32_t derive_seed(std::uint64_t entropy, std::span<const std::uint64_t> spawn_key);

/// numpy.random.default_rng(seed): PCG64 (XSL-RR 128/64) seeded through SeedSequence(seed),
/// with numpy's buffering of 32-bit draws.
class NumpyGenerator {
  public:
    explicit NumpyGenerator(std::uint64_t seed);
    std::uint64_t next64();
    std::uint32_t next32();
    /// Generator.random(): a double in [0, 1).
    double random();
    /// Uniform in [0, max] as numpy's random_bounded_uint64 (Lemire's method, unmasked).
    std::uint64_t bounded(std::uint64_t max);
    /// Generator.choice(arange(n), size=n, replace=False): numpy's Floyd + shuffle for
    /// n <= 10000, its tail shuffle above.
    std::vector<std::int64_t> permutation(std::int64_t n);

  private:
    void step();
    Uint128 state_ = 0, increment_ = 0;
    bool has_half_ = false;
    std::uint32_t half_ = 0;
};

struct SamplerOptions {
    int multistep_input = 2;
    int rollout = 1;
    int time_increment = 1;         ///< model time step / dataset frequency
    std::uint64_t base_seed = 42;   ///< anemoi: ANEMOI_BASE_SEED, else SLURM_JOB_ID, else 42
    int replicas = 1, replica = 0;  ///< model comm groups (data-parallel replicas)
    int workers = 1, worker = 0;    ///< dataloader workers of one replica
};

/// Offsets of a sample's dates from its anchor (the last input date), in dataset dates:
/// -(multistep-1)*inc .. rollout*inc every inc.
std::vector<std::int64_t> window_offsets(const SamplerOptions& options);

/// Anchors whose whole window lies inside the store's `dates` with none of `missing`.
std::vector<std::int64_t> usable_anchors(std::int64_t dates, std::span<const std::int64_t> missing,
                                         const SamplerOptions& options);

/// One dataloader worker's samples epoch after epoch, as anemoi-training's MultiDataset yields
/// them: seeded at `first_epoch` with derive_seed(base_seed, {2, first_epoch}), one sanity draw,
/// then per epoch the next permutation of all anchors, sliced to this replica's and worker's
/// part (the replica remainder is dropped; the first parts get one extra). Persistent workers
/// (anemoi's default) keep the generator across epochs; a worker started at epoch e is a new
/// WorkerSampler with first_epoch = e.
class WorkerSampler {
  public:
    WorkerSampler(std::vector<std::int64_t> anchors, const SamplerOptions& options,
                  int first_epoch = 0);
    /// Positions into `anchors` of this worker's part: [begin, end).
    std::int64_t begin() const { return begin_; }
    std::int64_t end() const { return end_; }
    std::uint32_t seed() const { return seed_; }
    /// The anchors of the next epoch, in the order the worker yields them.
    std::vector<std::int64_t> next_epoch();

  private:
    std::vector<std::int64_t> anchors_;
    std::int64_t begin_ = 0, end_ = 0;
    std::uint32_t seed_ = 0;
    NumpyGenerator generator_;
};

/// The order a torch DataLoader hands batches over from per-worker streams: `batch` samples from
/// each worker in turn, round-robin, a worker's last batch possibly short.
std::vector<std::vector<std::int64_t>> round_robin_batches(
    const std::vector<std::vector<std::int64_t>>& streams, int batch);

}  // namespace boreas::data
