#pragma once
/// anemoi inference checkpoints (`inference-*.ckpt`, torch.save of an AnemoiModelInterface)
/// read natively: nothing in them is executed (io/pickle.hpp). Everything the model needs comes
/// from the checkpoint itself:
///   - the model config from anemoi.json's `config` (anemoi's own keys, read by the same strict
///     parser as YAML configs), variables and their roles from `data_indices`, multistep input
///     from `config.task` (anemoi-training >= 0.16) or `config.training`;
///   - the graph from the module's graph providers (edge_index_base, perm, edge_attr: anemoi's own
///     edge order) and node coordinates from the pickled HeteroData: it is never rebuilt;
///   - the weights from the module tree's parameters and buffers;
///   - the normaliser from the pre-processor's _norm_mul / _norm_add.
/// A layout Boreas does not know (a tensor it has no place for, one it needs and cannot find, a
/// processor it does not implement) is refused with a message naming what differs.

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "boreas/graphs/graph.hpp"
#include "boreas/model/config.hpp"
#include "boreas/model/model.hpp"
#include "boreas/model/normaliser.hpp"

namespace boreas::model {

class Checkpoint {
  public:
    /// Reads and checks the checkpoint; throws boreas::Error naming the file and what is wrong.
    explicit Checkpoint(const std::filesystem::path& path);
    ~Checkpoint();
    Checkpoint(Checkpoint&&) noexcept;

    const ModelConfig& config() const;
    std::shared_ptr<const graphs::Graph> graph() const;
    /// A model on this checkpoint's config and graph with its weights loaded.
    Model model() const;
    /// The normaliser of the checkpoint's pre-processors (inputs and outputs in physical units).
    Normaliser normaliser() const;
    /// What `boreas checkpoint info` prints (schema docs/checkpoint-info-schema.json).
    nlohmann::ordered_json describe() const;

    /// anemoi.json (or ai-models.json) as written, NaN/Infinity read as null.
    const nlohmann::json& metadata() const;
    /// A supporting array by name ("latitudes", "longitudes": degrees, the data grid's points in
    /// the model's order), converted to double; throws naming the array if the checkpoint lacks it.
    std::vector<double> supporting_array(const std::string& name) const;
    /// The model's time step in seconds, from config.task.timestep or config.data.timestep
    /// (anemoi frequency strings: "6h", "1d", "30m", "3600s").
    std::int64_t timestep_seconds() const;
    /// The dataset's variables_metadata (mars keys, computed_forcing, constant_in_time, period of
    /// accumulations): {} where the checkpoint has none.
    nlohmann::json variables_metadata() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace boreas::model
