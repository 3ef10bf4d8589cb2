#include "boreas/model/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "boreas/core/datetime.hpp"
#include "boreas/core/error.hpp"
#include "builtin_configs.hpp"

namespace boreas::model {
namespace {

/// A YAML mapping whose keys must all be consumed: reading a key marks it, `finish` fails on the
/// first key nobody asked for.
class Section {
  public:
    Section(YAML::Node node, std::string path, const std::string& origin,
            std::vector<std::string>* accepted = nullptr)
        : node_(std::move(node)), path_(std::move(path)), origin_(origin), accepted_(accepted) {
        BOREAS_CHECK(!node_ || node_.IsNull() || node_.IsMap(), "{}: '{}' must be a mapping",
                     origin_, path_);
    }

    bool has(const std::string& key) const { return node_ && node_.IsMap() && node_[key]; }

    template <typename T>
    T get(const std::string& key, T fallback) {
        used_.insert(key);
        if (!has(key)) return fallback;
        try {
            return node_[key].as<T>();
        } catch (const YAML::Exception&) {
            BOREAS_FAIL("{}: '{}' must be {}, found '{}'", origin_, full(key), type_name<T>(),
                        YAML::Dump(node_[key]));
        }
    }

    template <typename T>
    T positive(const std::string& key, T fallback) {
        const T value = get<T>(key, fallback);
        BOREAS_CHECK(value > 0, "{}: '{}' must be > 0, found {}", origin_, full(key), value);
        return value;
    }

    template <typename T>
    T non_negative(const std::string& key, T fallback) {
        const T value = get<T>(key, fallback);
        BOREAS_CHECK(value >= 0, "{}: '{}' must be >= 0, found {}", origin_, full(key), value);
        return value;
    }

    /// A value that changes the numbers: no default.
    template <typename T>
    T required(const std::string& key) {
        BOREAS_CHECK(has(key),
                     "{}: '{}' is missing; it changes the numbers, so Boreas assumes no "
                     "default",
                     origin_, full(key));
        return get<T>(key, T{});
    }
    template <typename T>
    T required_positive(const std::string& key) {
        (void)required<T>(key);
        return positive<T>(key, T{});
    }
    template <typename T>
    T required_non_negative(const std::string& key) {
        (void)required<T>(key);
        return non_negative<T>(key, T{});
    }

    /// A key that does not change the numbers: accepted and reported.
    void accept(const std::string& key, const char* why) {
        used_.insert(key);
        if (!has(key) || !accepted_) return;
        YAML::Emitter out;
        out << YAML::Flow << node_[key];
        accepted_->push_back(fmt::format("{} = {} ({})", full(key), out.c_str(), why));
    }

    std::vector<std::string>* accepted() const { return accepted_; }

    Section child(const std::string& key) {
        used_.insert(key);
        return Section(has(key) ? node_[key] : YAML::Node(), full(key), origin_, accepted_);
    }

    YAML::Node raw(const std::string& key) {
        used_.insert(key);
        return has(key) ? node_[key] : YAML::Node();
    }

    void finish() const {
        if (!node_ || !node_.IsMap()) return;
        for (const auto& item : node_) {
            const auto key = item.first.as<std::string>();
            BOREAS_CHECK(used_.count(key), "{}: unknown config key '{}'", origin_, full(key));
        }
    }

    std::string full(const std::string& key) const {
        return path_.empty() ? key : path_ + "." + key;
    }

  private:
    template <typename T>
    static const char* type_name() {
        if constexpr (std::is_same_v<T, bool>) return "true or false";
        if constexpr (std::is_integral_v<T>) return "an integer";
        if constexpr (std::is_floating_point_v<T>) return "a number";
        if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of names";
        return "a string";
    }

    YAML::Node node_;
    std::string path_;
    const std::string& origin_;
    std::vector<std::string>* accepted_;
    std::set<std::string> used_;
};

std::string join(const std::vector<std::string>& names) {
    std::string text;
    for (const auto& n : names) text += (text.empty() ? "" : ", ") + n;
    return text;
}

/// anemoi configs refer to other keys with ${a.b.c} (OmegaConf); resolved against the root here.
YAML::Node resolve_interpolations(const YAML::Node& node, const YAML::Node& root,
                                  const std::string& path, const std::string& origin, int depth) {
    BOREAS_CHECK(depth < 32, "{}: '{}': interpolations nest deeper than 32 (a cycle?)", origin,
                 path);
    if (node.IsMap()) {
        YAML::Node out(YAML::NodeType::Map);
        for (const auto& item : node) {
            const auto key = item.first.as<std::string>();
            out[key] = resolve_interpolations(item.second, root,
                                              path.empty() ? key : path + "." + key, origin, depth);
        }
        return out;
    }
    if (node.IsSequence()) {
        YAML::Node out(YAML::NodeType::Sequence);
        for (std::size_t i = 0; i < node.size(); ++i)
            out.push_back(resolve_interpolations(node[i], root, fmt::format("{}[{}]", path, i),
                                                 origin, depth));
        return out;
    }
    if (!node.IsScalar()) return node;
    const auto text = node.Scalar();
    const auto open = text.find("${");
    if (open == std::string::npos) return node;
    BOREAS_CHECK(open == 0 && text.back() == '}' && text.find("${", 2) == std::string::npos,
                 "{}: '{}' is '{}'; Boreas resolves whole-value interpolations ${{a.b}} only",
                 origin, path, text);
    const auto target = text.substr(2, text.size() - 3);
    // yaml-cpp: assigning a Node writes through it, and operator[] on a non-const Node inserts;
    // walk with reset() on const handles.
    YAML::Node cursor;
    cursor.reset(root);
    std::stringstream parts(target);
    for (std::string key; std::getline(parts, key, '.');) {
        const YAML::Node& current = cursor;
        BOREAS_CHECK(current.IsMap() && current[key],
                     "{}: '{}' refers to '${{{}}}', which does not exist", origin, path, target);
        cursor.reset(current[key]);
    }
    return resolve_interpolations(cursor, root, path, origin, depth + 1);
}

/// layer_kernels: torch.nn Linear, LayerNorm (or anemoi's AutocastLayerNorm: the same in fp32)
/// and GELU are what Boreas computes; QueryNorm/KeyNorm matter only with qk_norm, refused
/// separately.
void check_layer_kernels(const YAML::Node& kernels, const std::string& path,
                         const std::string& origin, std::vector<std::string>& accepted) {
    if (!kernels || kernels.IsNull()) return;
    BOREAS_CHECK(kernels.IsMap(), "{}: '{}' must be a mapping", origin, path);
    Section all(kernels, path, origin, &accepted);
    for (const auto& item : kernels) {
        const auto name = item.first.as<std::string>();
        if (name == "QueryNorm" || name == "KeyNorm") {
            all.accept(name, "used with qk_norm only");
            continue;
        }
        Section kernel(item.second, path + "." + name, origin, &accepted);
        const auto target = kernel.required<std::string>("_target_");
        const std::map<std::string, std::vector<std::string>> allowed = {
            {"Linear", {"torch.nn.Linear"}},
            {"LayerNorm",
             {"torch.nn.LayerNorm", "anemoi.models.layers.normalization.AutocastLayerNorm"}},
            {"Activation", {"torch.nn.GELU"}},
        };
        auto it = allowed.find(name);
        BOREAS_CHECK(it != allowed.end(), "{}: '{}.{}' is a layer kernel Boreas does not know",
                     origin, path, name);
        BOREAS_CHECK(std::find(it->second.begin(), it->second.end(), target) != it->second.end(),
                     "{}: '{}.{}._target_' is '{}'; Boreas implements {}", origin, path, name,
                     target, join(it->second));
        kernel.finish();
    }
}

void check_edge_attributes(const YAML::Node& node, const std::string& path,
                           const std::string& origin) {
    std::vector<std::string> names;
    try {
        names = node.as<std::vector<std::string>>();
    } catch (const YAML::Exception&) {
        BOREAS_FAIL("{}: '{}' must be a list of names", origin, path);
    }
    BOREAS_CHECK((names == std::vector<std::string>{"edge_length", "edge_dirs"}),
                 "{}: '{}' is [{}]; Boreas implements [edge_length, edge_dirs]", origin, path,
                 join(names));
}

/// anemoi-models 0.3's `activation` (later layer_kernels.Activation): Boreas computes GELU.
void check_activation(Section& block, const std::string& path, const std::string& origin) {
    const auto activation = block.get<std::string>("activation", "GELU");
    BOREAS_CHECK(activation == "GELU", "{}: '{}.activation' is '{}'; Boreas implements GELU",
                 origin, path, activation);
}

/// The options processor and mapper blocks share: those that change the numbers must be off.
void check_block_options(Section& block, const std::string& path, const std::string& origin,
                         std::vector<std::string>& accepted) {
    auto must_be_false = [&](const char* key, const char* what) {
        const bool value = block.get<bool>(key, false);
        BOREAS_CHECK(!value, "{}: '{}.{}' is true; Boreas implements {} off", origin, path, key,
                     what);
    };
    must_be_false("qk_norm", "query/key normalisation");
    must_be_false("use_alibi_slopes", "ALiBi slopes");
    must_be_false("use_rotary_embeddings", "rotary embeddings");
    must_be_false("edge_pre_mlp", "the edge pre-MLP");
    if (block.has("softcap")) {
        const auto node = block.raw("softcap");
        const double softcap = node.IsNull() ? 0.0 : block.get<double>("softcap", 0.0);
        BOREAS_CHECK(softcap == 0.0,
                     "{}: '{}.softcap' is {}; Boreas implements attention without a "
                     "soft cap (0 or null)",
                     origin, path, softcap);
    }
    const auto mlp = block.get<std::string>("mlp_implementation", "mlp");
    BOREAS_CHECK(mlp == "mlp", "{}: '{}.mlp_implementation' is '{}'; Boreas implements 'mlp'",
                 origin, path, mlp);
    check_layer_kernels(block.raw("layer_kernels"), path + ".layer_kernels", origin, accepted);
    check_activation(block, path, origin);
    if (block.has("attn_channels")) {
        const auto node = block.raw("attn_channels");
        BOREAS_CHECK(node.IsNull(),
                     "{}: '{}.attn_channels' is {}; Boreas implements attention on "
                     "num_channels (null)",
                     origin, path, YAML::Dump(node));
    }
    block.accept("_convert_", "how hydra instantiates the block");
    block.accept("cpu_offload", "placement only");
    block.accept("gradient_checkpointing", "memory only; the numbers are the same");
    block.accept("shard_strategy", "model sharding only");
    block.accept("graph_attention_backend", "triton and pyg compute the same attention");
}

std::string class_name(const std::string& target) {
    const auto dot = target.rfind('.');
    return dot == std::string::npos ? target : target.substr(dot + 1);
}

ProcessorType processor_type(const std::string& target, const std::string& origin) {
    const auto name = class_name(target);
    if (name == "TransformerProcessor" || name == "transformer") return ProcessorType::transformer;
    if (name == "GraphTransformerProcessor" || name == "graphtransformer")
        return ProcessorType::graph_transformer;
    if (name == "GNNProcessor" || name == "gnn") return ProcessorType::gnn;
    BOREAS_FAIL(
        "{}: model.processor._target_ '{}' is not supported; expected TransformerProcessor, "
        "GraphTransformerProcessor or GNNProcessor",
        origin, target);
}

MapperConfig parse_mapper(Section section, const char* path, bool forward,
                          const std::string& origin, std::vector<std::string>& accepted) {
    MapperConfig mapper;
    const auto target = section.get<std::string>("_target_", "");
    const std::string gt =
        forward ? "GraphTransformerForwardMapper" : "GraphTransformerBackwardMapper";
    const std::string gnn = forward ? "GNNForwardMapper" : "GNNBackwardMapper";
    const auto name = class_name(target);
    BOREAS_CHECK(target.empty() || name == gt || name == gnn,
                 "{}: '{}._target_' is '{}'; Boreas implements {} and {}", origin, path, target, gt,
                 gnn);
    mapper.type = name == gnn ? MapperType::gnn : MapperType::graph_transformer;
    mapper.mlp_hidden_ratio = section.required_positive<double>("mlp_hidden_ratio");
    if (mapper.type == MapperType::graph_transformer) {
        mapper.num_heads = section.required_positive<int>("num_heads");
        section.accept("mlp_extra_layers", "GNN mappers only; a graph transformer ignores it");
    } else {
        mapper.mlp_extra_layers = section.required_non_negative<int>("mlp_extra_layers");
        section.accept("num_heads", "attention mappers only; a GNN mapper ignores it");
    }
    mapper.num_chunks = section.positive<int>("num_chunks", mapper.num_chunks);
    (void)section.raw("trainable_size");  // read with trainable_parameters
    if (section.has("sub_graph_edge_attributes"))
        check_edge_attributes(section.raw("sub_graph_edge_attributes"),
                              std::string(path) + ".sub_graph_edge_attributes", origin);
    check_block_options(section, path, origin, accepted);
    section.accept("initialise_data_extractor_zero", "initialisation only");
    section.finish();
    return mapper;
}

BoundingConfig parse_bounding(const YAML::Node& node, std::size_t index,
                              const std::string& origin) {
    Section section(node, "model.bounding[" + std::to_string(index) + "]", origin);
    BoundingConfig bounding;
    const auto target = class_name(section.get<std::string>("_target_", ""));
    if (target == "ReluBounding") {
        bounding.type = BoundingType::relu;
    } else if (target == "HardtanhBounding") {
        bounding.type = BoundingType::hardtanh;
    } else if (target == "FractionBounding") {
        bounding.type = BoundingType::fraction;
    } else {
        BOREAS_FAIL(
            "{}: model.bounding[{}]._target_ '{}' is not supported; expected ReluBounding, "
            "HardtanhBounding or FractionBounding",
            origin, index, target);
    }
    bounding.variables = section.get<std::vector<std::string>>("variables", {});
    BOREAS_CHECK(!bounding.variables.empty(), "{}: model.bounding[{}].variables is empty", origin,
                 index);
    if (bounding.type != BoundingType::relu) {
        bounding.min_val = section.get<float>("min_val", 0.0f);
        bounding.max_val = section.get<float>("max_val", 1.0f);
        BOREAS_CHECK(bounding.min_val <= bounding.max_val,
                     "{}: model.bounding[{}]: min_val {} > max_val {}", origin, index,
                     bounding.min_val, bounding.max_val);
    }
    if (bounding.type == BoundingType::fraction) {
        bounding.total_var = section.get<std::string>("total_var", "");
        BOREAS_CHECK(!bounding.total_var.empty(), "{}: model.bounding[{}] needs total_var", origin,
                     index);
    }
    section.finish();
    return bounding;
}

void parse_graph(Section section, GraphSource& graph, const std::string& origin) {
    graph.file = section.get<std::string>("file", "");
    auto& o = graph.options;
    o.data_grid = section.get<std::string>("data_grid", o.data_grid);
    o.hidden_grid = section.get<std::string>("hidden_grid", o.hidden_grid);
    o.cutoff_factor = section.positive<double>("cutoff_factor", o.cutoff_factor);
    o.knn = section.positive<int>("num_nearest_neighbours", o.knn);
    o.hidden_edges = graphs::parse_hidden_edges(
        section.get<std::string>("hidden_edges", graphs::to_string(o.hidden_edges)));
    o.multiscale_min_level =
        section.non_negative<int>("multiscale_min_level", o.multiscale_min_level);
    o.convention = graphs::parse_convention(
        section.get<std::string>("convention", graphs::to_string(o.convention)));
    section.finish();
    (void)origin;
}

void check_names(const std::vector<std::string>& names, const std::vector<std::string>& variables,
                 const std::string& what, const std::string& origin) {
    for (const auto& name : names)
        BOREAS_CHECK(std::find(variables.begin(), variables.end(), name) != variables.end(),
                     "{}: {} names '{}', which is not in data.variables", origin, what, name);
}

/// Sets `path` (dotted) in `root` to the YAML value `text`, creating mappings on the way.
void apply_override(YAML::Node& root, const std::string& assignment) {
    const auto eq = assignment.find('=');
    BOREAS_CHECK(eq != std::string::npos && eq > 0, "override '{}' must look like key.path=value",
                 assignment);
    const std::string path = assignment.substr(0, eq);
    YAML::Node value;
    try {
        value = YAML::Load(assignment.substr(eq + 1));
    } catch (const YAML::Exception& error) {
        BOREAS_FAIL("override '{}': value is not valid YAML: {}", assignment, error.what());
    }
    std::vector<std::string> keys;
    std::stringstream parts(path);
    for (std::string key; std::getline(parts, key, '.');) {
        BOREAS_CHECK(!key.empty(), "override '{}': empty key in '{}'", assignment, path);
        keys.push_back(key);
    }
    // yaml-cpp nodes are handles: walk with copies that alias the tree.
    std::vector<YAML::Node> chain{root};
    for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
        YAML::Node next = chain.back()[keys[i]];
        if (!next.IsDefined() || next.IsNull()) {
            chain.back()[keys[i]] = YAML::Node(YAML::NodeType::Map);
            next = chain.back()[keys[i]];
        }
        BOREAS_CHECK(next.IsMap(), "override '{}': '{}' is not a mapping", assignment, keys[i]);
        chain.push_back(next);
    }
    chain.back()[keys.back()] = value;
}

}  // namespace

std::vector<std::string> ModelConfig::input_variables() const {
    std::vector<std::string> out;
    for (const auto& v : variables)
        if (std::find(diagnostic.begin(), diagnostic.end(), v) == diagnostic.end())
            out.push_back(v);
    return out;
}

std::vector<std::string> ModelConfig::output_variables() const {
    std::vector<std::string> out;
    for (const auto& v : variables)
        if (std::find(forcing.begin(), forcing.end(), v) == forcing.end()) out.push_back(v);
    return out;
}

std::vector<std::pair<int, int>> ModelConfig::prognostic_pairs() const {
    const auto in = input_variables();
    const auto out = output_variables();
    std::vector<std::pair<int, int>> pairs;
    for (std::size_t o = 0; o < out.size(); ++o) {
        auto it = std::find(in.begin(), in.end(), out[o]);
        if (it != in.end())
            pairs.emplace_back(static_cast<int>(o), static_cast<int>(it - in.begin()));
    }
    return pairs;
}

std::int64_t ModelConfig::data_feature_width() const {
    return static_cast<std::int64_t>(multistep_input) *
               static_cast<std::int64_t>(input_variables().size()) +
           4 + trainable.data;
}

ModelConfig parse_config(const std::string& yaml_text, const std::string& origin) {
    YAML::Node root;
    try {
        root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& error) {
        BOREAS_FAIL("{}: not valid YAML: {}", origin, error.what());
    }
    root = resolve_interpolations(root, root, "", origin, 0);
    ModelConfig config;
    config.name = origin;
    config.source_yaml = yaml_text;
    Section top(root, "", origin, &config.accepted);

    Section model = top.child("model");
    config.num_channels = model.required_positive<int>("num_channels");
    {
        // anemoi keeps latent_skip under model.model; Boreas' own configs under model.
        Section inner = model.child("model");
        const auto target = inner.get<std::string>("_target_", "");
        BOREAS_CHECK(target.empty() || class_name(target) == "AnemoiModelEncProcDec",
                     "{}: model.model._target_ is '{}'; Boreas implements AnemoiModelEncProcDec",
                     origin, target);
        config.hidden_nodes_name = inner.get<std::string>("hidden_nodes_name", "hidden");
        inner.accept("_convert_", "how hydra instantiates the model");
        const bool inner_skip = inner.has("latent_skip"), outer_skip = model.has("latent_skip");
        BOREAS_CHECK(inner_skip || outer_skip,
                     "{}: model.model.latent_skip is missing; it changes the numbers, so Boreas "
                     "assumes no default",
                     origin);
        if (inner_skip) config.latent_skip = inner.get<bool>("latent_skip", true);
        if (outer_skip) {
            const bool value = model.get<bool>("latent_skip", true);
            BOREAS_CHECK(!inner_skip || value == config.latent_skip,
                         "{}: model.latent_skip and model.model.latent_skip disagree", origin);
            config.latent_skip = value;
        }
        inner.finish();
    }
    for (const char* key : {"cpu_offload", "keep_batch_sharded"})
        model.accept(key, "placement and sharding only");
    model.accept("compile", "torch.compile settings");
    model.accept("node_loss_weight", "training loss only");
    model.accept("sparse_projector", "used by other model classes");
    model.accept("recompile_limit", "torch.compile settings");
    model.accept("grid_skip",
                 "the interpolator model's input step; AnemoiModelEncProcDec ignores it");
    check_layer_kernels(model.raw("layer_kernels"), "model.layer_kernels", origin, config.accepted);
    check_activation(model, "model", origin);
    {
        Section residual = model.child("residual");
        const auto target = residual.get<std::string>("_target_", "SkipConnection");
        BOREAS_CHECK(class_name(target) == "SkipConnection",
                     "{}: model.residual._target_ is '{}'; Boreas implements SkipConnection",
                     origin, target);
        const int step = residual.get<int>("step", -1);
        BOREAS_CHECK(step == -1,
                     "{}: model.residual.step is {}; Boreas implements -1 (the latest "
                     "input step)",
                     origin, step);
        residual.finish();
    }
    {
        Section mask = model.child("output_mask");
        const auto target = mask.get<std::string>("_target_", "NoOutputMask");
        BOREAS_CHECK(class_name(target) == "NoOutputMask",
                     "{}: model.output_mask._target_ is '{}'; Boreas implements NoOutputMask",
                     origin, target);
        mask.finish();
    }
    {
        Section attributes = model.child("attributes");
        if (attributes.has("edges"))
            check_edge_attributes(attributes.raw("edges"), "model.attributes.edges", origin);
        const auto nodes = attributes.get<std::vector<std::string>>("nodes", {});
        BOREAS_CHECK(nodes.empty(),
                     "{}: model.attributes.nodes is [{}]; Boreas implements no node "
                     "attributes beyond the coordinates",
                     origin, join(nodes));
        attributes.finish();
    }
    // Trainable sizes: trainable_parameters, or the blocks' own trainable_size (anemoi fills
    // those from trainable_parameters through interpolations); both given must agree.
    Section t = model.child("trainable_parameters");
    std::map<std::string, int> trainable;
    for (const char* key : {"data", "hidden", "data2hidden", "hidden2data", "hidden2hidden"})
        if (t.has(key)) trainable[key] = t.non_negative<int>(key, 0);
    t.finish();
    auto trainable_size = [&](Section& block, const char* path, const char* key) {
        if (block.has("trainable_size")) {
            const int value = block.non_negative<int>("trainable_size", 0);
            BOREAS_CHECK(
                !trainable.count(key) || trainable[key] == value,
                "{}: {}.trainable_size ({}) differs from model.trainable_parameters.{} ({})",
                origin, path, value, key, trainable[key]);
            trainable[key] = value;
        }
        BOREAS_CHECK(trainable.count(key),
                     "{}: model.trainable_parameters.{} (or {}.trainable_size) is missing; it "
                     "changes the numbers, so Boreas assumes no default",
                     origin, key, path);
        return trainable[key];
    };
    {
        Section p = model.child("processor");
        auto& processor = config.processor;
        processor.type = processor_type(p.required<std::string>("_target_"), origin);
        processor.num_layers = p.required_positive<int>("num_layers");
        processor.num_chunks = p.required_positive<int>("num_chunks");
        processor.mlp_hidden_ratio = p.required_positive<double>("mlp_hidden_ratio");
        if (processor.type != ProcessorType::gnn)
            processor.num_heads = p.required_positive<int>("num_heads");
        if (processor.type == ProcessorType::transformer)
            processor.window_size = p.required_non_negative<int>("window_size");
        else
            p.accept("window_size", "the transformer processor's; graph processors ignore it");
        if (processor.type == ProcessorType::gnn)
            p.accept("num_heads", "attention processors only; the GNN ignores it");
        if (processor.type == ProcessorType::gnn)
            processor.mlp_extra_layers = p.required_non_negative<int>("mlp_extra_layers");
        if (processor.type != ProcessorType::transformer) {
            config.trainable.hidden2hidden = trainable_size(p, "model.processor", "hidden2hidden");
            if (p.has("sub_graph_edge_attributes"))
                check_edge_attributes(p.raw("sub_graph_edge_attributes"),
                                      "model.processor.sub_graph_edge_attributes", origin);
        } else {
            config.trainable.hidden2hidden =
                trainable.count("hidden2hidden") ? trainable["hidden2hidden"] : 0;
        }
        check_block_options(p, "model.processor", origin, config.accepted);
        p.accept("dropout_p", "inference runs without dropout, as anemoi's eval mode does");
        p.accept("attention_implementation", "flash and SDPA attention compute the same softmax");
        p.finish();
        BOREAS_CHECK(processor.num_layers % processor.num_chunks == 0,
                     "{}: model.processor.num_layers ({}) must be a multiple of num_chunks ({})",
                     origin, processor.num_layers, processor.num_chunks);
    }
    config.encoder = parse_mapper(model.child("encoder"), "model.encoder", /*forward=*/true, origin,
                                  config.accepted);
    config.decoder = parse_mapper(model.child("decoder"), "model.decoder", /*forward=*/false,
                                  origin, config.accepted);
    BOREAS_CHECK(config.encoder.type == config.decoder.type,
                 "{}: model.encoder is a {} mapper and model.decoder a {} one; anemoi's decoder "
                 "reads what its encoder returns for the data nodes, so both must be graph "
                 "transformers or both GNNs",
                 origin, config.encoder.type == MapperType::gnn ? "GNN" : "graph-transformer",
                 config.decoder.type == MapperType::gnn ? "GNN" : "graph-transformer");
    {
        Section encoder = model.child("encoder"), decoder = model.child("decoder");
        config.trainable.data2hidden = trainable_size(encoder, "model.encoder", "data2hidden");
        config.trainable.hidden2data = trainable_size(decoder, "model.decoder", "hidden2data");
    }
    BOREAS_CHECK(trainable.count("data") && trainable.count("hidden"),
                 "{}: model.trainable_parameters.{} is missing; it changes the numbers, so Boreas "
                 "assumes no default",
                 origin, trainable.count("data") ? "hidden" : "data");
    config.trainable.data = trainable["data"];
    config.trainable.hidden = trainable["hidden"];
    BOREAS_CHECK(model.has("bounding"),
                 "{}: model.bounding is missing; write 'bounding: []' for a model without "
                 "boundings (it changes the numbers, so Boreas assumes no default)",
                 origin);
    const auto boundings = model.raw("bounding");
    BOREAS_CHECK(boundings.IsSequence() || boundings.IsNull(), "{}: model.bounding must be a list",
                 origin);
    for (std::size_t i = 0; boundings.IsSequence() && i < boundings.size(); ++i)
        config.bounding.push_back(parse_bounding(boundings[i], i, origin));
    model.finish();

    Section data = top.child("data");
    config.variables = data.get<std::vector<std::string>>("variables", {});
    for (const char* key : {"forcing", "diagnostic"})
        BOREAS_CHECK(data.has(key),
                     "{}: data.{} is missing; write '{}: []' if there is none (it "
                     "decides the model's inputs and outputs)",
                     origin, key, key);
    config.forcing = data.get<std::vector<std::string>>("forcing", {});
    config.diagnostic = data.get<std::vector<std::string>>("diagnostic", {});
    if (const auto timestep = data.raw("timestep"); timestep && !timestep.IsNull()) {
        const auto text = timestep.as<std::string>();
        try {
            config.timestep_seconds = text.find_first_not_of("0123456789") == std::string::npos
                                          ? std::stoll(text) * 3600
                                          : parse_duration(text);
        } catch (const std::exception&) {
            config.timestep_seconds = 0;
        }
        BOREAS_CHECK(config.timestep_seconds > 0,
                     "{}: data.timestep is '{}', not a positive duration (6h, 1d, 30m or hours)",
                     origin, text);
    }
    for (const char* key : {"frequency", "format", "resolution"})
        data.accept(key, "dates and dataset only; a forward step does not depend on it");
    {
        // anemoi's data.normalizer: a default method, lists of variables per method, remap.
        Section n = data.child("normalizer");
        config.normaliser.default_method = n.get<std::string>("default", "mean-std");
        for (const char* method : {"mean-std", "std", "min-max", "max", "none"}) {
            for (const auto& name : n.get<std::vector<std::string>>(method, {})) {
                BOREAS_CHECK(!config.normaliser.method_of.count(name),
                             "{}: data.normalizer lists '{}' under two methods", origin, name);
                config.normaliser.method_of[name] = method;
            }
        }
        const auto remap = n.raw("remap");
        if (remap && remap.IsMap())
            for (const auto& item : remap)
                config.normaliser.remap[item.first.as<std::string>()] =
                    item.second.as<std::string>();
        n.finish();
        const std::string d = config.normaliser.default_method;
        BOREAS_CHECK(d == "mean-std" || d == "std" || d == "min-max" || d == "max" || d == "none",
                     "{}: data.normalizer.default '{}' is not one of mean-std, std, min-max, max, "
                     "none",
                     origin, d);
    }
    data.finish();
    Section training = top.child("training");
    config.multistep_input = training.required_positive<int>("multistep_input");
    const int output_steps = training.positive<int>("multistep_output", 1);
    BOREAS_CHECK(output_steps == 1,
                 "{}: training.multistep_output is {}; Boreas implements one output "
                 "step per forward (anemoi's n_step_output = 1)",
                 origin, output_steps);
    training.finish();
    parse_graph(top.child("graph"), config.graph, origin);
    top.finish();

    // Cross-checks.
    BOREAS_CHECK(!config.variables.empty(), "{}: data.variables is empty", origin);
    std::set<std::string> unique(config.variables.begin(), config.variables.end());
    BOREAS_CHECK(unique.size() == config.variables.size(), "{}: data.variables repeats a name",
                 origin);
    check_names(config.forcing, config.variables, "data.forcing", origin);
    check_names(config.diagnostic, config.variables, "data.diagnostic", origin);
    for (const auto& [name, method] : config.normaliser.method_of)
        check_names({name}, config.variables, "data.normalizer." + method, origin);
    for (const auto& [from, to] : config.normaliser.remap)
        check_names({from, to}, config.variables, "data.normalizer.remap", origin);
    for (const auto& f : config.forcing)
        BOREAS_CHECK(std::find(config.diagnostic.begin(), config.diagnostic.end(), f) ==
                         config.diagnostic.end(),
                     "{}: '{}' is both a forcing and a diagnostic", origin, f);
    const auto outputs = config.output_variables();
    for (std::size_t i = 0; i < config.bounding.size(); ++i) {
        const auto& b = config.bounding[i];
        check_names(b.variables, outputs, fmt::format("model.bounding[{}].variables (outputs)", i),
                    origin);
        if (!b.total_var.empty())
            check_names({b.total_var}, outputs, fmt::format("model.bounding[{}].total_var", i),
                        origin);
    }
    std::vector<std::pair<const char*, int>> heads;
    if (config.encoder.type == MapperType::graph_transformer) {
        heads.emplace_back("model.encoder.num_heads", config.encoder.num_heads);
        heads.emplace_back("model.decoder.num_heads", config.decoder.num_heads);
    }
    if (config.processor.type != ProcessorType::gnn)
        heads.emplace_back("model.processor.num_heads", config.processor.num_heads);
    for (const auto& [name, count] : heads)
        BOREAS_CHECK(config.num_channels % count == 0,
                     "{}: model.num_channels ({}) must be a multiple of {} ({})", origin,
                     config.num_channels, name, count);
    return config;
}

std::vector<std::string> builtin_config_names() {
    std::vector<std::string> names;
    for (const auto& entry : detail::builtin_configs()) names.push_back(entry.name);
    return names;
}

ModelConfig load_config(const std::string& name_or_path,
                        const std::vector<std::string>& overrides) {
    std::string text, origin;
    for (const auto& entry : detail::builtin_configs()) {
        if (name_or_path == entry.name) {
            text = entry.yaml;
            origin = entry.name;
        }
    }
    if (origin.empty()) {
        std::ifstream in(name_or_path);
        if (!in.good()) {
            std::string names;
            for (const auto& n : builtin_config_names()) names += (names.empty() ? "" : ", ") + n;
            BOREAS_FAIL("unknown config '{}': not a built-in config ({}) and not a readable file",
                        name_or_path, names);
        }
        std::stringstream buffer;
        buffer << in.rdbuf();
        text = buffer.str();
        origin = name_or_path;
    }
    if (!overrides.empty()) {
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::Exception& error) {
            BOREAS_FAIL("{}: not valid YAML: {}", origin, error.what());
        }
        for (const auto& assignment : overrides) apply_override(root, assignment);
        YAML::Emitter emitter;
        emitter << root;
        text = emitter.c_str();
    }
    auto config = parse_config(text, origin);
    config.name = origin;
    return config;
}

}  // namespace boreas::model
