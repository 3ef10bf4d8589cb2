// anemoi inference checkpoints written by anemoi-training 0.16.0's own checkpoint callback
// (anemoi-models 0.18.0; tools/reference/make_checkpoint_fixtures.py): Boreas reads them with no
// config, graph or weights file and matches anemoi's predict_step.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <ostream>

#include "boreas/io/safetensors.hpp"
#include "boreas/model/checkpoint.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using boreas::Tensor;
using boreas::testing_support::error_of;

namespace {

const fs::path kData = fs::path(BOREAS_TEST_DATA) / "checkpoint";

Tensor tensor_of(const boreas::io::SafetensorsReader& file, const std::string& name) {
    const auto values = file.view<float>(name);
    return Tensor(file.info(name).shape, std::vector<float>(values.begin(), values.end()));
}

/// predict_step: normalise, forward, denormalise, as anemoi-models' interface does.
Tensor predict(const boreas::model::Checkpoint& checkpoint, Tensor input) {
    const auto model = checkpoint.model();
    const auto normaliser = checkpoint.normaliser();
    auto shape = input.shape();
    shape.insert(shape.begin() + 2, 1);  // [B, T, N, V] -> [B, T, 1, N, V]
    Tensor x(shape, std::vector<float>(input.values().begin(), input.values().end()));
    normaliser.normalise_input(x);
    auto y = model.forward(x);
    normaliser.denormalise_output(y);
    return y;
}

}  // namespace

/// A checkpoint and where its expected predict_step output lives.
struct Case {
    std::string checkpoint, io_file, output;
};

void PrintTo(const Case& c, std::ostream* out) {
    *out << c.checkpoint;
}

class CheckpointForward : public ::testing::TestWithParam<Case> {};

TEST_P(CheckpointForward, EqualsAnemoisPredictStep) {
    const auto& c = GetParam();
    const std::string name = c.checkpoint;
    const boreas::model::Checkpoint checkpoint(kData / (name + ".ckpt"));
    // The input lives in the transformer's io file (shared: the same grid and variables).
    const boreas::io::SafetensorsReader inputs(kData / "transformer.io.safetensors");
    const boreas::io::SafetensorsReader reference(kData / c.io_file);
    const auto output = predict(checkpoint, tensor_of(inputs, "input"));
    const auto expected = tensor_of(reference, c.output);
    // [B, 1, E, N, V]; anemoi-models 0.3.1's predict_step has no time axis: [B, E, N, V].
    ASSERT_EQ(output.numel(), expected.numel());
    ASSERT_EQ(output.cols(), expected.cols());
    // Per variable: max |error| within 1e-5 of that variable's RMS (the tolerance).
    const auto vars = expected.cols();
    for (std::int64_t v = 0; v < vars; ++v) {
        double squares = 0, worst = 0;
        for (std::int64_t r = 0; r < expected.rows(); ++r) {
            const double e = expected.row(r)[v];
            squares += e * e;
            worst = std::max(worst, std::abs(output.row(r)[v] - e));
        }
        const double rms = std::sqrt(squares / static_cast<double>(expected.rows()));
        EXPECT_LE(worst, 1e-5 * rms) << name << " output variable " << v;
    }
}

// Three anemoi-models releases with different layouts (0.18: graph providers, split q/k/v,
// destination-sorted trainable edges; 0.3.1, the AIFS-single 1.0 release: mapper-owned edge
// buffers in graph order, fused lin_qkv, chunked block names, numbered LayerNorms; 0.9.3, the
// 0.7-0.10 layout: named LayerNorms, split q/k/v, still mapper-owned edges and chunked blocks).
// 0.3.1's transformer output is flash-attn's windowed attention (what the checkpoint computes
// where it was meant to run; on a CPU without flash-attn 0.3.1 silently attends globally).
INSTANTIATE_TEST_SUITE_P(
    Releases, CheckpointForward,
    ::testing::Values(Case{"transformer", "transformer.io.safetensors", "output"},
                      Case{"graphtransformer", "graphtransformer.io.safetensors", "output"},
                      Case{"anemoi-models-0.3.1-transformer", "anemoi-models-0.3.1.io.safetensors",
                           "output_transformer"},
                      Case{"anemoi-models-0.3.1-graphtransformer",
                           "anemoi-models-0.3.1.io.safetensors", "output_graphtransformer"},
                      Case{"anemoi-models-0.9.3-graphtransformer",
                           "anemoi-models-0.9.3.io.safetensors", "output_graphtransformer"}),
    [](const auto& test) {
        std::string name = test.param.checkpoint;
        for (auto& ch : name)
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return name;
    });

class CheckpointReference : public ::testing::TestWithParam<std::string> {};

TEST_P(CheckpointReference, DescribesWhatAnemoisMetadataSays) {
    const std::string name = GetParam();
    const boreas::model::Checkpoint checkpoint(kData / (name + ".ckpt"));
    const auto info = checkpoint.describe();
    EXPECT_EQ(info["archive"], "inference-" + name);
    EXPECT_EQ(info["writer"]["anemoi.models"], "0.18.0");
    EXPECT_EQ(info["timestep"], "6h");
    EXPECT_EQ(info["multistep_input"], 2);
    // anemoi's own count (anemoi.json model.total_parameters via torchinfo) for these models.
    EXPECT_EQ(info["parameters"], name == "transformer" ? 70294 : 76962);
    const std::vector<std::string> roles = {"prognostic", "prognostic", "prognostic", "prognostic",
                                            "forcing",    "forcing",    "diagnostic", "diagnostic"};
    ASSERT_EQ(info["variables"].size(), roles.size());
    for (std::size_t i = 0; i < roles.size(); ++i)
        EXPECT_EQ(info["variables"][i]["role"], roles[i]);
    EXPECT_EQ(info["nodes"]["data"], 1600);
    EXPECT_EQ(info["edges"]["hidden_to_data"], 4800);
    EXPECT_EQ(info["edges"].contains("hidden_to_hidden"), name == "graphtransformer");
    // The checkpoint's graph is used as it is: trainable edge rows follow its providers' order.
    const auto& graph = *checkpoint.graph();
    EXPECT_EQ(graph.node_set("hidden").count(), name == "transformer" ? 208 : 162);
}

INSTANTIATE_TEST_SUITE_P(Anemoi018, CheckpointReference,
                         ::testing::Values("transformer", "graphtransformer"));

TEST(Checkpoint, ReadsTheAifsSingle10Layout) {
    const boreas::model::Checkpoint checkpoint(kData / "anemoi-models-0.3.1-graphtransformer.ckpt");
    const auto info = checkpoint.describe();
    EXPECT_EQ(info["writer"]["anemoi.models"], "0.3.1");
    EXPECT_EQ(info["parameters"], 76962);  // the same model as the 0.18 fixture
    EXPECT_EQ(info["edges"]["hidden_to_hidden"], 1200);
    // 0.3.1 has no latent_skip setting and always adds it.
    EXPECT_TRUE(checkpoint.config().latent_skip);
    // Its edges come in the graph's own order; Boreas sorts them by destination and keeps the
    // permutation, which must equal anemoi 0.18's own sort of the same graph.
    const boreas::model::Checkpoint current(kData / "graphtransformer.ckpt");
    for (const char* set : {"data_to_hidden", "hidden_to_data", "hidden_to_hidden"}) {
        EXPECT_EQ(checkpoint.graph()->edge_set(set).perm, current.graph()->edge_set(set).perm)
            << set;
        EXPECT_EQ(checkpoint.graph()->edge_set(set).src, current.graph()->edge_set(set).src) << set;
    }
}

TEST(Checkpoint, ReadsThe07To010Layout) {
    const boreas::model::Checkpoint checkpoint(kData / "anemoi-models-0.9.3-graphtransformer.ckpt");
    const auto info = checkpoint.describe();
    EXPECT_EQ(info["writer"]["anemoi.models"], "0.9.3");
    EXPECT_EQ(info["parameters"], 76962);
    // Supporting arrays at the top level of supporting_arrays_paths (anemoi-utils before 0.4.43).
    ASSERT_EQ(info["supporting_arrays"].size(), 2u);
    EXPECT_TRUE(info["supporting_arrays"][0]["present"]);
    const boreas::model::Checkpoint current(kData / "graphtransformer.ckpt");
    for (const char* set : {"data_to_hidden", "hidden_to_data", "hidden_to_hidden"})
        EXPECT_EQ(checkpoint.graph()->edge_set(set).perm, current.graph()->edge_set(set).perm) << set;
}

TEST(Checkpoint, RefusesWhatIsNotAnInferenceCheckpoint) {
    fs::remove("/tmp/boreas-pickle-was-executed");
    auto message = error_of([] { boreas::model::Checkpoint(kData / "evil.ckpt"); });
    EXPECT_NE(message.find("not an anemoi inference checkpoint"), std::string::npos) << message;
    EXPECT_FALSE(fs::exists("/tmp/boreas-pickle-was-executed"));
    message = error_of([] { boreas::model::Checkpoint(kData / "state_dict.ckpt"); });
    EXPECT_NE(message.find("state_dict.ckpt: the pickle holds a dict"), std::string::npos)
        << message;
}
