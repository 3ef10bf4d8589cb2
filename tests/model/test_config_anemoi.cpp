// anemoi's own model configs (anemoi-training 0.16.0, verbatim) read by Boreas: accepted as
// written, no silent defaults for settings that change the numbers, unsupported values refused.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "boreas/model/config.hpp"
#include "boreas/model/model.hpp"
#include "support/test_support.hpp"

using boreas::testing_support::error_of;

namespace {

const std::filesystem::path kConfigs = std::filesystem::path(BOREAS_TEST_DATA) / "config";

/// anemoi's model config under `model:`, with the data and training sections anemoi-training
/// would compose around it.
YAML::Node full_config(const std::string& kind) {
    std::ifstream in(kConfigs / ("anemoi-training-0.16.0-" + kind + ".yaml"));
    std::stringstream text;
    text << in.rdbuf();
    YAML::Node root;
    root["model"] = YAML::Load(text.str());
    root["data"] = YAML::Load(
        "{variables: [z_500, t_850, 2t, sp, lsm, cos_latitude, tp, cp], forcing: [lsm, "
        "cos_latitude], "
        "diagnostic: [tp, cp], timestep: 6h, frequency: 6h}");
    root["training"]["multistep_input"] = 2;
    root["graph"] = YAML::Load("{data_grid: O16, hidden_grid: TRI2}");
    return root;
}

std::string emit(const YAML::Node& node) {
    YAML::Emitter out;
    out << node;
    return out.c_str();
}

/// Removes (value empty) or sets a dotted key in a copy of the tree.
YAML::Node edited(const YAML::Node& original, const std::string& path,
                  const std::string& value = "") {
    YAML::Node root = YAML::Clone(original);
    std::vector<std::string> keys;
    std::stringstream parts(path);
    for (std::string key; std::getline(parts, key, '.');) keys.push_back(key);
    std::vector<YAML::Node> chain{root};
    for (std::size_t i = 0; i + 1 < keys.size(); ++i) chain.push_back(chain.back()[keys[i]]);
    if (value.empty())
        chain.back().remove(keys.back());
    else
        chain.back()[keys.back()] = YAML::Load(value);
    return root;
}

}  // namespace

TEST(AnemoiConfig, ReadsAnemoisModelConfigsUnchanged) {
    for (const std::string kind : {"transformer", "graphtransformer"}) {
        const auto config = boreas::model::parse_config(emit(full_config(kind)), kind);
        EXPECT_EQ(config.num_channels, 1024);
        EXPECT_EQ(config.processor.num_layers, 16);
        EXPECT_EQ(config.processor.num_chunks, 4);
        EXPECT_EQ(config.processor.num_heads, 16);
        EXPECT_EQ(config.encoder.num_heads, 16);
        EXPECT_TRUE(config.latent_skip);
        EXPECT_EQ(config.trainable.data2hidden, 8);
        EXPECT_EQ(config.bounding.size(), 1u);
        if (kind == "transformer") {
            EXPECT_EQ(config.processor.type, boreas::model::ProcessorType::transformer);
            EXPECT_EQ(config.processor.window_size, 512);
        } else {
            EXPECT_EQ(config.processor.type, boreas::model::ProcessorType::graph_transformer);
            EXPECT_EQ(config.trainable.hidden2hidden, 8);
        }
        std::string accepted;
        for (const auto& line : config.accepted) accepted += line + "\n";
        EXPECT_NE(accepted.find("model.encoder.graph_attention_backend = triton"),
                  std::string::npos)
            << accepted;
        EXPECT_NE(accepted.find("model.processor.gradient_checkpointing = True"), std::string::npos)
            << accepted;
        EXPECT_NE(accepted.find("model.compile"), std::string::npos) << accepted;
    }
}

TEST(AnemoiConfig, EverySettingThatChangesTheNumbersIsRequired) {
    const std::vector<std::string> attention = {
        "model.processor.num_heads", "model.encoder.num_heads", "model.decoder.num_heads"};
    std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
        {"transformer", attention},
        {"graphtransformer", attention},
        {"gnn",
         {"model.trainable_parameters.hidden2hidden", "model.processor.mlp_extra_layers",
          "model.encoder.mlp_extra_layers", "model.decoder.mlp_extra_layers"}},
    };
    kinds[0].second.push_back("model.processor.window_size");
    kinds[1].second.push_back("model.trainable_parameters.hidden2hidden");
    const std::vector<std::string> common = {"model.num_channels",
                                             "model.model.latent_skip",
                                             "model.processor._target_",
                                             "model.processor.num_layers",
                                             "model.processor.num_chunks",
                                             "model.processor.mlp_hidden_ratio",
                                             "model.encoder.mlp_hidden_ratio",
                                             "model.decoder.mlp_hidden_ratio",
                                             "model.trainable_parameters.data",
                                             "model.trainable_parameters.hidden",
                                             "model.trainable_parameters.data2hidden",
                                             "model.trainable_parameters.hidden2data",
                                             "model.bounding",
                                             "training.multistep_input",
                                             "data.forcing",
                                             "data.diagnostic"};
    for (const auto& [kind, specific] : kinds) {
        auto keys = common;
        keys.insert(keys.end(), specific.begin(), specific.end());
        const auto base = full_config(kind);
        for (const auto& key : keys) {
            const auto message =
                error_of([&] { boreas::model::parse_config(emit(edited(base, key)), kind); });
            const auto leaf = key.substr(key.rfind('.') + 1);
            EXPECT_NE(message.find(leaf), std::string::npos)
                << kind << ": removing " << key << ": '" << message << "'";
        }
    }
}

TEST(AnemoiConfig, ValuesBoreasCannotHonourAreRefusedByName) {
    const auto base = full_config("transformer");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"model.processor.qk_norm", "true"},
        {"model.encoder.qk_norm", "true"},
        {"model.processor.softcap", "0.5"},
        {"model.processor.use_alibi_slopes", "true"},
        {"model.processor.use_rotary_embeddings", "true"},
        {"model.processor.mlp_implementation", "swiglu"},
        {"model.decoder.edge_pre_mlp", "true"},
        {"model.layer_kernels.Linear._target_", "my.Linear"},
        {"model.layer_kernels.Activation._target_", "torch.nn.SiLU"},
        {"model.attributes.edges", "[edge_length]"},
        {"model.attributes.nodes", "[cos_lat]"},
        {"model.residual._target_", "anemoi.models.layers.residual.TruncatedConnection"},
        {"model.output_mask._target_", "anemoi.training.utils.masks.Boolean1DMask"},
        {"model.model._target_", "anemoi.models.models.AnemoiModelEncHierProcDec"},
        {"model.encoder.trainable_size", "3"},
        {"model.processor.flash_kernels", "true"},
        {"training.multistep_output", "2"},
        {"model.processor.activation", "SiLU"},
        {"model.processor.attn_channels", "64"},
    };
    for (const auto& [key, value] : cases) {
        const auto message =
            error_of([&] { boreas::model::parse_config(emit(edited(base, key, value)), "t"); });
        EXPECT_NE(message.find(key.substr(key.find('.') + 1)), std::string::npos)
            << key << "=" << value << ": '" << message << "'";
    }
    // AutocastLayerNorm computes LayerNorm in fp32: accepted.
    EXPECT_NO_THROW(boreas::model::parse_config(
        emit(edited(base, "model.layer_kernels.LayerNorm._target_",
                    "anemoi.models.layers.normalization.AutocastLayerNorm")),
        "t"));
}

TEST(AnemoiConfig, AnemoisFullSizeConfigsRunUnchanged) {
    // anemoi's own model configs at their full size (1024 channels, 16 layers, 16 heads; the GNN
    // 512 channels with GNN mappers) on a small graph: a model is built and runs one step.
    for (const std::string kind : {"transformer", "graphtransformer", "gnn"}) {
        auto root = full_config(kind);
        if (kind == "transformer") root["graph"] = YAML::Load("{data_grid: O16, hidden_grid: O4}");
        const auto config = boreas::model::parse_config(emit(root), kind);
        boreas::model::Model model(config, boreas::model::graph_for(config));
        model.parameters().initialise(3);
        const auto input = boreas::model::synthetic_input(model, 1, 5);
        const auto output = model.forward(input);
        EXPECT_EQ(output.shape(),
                  (std::vector<std::int64_t>{1, 1, 1, model.graph().node_set("data").count(), 6}));
        for (const float v : output.values()) ASSERT_TRUE(std::isfinite(v)) << kind;
    }
}

TEST(AnemoiConfig, ReadsAnemoisGnnConfigWithItsMappers) {
    const auto config = boreas::model::parse_config(emit(full_config("gnn")), "gnn");
    using boreas::model::MapperType;
    EXPECT_EQ(config.num_channels, 512);
    EXPECT_EQ(config.processor.type, boreas::model::ProcessorType::gnn);
    EXPECT_EQ(config.encoder.type, MapperType::gnn);
    EXPECT_EQ(config.decoder.type, MapperType::gnn);
    EXPECT_EQ(config.encoder.mlp_extra_layers, 0);
    EXPECT_EQ(config.decoder.mlp_hidden_ratio, 1.0);
    EXPECT_EQ(config.trainable.hidden2data, 8);
}

TEST(AnemoiConfig, MixedMapperKindsAreRefused) {
    // anemoi's decoder reads what the encoder returns for the data nodes (raw features from a
    // graph transformer, C-wide latents from a GNN): a mixed pair cannot run.
    const auto base = full_config("gnn");
    auto mixed = edited(base, "model.decoder._target_",
                        "anemoi.models.layers.mapper.GraphTransformerBackwardMapper");
    mixed = edited(mixed, "model.decoder.num_heads", "16");
    const auto message = error_of([&] { boreas::model::parse_config(emit(mixed), "gnn"); });
    EXPECT_NE(message.find("model.encoder is a GNN mapper and model.decoder a graph-transformer"),
              std::string::npos)
        << message;
    const auto wrong = error_of([&] {
        boreas::model::parse_config(emit(edited(base, "model.encoder._target_",
                                                "anemoi.models.layers.mapper.GNNBackwardMapper")),
                                    "gnn");
    });
    EXPECT_NE(
        wrong.find("'model.encoder._target_' is 'anemoi.models.layers.mapper.GNNBackwardMapper'"),
        std::string::npos)
        << wrong;
}

TEST(AnemoiConfig, DataTimestepSetsTheTrainingStep) {
    const auto base = full_config("transformer");
    EXPECT_EQ(boreas::model::parse_config(emit(base), "t").timestep_seconds, 6 * 3600);
    EXPECT_EQ(boreas::model::parse_config(emit(edited(base, "data.timestep", "12")), "t")
                  .timestep_seconds,
              12 * 3600);  // bare numbers are hours, as anemoi reads them
    EXPECT_EQ(
        boreas::model::parse_config(emit(edited(base, "data.timestep")), "t").timestep_seconds,
        0);  // not given: the trainer's default (anemoi's 6 h)
    const auto message = error_of(
        [&] { boreas::model::parse_config(emit(edited(base, "data.timestep", "soon")), "t"); });
    EXPECT_NE(message.find("data.timestep is 'soon'"), std::string::npos) << message;
}
