// Model sharding of the training step (issue 18): the forward of sharded_forward.cpp keeping the
// activations of this rank's rows, and its backward. Each exchange's adjoint runs in reverse:
// the halo exchange of k|v sends d(k|v) of the halo rows back to their owners, who add them
// rank by rank in rank order, and the heads all-to-alls swap direction. Parameter gradients are
// partial sums over this rank's rows; one rank-ordered all-reduce over the group completes them
// (and the input gradient), so every rank ends with the whole gradients.
//
// Without recomputation: activation checkpointing is not applied under sharding (the tape holds
// 1/S of the activations plus the gathered k|v of each graph block).

#include <algorithm>
#include <vector>

#include "boreas/backends/backend.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/trace.hpp"
#include "boreas/dist/communicator.hpp"
#include "sharding.hpp"
#include "training_impl.hpp"

namespace boreas::model {

using namespace detail;
using namespace training_detail;

namespace {

/// This rank's rows of a node set, gathered from a whole [batch * n, w] tensor.
Tensor own_rows_of(const Tensor& whole, std::int64_t n, RowRange range, std::int64_t batch) {
    const std::int64_t rows = range.last - range.first, width = whole.cols();
    Tensor own = Tensor::uninitialised({batch * rows, width});
    for (std::int64_t b = 0; b < batch; ++b)
        std::copy_n(whole.row(b * n + range.first), rows * width, own.row(b * rows));
    return own;
}

kernels::WindowAttentionParams heads_attention(const TransformerLayer& l, const Tensor& qkv,
                                               const Tensor& out, const Tensor& lse,
                                               const Sharding& sh, std::int64_t seq) {
    const std::int64_t share = l.channels / sh.size();
    kernels::WindowAttentionParams p;
    p.q = qkv.data();
    p.k = qkv.data() + share;
    p.v = qkv.data() + 2 * share;
    p.stride = 3 * share;
    p.out = const_cast<float*>(out.data());
    p.out_stride = share;
    p.lse = const_cast<float*>(lse.data());
    p.batch = sh.batch;
    p.seq = seq;
    p.heads = l.heads / sh.size();
    p.head_dim = l.channels / l.heads;
    p.window = l.window;
    return p;
}

/// A transformer layer on this rank's rows (x [batch * own, C], in place), keeping its tape;
/// the attention runs on this rank's heads over the whole sequence (heads_* in the tape).
void layer_forward_sharded(const TransformerLayer& l, Tensor& x, const Sharding& sh,
                           std::int64_t seq, LayerTape& t, Tensor& heads_qkv,
                           Tensor& heads_attended, Tensor& heads_lse) {
    const std::int64_t rows = x.rows(), c = l.channels;
    layer_input_forward(l, x, t);
    Tensor qkv = Tensor::uninitialised({rows, 3 * c});
    apply_side_by_side({&l.q, &l.k, &l.v}, t.norm1.data(), rows, qkv.data());
    heads_qkv = sh.rows_to_heads(qkv, seq, 3);
    heads_attended = Tensor::uninitialised({sh.batch * seq, c / sh.size()});
    heads_lse = Tensor::uninitialised({sh.batch * seq, l.heads / sh.size()});
    backends::active().window_attention(
        heads_attention(l, heads_qkv, heads_attended, heads_lse, sh, seq));
    t.attended = sh.heads_to_rows(heads_attended, seq, 1);
    layer_output_forward(l, x, t);
}

Tensor layer_backward_sharded(Context& ctx, const TransformerLayer& l, const LayerTape& t,
                              const Tensor& heads_qkv, const Tensor& heads_attended,
                              const Tensor& heads_lse, const Tensor& dy, const Sharding& sh,
                              std::int64_t seq) {
    Tensor d_x1;
    const Tensor d_attended = layer_output_backward(ctx, l, t, dy, d_x1);
    const Tensor d_heads_attended = sh.rows_to_heads(d_attended, seq, 1);
    Tensor d_heads_qkv = Tensor::uninitialised(heads_qkv.shape());
    const std::int64_t share = l.channels / sh.size();
    kernels::WindowAttentionBackwardParams bp;
    bp.forward = heads_attention(l, heads_qkv, heads_attended, heads_lse, sh, seq);
    bp.d_out = d_heads_attended.data();
    bp.dq = d_heads_qkv.data();
    bp.dk = d_heads_qkv.data() + share;
    bp.dv = d_heads_qkv.data() + 2 * share;
    backends::active().window_attention_backward(bp);
    return layer_input_backward(ctx, l, t, sh.heads_to_rows(d_heads_qkv, seq, 3), d_x1);
}

/// A graph-transformer block on this rank's destination rows `dst` (g in, y out) from its
/// source rows `src`: k|v of the sources its edges read exchanged into the halo buffer `kv`.
void block_forward_sharded(const GraphTransformerBlock& b, const Tensor& src, Tensor& dst,
                           const graphs::Halo& halo, const Tensor& features, const Sharding& sh,
                           std::int64_t n_dst, BlockTape& t, Tensor& kv) {
    block_source_forward(b, src, t);
    kv = sh.halo_exchange(t.kv, halo);
    t.kv = Tensor();
    const auto rows = sh.mine(n_dst);
    block_destination_forward(b, kv, dst, halo.local, features, sh.batch,
                              Model::Impl::halo_rows(halo), n_dst,
                              DstSpan::shard(rows.first, rows.last), t);
}

/// Backward of block_forward_sharded: returns d(g) of the own destinations; d(own sources) is
/// added into d_src for a mapper (a processor block folds it into the returned gradient).
Tensor block_backward_sharded(Context& ctx, const GraphTransformerBlock& b, const BlockTape& t,
                              const Tensor& kv, const Tensor& dy, const graphs::Halo& halo,
                              const Tensor& features, const Sharding& sh, std::int64_t n_dst,
                              Tensor* d_src, Tensor& d_features) {
    const auto rows = sh.mine(n_dst);
    Tensor d_kv = Tensor::uninitialised(kv.shape());
    auto dst = block_destination_backward(ctx, b, kv, t, dy, halo.local, features, sh.batch,
                                          Model::Impl::halo_rows(halo), n_dst,
                                          DstSpan::shard(rows.first, rows.last), d_kv, d_features);
    const Tensor d_kv_own = sh.halo_reduce(d_kv, halo, t.src_norm.rows() / sh.batch);
    Tensor d_src_norm = Tensor::uninitialised(t.src_norm.shape());
    linear_backward_side_by_side(ctx, {&b.key, &b.value}, t.src_norm, d_kv_own, &d_src_norm, false);
    if (b.separate_src_norm) {
        add_into(*d_src, layer_norm_backward(ctx, b.norm_src, t.src, d_src_norm));
    } else {
        add_into(dst.d_dst_norm, d_src_norm);
        add_into(dst.d_g, layer_norm_backward(ctx, b.norm_dst, t.g, dst.d_dst_norm));
    }
    return std::move(dst.d_g);
}

}  // namespace

Tensor forward_train_sharded(const Model::Impl& m, const Tensor& input, TrainingTape::Data& t,
                             const dist::Communicator& shards) {
    BOREAS_CHECK(m.config.encoder.type != MapperType::gnn && m.gnn_layers.empty(),
                 "model sharding in training runs graph-transformer mappers with a transformer or "
                 "graph-transformer processor; this config has GNN parts (run it with --shards 1, "
                 "or shard its inference: forward and forecast shard GNNs too)");
    const int ranks = shards.size();
    if (!m.transformer_layers.empty())
        BOREAS_CHECK(m.config.processor.num_heads % ranks == 0,
                     "model sharding over {} ranks: the transformer processor's {} heads do not "
                     "split into {} equal shares (heads are sharded; choose a shard count that "
                     "divides {})",
                     ranks, m.config.processor.num_heads, ranks, m.config.processor.num_heads);
    BOREAS_CHECK(m.n_hidden >= ranks, "model sharding over {} ranks: the hidden grid has {} nodes",
                 ranks, m.n_hidden);
    const std::int64_t batch = input.dim(0);
    const Sharding sh{shards, batch};
    const RowRange data_rows = sh.mine(m.n_data), hidden_rows = sh.mine(m.n_hidden);
    t = TrainingTape::Data{};
    t.shards = &shards;
    t.batch = batch;
    t.input = input;
    // The tape's data and hidden features are this rank's rows only.
    t.data = own_rows_of(m.data_features(input, batch), m.n_data, data_rows, batch);
    t.hidden_in = own_rows_of(m.hidden_features(batch), m.n_hidden, hidden_rows, batch);

    std::optional<trace::Range> range(std::in_place, "encoder");
    Tensor src;
    linear_forward(m.encoder_src_embedding, t.data, src);
    Tensor latent;
    linear_forward(m.encoder_dst_embedding, t.hidden_in, latent);
    const auto& enc_edges = m.graph->edge_set("data_to_hidden");
    block_forward_sharded(m.encoder, src, latent, m.halo_of("data_to_hidden", m.n_data, shards),
                          edge_features(enc_edges, m.trainable_encoder_edges), sh, m.n_hidden,
                          t.encoder, t.encoder_kv);

    range.emplace("processor");
    Tensor x = latent;
    if (!m.transformer_layers.empty()) {
        const std::size_t layers = m.transformer_layers.size();
        t.transformer.resize(layers);
        t.heads_qkv.resize(layers);
        t.heads_attended.resize(layers);
        t.heads_lse.resize(layers);
        for (std::size_t l = 0; l < layers; ++l)
            layer_forward_sharded(m.transformer_layers[l], x, sh, m.n_hidden, t.transformer[l],
                                  t.heads_qkv[l], t.heads_attended[l], t.heads_lse[l]);
    } else {
        const auto& edges = m.graph->edge_set("hidden_to_hidden");
        const Tensor features = edge_features(edges, m.trainable_processor_edges);
        const std::size_t layers = m.graph_transformer_layers.size();
        t.graph_transformer.resize(layers);
        t.processor_kv.resize(layers);
        const auto& halo = m.halo_of("hidden_to_hidden", m.n_hidden, shards);
        for (std::size_t l = 0; l < layers; ++l) {
            const Tensor in = x;
            block_forward_sharded(m.graph_transformer_layers[l], in, x, halo, features, sh,
                                  m.n_hidden, t.graph_transformer[l], t.processor_kv[l]);
        }
    }
    if (m.config.latent_skip) add_into(x, latent);
    t.processed_in = x;

    range.emplace("decoder");
    Tensor y;
    linear_forward(m.decoder_dst_embedding, t.data, y);
    const auto& dec_edges = m.graph->edge_set("hidden_to_data");
    block_forward_sharded(
        m.decoder, t.processed_in, y, m.halo_of("hidden_to_data", m.n_hidden, shards),
        edge_features(dec_edges, m.trainable_decoder_edges), sh, m.n_data, t.decoder, t.decoder_kv);
    t.decoded_y = y;
    t.extractor_norm = Tensor::uninitialised(y.shape());
    m.extractor_norm.apply(y.data(), y.rows(), t.extractor_norm.data());
    Tensor decoded_own;
    linear_forward(m.extractor, t.extractor_norm, decoded_own);
    t.decoder_taped = true;
    return output_forward(m, t, input, sh.gather(decoded_own, m.n_data));
}

void backward_sharded(const Model::Impl& m, TrainingTape::Data& t, const Tensor& d_output,
                      Gradients& grads) {
    const auto& comm = *t.shards;
    const std::int64_t batch = t.batch;
    const Sharding sh{comm, batch};
    const RowRange data_rows = sh.mine(m.n_data), hidden_rows = sh.mine(m.n_hidden);
    const std::int64_t n_data_own = data_rows.last - data_rows.first;
    // This rank's parts of the gradients, summed over the group at the end.
    Gradients local;
    for (const auto& [name, grad] : grads.parameters)
        local.parameters.emplace(name, zeros_like(grad));
    local.input = zeros_like(grads.input);
    Context ctx{m, local};
    const auto out_vars = static_cast<std::int64_t>(m.config.output_variables().size());

    std::optional<trace::Range> range(std::in_place, "decoder");
    // Every rank holds the whole output gradient: the residual's part of d(input) is added by
    // rank 0 alone, so the group's sum counts it once.
    const Tensor d = output_backward(m, t, d_output, comm.rank() == 0 ? &local.input : nullptr);
    Tensor d_decoded = Tensor::uninitialised({batch * n_data_own, out_vars});
    for (std::int64_t b = 0; b < batch; ++b)
        std::copy_n(d.data() + (b * m.n_data + data_rows.first) * out_vars, n_data_own * out_vars,
                    d_decoded.row(b * n_data_own));
    const Tensor d_y = extractor_backward(ctx, m, t.extractor_norm, t.decoded_y, d_decoded);
    const auto& dec_edges = m.graph->edge_set("hidden_to_data");
    const Tensor dec_features = edge_features(dec_edges, m.trainable_decoder_edges);
    Tensor d_dec_features = zeros_like(dec_features);
    Tensor d_x = zeros_like(t.processed_in);
    const Tensor d_dec_dst = block_backward_sharded(
        ctx, m.decoder, t.decoder, t.decoder_kv, d_y, m.halo_of("hidden_to_data", m.n_hidden, comm),
        dec_features, sh, m.n_data, &d_x, d_dec_features);
    Tensor d_data = zeros_like(t.data);
    linear_backward(ctx, m.decoder_dst_embedding, t.data, d_dec_dst, &d_data, false);
    if (m.trainable_decoder_edges)
        trainable_gradient(d_dec_features, 3, 1, ctx.find(m.trainable_decoder_edges));

    range.emplace("processor");
    Tensor d_latent = m.config.latent_skip ? d_x : zeros_like(d_x);
    if (!m.transformer_layers.empty()) {
        for (std::size_t l = m.transformer_layers.size(); l-- > 0;)
            d_x = layer_backward_sharded(ctx, m.transformer_layers[l], t.transformer[l],
                                         t.heads_qkv[l], t.heads_attended[l], t.heads_lse[l], d_x,
                                         sh, m.n_hidden);
    } else {
        const auto& edges = m.graph->edge_set("hidden_to_hidden");
        const Tensor features = edge_features(edges, m.trainable_processor_edges);
        Tensor d_features = zeros_like(features);
        for (std::size_t l = m.graph_transformer_layers.size(); l-- > 0;)
            d_x = block_backward_sharded(ctx, m.graph_transformer_layers[l], t.graph_transformer[l],
                                         t.processor_kv[l], d_x,
                                         m.halo_of("hidden_to_hidden", m.n_hidden, comm), features,
                                         sh, m.n_hidden, nullptr, d_features);
        if (m.trainable_processor_edges)
            trainable_gradient(d_features, 3, 1, ctx.find(m.trainable_processor_edges));
    }
    add_into(d_latent, d_x);

    range.emplace("encoder");
    const auto& enc_edges = m.graph->edge_set("data_to_hidden");
    const Tensor enc_features = edge_features(enc_edges, m.trainable_encoder_edges);
    Tensor d_enc_features = zeros_like(enc_features);
    Tensor d_src(t.encoder.src.shape());
    const Tensor d_latent_dst =
        block_backward_sharded(ctx, m.encoder, t.encoder, t.encoder_kv, d_latent,
                               m.halo_of("data_to_hidden", m.n_data, comm), enc_features, sh,
                               m.n_hidden, &d_src, d_enc_features);
    linear_backward(ctx, m.encoder_src_embedding, t.data, d_src, &d_data, true);
    Tensor d_hidden_in = zeros_like(t.hidden_in);
    linear_backward(ctx, m.encoder_dst_embedding, t.hidden_in, d_latent_dst, &d_hidden_in, false);
    if (m.trainable_encoder_edges)
        trainable_gradient(d_enc_features, 3, 1, ctx.find(m.trainable_encoder_edges));
    // Own rows of the hidden and data features: trainable node columns and the input.
    if (m.trainable_hidden) {
        Tensor& grad = ctx.find(m.trainable_hidden);
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t j = hidden_rows.first; j < hidden_rows.last; ++j)
                for (std::int64_t c = 0; c < grad.cols(); ++c)
                    grad.row(j)[c] += d_hidden_in.row(own_row(b, j, hidden_rows))[4 + c];
    }
    const std::int64_t in_vars = t.input.dim(4), steps = m.config.multistep_input;
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t n = data_rows.first; n < data_rows.last; ++n) {
            const float* dr = d_data.row(own_row(b, n, data_rows));
            for (std::int64_t s = 0; s < steps; ++s)
                for (std::int64_t v = 0; v < in_vars; ++v)
                    local.input.data()[((b * steps + s) * m.n_data + n) * in_vars + v] +=
                        dr[s * in_vars + v];
        }
    if (m.trainable_data) {
        Tensor& grad = ctx.find(m.trainable_data);
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t n = data_rows.first; n < data_rows.last; ++n)
                for (std::int64_t c = 0; c < grad.cols(); ++c)
                    grad.row(n)[c] += d_data.row(own_row(b, n, data_rows))[steps * in_vars + 4 + c];
    }
    // The group's sum, in rank order, in one all-reduce.
    range.emplace("exchange");
    std::int64_t total = local.input.numel();
    for (const auto& [name, grad] : local.parameters) total += grad.numel();
    std::vector<float> packed(static_cast<std::size_t>(total));
    std::int64_t at = 0;
    auto pack = [&](const Tensor& g) {
        std::copy(g.values().begin(), g.values().end(), packed.begin() + at);
        at += g.numel();
    };
    for (const auto& [name, grad] : local.parameters) pack(grad);
    pack(local.input);
    comm.allreduce_sum(std::span<float>(packed));
    at = 0;
    auto unpack = [&](Tensor& g) {
        float* out = g.data();
        for (std::int64_t i = 0; i < g.numel(); ++i)
            out[i] += packed[static_cast<std::size_t>(at + i)];
        at += g.numel();
    };
    for (auto& [name, grad] : grads.parameters) unpack(grad);
    unpack(grads.input);
}

}  // namespace boreas::model
