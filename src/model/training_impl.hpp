#pragma once
// What the training forward keeps (the tape) and the layer-level forward/backward helpers of
// src/model/training.cpp, shared with the sharded training step (src/model/sharded_training.cpp).
#include <initializer_list>
#include <map>
#include <vector>

#include "model_impl.hpp"

namespace boreas::dist {
class Communicator;
}

namespace boreas::model {

struct BlockTape {
    Tensor src, src_norm, kv, g, dst_norm, q_self, attended, lse, t, u, mlp_norm, a, a_act;
    ///< kv: [n_src, 2C], k|v; q_self: [n_dst, 2C], the query and the skip projection (both
    ///< read dst_norm); t = attended + skip projection.
};

struct LayerTape {
    Tensor x, norm1, qkv, attended, lse, x1, norm2, a, a_act;  ///< qkv: [rows, 3C], q|k|v
};

struct MlpTape {
    std::vector<Tensor> inputs;  ///< input of every Linear
    std::vector<Tensor> pre;     ///< output of every Linear but the last (before GELU)
    Tensor norm_input;           ///< the LayerNorm's input
};

struct GnnTape {
    Tensor x, edges_in, pre_first;  ///< destination state, incoming edge state, first-Linear output
    Tensor x_src;                   ///< source state of a mapper (empty: the sources are x)
    MlpTape edge_mlp, node_mlp;
    Tensor messages, node_in;
};

/// A GNN mapper's activations (GnnMapper): embeddings, the encoder's source update, the conv.
struct GnnMapperTape {
    MlpTape src_embedding, dst_embedding, src_update, edge_embedding, extractor;
    Tensor src_update_in;  ///< [x_src, x_src]
    GnnTape conv;
};

struct TrainingTape::Data {
    std::int64_t batch = 0;
    Tensor input, data, hidden_in, src_embedding, processed_in;
    BlockTape encoder, decoder;
    std::vector<LayerTape> transformer;
    std::vector<BlockTape> graph_transformer;
    std::vector<GnnTape> gnn;
    GnnMapperTape gnn_encoder, gnn_decoder;
    Tensor data_latent;  ///< GNN mappers: the encoder's updated data nodes
    MlpTape edge_embedding;
    Tensor processor_features;
    Tensor decoder_dst, decoded_y, extractor_norm, decoded;
    std::vector<Tensor> before_bounding;
    bool checkpointed = false;
    bool consumed = false;       ///< checkpointing: backward ran and released the tape as it went
    bool decoder_taped = false;  ///< the decoder's activations are on the tape
    bool last_chunk_taped = false;     ///< checkpointing: the last processor chunk kept its tape
    std::vector<Tensor> chunk_inputs;  ///< processor state at each chunk start (checkpointing)
    std::vector<Tensor> chunk_edges;   ///< GNN: the edge state at each chunk start (checkpointing)
    /// Model sharding (sharded_training.cpp): the group, and per block the gathered k|v of all
    /// sources (the tapes keep this rank's rows only).
    const dist::Communicator* shards = nullptr;
    Tensor encoder_kv, decoder_kv;
    std::vector<Tensor> processor_kv;
    std::vector<Tensor> heads_qkv, heads_attended, heads_lse;  ///< transformer: this rank's heads
};

namespace training_detail {

using namespace detail;

/// Gradient accumulator for one Linear: dW, db live in the Gradients map.
struct LinearGrad {
    float* weight;
    float* bias;
};

struct Context {
    const Model::Impl& impl;
    Gradients& grads;
    std::map<const Tensor*, Tensor*> slots = {};

    LinearGrad of(const Linear& l) {
        LinearGrad g{nullptr, nullptr};
        g.weight = find(l.weight).data();
        if (l.bias) g.bias = find(l.bias).data();
        return g;
    }
    Tensor& find(const Tensor* parameter) {
        if (slots.empty())
            for (auto& [name, grad] : grads.parameters) slots[&impl.store.get(name)] = &grad;
        auto it = slots.find(parameter);
        BOREAS_CHECK(it != slots.end(), "no gradient slot for a parameter");
        if (grads.observer) grads.observer->touched(*it->second);
        return *it->second;
    }
};

/// The destination rows a graph-transformer block runs on: every destination of every batch
/// element at once, or (a mapper chunk in training) rows [j0, j1) of batch element b, whose tape
/// then holds just those rows while the sources' k|v stay whole.
/// Or (model sharding) rows [j0, j1) of every batch element, the tape's rows b * (j1 - j0) + j.
struct DstSpan {
    bool all = true;
    std::int64_t b = 0, j0 = 0, j1 = 0;
    bool every_element = false;

    static DstSpan chunk(std::int64_t b, std::int64_t j0, std::int64_t j1) {
        return {false, b, j0, j1, false};
    }
    static DstSpan shard(std::int64_t j0, std::int64_t j1) { return {false, 0, j0, j1, true}; }
};

/// The source pass of a block's attention backward, left for the caller (the encoder runs it
/// chunk by chunk once k|v is released): its parameters (dk, dv to be set), the destination
/// pass' scratch and what the parameters point to.
struct DeferredSources {
    kernels::GraphAttentionBackwardParams params;
    kernels::GraphAttentionBackwardScratch scratch;
    Tensor d_t;
    std::vector<std::int64_t> src_offsets, by_src;
};

/// What the destination side's backward leaves for the source side.
struct DestinationGradients {
    Tensor d_g;         ///< d(g); with a separate source LayerNorm its norm_dst part is in
    Tensor d_dst_norm;  ///< d(LN(g)) when the block has one LayerNorm for both sides, else empty
};

/// One chunk of the decoder and extractor: its activations, for its destination rows only.
struct DecoderChunk {
    BlockTape block;
    Tensor decoded_y, extractor_norm, decoded;
};

Tensor zeros_like(const Tensor& t);
void add_into(Tensor& target, const Tensor& source);
void linear_forward(const Linear& l, const Tensor& x, Tensor& y);
void mlp_in_forward(const Linear& l, const Tensor& x, Tensor& a, Tensor& a_act);
void linear_backward(Context& ctx, const Linear& l, const float* x, std::int64_t rows,
                     const float* dy, float* dx, bool accumulate);
void linear_backward(Context& ctx, const Linear& l, const Tensor& x, const Tensor& dy, Tensor* dx,
                     bool accumulate);
void linear_backward_side_by_side(Context& ctx, std::initializer_list<const Linear*> layers,
                                  const Tensor& x, const Tensor& dy, Tensor* dx, bool accumulate);
Tensor layer_norm_backward(Context& ctx, const LayerNorm& n, const Tensor& x, const Tensor& dy);
Tensor residual_mlp_backward(Context& ctx, const LayerNorm& norm, const Linear& mlp_in,
                             const Linear& mlp_out, const Tensor& u, const Tensor& normalised,
                             const Tensor& a, const Tensor& a_act, const Tensor& dy);
/// A transformer layer in halves around its attention: the input LayerNorm (t.x, t.norm1),
/// and from t.attended on, x += projection(attended); x += MLP(LN(x)) (t.x1 ... t.a_act).
void layer_input_forward(const TransformerLayer& l, const Tensor& x, LayerTape& t);
void layer_output_forward(const TransformerLayer& l, Tensor& x, LayerTape& t);
/// Backward of layer_output_forward: returns d(attended); d_x1 receives the residual's part.
Tensor layer_output_backward(Context& ctx, const TransformerLayer& l, const LayerTape& t,
                             const Tensor& dy, Tensor& d_x1);
/// Backward of layer_input_forward and the q|k|v projection, from d(q|k|v): d(x) + d_x1.
Tensor layer_input_backward(Context& ctx, const TransformerLayer& l, const LayerTape& t,
                            const Tensor& d_qkv, const Tensor& d_x1);
/// Backward of the extractor (LayerNorm, Linear) over decoded rows: d(decoder output).
Tensor extractor_backward(Context& ctx, const Model::Impl& m, const Tensor& extractor_norm,
                          const Tensor& decoded_y, const Tensor& d_decoded);
void block_source_forward(const GraphTransformerBlock& b, const Tensor& src, BlockTape& t);
void block_destination_forward(const GraphTransformerBlock& b, const Tensor& kv, Tensor& dst,
                               const EdgeSet& edges, const Tensor& features, std::int64_t batch,
                               std::int64_t n_src, std::int64_t n_dst, const DstSpan& span,
                               BlockTape& t);
DestinationGradients block_destination_backward(
    Context& ctx, const GraphTransformerBlock& b, const Tensor& kv, const BlockTape& t,
    const Tensor& dy, const EdgeSet& edges, const Tensor& features, std::int64_t batch,
    std::int64_t n_src, std::int64_t n_dst, const DstSpan& span, Tensor& d_kv, Tensor& d_features,
    DeferredSources* deferred = nullptr);
void trainable_gradient(const Tensor& d_features, std::int64_t first, std::int64_t copies,
                        Tensor& grad);
/// Residual on the prognostic variables and the boundings (each one's input kept on the tape)
/// over the decoded rows [batch * n_data, V_out]: the model's output.
Tensor output_forward(const Model::Impl& m, TrainingTape::Data& t, const Tensor& input,
                      const Tensor& decoded);
/// Backward of output_forward: the decoded rows' gradient; the residual's part of the input
/// gradient is added into d_input when given.
Tensor output_backward(const Model::Impl& m, const TrainingTape::Data& t, const Tensor& d_output,
                       Tensor* d_input);

}  // namespace training_detail

/// Model sharding of the training step (sharded_training.cpp).
Tensor forward_train_sharded(const Model::Impl& m, const Tensor& input, TrainingTape::Data& t,
                             const dist::Communicator& shards);
void backward_sharded(const Model::Impl& m, TrainingTape::Data& t, const Tensor& d_output,
                      Gradients& grads);

}  // namespace boreas::model
