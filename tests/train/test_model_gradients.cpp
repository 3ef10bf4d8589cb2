// The model's backward pass against finite differences (along random directions) of its own
// forward, for the transformer and graph-transformer processors and for GNN mappers around the
// GNN processor (tiny fixtures' configs and anemoi-trained-layout weights; the forwards match
// anemoi-models), on every kernel path.
// Boundings are left out here: their kinks (ReLU at 0, clamps) make central differences
// meaningless at the points that sit on them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "boreas/io/safetensors.hpp"
#include "boreas/model/model.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using boreas::Tensor;
const fs::path kData = BOREAS_TEST_DATA;
const fs::path kRoot = kData.parent_path().parent_path();

boreas::model::Model make_model(const std::string& variant, std::vector<std::string> overrides) {
    auto config =
        boreas::model::load_config((kData / "model" / (variant + ".yaml")).string(), overrides);
    config.graph.file = (kRoot / config.graph.file).string();
    boreas::model::Model model(config, boreas::model::graph_for(config));
    model.parameters().initialise(11, 0.3f);  // non-zero trainable tensors and LayerNorm affines
    return model;
}

Tensor input_for(const boreas::model::Model& model, int batch) {
    return boreas::model::synthetic_input(model, batch, 5);
}

double weighted_sum(const Tensor& y, const std::vector<float>& r) {
    double sum = 0;
    for (std::int64_t i = 0; i < y.numel(); ++i) sum += static_cast<double>(y.values()[i]) * r[i];
    return sum;
}

class ModelGradients : public testing::TestWithParam<std::string> {};

TEST_P(ModelGradients, TrainingForwardEqualsInference) {
    auto model = make_model(GetParam(), {});
    const Tensor input = input_for(model, 2);
    const Tensor reference = model.forward(input);
    auto tape = std::make_unique<boreas::model::TrainingTape>();
    const Tensor trained = model.forward_train(input, *tape);
    ASSERT_EQ(reference.numel(), trained.numel());
    for (std::int64_t i = 0; i < reference.numel(); ++i)
        ASSERT_NEAR(trained.values()[i], reference.values()[i],
                    1e-5 * (1 + std::abs(reference.values()[i])))
            << "index " << i;
}

TEST_P(ModelGradients, MatchFiniteDifferences) {
    auto model = make_model(GetParam(), {"model.bounding=[]"});
    Tensor input = input_for(model, 2);
    std::mt19937 generator(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto tape = std::make_unique<boreas::model::TrainingTape>();
    const Tensor output = model.forward_train(input, *tape);
    std::vector<float> r(static_cast<std::size_t>(output.numel()));
    for (auto& x : r) x = normal(generator);
    auto grads = model.zero_gradients(input);
    model.backward(*tape, Tensor(output.shape(), r), grads);

    auto loss = [&] { return weighted_sum(model.forward(input), r); };
    auto check = [&](const std::string& name, std::span<float> values,
                     const std::vector<float>& analytic) {
        boreas::testing_support::check_directional_derivatives(name, values, analytic, loss, 2, 1);
    };
    auto& store = model.parameters();
    int checked = 0;
    for (const auto& name : store.names()) {
        // A sample across every kind of parameter: embeddings, attention, edge projections,
        // LayerNorms, MLPs, the extractor and all trainable node and edge tensors.
        const bool wanted = name.find("trainable") != std::string::npos ||
                            name.find("lin_edge.weight") != std::string::npos ||
                            name.find("lin_query.weight") != std::string::npos ||
                            name.find("lin_value.bias") != std::string::npos ||
                            name.find("lin_value.weight") != std::string::npos ||
                            name.find("attention.lin_q.weight") != std::string::npos ||
                            name.find("attention.lin_k.weight") != std::string::npos ||
                            name.find("layer_norm_attention_src.weight") != std::string::npos ||
                            name.find("mlp.mlp.2.weight") != std::string::npos ||
                            name.find("emb_nodes") != std::string::npos ||
                            name.find("emb_edges.mlp.0.weight") != std::string::npos ||
                            name.find("edge_mlp.mlp.0.weight") != std::string::npos ||
                            name.find("node_mlp.mlp.0.weight") != std::string::npos ||
                            name.find("node_mlp.layer_norm.weight") != std::string::npos ||
                            name.find("node_data_extractor") != std::string::npos;
        if (!wanted) continue;
        auto& tensor = const_cast<Tensor&>(store.get(name));
        const auto& grad = grads.parameters.at(name);
        std::vector<float> analytic(grad.values().begin(), grad.values().end());
        check(name, tensor.storage(), analytic);
        ++checked;
    }
    EXPECT_GE(checked, 12);
    // A key bias shifts every score of a destination by the same q.b: softmax cancels it, so its
    // gradient is zero exactly (finite differences only see float noise there).
    for (const auto& name : store.names()) {
        if (name.find("lin_key.bias") == std::string::npos) continue;
        const auto& bias_grad = grads.parameters.at(name);
        const auto& weight_grad = grads.parameters.at(name.substr(0, name.size() - 4) + "weight");
        double bias_max = 0, weight_max = 0;
        for (float g : bias_grad.values())
            bias_max = std::max(bias_max, static_cast<double>(std::abs(g)));
        for (float g : weight_grad.values())
            weight_max = std::max(weight_max, static_cast<double>(std::abs(g)));
        EXPECT_LT(bias_max, 1e-3 * weight_max + 1e-6) << name;
        ++checked;
    }
    std::vector<float> d_input(grads.input.values().begin(), grads.input.values().end());
    check("input", input.storage(), d_input);
}

TEST_P(ModelGradients, ActivationCheckpointingChangesNothing) {
    // Recomputation runs the same kernels on the same values: gradients are bit-identical (the
    // GNN processor's chunks restart from their saved edge states too).
    auto model = make_model(GetParam(), {});
    const Tensor input = input_for(model, 2);
    auto gradients = [&](bool checkpointing, bool drop = false) {
        boreas::model::TrainingTape tape;
        const Tensor output = model.forward_train(input, tape, checkpointing);
        if (drop) tape.drop_recomputable();  // as a rollout does: backward recomputes the decoder
        Tensor d(output.shape());
        for (std::int64_t i = 0; i < d.numel(); ++i)
            d.data()[i] = std::sin(0.37f * static_cast<float>(i));
        auto grads = model.zero_gradients(input);
        model.backward(tape, d, grads);
        return grads;
    };
    const auto plain = gradients(false);
    for (const bool drop : {false, true}) {
        const auto recomputed = gradients(true, drop);
        for (const auto& [name, grad] : plain.parameters) {
            const auto& other = recomputed.parameters.at(name);
            EXPECT_TRUE(
                std::equal(grad.values().begin(), grad.values().end(), other.values().begin()))
                << name << (drop ? " (decoder recomputed)" : "");
        }
        EXPECT_TRUE(std::equal(plain.input.values().begin(), plain.input.values().end(),
                               recomputed.input.values().begin()));
    }
}

TEST_P(ModelGradients, ChunkedDecoderMatchesWhole) {
    // Under checkpointing a decoder with num_chunks > 1 trains chunk by chunk (recomputed in
    // backward, its chunks' k|v gradients summed): the same gradients as the whole decoder kept
    // on the tape, up to the order of the sums.
    const auto gradients = [&](bool checkpointing, std::vector<std::string> overrides) {
        auto model = make_model(GetParam(), std::move(overrides));
        const Tensor input = input_for(model, 2);
        boreas::model::TrainingTape tape;
        const Tensor output = model.forward_train(input, tape, checkpointing);
        Tensor d(output.shape());
        for (std::int64_t i = 0; i < d.numel(); ++i)
            d.data()[i] = std::sin(0.37f * static_cast<float>(i));
        auto grads = model.zero_gradients(input);
        model.backward(tape, d, grads);
        return std::make_pair(output, std::move(grads));
    };
    const auto [whole_output, whole] = gradients(false, {});
    const auto [chunked_output, chunked] = gradients(true, {"model.decoder.num_chunks=3"});
    for (std::int64_t i = 0; i < whole_output.numel(); ++i)
        ASSERT_NEAR(chunked_output.values()[i], whole_output.values()[i],
                    1e-6 * (1 + std::abs(whole_output.values()[i])))
            << "output " << i;
    // Per tensor 1e-5 of its largest gradient, plus 1e-6 of the largest of all: the key biases'
    // gradients are zero but for rounding (softmax is shift-invariant), and their rounding
    // differs with the order of the sums.
    double overall = 0;
    for (const auto& [name, grad] : whole.parameters)
        for (const float v : grad.values()) overall = std::max(overall, std::abs(double{v}));
    const auto near = [&](const Tensor& a, const Tensor& b, const std::string& what) {
        double scale = 0;
        for (const float v : b.values()) scale = std::max(scale, std::abs(static_cast<double>(v)));
        for (std::int64_t i = 0; i < a.numel(); ++i)
            ASSERT_NEAR(a.values()[i], b.values()[i], 1e-5 * scale + 1e-6 * overall)
                << what << " " << i;
    };
    for (const auto& [name, grad] : whole.parameters) near(chunked.parameters.at(name), grad, name);
    near(chunked.input, whole.input, "input");
}

INSTANTIATE_TEST_SUITE_P(Processors, ModelGradients,
                         testing::Values("transformer", "graphtransformer", "gnn_mappers"));

}  // namespace
