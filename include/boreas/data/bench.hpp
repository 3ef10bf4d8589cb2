#pragma once
/// `boreas bench data`: how fast a store's samples can be had, stage by stage: chunk reads
/// (compressed bytes), decompression (Boreas' decoder and c-blosc's own call on the same
/// chunks), and whole samples through the loader (read, decompress, gather, transpose,
/// normalise) at each thread count, with CPU time per sample and peak RSS.

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace boreas::data {

struct DataBenchOptions {
    std::filesystem::path store;
    std::vector<int> threads = {1, 2};  ///< loader threads to measure
    int multistep_input = 2, rollout = 1;
    int batch = 1;    ///< samples per batch (at least the thread count: threads share a batch)
    int batches = 8;  ///< timed batches per thread count (after one untimed)
    int chunks = 8;   ///< chunks timed for the read and decompression stages
};

/// The measurements as a JSON document (schema boreas-bench-data/1, docs/bench.md).
nlohmann::ordered_json bench_data(const DataBenchOptions& options);

/// True when `document` claims the boreas-bench-data schema (Boreas' or the peer's).
bool is_data_bench_document(const nlohmann::json& document);

/// Two boreas-bench-data documents side by side (`boreas compare`): per loader thread count the
/// samples/s, CPU-seconds per sample and their ratios new/base with a verdict (SAME within
/// `tolerance`, FASTER, SLOWER; NOISY where the batch-time ranges overlap), then the
/// decompression rates. Refuses stores of different shapes unless `force`.
std::string compare_data_bench(const nlohmann::json& base, const std::string& base_name,
                               const nlohmann::json& other, const std::string& other_name,
                               double tolerance, bool force);

}  // namespace boreas::data
