// Boreas' training step against anemoi-training 0.16 / PyTorch autograd on the tiny model
// (tests/data/train, made by tools/reference/make_training_fixtures.py): loss, every parameter
// gradient for rollout 1 and 2, the graph-transformer processor's gradients, and AdamW.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "boreas/io/safetensors.hpp"
#include "boreas/train/loss.hpp"
#include "boreas/train/optimizer.hpp"
#include "boreas/train/trainer.hpp"
#include "support/sha256.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using boreas::Tensor;
const fs::path kData = boreas::testing_support::test_data_dir();
const fs::path kRoot = kData.parent_path().parent_path();

Tensor read(const boreas::io::SafetensorsReader& file, const std::string& name) {
    const auto values = file.view<float>(name);
    return Tensor(file.info(name).shape, std::vector<float>(values.begin(), values.end()));
}

boreas::model::Model load_model(const std::string& variant) {
    auto config = boreas::model::load_config((kData / "model" / (variant + ".yaml")).string());
    config.graph.file = (kRoot / config.graph.file).string();
    boreas::model::Model model(config, boreas::model::graph_for(config));
    model.load_weights(boreas::testing_support::complete_weights(variant));
    model.set_device(boreas::testing_support::test_device());
    return model;
}

/// [B, T + R, 1, N, 8]: the inputs of transformer.io (dataset columns minus diagnostics), the
/// targets (outputs) and the refreshed forcings of batch.safetensors.
Tensor assemble_batch(int rollout) {
    const boreas::io::SafetensorsReader io(kData / "model" / "transformer.io.safetensors");
    const boreas::io::SafetensorsReader batch_file(kData / "train" / "batch.safetensors");
    const Tensor input = read(io, "input");              // [2, 2, 1, 1600, 6]: dataset 0..5
    const Tensor targets = read(batch_file, "targets");  // [2, 2, 1, 1600, 6]: dataset 0,1,2,3,6,7
    const Tensor forcings = read(batch_file, "forcings");  // [2, 1, 1, 1600, 2]: dataset 4,5 at T
    const std::int64_t b_count = 2, steps = 2, nodes = 1600, vars = 8, times = steps + rollout;
    const int outputs[6] = {0, 1, 2, 3, 6, 7};
    Tensor batch({b_count, times, 1, nodes, vars});
    for (std::int64_t b = 0; b < b_count; ++b)
        for (std::int64_t n = 0; n < nodes; ++n) {
            for (std::int64_t t = 0; t < steps; ++t)
                for (int v = 0; v < 6; ++v)
                    batch.data()[((b * times + t) * nodes + n) * vars + v] =
                        input.data()[((b * steps + t) * nodes + n) * 6 + v];
            for (std::int64_t r = 0; r < rollout; ++r) {
                float* row = batch.data() + ((b * times + steps + r) * nodes + n) * vars;
                for (int v = 0; v < 6; ++v)
                    row[outputs[v]] = targets.data()[((b * 2 + r) * nodes + n) * 6 + v];
                if (r == 0)
                    for (int f = 0; f < 2; ++f)
                        row[4 + f] = forcings.data()[(b * nodes + n) * 2 + f];
            }
        }
    return batch;
}

/// Max over the tensor of |ours - anemoi|, relative to the tensor's largest anemoi value.
double relative_to_max(const Tensor& ours, std::span<const float> reference) {
    double max_ref = 0, max_diff = 0;
    for (std::size_t i = 0; i < reference.size(); ++i) {
        max_ref = std::max(max_ref, static_cast<double>(std::abs(reference[i])));
        max_diff =
            std::max(max_diff, static_cast<double>(std::abs(ours.values()[i] - reference[i])));
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

void compare_gradients(const std::string& variant, const std::string& file, int rollout) {
    auto model = load_model(variant);
    const auto step = boreas::train::rollout_step(model, assemble_batch(rollout), rollout, {});
    const boreas::io::SafetensorsReader grads(kData / "train" / file);
    const auto meta = nlohmann::json::parse(grads.metadata().at("boreas"));
    const double loss = meta.at("loss").get<double>();
    EXPECT_NEAR(step.loss, loss, 1e-5 * std::abs(loss)) << variant << " R=" << rollout;
    int compared = 0;
    double worst = 0;
    for (const auto& [name, info] : grads.tensors()) {
        if (name.rfind("grad.", 0) != 0) continue;
        const std::string parameter = name.substr(5);
        const auto reference = grads.view<float>(name);
        const auto& ours = step.gradients.parameters.at(parameter);
        ASSERT_EQ(static_cast<std::size_t>(ours.numel()), reference.size()) << parameter;
        // A key bias cancels in the softmax: its true gradient is 0 and both sides hold float
        // noise; compare it absolutely.
        if (parameter.find("lin_key.bias") != std::string::npos) {
            for (float g : ours.values()) EXPECT_LT(std::abs(g), 1e-6) << parameter;
            continue;
        }
        const double error = relative_to_max(ours, reference);
        EXPECT_LE(error, 1e-4) << variant << " R=" << rollout << " " << parameter;
        worst = std::max(worst, error);
        ++compared;
    }
    EXPECT_GE(compared, 20) << variant;
    std::printf("%s R=%d: loss %.9g (anemoi %.9g), %d gradients, worst |diff| / max|grad| %.3g\n",
                variant.c_str(), rollout, step.loss, loss, compared, worst);
}

TEST(TrainReference, TransformerRollout1) {
    compare_gradients("transformer", "transformer.grads.safetensors", 1);
}
TEST(TrainReference, TransformerRollout2) {
    compare_gradients("transformer", "transformer.rollout2.grads.safetensors", 2);
}
TEST(TrainReference, GraphTransformerRollout1) {
    compare_gradients("graphtransformer", "graphtransformer.grads.safetensors", 1);
}

TEST(TrainReference, GnnRollout1) {
    compare_gradients("gnn", "gnn.grads.safetensors", 1);
}

TEST(TrainReference, AdamWTwoSteps) {
    // anemoi's schedule gives step 1 lr 0 (timm warm-up) and step 2 lr 5e-4; both steps see the
    // same gradient because step 1 leaves the weights unchanged.
    auto model = load_model("transformer");
    const boreas::io::SafetensorsReader grads(kData / "train" / "transformer.grads.safetensors");
    const boreas::io::SafetensorsReader after(kData / "train" / "adamw.safetensors");
    const auto meta = nlohmann::json::parse(after.metadata().at("boreas"));
    const auto lrs = meta.at("lrs").get<std::vector<double>>();
    ASSERT_EQ(lrs.size(), 2u);
    int compared = 0;
    for (const auto& name : model.parameters().names()) {
        if (!after.contains("param." + name)) continue;
        const Tensor before = model.parameters().get(name);
        std::vector<float> param(before.values().begin(), before.values().end());
        const auto g = grads.view<float>("grad." + name);
        boreas::train::AdamWState state;
        for (int step = 1; step <= 2; ++step)
            boreas::train::adamw_step(param, g, state, step, lrs[step - 1], {});
        const auto expected = after.view<float>("param." + name);
        double max_delta = 0, max_error = 0;
        for (std::size_t i = 0; i < param.size(); ++i) {
            max_delta = std::max(max_delta,
                                 static_cast<double>(std::abs(expected[i] - before.values()[i])));
            max_error = std::max(max_error, static_cast<double>(std::abs(param[i] - expected[i])));
        }
        // Relative to the update (a few float32 ulps of the weights): weights after one step
        // agree to 1e-5 of their size and to a few percent of the step itself.
        EXPECT_LE(max_error, 1e-5 * 1.0 + 1e-2 * max_delta) << name;
        ++compared;
    }
    EXPECT_GE(compared, 80);
}

TEST(TrainFromDataset, FirstStepLossEqualsAnemoiTraining) {
    // anemoi-training 0.16's first batch from o16.zarr (seed 42, batch 2), normalised by
    // anemoi's normaliser from the store's statistics, and its loss with the transformer
    // fixture's weights (tests/data/datasets/first_step.json,
    // tools/reference/make_dataset_loss_fixture.py) against the loader `train --data` uses.
    std::ifstream in(kData / "datasets" / "first_step.json");
    const auto reference = nlohmann::json::parse(in);
    for (const int rollout : {1, 2}) {
        const auto& want = reference.at("rollouts").at(std::to_string(rollout));
        // The transformer fixture's weights and graph, with the normaliser methods of the
        // built-in tiny config (`train --config tiny`; the fixture's own YAML names none).
        auto config = boreas::model::load_config((kData / "model" / "transformer.yaml").string());
        config.graph.file = (kRoot / config.graph.file).string();
        config.normaliser = boreas::model::load_config("tiny").normaliser;
        boreas::model::Model model(config, boreas::model::graph_for(config));
        model.load_weights(boreas::testing_support::complete_weights("transformer"));
        model.set_device(boreas::testing_support::test_device());
        boreas::train::TrainOptions options;
        options.data = (kData / "datasets" / "o16.zarr").string();
        options.batch = 2;
        options.rollout = rollout;
        options.seed = 42;
        const auto loader = boreas::train::dataset_loader(options, model);
        EXPECT_EQ(loader->anchors_of(0), want.at("anchors").get<std::vector<std::int64_t>>());
        const auto batch = loader->batch(0);
        EXPECT_EQ(batch.shape(), want.at("batch_shape").get<std::vector<std::int64_t>>());
        EXPECT_EQ(boreas::testing_support::sha256(batch.values()), want.at("batch_sha256"))
            << "rollout " << rollout;
        const auto step = boreas::train::rollout_step(model, batch, rollout, {});
        const double loss =
            std::strtod(want.at("loss").at("hex").get<std::string>().c_str(), nullptr);
        EXPECT_NEAR(step.loss, loss, 1e-6 * loss) << "rollout " << rollout;
        // Validation's forward-only rollout: the same loss, per rollout step too.
        const auto validation = boreas::train::rollout_loss(model, batch, rollout, {});
        EXPECT_NEAR(validation.loss, loss, 1e-6 * loss) << "rollout " << rollout;
        ASSERT_EQ(validation.step_losses.size(), step.step_losses.size());
        for (std::size_t r = 0; r < step.step_losses.size(); ++r)
            EXPECT_NEAR(validation.step_losses[r], step.step_losses[r], 1e-6 * step.step_losses[r]);
        EXPECT_TRUE(validation.gradients.parameters.empty());
        RecordProperty("loss_rollout_" + std::to_string(rollout),
                       fmt::format("{:.9g} vs anemoi {:.9g}", step.loss, loss));
    }
}

}  // namespace
