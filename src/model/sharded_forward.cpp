// Model sharding of the forward (issue 18): the ranks of one model-parallel group each compute a
// contiguous share of the data rows and of the hidden rows, for every batch element.
//
// - Graph-transformer mappers and processor blocks (anemoi's edge sharding with a halo): a rank
//   projects keys and values for its own source rows, each rank receives the k|v rows its own
//   destinations' edges read (graphs::Halo, one all-to-all), and updates its own destination
//   rows. Volume per rank and block: its halo's rows owned by others x 2C values.
// - Transformer processor (anemoi's shard_heads): a rank projects q|k|v for its rows, an
//   all-to-all hands each rank every row of its heads, the window attention runs per head over
//   the whole sequence (no halo needed), and a second all-to-all returns the attended rows to
//   their owners. Volume per rank and layer: (S - 1) / S^2 x N_hidden x 4C values.
// - GNN processor and mappers: a rank keeps the edges into its own rows; the sources'
//   projections are all-gathered once per layer ((S - 1) / S x N_src x C values).
// Every rank ends with the whole output (an all-gather of the output rows).

#include <algorithm>
#include <vector>

#include "boreas/backends/backend.hpp"
#include "boreas/core/trace.hpp"
#include "boreas/dist/communicator.hpp"
#include "sharding.hpp"

namespace boreas::model {

namespace {

/// One transformer layer on this rank's rows x_own [batch * own rows, C], heads exchanged
/// around the window attention (anemoi's shard_heads).
void transformer_layer_sharded(const TransformerLayer& layer, Tensor& x_own, const Sharding& sh,
                               std::int64_t seq) {
    const int ranks = sh.size();
    const std::int64_t c = layer.channels, share = c / ranks, rows = x_own.rows();
    Tensor normalised = Tensor::uninitialised({rows, c}),
           qkv = Tensor::uninitialised({rows, 3 * c});
    layer.norm_attention.apply(x_own.data(), rows, normalised.data());
    apply_side_by_side({&layer.q, &layer.k, &layer.v}, normalised.data(), rows, qkv.data());

    const Tensor heads_qkv = sh.rows_to_heads(qkv, seq, 3);
    Tensor attended_heads = Tensor::uninitialised({sh.batch * seq, share});
    kernels::WindowAttentionParams p;
    p.q = heads_qkv.data();
    p.k = heads_qkv.data() + share;
    p.v = heads_qkv.data() + 2 * share;
    p.stride = 3 * share;
    p.out = attended_heads.data();
    p.out_stride = share;
    p.batch = sh.batch;
    p.seq = seq;
    p.heads = layer.heads / ranks;
    p.head_dim = c / layer.heads;
    p.window = layer.window;
    p.bf16 = bf16_inference.load(std::memory_order_relaxed);
    backends::active().window_attention(p);
    const Tensor attended = sh.heads_to_rows(attended_heads, seq, 1);
    layer.projection.apply(attended.data(), rows, x_own.data(), /*accumulate=*/true);
    apply_mlp(layer.mlp_in, layer.mlp_out, &layer.norm_mlp, x_own.data(), rows, x_own.data());
}

}  // namespace

const graphs::Halo& Model::Impl::halo_of(const std::string& edge_set, std::int64_t n_src,
                                         const dist::Communicator& group) const {
    std::lock_guard<std::mutex> lock(halo_mutex);
    auto& halo = halos[{edge_set, group.size(), group.rank()}];
    if (!halo)
        halo = std::make_unique<graphs::Halo>(
            graphs::build_halo(graph->edge_set(edge_set), n_src, group.size(), group.rank()));
    return *halo;
}

Tensor Model::Impl::forward_sharded(const Tensor& input, const ForwardOptions& options) const {
    const auto& comm = *options.shards;
    const int ranks = comm.size();
    check_input(input, options.allow_nan);
    const std::int64_t batch = input.dim(0);
    BOREAS_CHECK(n_hidden >= ranks && n_data >= ranks,
                 "model sharding over {} ranks: the hidden grid has {} nodes, fewer than ranks",
                 ranks, n_hidden);
    if (!transformer_layers.empty())
        BOREAS_CHECK(config.processor.num_heads % ranks == 0,
                     "model sharding over {} ranks: the transformer processor's {} heads do not "
                     "split into {} equal shares (heads are sharded; choose a shard count that "
                     "divides {})",
                     ranks, config.processor.num_heads, ranks, config.processor.num_heads);
    const Sharding sh{comm, batch};
    const RowRange data_rows = sh.mine(n_data), hidden_rows = sh.mine(n_hidden);
    const std::int64_t n_data_own = data_rows.last - data_rows.first,
                       n_hidden_own = hidden_rows.last - hidden_rows.first;
    auto trace = [&](const char* name, const Tensor& own, std::int64_t n) {
        if (options.trace) options.trace(name, sh.gather(own, n));
    };

    Tensor data, hidden_in;
    {
        BOREAS_RANGE("input");
        data = data_features(input, batch);
        hidden_in = hidden_features(batch);
    }
    Tensor latent({batch * n_hidden_own, channels});
    Tensor data_latent;  // GNN mappers: the encoder's updated data nodes, own rows
    if (config.encoder.type == MapperType::gnn) {
        BOREAS_RANGE("encoder");
        const ConvWeights w(gnn_encoder.edge_mlp.linears[0]);
        data_latent = Tensor::uninitialised({batch * n_data_own, channels});
        Tensor p_src = Tensor::uninitialised({batch * n_data_own, channels});
        for (std::int64_t b = 0; b < batch; ++b) {
            const std::int64_t r0 = b * n_data_own;
            gnn_encoder.src_embedding.apply(data.row(b * n_data + data_rows.first), n_data_own,
                                            data_latent.row(r0));
            ConvWeights::project(w.src, data_latent.row(r0), n_data_own, p_src.row(r0));
            gnn_encoder.update_sources(data_latent.row(r0), n_data_own);
        }
        const Tensor p_src_all = sh.gather(p_src, n_data);
        const auto& edges = graph->edge_set("data_to_hidden");
        const Tensor features = edge_features(edges, trainable_encoder_edges);
        run_gnn_mapper(
            gnn_encoder, config.encoder, p_src_all, n_data, n_hidden, batch, edges, features, w,
            [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                gnn_encoder.dst_embedding.apply(hidden_in.row(b * n_hidden + j0), j1 - j0, out);
            },
            [&](std::int64_t b, std::int64_t j0, std::int64_t, const Tensor& rows) {
                std::copy(rows.values().begin(), rows.values().end(),
                          latent.row(own_row(b, j0, hidden_rows)));
            },
            hidden_rows);
    } else {
        BOREAS_RANGE("encoder");
        Tensor kv_own = Tensor::uninitialised({batch * n_data_own, 2 * channels});
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t j0 = data_rows.first; j0 < data_rows.last; j0 += kMaxChunkRows) {
                const std::int64_t rows = std::min(kMaxChunkRows, data_rows.last - j0);
                Tensor src = Tensor::uninitialised({rows, channels});
                encoder_src_embedding.apply(data.row(b * n_data + j0), rows, src.data());
                encoder.keys_values(src.data(), rows, kv_own.row(own_row(b, j0, data_rows)));
            }
        const auto& halo = halo_of("data_to_hidden", n_data, comm);
        const Tensor kv = sh.halo_exchange(kv_own, halo);
        const auto& edges = graph->edge_set("data_to_hidden");
        const Tensor features = edge_features(edges, trainable_encoder_edges);
        run_mapper(
            encoder, config.encoder, kv, halo_rows(halo), n_hidden, batch, halo.local, features,
            [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                encoder_dst_embedding.apply(hidden_in.row(b * n_hidden + j0), j1 - j0, out);
            },
            [&](std::int64_t b, std::int64_t j0, std::int64_t, const Tensor& rows) {
                std::copy(rows.values().begin(), rows.values().end(),
                          latent.row(own_row(b, j0, hidden_rows)));
            },
            hidden_rows);
    }
    trace("encoder.out", latent, n_hidden);

    Tensor processed = latent;
    {
        BOREAS_RANGE("processor");
        if (!transformer_layers.empty()) {
            for (std::size_t l = 0; l < transformer_layers.size(); ++l) {
                transformer_layer_sharded(transformer_layers[l], processed, sh, n_hidden);
                if (l == 0) trace("processor.layer0.out", processed, n_hidden);
            }
        } else if (!gnn_layers.empty()) {
            const auto& edges = graph->edge_set("hidden_to_hidden");
            const auto& off = edges.dst_offsets;
            const std::int64_t e_first = off[hidden_rows.first],
                               e_own = off[hidden_rows.last] - e_first;
            const Tensor features = edge_features(edges, trainable_processor_edges);
            // The edges into this rank's rows, embedded and tiled over the batch.
            Tensor embedded({e_own, channels});
            gnn_layers[0].edge_embedding.apply(features.row(e_first), e_own, embedded.data());
            Tensor edge_state({batch * e_own, channels});
            for (std::int64_t b = 0; b < batch; ++b)
                std::copy(embedded.values().begin(), embedded.values().end(),
                          edge_state.row(b * e_own));
            for (std::size_t l = 0; l < gnn_layers.size(); ++l) {
                gnn_layers[l].apply_rows(processed, edge_state, batch, n_hidden, hidden_rows, edges,
                                         [&](Tensor own) { return sh.gather(own, n_hidden); });
                if (l == 0) trace("processor.layer0.out", processed, n_hidden);
            }
        } else {
            const auto& edges = graph->edge_set("hidden_to_hidden");
            const Tensor features = edge_features(edges, trainable_processor_edges);
            const auto& halo = halo_of("hidden_to_hidden", n_hidden, comm);
            for (std::size_t l = 0; l < graph_transformer_layers.size(); ++l) {
                const auto& block = graph_transformer_layers[l];
                Tensor kv_own = Tensor::uninitialised({batch * n_hidden_own, 2 * channels});
                block.keys_values(processed.data(), batch * n_hidden_own, kv_own.data());
                const Tensor kv = sh.halo_exchange(kv_own, halo);
                MapperConfig whole;
                run_mapper(
                    block, whole, kv, halo_rows(halo), n_hidden, batch, halo.local, features,
                    [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                        const float* from = processed.row(own_row(b, j0, hidden_rows));
                        std::copy(from, from + (j1 - j0) * channels, out);
                    },
                    [&](std::int64_t b, std::int64_t j0, std::int64_t, const Tensor& rows) {
                        std::copy(rows.values().begin(), rows.values().end(),
                                  processed.row(own_row(b, j0, hidden_rows)));
                    },
                    hidden_rows);
                if (l == 0) trace("processor.layer0.out", processed, n_hidden);
            }
        }
    }
    trace("processor.out", processed, n_hidden);
    if (config.latent_skip) {
        float* p = processed.data();
        const float* z = latent.data();
        for (std::int64_t i = 0; i < processed.numel(); ++i) p[i] += z[i];
    }

    const auto out_vars = static_cast<std::int64_t>(config.output_variables().size());
    Tensor output_own = Tensor::uninitialised({batch * n_data_own, out_vars});
    {
        BOREAS_RANGE("decoder");
        if (config.decoder.type == MapperType::gnn) {
            const ConvWeights w(gnn_decoder.edge_mlp.linears[0]);
            Tensor p_src_own = Tensor::uninitialised({batch * n_hidden_own, channels});
            ConvWeights::project(w.src, processed.data(), batch * n_hidden_own, p_src_own.data());
            const Tensor p_src = sh.gather(p_src_own, n_hidden);
            const auto& edges = graph->edge_set("hidden_to_data");
            const Tensor features = edge_features(edges, trainable_decoder_edges);
            run_gnn_mapper(
                gnn_decoder, config.decoder, p_src, n_hidden, n_data, batch, edges, features, w,
                [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                    const float* from = data_latent.row(own_row(b, j0, data_rows));
                    std::copy(from, from + (j1 - j0) * channels, out);
                },
                [&](std::int64_t b, std::int64_t j0, std::int64_t j1, const Tensor& rows) {
                    gnn_decoder.extractor.apply(rows.data(), j1 - j0,
                                                output_own.row(own_row(b, j0, data_rows)));
                },
                data_rows);
        } else {
            Tensor kv_own = Tensor::uninitialised({batch * n_hidden_own, 2 * channels});
            decoder.keys_values(processed.data(), batch * n_hidden_own, kv_own.data());
            const auto& halo = halo_of("hidden_to_data", n_hidden, comm);
            const Tensor kv = sh.halo_exchange(kv_own, halo);
            const auto& edges = graph->edge_set("hidden_to_data");
            const Tensor features = edge_features(edges, trainable_decoder_edges);
            run_mapper(
                decoder, config.decoder, kv, halo_rows(halo), n_data, batch, halo.local, features,
                [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                    decoder_dst_embedding.apply(data.row(b * n_data + j0), j1 - j0, out);
                },
                [&](std::int64_t b, std::int64_t j0, std::int64_t j1, const Tensor& rows) {
                    Tensor normalised = Tensor::uninitialised({j1 - j0, channels});
                    extractor_norm.apply(rows.data(), j1 - j0, normalised.data());
                    extractor.apply(normalised.data(), j1 - j0,
                                    output_own.row(own_row(b, j0, data_rows)));
                },
                data_rows);
        }
    }
    Tensor output;
    {
        BOREAS_RANGE("output");
        output = sh.gather(output_own, n_data);
        if (options.trace) options.trace("decoder.out", output);
        output.reshape({batch, 1, 1, n_data, out_vars});
        finish_output(input, output);
    }
    if (options.trace) options.trace("output", output);
    return output;
}

}  // namespace boreas::model
