#include "boreas/dist/communicator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <functional>
#include <vector>

#include "boreas/core/error.hpp"

#ifdef BOREAS_HAVE_MPI
#include <mpi.h>
#endif

namespace boreas::dist {

/// The MPI communicator of a split (the world needs none: MPI_COMM_WORLD).
struct Communicator::Handle {
#ifdef BOREAS_HAVE_MPI
    MPI_Comm comm = MPI_COMM_NULL;
    ~Handle() {
        int finalised = 0;
        MPI_Finalized(&finalised);
        if (!finalised && comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
    }
#endif
};

namespace {

#ifdef BOREAS_HAVE_MPI
void check_mpi(int code, const char* call) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    BOREAS_FAIL("{} failed: {}", call, std::string(text, static_cast<std::size_t>(length)));
}

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
    return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
    return MPI_DOUBLE;
}
#endif

/// Reduce-scatter by all-to-all plus all-gather, summing in rank order.
#ifdef BOREAS_HAVE_MPI
using Comm = MPI_Comm;
#else
using Comm = int;
#endif

template <typename T>
void ordered_allreduce(std::span<T> values, int size, [[maybe_unused]] Comm comm) {
    if (size <= 1 || values.empty()) return;
#ifdef BOREAS_HAVE_MPI
    const std::size_t n = values.size(), ranks = static_cast<std::size_t>(size);
    const std::size_t segment = (n + ranks - 1) / ranks;
    BOREAS_CHECK(segment <= static_cast<std::size_t>(INT32_MAX),
                 "allreduce of {} values over {} ranks: segments above 2^31 values", n, ranks);
    std::vector<T> padded(segment * ranks, T{0}), received(segment * ranks), summed(segment);
    std::copy(values.begin(), values.end(), padded.begin());
    const int count = static_cast<int>(segment);
    check_mpi(MPI_Alltoall(padded.data(), count, mpi_type<T>(), received.data(), count,
                           mpi_type<T>(), comm),
              "MPI_Alltoall");
    for (std::size_t i = 0; i < segment; ++i) {
        T sum = received[i];
        for (std::size_t r = 1; r < ranks; ++r) sum += received[r * segment + i];
        summed[i] = sum;
    }
    check_mpi(MPI_Allgather(summed.data(), count, mpi_type<T>(), padded.data(), count,
                            mpi_type<T>(), comm),
              "MPI_Allgather");
    std::copy_n(padded.begin(), n, values.begin());
#endif
}

}  // namespace

/// This communicator's MPI handle.
#ifdef BOREAS_HAVE_MPI
#define BOREAS_COMM (handle_ ? handle_->comm : MPI_COMM_WORLD)
#else
#define BOREAS_COMM 0
#endif

namespace {
/// Adds a collective's bytes and time to a Traffic when it goes out of scope.
class Accounted {
  public:
    Accounted(Traffic& traffic, double bytes) : traffic_(traffic), bytes_(bytes) {}
    ~Accounted() {
        traffic_.bytes_sent += bytes_;
        traffic_.seconds +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        ++traffic_.calls;
    }
    Accounted(const Accounted&) = delete;
    Accounted& operator=(const Accounted&) = delete;

  private:
    Traffic& traffic_;
    double bytes_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

#ifdef BOREAS_HAVE_MPI
int as_count(std::int64_t value, const char* what) {
    BOREAS_CHECK(value >= 0 && value <= INT_MAX, "{} of {} is beyond MPI's int counts", what,
                 value);
    return static_cast<int>(value);
}
#endif
}  // namespace

Communicator::Communicator() {
#ifdef BOREAS_HAVE_MPI
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided = 0;
        // The main thread and the background all-reduce (dist::AsyncAllreduce) call MPI, on
        // communicators of their own; OpenMP regions never do.
        check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided),
                  "MPI_Init_thread");
        std::atexit([] {
            int finalised = 0;
            MPI_Finalized(&finalised);
            if (!finalised) MPI_Finalize();
        });
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
#endif
}

namespace {
Communicator* existing = nullptr;  // set once world() has run
}  // namespace

bool Communicator::thread_multiple() {
#ifdef BOREAS_HAVE_MPI
    world();
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);
    return provided >= MPI_THREAD_MULTIPLE;
#else
    return false;
#endif
}

Communicator& Communicator::world() {
    static Communicator world;
    existing = &world;
    return world;
}

std::string rank_prefix() {
    if (existing == nullptr || !existing->distributed()) return "";
    return fmt::format("rank {} of {}: ", existing->rank_, existing->size_);
}

int end_run(int code) {
    if (existing != nullptr && existing->distributed()) existing->abort(code);
    return code;
}

std::string Communicator::describe() const {
#ifdef BOREAS_HAVE_MPI
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    std::string library(version, static_cast<std::size_t>(length));
    library = library.substr(0, library.find(','));
    return fmt::format("MPI ({}), {} rank{}", library, size_, size_ == 1 ? "" : "s");
#else
    return "single process (built without MPI)";
#endif
}

Communicator Communicator::split([[maybe_unused]] int color, [[maybe_unused]] int key) const {
    Communicator part = *this;
    part.traffic_ = std::make_shared<Traffic>();
#ifdef BOREAS_HAVE_MPI
    if (size_ > 1) {
        auto handle = std::make_shared<Handle>();
        check_mpi(MPI_Comm_split(BOREAS_COMM, color, key, &handle->comm), "MPI_Comm_split");
        MPI_Comm_set_errhandler(handle->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(handle->comm, &part.rank_);
        MPI_Comm_size(handle->comm, &part.size_);
        part.handle_ = std::move(handle);
    }
#endif
    return part;
}

// The reduce-scatter sends (S - 1) / S of the values, the all-gather as much again.
void Communicator::allreduce_sum(std::span<float> values) const {
    if (size_ <= 1) return;
    Accounted accounted(*traffic_, 8.0 * static_cast<double>(values.size()) * (size_ - 1) / size_);
    ordered_allreduce(values, size_, BOREAS_COMM);
}

void Communicator::allreduce_sum(std::span<double> values) const {
    if (size_ <= 1) return;
    Accounted accounted(*traffic_, 16.0 * static_cast<double>(values.size()) * (size_ - 1) / size_);
    ordered_allreduce(values, size_, BOREAS_COMM);
}

void Communicator::allgather_rows(const float* mine, float* all,
                                  std::span<const std::int64_t> rows_per_rank,
                                  std::int64_t width) const {
    BOREAS_CHECK(static_cast<int>(rows_per_rank.size()) == size_,
                 "allgather_rows: {} row counts for {} ranks", rows_per_rank.size(), size_);
    const auto own = rows_per_rank[static_cast<std::size_t>(rank_)];
    if (size_ == 1) {
        if (all != mine) std::copy_n(mine, own * width, all);
        return;
    }
#ifdef BOREAS_HAVE_MPI
    Accounted accounted(*traffic_, 4.0 * static_cast<double>(own * width) * (size_ - 1));
    // One row is one element of a contiguous type: counts in rows stay far below 2^31.
    MPI_Datatype row;
    check_mpi(MPI_Type_contiguous(as_count(width, "a row width"), MPI_FLOAT, &row),
              "MPI_Type_contiguous");
    MPI_Type_commit(&row);
    std::vector<int> counts(static_cast<std::size_t>(size_)), offsets(counts.size());
    std::int64_t offset = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
        counts[r] = as_count(rows_per_rank[r], "a rank's row count");
        offsets[r] = as_count(offset, "a row offset");
        offset += rows_per_rank[r];
    }
    const int code = MPI_Allgatherv(mine, counts[static_cast<std::size_t>(rank_)], row, all,
                                    counts.data(), offsets.data(), row, BOREAS_COMM);
    MPI_Type_free(&row);
    check_mpi(code, "MPI_Allgatherv");
#endif
}

void Communicator::reduce_scatter_rows(const float* all, float* mine,
                                       std::span<const std::int64_t> rows_per_rank,
                                       std::int64_t width) const {
    BOREAS_CHECK(static_cast<int>(rows_per_rank.size()) == size_,
                 "reduce_scatter_rows: {} row counts for {} ranks", rows_per_rank.size(), size_);
    const auto own = rows_per_rank[static_cast<std::size_t>(rank_)];
    if (size_ == 1) {
        if (all != mine) std::copy_n(all, own * width, mine);
        return;
    }
#ifdef BOREAS_HAVE_MPI
    double sent = 0;
    std::vector<int> send_counts(static_cast<std::size_t>(size_)), send_offsets(send_counts.size()),
        recv_counts(send_counts.size()), recv_offsets(send_counts.size());
    std::int64_t offset = 0;
    for (std::size_t r = 0; r < send_counts.size(); ++r) {
        send_counts[r] = as_count(rows_per_rank[r], "a rank's row count");
        send_offsets[r] = as_count(offset, "a row offset");
        recv_counts[r] = as_count(own, "a rank's row count");
        recv_offsets[r] = as_count(own * static_cast<std::int64_t>(r), "a row offset");
        offset += rows_per_rank[r];
        if (static_cast<int>(r) != rank_)
            sent += 4.0 * static_cast<double>(rows_per_rank[r] * width);
    }
    Accounted accounted(*traffic_, sent);
    std::vector<float> received(static_cast<std::size_t>(own * width * size_));
    MPI_Datatype row;
    check_mpi(MPI_Type_contiguous(as_count(width, "a row width"), MPI_FLOAT, &row),
              "MPI_Type_contiguous");
    MPI_Type_commit(&row);
    const int code =
        MPI_Alltoallv(all, send_counts.data(), send_offsets.data(), row, received.data(),
                      recv_counts.data(), recv_offsets.data(), row, BOREAS_COMM);
    MPI_Type_free(&row);
    check_mpi(code, "MPI_Alltoallv");
    const std::int64_t n = own * width;
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
    for (std::int64_t i = 0; i < n; ++i) {
        float sum = received[static_cast<std::size_t>(i)];
        for (int r = 1; r < size_; ++r) sum += received[static_cast<std::size_t>(r * n + i)];
        mine[i] = sum;
    }
#endif
}

void Communicator::alltoall(const float* send, std::span<const std::int64_t> send_counts,
                            float* recv, std::span<const std::int64_t> recv_counts) const {
    BOREAS_CHECK(static_cast<int>(send_counts.size()) == size_ &&
                     static_cast<int>(recv_counts.size()) == size_,
                 "alltoall: {} send and {} receive counts for {} ranks", send_counts.size(),
                 recv_counts.size(), size_);
    if (size_ == 1) {
        if (recv != send) std::copy_n(send, send_counts[0], recv);
        return;
    }
#ifdef BOREAS_HAVE_MPI
    std::vector<int> scounts(static_cast<std::size_t>(size_)), soffsets(scounts.size()),
        rcounts(scounts.size()), roffsets(scounts.size());
    std::int64_t soffset = 0, roffset = 0;
    double sent = 0;
    for (std::size_t r = 0; r < scounts.size(); ++r) {
        scounts[r] = as_count(send_counts[r], "an all-to-all block");
        rcounts[r] = as_count(recv_counts[r], "an all-to-all block");
        soffsets[r] = as_count(soffset, "an all-to-all offset");
        roffsets[r] = as_count(roffset, "an all-to-all offset");
        soffset += send_counts[r];
        roffset += recv_counts[r];
        if (static_cast<int>(r) != rank_) sent += 4.0 * static_cast<double>(send_counts[r]);
    }
    Accounted accounted(*traffic_, sent);
    check_mpi(MPI_Alltoallv(send, scounts.data(), soffsets.data(), MPI_FLOAT, recv, rcounts.data(),
                            roffsets.data(), MPI_FLOAT, BOREAS_COMM),
              "MPI_Alltoallv");
#endif
}

void Communicator::check_same(const std::string& what, const std::string& text) const {
    if (size_ <= 1) return;
    // Each rank's hash, gathered by a sum over one-hot slots: small and exact.
    std::vector<double> hashes(static_cast<std::size_t>(size_), 0.0);
    hashes[static_cast<std::size_t>(rank_)] =
        static_cast<double>(std::hash<std::string>{}(text) >> 12);  // exact in a double
    allreduce_sum(std::span<double>(hashes));
    for (int r = 1; r < size_; ++r)
        BOREAS_CHECK(hashes[static_cast<std::size_t>(r)] == hashes[0],
                     "rank {} has another {} than rank 0: every rank must run the same", r, what);
}

Layout make_layout(const Communicator& world, int replicas, int shards) {
    const int ranks = world.size();
    BOREAS_CHECK(replicas >= 0 && shards >= 0, "--replicas {} --shards {}: counts must be >= 1",
                 replicas, shards);
    if (shards == 0) shards = replicas > 0 && ranks % replicas == 0 ? ranks / replicas : 1;
    if (replicas == 0) {
        BOREAS_CHECK(ranks % shards == 0,
                     "--shards {} does not divide the {} rank(s): ranks = replicas x shards",
                     shards, ranks);
        replicas = ranks / shards;
    }
    BOREAS_CHECK(replicas * shards == ranks,
                 "--replicas {} x --shards {} = {} rank(s), but the run has {}: launch with "
                 "mpirun -n {} (or srun -n {})",
                 replicas, shards, replicas * shards, ranks, replicas * shards, replicas * shards);
    Layout layout{replicas, shards, world.rank() / shards, world.rank() % shards, world, world};
    layout.replica_group = world.split(layout.replica, layout.shard);
    layout.shard_group = world.split(layout.shard, layout.replica);
    return layout;
}

void Communicator::barrier() const {
#ifdef BOREAS_HAVE_MPI
    if (size_ > 1) check_mpi(MPI_Barrier(BOREAS_COMM), "MPI_Barrier");
#endif
}

void Communicator::broadcast_bytes([[maybe_unused]] void* data, std::size_t bytes,
                                   [[maybe_unused]] int root) const {
    BOREAS_CHECK(bytes <= static_cast<std::size_t>(INT_MAX), "broadcast of {} bytes", bytes);
#ifdef BOREAS_HAVE_MPI
    if (size_ > 1)
        check_mpi(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, BOREAS_COMM),
                  "MPI_Bcast");
#endif
}

void Communicator::abort(int code) const {
#ifdef BOREAS_HAVE_MPI
    if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::exit(code);
}

}  // namespace boreas::dist
