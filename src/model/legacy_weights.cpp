#include "legacy_weights.hpp"

#include <set>
#include <span>
#include <vector>

#include "boreas/core/error.hpp"

namespace boreas::model {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool replace_prefix(std::string& text, const std::string& from, const std::string& to) {
    if (text.rfind(from, 0) != 0) return false;
    text = to + text.substr(from.size());
    return true;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    for (auto pos = text.find(from); pos != std::string::npos;
         pos = text.find(from, pos + to.size()))
        text.replace(pos, from.size(), to);
}

/// Where a current parameter lives in a 0.3.x file.
struct LegacyName {
    std::string name;
    int qkv_part = -1;     ///< 0, 1, 2: the q, k or v rows of a fused lin_qkv
    std::string edge_set;  ///< trainable edge rows to reorder from anemoi's edge order
};

LegacyName legacy_source(const std::string& current, const ModelConfig& config,
                         LegacyLayout layout) {
    const bool v03 = layout == LegacyLayout::v0_3;
    BOREAS_CHECK(config.encoder.type == MapperType::graph_transformer,
                 "weights in the anemoi-models {} layout are supported with graph-transformer "
                 "mappers; this model has GNN mappers",
                 v03 ? "0.3" : "0.7-0.10");
    std::string name = current;
    // Node trainables: 0.3 keeps them on the model; from 0.4 on, under node_attributes (our names).
    if (v03 && name == "node_attributes.trainable_tensors.data.trainable")
        return {"trainable_data.trainable", -1, ""};
    if (v03 && name == "node_attributes.trainable_tensors.hidden.trainable")
        return {"trainable_hidden.trainable", -1, ""};
    // Trainable edges on the mappers and the processor, rows in the graph's edge order.
    if (name == "encoder_graph_provider.data.trainable.trainable")
        return {"encoder.trainable.trainable", -1, "data_to_hidden"};
    if (name == "decoder_graph_provider.data.trainable.trainable")
        return {"decoder.trainable.trainable", -1, "hidden_to_data"};
    if (name == "processor_graph_provider.trainable.trainable")
        return {"processor.trainable.trainable", -1, "hidden_to_hidden"};
    if (replace_prefix(name, "encoder.data.", "encoder.") ||
        replace_prefix(name, "decoder.data.", "decoder.")) {
        if (v03) {
            replace_all(name, "proc.layer_norm_attention_src.", "proc.layer_norm1.");
            replace_all(name, "proc.layer_norm_attention.", "proc.layer_norm2.");
            replace_all(name, "proc.layer_norm_mlp_dst.", "proc.node_dst_mlp.0.");
            replace_all(name, "proc.node_dst_mlp.mlp.0.", "proc.node_dst_mlp.1.");
            replace_all(name, "proc.node_dst_mlp.mlp.2.", "proc.node_dst_mlp.3.");
        } else {  // the LayerNorms have our names; the MLP has no inner .mlp yet
            replace_all(name, "proc.node_dst_mlp.mlp.", "proc.node_dst_mlp.");
        }
        return {name, -1, ""};
    }
    if (name.rfind("processor.proc.", 0) == 0) {
        BOREAS_CHECK(config.processor.type != ProcessorType::gnn,
                     "weights in the anemoi-models {} layout are supported for the transformer and "
                     "graph-transformer processors",
                     v03 ? "0.3" : "0.7-0.10");
        const auto rest = name.substr(std::string("processor.proc.").size());
        const auto dot = rest.find('.');
        const int layer = std::stoi(rest.substr(0, dot));
        std::string leaf = rest.substr(dot + 1);
        const int per_chunk = config.processor.num_layers / config.processor.num_chunks;
        const std::string prefix = "processor.proc." + std::to_string(layer / per_chunk) +
                                   ".blocks." + std::to_string(layer % per_chunk) + ".";
        if (!v03) {
            replace_prefix(leaf, "node_dst_mlp.mlp.", "node_dst_mlp.");  // graph transformer
            replace_prefix(leaf, "mlp.mlp.", "mlp.");                    // transformer
            return {prefix + leaf, -1, ""};
        }
        if (config.processor.type == ProcessorType::graph_transformer) {
            // 0.3.x GraphTransformerProcessorBlock: layer_norm1 before attention, the MLP's
            // LayerNorm as node_dst_mlp.0.
            replace_prefix(leaf, "layer_norm_attention.", "layer_norm1.");
            replace_prefix(leaf, "layer_norm_mlp_dst.", "node_dst_mlp.0.");
            replace_prefix(leaf, "node_dst_mlp.mlp.0.", "node_dst_mlp.1.");
            replace_prefix(leaf, "node_dst_mlp.mlp.2.", "node_dst_mlp.3.");
            return {prefix + leaf, -1, ""};
        }
        for (int part = 0; part < 3; ++part) {
            const std::string fused = std::string("attention.lin_") + "qkv"[part] + ".weight";
            if (leaf == fused) return {prefix + "attention.lin_qkv.weight", part, ""};
        }
        replace_prefix(leaf, "layer_norm_attention.", "layer_norm1.");
        replace_prefix(leaf, "layer_norm_mlp.", "layer_norm2.");
        replace_prefix(leaf, "mlp.mlp.", "mlp.");
        return {prefix + leaf, -1, ""};
    }
    return {name, -1, ""};
}

/// The key prefix of the model's tensors: "", "model." or "model.model." depending on whether
/// the model, the interface or the Lightning module was saved.
std::string model_prefix(const io::SafetensorsReader& reader) {
    for (const auto& [name, info] : reader.tensors()) {
        for (const std::string anchor : {"trainable_data.trainable", "latlons_data"}) {
            if (ends_with(name, anchor)) return name.substr(0, name.size() - anchor.size());
        }
    }
    return "";
}

}  // namespace

bool is_legacy_layout(const io::SafetensorsReader& reader) {
    for (const auto& [name, info] : reader.tensors())
        if (ends_with(name, "lin_qkv.weight") || ends_with(name, "trainable_data.trainable"))
            return true;
    return false;
}

std::set<std::string> load_legacy_parameters(ParameterStore& store, const LegacySource& source,
                                             const std::string& prefix, const ModelConfig& config,
                                             const graphs::Graph& graph, LegacyLayout layout) {
    const std::set<std::string> available(source.names.begin(), source.names.end());
    std::set<std::string> used;
    for (const auto& current : store.names()) {
        const auto legacy = legacy_source(current, config, layout);
        const std::string name = prefix + legacy.name;
        BOREAS_CHECK(available.count(name),
                     "{} (anemoi-models {} layout) lacks '{}', needed for '{}'", source.origin,
                     layout == LegacyLayout::v0_3 ? "0.3" : "0.7-0.10", name, current);
        used.insert(name);
        const auto& target = store.get(current);
        const std::string origin = fmt::format("{}: tensor '{}'", source.origin, name);
        const auto shape = source.shape(name);
        if (legacy.qkv_part >= 0) {
            const auto rows = target.dim(0), cols = target.dim(1);
            BOREAS_CHECK((shape == std::vector<std::int64_t>{3 * rows, cols}),
                         "{} has shape {}, expected [{}, {}] (q, k and v rows)", origin,
                         io::shape_string(shape), 3 * rows, cols);
            const auto fused = source.read(name);
            store.assign(
                current,
                std::span<const float>(fused).subspan(legacy.qkv_part * rows * cols, rows * cols),
                origin);
            continue;
        }
        BOREAS_CHECK(shape == target.shape(), "{} has shape {}, expected {}", origin,
                     io::shape_string(shape), target.shape_string());
        const auto stored = source.read(name);
        if (legacy.edge_set.empty()) {
            store.assign(current, stored, origin);
            continue;
        }
        // 0.3 keeps trainable edge rows in the graph's edge order; Boreas in CSR order.
        const auto& edges = graph.edge_set(legacy.edge_set);
        const auto width = target.dim(1);
        std::vector<float> reordered(stored.size());
        for (std::int64_t p = 0; p < edges.count(); ++p)
            std::copy_n(stored.begin() + edges.perm[p] * width, width,
                        reordered.begin() + p * width);
        store.assign(current, reordered, origin);
    }
    return used;
}

void load_legacy_weights(ParameterStore& store, const io::SafetensorsReader& reader,
                         const ModelConfig& config, const graphs::Graph& graph) {
    const std::string file = reader.path().string();
    LegacySource source;
    source.origin = fmt::format("weights '{}'", file);
    for (const auto& [name, info] : reader.tensors()) source.names.push_back(name);
    source.shape = [&](const std::string& name) { return reader.info(name).shape; };
    source.read = [&](const std::string& name) {
        const auto view = reader.view<float>(name);
        return std::vector<float>(view.begin(), view.end());
    };
    const auto used = load_legacy_parameters(store, source, model_prefix(reader), config, graph);
    // Buffers 0.3 saves with the parameters; anything else is an error.
    for (const auto& [name, info] : reader.tensors()) {
        if (used.count(name)) continue;
        const bool buffer = ends_with(name, "latlons_data") || ends_with(name, "latlons_hidden") ||
                            ends_with(name, "edge_inc") ||
                            name.find("processors.normalizer.") != std::string::npos;
        BOREAS_CHECK(buffer,
                     "weights '{}' (anemoi-models 0.3 layout) have a tensor this model "
                     "does not use: '{}'",
                     file, name);
    }
}

}  // namespace boreas::model
