#pragma once
/// The benchmark harness: warm-ups excluded, repeated timed steps with per-phase samples (from
/// BOREAS_RANGE), statistics, a FLOP and byte model per phase against the measured roof, a
/// verification verdict, and a versioned JSON document (docs/bench.md, docs/bench-schema.json).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace boreas::bench {

inline constexpr const char* kSchemaName = "boreas-bench";
inline constexpr const char* kSchemaVersion = "1.0.0";

struct BenchOptions {
    std::string what = "forward";  ///< forward | all (train joins with the training issue)
    std::string config = "small";
    std::vector<std::string> overrides;
    int warmup = 1;
    int repetitions = 5;
    double min_time = 0;   ///< keep repeating until this many seconds were measured
    double timeout = 600;  ///< stop repeating after this many seconds (at least one sample)
    int threads = 0;
    int batch = 1;
    std::uint64_t seed = 1;
    std::string verify;      ///< an output file (boreas forward -o) to compare against
    std::string input;       ///< input file (default: the seeded synthetic input)
    std::string weights;     ///< weights file (default: seeded initialisation)
    std::string graph;       ///< graph file (default: the config's graph)
    std::string checkpoint;  ///< anemoi inference checkpoint: config, graph and weights from it
    bool fresh_roof = false;
    bool activation_checkpointing = true;  ///< for train
    /// Under MPI: ranks = replicas x shards (0: derived; both 0: one replica per rank). A
    /// replica takes an equal share of --batch; its shards split its rows (model sharding).
    int replicas = 0;
    int shards = 0;
    /// The forward's precision, fp32 or bf16 (model::Precision; forward only).
    std::string precision = "fp32";
    /// The device the model runs on: cpu, cuda or cuda:N (backends::parse_device).
    std::string device = "cpu";
    std::string command_line;
};

/// Runs the benchmark and returns the result document.
nlohmann::ordered_json run(const BenchOptions& options);

/// Statistics of samples: median, min, max, mean, stddev (sample), n.
nlohmann::ordered_json statistics(const std::vector<double>& samples, int warmup);

/// One table per document on `out`: phase, time, share, GFLOP/s, % of roof, bound.
std::string format_table(const nlohmann::ordered_json& document);
/// CSV of the results (one row per phase).
std::string format_csv(const nlohmann::ordered_json& document);

/// Checks that `document` is a boreas-bench document this build understands; throws naming
/// `origin` and the problem.
void check_document(const nlohmann::json& document, const std::string& origin);

struct CompareOptions {
    double tolerance = 0.05;  ///< |ratio - 1| within this is SAME
    bool force = false;       ///< compare documents of different configs
};

/// Per phase and total: the ratio new/base of median times and a verdict (SAME, FASTER,
/// SLOWER, NOISY). Refuses documents with different configs unless forced.
std::string compare(const nlohmann::json& base, const std::string& base_name,
                    const nlohmann::json& other, const std::string& other_name,
                    const CompareOptions& options);

}  // namespace boreas::bench
