#pragma once
/// The processes of one run. Built with MPI (BOREAS_ENABLE_MPI, OpenMPI from Debian) it is MPI's
/// world communicator: launched by mpirun or srun, rank and size come from MPI itself; started
/// alone it is one process. Built without MPI it is always one process. Collectives reduce in
/// rank order, so results are the same on every rank and from run to run. split() makes the
/// groups of a replicas x shards layout (model sharding: dist/sharding.hpp).
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "boreas/dist/collectives.hpp"

namespace boreas::dist {

/// What a communicator's collectives moved: bytes this rank sent and seconds it spent in them.
struct Traffic {
    double bytes_sent = 0;
    double seconds = 0;
    std::int64_t calls = 0;
};

class Communicator final : public Collectives {
  public:
    /// The world, initialising MPI on first use (finalised at exit).
    static Communicator& world();

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    bool distributed() const { return size_ > 1; }
    /// Whether MPI may be called from several threads at once (MPI_THREAD_MULTIPLE was
    /// granted): the background all-reduce needs it.
    static bool thread_multiple();
    /// "MPI (OpenMPI 4.1.4), 2 ranks" or "single process (built without MPI)".
    std::string describe() const;

    /// The ranks of this communicator with the same `color`, ordered by `key` (MPI_Comm_split);
    /// every rank must call it. Without MPI, or on one rank, a one-rank communicator.
    Communicator split(int color, int key) const;

    /// values[i] = sum over ranks of values[i], added in rank order (rank 0 first) on every rank:
    /// a reduce-scatter of equal segments (all-to-all, each rank sums one segment in rank order)
    /// and an all-gather, so every rank ends with the same bits.
    void allreduce_sum(std::span<float> values) const override;
    void allreduce_sum(std::span<double> values) const;
    /// Rows of `width` floats: rank r contributes rows_per_rank[r] rows (`mine`), and every rank
    /// receives all of them in rank order into `all` (sum of rows_per_rank rows). Counts are in
    /// rows, so tensors past 2^31 values gather whole.
    void allgather_rows(const float* mine, float* all, std::span<const std::int64_t> rows_per_rank,
                        std::int64_t width) const override;
    /// The adjoint of allgather_rows: `all` holds every rank's rows (in rank order, as
    /// allgather_rows lays them out), and each rank receives into `mine` the sum over ranks of
    /// its own rows, added in rank order.
    void reduce_scatter_rows(const float* all, float* mine,
                             std::span<const std::int64_t> rows_per_rank,
                             std::int64_t width) const override;
    /// All-to-all of float blocks: send_counts[r] values from `send` (packed in rank order) go
    /// to rank r, recv_counts[r] values from rank r land in `recv` (packed in rank order).
    void alltoall(const float* send, std::span<const std::int64_t> send_counts, float* recv,
                  std::span<const std::int64_t> recv_counts) const override;
    /// Throws on every rank, naming the first rank whose text differs from rank 0's, when the
    /// ranks do not hold the same `text` (a config, an option set).
    void check_same(const std::string& what, const std::string& text) const;
    void barrier() const;
    /// Rank `root`'s `bytes` bytes at `data` reach every rank (MPI_Bcast).
    void broadcast_bytes(void* data, std::size_t bytes, int root) const;
    /// Ends every rank with `code` (MPI_Abort when distributed): one rank's error must not leave
    /// the others waiting in a collective.
    [[noreturn]] void abort(int code) const;

    /// What this rank's collectives on this communicator sent so far, and the time in them.
    const Traffic& traffic() const { return *traffic_; }

    Communicator(const Communicator&) = default;
    Communicator& operator=(const Communicator&) = default;

  private:
    Communicator();
    struct Handle;
    friend std::string rank_prefix();
    friend int end_run(int code);
    int rank_ = 0, size_ = 1;
    std::shared_ptr<Handle> handle_;  // the MPI communicator (null: the world)
    std::shared_ptr<Traffic> traffic_ = std::make_shared<Traffic>();
};

/// A run's ranks as replicas x shards (model-parallel groups). Rank r is shard r % S of replica
/// r / S: a replica's shards are neighbours, so under srun/mpirun's default placement they share
/// a node, where the shards' frequent exchanges are cheapest; replicas exchange once per step.
struct Layout {
    int replicas = 1, shards = 1;
    int replica = 0, shard = 0;
    Communicator replica_group;  ///< the ranks of this replica (its shards): model sharding
    Communicator shard_group;    ///< the ranks holding the same shard of every replica: averaging
};
/// The layout of `world` for --replicas and --shards (0: derived from the rank count and the
/// other; both 0: one replica per rank). Throws on every rank when they do not multiply to the
/// rank count.
Layout make_layout(const Communicator& world, int replicas, int shards);

/// "rank 3 of 4: " once a distributed world exists, else "" (for error lines).
std::string rank_prefix();
/// After an error: in a distributed run, ends every rank with `code` (MPI_Abort), so none is
/// left waiting in a collective; otherwise returns `code`. Never initialises MPI itself.
int end_run(int code);

}  // namespace boreas::dist
