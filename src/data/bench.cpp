#include "boreas/data/bench.hpp"

#include <blosc.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "boreas/core/context.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/data/dataset.hpp"
#include "boreas/data/loader.hpp"

namespace boreas::data {
namespace {

double cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double median(std::vector<double> values) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const auto n = values.size();
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

nlohmann::ordered_json bench_data(const DataBenchOptions& options) {
    BOREAS_CHECK(options.batches >= 1 && options.chunks >= 1 && options.batch >= 1,
                 "bench data: --batches, --chunks and --batch must be >= 1");
    const AnemoiDataset dataset(options.store);
    const auto& data = dataset.data();
    const auto& m = data.metadata();
    nlohmann::ordered_json doc;
    doc["schema"] = "boreas-bench-data/1";
    doc["store"] = {{"path", dataset.location()},
                    {"dates", dataset.dates().size()},
                    {"variables", dataset.variables().size()},
                    {"ensembles", dataset.ensembles()},
                    {"points", dataset.points()},
                    {"chunk_shape", m.chunks},
                    {"chunk_bytes", m.chunk_bytes()},
                    {"compressor", m.compressor},
                    {"blosc_codec", m.compressor_detail}};

    // Stage 1 and 2: the first chunks of present dates, read as stored, then decoded.
    std::vector<std::vector<std::int64_t>> keys;
    const auto grid = m.chunk_grid();
    for (std::int64_t d = 0; d < grid[0] && static_cast<int>(keys.size()) < options.chunks; ++d) {
        std::vector<std::int64_t> index(grid.size(), 0);
        index[0] = d;
        if (!dataset.is_missing(d * m.chunks[0])) keys.push_back(index);
    }
    BOREAS_CHECK(!keys.empty(), "bench data: store '{}' has no chunk to read", dataset.location());
    std::vector<std::vector<std::byte>> stored;
    Stopwatch read_clock;
    std::uint64_t compressed = 0;
    for (const auto& index : keys) {
        auto bytes = data.read_raw_chunk(index);
        BOREAS_CHECK(bytes.has_value(), "bench data: chunk '{}' is absent", m.chunk_key(index));
        compressed += bytes->size();
        stored.push_back(std::move(*bytes));
    }
    const double read_seconds = read_clock.seconds();
    std::vector<std::byte> out(static_cast<std::size_t>(m.chunk_bytes()));
    std::vector<double> decode_times, blosc_times;
    for (int round = 0; round < 3; ++round) {  // alternate Boreas' decoder and c-blosc's call
        Stopwatch clock;
        for (std::size_t k = 0; k < stored.size(); ++k)
            data.decode_chunk(stored[k], out, m.chunk_key(keys[k]));
        decode_times.push_back(clock.seconds());
        if (m.compressor == "blosc") {
            clock.restart();
            for (const auto& s : stored)
                BOREAS_CHECK(blosc_decompress_ctx(s.data(), out.data(), out.size(), 1) > 0,
                             "bench data: c-blosc failed on a chunk");
            blosc_times.push_back(clock.seconds());
        }
    }
    const double decoded =
        static_cast<double>(m.chunk_bytes()) * static_cast<double>(stored.size());
    doc["chunks"] = {
        {"count", stored.size()},
        {"compressed_bytes", compressed},
        {"decompressed_bytes", decoded},
        {"ratio", decoded / static_cast<double>(std::max<std::uint64_t>(compressed, 1))},
        {"read_seconds", read_seconds},
        {"read_mb_per_s", static_cast<double>(compressed) / 1e6 / read_seconds},
        {"decode_seconds_median", median(decode_times)},
        {"decode_mb_per_s", decoded / 1e6 / median(decode_times)},
        {"chunks_per_s", static_cast<double>(stored.size()) / median(decode_times)}};
    if (!blosc_times.empty()) {
        doc["chunks"]["blosc_mb_per_s"] = decoded / 1e6 / median(blosc_times);
        doc["chunks"]["decode_vs_blosc"] = median(blosc_times) / median(decode_times);
    }

    // Stage 2b: the same chunks decoded by T threads at once (each its own output buffer, the
    // chunks dealt round-robin), against T times c-blosc's single-thread rate: whether decoding
    // scales with threads or shares something (a lock, memory bandwidth).
    nlohmann::ordered_json parallel = nlohmann::ordered_json::array();
    for (const int threads : options.threads) {
        std::vector<double> times;
        // Output buffers made (and their pages touched) once, outside the timing.
        std::vector<std::vector<std::byte>> buffers(
            static_cast<std::size_t>(threads),
            std::vector<std::byte>(static_cast<std::size_t>(m.chunk_bytes())));
        for (int round = 0; round < 3; ++round) {
            Stopwatch clock;
            std::vector<std::thread> pool;
            for (int t = 0; t < threads; ++t)
                pool.emplace_back([&, t] {
                    auto& buffer = buffers[static_cast<std::size_t>(t)];
                    for (std::size_t k = static_cast<std::size_t>(t); k < stored.size();
                         k += static_cast<std::size_t>(threads))
                        data.decode_chunk(stored[k], buffer, m.chunk_key(keys[k]));
                });
            for (auto& worker : pool) worker.join();
            times.push_back(clock.seconds());
        }
        nlohmann::ordered_json entry = {{"threads", threads},
                                        {"seconds_median", median(times)},
                                        {"mb_per_s", decoded / 1e6 / median(times)}};
        if (!blosc_times.empty())
            entry["vs_blosc_single_thread_times_threads"] =
                median(blosc_times) / (median(times) * threads);
        parallel.push_back(std::move(entry));
    }
    doc["chunks"]["parallel_decode"] = std::move(parallel);

    // Stage 3: whole normalised samples through the loader at each thread count.
    nlohmann::ordered_json loaders = nlohmann::ordered_json::array();
    for (const int threads : options.threads) {
        LoaderOptions lo;
        lo.sampler.multistep_input = options.multistep_input;
        lo.sampler.rollout = options.rollout;
        lo.batch = std::max(options.batch, threads);  // threads read a batch's samples
        lo.threads = threads;
        lo.queue = 2;  // the workers never wait for the timing loop
        lo.variables = dataset.variables();
        lo.mul.assign(lo.variables.size(), 1.0f);
        lo.add.assign(lo.variables.size(), 0.0f);
        BatchLoader loader(options.store, lo);
        // Untimed: the first touches, until the batches given back are enough for the loader to
        // write every later batch into memory it already has (its steady state in training).
        const int warmup = lo.queue + 1;
        for (int b = 0; b < warmup; ++b) loader.give_back(loader.batch(b));
        const double cpu_before = cpu_seconds();
        Stopwatch clock;
        std::vector<double> batch_seconds;
        for (int b = warmup; b < warmup + options.batches; ++b) {
            Stopwatch batch_clock;
            loader.give_back(loader.batch(b));
            batch_seconds.push_back(batch_clock.seconds());
        }
        const double seconds = clock.seconds();
        const double cpu = cpu_seconds() - cpu_before;
        const double samples = static_cast<double>(options.batches) * lo.batch;
        const auto window = options.multistep_input + options.rollout;
        loaders.push_back(
            {{"threads", threads},
             {"samples", samples},
             {"dates_per_sample", window},
             {"seconds", seconds},
             {"samples_per_s", samples / seconds},
             {"decompressed_mb_per_s",
              samples * window * static_cast<double>(m.chunk_bytes()) / 1e6 / seconds},
             {"cpu_seconds_per_sample", cpu / samples},
             {"batch_size", lo.batch},
             {"batch_seconds", batch_seconds}});
        log::info("bench data: {} thread(s): {:.2f} samples/s, {:.3g} CPU-s per sample", threads,
                  samples / seconds, cpu / samples);
    }
    doc["loader"] = loaders;
    doc["peak_rss_bytes"] = peak_rss_bytes();
    doc["system"] = system_context();
    doc["build"] = build_context();
    return doc;
}

bool is_data_bench_document(const nlohmann::json& document) {
    return document.is_object() && document.value("schema", "") == "boreas-bench-data/1";
}

namespace {

const nlohmann::json* loader_entry(const nlohmann::json& document, int threads) {
    for (const auto& entry : document["loader"])
        if (entry.at("threads").get<int>() == threads) return &entry;
    return nullptr;
}

std::string implementation(const nlohmann::json& document) {
    if (document.contains("peer")) return document["peer"].value("name", "peer");
    return "Boreas";
}

/// The range of per-batch rates (samples/s) of one loader entry, when it has batch times.
std::pair<double, double> rate_range(const nlohmann::json& entry) {
    const auto times = entry.value("batch_seconds", std::vector<double>{});
    if (times.empty()) return {0, 0};
    const double batch = entry.value("batch_size", 1.0);
    const auto [lo, hi] = std::minmax_element(times.begin(), times.end());
    return {batch / *hi, batch / *lo};
}

}  // namespace

std::string compare_data_bench(const nlohmann::json& base, const std::string& base_name,
                               const nlohmann::json& other, const std::string& other_name,
                               double tolerance, bool force) {
    for (const auto& [document, name] : {std::pair{&base, &base_name}, {&other, &other_name}}) {
        BOREAS_CHECK(is_data_bench_document(*document),
                     "'{}' is not a boreas-bench-data document (no \"schema\": "
                     "\"boreas-bench-data/1\")",
                     *name);
        BOREAS_CHECK(document->contains("store") && document->contains("loader") &&
                         (*document)["loader"].is_array(),
                     "'{}' is a malformed boreas-bench-data document: no store or loader[]", *name);
    }
    std::string out;
    try {
        const auto& a = base["store"];
        const auto& b = other["store"];
        for (const char* key : {"dates", "variables", "points", "chunk_bytes"})
            BOREAS_CHECK(force || a.at(key) == b.at(key),
                         "'{}' and '{}' read stores of different shapes ({}: {} vs {}); pass "
                         "--force to compare them anyway",
                         base_name, other_name, key, a.at(key).dump(), b.at(key).dump());
        out = fmt::format(
            "base: {} ({})\nnew:  {} ({})\nstore: {} dates x {} variables x {} points, "
            "{} MB per date\n",
            base_name, implementation(base), other_name, implementation(other),
            a.at("dates").dump(), a.at("variables").dump(), a.at("points").dump(),
            a.at("chunk_bytes").get<double>() / 1e6);
        out += fmt::format("{:<30} {:>11} {:>11} {:>9}  {}\n", "loader", "base", "new", "new/base",
                           "verdict");
        for (const auto& entry : base["loader"]) {
            const int threads = entry.at("threads").get<int>();
            const auto* match = loader_entry(other, threads);
            if (match == nullptr) continue;
            const double x = entry.at("samples_per_s").get<double>();
            const double y = match->at("samples_per_s").get<double>();
            const double ratio = x > 0 ? y / x : 0;
            std::string verdict = "SAME";
            if (ratio > 1 + tolerance) verdict = "FASTER";
            if (ratio < 1 - tolerance) verdict = "SLOWER";
            const auto [alo, ahi] = rate_range(entry);
            const auto [blo, bhi] = rate_range(*match);
            if (verdict != "SAME" && ahi > 0 && bhi > 0 && alo <= bhi && blo <= ahi)
                verdict = "NOISY";
            out +=
                fmt::format("{:<30} {:>11.3f} {:>11.3f} {:>8.2f}x  {}\n",
                            fmt::format("{} thread(s): samples/s", threads), x, y, ratio, verdict);
            const double cx = entry.at("cpu_seconds_per_sample").get<double>();
            const double cy = match->at("cpu_seconds_per_sample").get<double>();
            out += fmt::format("{:<30} {:>11.4f} {:>11.4f} {:>8.2f}x\n",
                               fmt::format("{} thread(s): CPU-s/sample", threads), cx, cy,
                               cx > 0 ? cy / cx : 0.0);
        }
        const auto& ca = base.value("chunks", nlohmann::json::object());
        const auto& cb = other.value("chunks", nlohmann::json::object());
        if (ca.contains("decode_mb_per_s") && cb.contains("decode_mb_per_s")) {
            const double x = ca["decode_mb_per_s"].get<double>();
            const double y = cb["decode_mb_per_s"].get<double>();
            out += fmt::format("{:<30} {:>11.1f} {:>11.1f} {:>8.2f}x\n",
                               "decompression MB/s, 1 thread", x, y, x > 0 ? y / x : 0.0);
        }
    } catch (const nlohmann::json::exception& error) {
        BOREAS_FAIL("'{}' or '{}' is a malformed boreas-bench-data document: {}", base_name,
                    other_name, error.what());
    }
    return out;
}

}  // namespace boreas::data
