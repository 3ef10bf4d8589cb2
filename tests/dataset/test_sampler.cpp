// The sampler against anemoi-training 0.16's own dataset on o16.zarr (tests/data/datasets/
// samples.json, tools/reference/make_sample_fixtures.py): seeds, numpy's generator, usable
// anchors, replica and worker splits, epochs on persistent workers, the DataLoader's batch
// order, every sample's bytes, and the normalised samples with the normaliser Boreas builds
// from the store's statistics.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "boreas/data/dataset.hpp"
#include "boreas/data/loader.hpp"
#include "boreas/data/sampler.hpp"
#include "boreas/model/config.hpp"
#include "boreas/model/normaliser.hpp"
#include "support/sha256.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using namespace boreas::data;
using boreas::testing_support::sha256;
using json = nlohmann::json;

namespace {

const fs::path kStores = fs::path(BOREAS_TEST_DATA) / "datasets";

const json& reference() {
    static const json doc = [] {
        std::ifstream in(kStores / "samples.json");
        return json::parse(in);
    }();
    return doc;
}

double from_hex(const json& v) {
    return std::strtod(v.get<std::string>().c_str(), nullptr);
}

TEST(Sampler, NumpySeedsAndGeneratorAsAnemoi) {
    const std::vector<std::uint64_t> epoch0 = {2, 0}, epoch1 = {2, 1};
    EXPECT_EQ(derive_seed(42, epoch0), 1587909317u);
    EXPECT_EQ(derive_seed(42, epoch1), 2587068805u);
    NumpyGenerator generator(1587909317u);
    const auto& first = reference()["configurations"][0]["ranks"][0]["workers"][0];
    EXPECT_EQ(generator.random(), from_hex(first["sanity_rnd"]));
    // numpy's two permutation paths: Floyd + shuffle up to 10000, a tail shuffle above.
    for (const auto& [name, want] :
         reference()["seed_semantics"]["reference_permutations"].items()) {
        SCOPED_TRACE(name);
        const auto n = std::stoll(name.substr(name.find("_n") + 2));  // "epoch1_n10001"
        const std::vector<std::uint64_t> key = {2, std::stoull(name.substr(5, name.find('_') - 5))};
        NumpyGenerator g(derive_seed(42, key));
        (void)g.random();
        const auto order = g.permutation(n);
        const auto head = want["head"].get<std::vector<std::int64_t>>();
        const auto tail = want["tail"].get<std::vector<std::int64_t>>();
        EXPECT_TRUE(std::equal(head.begin(), head.end(), order.begin()));
        EXPECT_TRUE(std::equal(tail.begin(), tail.end(),
                               order.end() - static_cast<std::ptrdiff_t>(tail.size())));
        EXPECT_EQ(sha256(order.data(), order.size() * 8), want["sha256_int64_le"]);
    }
}

TEST(Sampler, OrderAndSplitsAsAnemoiTraining) {
    const AnemoiDataset dataset(kStores / "o16.zarr");
    int workers_checked = 0;
    for (const auto& config : reference()["configurations"]) {
        SCOPED_TRACE(config["name"].get<std::string>() + " rollout " + config["rollout"].dump() +
                     " epoch " + config["epoch"].dump());
        SamplerOptions options;
        options.rollout = config["rollout"];
        options.workers = config["num_workers"];
        const auto anchors = usable_anchors(static_cast<std::int64_t>(dataset.dates().size()),
                                            dataset.missing_indices(), options);
        std::vector<std::int64_t> expected_anchors;
        for (const auto& a : reference()["rollouts"][config["rollout"].dump()]["anchors"])
            expected_anchors.push_back(a[1]);
        EXPECT_EQ(anchors, expected_anchors);
        for (const auto& rank : config["ranks"]) {
            options.replicas = rank["comm"]["sample_comm_num_groups"];
            options.replica = rank["comm"]["sample_comm_group_id"];
            std::vector<std::vector<std::int64_t>> streams;
            std::vector<std::vector<std::vector<std::int64_t>>> later;  // [epoch][worker]
            for (const auto& worker : rank["workers"]) {
                options.worker = worker["worker_id"];
                WorkerSampler sampler(anchors, options, config["epoch"]);
                EXPECT_EQ(sampler.seed(), worker["seed"].get<std::uint32_t>());
                EXPECT_EQ(sampler.begin(), worker["chunk_index_range"][0].get<std::int64_t>());
                EXPECT_EQ(sampler.end(), worker["chunk_index_range"][1].get<std::int64_t>());
                streams.push_back(sampler.next_epoch());
                EXPECT_EQ(streams.back(), worker["positions"].get<std::vector<std::int64_t>>());
                std::size_t e = 0;
                for (const auto& next : worker.value("later_epochs", json::array())) {
                    if (later.size() <= e) later.emplace_back();
                    later[e].push_back(sampler.next_epoch());
                    EXPECT_EQ(later[e].back(), next["positions"].get<std::vector<std::int64_t>>())
                        << "epoch " << next["epoch"];
                    ++e;
                }
                ++workers_checked;
            }
            EXPECT_EQ(round_robin_batches(streams, config["batch_size"]),
                      rank["dataloader_batches"].get<std::vector<std::vector<std::int64_t>>>());
            for (std::size_t e = 0; e < later.size(); ++e)
                EXPECT_EQ(round_robin_batches(later[e], config["batch_size"]),
                          rank["dataloader_batches_later_epochs"][e]
                              .get<std::vector<std::vector<std::int64_t>>>());
        }
    }
    EXPECT_GE(workers_checked, 15);
}

TEST(Sampler, SamplesAndNormalisedSamplesBitForBit) {
    const AnemoiDataset dataset(kStores / "o16.zarr");
    const auto& ref = reference();
    // The normaliser Boreas builds from the store's statistics, as anemoi-training's config
    // names the methods.
    boreas::model::ModelConfig config;
    config.variables = dataset.variables();
    config.forcing = ref["config"]["data.datasets.data"]["forcing"].get<std::vector<std::string>>();
    config.diagnostic =
        ref["config"]["data.datasets.data"]["diagnostic"].get<std::vector<std::string>>();
    const auto& methods = ref["normaliser"]["config"];
    config.normaliser.default_method = methods["default"];
    for (const char* method : {"max", "none", "std", "min-max"})
        for (const auto& name : methods.value(method, json::array()))
            config.normaliser.method_of[name.get<std::string>()] = method;
    const auto stats = dataset.statistics();
    const boreas::model::Normaliser normaliser(
        config, boreas::model::Statistics{stats.mean, stats.stdev, stats.minimum, stats.maximum});
    const auto width = dataset.variables().size();
    ASSERT_EQ(normaliser.mul().size(), width);
    for (std::size_t v = 0; v < width; ++v) {
        EXPECT_EQ(normaliser.mul()[v], from_hex(ref["normaliser"]["norm_mul"][v])) << v;
        EXPECT_EQ(normaliser.add()[v], from_hex(ref["normaliser"]["norm_add"][v])) << v;
    }
    int samples = 0;
    for (const auto& [rollout, info] : ref["rollouts"].items()) {
        SamplerOptions options;
        options.rollout = std::stoi(rollout);
        const auto offsets = window_offsets(options);
        EXPECT_EQ(offsets, info["relative_date_indices"].get<std::vector<std::int64_t>>());
        for (const auto& sample : info["samples"]) {
            const std::int64_t anchor = sample["anchor"][1];
            std::vector<std::int64_t> dates;
            for (const auto o : offsets) dates.push_back(anchor + o);
            EXPECT_EQ(dates, sample["positions"].get<std::vector<std::int64_t>>());
            auto x = dataset.read_sample(dates);
            EXPECT_EQ(x.shape(), sample["shape"].get<std::vector<std::int64_t>>());
            EXPECT_EQ(sha256(x.data(), x.values().size() * 4), sample["sha256"])
                << "rollout " << rollout << " anchor " << anchor;
            // In place over every column, as anemoi's pre-processor: x * mul, then + add.
            for (std::size_t i = 0; i < x.values().size(); ++i) {
                const auto v = i % width;
                const float scaled = x.data()[i] * normaliser.mul()[v];
                x.data()[i] = scaled + normaliser.add()[v];
            }
            EXPECT_EQ(sha256(x.data(), x.values().size() * 4), sample["normalised"]["sha256"])
                << "rollout " << rollout << " anchor " << anchor;
            ++samples;
        }
    }
    EXPECT_GE(samples, 8);
}

TEST(Loader, BatchesFollowTheSamplerAndDependOnTheStepAlone) {
    const auto store = kStores / "o16.zarr";
    const AnemoiDataset dataset(store);
    LoaderOptions options;
    options.batch = 2;
    options.sampler.rollout = 1;
    options.variables = {"z_500", "2t", "lsm"};
    options.mul = {0.5f, 0.25f, 1.0f};
    options.add = {-1.0f, 2.0f, 0.0f};
    options.threads = 2;
    // One worker's stream over three epochs, as the sampler gives it.
    const auto anchors = usable_anchors(static_cast<std::int64_t>(dataset.dates().size()),
                                        dataset.missing_indices(), options.sampler);
    WorkerSampler sampler(anchors, options.sampler);
    std::vector<std::int64_t> stream;
    for (int e = 0; e < 3; ++e) {
        const auto epoch = sampler.next_epoch();
        stream.insert(stream.end(), epoch.begin(), epoch.end());
    }
    std::vector<std::size_t> columns;
    for (const auto& name : options.variables) columns.push_back(dataset.variable_index(name));
    auto expected = [&](std::int64_t step) {
        std::vector<float> values;
        for (int b = 0; b < 2; ++b) {
            const auto anchor = stream[static_cast<std::size_t>(step * 2 + b)];
            const std::vector<std::int64_t> dates = {anchor - 1, anchor, anchor + 1};
            const auto x = dataset.read_sample(dates, columns);
            for (std::size_t i = 0; i < x.values().size(); ++i) {
                const float scaled = x.data()[i] * options.mul[i % 3];
                values.push_back(scaled + options.add[i % 3]);
            }
        }
        return values;
    };
    BatchLoader loader(store, options);
    EXPECT_EQ(loader.anchors(), 5);
    for (const std::int64_t step : {0, 1, 2, 6, 3, 4}) {  // 6 then 3: a jump and a way back
        const auto batch = loader.batch(step);
        EXPECT_EQ(batch.shape(), (std::vector<std::int64_t>{2, 3, 1, 1600, 3}));
        const auto values = batch.values();
        EXPECT_EQ(std::vector<float>(values.begin(), values.end()), expected(step))
            << "step " << step;
        EXPECT_EQ(loader.anchors_of(step),
                  (std::vector<std::int64_t>{stream[static_cast<std::size_t>(step * 2)],
                                             stream[static_cast<std::size_t>(step * 2 + 1)]}));
    }
    // A window longer than any run of present dates is refused by name.
    options.sampler.rollout = 8;
    const auto message = boreas::testing_support::error_of([&] { BatchLoader(store, options); });
    EXPECT_NE(message.find("has no window of 10 dates"), std::string::npos) << message;
}

// Jumping away from a step while its batch is being read, then straight back to it: the batch
// abandoned by the jump is still in flight and must not count as the step's batch under way
// (the caller then waited for a batch that was never prepared). Many quick round trips, each
// batch compared with the one read first.
TEST(Loader, JumpingBackWhileTheAbandonedBatchIsReadGivesTheBatch) {
    LoaderOptions options;
    options.batch = 2;
    options.sampler.rollout = 1;
    options.variables = {"z_500", "2t", "lsm"};
    options.mul = {1.0f, 1.0f, 1.0f};
    options.add = {0.0f, 0.0f, 0.0f};
    options.threads = 2;
    options.queue = 3;
    // The bug hung the caller: a watchdog turns a hang into a failure with the reason.
    static std::atomic<bool> finished{false};
    std::thread([] {
        for (int i = 0; i < 600 && !finished; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (!finished) {
            std::fprintf(stderr, "FAILED: loader.batch() hung after a jump back (60 s)\n");
            std::_Exit(1);
        }
    }).detach();
    BatchLoader loader(kStores / "o16.zarr", options);
    std::vector<std::vector<float>> first(3);
    for (std::int64_t step = 0; step < 3; ++step) {
        const auto batch = loader.batch(step);
        first[static_cast<std::size_t>(step)].assign(batch.values().begin(), batch.values().end());
    }
    for (int round = 0; round < 200; ++round) {
        (void)loader.batch(0);  // the queue reads ahead: steps 1 and 2 are in flight
        (void)loader.batch(9);  // abandons them
        const std::int64_t back = 1 + round % 2;
        const auto batch = loader.batch(back);
        ASSERT_EQ(std::vector<float>(batch.values().begin(), batch.values().end()),
                  first[static_cast<std::size_t>(back)])
            << "round " << round;
    }
    finished = true;
}

}  // namespace
