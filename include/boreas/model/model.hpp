#pragma once
/// An AIFS/Anemoi-class encoder-processor-decoder model (anemoi-models' AnemoiModelEncProcDec):
/// graph-transformer encoder data -> hidden, a transformer, graph-transformer or GNN processor,
/// graph-transformer decoder hidden -> data, residual on prognostic variables, boundings.
/// spec/model.md sections 1-6 and 10 give every formula.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "boreas/backends/backend.hpp"
#include "boreas/core/tensor.hpp"
#include "boreas/graphs/graph.hpp"
#include "boreas/model/config.hpp"
#include "boreas/model/parameters.hpp"

namespace boreas::dist {
class Communicator;
}

namespace boreas::model {

/// Receives named intermediate results ("encoder.out", "processor.out", "decoder.out", ...) when
/// given to forward; used by the reference tests to locate a mismatch block by block.
using TraceSink = std::function<void(const std::string& name, const Tensor& value)>;

/// The precision of an inference forward. bf16 runs every Linear (projections, embeddings, MLPs)
/// as anemoi-models under torch.autocast(dtype=torch.bfloat16) does: inputs and weights rounded
/// to bf16, fp32 accumulation, outputs rounded to bf16 (kernels::LinearParams::bf16). LayerNorm,
/// the attention softmax and sums, residual adds and the output stay fp32. Training is fp32.
enum class Precision { fp32, bf16 };

/// "fp32" or "bf16".
const char* to_string(Precision precision);
/// Parses "fp32" or "bf16"; `origin` names where the text came from (a flag, a key) in the error.
Precision parse_precision(const std::string& text, const std::string& origin);

struct ForwardOptions {
    bool allow_nan = false;  ///< accept non-finite input values instead of refusing them
    Precision precision = Precision::fp32;
    TraceSink trace;
    /// Model sharding: the ranks of one model-parallel group (every one calls forward with the
    /// same input). Each rank computes a contiguous share of the data and hidden rows, gathering
    /// the sources' keys and values at each mapper and graph block and exchanging heads around
    /// each window attention (anemoi's shard_heads); every rank returns the whole output.
    /// Null or one rank: the single-process forward. docs/scaling.md gives the volumes.
    const dist::Communicator* shards = nullptr;
};

/// Watches a backward fill the gradients: which tensors each part touches, and when a part
/// (the decoder, each processor layer, the processor, the encoder) is done, so a data-parallel
/// all-reduce can send what is final while the backward goes on (train::ReplicaAverager).
struct Gradients;
struct GradientObserver {
    virtual ~GradientObserver() = default;
    /// A step's gradients, before its first backward (they stay in place until the step ends).
    virtual void begin(Gradients& gradients) = 0;
    virtual void touched(const Tensor& gradient) = 0;
    virtual void part_done() = 0;
};

/// Gradients of a training step: one tensor per parameter (same names and shapes) and the
/// gradient with respect to the input (rollout feeds predictions back as inputs).
struct Gradients {
    std::map<std::string, Tensor> parameters;
    Tensor input;
    GradientObserver* observer = nullptr;  ///< told by backward, when set
};

/// What a training forward keeps for its backward (activations, attention log-sum-exps).
struct TrainingTape {
    struct Data;
    std::unique_ptr<Data> data;
    TrainingTape();
    ~TrainingTape();
    TrainingTape(TrainingTape&&) noexcept;
    TrainingTape& operator=(TrainingTape&&) noexcept;
    /// Under activation checkpointing, drops the decoder's and the last processor chunk's
    /// activations too (backward then recomputes them): for a tape whose backward does not
    /// follow right away, as in a rollout.
    void drop_recomputable();
};

class Model {
  public:
    /// Checks the graph against the config (node sets, edge sets) and declares every parameter.
    Model(ModelConfig config, std::shared_ptr<const graphs::Graph> graph);
    ~Model();
    Model(Model&&) noexcept;

    const ModelConfig& config() const;
    const graphs::Graph& graph() const;
    ParameterStore& parameters();
    const ParameterStore& parameters() const;

    /// Loads anemoi weights (state-dict names). Besides the parameters, anemoi's files carry
    /// buffers that Boreas checks instead of loading: node_attributes.latlons_* must equal the
    /// graph's sin/cos features (else the weights belong to another graph), the
    /// layer_norm_attention_dest aliases must equal layer_norm_attention, and
    /// trainable_layout_version must be 1 (trainable edge rows in destination-sorted order).
    /// Boreas-saved weights carry the fingerprint of their graph (save_weights); loading them with
    /// another graph (other coordinates, edge order or attributes) is refused, since trainable
    /// edge rows follow the edge order.
    void load_weights(const std::filesystem::path& path);
    /// Writes the parameters (anemoi names) with the graph's fingerprint, atomically.
    void save_weights(const std::filesystem::path& path) const;

    /// bf16 inference only from here on: the weights of the Linears the bf16 forward runs
    /// (embeddings, projections, MLPs, extractor; not the edge and GNN weights other kernels
    /// read in fp32) are kept as bf16 bits and their fp32 copies released (the aifs-n320
    /// shape: 0.5 GB less). Forward then needs precision bf16, and weights can no longer be
    /// loaded, saved or trained; the numbers equal the bf16 forward on fp32 weights.
    void keep_weights_in_bf16();
    bool weights_in_bf16() const;
    /// Runs forward, forward_train, backward and zero_gradients on `device` from now on
    /// (`--device cpu|cuda[:N]`): its backend's kernels, and its memory for the parameters
    /// (moved there now) and for every tensor those calls make. An error naming the device where
    /// this build has no backend for it. CPU by default.
    void set_device(const backends::Device& device);
    backends::Device device() const;

    /// One step. input: [B, T, 1, N_data, V_in] normalised; returns [B, 1, 1, N_data, V_out]
    /// (normalised, residual and boundings applied), as anemoi-models returns it.
    Tensor forward(const Tensor& input, const ForwardOptions& options = {}) const;

    /// Forward that keeps what backward needs. With `activation_checkpointing` only the inputs
    /// of the encoder and of each processor chunk (and the decoder's and the last chunk's
    /// activations, which backward uses first) are kept, and backward recomputes the rest (same
    /// results, less memory, about one more encoder and processor forward of time). A decoder
    /// too large for that (or with num_chunks > 1) runs in destination chunks, recomputed one at
    /// a time by backward (docs/training.md).
    /// With `shards` (more than one rank) the step is sharded as the forward is
    /// (ForwardOptions::shards): each rank keeps the activations of its own rows (no
    /// recomputation; sharding divides them), backward sends each block's source gradients back
    /// to their owners and sums the parameter and input gradients over the group in rank order,
    /// so every rank ends with the whole gradients.
    Tensor forward_train(const Tensor& input, TrainingTape& tape,
                         bool activation_checkpointing = false,
                         const dist::Communicator* shards = nullptr) const;
    /// Adds the gradients of sum(d_output * output) to `gradients` (zero-initialised by
    /// zero_gradients). Deterministic for a fixed thread count. Under activation checkpointing
    /// it recomputes into the tape and releases the tape as it goes, hence the tape is not
    /// const and its backward runs once (a second call throws).
    void backward(TrainingTape& tape, const Tensor& d_output, Gradients& gradients) const;
    Gradients zero_gradients(const Tensor& input) const;

    struct Impl;  ///< defined in src/model/model_impl.hpp (internal)

  private:
    std::unique_ptr<Impl> impl_;
};

/// Smooth, seeded fields on the data grid ([batch, T, 1, N_data, V_in]): a few random spherical
/// waves per variable and step. Used by `boreas forward --input synthetic` and `boreas bench`.
Tensor synthetic_input(const Model& model, int batch, std::uint64_t seed);

/// The tensor "input" (or the only tensor) of a safetensors file: [batch, steps, 1, nodes, vars],
/// or [batch, steps, nodes, vars] as anemoi's predict_step takes it (the ensemble axis added).
Tensor read_input(const std::filesystem::path& path);

/// The graph a config names: its graph.file, or one built from its graph options.
std::shared_ptr<const graphs::Graph> graph_for(const ModelConfig& config);

}  // namespace boreas::model
