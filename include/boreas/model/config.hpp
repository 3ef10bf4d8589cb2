#pragma once
/// Model configuration: YAML with anemoi's own key names (model.num_channels,
/// model.processor.num_layers, model.trainable_parameters.data, data.forcing, ...), built-in named
/// configs, and dotted command-line overrides (`--set model.num_channels=256`). Every key is
/// checked: an unknown key is an error that names it.
///
/// anemoi's own model config (anemoi-training's config/model/*.yaml, or `config.model` of a
/// checkpoint's metadata) is accepted as written, ${...} interpolations included:
///   - keys that do not change the numbers (cpu_offload, gradient_checkpointing,
///     attention_implementation, graph_attention_backend, shard_strategy, compile, ...) are
///     accepted and listed in ModelConfig::accepted;
///   - keys that change the numbers must have a value Boreas implements (qk_norm false,
///     mlp_implementation mlp, torch.nn Linear/LayerNorm/GELU kernels, edge attributes
///     [edge_length, edge_dirs], ...), else the key and value are named in an error;
///   - settings that change the numbers have no defaults: a missing one is an error, never a
///     silent AIFS value.

#include <cstdint>
#include <string>
#include <vector>

#include "boreas/graphs/builder.hpp"
#include "boreas/model/normaliser.hpp"

namespace boreas::model {

enum class ProcessorType { transformer, graph_transformer, gnn };

struct ProcessorConfig {
    ProcessorType type = ProcessorType::transformer;
    int num_layers = 16;
    int num_chunks = 2;
    int num_heads = 16;
    int window_size = 512;  ///< transformer: keys within +-window_size of each query
    double mlp_hidden_ratio = 4;
    int mlp_extra_layers = 0;  ///< gnn
};

/// The mappers' kind: anemoi's GraphTransformer{Forward,Backward}Mapper or
/// GNN{Forward,Backward}Mapper. Encoder and decoder are of the same kind (anemoi's decoder reads
/// what the encoder returns for the data nodes: raw features from a graph transformer, updated
/// latents from a GNN).
enum class MapperType { graph_transformer, gnn };

struct MapperConfig {
    MapperType type = MapperType::graph_transformer;
    int num_heads = 16;  ///< graph transformer only
    double mlp_hidden_ratio = 4;
    int mlp_extra_layers = 0;  ///< gnn only
    int num_chunks = 1;        ///< destination chunks (memory only; results are identical)
};

struct TrainableSizes {
    int data = 8, hidden = 8, data2hidden = 8, hidden2data = 8, hidden2hidden = 8;
};

enum class BoundingType { relu, hardtanh, fraction };

struct BoundingConfig {
    BoundingType type = BoundingType::relu;
    std::vector<std::string> variables;
    float min_val = 0, max_val = 1;
    std::string total_var;  ///< fraction only
};

struct GraphSource {
    std::string file;  ///< a graph file; empty: build from `options`
    graphs::GraphOptions options;
};

struct ModelConfig {
    std::string name;         ///< the built-in name or the file it came from
    std::string source_yaml;  ///< the resolved YAML (after overrides), for provenance
    /// anemoi keys accepted without effect on the numbers: "key = value (why)".
    std::vector<std::string> accepted;
    std::string hidden_nodes_name = "hidden";  ///< model.model.hidden_nodes_name
    int num_channels = 1024;
    bool latent_skip = true;
    ProcessorConfig processor;
    MapperConfig encoder, decoder;
    TrainableSizes trainable;
    std::vector<BoundingConfig> bounding;
    std::vector<std::string> variables;   ///< dataset order
    std::vector<std::string> forcing;     ///< input only
    std::vector<std::string> diagnostic;  ///< output only
    int multistep_input = 2;
    /// data.timestep in seconds (anemoi's duration forms, bare numbers are hours); 0 when the
    /// config does not say (anemoi's default is 6 h). Training windows step by it.
    std::int64_t timestep_seconds = 0;
    NormaliserConfig normaliser;  ///< data.normalizer
    GraphSource graph;

    // Derived from the variable lists (anemoi's data_indices.internal_model).
    std::vector<std::string> input_variables() const;   ///< variables minus diagnostics
    std::vector<std::string> output_variables() const;  ///< variables minus forcings
    /// For each prognostic variable: (index in the output, index in the input).
    std::vector<std::pair<int, int>> prognostic_pairs() const;
    /// Width of the data-node feature matrix: T*V_in + 4 (sin/cos lat/lon) + trainable data.
    std::int64_t data_feature_width() const;
    std::int64_t hidden_feature_width() const { return 4 + trainable.hidden; }
};

/// The names of the built-in configs: tiny, small, o96, aifs-n320.
std::vector<std::string> builtin_config_names();

/// Loads a built-in config by name, or a YAML file by path, applies `key=value` overrides (YAML
/// values, dotted keys) and validates everything. Throws boreas::Error naming the key or file.
ModelConfig load_config(const std::string& name_or_path,
                        const std::vector<std::string>& overrides = {});

/// Parses YAML text (already resolved) into a config; `origin` names it in errors.
ModelConfig parse_config(const std::string& yaml_text, const std::string& origin);

}  // namespace boreas::model
