#pragma once
// Internals of Model shared by the forward (model.cpp) and training (training.cpp) code: the
// layers and blocks, and Model::Impl. Not part of the public API.

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <tuple>
#include <utility>

#include "boreas/backends/backend.hpp"
#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/trace.hpp"
#include "boreas/graphs/halo.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/kernels/kernels.hpp"
#include "boreas/model/model.hpp"
#include "layers.hpp"
#include "legacy_weights.hpp"
#include "names.hpp"

namespace boreas::model {

namespace detail {

using graphs::EdgeSet;
using graphs::NodeSet;

// Destination rows handled at once by a mapper: bounds the [rows, 4C] MLP buffer and friends
// (about 0.5 GiB at C = 1024) whatever the grid size.
constexpr std::int64_t kMaxChunkRows = 32768;
/// Element-wise loops over at least this many values run on all threads.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;

/// Rows [first, last) of a node set; last < 0: to the end.
struct RowRange {
    std::int64_t first = 0, last = -1;
};

/// Edge features e0 = [edge_length, edge_dirs (2), trainable (t)] in CSR order: [E, 3 + t].
inline Tensor edge_features(const EdgeSet& edges, const Tensor* trainable) {
    const auto count = edges.count();
    const std::int64_t t = trainable ? trainable->cols() : 0;
    Tensor features({count, 3 + t});
    for (std::int64_t e = 0; e < count; ++e) {
        float* row = features.row(e);
        row[0] = edges.edge_length[e];
        row[1] = edges.edge_dirs[2 * e];
        row[2] = edges.edge_dirs[2 * e + 1];
        for (std::int64_t c = 0; c < t; ++c) row[3 + c] = trainable->row(e)[c];
    }
    return features;
}

/// The graph-transformer block of the mappers and of the graph-transformer processor
/// (anemoi GraphTransformerMapperBlock / GraphTransformerProcessorBlock, spec 3.2 and 4.2).
/// A graph block's source keys and values, [rows, 2C] (keys in columns [0, C)): fp32, or bf16
/// bits in the bf16 forward (kernels::GraphAttentionParams::k_bf16), where the encoder's are
/// the forward's largest tensor (N320, C 1024: 2.2 GB instead of 4.4 GB). Holds or views them.
struct KeysValues {
    Tensor f32;
    Bf16Buffer owned_bf16;
    const float* f32_rows = nullptr;
    const std::uint16_t* bf16_rows = nullptr;
    std::int64_t width = 0;  // 2C

    KeysValues() = default;
    KeysValues(const Tensor& viewed)  // NOLINT: a Tensor of fp32 rows is a view
        : f32_rows(viewed.data()), width(viewed.shape()[1]) {}
    /// Storage for `rows` rows: bf16 under the bf16 forward, else fp32.
    static KeysValues allocate(std::int64_t rows, std::int64_t width) {
        KeysValues kv;
        kv.width = width;
        if (bf16_inference.load(std::memory_order_relaxed)) {
            // Default-initialised: every value is written before it is read.
            kv.owned_bf16 = Bf16Buffer(static_cast<std::size_t>(rows * width));
            kv.bf16_rows = kv.owned_bf16.data();
        } else {
            kv.f32 = Tensor::uninitialised({rows, width});
            kv.f32_rows = kv.f32.data();
        }
        return kv;
    }
    bool is_bf16() const { return bf16_rows != nullptr; }
    /// A view of the rows from `row` on.
    KeysValues from_row(std::int64_t row) const {
        KeysValues view;
        view.width = width;
        if (f32_rows) view.f32_rows = f32_rows + row * width;
        if (bf16_rows) view.bf16_rows = bf16_rows + row * width;
        return view;
    }
};

struct GraphTransformerBlock {
    std::int64_t channels = 0, heads = 0, hidden = 0, edge_dim = 0;
    LayerNorm norm_src, norm_dst, norm_mlp;
    Linear query, key, value, self, edge, projection, mlp_in, mlp_out;
    bool separate_src_norm = true;  // mappers normalise src and dst with their own LayerNorms

    static GraphTransformerBlock declare(ParameterStore& store, const BlockNames& names,
                                         std::int64_t channels, std::int64_t heads,
                                         double mlp_ratio, std::int64_t edge_dim, bool mapper) {
        GraphTransformerBlock b;
        b.channels = channels;
        b.heads = heads;
        b.hidden = hidden_width(channels, mlp_ratio);
        b.edge_dim = edge_dim;
        b.separate_src_norm = mapper;
        b.query = Linear::declare(store, names.query, channels, channels);
        b.key = Linear::declare(store, names.key, channels, channels);
        b.value = Linear::declare(store, names.value, channels, channels);
        b.self = Linear::declare(store, names.self, channels, channels);
        b.edge = Linear::declare(store, names.edge, edge_dim, channels);
        b.projection = Linear::declare(store, names.projection, channels, channels);
        if (mapper) b.norm_src = LayerNorm::declare(store, names.norm_src, channels);
        b.norm_dst = LayerNorm::declare(store, names.norm_dst, channels);
        b.norm_mlp = LayerNorm::declare(store, names.norm_mlp, channels);
        b.mlp_in = Linear::declare(store, names.mlp_in, channels, b.hidden);
        b.mlp_out = Linear::declare(store, names.mlp_out, b.hidden, channels);
        return b;
    }

    /// Keys and values of the (normalised) source rows side by side: kv [rows, 2C], keys in
    /// columns [0, C), values in [C, 2C).
    void keys_values(const float* src, std::int64_t rows, float* kv) const {
        Tensor normalised = Tensor::uninitialised({rows, channels});
        (separate_src_norm ? norm_src : norm_dst).apply(src, rows, normalised.data());
        apply_side_by_side({&key, &value}, normalised.data(), rows, kv);
    }

    /// keys_values into rows [row, row + rows) of the storage `kv` owns, fp32 or bf16 as it is.
    void keys_values(const float* src, std::int64_t rows, KeysValues& kv, std::int64_t row) const {
        if (!kv.is_bf16()) {
            keys_values(src, rows, kv.f32.row(row));
            return;
        }
        Tensor normalised = Tensor::uninitialised({rows, channels});
        (separate_src_norm ? norm_src : norm_dst).apply(src, rows, normalised.data());
        apply_side_by_side({&key, &value}, normalised.data(), rows,
                           kv.owned_bf16.data() + row * kv.width);
    }

    /// Updates destination rows [j0, j1) of one batch element: g holds their (un-normalised)
    /// embeddings on entry and the block's output on return. `kv` points at the batch element's
    /// first source row of keys_values' output.
    void destination_chunk(float* g, std::int64_t j0, std::int64_t j1, const KeysValues& kv,
                           std::int64_t n_src, const EdgeSet& edges, const Tensor& features) const {
        const std::int64_t rows = j1 - j0;
        if (rows == 0) return;
        // The query and the skip projection r read the same normalised rows: one GEMM.
        Tensor normalised = Tensor::uninitialised({rows, channels}),
               q_self = Tensor::uninitialised({rows, 2 * channels}),
               attended = Tensor::uninitialised({rows, channels});
        norm_dst.apply(g, rows, normalised.data());
        apply_side_by_side({&query, &self}, normalised.data(), rows, q_self.data());
        kernels::GraphAttentionParams p;
        p.q = q_self.data();
        p.q_stride = 2 * channels;
        if (kv.is_bf16()) {
            p.k_bf16 = kv.bf16_rows;
            p.v_bf16 = kv.bf16_rows + channels;
        } else {
            p.k = kv.f32_rows;
            p.v = kv.f32_rows + channels;
        }
        p.kv_stride = 2 * channels;
        p.edge_features = features.data();
        p.edge_weight = edge.weight->data();
        p.edge_bias = edge.bias->data();
        p.dst_offsets = edges.dst_offsets.data() + j0;
        p.src = edges.src.data();
        p.out = attended.data();
        p.batch = 1;
        p.n_src = n_src;
        p.n_dst = rows;
        p.heads = heads;
        p.head_dim = channels / heads;
        p.edge_dim = edge_dim;
        backends::active().graph_attention(p);
        // o + r (on all threads on the CPU).
        copy_rows(q_self.data() + channels, 2 * channels, attended.data(), channels, rows, channels,
                  /*add=*/true);
        projection.apply(attended.data(), rows, g, /*accumulate=*/true);  // u = proj + g
        // y = u + MLP(LN(u))
        apply_mlp(mlp_in, mlp_out, &norm_mlp, g, rows, g);
    }
};

struct TransformerLayer {
    std::int64_t channels = 0, heads = 0, hidden = 0, window = 0;
    LayerNorm norm_attention, norm_mlp;
    Linear q, k, v, projection, mlp_in, mlp_out;

    static TransformerLayer declare(ParameterStore& store, const TransformerNames& names,
                                    std::int64_t channels, const ProcessorConfig& config) {
        TransformerLayer layer;
        layer.channels = channels;
        layer.heads = config.num_heads;
        layer.hidden = hidden_width(channels, config.mlp_hidden_ratio);
        layer.window = config.window_size;
        layer.norm_attention = LayerNorm::declare(store, names.norm_attention, channels);
        layer.q = Linear::declare(store, names.q, channels, channels, /*bias=*/false);
        layer.k = Linear::declare(store, names.k, channels, channels, /*bias=*/false);
        layer.v = Linear::declare(store, names.v, channels, channels, /*bias=*/false);
        layer.projection = Linear::declare(store, names.projection, channels, channels);
        layer.norm_mlp = LayerNorm::declare(store, names.norm_mlp, channels);
        layer.mlp_in = Linear::declare(store, names.mlp_in, channels, layer.hidden);
        layer.mlp_out = Linear::declare(store, names.mlp_out, layer.hidden, channels);
        return layer;
    }

    /// x [batch*seq, C] in place: x += Attn(LN(x)); x += MLP(LN(x)).
    void apply(Tensor& x, std::int64_t batch, std::int64_t seq) const {
        const std::int64_t rows = x.rows();
        Tensor normalised = Tensor::uninitialised({rows, channels}),
               qkv = Tensor::uninitialised({rows, 3 * channels}),
               attended = Tensor::uninitialised({rows, channels});
        norm_attention.apply(x.data(), rows, normalised.data());
        apply_side_by_side({&q, &k, &v}, normalised.data(), rows, qkv.data());
        kernels::WindowAttentionParams p;
        p.q = qkv.data();
        p.k = qkv.data() + channels;
        p.v = qkv.data() + 2 * channels;
        p.stride = 3 * channels;
        p.out = attended.data();
        p.out_stride = channels;
        p.batch = batch;
        p.seq = seq;
        p.heads = heads;
        p.head_dim = channels / heads;
        p.window = window;
        p.bf16 = bf16_inference.load(std::memory_order_relaxed);
        backends::active().window_attention(p);
        projection.apply(attended.data(), rows, x.data(), /*accumulate=*/true);
        apply_mlp(mlp_in, mlp_out, &norm_mlp, x.data(), rows, x.data());
    }
};

/// anemoi's MLP: Linear -> GELU -> ... -> Linear, then LayerNorm (GNN parts use the norm).
struct Mlp {
    std::vector<Linear> linears;
    LayerNorm norm;

    bool has_norm = true;  // anemoi's MLP(layer_norm=False): the GNN decoder's extractor

    static Mlp declare(ParameterStore& store, const names::MlpNames& names, std::int64_t in,
                       std::int64_t hidden, std::int64_t out, bool layer_norm = true) {
        Mlp mlp;
        const auto count = static_cast<int>(names.linears.size());
        for (int i = 0; i < count; ++i)
            mlp.linears.push_back(Linear::declare(store, names.linears[i], i == 0 ? in : hidden,
                                                  i + 1 == count ? out : hidden));
        mlp.has_norm = layer_norm;
        if (layer_norm) mlp.norm = LayerNorm::declare(store, names.norm, out);
        return mlp;
    }

    std::int64_t out() const { return linears.back().out; }

    /// y = LN(MLP(x)) (or MLP(x) without the norm); `first` (optional) replaces the first
    /// Linear's output, for callers that build it from pieces.
    void apply(const float* x, std::int64_t rows, float* y, Tensor* first = nullptr) const {
        Tensor a, b;
        const bool activate_first = linears.size() > 1;  // GELU between Linears, not after the last
        if (first == nullptr) {
            a = Tensor({rows, linears[0].out});
            if (activate_first)
                linears[0].apply_gelu(x, rows, a.data());
            else
                linears[0].apply(x, rows, a.data());
        } else {
            a = std::move(*first);
            if (activate_first) backends::active().gelu(a.data(), a.numel());
        }
        for (std::size_t i = 1; i < linears.size(); ++i) {
            b = Tensor({rows, linears[i].out});
            if (i + 1 < linears.size())
                linears[i].apply_gelu(a.data(), rows, b.data());
            else
                linears[i].apply(a.data(), rows, b.data());
            std::swap(a, b);
        }
        if (has_norm)
            norm.apply(a.data(), rows, y);
        else
            std::copy_n(a.data(), a.numel(), y);
    }
};

/// The first Linear of anemoi's GraphConv edge MLP acts on [x_dst, x_src, e]: its weight split by
/// input block, so node projections are computed once per node, not once per edge.
struct ConvWeights {
    Tensor dst, src, edge;  // [C, C] each
    const Tensor* bias = nullptr;

    explicit ConvWeights(const Linear& first) : bias(first.bias) {
        const std::int64_t c = first.out;
        dst = Tensor::uninitialised({c, c});
        src = Tensor::uninitialised({c, c});
        edge = Tensor::uninitialised({c, c});
        for (std::int64_t r = 0; r < c; ++r) {
            const float* row = first.weight->row(r);
            std::copy(row, row + c, dst.row(r));
            std::copy(row + c, row + 2 * c, src.row(r));
            std::copy(row + 2 * c, row + 3 * c, edge.row(r));
        }
    }

    /// out[rows, C] = in[rows, C] w^T (+ the Linear's bias when `with_bias`).
    static void project(const Tensor& w, const float* in, std::int64_t rows, float* out,
                        const Tensor* bias = nullptr) {
        Linear l;
        l.weight = &w;
        l.bias = bias;
        l.in = w.cols();
        l.out = w.rows();
        l.apply(in, rows, out);
    }
};

/// anemoi GraphConvProcessorBlock (spec 4.3): messages m_ij = MLP_e([h_j, h_i, e_ij]) + e_ij,
/// h_j += MLP_n([h_j, sum_i m_ij]), and the messages become the next layer's edges.
struct GnnLayer {
    std::int64_t channels = 0;
    bool embeds_edges = false;
    Mlp edge_embedding, edge_mlp, node_mlp;

    static GnnLayer declare(ParameterStore& store, int layer, std::int64_t channels,
                            std::int64_t edge_dim, const ProcessorConfig& config) {
        GnnLayer g;
        g.channels = channels;
        // anemoi's GNN MLPs get n_extra_layers = mlp_extra_layers + 1: Linear, act, then that
        // many hidden Linear+act pairs, then the output Linear.
        const int linears = config.mlp_extra_layers + 3;
        const auto n = names::gnn_layer(layer, linears);
        const auto hidden = hidden_width(channels, config.mlp_hidden_ratio);
        g.embeds_edges = layer == 0;
        if (g.embeds_edges)
            g.edge_embedding = Mlp::declare(store, n.edge_embedding, edge_dim, hidden, channels);
        // GraphConv's edge MLP always has hidden width C (anemoi ignores the ratio there).
        g.edge_mlp = Mlp::declare(store, n.edge_mlp, 3 * channels, channels, channels);
        g.node_mlp = Mlp::declare(store, n.node_mlp, 2 * channels, hidden, channels);
        return g;
    }

    /// x [batch*n, C] and edges [batch*E, C] (rows b*E + CSR position) are updated in place.
    void apply(Tensor& x, Tensor& edges, std::int64_t batch, std::int64_t n,
               const EdgeSet& graph_edges) const {
        apply_rows(x, edges, batch, n, {0, n}, graph_edges, [](Tensor p) { return p; });
    }

    /// Destination rows [first, last) of every batch element (model sharding): x holds just
    /// those rows [batch*rows, C] and edges the edges into them [batch*E_rows, C];
    /// `gather_sources(p)` turns the rows' source projections into all n nodes' [batch*n, C].
    template <typename Gather>
    void apply_rows(Tensor& x, Tensor& edges, std::int64_t batch, std::int64_t n, RowRange range,
                    const EdgeSet& graph_edges, Gather&& gather_sources) const {
        const std::int64_t j0 = range.first, rows = range.last - range.first, c = channels;
        const auto& off = graph_edges.dst_offsets;
        const std::int64_t e_first = off[j0], count = off[range.last] - e_first;
        const ConvWeights w(edge_mlp.linears[0]);
        Tensor p_dst({batch * rows, c}), p_src({batch * rows, c});
        ConvWeights::project(w.dst, x.data(), batch * rows, p_dst.data());
        ConvWeights::project(w.src, x.data(), batch * rows, p_src.data());
        p_src = gather_sources(std::move(p_src));
        Tensor pre({batch * count, c});
        ConvWeights::project(w.edge, edges.data(), batch * count, pre.data(), w.bias);
#pragma omp parallel for schedule(static)
        for (std::int64_t row = 0; row < batch * count; ++row) {
            const std::int64_t b = row / count, e = e_first + row % count;
            const std::int64_t j = std::upper_bound(off.begin(), off.end(), e) - off.begin() - 1;
            const float* pd = p_dst.row(b * rows + j - j0);
            const float* ps = p_src.row(b * n + graph_edges.src[e]);
            float* out = pre.row(row);
            for (std::int64_t k = 0; k < c; ++k) out[k] += pd[k] + ps[k];
        }
        Tensor messages({batch * count, c});
        edge_mlp.apply(nullptr, batch * count, messages.data(), &pre);
        for (std::int64_t i = 0; i < messages.numel(); ++i) messages.data()[i] += edges.data()[i];
        // Sum the messages into their destinations, in CSR order (deterministic).
        Tensor node_in({batch * rows, 2 * c});
#pragma omp parallel for schedule(static)
        for (std::int64_t row = 0; row < batch * rows; ++row) {
            const std::int64_t b = row / rows, j = j0 + row % rows;
            float* out = node_in.row(row);
            std::copy(x.row(row), x.row(row) + c, out);
            float* agg = out + c;
            std::fill(agg, agg + c, 0.0f);
            for (auto e = off[j]; e < off[j + 1]; ++e) {
                const float* m = messages.row(b * count + e - e_first);
                for (std::int64_t k = 0; k < c; ++k) agg[k] += m[k];
            }
        }
        Tensor update({batch * rows, c});
        node_mlp.apply(node_in.data(), batch * rows, update.data());
        for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] += update.data()[i];
        edges = std::move(messages);
    }
};

/// anemoi's GNN mappers (GNNForwardMapper, GNNBackwardMapper): edges embedded by an MLP, one
/// GraphConv from sources to destinations (messages m = MLP_e([x_dst, x_src, e]) + e, summed per
/// destination) and x_dst += MLP_n([x_dst, sum m]). The forward mapper embeds both node sets with
/// MLPs and also updates its sources, x_src += MLP_n([x_src, x_src]) (anemoi's
/// GraphConvMapperBlock, update_src_nodes); the decoder reads those updated data nodes as its
/// destinations and ends in an MLP extractor without LayerNorm. Every MLP has mlp_extra_layers + 3
/// Linears; the edge MLP's hidden width is C, the others' C * mlp_hidden_ratio.
struct GnnMapper {
    std::int64_t channels = 0;
    Mlp edge_embedding, src_embedding, dst_embedding, edge_mlp, node_mlp, extractor;

    /// `mapper` is "encoder" (forward: embeds src_width and dst_width features) or "decoder"
    /// (backward: extracts out_width columns).
    static GnnMapper declare(ParameterStore& store, const std::string& mapper,
                             std::int64_t channels, const MapperConfig& config,
                             std::int64_t edge_dim, std::int64_t src_width, std::int64_t dst_width,
                             std::int64_t out_width) {
        GnnMapper g;
        g.channels = channels;
        const std::string p = mapper + ".data.";
        const int linears = config.mlp_extra_layers + 3;
        const auto hidden = hidden_width(channels, config.mlp_hidden_ratio);
        g.edge_embedding =
            Mlp::declare(store, names::mlp(p + "emb_edges.", linears), edge_dim, hidden, channels);
        if (mapper == "encoder") {
            g.src_embedding = Mlp::declare(store, names::mlp(p + "emb_nodes_src.", linears),
                                           src_width, hidden, channels);
            g.dst_embedding = Mlp::declare(store, names::mlp(p + "emb_nodes_dst.", linears),
                                           dst_width, hidden, channels);
        }
        g.edge_mlp = Mlp::declare(store, names::mlp(p + "proc.conv.edge_mlp.", linears),
                                  3 * channels, channels, channels);
        g.node_mlp = Mlp::declare(store, names::mlp(p + "proc.node_mlp.", linears), 2 * channels,
                                  hidden, channels);
        if (mapper == "decoder")
            g.extractor = Mlp::declare(store, names::mlp(p + "node_data_extractor.", linears),
                                       channels, hidden, out_width, /*layer_norm=*/false);
        return g;
    }

    /// The forward mapper's source update, in place on x [rows, C]: x += MLP_n([x, x]).
    void update_sources(float* x, std::int64_t rows) const {
        const std::int64_t c = channels;
        Tensor node_in = Tensor::uninitialised({rows, 2 * c}), update({rows, c});
        for (std::int64_t r = 0; r < rows; ++r) {
            std::copy_n(x + r * c, c, node_in.row(r));
            std::copy_n(x + r * c, c, node_in.row(r) + c);
        }
        node_mlp.apply(node_in.data(), rows, update.data());
        for (std::int64_t i = 0; i < rows * c; ++i) x[i] += update.data()[i];
    }

    /// Destination rows [j0, j1) of one batch element: x_dst holds their embeddings on entry and
    /// the updated rows on return. p_src = x_src w.src^T for the batch element's sources;
    /// `features` are the edge features e0 [E, 3 + t] in CSR order.
    void destination_chunk(float* x_dst, std::int64_t j0, std::int64_t j1, const float* p_src,
                           const EdgeSet& edges, const Tensor& features,
                           const ConvWeights& w) const {
        const std::int64_t rows = j1 - j0, c = channels;
        if (rows == 0) return;
        const std::int64_t e0 = edges.dst_offsets[j0], count = edges.dst_offsets[j1] - e0;
        Tensor node_in = Tensor::uninitialised({rows, 2 * c});
        for (std::int64_t r = 0; r < rows; ++r) {
            std::copy_n(x_dst + r * c, c, node_in.row(r));
            std::fill_n(node_in.row(r) + c, c, 0.0f);
        }
        if (count > 0) {
            Tensor embedded = Tensor::uninitialised({count, c}),
                   p_dst = Tensor::uninitialised({rows, c}),
                   pre = Tensor::uninitialised({count, c});
            edge_embedding.apply(features.row(e0), count, embedded.data());
            ConvWeights::project(w.dst, x_dst, rows, p_dst.data());
            ConvWeights::project(w.edge, embedded.data(), count, pre.data(), w.bias);
#pragma omp parallel for schedule(static) if (count * c >= kParallelElements)
            for (std::int64_t r = 0; r < rows; ++r) {
                const float* pd = p_dst.row(r);
                for (auto e = edges.dst_offsets[j0 + r]; e < edges.dst_offsets[j0 + r + 1]; ++e) {
                    const float* ps = p_src + edges.src[e] * c;
                    float* out = pre.row(e - e0);
                    for (std::int64_t k = 0; k < c; ++k) out[k] += pd[k] + ps[k];
                }
            }
            Tensor messages = Tensor::uninitialised({count, c});
            edge_mlp.apply(nullptr, count, messages.data(), &pre);
            // Sum m = MLP_e(...) + e into each destination, in CSR order (deterministic).
#pragma omp parallel for schedule(static) if (count * c >= kParallelElements)
            for (std::int64_t r = 0; r < rows; ++r) {
                float* agg = node_in.row(r) + c;
                for (auto e = edges.dst_offsets[j0 + r]; e < edges.dst_offsets[j0 + r + 1]; ++e) {
                    const float* m = messages.row(e - e0);
                    const float* emb = embedded.row(e - e0);
                    for (std::int64_t k = 0; k < c; ++k) agg[k] += m[k] + emb[k];
                }
            }
        }
        Tensor update = Tensor::uninitialised({rows, c});
        node_mlp.apply(node_in.data(), rows, update.data());
        for (std::int64_t i = 0; i < rows * c; ++i) x_dst[i] += update.data()[i];
    }
};

inline void check_graph(const ModelConfig& config, const graphs::Graph& graph) {
    for (const char* set : {"data_to_hidden", "hidden_to_data"})
        BOREAS_CHECK(graph.edges.count(set), "graph has no '{}' edge set", set);
    const bool needs_processor_edges = config.processor.type != ProcessorType::transformer;
    BOREAS_CHECK(!needs_processor_edges || graph.edges.count("hidden_to_hidden"),
                 "config '{}' has a graph processor but the graph has no 'hidden_to_hidden' edges",
                 config.name);
}

}  // namespace detail

using namespace detail;

struct Model::Impl {
    ModelConfig config;
    std::shared_ptr<const graphs::Graph> graph;
    ParameterStore store;
    backends::Device device;  // Model::set_device
    std::int64_t n_data = 0, n_hidden = 0, channels = 0;
    const Tensor* trainable_data = nullptr;
    const Tensor* trainable_hidden = nullptr;
    const Tensor* trainable_encoder_edges = nullptr;
    const Tensor* trainable_decoder_edges = nullptr;
    const Tensor* trainable_processor_edges = nullptr;
    Linear encoder_src_embedding, encoder_dst_embedding, decoder_dst_embedding, extractor;
    LayerNorm extractor_norm;
    GraphTransformerBlock encoder, decoder;  // graph-transformer mappers
    GnnMapper gnn_encoder, gnn_decoder;      // GNN mappers (config.encoder.type gnn)
    std::vector<TransformerLayer> transformer_layers;
    std::vector<GraphTransformerBlock> graph_transformer_layers;
    std::vector<GnnLayer> gnn_layers;
    std::vector<std::string> chunk_names;  // "chunk0", ...: processor checkpoint units

    Impl(ModelConfig c, std::shared_ptr<const graphs::Graph> g)
        : config(std::move(c)), graph(std::move(g)) {
        check_graph(config, *graph);
        n_data = graph->node_set("data").count();
        n_hidden = graph->node_set("hidden").count();
        channels = config.num_channels;
        const auto& t = config.trainable;
        const auto& enc_edges = graph->edge_set("data_to_hidden");
        const auto& dec_edges = graph->edge_set("hidden_to_data");
        if (t.data > 0)
            trainable_data = store.declare(names::kTrainableData, {n_data, t.data}, Init::zeros);
        if (t.hidden > 0)
            trainable_hidden =
                store.declare(names::kTrainableHidden, {n_hidden, t.hidden}, Init::zeros);
        if (t.data2hidden > 0)
            trainable_encoder_edges = store.declare(
                names::kTrainableEncoderEdges, {enc_edges.count(), t.data2hidden}, Init::zeros);
        if (t.hidden2data > 0)
            trainable_decoder_edges = store.declare(
                names::kTrainableDecoderEdges, {dec_edges.count(), t.hidden2data}, Init::zeros);

        const auto data_width = config.data_feature_width();
        const auto hidden_width_in = config.hidden_feature_width();
        const auto out_vars = static_cast<std::int64_t>(config.output_variables().size());
        if (config.encoder.type == MapperType::gnn) {
            gnn_encoder = GnnMapper::declare(store, "encoder", channels, config.encoder,
                                             3 + t.data2hidden, data_width, hidden_width_in, 0);
            gnn_decoder = GnnMapper::declare(store, "decoder", channels, config.decoder,
                                             3 + t.hidden2data, channels, channels, out_vars);
        } else {
            encoder_src_embedding =
                Linear::declare(store, names::encoder("emb_nodes_src"), data_width, channels);
            encoder_dst_embedding =
                Linear::declare(store, names::encoder("emb_nodes_dst"), hidden_width_in, channels);
            encoder = GraphTransformerBlock::declare(
                store, names::mapper_block("encoder"), channels, config.encoder.num_heads,
                config.encoder.mlp_hidden_ratio, 3 + t.data2hidden, /*mapper=*/true);
            decoder_dst_embedding =
                Linear::declare(store, names::decoder("emb_nodes_dst"), data_width, channels);
            decoder = GraphTransformerBlock::declare(
                store, names::mapper_block("decoder"), channels, config.decoder.num_heads,
                config.decoder.mlp_hidden_ratio, 3 + t.hidden2data, /*mapper=*/true);
            extractor_norm =
                LayerNorm::declare(store, names::decoder("node_data_extractor.0"), channels);
            extractor =
                Linear::declare(store, names::decoder("node_data_extractor.1"), channels, out_vars);
        }

        const auto& processor = config.processor;
        for (int chunk = 0; chunk < processor.num_chunks; ++chunk)
            chunk_names.push_back("chunk" + std::to_string(chunk));
        if (processor.type == ProcessorType::transformer) {
            for (int l = 0; l < processor.num_layers; ++l)
                transformer_layers.push_back(TransformerLayer::declare(
                    store, names::transformer_layer(l), channels, processor));
        } else if (processor.type == ProcessorType::graph_transformer) {
            const auto& edges = graph->edge_set("hidden_to_hidden");
            if (t.hidden2hidden > 0)
                trainable_processor_edges = store.declare(
                    names::kTrainableProcessorEdges, {edges.count(), t.hidden2hidden}, Init::zeros);
            for (int l = 0; l < processor.num_layers; ++l)
                graph_transformer_layers.push_back(GraphTransformerBlock::declare(
                    store, names::processor_block(l), channels, processor.num_heads,
                    processor.mlp_hidden_ratio, 3 + t.hidden2hidden, /*mapper=*/false));
        } else {
            const auto& edges = graph->edge_set("hidden_to_hidden");
            if (t.hidden2hidden > 0)
                trainable_processor_edges = store.declare(
                    names::kTrainableProcessorEdges, {edges.count(), t.hidden2hidden}, Init::zeros);
            for (int l = 0; l < processor.num_layers; ++l)
                gnn_layers.push_back(
                    GnnLayer::declare(store, l, channels, 3 + t.hidden2hidden, processor));
        }
    }

    /// [B*N_d, T*V_in + 4 + t_d]: time-major inputs, sin/cos of lat/lon, trainable columns.
    Tensor data_features(const Tensor& input, std::int64_t batch) const {
        const auto steps = config.multistep_input;
        const auto vars = input.dim(4);
        const auto width = config.data_feature_width();
        Tensor features({batch * n_data, width});
        const auto& coords = graph->node_set("data").coords;
#pragma omp parallel for schedule(static)
        for (std::int64_t row = 0; row < batch * n_data; ++row) {
            const std::int64_t b = row / n_data, n = row % n_data;
            float* out = features.row(row);
            for (std::int64_t t = 0; t < steps; ++t) {
                const float* x = input.data() + ((b * steps + t) * n_data + n) * vars;
                std::copy(x, x + vars, out + t * vars);
            }
            node_attributes(out + steps * vars, coords, n, trainable_data);
        }
        return features;
    }

    /// [sin lat, sin lon, cos lat, cos lon, trainable...] of node n (anemoi's column order).
    static void node_attributes(float* out, const std::vector<float>& coords, std::int64_t n,
                                const Tensor* trainable) {
        const float lat = coords[2 * n], lon = coords[2 * n + 1];
        out[0] = std::sin(lat);
        out[1] = std::sin(lon);
        out[2] = std::cos(lat);
        out[3] = std::cos(lon);
        if (trainable) std::copy_n(trainable->row(n), trainable->cols(), out + 4);
    }

    Tensor hidden_features(std::int64_t batch) const {
        const auto width = config.hidden_feature_width();
        Tensor features({batch * n_hidden, width});
        const auto& coords = graph->node_set("hidden").coords;
        for (std::int64_t row = 0; row < batch * n_hidden; ++row)
            node_attributes(features.row(row), coords, row % n_hidden, trainable_hidden);
        return features;
    }

    /// Calls fn(b, j0, j1) for destination chunks covering [0, n_dst) of every batch element: at
    /// least `num_chunks` chunks of at most kMaxChunkRows rows and, when max_edges > 0, of at
    /// most max_edges incoming edges (a single destination with more edges gets its own chunk).
    /// `rows` (model sharding: this rank's share) restricts the chunks to that range.
    template <typename Fn>
    static void for_destination_chunks(int num_chunks, std::int64_t n_dst, std::int64_t batch,
                                       const EdgeSet& edges, std::int64_t max_edges, Fn&& fn,
                                       RowRange rows = {0, -1}) {
        const std::int64_t first = rows.first, last = rows.last < 0 ? n_dst : rows.last;
        const std::int64_t count = last - first;
        if (count <= 0) return;
        const std::int64_t chunks =
            std::max<std::int64_t>(num_chunks, (count + kMaxChunkRows - 1) / kMaxChunkRows);
        const std::int64_t chunk_rows = (count + chunks - 1) / chunks;
        const auto& off = edges.dst_offsets;
        for (std::int64_t b = 0; b < batch; ++b) {
            for (std::int64_t j0 = first; j0 < last;) {
                std::int64_t j1 = std::min(last, j0 + chunk_rows);
                if (max_edges > 0 && off[j1] - off[j0] > max_edges) {
                    // The last j1 with off[j1] <= off[j0] + max_edges, at least j0 + 1.
                    const auto it = std::upper_bound(off.begin() + j0 + 1, off.begin() + j1 + 1,
                                                     off[j0] + max_edges);
                    j1 = std::max<std::int64_t>(j0 + 1, (it - off.begin()) - 1);
                }
                fn(b, j0, j1);
                j0 = j1;
            }
        }
    }

    /// Runs a GNN mapper's GraphConv over all destinations: `embed(b, j0, j1, out)` writes the
    /// destination rows' embeddings, `finish(b, j0, j1, rows)` receives the updated rows. p_src
    /// [batch * n_src, C] holds the sources' projections.
    template <typename Embed, typename Finish>
    void run_gnn_mapper(const GnnMapper& mapper, const MapperConfig& mapper_config,
                        const Tensor& p_src, std::int64_t n_src, std::int64_t n_dst,
                        std::int64_t batch, const EdgeSet& edges, const Tensor& features,
                        const ConvWeights& w, Embed&& embed, Finish&& finish,
                        RowRange rows = {0, -1}) const {
        // Edge rows per chunk bounded too: a GNN mapper holds several [edges, C] tensors.
        const std::int64_t max_edges = std::max<std::int64_t>(1, kMaxChunkRows * 256 / channels);
        for_destination_chunks(
            mapper_config.num_chunks, n_dst, batch, edges, max_edges,
            [&](std::int64_t b, std::int64_t j0, std::int64_t j1) {
                Tensor g = Tensor::uninitialised({j1 - j0, channels});
                embed(b, j0, j1, g.data());
                mapper.destination_chunk(g.data(), j0, j1, p_src.row(b * n_src), edges, features,
                                         w);
                finish(b, j0, j1, g);
            },
            rows);
    }

    /// Runs a mapper block over all destinations of all batch elements, chunk by chunk.
    /// `embed(b, j0, j1, out)` writes the destination embeddings of rows [j0, j1) of batch b;
    /// `finish(b, j0, j1, rows)` receives the block's output rows.
    template <typename Embed, typename Finish>
    void run_mapper(const GraphTransformerBlock& block, const MapperConfig& mapper,
                    const KeysValues& kv, std::int64_t n_src, std::int64_t n_dst,
                    std::int64_t batch, const EdgeSet& edges, const Tensor& features, Embed&& embed,
                    Finish&& finish, RowRange rows = {0, -1}) const {
        for_destination_chunks(
            mapper.num_chunks, n_dst, batch, edges, /*max_edges=*/0,
            [&](std::int64_t b, std::int64_t j0, std::int64_t j1) {
                Tensor g = Tensor::uninitialised({j1 - j0, channels});
                embed(b, j0, j1, g.data());
                block.destination_chunk(g.data(), j0, j1, kv.from_row(b * n_src), n_src, edges,
                                        features);
                finish(b, j0, j1, g);
            },
            rows);
    }

    /// GNN encoder: latent [B*N_hidden, C] and the updated data nodes [B*N_data, C].
    void gnn_encode(const Tensor& data, const Tensor& hidden_in, std::int64_t batch, Tensor& latent,
                    Tensor& data_latent) const {
        const ConvWeights w(gnn_encoder.edge_mlp.linears[0]);
        data_latent = Tensor::uninitialised({batch * n_data, channels});
        Tensor p_src = Tensor::uninitialised({batch * n_data, channels});
        for (std::int64_t r0 = 0; r0 < batch * n_data; r0 += kMaxChunkRows) {
            const std::int64_t rows = std::min(kMaxChunkRows, batch * n_data - r0);
            gnn_encoder.src_embedding.apply(data.row(r0), rows, data_latent.row(r0));
            ConvWeights::project(w.src, data_latent.row(r0), rows, p_src.row(r0));
            gnn_encoder.update_sources(data_latent.row(r0), rows);
        }
        const auto& edges = graph->edge_set("data_to_hidden");
        const Tensor features = edge_features(edges, trainable_encoder_edges);
        run_gnn_mapper(
            gnn_encoder, config.encoder, p_src, n_data, n_hidden, batch, edges, features, w,
            [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                gnn_encoder.dst_embedding.apply(hidden_in.row(b * n_hidden + j0), j1 - j0, out);
            },
            [&](std::int64_t b, std::int64_t j0, std::int64_t, const Tensor& rows) {
                copy_rows(rows.data(), channels, latent.row(b * n_hidden + j0), channels,
                          rows.rows(), channels);
            });
    }

    /// GNN decoder: output [B*N_data, V_out] from the processor output and the data nodes.
    void gnn_decode(const Tensor& processed, const Tensor& data_latent, std::int64_t batch,
                    Tensor& output) const {
        const ConvWeights w(gnn_decoder.edge_mlp.linears[0]);
        Tensor p_src = Tensor::uninitialised({batch * n_hidden, channels});
        ConvWeights::project(w.src, processed.data(), batch * n_hidden, p_src.data());
        const auto& edges = graph->edge_set("hidden_to_data");
        const Tensor features = edge_features(edges, trainable_decoder_edges);
        run_gnn_mapper(
            gnn_decoder, config.decoder, p_src, n_hidden, n_data, batch, edges, features, w,
            [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                copy_rows(data_latent.row(b * n_data + j0), channels, out, channels, j1 - j0,
                          channels);
            },
            [&](std::int64_t b, std::int64_t j0, std::int64_t j1, const Tensor& rows) {
                gnn_decoder.extractor.apply(rows.data(), j1 - j0, output.row(b * n_data + j0));
            });
    }

    /// Model sharding over options.shards (src/model/sharded_forward.cpp).
    Tensor forward_sharded(const Tensor& input, const ForwardOptions& options) const;

    /// This rank's halo of an edge set among a group's ranks, built once (sharded_forward.cpp).
    const graphs::Halo& halo_of(const std::string& edge_set, std::int64_t n_src,
                                const dist::Communicator& group) const;
    static std::int64_t halo_rows(const graphs::Halo& halo) {
        return static_cast<std::int64_t>(halo.rows.size());
    }
    mutable std::mutex halo_mutex;
    mutable std::map<std::tuple<std::string, int, int>, std::unique_ptr<graphs::Halo>> halos;

    Tensor forward(const Tensor& input, const ForwardOptions& options) const {
        const auto out_vars = static_cast<std::int64_t>(config.output_variables().size());
        check_input(input, options.allow_nan);
        const std::int64_t batch = input.dim(0);
        auto trace = [&](const char* name, const Tensor& value) {
            if (options.trace) options.trace(name, value);
        };

        // Encoder: data -> hidden.
        Tensor data, hidden_in;
        {
            BOREAS_RANGE("input");
            data = data_features(input, batch);
            hidden_in = hidden_features(batch);
        }
        // Every row is written by the encoder's destination chunks (no fill: on a GPU backend a
        // host fill would pull the pages back to the host).
        Tensor latent = Tensor::uninitialised({batch * n_hidden, channels});
        // GNN mappers: the encoder's updated data nodes, the decoder's destinations.
        Tensor data_latent;
        if (config.encoder.type == MapperType::gnn) {
            BOREAS_RANGE("encoder");
            gnn_encode(data, hidden_in, batch, latent, data_latent);
        } else {
            BOREAS_RANGE("encoder");
            // Embedding, LayerNorm and K|V chunk by chunk: of the per-source tensors only kv
            // exists in full (at N320, C 1024: 4.4 GB instead of 8.9 GB touched).
            KeysValues kv = KeysValues::allocate(batch * n_data, 2 * channels);
            for (std::int64_t r0 = 0; r0 < batch * n_data; r0 += kMaxChunkRows) {
                const std::int64_t rows = std::min(kMaxChunkRows, batch * n_data - r0);
                Tensor src = Tensor::uninitialised({rows, channels});
                encoder_src_embedding.apply(data.row(r0), rows, src.data());
                encoder.keys_values(src.data(), rows, kv, r0);
            }
            const auto& edges = graph->edge_set("data_to_hidden");
            const Tensor features = edge_features(edges, trainable_encoder_edges);
            run_mapper(
                encoder, config.encoder, kv, n_data, n_hidden, batch, edges, features,
                [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                    encoder_dst_embedding.apply(hidden_in.row(b * n_hidden + j0), j1 - j0, out);
                },
                [&](std::int64_t b, std::int64_t j0, std::int64_t, const Tensor& rows) {
                    copy_rows(rows.data(), channels, latent.row(b * n_hidden + j0), channels,
                              rows.rows(), channels);
                });
        }
        trace("encoder.out", latent);

        // Processor (its input copied on the model's device).
        Tensor processed = Tensor::uninitialised(latent.shape());
        copy_rows(latent.data(), channels, processed.data(), channels, latent.rows(), channels);
        std::optional<trace::Range> processor_range(std::in_place, "processor");
        const auto per_chunk =
            static_cast<std::size_t>(config.processor.num_layers / config.processor.num_chunks);
        std::optional<trace::Range> chunk_range;
        auto enter_layer = [&](std::size_t l) {
            if (l % per_chunk == 0) {
                chunk_range.reset();
                chunk_range.emplace(chunk_names[l / per_chunk].c_str());
            }
        };
        if (!transformer_layers.empty()) {
            for (std::size_t l = 0; l < transformer_layers.size(); ++l) {
                enter_layer(l);
                transformer_layers[l].apply(processed, batch, n_hidden);
                if (l == 0) trace("processor.layer0.out", processed);
            }
        } else if (!gnn_layers.empty()) {
            const auto& edges = graph->edge_set("hidden_to_hidden");
            const Tensor features = edge_features(edges, trainable_processor_edges);
            // Edges are embedded once and tiled over the batch, as anemoi expands them.
            Tensor embedded({edges.count(), channels});
            gnn_layers[0].edge_embedding.apply(features.data(), edges.count(), embedded.data());
            Tensor edge_state({batch * edges.count(), channels});
            for (std::int64_t b = 0; b < batch; ++b)
                copy_rows(embedded.data(), channels, edge_state.row(b * edges.count()), channels,
                          edges.count(), channels);
            for (std::size_t l = 0; l < gnn_layers.size(); ++l) {
                enter_layer(l);
                gnn_layers[l].apply(processed, edge_state, batch, n_hidden, edges);
                if (l == 0) trace("processor.layer0.out", processed);
            }
        } else {
            const auto& edges = graph->edge_set("hidden_to_hidden");
            const Tensor features = edge_features(edges, trainable_processor_edges);
            for (std::size_t l = 0; l < graph_transformer_layers.size(); ++l) {
                enter_layer(l);
                const auto& block = graph_transformer_layers[l];
                KeysValues kv = KeysValues::allocate(batch * n_hidden, 2 * channels);
                block.keys_values(processed.data(), batch * n_hidden, kv, 0);
                MapperConfig whole;  // the processor updates all hidden nodes, no chunking needed
                run_mapper(
                    block, whole, kv, n_hidden, n_hidden, batch, edges, features,
                    [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                        copy_rows(processed.row(b * n_hidden + j0), channels, out, channels,
                                  j1 - j0, channels);
                    },
                    [&](std::int64_t b, std::int64_t j0, std::int64_t, const Tensor& rows) {
                        // Safe in place: k and v were taken before the layer started.
                        copy_rows(rows.data(), channels, processed.row(b * n_hidden + j0), channels,
                                  rows.rows(), channels);
                    });
                if (l == 0) trace("processor.layer0.out", processed);
            }
        }
        chunk_range.reset();
        processor_range.reset();
        trace("processor.out", processed);
        if (config.latent_skip)
            copy_rows(latent.data(), channels, processed.data(), channels, processed.rows(),
                      channels, /*add=*/true);

        // Decoder: hidden -> data; the processor latent is not re-embedded.
        // The extractor writes every row; [batch * n_data, out_vars] is already the output's
        // memory layout, reshaped below.
        Tensor output = Tensor::uninitialised({batch * n_data, out_vars});
        if (config.decoder.type == MapperType::gnn) {
            BOREAS_RANGE("decoder");
            gnn_decode(processed, data_latent, batch, output);
        } else {
            BOREAS_RANGE("decoder");
            KeysValues kv = KeysValues::allocate(batch * n_hidden, 2 * channels);
            decoder.keys_values(processed.data(), batch * n_hidden, kv, 0);
            const auto& edges = graph->edge_set("hidden_to_data");
            const Tensor features = edge_features(edges, trainable_decoder_edges);
            run_mapper(
                decoder, config.decoder, kv, n_hidden, n_data, batch, edges, features,
                [&](std::int64_t b, std::int64_t j0, std::int64_t j1, float* out) {
                    decoder_dst_embedding.apply(data.row(b * n_data + j0), j1 - j0, out);
                },
                [&](std::int64_t b, std::int64_t j0, std::int64_t j1, const Tensor& rows) {
                    Tensor normalised = Tensor::uninitialised({j1 - j0, channels});
                    extractor_norm.apply(rows.data(), j1 - j0, normalised.data());
                    extractor.apply(normalised.data(), j1 - j0, output.row(b * n_data + j0));
                });
        }
        trace("decoder.out", output);
        output.reshape({batch, 1, 1, n_data, out_vars});
        {
            BOREAS_RANGE("output");
            finish_output(input, output);
        }
        trace("output", output);
        return output;
    }

    /// Residual on prognostic variables from the last input step, then boundings, in place on
    /// output [batch, 1, 1, n_data, out_vars].
    void finish_output(const Tensor& input, Tensor& output) const {
        const auto in_vars = static_cast<std::int64_t>(config.input_variables().size());
        const auto out_vars = static_cast<std::int64_t>(config.output_variables().size());
        const std::int64_t batch = input.dim(0);
        const auto pairs = config.prognostic_pairs();
        const auto steps = config.multistep_input;
#pragma omp parallel for collapse(2) \
    schedule(static) if (batch * n_data * out_vars >= kParallelElements)
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t n = 0; n < n_data; ++n) {
                float* y = output.data() + (b * n_data + n) * out_vars;
                const float* x = input.data() + ((b * steps + steps - 1) * n_data + n) * in_vars;
                for (const auto& [o, i] : pairs) y[o] += x[i];
            }
        apply_boundings(output);
    }

    void apply_boundings(Tensor& output) const {
        const auto outputs = config.output_variables();
        for (const auto& bounding : config.bounding) apply_bounding(bounding, outputs, output);
    }

    /// One bounding, in place on [..., V_out] (anemoi layers/bounding.py).
    static void apply_bounding(const BoundingConfig& bounding,
                               const std::vector<std::string>& outputs, Tensor& output) {
        auto index_of = [&](const std::string& name) {
            return static_cast<std::int64_t>(std::find(outputs.begin(), outputs.end(), name) -
                                             outputs.begin());
        };
        const auto width = static_cast<std::int64_t>(outputs.size());
        const auto rows = output.numel() / width;
        std::vector<std::int64_t> columns;
        for (const auto& name : bounding.variables) columns.push_back(index_of(name));
        const std::int64_t total = bounding.total_var.empty() ? -1 : index_of(bounding.total_var);
        for (std::int64_t r = 0; r < rows; ++r) {
            float* y = output.data() + r * width;
            for (auto c : columns) {
                switch (bounding.type) {
                    case BoundingType::relu:
                        y[c] = std::max(y[c], 0.0f);
                        break;
                    case BoundingType::hardtanh:
                        y[c] = std::clamp(y[c], bounding.min_val, bounding.max_val);
                        break;
                    case BoundingType::fraction:
                        y[c] = std::clamp(y[c], bounding.min_val, bounding.max_val) * y[total];
                        break;
                }
            }
        }
    }

    void check_input(const Tensor& input, bool allow_nan) const {
        const auto in_vars = static_cast<std::int64_t>(config.input_variables().size());
        BOREAS_CHECK(
            input.rank() == 5 && input.dim(1) == config.multistep_input && input.dim(2) == 1 &&
                input.dim(3) == n_data && input.dim(4) == in_vars,
            "input tensor has shape {}, expected [batch, {}, 1, {}, {}] (batch, input steps, "
            "ensemble, data nodes, input variables)",
            input.shape_string(), config.multistep_input, n_data, in_vars);
        if (!allow_nan) {
            const auto values = input.values();
            for (std::size_t i = 0; i < values.size(); ++i)
                BOREAS_CHECK(std::isfinite(values[i]),
                             "input tensor has a non-finite value at flat index {} (pass "
                             "--allow-nan to accept it)",
                             i);
        }
    }
};

}  // namespace boreas::model
