// Bad input to the model gets a clear error naming the tensor or key and what was expected.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "boreas/io/safetensors.hpp"
#include "boreas/model/model.hpp"
#include "support/test_support.hpp"

namespace {

using boreas::Tensor;
using boreas::testing_support::error_of;
using boreas::testing_support::temp_path;

boreas::model::Model tiny_model() {
    auto config = boreas::model::load_config("tiny");
    boreas::model::Model model(config, boreas::model::graph_for(config));
    model.parameters().initialise(7, 0.5f);
    return model;
}

Tensor tiny_input(const boreas::model::Model& model, std::int64_t batch = 1) {
    const auto nodes = model.graph().node_set("data").count();
    Tensor input({batch, 2, 1, nodes, 6});
    for (std::int64_t i = 0; i < input.numel(); ++i) input.data()[i] = std::sin(0.01f * static_cast<float>(i));
    return input;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(ModelErrors, UnknownConfigKeyIsNamed) {
    auto message = error_of([] { boreas::model::load_config("tiny", {"model.processor.num_layer=3"}); });
    EXPECT_TRUE(contains(message, "unknown config key 'model.processor.num_layer'")) << message;
    message = error_of([] { boreas::model::load_config("tiny", {"model.num_channels=thirty"}); });
    EXPECT_TRUE(contains(message, "'model.num_channels' must be an integer")) << message;
    message = error_of([] { boreas::model::load_config("tiny", {"model.num_channels=30"}); });
    EXPECT_TRUE(contains(message, "must be a multiple of")) << message;
    message = error_of([] { boreas::model::load_config("no-such-config"); });
    EXPECT_TRUE(contains(message, "unknown config 'no-such-config'")) << message;
    message = error_of([] { boreas::model::load_config("tiny", {"data.forcing=[lsm, snow]"}); });
    EXPECT_TRUE(contains(message, "data.forcing names 'snow'")) << message;
}

TEST(ModelErrors, MissingExtraAndMisshapenWeights) {
    auto model = tiny_model();
    const auto path = temp_path("tiny.weights.safetensors");
    model.parameters().save(path);
    auto other = tiny_model();
    EXPECT_NO_THROW(other.parameters().load(path));

    // Rewrite the file without one tensor, with an extra one, with a wrong shape, a wrong dtype.
    boreas::io::SafetensorsReader reader(path);
    auto rewrite = [&](const std::string& drop, const std::string& add, bool reshape, bool retype) {
        boreas::io::SafetensorsWriter writer;
        for (const auto& [name, info] : reader.tensors()) {
            if (name == drop) continue;
            auto values = reader.view<float>(name);
            auto shape = info.shape;
            if (reshape && name == drop + "#") shape = {static_cast<std::int64_t>(values.size())};
            if (retype && name == "encoder.data.emb_nodes_src.bias") {
                std::vector<double> as_double(values.begin(), values.end());
                writer.add<double>(name, shape, as_double);
                continue;
            }
            if (reshape && name == "encoder.data.emb_nodes_src.weight")
                shape = {shape[1], shape[0]};
            writer.add<float>(name, shape, values);
        }
        if (!add.empty()) {
            std::vector<float> one = {1};
            writer.add<float>(add, {1}, one);
        }
        const auto out = temp_path("edited.safetensors");
        writer.write(out);
        return error_of([&] { tiny_model().parameters().load(out); });
    };
    auto message = rewrite("decoder.data.node_data_extractor.1.weight", "", false, false);
    EXPECT_TRUE(contains(message, "lack 1 tensor(s) the model needs: decoder.data.node_data_extractor.1.weight"))
        << message;
    message = rewrite("", "encoder.data.unknown", false, false);
    EXPECT_TRUE(contains(message, "does not use: encoder.data.unknown")) << message;
    message = rewrite("", "", true, false);
    EXPECT_TRUE(contains(message, "tensor 'encoder.data.emb_nodes_src.weight' has shape [18, 32], expected [32, 18]"))
        << message;
    message = rewrite("", "", false, true);
    EXPECT_TRUE(contains(message, "tensor 'encoder.data.emb_nodes_src.bias' has dtype F64, expected F32"))
        << message;
}

TEST(ModelErrors, WeightsForAnotherGraphAreRefused) {
    // Trainable node and edge tensors are sized by the graph: weights for O16 -> O4 do not fit
    // O32 -> O4, and the error names the tensor.
    auto model = tiny_model();
    const auto path = temp_path("tiny-o16.weights.safetensors");
    model.parameters().save(path);
    auto config = boreas::model::load_config("tiny", {"graph.data_grid=O32"});
    boreas::model::Model bigger(config, boreas::model::graph_for(config));
    const auto message = error_of([&] { bigger.parameters().load(path); });
    // Tensors are checked in name order; the first sized by the data grid is the decoder's edges.
    EXPECT_TRUE(contains(message, "tensor 'decoder_graph_provider.data.trainable.trainable' has "
                                  "shape [4800, 2], expected [15744, 2]"))
        << message;
}

TEST(ModelErrors, InputShapeAndNaN) {
    const auto model = tiny_model();
    Tensor wrong({1, 2, 1, 100, 6});
    auto message = error_of([&] { model.forward(wrong); });
    EXPECT_TRUE(contains(message, "input tensor has shape [1, 2, 1, 100, 6], expected [batch, 2, 1, 1600, 6]"))
        << message;
    Tensor input = tiny_input(model);
    input.data()[123] = std::numeric_limits<float>::quiet_NaN();
    message = error_of([&] { model.forward(input); });
    EXPECT_TRUE(contains(message, "non-finite value at flat index 123")) << message;
    boreas::model::ForwardOptions options;
    options.allow_nan = true;
    EXPECT_NO_THROW(model.forward(input, options));
}

TEST(ModelErrors, GraphWithoutProcessorEdges) {
    // A graph-transformer processor needs hidden_to_hidden edges; the tiny graph (O4) has none.
    auto transformer = boreas::model::load_config("tiny");
    auto graph = boreas::model::graph_for(transformer);
    auto config = boreas::model::load_config(
        "tiny", {"model.processor._target_=anemoi.models.layers.processor.GraphTransformerProcessor"});
    const auto message = error_of([&] { boreas::model::Model model(config, graph); });
    EXPECT_TRUE(contains(message, "has a graph processor but the graph has no 'hidden_to_hidden' edges"))
        << message;
    // Building its graph from the config asks for multi-scale edges, which need a TRI grid.
    const auto built = error_of([&] { boreas::model::graph_for(config); });
    EXPECT_TRUE(contains(built, "need an icosahedral hidden grid")) << built;
}

TEST(ModelForward, RepeatableAtAFixedThreadCount) {
    const auto model = tiny_model();
    const Tensor input = tiny_input(model, 2);
    const Tensor first = model.forward(input);
    const Tensor second = model.forward(input);
    EXPECT_TRUE(std::equal(first.values().begin(), first.values().end(), second.values().begin()));
}

TEST(ModelForward, BatchElementsAreIndependent) {
    // Two batch elements with different inputs give the same result as two runs of one.
    const auto model = tiny_model();
    Tensor both = tiny_input(model, 2);
    const auto half = both.numel() / 2;
    for (std::int64_t i = half; i < both.numel(); ++i) both.data()[i] *= -0.5f;
    const Tensor out_both = model.forward(both);
    for (int b = 0; b < 2; ++b) {
        Tensor single({1, 2, 1, both.dim(3), 6});
        std::copy(both.data() + b * half, both.data() + (b + 1) * half, single.data());
        const Tensor out = model.forward(single);
        for (std::int64_t i = 0; i < out.numel(); ++i)
            ASSERT_NEAR(out.values()[i], out_both.values()[b * out.numel() + i],
                        1e-6 + 1e-5 * std::abs(out.values()[i])) << "batch " << b << " index " << i;
    }
}

}  // namespace

TEST(ModelErrors, WeightsOnAGraphWithAnotherEdgeOrderAreRefused) {
    // Trainable edge rows follow the edge order: the same edges in another order inside one
    // destination are another model. Saved weights carry their graph's fingerprint.
    const auto model = tiny_model();
    const auto path = temp_path("fingerprinted.safetensors");
    model.save_weights(path);
    auto config = boreas::model::load_config("tiny");
    boreas::model::Model same(config, boreas::model::graph_for(config));
    EXPECT_NO_THROW(same.load_weights(path));

    auto reordered = std::make_shared<boreas::graphs::Graph>(model.graph());
    auto& edges = reordered->edges.at("data_to_hidden");
    std::int64_t dst = 0;  // a destination with at least two incoming edges
    while (edges.dst_offsets[dst + 1] - edges.dst_offsets[dst] < 2) ++dst;
    const auto a = edges.dst_offsets[dst], b = a + 1;
    std::swap(edges.src[a], edges.src[b]);
    std::swap(edges.perm[a], edges.perm[b]);
    std::swap(edges.edge_length[a], edges.edge_length[b]);
    std::swap(edges.edge_dirs[2 * a], edges.edge_dirs[2 * b]);
    std::swap(edges.edge_dirs[2 * a + 1], edges.edge_dirs[2 * b + 1]);
    boreas::model::Model other(config, reordered);
    const auto message = error_of([&] { other.load_weights(path); });
    EXPECT_TRUE(
        contains(message, "were trained on graph " + boreas::graphs::fingerprint(model.graph())))
        << message;
    EXPECT_TRUE(contains(message, "edge order")) << message;
}
