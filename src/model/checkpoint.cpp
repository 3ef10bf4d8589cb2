#include "boreas/model/checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "boreas/core/error.hpp"
#include "boreas/io/torch_checkpoint.hpp"
#include "legacy_weights.hpp"
#include "names.hpp"

namespace boreas::model {
namespace {

using nlohmann::json;
namespace pickle = io::pickle;

const json* find_path(const json& root, std::initializer_list<const char*> path) {
    const json* node = &root;
    for (const char* key : path) {
        if (!node->is_object() || !node->contains(key)) return nullptr;
        node = &(*node)[key];
    }
    return node;
}

/// The state dict (or __dict__) of an inert object, or the dict itself.
const pickle::Value* state_of(const pickle::Value* value) {
    if (!value) return nullptr;
    if (value->kind == pickle::Kind::object && value->state &&
        value->state->kind == pickle::Kind::dict)
        return value->state;
    return value->kind == pickle::Kind::dict ? value : nullptr;
}

/// provenance_training.module_versions[name]: {"version": "0.18.0"} (anemoi-utils >= 0.5) or
/// "0.3.1" (older); nullptr if absent.
const json* module_version(const json& metadata, const char* name) {
    const auto* entry = find_path(metadata, {"provenance_training", "module_versions", name});
    if (entry && entry->is_object()) entry = find_path(*entry, {"version"});
    return entry && entry->is_string() ? entry : nullptr;
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::int64_t> integers(const json& node, const std::string& what,
                                   const std::string& origin) {
    BOREAS_CHECK(node.is_array(), "{}: anemoi.json '{}' is not a list", origin, what);
    std::vector<std::int64_t> out;
    for (const auto& v : node) {
        BOREAS_CHECK(v.is_number_integer(), "{}: anemoi.json '{}' holds a non-integer", origin,
                     what);
        out.push_back(v.get<std::int64_t>());
    }
    return out;
}

}  // namespace

struct Checkpoint::Impl {
    std::filesystem::path path;
    std::string origin;
    io::TorchCheckpoint file;
    json metadata;
    std::map<std::string, io::NamedTensor> tensors;  ///< by state-dict name of the interface
    std::vector<std::string> order;                  ///< the same names in module order
    ModelConfig config;
    std::shared_ptr<graphs::Graph> graph;
    std::string dataset = "data";
    int multistep_output = 1;
    std::string precision;
    /// Releases before graph providers (anemoi-models 0.3 to 0.10): mapper-owned edge buffers in
    /// the graph's own order, other module names (legacy_weights.hpp).
    bool legacy = false;
    LegacyLayout layout = LegacyLayout::v0_3;
    std::string layout_name = "anemoi-models >= 0.16";
    /// Settings the config does not state, taken from what the writing release's code does.
    std::vector<std::string> implied;

    explicit Impl(const std::filesystem::path& p) : path(p), origin(p.string()), file(p) {
        const auto& root = file.root();
        const auto root_class = std::string(root.class_name());
        BOREAS_CHECK(
            root_class == "anemoi.models.interface.AnemoiModelInterface",
            "{}: the pickle holds {}, not an anemoi inference checkpoint "
            "(an AnemoiModelInterface, as anemoi-training writes inference-*.ckpt); a "
            "training checkpoint (last.ckpt) or a bare state dict lacks the graph buffers",
            origin,
            root_class.empty() ? std::string("a ") + pickle::kind_name(root.kind) : root_class);
        auto found = file.anemoi_metadata();
        BOREAS_CHECK(found.has_value(),
                     "{}: no {}/anemoi-metadata/anemoi.json: the model config "
                     "and variables come from there",
                     origin, file.archive());
        metadata = std::move(*found);
        for (const auto& entry : file.state_dict(root)) {
            if (!tensors.count(entry.name)) order.push_back(entry.name);
            tensors.emplace(entry.name, entry);
        }
        detect_layout();
        config = read_config();
        graph = read_graph();
        graphs::validate(*graph, origin);
    }

    /// Which release's state-dict layout this is (tools/reference/ANEMOI_LAYOUTS.md). Each one
    /// Boreas reads is tested on a checkpoint that release's own training code wrote.
    void detect_layout() {
        auto has = [&](const std::string& name) { return tensors.count(name) > 0; };
        bool fused_qkv = false;
        for (const auto& name : order) fused_qkv = fused_qkv || ends_with(name, ".lin_qkv.weight");
        if (has("model.trainable_data.trainable")) {
            legacy = true;
            layout = LegacyLayout::v0_3;
            layout_name = "anemoi-models 0.3";
        } else if (has("model.encoder.trainable.trainable") &&
                   has("model.encoder.proc.layer_norm_attention_src.weight") && !fused_qkv) {
            legacy = true;
            layout = LegacyLayout::v0_7;
            layout_name = "anemoi-models 0.7-0.10";
        } else if (std::none_of(order.begin(), order.end(), [](const std::string& name) {
                       return name.rfind("model.encoder_graph_provider.", 0) == 0 &&
                              ends_with(name, ".trainable_layout_version");
                   })) {
            BOREAS_FAIL(
                "{}: a state-dict layout Boreas does not read (anemoi-models {}): neither "
                "graph providers (0.16 and later) nor the 0.3 or 0.7-0.10 layouts; "
                "tools/reference/ANEMOI_LAYOUTS.md lists anemoi's layouts",
                origin, writer_version());
        }
    }

    const io::NamedTensor& tensor(const std::string& name) const {
        auto it = tensors.find(name);
        BOREAS_CHECK(it != tensors.end(), "{}: no tensor '{}' in the checkpoint's modules", origin,
                     name);
        return it->second;
    }
    const io::NamedTensor* maybe(const std::string& name) const {
        auto it = tensors.find(name);
        return it == tensors.end() ? nullptr : &it->second;
    }

    // ---- config
    const json& config_json() const {
        const auto* config_node = find_path(metadata, {"config"});
        BOREAS_CHECK(config_node && config_node->is_object(), "{}: anemoi.json has no 'config'",
                     origin);
        return *config_node;
    }

    /// data_indices of our dataset: {data: {input, output}, model: {input, output}}.
    const json& data_indices() const {
        const auto* indices = find_path(metadata, {"data_indices", dataset.c_str()});
        if (indices && indices->contains("data")) return *indices;
        indices = find_path(metadata, {"data_indices"});  // single-dataset metadata (version 1)
        BOREAS_CHECK(indices && indices->contains("data") && indices->contains("model"),
                     "{}: anemoi.json has no data_indices for dataset '{}'", origin, dataset);
        return *indices;
    }

    ModelConfig read_config() {
        const auto& c = config_json();
        if (const auto* names = find_path(metadata, {"metadata_inference", "dataset_names"})) {
            BOREAS_CHECK(
                names->is_array() && names->size() == 1,
                "{}: the checkpoint has {} datasets ({}); Boreas runs single-dataset models",
                origin, names->size(), names->dump());
            dataset = (*names)[0].get<std::string>();
        }
        // Dataset variables in dataset order, from data.input.name_to_index.
        const auto& indices = data_indices();
        std::vector<std::string> variables;
        if (const auto* name_to_index = find_path(indices, {"data", "input", "name_to_index"})) {
            BOREAS_CHECK(name_to_index->is_object() && !name_to_index->empty(),
                         "{}: anemoi.json data_indices.data.input.name_to_index is empty", origin);
            variables.resize(name_to_index->size());
            for (const auto& [name, index] : name_to_index->items()) {
                BOREAS_CHECK(index.is_number_integer() && index.get<std::int64_t>() >= 0 &&
                                 index.get<std::size_t>() < variables.size() &&
                                 variables[index.get<std::size_t>()].empty(),
                             "{}: data_indices name_to_index is not a permutation (at '{}')",
                             origin, name);
                variables[index.get<std::size_t>()] = name;
            }
        } else {
            // Older metadata (anemoi-training 0.3): the dataset's own variable list.
            const auto* list = find_path(metadata, {"dataset", "variables"});
            BOREAS_CHECK(list && list->is_array() && !list->empty(),
                         "{}: anemoi.json has neither data_indices.data.input.name_to_index nor "
                         "dataset.variables",
                         origin);
            variables = list->get<std::vector<std::string>>();
        }
        // Forcing / diagnostic / normaliser: config.data.datasets.<name> (anemoi-training >= 0.16)
        // or config.data (older).
        const json* data_section = find_path(c, {"data", "datasets", dataset.c_str()});
        if (!data_section) data_section = find_path(c, {"data"});
        BOREAS_CHECK(data_section, "{}: anemoi.json config.data is missing", origin);
        json data = {{"variables", variables}};
        for (const char* key : {"forcing", "diagnostic"}) {
            const auto* list = find_path(*data_section, {key});
            BOREAS_CHECK(list, "{}: anemoi.json has no config.data{} '{}' list", origin,
                         data_section == find_path(c, {"data"}) ? "" : ".datasets." + dataset, key);
            data[key] = list->is_null() ? json::array() : *list;
        }
        if (const auto* processors = find_path(*data_section, {"processors"});
            processors && processors->is_object()) {
            for (const auto& [name, processor] : processors->items()) {
                const auto target = processor.value("_target_", std::string());
                BOREAS_CHECK(ends_with(target, "InputNormalizer"),
                             "{}: pre-processor '{}' ({}) is not supported; Boreas implements the "
                             "InputNormalizer only",
                             origin, name, target);
                if (processor.contains("config")) data["normalizer"] = processor["config"];
            }
        } else if (const auto* normalizer = find_path(*data_section, {"normalizer"})) {
            data["normalizer"] = *normalizer;
        }
        // Steps: config.task (anemoi-training >= 0.16) or config.training.
        const json* steps = find_path(c, {"task"});
        if (!steps || !steps->contains("multistep_input")) steps = find_path(c, {"training"});
        BOREAS_CHECK(steps && steps->contains("multistep_input"),
                     "{}: anemoi.json has no multistep_input (config.task or config.training)",
                     origin);
        multistep_output = steps->value("multistep_output", 1);
        BOREAS_CHECK(
            multistep_output == 1,
            "{}: the model predicts {} output steps per forward (config.task.multistep_output); "
            "Boreas implements one output step per forward",
            origin, multistep_output);
        if (const auto* p = find_path(c, {"training", "precision"}))
            precision = p->is_string() ? p->get<std::string>() : p->dump();
        const auto* model_section = find_path(c, {"model"});
        BOREAS_CHECK(model_section && model_section->is_object(),
                     "{}: anemoi.json config.model is missing", origin);
        json model_config = *model_section;
        // Where a checkpoint's config is silent, what the writing code did is known: anemoi
        // builds no boundings without a bounding list, and anemoi-models 0.3.x always adds the
        // latent skip (it has no setting for it).
        if (!model_config.contains("bounding")) {
            model_config["bounding"] = json::array();
            implied.push_back("model.bounding = [] (anemoi builds no boundings without a list)");
        }
        if (legacy) {
            // Before its latent_skip setting, anemoi always added the latent skip, whatever the
            // config said.
            const auto* stated = find_path(model_config, {"model", "latent_skip"});
            if (!stated) stated = find_path(model_config, {"latent_skip"});
            if (!stated || *stated != true)
                implied.push_back(layout_name + " always adds the latent skip" +
                                  (stated ? " (its config's latent_skip is ignored)" : ""));
            model_config.erase("latent_skip");
            model_config["model"]["latent_skip"] = true;
        }
        if (layout == LegacyLayout::v0_7) {
            // NamedNodesAttributes(trainable_parameters.hidden) in 0.4-0.12: the data nodes'
            // trainable width is the hidden one.
            const auto* data_width = find_path(model_config, {"trainable_parameters", "data"});
            const auto* hidden_width = find_path(model_config, {"trainable_parameters", "hidden"});
            if (hidden_width && (!data_width || *data_width != *hidden_width)) {
                implied.push_back(
                    fmt::format("model.trainable_parameters.data = {} ({} sizes data-node "
                                "trainables with the hidden setting)",
                                hidden_width->dump(), layout_name));
                model_config["trainable_parameters"]["data"] = *hidden_width;
            }
        }
        const json document = {{"model", model_config},
                               {"data", data},
                               {"training", {{"multistep_input", (*steps)["multistep_input"]}}}};
        // JSON is YAML: the same strict parser as for config files.
        auto parsed = parse_config(document.dump(2), origin + ": anemoi.json config");
        parsed.name = origin;
        check_indices(parsed);
        return parsed;
    }

    /// The index lists anemoi recorded must be the ones Boreas derives from the variable roles.
    void check_indices(const ModelConfig& c) const {
        const auto& indices = data_indices();
        auto positions = [&](const std::vector<std::string>& names) {
            std::vector<std::int64_t> out;
            for (const auto& n : names)
                out.push_back(std::find(c.variables.begin(), c.variables.end(), n) -
                              c.variables.begin());
            return out;
        };
        const auto* input = find_path(indices, {"data", "input", "full"});
        const auto* output = find_path(indices, {"data", "output", "full"});
        BOREAS_CHECK(input && output, "{}: anemoi.json data_indices.data.input/output.full missing",
                     origin);
        BOREAS_CHECK(
            integers(*input, "data_indices.data.input.full", origin) ==
                positions(c.input_variables()),
            "{}: data_indices.data.input.full is {}, but the variables minus diagnostics are at "
            "other positions: a variable order Boreas does not know",
            origin, input->dump());
        BOREAS_CHECK(
            integers(*output, "data_indices.data.output.full", origin) ==
                positions(c.output_variables()),
            "{}: data_indices.data.output.full is {}, but the variables minus forcings are at "
            "other positions: a variable order Boreas does not know",
            origin, output->dump());
        if (const auto* model_out = find_path(indices, {"model", "output", "name_to_index"})) {
            const auto outputs = c.output_variables();
            for (const auto& [name, index] : model_out->items()) {
                const auto at = std::find(outputs.begin(), outputs.end(), name) - outputs.begin();
                BOREAS_CHECK(
                    index.is_number_integer() && index.get<std::int64_t>() == at,
                    "{}: model output '{}' is at index {} in data_indices.model.output, Boreas "
                    "puts it at {}",
                    origin, name, index.dump(), at);
            }
        }
    }

    // ---- graph
    const pickle::Value* hetero_data() const {
        // The interface's graph_data, else the model's _graph_data (the same object).
        if (const auto* state = state_of(&file.root())) {
            if (const auto* g = state->get("graph_data"); g && state_of(g)) return g;
            if (const auto* modules = state->get("_modules"))
                if (const auto* inner = state_of(modules->get("model")))
                    if (const auto* g = inner->get("_graph_data"); g && state_of(g)) return g;
        }
        BOREAS_FAIL(
            "{}: no pickled graph (graph_data, a torch_geometric HeteroData) in the checkpoint",
            origin);
    }

    /// A HeteroData store's tensors: node sets by name, edge sets by (src, "to", dst).
    const pickle::Value* store(const pickle::Value* hetero, const char* field,
                               const std::function<bool(const pickle::Value*)>& match) const {
        const auto* state = state_of(hetero);
        const auto* stores = state ? state->get(field) : nullptr;
        if (!stores || stores->kind != pickle::Kind::dict) return nullptr;
        for (const auto& [key, value] : stores->entries)
            if (match(key)) {
                const auto* s = state_of(value);
                const auto* mapping = s ? s->get("_mapping") : nullptr;
                return mapping && mapping->kind == pickle::Kind::dict ? mapping : s;
            }
        return nullptr;
    }

    graphs::NodeSet node_set(const pickle::Value* hetero, const std::string& name) const {
        const auto* mapping = store(hetero, "_node_store_dict", [&](const pickle::Value* key) {
            return key->kind == pickle::Kind::string && key->text == name;
        });
        BOREAS_CHECK(mapping, "{}: the checkpoint's graph has no node set '{}'", origin, name);
        const auto* x = mapping->get("x");
        BOREAS_CHECK(
            x && x->kind == pickle::Kind::tensor && x->shape.size() == 2 && x->shape[1] == 2,
            "{}: node set '{}' has no coordinates x [nodes, 2]", origin, name);
        graphs::NodeSet nodes;
        nodes.grid = "checkpoint:" + name;
        nodes.coords = file.read<float>(*x, "graph_data." + name + ".x");
        if (const auto* area = mapping->get("area_weight");
            area && area->kind == pickle::Kind::tensor && io::numel(*area) == x->shape[0])
            nodes.area_weight = file.read<float>(*area, "graph_data." + name + ".area_weight");
        return nodes;
    }

    /// An edge set from its buffers, in the order Boreas keeps (CSR by destination, `perm` to
    /// anemoi's order). Graph providers (0.16 and later) hold the edges already sorted by
    /// destination with their permutation; older releases hold them in the graph's own order,
    /// which Boreas sorts stably by destination as the later releases do themselves.
    graphs::EdgeSet edge_set(const std::string& buffers, const std::string& source,
                             const std::string& target, std::int64_t sources,
                             std::int64_t targets) const {
        const auto& index = tensor(buffers + "edge_index_base");
        const auto& attr = tensor(buffers + "edge_attr");
        BOREAS_CHECK(index.tensor->shape.size() == 2 && index.tensor->shape[0] == 2,
                     "{}: '{}' has shape {}, expected [2, edges]", origin, index.name,
                     io::shape_string(index.tensor->shape));
        const auto count = index.tensor->shape[1];
        BOREAS_CHECK((attr.tensor->shape == std::vector<std::int64_t>{count, 3}),
                     "{}: '{}' has shape {}, expected [{}, 3] (edge_length, edge_dirs)", origin,
                     attr.name, io::shape_string(attr.tensor->shape), count);
        const auto edges = file.read<std::int64_t>(*index.tensor, index.name);
        const auto attributes = file.read<float>(*attr.tensor, attr.name);
        auto src_of = [&](std::int64_t e) { return edges[static_cast<std::size_t>(e)]; };
        auto dst_of = [&](std::int64_t e) { return edges[static_cast<std::size_t>(count + e)]; };
        for (std::int64_t e = 0; e < count; ++e)
            BOREAS_CHECK(
                src_of(e) >= 0 && src_of(e) < sources && dst_of(e) >= 0 && dst_of(e) < targets,
                "{}: '{}' edge {} ({} -> {}) is out of range", origin, index.name, e, src_of(e),
                dst_of(e));

        graphs::EdgeSet set;
        set.source = source;
        set.target = target;
        std::vector<std::int64_t> rows(
            static_cast<std::size_t>(count));  // buffer row of CSR edge p
        std::iota(rows.begin(), rows.end(), std::int64_t{0});
        if (legacy) {
            std::stable_sort(rows.begin(), rows.end(),
                             [&](std::int64_t a, std::int64_t b) { return dst_of(a) < dst_of(b); });
            set.perm = rows;
            set.builder = {{"type", "checkpoint"}, {"buffers", buffers}, {"order", "graph"}};
        } else {
            const auto& perm = tensor(buffers + "perm");
            BOREAS_CHECK(perm.tensor->shape == std::vector<std::int64_t>{count},
                         "{}: '{}' has shape {}, expected [{}]", origin, perm.name,
                         io::shape_string(perm.tensor->shape), count);
            set.perm = file.read<std::int64_t>(*perm.tensor, perm.name);
            set.builder = {{"type", "checkpoint"}, {"buffers", buffers}, {"order", "destination"}};
        }
        set.src.resize(static_cast<std::size_t>(count));
        set.dst_offsets.assign(static_cast<std::size_t>(targets + 1), 0);
        set.edge_length.resize(static_cast<std::size_t>(count));
        set.edge_dirs.resize(static_cast<std::size_t>(2 * count));
        for (std::int64_t p = 0; p < count; ++p) {
            const auto e = rows[static_cast<std::size_t>(p)];
            BOREAS_CHECK(p == 0 || dst_of(rows[static_cast<std::size_t>(p - 1)]) <= dst_of(e),
                         "{}: '{}' is not sorted by destination at edge {}", origin, index.name, e);
            set.src[p] = static_cast<std::int32_t>(src_of(e));
            ++set.dst_offsets[static_cast<std::size_t>(dst_of(e) + 1)];
            set.edge_length[p] = attributes[3 * e];
            set.edge_dirs[2 * p] = attributes[3 * e + 1];
            set.edge_dirs[2 * p + 1] = attributes[3 * e + 2];
        }
        for (std::size_t d = 1; d < set.dst_offsets.size(); ++d)
            set.dst_offsets[d] += set.dst_offsets[d - 1];
        return set;
    }

    std::shared_ptr<graphs::Graph> read_graph() const {
        const auto* hetero = hetero_data();
        auto out = std::make_shared<graphs::Graph>();
        out->nodes["data"] = node_set(hetero, dataset);
        out->nodes["hidden"] = node_set(hetero, config.hidden_nodes_name);
        const auto n_data = out->nodes["data"].count(), n_hidden = out->nodes["hidden"].count();
        const std::string encoder =
            legacy ? "model.encoder." : "model.encoder_graph_provider." + dataset + ".";
        const std::string decoder =
            legacy ? "model.decoder." : "model.decoder_graph_provider." + dataset + ".";
        const std::string processor =
            legacy ? "model.processor." : "model.processor_graph_provider.";
        out->edges["data_to_hidden"] = edge_set(encoder, "data", "hidden", n_data, n_hidden);
        out->edges["hidden_to_data"] = edge_set(decoder, "hidden", "data", n_hidden, n_data);
        if (config.processor.type != ProcessorType::transformer)
            out->edges["hidden_to_hidden"] =
                edge_set(processor, "hidden", "hidden", n_hidden, n_hidden);
        out->attributes = {{"source", "checkpoint"}};
        out->provenance = {{"checkpoint", origin}};
        return out;
    }

    // ---- weights
    void load(Model& model) const {
        auto& store = model.parameters();
        std::set<std::string> used;
        if (legacy) {
            LegacySource source;
            source.origin = origin;
            source.names = order;
            source.shape = [&](const std::string& name) { return tensor(name).tensor->shape; };
            source.read = [&](const std::string& name) {
                return file.read<float>(*tensor(name).tensor, name);
            };
            used = load_legacy_parameters(store, source, "model.", config, *graph, layout);
        }
        for (const auto& name : legacy ? std::vector<std::string>{} : store.names()) {
            const std::string key = "model." + name;
            const auto* entry = maybe(key);
            BOREAS_CHECK(entry,
                         "{}: the checkpoint has no '{}', which Boreas' model needs: a layout "
                         "Boreas does not know (anemoi-models {})",
                         origin, key, writer_version());
            const auto& target = store.get(name);
            BOREAS_CHECK(entry->tensor->shape == target.shape(),
                         "{}: tensor '{}' has shape {}, Boreas expects {}", origin, key,
                         io::shape_string(entry->tensor->shape), target.shape_string());
            store.assign(name, file.read<float>(*entry->tensor, key),
                         origin + ": tensor '" + key + "'");
            used.insert(key);
        }
        for (const auto& key : order) {
            if (used.count(key)) continue;
            const auto& entry = tensors.at(key);
            if (key.rfind("pre_processors.", 0) == 0 || key.rfind("post_processors.", 0) == 0) {
                BOREAS_CHECK(key.find(".normalizer.") != std::string::npos,
                             "{}: '{}' belongs to a pre/post-processor Boreas does not implement",
                             origin, key);
                continue;
            }
            check_buffer(key, entry);
        }
    }

    void check_buffer(const std::string& key, const io::NamedTensor& entry) const {
        const bool is_alias = key.find(names::kNormAlias) != std::string::npos;
        BOREAS_CHECK(key.rfind("model.", 0) == 0 && (!entry.parameter || is_alias),
                     "{}: the checkpoint has {} '{}' that Boreas' model has no place for: a layout "
                     "Boreas does not know (anemoi-models {})",
                     origin, entry.parameter ? "parameter" : "tensor", key, writer_version());
        const std::string name = key.substr(6);
        const bool data_coords = name == names::kLatLonsData || (legacy && name == "latlons_data");
        // (0.3 keeps latlons_* on the model; 0.4 and later under node_attributes, our names.)
        const bool hidden_coords =
            name == names::kLatLonsHidden || (legacy && name == "latlons_hidden");
        if (data_coords || hidden_coords) {
            const auto& nodes = graph->node_set(data_coords ? "data" : "hidden");
            const auto stored = file.read<float>(*entry.tensor, key);
            BOREAS_CHECK(static_cast<std::int64_t>(stored.size()) == 4 * nodes.count(),
                         "{}: '{}' has {} values, expected {} x 4", origin, key, stored.size(),
                         nodes.count());
            for (std::int64_t n = 0; n < nodes.count(); ++n) {
                const float lat = nodes.coords[2 * n], lon = nodes.coords[2 * n + 1];
                const float expected[4] = {std::sin(lat), std::sin(lon), std::cos(lat),
                                           std::cos(lon)};
                for (int c = 0; c < 4; ++c)
                    BOREAS_CHECK(std::abs(stored[4 * n + c] - expected[c]) <= 1e-5f,
                                 "{}: '{}' row {} does not match the graph's node coordinates",
                                 origin, key, n);
            }
        } else if (ends_with(name, names::kLayoutVersionSuffix)) {
            const auto version = file.read<std::int64_t>(*entry.tensor, key);
            BOREAS_CHECK(version.size() == 1 && version[0] == 1,
                         "{}: '{}' is {}; Boreas reads trainable layout version 1", origin, key,
                         version.empty() ? -1 : version[0]);
        } else if (name.find(names::kNormAlias) != std::string::npos) {
            // Compared in the checkpoint's own names, which differ between layouts.
            std::string original = key;
            original.replace(original.find(names::kNormAlias), names::kNormAlias.size(),
                             "layer_norm_attention");
            const auto alias = file.read<float>(*entry.tensor, key);
            const auto* aliased = maybe(original);
            BOREAS_CHECK(aliased && file.read<float>(*aliased->tensor, original) == alias,
                         "{}: '{}' differs from '{}', which it aliases in anemoi", origin, key,
                         original);
        } else {
            const bool edge_buffer = ends_with(name, ".edge_attr") || ends_with(name, ".perm") ||
                                     ends_with(name, ".edge_index_base") ||
                                     ends_with(name, ".edge_inc");
            const bool provider =
                edge_buffer &&
                (name.find("graph_provider.") != std::string::npos ||
                 (legacy && (name.rfind("encoder.", 0) == 0 || name.rfind("decoder.", 0) == 0 ||
                             name.rfind("processor.", 0) == 0)));
            BOREAS_CHECK(provider,
                         "{}: the checkpoint has buffer '{}' that Boreas' model has no place "
                         "for: a layout Boreas does not know (anemoi-models {})",
                         origin, key, writer_version());
        }
    }

    std::string writer_version() const {
        const auto* v = module_version(metadata, "anemoi.models");
        return v ? v->get<std::string>() : "unknown";
    }

    Normaliser normaliser() const {
        const io::NamedTensor *mul = nullptr, *add = nullptr;
        for (const auto& key : order) {
            if (key.rfind("pre_processors.", 0) != 0) continue;
            if (ends_with(key, "._norm_mul")) mul = &tensors.at(key);
            if (ends_with(key, "._norm_add")) add = &tensors.at(key);
        }
        BOREAS_CHECK(mul && add,
                     "{}: no pre-processor normaliser (_norm_mul, _norm_add) in the checkpoint",
                     origin);
        return Normaliser(config, file.read<float>(*mul->tensor, mul->name),
                          file.read<float>(*add->tensor, add->name), origin + ": " + mul->name);
    }
};

Checkpoint::Checkpoint(const std::filesystem::path& path) {
    try {
        impl_ = std::make_unique<Impl>(path);
    } catch (const nlohmann::json::exception& error) {
        // A value of an unexpected type in anemoi.json (the checks above cover the structure).
        BOREAS_FAIL("{}: anemoi.json holds an unexpected value: {}", path.string(), error.what());
    }
}
Checkpoint::~Checkpoint() = default;
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
const ModelConfig& Checkpoint::config() const {
    return impl_->config;
}
std::shared_ptr<const graphs::Graph> Checkpoint::graph() const {
    return impl_->graph;
}
Normaliser Checkpoint::normaliser() const {
    return impl_->normaliser();
}

Model Checkpoint::model() const {
    Model model(impl_->config, impl_->graph);
    impl_->load(model);
    return model;
}

const nlohmann::json& Checkpoint::metadata() const {
    return impl_->metadata;
}

std::vector<double> Checkpoint::supporting_array(const std::string& name) const {
    const auto& m = impl_->metadata;
    const auto* paths = find_path(m, {"supporting_arrays_paths", impl_->dataset.c_str()});
    if (!paths || !paths->is_object() || paths->contains("path"))
        paths = find_path(m, {"supporting_arrays_paths"});
    const json* info =
        paths && paths->is_object() && paths->contains(name) ? &(*paths)[name] : nullptr;
    BOREAS_CHECK(info && info->is_object() && info->contains("path"),
                 "{}: no supporting array '{}' in the metadata's supporting_arrays_paths",
                 impl_->origin, name);
    std::int64_t count = 1;
    for (const auto& d : info->value("shape", json::array())) count *= d.get<std::int64_t>();
    return impl_->file.supporting_array(info->at("path").get<std::string>(),
                                        info->value("dtype", std::string("float64")), count);
}

std::int64_t Checkpoint::timestep_seconds() const {
    const auto& m = impl_->metadata;
    const auto* timestep = find_path(m, {"config", "task", "timestep"});
    if (!timestep) timestep = find_path(m, {"config", "data", "timestep"});
    BOREAS_CHECK(timestep && (timestep->is_string() || timestep->is_number_integer()),
                 "{}: the metadata has no config.task.timestep or config.data.timestep",
                 impl_->origin);
    if (timestep->is_number_integer()) return timestep->get<std::int64_t>() * 3600;  // hours
    const auto text = timestep->get<std::string>();
    std::size_t used = 0;
    std::int64_t value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const std::string unit = text.substr(used);
    const std::int64_t scale = unit == "h" || unit.empty()    ? 3600
                               : unit == "d"                  ? 86400
                               : unit == "m" || unit == "min" ? 60
                               : unit == "s"                  ? 1
                                                              : 0;
    BOREAS_CHECK(used > 0 && scale > 0 && value > 0,
                 "{}: timestep '{}' is not a positive number of d, h, m or s", impl_->origin, text);
    return value * scale;
}

nlohmann::json Checkpoint::variables_metadata() const {
    const auto& m = impl_->metadata;
    if (const auto* v = find_path(m, {"dataset", "variables_metadata"}); v && v->is_object())
        return *v;
    if (const auto* v = find_path(m, {"dataset", impl_->dataset.c_str(), "variables_metadata"});
        v && v->is_object())
        return *v;
    return json::object();
}

nlohmann::ordered_json Checkpoint::describe() const {
    const auto& m = impl_->metadata;
    const auto& c = impl_->config;
    auto text = [&](std::initializer_list<const char*> path) -> nlohmann::ordered_json {
        const auto* node = find_path(m, path);
        return node ? nlohmann::ordered_json(*node) : nlohmann::ordered_json(nullptr);
    };
    nlohmann::ordered_json versions = nlohmann::ordered_json::object();
    for (const char* name :
         {"anemoi.models", "anemoi.training", "anemoi.graphs", "anemoi.datasets", "torch"})
        if (const auto* v = module_version(m, name)) versions[name] = *v;
    nlohmann::ordered_json variables = nlohmann::ordered_json::array();
    const auto inputs = c.input_variables();
    for (std::size_t i = 0; i < c.variables.size(); ++i) {
        const auto& name = c.variables[i];
        const bool forcing = std::count(c.forcing.begin(), c.forcing.end(), name) > 0;
        const bool diagnostic = std::count(c.diagnostic.begin(), c.diagnostic.end(), name) > 0;
        variables.push_back({{"name", name},
                             {"index", i},
                             {"role", forcing      ? "forcing"
                                      : diagnostic ? "diagnostic"
                                                   : "prognostic"}});
    }
    nlohmann::ordered_json nodes, edges;
    for (const auto& [name, set] : impl_->graph->nodes) nodes[name] = set.count();
    for (const auto& [name, set] : impl_->graph->edges) edges[name] = set.count();
    std::int64_t parameters = 0, parameter_tensors = 0, buffers = 0, non_persistent = 0;
    std::set<std::tuple<const pickle::Value*, std::int64_t, std::vector<std::int64_t>>> seen;
    for (const auto& [name, entry] : impl_->tensors) {
        // A module registered twice (anemoi's layer_norm_attention_dest) is one set of weights.
        const auto& t = *entry.tensor;
        if (!seen.insert({t.storage_ref, t.storage_offset, t.shape}).second) continue;
        if (entry.parameter) {
            ++parameter_tensors;
            parameters += io::numel(*entry.tensor);
        } else if (entry.persistent) {
            ++buffers;
        } else {
            ++non_persistent;
        }
    }
    nlohmann::ordered_json arrays = nlohmann::ordered_json::array();
    // Per dataset (anemoi-utils >= 0.4.43) or flat (older): {name: {path, shape, dtype}}.
    const auto* paths = find_path(m, {"supporting_arrays_paths", impl_->dataset.c_str()});
    if (!paths || !paths->is_object() || paths->contains("path"))
        paths = find_path(m, {"supporting_arrays_paths"});
    if (paths && paths->is_object())
        for (const auto& [name, info] : paths->items())
            if (info.is_object() && info.contains("path"))
                arrays.push_back({{"name", name},
                                  {"shape", info.value("shape", json::array())},
                                  {"dtype", info.value("dtype", "")},
                                  {"present", impl_->file.zip().contains(info.value("path", ""))}});
    const char* processor = c.processor.type == ProcessorType::transformer ? "transformer"
                            : c.processor.type == ProcessorType::graph_transformer
                                ? "graph_transformer"
                                : "gnn";
    nlohmann::ordered_json out;
    out["schema"] = "boreas-checkpoint-info/1";
    out["file"] = impl_->origin;
    out["archive"] = impl_->file.archive();
    out["metadata_version"] = text({"version"});
    out["writer"] = versions;
    out["uuid"] = text({"uuid"});
    out["run_id"] = text({"run_id"});
    out["timestamp"] = text({"timestamp"});
    out["task"] = text({"task"});
    out["dataset"] = impl_->dataset;
    const auto* timestep = find_path(m, {"config", "task", "timestep"});
    if (!timestep) timestep = find_path(m, {"config", "data", "timestep"});
    out["timestep"] =
        timestep ? nlohmann::ordered_json(*timestep) : nlohmann::ordered_json(nullptr);
    out["multistep_input"] = c.multistep_input;
    out["multistep_output"] = impl_->multistep_output;
    out["precision"] = impl_->precision.empty() ? nlohmann::ordered_json(nullptr)
                                                : nlohmann::ordered_json(impl_->precision);
    out["variables"] = variables;
    out["nodes"] = nodes;
    out["edges"] = edges;
    out["parameters"] = parameters;
    out["tensors"] = {{"parameters", parameter_tensors},
                      {"buffers", buffers},
                      {"non_persistent_buffers", non_persistent}};
    out["supporting_arrays"] = arrays;
    out["pickle"] = {{"values", impl_->file.pickle().value_count()},
                     {"globals", impl_->file.pickle().globals().size()}};
    out["boreas"] = {{"processor", processor},
                     {"mappers", c.encoder.type == MapperType::gnn ? "gnn" : "graph_transformer"},
                     {"num_channels", c.num_channels},
                     {"num_layers", c.processor.num_layers},
                     {"num_heads", c.processor.num_heads},
                     {"window_size", c.processor.type == ProcessorType::transformer
                                         ? nlohmann::ordered_json(c.processor.window_size)
                                         : nlohmann::ordered_json(nullptr)},
                     {"inputs", inputs.size()},
                     {"outputs", c.output_variables().size()},
                     {"accepted_without_effect", c.accepted},
                     {"implied", impl_->implied}};
    return out;
}

}  // namespace boreas::model
