#include "boreas/bench/roof.hpp"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "boreas/core/context.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/io/atomic_file.hpp"

#ifdef BOREAS_BLAS_OPENBLAS
extern "C" int openblas_get_num_threads(void);
extern "C" void openblas_set_num_threads(int threads);
#endif

namespace boreas::bench {
namespace {

// 12 independent accumulators hide the 4-cycle FMA latency on two FMA pipes (Zen 4: 2 x 256-bit).
__attribute__((target("avx2,fma"))) double fma_loop(long iterations) {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(1.0f + 0.001f * static_cast<float>(i));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iterations; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 sum = acc[0];
    for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, sum);
    return out[0];
}
constexpr double kFmaFlopsPerIteration = 12 * 8 * 2;

__attribute__((target("avx512f,avx512bf16"))) double bf16_loop(long iterations) {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_setzero_ps();
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (long it = 0; it < iterations; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __m512 sum = acc[0];
    for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
    float out[16];
    _mm512_storeu_ps(out, sum);  // (GCC 12 warns spuriously inside _mm512_reduce_add_ps)
    return out[0];
}
constexpr double kBf16FlopsPerIteration = 12 * 32 * 2;

/// GFLOP/s of `loop` with `threads` threads, each running it for about `seconds`: the best of
/// three trials, as for SGEMM and triad (a single trial could land on a neighbour's busy spell).
template <typename Loop>
double peak(Loop loop, double flops_per_iteration, int threads, double seconds) {
    long iterations = 1 << 16;
    for (;;) {  // calibrate on one thread
        Stopwatch clock;
        volatile double sink = loop(iterations);
        (void)sink;
        if (clock.seconds() > seconds / 4 || iterations > (1L << 40)) break;
        iterations *= 2;
    }
    double best = 0;
    for (int trial = 0; trial < 3; ++trial) {
        Stopwatch clock;
#pragma omp parallel num_threads(threads)
        {
            volatile double sink = loop(iterations);
            (void)sink;
        }
        best = std::max(best, flops_per_iteration * static_cast<double>(iterations) * threads /
                                  clock.seconds() / 1e9);
    }
    return best;
}

double triad(int threads, double seconds) {
    const std::size_t n = std::size_t{1} << 24;  // 3 x 128 MiB of doubles: far beyond any LLC
    std::vector<double> a(n), b(n, 1.0), c(n, 2.0);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::size_t i = 0; i < n; ++i) a[i] = 0.0;  // first touch by the threads that use it
    double best = 0;
    Stopwatch total;
    for (int runs = 0; runs < 5 || total.seconds() < seconds; ++runs) {
        Stopwatch clock;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + 3.0 * c[i];
        best = std::max(best, 3.0 * 8.0 * static_cast<double>(n) / clock.seconds() / 1e9);
    }
    return best;
}

double sgemm_rate(const GemmShape& s, double seconds) {
    std::vector<float> a(static_cast<std::size_t>(s.m * s.k), 0.5f);
    std::vector<float> b(static_cast<std::size_t>(s.k * s.n), 0.25f);
    std::vector<float> c(static_cast<std::size_t>(s.m * s.n));
    auto run = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(s.m),
                    static_cast<int>(s.n), static_cast<int>(s.k), 1.0f, a.data(),
                    static_cast<int>(s.k), b.data(), static_cast<int>(s.k), 0.0f, c.data(),
                    static_cast<int>(s.n));
    };
    run();  // warm-up: page faults, OpenBLAS buffers
    double best = 0;
    Stopwatch total;
    for (int runs = 0; runs < 3 || total.seconds() < seconds; ++runs) {
        Stopwatch clock;
        run();
        best = std::max(best, 2.0 * s.m * s.n * s.k / clock.seconds() / 1e9);
    }
    return best;
}

bool cpu_has(const char* flag) {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("flags", 0) == 0) {
            std::istringstream words(line);
            for (std::string word; words >> word;)
                if (word == flag) return true;
            return false;
        }
    }
    return false;
}

std::filesystem::path cache_path() {
    std::string boot = "unknown";
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::getline(in, boot);
    const auto key = std::hash<std::string>{}(boot + detail::kGitCommit + detail::kCxxFlags +
                                              std::to_string(omp_get_max_threads()));
    return std::filesystem::temp_directory_path() / fmt::format("boreas-roof-{:016x}.json", key);
}

}  // namespace

std::string roof_doubt(double fma_one_thread, double fma_all_threads, int threads) {
    if (threads > 1 && fma_all_threads < kMinThreadScaling * threads * fma_one_thread)
        return fmt::format(
            "the FMA roof did not scale with threads ({:.0f} GFLOP/s on {} threads, {:.0f} on 1): "
            "another process was probably running, or the threads share cores (SMT)",
            fma_all_threads, threads, fma_one_thread);
    return {};
}

nlohmann::ordered_json measure_roof(const RoofOptions& options) {
    const auto path = cache_path();
    if (options.use_cache && options.gemm_shapes.empty() && std::filesystem::exists(path)) {
        try {
            std::ifstream in(path);
            auto cached = nlohmann::ordered_json::parse(in);
            cached["cached"] = true;
            return cached;
        } catch (const std::exception&) {
            // A broken cache file is measured again and overwritten.
        }
    }
    log::info("measuring the machine's roof (FMA, BF16 dot, SGEMM, triad; about 10 s)");
    const int threads = omp_get_max_threads();
    const double t = options.seconds_per_probe;
    nlohmann::ordered_json roof;
    roof["fp32_fma_gflops"] = {{"1", peak(fma_loop, kFmaFlopsPerIteration, 1, t)},
                               {"all", peak(fma_loop, kFmaFlopsPerIteration, threads, t)},
                               {"threads", threads}};
    if (cpu_has("avx512_bf16")) {
        roof["bf16_dot_gflops"] = {{"1", peak(bf16_loop, kBf16FlopsPerIteration, 1, t)},
                                   {"all", peak(bf16_loop, kBf16FlopsPerIteration, threads, t)},
                                   {"threads", threads}};
    } else {
        roof["bf16_dot_gflops"] = nullptr;
        roof["bf16_unavailable_reason"] = "this CPU does not report avx512_bf16 (vdpbf16ps)";
    }
    std::vector<GemmShape> shapes = options.gemm_shapes;
    if (shapes.empty()) shapes = {{10944, 1024, 1024}, {10944, 4096, 1024}, {10944, 1024, 4096}};
    double best = 0;
#ifdef BOREAS_BLAS_OPENBLAS
    // The roof is OpenBLAS' own threaded SGEMM on all threads; the kernels keep OpenBLAS
    // single-threaded (they split the work themselves), so its count is set here and restored.
    const int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(threads);
#endif
    for (const auto& shape : shapes) {
        const double rate = sgemm_rate(shape, t);
        best = std::max(best, rate);
        roof["sgemm"].push_back({{"m", shape.m},
                                 {"n", shape.n},
                                 {"k", shape.k},
                                 {"threads", threads},
                                 {"gflops", rate}});
    }
#ifdef BOREAS_BLAS_OPENBLAS
    openblas_set_num_threads(blas_threads);
#endif
    roof["sgemm_gflops"] = best;
    roof["triad_gbs"] = {{"1", triad(1, t)}, {"all", triad(threads, t)}, {"threads", threads}};
    roof["cached"] = false;
    const std::string doubt = roof_doubt(roof["fp32_fma_gflops"]["1"].get<double>(),
                                         roof["fp32_fma_gflops"]["all"].get<double>(), threads);
    if (!doubt.empty()) {
        // Cached, a roof taken while another process held a core would understate every
        // later run's roof for the rest of the boot (phases at 165 % of it were seen).
        roof["doubt"] = doubt;
        log::warning("{}; this roof is not cached (`boreas roof --fresh` on a quiet machine)",
                     doubt);
    } else if (options.gemm_shapes.empty()) {
        try {
            io::write_text_atomically(path, roof.dump(2));
        } catch (const std::exception&) {
            // No cache is no error.
        }
    }
    return roof;
}

}  // namespace boreas::bench
