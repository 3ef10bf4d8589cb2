#pragma once
/// This machine's limits, measured in-process (ERT-style): fp32 FMA and bf16 dot-product peaks
/// (1 thread and all threads), the linked BLAS's SGEMM rate on given shapes, STREAM-triad
/// bandwidth. A run reuses a roof measured since the last boot by the same build (cached in
/// the temporary folder) unless asked to measure again.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace boreas::bench {

struct GemmShape {
    long m, n, k;
};

struct RoofOptions {
    std::vector<GemmShape> gemm_shapes;  ///< empty: a default set (AIFS-like shapes)
    bool use_cache = true;
    double seconds_per_probe = 0.3;
};

/// {"fp32_fma_gflops": {"1", "all", "threads"}, "bf16_dot_gflops": {...} or null with
///  "bf16_unavailable_reason", "sgemm": [{m, n, k, threads, gflops}], "sgemm_gflops": best,
///  "triad_gbs": {"1", "all", "threads"}, "cached": bool}
nlohmann::ordered_json measure_roof(const RoofOptions& options = {});

/// All threads must reach this fraction of threads x the one-thread FMA rate for a roof to be
/// trusted (independent FMA chains scale linearly on separate cores).
inline constexpr double kMinThreadScaling = 0.75;

/// Why a measured roof is suspect, or empty: the all-thread FMA rate fell short of
/// kMinThreadScaling x threads x the one-thread rate. A suspect roof is reported with a "doubt"
/// key and never cached.
std::string roof_doubt(double fma_one_thread, double fma_all_threads, int threads);

}  // namespace boreas::bench
