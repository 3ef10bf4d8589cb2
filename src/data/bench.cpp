#include "boreas/data/bench.hpp"

#include <blosc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>

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

    // Stage 3: whole normalised samples through the loader at each thread count.
    nlohmann::ordered_json loaders = nlohmann::ordered_json::array();
    for (const int threads : options.threads) {
        LoaderOptions lo;
        lo.sampler.multistep_input = options.multistep_input;
        lo.sampler.rollout = options.rollout;
        lo.batch = std::max(options.batch, threads);  // threads read a batch's samples
        lo.threads = threads;
        lo.queue = 1;
        lo.variables = dataset.variables();
        lo.mul.assign(lo.variables.size(), 1.0f);
        lo.add.assign(lo.variables.size(), 0.0f);
        BatchLoader loader(options.store, lo);
        (void)loader.batch(0);  // untimed: first touches
        const double cpu_before = cpu_seconds();
        Stopwatch clock;
        for (int b = 1; b <= options.batches; ++b) (void)loader.batch(b);
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
             {"cpu_seconds_per_sample", cpu / samples}});
        log::info("bench data: {} thread(s): {:.2f} samples/s, {:.3g} CPU-s per sample", threads,
                  samples / seconds, cpu / samples);
    }
    doc["loader"] = loaders;
    doc["peak_rss_bytes"] = peak_rss_bytes();
    doc["system"] = system_context();
    doc["build"] = build_context();
    return doc;
}

}  // namespace boreas::data
