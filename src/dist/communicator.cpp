#include "boreas/dist/communicator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <vector>

#include "boreas/core/error.hpp"

#ifdef BOREAS_HAVE_MPI
#include <mpi.h>
#endif

namespace boreas::dist {

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
template <typename T>
void ordered_allreduce(std::span<T> values, int size) {
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
                           mpi_type<T>(), MPI_COMM_WORLD),
              "MPI_Alltoall");
    for (std::size_t i = 0; i < segment; ++i) {
        T sum = received[i];
        for (std::size_t r = 1; r < ranks; ++r) sum += received[r * segment + i];
        summed[i] = sum;
    }
    check_mpi(MPI_Allgather(summed.data(), count, mpi_type<T>(), padded.data(), count,
                            mpi_type<T>(), MPI_COMM_WORLD),
              "MPI_Allgather");
    std::copy_n(padded.begin(), n, values.begin());
#endif
}

}  // namespace

Communicator::Communicator() {
#ifdef BOREAS_HAVE_MPI
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
        int provided = 0;
        // Only the main thread calls MPI (OpenMP regions never do).
        check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided),
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

void Communicator::allreduce_sum(std::span<float> values) const {
    ordered_allreduce(values, size_);
}

void Communicator::allreduce_sum(std::span<double> values) const {
    ordered_allreduce(values, size_);
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

void Communicator::barrier() const {
#ifdef BOREAS_HAVE_MPI
    if (size_ > 1) check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void Communicator::abort(int code) const {
#ifdef BOREAS_HAVE_MPI
    if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    std::exit(code);
}

}  // namespace boreas::dist
