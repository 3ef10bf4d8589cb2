#include "boreas/dist/communicator.hpp"
#include "model_impl.hpp"

namespace boreas::model {

Model::Model(ModelConfig config, std::shared_ptr<const graphs::Graph> graph)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(graph))) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
const ModelConfig& Model::config() const {
    return impl_->config;
}
const graphs::Graph& Model::graph() const {
    return *impl_->graph;
}
ParameterStore& Model::parameters() {
    return impl_->store;
}
const ParameterStore& Model::parameters() const {
    return impl_->store;
}
void Model::save_weights(const std::filesystem::path& path) const {
    impl_->store.save(path, {{"boreas.graph_fingerprint", graphs::fingerprint(*impl_->graph)}});
}

void Model::load_weights(const std::filesystem::path& path) {
    {
        io::SafetensorsReader reader(path);
        if (auto it = reader.metadata().find("boreas.graph_fingerprint");
            it != reader.metadata().end()) {
            const auto ours = graphs::fingerprint(*impl_->graph);
            BOREAS_CHECK(
                it->second == ours,
                "weights '{}' were trained on graph {} and this graph is {}: its node "
                "coordinates, edge order or edge attributes differ, and trainable edge "
                "rows follow the edge order; use the graph the weights came with (--graph)",
                path.string(), it->second, ours);
        }
        if (is_legacy_layout(reader)) {
            load_legacy_weights(impl_->store, reader, impl_->config, *impl_->graph);
            return;
        }
    }
    auto is_buffer = [](const std::string& name) {
        return name == names::kLatLonsData || name == names::kLatLonsHidden ||
               name.find(names::kNormAlias) != std::string::npos ||
               (name.size() >= names::kLayoutVersionSuffix.size() &&
                name.compare(name.size() - names::kLayoutVersionSuffix.size(),
                             names::kLayoutVersionSuffix.size(), names::kLayoutVersionSuffix) == 0);
    };
    impl_->store.load(path, is_buffer);
    const std::string file = path.string();
    io::SafetensorsReader reader(path);
    for (const auto& [name, info] : reader.tensors()) {
        if (!is_buffer(name)) continue;
        if (name == names::kLatLonsData || name == names::kLatLonsHidden) {
            const auto& nodes =
                impl_->graph->node_set(name == names::kLatLonsData ? "data" : "hidden");
            const auto stored = reader.view<float>(name, {nodes.count(), 4});
            for (std::int64_t n = 0; n < nodes.count(); ++n) {
                const float lat = nodes.coords[2 * n], lon = nodes.coords[2 * n + 1];
                const float expected[4] = {std::sin(lat), std::sin(lon), std::cos(lat),
                                           std::cos(lon)};
                for (int c = 0; c < 4; ++c)
                    BOREAS_CHECK(std::abs(stored[4 * n + c] - expected[c]) <= 1e-5f,
                                 "weights '{}': '{}' row {} does not match the graph's node {} "
                                 "(lat {}, lon {}): the weights belong to another graph",
                                 file, name, n, n, lat, lon);
            }
        } else if (name.find(names::kNormAlias) != std::string::npos) {
            std::string original = name;
            original.replace(original.find(names::kNormAlias), names::kNormAlias.size(),
                             "layer_norm_attention");
            const auto alias = reader.view<float>(name);
            const auto& tensor = impl_->store.get(original);
            BOREAS_CHECK(static_cast<std::int64_t>(alias.size()) == tensor.numel() &&
                             std::equal(alias.begin(), alias.end(), tensor.data()),
                         "weights '{}': '{}' differs from '{}', which it aliases in anemoi", file,
                         name, original);
        } else {
            const auto version = reader.view<std::int64_t>(name, {});
            BOREAS_CHECK(version.size() == 1 && version[0] == 1,
                         "weights '{}': '{}' is {}, Boreas reads layout version 1 (trainable edge "
                         "rows sorted by destination, anemoi-models >= 0.16)",
                         file, name, version.empty() ? -1 : version[0]);
        }
    }
}

const char* to_string(Precision precision) {
    return precision == Precision::bf16 ? "bf16" : "fp32";
}

Precision parse_precision(const std::string& text, const std::string& origin) {
    if (text == "fp32") return Precision::fp32;
    if (text == "bf16") return Precision::bf16;
    BOREAS_FAIL("{} '{}': expected fp32 or bf16", origin, text);
}

void Model::keep_weights_in_bf16() {
    auto& m = *impl_;
    std::vector<const Tensor*> weights;
    auto add = [&](const Linear& linear) {
        if (linear.weight != nullptr && linear.weight->numel() > 0)
            weights.push_back(linear.weight);
    };
    auto add_block = [&](const GraphTransformerBlock& b) {
        // b.edge's W_e is read in fp32 by graph attention itself.
        for (const Linear* l :
             {&b.query, &b.key, &b.value, &b.self, &b.projection, &b.mlp_in, &b.mlp_out})
            add(*l);
    };
    for (const Linear* l : {&m.encoder_src_embedding, &m.encoder_dst_embedding,
                            &m.decoder_dst_embedding, &m.extractor})
        add(*l);
    if (m.config.encoder.type != MapperType::gnn) add_block(m.encoder);
    if (m.config.decoder.type != MapperType::gnn) add_block(m.decoder);
    for (const auto& b : m.graph_transformer_layers) add_block(b);
    for (const auto& t : m.transformer_layers)
        for (const Linear* l : {&t.q, &t.k, &t.v, &t.projection, &t.mlp_in, &t.mlp_out}) add(*l);
    m.store.keep_as_bf16(weights);
}

bool Model::weights_in_bf16() const {
    return impl_->store.holds_bf16();
}

void Model::set_device(const backends::Device& device) {
    backends::Backend& backend = backends::get(device);
    impl_->store.move_to(backend.tensor_memory());
    impl_->device = device;
}

backends::Device Model::device() const {
    return impl_->device;
}

Tensor Model::forward(const Tensor& input, const ForwardOptions& options) const {
    BOREAS_CHECK(options.precision == Precision::bf16 || !weights_in_bf16(),
                 "this model keeps its weights in bf16 (keep_weights_in_bf16): its forward runs "
                 "in bf16 only");
    const InferencePrecisionScope precision(options.precision);
    const backends::ActiveBackendScope on_device(backends::get(impl_->device));
    if (options.shards != nullptr && options.shards->size() > 1)
        return impl_->forward_sharded(input, options);
    return impl_->forward(input, options);
}

Tensor synthetic_input(const Model& model, int batch, std::uint64_t seed) {
    const auto& config = model.config();
    const auto& coords = model.graph().node_set("data").coords;
    const auto nodes = model.graph().node_set("data").count();
    const auto vars = static_cast<std::int64_t>(config.input_variables().size());
    const auto steps = config.multistep_input;
    Tensor input({batch, steps, 1, nodes, vars});
    std::mt19937_64 generator(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t v = 0; v < vars; ++v) {
            const float a = normal(generator), c = normal(generator), phase = normal(generator);
            const float k_lat = 1.0f + std::abs(normal(generator)) * 3.0f;
            const float k_lon = std::round(1.0f + std::abs(normal(generator)) * 3.0f);
            for (std::int64_t t = 0; t < steps; ++t)
                for (std::int64_t n = 0; n < nodes; ++n) {
                    const float lat = coords[2 * n], lon = coords[2 * n + 1];
                    input.data()[(((b * steps + t) * nodes) + n) * vars + v] =
                        a * std::sin(k_lat * lat + phase + 0.1f * static_cast<float>(t)) +
                        c * std::cos(k_lon * lon) * std::cos(lat);
                }
        }
    return input;
}

Tensor read_input(const std::filesystem::path& path) {
    io::SafetensorsReader reader(path);
    std::string name = "input";
    if (!reader.contains(name)) {
        BOREAS_CHECK(reader.tensors().size() == 1,
                     "input file '{}' has no tensor 'input' (and {} tensors, so none is obviously "
                     "the input)",
                     path.string(), reader.tensors().size());
        name = reader.tensors().begin()->first;
    }
    auto shape = reader.info(name).shape;
    // anemoi's predict_step takes [batch, steps, grid, variables]: the ensemble axis is added.
    if (shape.size() == 4) shape.insert(shape.begin() + 2, 1);
    const auto values = reader.view<float>(name);
    return Tensor(shape, std::vector<float>(values.begin(), values.end()));
}

std::shared_ptr<const graphs::Graph> graph_for(const ModelConfig& config) {
    if (!config.graph.file.empty())
        return std::make_shared<const graphs::Graph>(graphs::load_graph(config.graph.file));
    auto options = config.graph.options;
    if (config.processor.type != ProcessorType::transformer &&
        options.hidden_edges == graphs::HiddenEdges::none)
        options.hidden_edges = graphs::HiddenEdges::multiscale;
    log::info("building graph {} -> {}", options.data_grid, options.hidden_grid);
    return std::make_shared<const graphs::Graph>(graphs::build_graph(options));
}

}  // namespace boreas::model
