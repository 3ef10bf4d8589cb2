#include "boreas/model/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "boreas/core/error.hpp"
#include "builtin_configs.hpp"

namespace boreas::model {
namespace {

/// A YAML mapping whose keys must all be consumed: reading a key marks it, `finish` fails on the
/// first key nobody asked for.
class Section {
public:
    Section(YAML::Node node, std::string path, const std::string& origin)
        : node_(std::move(node)), path_(std::move(path)), origin_(origin) {
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

    Section child(const std::string& key) {
        used_.insert(key);
        return Section(has(key) ? node_[key] : YAML::Node(), full(key), origin_);
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

    std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

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
    std::set<std::string> used_;
};

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
    BOREAS_FAIL("{}: model.processor._target_ '{}' is not supported; expected TransformerProcessor, "
                "GraphTransformerProcessor or GNNProcessor", origin, target);
}

void check_mapper_target(const std::string& target, const char* expected, const std::string& path,
                         const std::string& origin) {
    BOREAS_CHECK(target.empty() || class_name(target) == expected,
                 "{}: '{}._target_' is '{}'; Boreas implements {}", origin, path, target, expected);
}

MapperConfig parse_mapper(Section section, const char* path, const char* expected_class,
                          const std::string& origin) {
    MapperConfig mapper;
    check_mapper_target(section.get<std::string>("_target_", ""), expected_class, path, origin);
    mapper.num_heads = section.positive<int>("num_heads", mapper.num_heads);
    mapper.mlp_hidden_ratio = section.positive<double>("mlp_hidden_ratio", mapper.mlp_hidden_ratio);
    mapper.num_chunks = section.positive<int>("num_chunks", mapper.num_chunks);
    section.finish();
    return mapper;
}

BoundingConfig parse_bounding(const YAML::Node& node, std::size_t index, const std::string& origin) {
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
        BOREAS_FAIL("{}: model.bounding[{}]._target_ '{}' is not supported; expected ReluBounding, "
                    "HardtanhBounding or FractionBounding", origin, index, target);
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
    o.hidden_edges = graphs::parse_hidden_edges(section.get<std::string>(
        "hidden_edges", graphs::to_string(o.hidden_edges)));
    o.multiscale_min_level = section.non_negative<int>("multiscale_min_level", o.multiscale_min_level);
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
    BOREAS_CHECK(eq != std::string::npos && eq > 0,
                 "override '{}' must look like key.path=value", assignment);
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
        if (std::find(diagnostic.begin(), diagnostic.end(), v) == diagnostic.end()) out.push_back(v);
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
        if (it != in.end()) pairs.emplace_back(static_cast<int>(o), static_cast<int>(it - in.begin()));
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
    ModelConfig config;
    config.name = origin;
    config.source_yaml = yaml_text;
    Section top(root, "", origin);

    Section model = top.child("model");
    config.num_channels = model.positive<int>("num_channels", config.num_channels);
    config.latent_skip = model.get<bool>("latent_skip", config.latent_skip);
    {
        Section p = model.child("processor");
        auto& processor = config.processor;
        processor.type = processor_type(
            p.get<std::string>("_target_", "anemoi.models.layers.processor.TransformerProcessor"), origin);
        processor.num_layers = p.positive<int>("num_layers", processor.num_layers);
        processor.num_chunks = p.positive<int>("num_chunks", processor.num_chunks);
        processor.num_heads = p.positive<int>("num_heads", processor.num_heads);
        processor.window_size = p.non_negative<int>("window_size", processor.window_size);
        processor.mlp_hidden_ratio = p.positive<double>("mlp_hidden_ratio", processor.mlp_hidden_ratio);
        processor.mlp_extra_layers = p.non_negative<int>("mlp_extra_layers", processor.mlp_extra_layers);
        p.finish();
        BOREAS_CHECK(processor.num_layers % processor.num_chunks == 0,
                     "{}: model.processor.num_layers ({}) must be a multiple of num_chunks ({})",
                     origin, processor.num_layers, processor.num_chunks);
    }
    config.encoder = parse_mapper(model.child("encoder"), "model.encoder",
                                  "GraphTransformerForwardMapper", origin);
    config.decoder = parse_mapper(model.child("decoder"), "model.decoder",
                                  "GraphTransformerBackwardMapper", origin);
    {
        Section t = model.child("trainable_parameters");
        auto& sizes = config.trainable;
        sizes.data = t.non_negative<int>("data", sizes.data);
        sizes.hidden = t.non_negative<int>("hidden", sizes.hidden);
        sizes.data2hidden = t.non_negative<int>("data2hidden", sizes.data2hidden);
        sizes.hidden2data = t.non_negative<int>("hidden2data", sizes.hidden2data);
        sizes.hidden2hidden = t.non_negative<int>("hidden2hidden", sizes.hidden2hidden);
        t.finish();
    }
    const auto boundings = model.raw("bounding");
    if (boundings) {
        BOREAS_CHECK(boundings.IsSequence() || boundings.IsNull(), "{}: model.bounding must be a list",
                     origin);
        for (std::size_t i = 0; boundings.IsSequence() && i < boundings.size(); ++i)
            config.bounding.push_back(parse_bounding(boundings[i], i, origin));
    }
    model.finish();

    Section data = top.child("data");
    config.variables = data.get<std::vector<std::string>>("variables", {});
    config.forcing = data.get<std::vector<std::string>>("forcing", {});
    config.diagnostic = data.get<std::vector<std::string>>("diagnostic", {});
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
                config.normaliser.remap[item.first.as<std::string>()] = item.second.as<std::string>();
        n.finish();
        const std::string d = config.normaliser.default_method;
        BOREAS_CHECK(d == "mean-std" || d == "std" || d == "min-max" || d == "max" || d == "none",
                     "{}: data.normalizer.default '{}' is not one of mean-std, std, min-max, max, "
                     "none", origin, d);
    }
    data.finish();
    Section training = top.child("training");
    config.multistep_input = training.positive<int>("multistep_input", config.multistep_input);
    training.finish();
    parse_graph(top.child("graph"), config.graph, origin);
    top.finish();

    // Cross-checks.
    BOREAS_CHECK(!config.variables.empty(), "{}: data.variables is empty", origin);
    std::set<std::string> unique(config.variables.begin(), config.variables.end());
    BOREAS_CHECK(unique.size() == config.variables.size(), "{}: data.variables repeats a name", origin);
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
        check_names(b.variables, outputs, fmt::format("model.bounding[{}].variables (outputs)", i), origin);
        if (!b.total_var.empty())
            check_names({b.total_var}, outputs, fmt::format("model.bounding[{}].total_var", i), origin);
    }
    for (const auto& [name, heads] :
         {std::pair{"model.processor.num_heads", config.processor.num_heads},
          std::pair{"model.encoder.num_heads", config.encoder.num_heads},
          std::pair{"model.decoder.num_heads", config.decoder.num_heads}})
        BOREAS_CHECK(config.num_channels % heads == 0,
                     "{}: model.num_channels ({}) must be a multiple of {} ({})", origin,
                     config.num_channels, name, heads);
    return config;
}

std::vector<std::string> builtin_config_names() {
    std::vector<std::string> names;
    for (const auto& entry : detail::builtin_configs()) names.push_back(entry.name);
    return names;
}

ModelConfig load_config(const std::string& name_or_path, const std::vector<std::string>& overrides) {
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
