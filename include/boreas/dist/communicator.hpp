#pragma once
/// The processes of one run. Built with MPI (BOREAS_ENABLE_MPI, OpenMPI from Debian) it is MPI's
/// world communicator: launched by mpirun or srun, rank and size come from MPI itself; started
/// alone it is one process. Built without MPI it is always one process. Collectives reduce in
/// rank order, so results are the same on every rank and from run to run.
#include <cstdint>
#include <span>
#include <string>

namespace boreas::dist {

class Communicator {
  public:
    /// The world, initialising MPI on first use (finalised at exit).
    static Communicator& world();

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool distributed() const { return size_ > 1; }
    /// "MPI (OpenMPI 4.1.4), 2 ranks" or "single process (built without MPI)".
    std::string describe() const;

    /// values[i] = sum over ranks of values[i], added in rank order (rank 0 first) on every rank:
    /// a reduce-scatter of equal segments (all-to-all, each rank sums one segment in rank order)
    /// and an all-gather, so every rank ends with the same bits.
    void allreduce_sum(std::span<float> values) const;
    void allreduce_sum(std::span<double> values) const;
    /// Throws on every rank, naming the first rank whose text differs from rank 0's, when the
    /// ranks do not hold the same `text` (a config, an option set).
    void check_same(const std::string& what, const std::string& text) const;
    void barrier() const;
    /// Ends every rank with `code` (MPI_Abort when distributed): one rank's error must not leave
    /// the others waiting in a collective.
    [[noreturn]] void abort(int code) const;

  private:
    Communicator();
    friend std::string rank_prefix();
    friend int end_run(int code);
    int rank_ = 0, size_ = 1;
};

/// "rank 3 of 4: " once a distributed world exists, else "" (for error lines).
std::string rank_prefix();
/// After an error: in a distributed run, ends every rank with `code` (MPI_Abort), so none is
/// left waiting in a collective; otherwise returns `code`. Never initialises MPI itself.
int end_run(int code);

}  // namespace boreas::dist
