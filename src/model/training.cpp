// The training forward (keeping activations) and the backward pass of the model, layer by layer
// (spec/model.md 3.3, 4.1, 10.1). Attention backward runs in the fused kernels; every reduction
// is deterministic for a fixed thread count.
#include <initializer_list>
#include <map>
#include <optional>

#include "boreas/backends/backend.hpp"
#include "boreas/dist/communicator.hpp"
#include "training_impl.hpp"

namespace boreas::model {

using namespace detail;

namespace training_detail {

Tensor zeros_like(const Tensor& t) {
    return Tensor(t.shape());
}

void add_into(Tensor& target, const Tensor& source) {
    float* a = target.data();
    const float* b = source.data();
    const std::int64_t n = target.numel();
#pragma omp parallel for schedule(static) if (n >= (1 << 18))
    for (std::int64_t i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace training_detail

namespace training_detail {

void linear_forward(const Linear& l, const Tensor& x, Tensor& y) {
    y = Tensor::uninitialised({x.rows(), l.out});
    l.apply(x.data(), x.rows(), y.data());
}

/// The MLP's first Linear with its GELU in the GEMM epilogue: a = x W^T + b (kept for the GELU
/// backward) and a_act = GELU(a), in one pass.
void mlp_in_forward(const Linear& l, const Tensor& x, Tensor& a, Tensor& a_act) {
    a = Tensor::uninitialised({x.rows(), l.out});
    a_act = Tensor::uninitialised({x.rows(), l.out});
    l.apply_gelu(x.data(), x.rows(), a_act.data(), a.data());
}

/// dx (+)= dy W; dW += dy^T x; db += sum dy, over `rows` rows of x, dy and dx (dx may be null).
void linear_backward(Context& ctx, const Linear& l, const float* x, std::int64_t rows,
                     const float* dy, float* dx, bool accumulate) {
    const auto g = ctx.of(l);
    kernels::LinearBackwardParams p;
    p.x = x;
    p.weight = l.weight->data();
    p.dy = dy;
    p.dx = dx;
    p.dweight = g.weight;
    p.dbias = g.bias;
    p.rows = rows;
    p.in = l.in;
    p.out = l.out;
    p.accumulate_dx = accumulate;
    backends::active().linear_backward(p);
}

void linear_backward(Context& ctx, const Linear& l, const Tensor& x, const Tensor& dy, Tensor* dx,
                     bool accumulate) {
    linear_backward(ctx, l, x.data(), x.rows(), dy.data(), dx ? dx->data() : nullptr, accumulate);
}

/// Backward of apply_side_by_side: `dy` holds the Linears' output gradients side by side
/// [rows, sum of outs]. One GEMM for dx against the stacked weights and one for the stacked dW
/// (summed into each Linear's gradient afterwards), as the forward ran one GEMM.
void linear_backward_side_by_side(Context& ctx, std::initializer_list<const Linear*> layers,
                                  const float* x, std::int64_t rows, const float* dy, float* dx,
                                  bool accumulate) {
    const StackedLinears stacked(layers);
    Tensor d_weight({stacked.out, stacked.in}), d_bias({stacked.out});
    kernels::LinearBackwardParams p;
    p.x = x;
    p.weight = stacked.weight.data();
    p.dy = dy;
    p.dx = dx;
    p.dweight = d_weight.data();
    p.dbias = stacked.bias.numel() ? d_bias.data() : nullptr;
    p.rows = rows;
    p.in = stacked.in;
    p.out = stacked.out;
    p.accumulate_dx = accumulate;
    backends::active().linear_backward(p);
    std::int64_t offset = 0;
    for (const Linear* l : layers) {
        const auto g = ctx.of(*l);
        const float* dw = d_weight.row(offset);
        for (std::int64_t i = 0; i < l->out * stacked.in; ++i) g.weight[i] += dw[i];
        if (g.bias)
            for (std::int64_t o = 0; o < l->out; ++o) g.bias[o] += d_bias.data()[offset + o];
        offset += l->out;
    }
}

void linear_backward_side_by_side(Context& ctx, std::initializer_list<const Linear*> layers,
                                  const Tensor& x, const Tensor& dy, Tensor* dx, bool accumulate) {
    std::int64_t out = 0;
    for (const Linear* l : layers) out += l->out;
    BOREAS_CHECK(dy.cols() == out, "side-by-side gradient has {} columns, expected {}", dy.cols(),
                 out);
    linear_backward_side_by_side(ctx, layers, x.data(), x.rows(), dy.data(),
                                 dx ? dx->data() : nullptr, accumulate);
}

/// d(input) of a LayerNorm over `rows` rows into dx (overwritten; may alias dy).
void layer_norm_backward(Context& ctx, const LayerNorm& n, const float* x, std::int64_t rows,
                         const float* dy, float* dx) {
    kernels::LayerNormBackwardParams p;
    p.x = x;
    p.gamma = n.gamma->data();
    p.dy = dy;
    p.dx = dx;
    p.dgamma = ctx.find(n.gamma).data();
    p.dbeta = ctx.find(n.beta).data();
    p.rows = rows;
    p.channels = n.channels;
    backends::active().layer_norm_backward(p);
}

/// Returns d(input) of a LayerNorm given d(output).
Tensor layer_norm_backward(Context& ctx, const LayerNorm& n, const Tensor& x, const Tensor& dy) {
    Tensor dx = Tensor::uninitialised(x.shape());
    layer_norm_backward(ctx, n, x.data(), x.rows(), dy.data(), dx.data());
    return dx;
}

/// Backward of the pre-norm residual MLP both block types end with:
/// y = u + mlp_out(GELU(mlp_in(norm(u)))). Returns d(u).
Tensor residual_mlp_backward(Context& ctx, const LayerNorm& norm, const Linear& mlp_in,
                             const Linear& mlp_out, const Tensor& u, const Tensor& normalised,
                             const Tensor& a, const Tensor& a_act, const Tensor& dy) {
    Tensor d_act = Tensor::uninitialised(a_act.shape());
    linear_backward(ctx, mlp_out, a_act, dy, &d_act, false);
    Tensor d_a = Tensor::uninitialised(d_act.shape());
    backends::active().gelu_backward(a.data(), d_act.data(), d_a.data(), d_a.numel());
    Tensor d_normalised = Tensor::uninitialised(normalised.shape());
    linear_backward(ctx, mlp_in, normalised, d_a, &d_normalised, false);
    Tensor d_u = layer_norm_backward(ctx, norm, u, d_normalised);
    add_into(d_u, dy);
    return d_u;
}

kernels::GraphAttentionParams attention_params(const GraphTransformerBlock& b, const Tensor& kv,
                                               const BlockTape& t, const EdgeSet& edges,
                                               const Tensor& features, std::int64_t batch,
                                               std::int64_t n_src, std::int64_t n_dst,
                                               const DstSpan& span, float* out, float* lse) {
    kernels::GraphAttentionParams p;
    const bool every_element = span.all || span.every_element;
    const std::int64_t kv_offset = every_element ? 0 : span.b * n_src * 2 * b.channels;
    p.q = t.q_self.data();
    p.k = kv.data() + kv_offset;
    p.v = kv.data() + kv_offset + b.channels;
    p.q_stride = 2 * b.channels;
    p.kv_stride = 2 * b.channels;
    p.edge_features = features.data();
    p.edge_weight = b.edge.weight->data();
    p.edge_bias = b.edge.bias->data();
    // A chunk reads its rows' slice of the CSR offsets: edge indices stay global.
    p.dst_offsets = edges.dst_offsets.data() + (span.all ? 0 : span.j0);
    p.src = edges.src.data();
    p.out = out;
    p.lse = lse;
    p.batch = every_element ? batch : 1;
    p.n_src = n_src;
    p.n_dst = span.all ? n_dst : span.j1 - span.j0;
    p.heads = b.heads;
    p.head_dim = b.channels / b.heads;
    p.edge_dim = b.edge_dim;
    return p;
}

/// The source side of a graph-transformer block: LayerNorm and the k|v projection of `src`.
/// For a processor block `src` is the block input itself (one LayerNorm for both sides).
void block_source_forward(const GraphTransformerBlock& b, const Tensor& src, BlockTape& t) {
    t.src = src;
    t.src_norm = Tensor::uninitialised(src.shape());
    (b.separate_src_norm ? b.norm_src : b.norm_dst)
        .apply(src.data(), src.rows(), t.src_norm.data());
    t.kv = Tensor::uninitialised({src.rows(), 2 * b.channels});
    apply_side_by_side({&b.key, &b.value}, t.src_norm.data(), src.rows(), t.kv.data());
}

/// The destination side of a graph-transformer block on the span's rows, reading the sources'
/// k|v from `kv` (block_source_forward's); `dst` holds g on entry and y on return.
void block_destination_forward(const GraphTransformerBlock& b, const Tensor& kv, Tensor& dst,
                               const EdgeSet& edges, const Tensor& features, std::int64_t batch,
                               std::int64_t n_src, std::int64_t n_dst, const DstSpan& span,
                               BlockTape& t) {
    const std::int64_t c = b.channels;
    t.g = dst;
    t.dst_norm = Tensor::uninitialised(dst.shape());
    b.norm_dst.apply(dst.data(), dst.rows(), t.dst_norm.data());
    t.q_self = Tensor::uninitialised({dst.rows(), 2 * c});
    apply_side_by_side({&b.query, &b.self}, t.dst_norm.data(), dst.rows(), t.q_self.data());
    t.attended = Tensor::uninitialised({dst.rows(), c});
    t.lse = Tensor::uninitialised({dst.rows(), b.heads});
    backends::active().graph_attention(attention_params(
        b, kv, t, edges, features, batch, n_src, n_dst, span, t.attended.data(), t.lse.data()));
    t.t = Tensor::uninitialised({dst.rows(), c});
    for (std::int64_t r = 0; r < dst.rows(); ++r) {
        const float* o = t.attended.row(r);
        const float* skip = t.q_self.row(r) + c;
        float* y = t.t.row(r);
        for (std::int64_t x = 0; x < c; ++x) y[x] = o[x] + skip[x];
    }
    t.u = t.g;
    b.projection.apply(t.t.data(), dst.rows(), t.u.data(), true);
    t.mlp_norm = Tensor::uninitialised(dst.shape());
    b.norm_mlp.apply(t.u.data(), dst.rows(), t.mlp_norm.data());
    mlp_in_forward(b.mlp_in, t.mlp_norm, t.a, t.a_act);
    dst = t.u;
    b.mlp_out.apply(t.a_act.data(), dst.rows(), dst.data(), true);
}

/// Graph-transformer block on all batch elements; `dst` holds g on entry and y on return.
void block_forward(const GraphTransformerBlock& b, const Tensor& src, Tensor& dst,
                   const EdgeSet& edges, const Tensor& features, std::int64_t batch,
                   std::int64_t n_src, std::int64_t n_dst, BlockTape& t) {
    block_source_forward(b, src, t);
    block_destination_forward(b, t.kv, dst, edges, features, batch, n_src, n_dst, DstSpan{}, t);
}

/// Backward of block_destination_forward on the span's rows: d(k|v) of the span's edges go
/// into d_kv ([batch * n_src, 2C]; overwritten for a whole span, added for a chunk), edge-feature
/// gradients into d_features. With `deferred` the attention's source pass is left to the caller
/// (d_kv is not touched).
DestinationGradients block_destination_backward(Context& ctx, const GraphTransformerBlock& b,
                                                const Tensor& kv, const BlockTape& t,
                                                const Tensor& dy, const EdgeSet& edges,
                                                const Tensor& features, std::int64_t batch,
                                                std::int64_t n_src, std::int64_t n_dst,
                                                const DstSpan& span, Tensor& d_kv,
                                                Tensor& d_features, DeferredSources* deferred) {
    const Tensor d_u = residual_mlp_backward(ctx, b.norm_mlp, b.mlp_in, b.mlp_out, t.u, t.mlp_norm,
                                             t.a, t.a_act, dy);
    Tensor d_t = Tensor::uninitialised(t.t.shape());
    linear_backward(ctx, b.projection, t.t, d_u, &d_t, false);
    DestinationGradients out{d_u, Tensor()};  // u = g + projection(t)
    // t = o + self(dst_norm): d_t is both d(o) and d(self), the right half of d_q_self.
    const std::int64_t c = b.channels;
    Tensor d_q_self = Tensor::uninitialised(t.q_self.shape());
    for (std::int64_t r = 0; r < d_t.rows(); ++r) std::copy_n(d_t.row(r), c, d_q_self.row(r) + c);
    const auto forward =
        attention_params(b, kv, t, edges, features, batch, n_src, n_dst, span,
                         const_cast<float*>(t.attended.data()), const_cast<float*>(t.lse.data()));
    std::vector<std::int64_t> src_offsets(static_cast<std::size_t>(n_src + 1)),
        by_src(
            static_cast<std::size_t>(forward.dst_offsets[forward.n_dst] - forward.dst_offsets[0]));
    backends::active().transpose_csr(forward.dst_offsets, edges.src.data(), forward.n_dst, n_src,
                                     src_offsets.data(), by_src.data());
    // A chunk's k|v gradients cover all of its batch element's sources: summed over chunks.
    // Every batch element's rows at once (whole, or a shard's): d(k|v) of all sources.
    const bool every_element = span.all || span.every_element;
    Tensor d_kv_chunk =
        every_element || deferred ? Tensor() : Tensor::uninitialised({n_src, 2 * c});
    float* dk = deferred ? nullptr : every_element ? d_kv.data() : d_kv_chunk.data();
    kernels::GraphAttentionBackwardParams bp;
    bp.forward = forward;
    bp.d_out = d_t.data();
    bp.src_offsets = src_offsets.data();
    bp.edges_by_src = by_src.data();
    bp.dq = d_q_self.data();
    bp.dk = dk;
    bp.dv = dk ? dk + c : nullptr;
    bp.dq_stride = 2 * c;
    bp.dkv_stride = 2 * c;
    bp.d_edge_weight = ctx.find(b.edge.weight).data();
    bp.d_edge_bias = ctx.find(b.edge.bias).data();
    bp.d_edge_features = d_features.data();
    if (deferred) {
        BOREAS_CHECK(span.all, "a deferred source pass needs the whole destination span");
        backends::active().graph_attention_backward_destinations(bp, deferred->scratch);
        deferred->d_t = std::move(d_t);  // moved buffers keep their addresses
        deferred->src_offsets = std::move(src_offsets);
        deferred->by_src = std::move(by_src);
        deferred->params = bp;
        deferred->params.d_out = deferred->d_t.data();
        deferred->params.src_offsets = deferred->src_offsets.data();
        deferred->params.edges_by_src = deferred->by_src.data();
    } else {
        backends::active().graph_attention_backward(bp);
    }
    if (!every_element && !deferred) {
        float* target = d_kv.row(span.b * n_src);
        const float* source = d_kv_chunk.data();
        const std::int64_t n = d_kv_chunk.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
        for (std::int64_t i = 0; i < n; ++i) target[i] += source[i];
    }
    Tensor d_dst_norm = Tensor::uninitialised(t.dst_norm.shape());
    linear_backward_side_by_side(ctx, {&b.query, &b.self}, t.dst_norm, d_q_self, &d_dst_norm,
                                 false);
    if (b.separate_src_norm)
        add_into(out.d_g, layer_norm_backward(ctx, b.norm_dst, t.g, d_dst_norm));
    else
        out.d_dst_norm = std::move(d_dst_norm);
    return out;
}

/// Backward of block_forward: returns d(g); adds d(src) into `d_src` (for a processor block,
/// the source path is folded into the returned gradient) and edge-feature gradients into
/// `d_features`.
Tensor block_backward(Context& ctx, const GraphTransformerBlock& b, const BlockTape& t,
                      const Tensor& dy, const EdgeSet& edges, const Tensor& features,
                      std::int64_t batch, std::int64_t n_src, std::int64_t n_dst, Tensor* d_src,
                      Tensor& d_features) {
    Tensor d_kv = Tensor::uninitialised(t.kv.shape());
    auto dst = block_destination_backward(ctx, b, t.kv, t, dy, edges, features, batch, n_src, n_dst,
                                          DstSpan{}, d_kv, d_features);
    Tensor d_src_norm = Tensor::uninitialised(t.src_norm.shape());
    linear_backward_side_by_side(ctx, {&b.key, &b.value}, t.src_norm, d_kv, &d_src_norm, false);
    if (b.separate_src_norm) {
        add_into(*d_src, layer_norm_backward(ctx, b.norm_src, t.src, d_src_norm));
    } else {
        add_into(dst.d_dst_norm, d_src_norm);  // one LayerNorm feeds q, k, v and self
        add_into(dst.d_g, layer_norm_backward(ctx, b.norm_dst, t.g, dst.d_dst_norm));
    }
    return std::move(dst.d_g);
}

/// The window attention of a transformer layer on its tape: q|k|v side by side, out apart.
kernels::WindowAttentionParams attention_params(const TransformerLayer& l, const LayerTape& t,
                                                std::int64_t batch, std::int64_t seq) {
    const std::int64_t c = l.channels;
    kernels::WindowAttentionParams p;
    p.q = t.qkv.data();
    p.k = t.qkv.data() + c;
    p.v = t.qkv.data() + 2 * c;
    p.stride = 3 * c;
    p.out = const_cast<float*>(t.attended.data());
    p.out_stride = c;
    p.lse = const_cast<float*>(t.lse.data());
    p.batch = batch;
    p.seq = seq;
    p.heads = l.heads;
    p.head_dim = c / l.heads;
    p.window = l.window;
    return p;
}

void layer_input_forward(const TransformerLayer& l, const Tensor& x, LayerTape& t) {
    t.x = x;
    t.norm1 = Tensor::uninitialised({x.rows(), l.channels});
    l.norm_attention.apply(x.data(), x.rows(), t.norm1.data());
}

void layer_output_forward(const TransformerLayer& l, Tensor& x, LayerTape& t) {
    const std::int64_t rows = x.rows();
    l.projection.apply(t.attended.data(), rows, x.data(), true);
    t.x1 = x;
    t.norm2 = Tensor::uninitialised({rows, l.channels});
    l.norm_mlp.apply(x.data(), rows, t.norm2.data());
    mlp_in_forward(l.mlp_in, t.norm2, t.a, t.a_act);
    l.mlp_out.apply(t.a_act.data(), rows, x.data(), true);
}

Tensor layer_output_backward(Context& ctx, const TransformerLayer& l, const LayerTape& t,
                             const Tensor& dy, Tensor& d_x1) {
    d_x1 = residual_mlp_backward(ctx, l.norm_mlp, l.mlp_in, l.mlp_out, t.x1, t.norm2, t.a, t.a_act,
                                 dy);
    Tensor d_attended = Tensor::uninitialised(t.attended.shape());
    linear_backward(ctx, l.projection, t.attended, d_x1, &d_attended, false);
    return d_attended;
}

Tensor layer_input_backward(Context& ctx, const TransformerLayer& l, const LayerTape& t,
                            const Tensor& d_qkv, const Tensor& d_x1) {
    Tensor d_norm1 = Tensor::uninitialised(t.norm1.shape());
    linear_backward_side_by_side(ctx, {&l.q, &l.k, &l.v}, t.norm1, d_qkv, &d_norm1, false);
    Tensor d_x = layer_norm_backward(ctx, l.norm_attention, t.x, d_norm1);
    add_into(d_x, d_x1);
    return d_x;
}

void layer_forward(const TransformerLayer& l, Tensor& x, std::int64_t batch, std::int64_t seq,
                   LayerTape& t) {
    const std::int64_t rows = x.rows(), c = l.channels;
    layer_input_forward(l, x, t);
    t.qkv = Tensor::uninitialised({rows, 3 * c});
    apply_side_by_side({&l.q, &l.k, &l.v}, t.norm1.data(), rows, t.qkv.data());
    t.attended = Tensor::uninitialised({rows, c});
    t.lse = Tensor::uninitialised({rows, l.heads});
    backends::active().window_attention(attention_params(l, t, batch, seq));
    layer_output_forward(l, x, t);
}

Tensor layer_backward(Context& ctx, const TransformerLayer& l, const LayerTape& t, const Tensor& dy,
                      std::int64_t batch, std::int64_t seq) {
    Tensor d_x1;
    const Tensor d_attended = layer_output_backward(ctx, l, t, dy, d_x1);
    Tensor d_qkv = Tensor::uninitialised(t.qkv.shape());
    const std::int64_t c = l.channels;
    kernels::WindowAttentionBackwardParams bp;
    bp.forward = attention_params(l, t, batch, seq);
    bp.d_out = d_attended.data();
    bp.dq = d_qkv.data();
    bp.dk = d_qkv.data() + c;
    bp.dv = d_qkv.data() + 2 * c;
    backends::active().window_attention_backward(bp);
    return layer_input_backward(ctx, l, t, d_qkv, d_x1);
}

Tensor extractor_backward(Context& ctx, const Model::Impl& m, const Tensor& extractor_norm,
                          const Tensor& decoded_y, const Tensor& d_decoded) {
    Tensor d_ext_norm(extractor_norm.shape());
    linear_backward(ctx, m.extractor, extractor_norm, d_decoded, &d_ext_norm, false);
    return layer_norm_backward(ctx, m.extractor_norm, decoded_y, d_ext_norm);
}

/// Adds the trainable columns [first, first + t) of `d_features` rows (edge or node features,
/// tiled `copies` times along rows) into the gradient of the trainable tensor.
void trainable_gradient(const Tensor& d_features, std::int64_t first, std::int64_t copies,
                        Tensor& grad) {
    if (grad.numel() == 0) return;
    const std::int64_t rows = grad.dim(0), t = grad.dim(1);
    for (std::int64_t copy = 0; copy < copies; ++copy)
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < t; ++c)
                grad.row(r)[c] += d_features.row(copy * rows + r)[first + c];
}

/// anemoi MLP forward keeping its activations; `first_output` (optional) replaces the first
/// Linear's output (the GNN edge MLP builds it from pieces).
Tensor mlp_forward(const Mlp& mlp, const Tensor& x, const Tensor* first_output, MlpTape& tape) {
    tape.inputs.clear();
    tape.pre.clear();
    Tensor a;
    if (first_output) {
        a = *first_output;
        tape.inputs.push_back(Tensor());  // the split first Linear keeps its own inputs
    } else {
        tape.inputs.push_back(x);
        linear_forward(mlp.linears[0], x, a);
    }
    for (std::size_t i = 1; i < mlp.linears.size(); ++i) {
        tape.pre.push_back(a);
        backends::active().gelu(a.data(), a.numel());
        tape.inputs.push_back(a);
        Tensor b;
        linear_forward(mlp.linears[i], a, b);
        a = std::move(b);
    }
    if (!mlp.has_norm) return a;
    tape.norm_input = a;
    Tensor y(a.shape());
    mlp.norm.apply(a.data(), a.rows(), y.data());
    return y;
}

/// Backward of mlp_forward; returns d(first Linear output) and, when dx is given and the first
/// Linear ran here, d(input) into dx.
Tensor mlp_backward(Context& ctx, const Mlp& mlp, const MlpTape& tape, const Tensor& dy,
                    Tensor* dx) {
    Tensor d = mlp.has_norm ? layer_norm_backward(ctx, mlp.norm, tape.norm_input, dy) : dy;
    for (std::size_t i = mlp.linears.size(); i-- > 1;) {
        Tensor d_in(tape.inputs[i].shape());
        linear_backward(ctx, mlp.linears[i], tape.inputs[i], d, &d_in, false);
        Tensor d_pre(d_in.shape());
        backends::active().gelu_backward(tape.pre[i - 1].data(), d_in.data(), d_pre.data(),
                                         d_pre.numel());
        d = std::move(d_pre);
    }
    if (tape.inputs[0].numel() > 0)
        linear_backward(ctx, mlp.linears[0], tape.inputs[0], d, dx, false);
    return d;
}

/// The destination node of every CSR edge.
std::vector<std::int64_t> destinations(const EdgeSet& edges) {
    std::vector<std::int64_t> dst(static_cast<std::size_t>(edges.count()));
    for (std::int64_t j = 0; j + 1 < static_cast<std::int64_t>(edges.dst_offsets.size()); ++j)
        for (auto e = edges.dst_offsets[j]; e < edges.dst_offsets[j + 1]; ++e) dst[e] = j;
    return dst;
}

/// anemoi's GraphConv and node update, keeping what the backward needs (mirrors GnnLayer::apply
/// and GnnMapper::destination_chunk): messages m = edge_mlp([x_dst[j], x_src[i], e]) + e become
/// the new edge state, x_dst += node_mlp([x_dst, sum m]). x_src may be x_dst (the processor).
void conv_forward(const Mlp& edge_mlp, const Mlp& node_mlp, const Tensor& x_src, Tensor& x_dst,
                  Tensor& edge_state, std::int64_t batch, std::int64_t n_src, std::int64_t n_dst,
                  const EdgeSet& edges, GnnTape& t) {
    const std::int64_t count = edges.count(), c = x_dst.cols();
    const bool bipartite = &x_src != &x_dst;
    t.x = x_dst;
    t.x_src = bipartite ? x_src : Tensor();
    t.edges_in = edge_state;
    const ConvWeights w(edge_mlp.linears[0]);
    Tensor p_dst({batch * n_dst, c}), p_src({batch * n_src, c}), pre({batch * count, c});
    ConvWeights::project(w.dst, x_dst.data(), batch * n_dst, p_dst.data());
    ConvWeights::project(w.src, x_src.data(), batch * n_src, p_src.data());
    ConvWeights::project(w.edge, edge_state.data(), batch * count, pre.data(), w.bias);
    const auto dst = destinations(edges);
    for (std::int64_t row = 0; row < batch * count; ++row) {
        const std::int64_t b = row / count, e = row % count;
        const float* pd = p_dst.row(b * n_dst + dst[e]);
        const float* ps = p_src.row(b * n_src + edges.src[e]);
        float* out = pre.row(row);
        for (std::int64_t k = 0; k < c; ++k) out[k] += pd[k] + ps[k];
    }
    t.pre_first = pre;
    t.messages = mlp_forward(edge_mlp, Tensor(), &pre, t.edge_mlp);
    add_into(t.messages, edge_state);
    t.node_in = Tensor({batch * n_dst, 2 * c});
    for (std::int64_t row = 0; row < batch * n_dst; ++row) {
        const std::int64_t b = row / n_dst, j = row % n_dst;
        float* out = t.node_in.row(row);
        std::copy_n(x_dst.row(row), c, out);
        float* agg = out + c;
        std::fill(agg, agg + c, 0.0f);
        for (auto e = edges.dst_offsets[j]; e < edges.dst_offsets[j + 1]; ++e) {
            const float* m = t.messages.row(b * count + e);
            for (std::int64_t k = 0; k < c; ++k) agg[k] += m[k];
        }
    }
    const Tensor update = mlp_forward(node_mlp, t.node_in, nullptr, t.node_mlp);
    add_into(x_dst, update);
    edge_state = t.messages;
}

void gnn_forward(const GnnLayer& g, Tensor& x, Tensor& edge_state, std::int64_t batch,
                 std::int64_t n, const EdgeSet& edges, GnnTape& t) {
    conv_forward(g.edge_mlp, g.node_mlp, x, x, edge_state, batch, n, n, edges, t);
}

/// Backward of conv_forward: d_x_dst holds d(x_dst out) on entry and d(x_dst in) on return;
/// d(x_src) is added into d_x_src (null: the sources are x_dst); d_edges holds d(new edge state)
/// on entry and d(edge state in) on return.
void conv_backward(Context& ctx, const Mlp& edge_mlp, const Mlp& node_mlp, const GnnTape& t,
                   Tensor& d_x_dst, Tensor* d_x_src, Tensor& d_edges, std::int64_t batch,
                   std::int64_t n_src, std::int64_t n_dst, const EdgeSet& edges) {
    const std::int64_t count = edges.count(), c = d_x_dst.cols();
    // x_out = x + node_mlp([x, agg]);  e_out = messages.
    Tensor d_node_in(t.node_in.shape());
    mlp_backward(ctx, node_mlp, t.node_mlp, d_x_dst, &d_node_in);
    Tensor d_messages = d_edges;
    for (std::int64_t row = 0; row < batch * n_dst; ++row) {
        const std::int64_t b = row / n_dst, j = row % n_dst;
        const float* d_in = d_node_in.row(row);
        float* dx = d_x_dst.row(row);
        for (std::int64_t k = 0; k < c; ++k) dx[k] += d_in[k];
        for (auto e = edges.dst_offsets[j]; e < edges.dst_offsets[j + 1]; ++e) {
            float* dm = d_messages.row(b * count + e);
            for (std::int64_t k = 0; k < c; ++k) dm[k] += d_in[c + k];
        }
    }
    // messages = edge_mlp(pre) + e_in.
    Tensor d_e_in = d_messages;
    const Tensor d_pre = mlp_backward(ctx, edge_mlp, t.edge_mlp, d_messages, nullptr);
    // pre = e_in W_e^T + b + x_dst[dst] W_dst^T + x_src[src] W_src^T.
    const auto& first = edge_mlp.linears[0];
    const float* w = first.weight->data();
    float* dw = ctx.find(first.weight).data();
    float* db = ctx.find(first.bias).data();
    const auto dst = destinations(edges);
    Tensor d_p_dst({batch * n_dst, c}), d_p_src({batch * n_src, c});
    for (std::int64_t row = 0; row < batch * count; ++row) {
        const std::int64_t b = row / count, e = row % count;
        const float* dp = d_pre.row(row);
        float* a = d_p_dst.row(b * n_dst + dst[e]);
        float* s = d_p_src.row(b * n_src + edges.src[e]);
        for (std::int64_t k = 0; k < c; ++k) {
            a[k] += dp[k];
            s[k] += dp[k];
            db[k] += dp[k];
        }
    }
    // Weight blocks: dW[:, block] += d^T input, input gradients d W[:, block].
    auto block_backward_linear = [&](const Tensor& d, const Tensor& input, std::int64_t column,
                                     Tensor& d_input) {
        for (std::int64_t r = 0; r < d.rows(); ++r) {
            const float* dr = d.row(r);
            const float* in = input.row(r);
            float* di = d_input.row(r);
            for (std::int64_t o = 0; o < c; ++o) {
                const float g_o = dr[o];
                if (g_o == 0.0f) continue;
                float* wrow = dw + o * 3 * c + column * c;
                const float* wr = w + o * 3 * c + column * c;
                for (std::int64_t k = 0; k < c; ++k) {
                    wrow[k] += g_o * in[k];
                    di[k] += g_o * wr[k];
                }
            }
        }
    };
    block_backward_linear(d_p_dst, t.x, 0, d_x_dst);
    block_backward_linear(d_p_src, d_x_src ? t.x_src : t.x, 1, d_x_src ? *d_x_src : d_x_dst);
    block_backward_linear(d_pre, t.edges_in, 2, d_e_in);
    d_edges = std::move(d_e_in);
}

/// Backward of gnn_forward: (d x_out, d e_out) -> (d x_in, d e_in), in place.
void gnn_backward(Context& ctx, const GnnLayer& g, const GnnTape& t, Tensor& d_x, Tensor& d_edges,
                  std::int64_t batch, std::int64_t n, const EdgeSet& edges) {
    conv_backward(ctx, g.edge_mlp, g.node_mlp, t, d_x, nullptr, d_edges, batch, n, n, edges);
}

/// A mapper's edge state: the embedded edge features (tape), tiled over the batch.
Tensor embedded_edges(const Mlp& embedding, const Tensor& features, std::int64_t batch,
                      MlpTape& tape) {
    const Tensor embedded = mlp_forward(embedding, features, nullptr, tape);
    const std::int64_t count = embedded.rows();
    Tensor state({batch * count, embedded.cols()});
    for (std::int64_t b = 0; b < batch; ++b)
        std::copy(embedded.values().begin(), embedded.values().end(), state.row(b * count));
    return state;
}

/// Backward of embedded_edges: sums the batch tiles of d_state, then through the embedding MLP
/// into d(features) [E, 3 + t].
Tensor embedded_edges_backward(Context& ctx, const Mlp& embedding, const MlpTape& tape,
                               const Tensor& d_state, std::int64_t batch, const Tensor& features) {
    const std::int64_t count = features.rows(), c = d_state.cols();
    Tensor d_embedded({count, c});
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t e = 0; e < count; ++e)
            for (std::int64_t k = 0; k < c; ++k)
                d_embedded.row(e)[k] += d_state.row(b * count + e)[k];
    Tensor d_features(features.shape());
    mlp_backward(ctx, embedding, tape, d_embedded, &d_features);
    return d_features;
}

/// GNN encoder (mirrors Model::Impl::gnn_encode): fills the tape and t.data_latent; returns the
/// hidden latent.
Tensor run_gnn_encoder(const Model::Impl& m, TrainingTape::Data& t) {
    const auto& g = m.gnn_encoder;
    auto& tape = t.gnn_encoder;
    const std::int64_t c = m.channels;
    t.src_embedding = mlp_forward(g.src_embedding, t.data, nullptr, tape.src_embedding);
    tape.src_update_in = Tensor({t.src_embedding.rows(), 2 * c});
    for (std::int64_t r = 0; r < t.src_embedding.rows(); ++r) {
        std::copy_n(t.src_embedding.row(r), c, tape.src_update_in.row(r));
        std::copy_n(t.src_embedding.row(r), c, tape.src_update_in.row(r) + c);
    }
    t.data_latent = mlp_forward(g.node_mlp, tape.src_update_in, nullptr, tape.src_update);
    add_into(t.data_latent, t.src_embedding);
    Tensor latent = mlp_forward(g.dst_embedding, t.hidden_in, nullptr, tape.dst_embedding);
    const auto& edges = m.graph->edge_set("data_to_hidden");
    Tensor state = embedded_edges(g.edge_embedding, edge_features(edges, m.trainable_encoder_edges),
                                  t.batch, tape.edge_embedding);
    conv_forward(g.edge_mlp, g.node_mlp, t.src_embedding, latent, state, t.batch, m.n_data,
                 m.n_hidden, edges, tape.conv);
    return latent;
}

/// GNN decoder and extractor (mirrors Model::Impl::gnn_decode): fills the tape and t.decoded.
void run_gnn_decoder(const Model::Impl& m, TrainingTape::Data& t) {
    const auto& g = m.gnn_decoder;
    auto& tape = t.gnn_decoder;
    const auto& edges = m.graph->edge_set("hidden_to_data");
    Tensor state = embedded_edges(g.edge_embedding, edge_features(edges, m.trainable_decoder_edges),
                                  t.batch, tape.edge_embedding);
    Tensor y = t.data_latent;
    conv_forward(g.edge_mlp, g.node_mlp, t.processed_in, y, state, t.batch, m.n_hidden, m.n_data,
                 edges, tape.conv);
    t.decoded = mlp_forward(g.extractor, y, nullptr, tape.extractor);
    t.decoder_taped = true;
}

/// Backward of run_gnn_decoder: d(processed) added into d_x; returns d(data_latent).
Tensor gnn_decoder_backward(Context& ctx, const Model::Impl& m, const TrainingTape::Data& t,
                            const Tensor& d_decoded, Tensor& d_x) {
    const auto& g = m.gnn_decoder;
    const auto& tape = t.gnn_decoder;
    const auto& edges = m.graph->edge_set("hidden_to_data");
    Tensor d_y(t.data_latent.shape());
    mlp_backward(ctx, g.extractor, tape.extractor, d_decoded, &d_y);
    Tensor d_edges({t.batch * edges.count(), m.channels});  // the mapper drops its new edges
    conv_backward(ctx, g.edge_mlp, g.node_mlp, tape.conv, d_y, &d_x, d_edges, t.batch, m.n_hidden,
                  m.n_data, edges);
    const Tensor features = edge_features(edges, m.trainable_decoder_edges);
    const Tensor d_features = embedded_edges_backward(ctx, g.edge_embedding, tape.edge_embedding,
                                                      d_edges, t.batch, features);
    if (m.trainable_decoder_edges)
        trainable_gradient(d_features, 3, 1, ctx.find(m.trainable_decoder_edges));
    return d_y;
}

/// Backward of run_gnn_encoder from d(latent) and d(data_latent): d(data features) into d_data,
/// d(hidden features) into d_hidden_in, the edge trainables' gradient.
void gnn_encoder_backward(Context& ctx, const Model::Impl& m, const TrainingTape::Data& t,
                          Tensor d_latent, const Tensor& d_data_latent, Tensor& d_data,
                          Tensor& d_hidden_in) {
    const auto& g = m.gnn_encoder;
    const auto& tape = t.gnn_encoder;
    const std::int64_t c = m.channels;
    const auto& edges = m.graph->edge_set("data_to_hidden");
    Tensor d_src = d_data_latent;  // data_latent = src + node_mlp([src, src])
    Tensor d_edges({t.batch * edges.count(), c});
    conv_backward(ctx, g.edge_mlp, g.node_mlp, tape.conv, d_latent, &d_src, d_edges, t.batch,
                  m.n_data, m.n_hidden, edges);
    Tensor d_update_in(tape.src_update_in.shape());
    mlp_backward(ctx, g.node_mlp, tape.src_update, d_data_latent, &d_update_in);
    for (std::int64_t r = 0; r < d_src.rows(); ++r)
        for (std::int64_t k = 0; k < c; ++k)
            d_src.row(r)[k] += d_update_in.row(r)[k] + d_update_in.row(r)[c + k];
    mlp_backward(ctx, g.src_embedding, tape.src_embedding, d_src, &d_data);
    mlp_backward(ctx, g.dst_embedding, tape.dst_embedding, d_latent, &d_hidden_in);
    const Tensor features = edge_features(edges, m.trainable_encoder_edges);
    const Tensor d_features = embedded_edges_backward(ctx, g.edge_embedding, tape.edge_embedding,
                                                      d_edges, t.batch, features);
    if (m.trainable_encoder_edges)
        trainable_gradient(d_features, 3, 1, ctx.find(m.trainable_encoder_edges));
}

/// Rows [r0, r0 + n) of the encoder's sources: src = src_embedding(data) and LN(src) (the
/// forward computes them for k|v, the backward again for the gradients).
void encoder_source_rows(const Model::Impl& m, const Tensor& data, std::int64_t r0, std::int64_t n,
                         Tensor& src, Tensor& normalised) {
    m.encoder_src_embedding.apply(data.row(r0), n, src.data());
    m.encoder.norm_src.apply(src.data(), n, normalised.data());
}

/// The graph-transformer encoder's source side, k|v = [key|value](LN(src_embedding(data))), in
/// row chunks. Only k|v stays on the tape: the embedding and its LayerNorm (each as large as
/// half of k|v; 2.2 GB apiece on aifs-n320) are recomputed chunk by chunk by the backward.
void encoder_source_forward(const Model::Impl& m, const Tensor& data, BlockTape& t) {
    const auto& b = m.encoder;
    BOREAS_CHECK(b.separate_src_norm, "the encoder block has no source LayerNorm");
    const std::int64_t rows = data.rows(), c = m.channels;
    const std::int64_t step = std::min(rows, kMaxChunkRows);
    t.src = Tensor();
    t.src_norm = Tensor();
    t.kv = Tensor::uninitialised({rows, 2 * c});
    Tensor src = Tensor::uninitialised({step, c}), normalised = Tensor::uninitialised({step, c});
    for (std::int64_t r0 = 0; r0 < rows; r0 += step) {
        const std::int64_t n = std::min(step, rows - r0);
        encoder_source_rows(m, data, r0, n, src, normalised);
        apply_side_by_side({&b.key, &b.value}, normalised.data(), n, t.kv.row(r0));
    }
}

/// Backward of encoder_source_forward, chunk by chunk: the attention's source pass gives a
/// chunk's d(k|v); the embedding and its LayerNorm are recomputed for it; d(data features) are
/// added into d_data. Only a chunk of d(k|v) exists at a time.
void encoder_source_backward(Context& ctx, const Model::Impl& m, const Tensor& data,
                             DeferredSources& sources, Tensor& d_data) {
    const auto& b = m.encoder;
    const std::int64_t rows = data.rows(), c = m.channels;
    const std::int64_t step = std::min(rows, kMaxChunkRows);
    Tensor src = Tensor::uninitialised({step, c}), normalised = Tensor::uninitialised({step, c}),
           d_normalised = Tensor::uninitialised({step, c}),
           d_kv = Tensor::uninitialised({step, 2 * c});
    sources.params.dk = d_kv.data();
    sources.params.dv = d_kv.data() + c;
    sources.params.dkv_stride = 2 * c;
    for (std::int64_t r0 = 0; r0 < rows; r0 += step) {
        const std::int64_t n = std::min(step, rows - r0);
        backends::active().graph_attention_backward_sources(sources.params, sources.scratch, r0,
                                                            r0 + n);
        encoder_source_rows(m, data, r0, n, src, normalised);
        linear_backward_side_by_side(ctx, {&b.key, &b.value}, normalised.data(), n, d_kv.data(),
                                     d_normalised.data(), false);
        layer_norm_backward(ctx, b.norm_src, src.data(), n, d_normalised.data(),
                            d_normalised.data());
        linear_backward(ctx, m.encoder_src_embedding, data.row(r0), n, d_normalised.data(),
                        d_data.row(r0), true);
    }
}

/// Encoder on the stored features; fills the encoder tape (k|v of the sources, the hidden side).
Tensor run_encoder(const Model::Impl& m, TrainingTape::Data& t) {
    if (m.config.encoder.type == MapperType::gnn) return run_gnn_encoder(m, t);
    encoder_source_forward(m, t.data, t.encoder);
    Tensor latent;
    linear_forward(m.encoder_dst_embedding, t.hidden_in, latent);
    const auto& edges = m.graph->edge_set("data_to_hidden");
    const Tensor features = edge_features(edges, m.trainable_encoder_edges);
    block_destination_forward(m.encoder, t.encoder.kv, latent, edges, features, t.batch, m.n_data,
                              m.n_hidden, DstSpan{}, t.encoder);
    return latent;
}

/// Processor layers [first, last) on x in place, keeping their tapes.
void run_processor_layers(const Model::Impl& m, TrainingTape::Data& t, std::size_t first,
                          std::size_t last, Tensor& x, Tensor& edge_state) {
    if (!m.gnn_layers.empty()) {
        const auto& edges = m.graph->edge_set("hidden_to_hidden");
        t.gnn.resize(m.gnn_layers.size());
        for (std::size_t l = first; l < last; ++l)
            gnn_forward(m.gnn_layers[l], x, edge_state, t.batch, m.n_hidden, edges, t.gnn[l]);
        return;
    }
    if (!m.transformer_layers.empty()) {
        t.transformer.resize(m.transformer_layers.size());
        for (std::size_t l = first; l < last; ++l)
            layer_forward(m.transformer_layers[l], x, t.batch, m.n_hidden, t.transformer[l]);
    } else {
        const auto& edges = m.graph->edge_set("hidden_to_hidden");
        const Tensor features = edge_features(edges, m.trainable_processor_edges);
        t.graph_transformer.resize(m.graph_transformer_layers.size());
        for (std::size_t l = first; l < last; ++l) {
            const Tensor in = x;
            block_forward(m.graph_transformer_layers[l], in, x, edges, features, t.batch,
                          m.n_hidden, m.n_hidden, t.graph_transformer[l]);
        }
    }
}

/// The destination spans the graph-transformer decoder trains on. Without checkpointing, all
/// destinations at once. Under checkpointing too while a span's activations (about 16 C-wide
/// rows per destination) stay within kTrainingChunkBytes and the config asks for one chunk;
/// otherwise row chunks of each batch element, at least decoder.num_chunks of them: the
/// forward then keeps no decoder activations and the backward recomputes one chunk at a time
/// (aifs-n320: 36 GB of decoder activations, 17 chunks of 2 GB).
std::vector<DstSpan> decoder_spans(const Model::Impl& m, std::int64_t batch, bool checkpointed) {
    constexpr std::int64_t kTrainingChunkBytes = std::int64_t{2} << 30;
    const std::int64_t limit =
        std::max<std::int64_t>(1024, kTrainingChunkBytes / (16 * 4 * m.channels));
    const std::int64_t per_element =
        std::max<std::int64_t>(m.config.decoder.num_chunks, (m.n_data + limit - 1) / limit);
    if (!checkpointed || (per_element == 1 && batch * m.n_data <= limit)) return {DstSpan{}};
    const std::int64_t rows = (m.n_data + per_element - 1) / per_element;
    std::vector<DstSpan> spans;
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t j0 = 0; j0 < m.n_data; j0 += rows)
            spans.push_back(DstSpan::chunk(b, j0, std::min(m.n_data, j0 + rows)));
    return spans;
}

/// The decoder (on the sources' k|v in t.decoder, from block_source_forward) and the extractor
/// on one span's destination rows.
void decoder_chunk_forward(const Model::Impl& m, const TrainingTape::Data& t, const DstSpan& span,
                           const Tensor& features, DecoderChunk& c) {
    const std::int64_t rows = span.j1 - span.j0;
    Tensor y = Tensor::uninitialised({rows, m.channels});
    m.decoder_dst_embedding.apply(t.data.row(span.b * m.n_data + span.j0), rows, y.data());
    block_destination_forward(m.decoder, t.decoder.kv, y, m.graph->edge_set("hidden_to_data"),
                              features, t.batch, m.n_hidden, m.n_data, span, c.block);
    c.decoded_y = y;
    c.extractor_norm = Tensor::uninitialised(y.shape());
    m.extractor_norm.apply(y.data(), rows, c.extractor_norm.data());
    linear_forward(m.extractor, c.extractor_norm, c.decoded);
}

/// Decoder and extractor from the stored processor output; fills the decoder tape, or, chunked
/// (decoder_spans), only the sources' side of it and the output.
void run_decoder(const Model::Impl& m, TrainingTape::Data& t) {
    if (m.config.decoder.type == MapperType::gnn) return run_gnn_decoder(m, t);
    const auto spans = decoder_spans(m, t.batch, t.checkpointed);
    if (!spans.front().all) {
        const Tensor features =
            edge_features(m.graph->edge_set("hidden_to_data"), m.trainable_decoder_edges);
        block_source_forward(m.decoder, t.processed_in, t.decoder);
        t.decoded = Tensor::uninitialised({t.batch * m.n_data, m.extractor.out});
        for (const auto& span : spans) {
            DecoderChunk c;
            decoder_chunk_forward(m, t, span, features, c);
            std::copy(c.decoded.values().begin(), c.decoded.values().end(),
                      t.decoded.row(span.b * m.n_data + span.j0));
        }
        t.decoder_taped = false;
        return;
    }
    Tensor y;
    linear_forward(m.decoder_dst_embedding, t.data, y);
    const auto& edges = m.graph->edge_set("hidden_to_data");
    const Tensor features = edge_features(edges, m.trainable_decoder_edges);
    block_forward(m.decoder, t.processed_in, y, edges, features, t.batch, m.n_hidden, m.n_data,
                  t.decoder);
    t.decoded_y = y;
    t.extractor_norm = Tensor::uninitialised(y.shape());
    m.extractor_norm.apply(y.data(), y.rows(), t.extractor_norm.data());
    linear_forward(m.extractor, t.extractor_norm, t.decoded);
    t.decoder_taped = true;
}

std::size_t layer_count(const Model::Impl& m) {
    if (!m.gnn_layers.empty()) return m.gnn_layers.size();
    return m.transformer_layers.empty() ? m.graph_transformer_layers.size()
                                        : m.transformer_layers.size();
}

/// The GNN's initial edge state: the embedded edge features, tiled over the batch.
Tensor gnn_initial_edges(const Model::Impl& m, TrainingTape::Data& t) {
    const auto& edges = m.graph->edge_set("hidden_to_hidden");
    t.processor_features = edge_features(edges, m.trainable_processor_edges);
    const Tensor embedded = mlp_forward(m.gnn_layers[0].edge_embedding, t.processor_features,
                                        nullptr, t.edge_embedding);
    Tensor state({t.batch * edges.count(), m.channels});
    for (std::int64_t b = 0; b < t.batch; ++b)
        std::copy(embedded.values().begin(), embedded.values().end(), state.row(b * edges.count()));
    return state;
}

/// Backward of the graph-transformer encoder (run_encoder): d(data features) added into d_data,
/// d(hidden features) into d_hidden_in, the edge trainables' gradient.
void encoder_backward(Context& ctx, const Model::Impl& m, TrainingTape::Data& t,
                      const Tensor& d_latent, Tensor& d_data, Tensor& d_hidden_in) {
    if (t.checkpointed) run_encoder(m, t);
    const auto& enc_edges = m.graph->edge_set("data_to_hidden");
    const Tensor enc_features = edge_features(enc_edges, m.trainable_encoder_edges);
    Tensor d_enc_features = zeros_like(enc_features);
    Tensor unused;
    DeferredSources sources;
    const auto dst = block_destination_backward(
        ctx, m.encoder, t.encoder.kv, t.encoder, d_latent, enc_edges, enc_features, t.batch,
        m.n_data, m.n_hidden, DstSpan{}, unused, d_enc_features, &sources);
    // Recomputed anyway under checkpointing: release k|v before the source side's backward
    // (the source pass reads the hidden side's q, which stays until the end).
    if (t.checkpointed) t.encoder.kv = Tensor();
    encoder_source_backward(ctx, m, t.data, sources, d_data);
    if (t.checkpointed) t.encoder = BlockTape{};
    linear_backward(ctx, m.encoder_dst_embedding, t.hidden_in, dst.d_g, &d_hidden_in, false);
    if (m.trainable_encoder_edges)
        trainable_gradient(d_enc_features, 3, 1, ctx.find(m.trainable_encoder_edges));
}

Tensor output_forward(const Model::Impl& m, TrainingTape::Data& t, const Tensor& input,
                      const Tensor& decoded) {
    const std::int64_t batch = input.dim(0);
    const auto out_vars = static_cast<std::int64_t>(m.config.output_variables().size());
    const std::int64_t in_vars = input.dim(4), steps = m.config.multistep_input;
    Tensor output({batch, 1, 1, m.n_data, out_vars});
    std::copy(decoded.values().begin(), decoded.values().end(), output.data());
    const auto pairs = m.config.prognostic_pairs();
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t n = 0; n < m.n_data; ++n) {
            float* o = output.data() + (b * m.n_data + n) * out_vars;
            const float* xin = input.data() + ((b * steps + steps - 1) * m.n_data + n) * in_vars;
            for (const auto& [oi, ii] : pairs) o[oi] += xin[ii];
        }
    t.before_bounding.clear();
    const auto outputs = m.config.output_variables();
    for (const auto& bounding : m.config.bounding) {
        t.before_bounding.push_back(output);
        Model::Impl::apply_bounding(bounding, outputs, output);
    }
    return output;
}

Tensor output_backward(const Model::Impl& m, const TrainingTape::Data& t, const Tensor& d_output,
                       Tensor* d_input) {
    const std::int64_t batch = t.batch;
    const auto outputs = m.config.output_variables();
    const auto out_vars = static_cast<std::int64_t>(outputs.size());
    // Boundings in reverse order.
    Tensor d = d_output;
    for (std::size_t k = m.config.bounding.size(); k-- > 0;) {
        const auto& bounding = m.config.bounding[k];
        const Tensor& x = t.before_bounding[k];
        auto index_of = [&](const std::string& name) {
            return static_cast<std::int64_t>(std::find(outputs.begin(), outputs.end(), name) -
                                             outputs.begin());
        };
        const std::int64_t total = bounding.total_var.empty() ? -1 : index_of(bounding.total_var);
        for (std::int64_t r = 0; r < x.numel() / out_vars; ++r) {
            const float* xr = x.data() + r * out_vars;
            float* dr = d.data() + r * out_vars;
            for (const auto& name : bounding.variables) {
                const auto c = index_of(name);
                const float v = xr[c];
                switch (bounding.type) {
                    case BoundingType::relu:
                        dr[c] = v > 0 ? dr[c] : 0.0f;
                        break;
                    case BoundingType::hardtanh:
                        dr[c] = (v > bounding.min_val && v < bounding.max_val) ? dr[c] : 0.0f;
                        break;
                    case BoundingType::fraction: {
                        const float inside =
                            (v > bounding.min_val && v < bounding.max_val) ? 1.0f : 0.0f;
                        dr[total] += dr[c] * std::clamp(v, bounding.min_val, bounding.max_val);
                        dr[c] = dr[c] * xr[total] * inside;
                        break;
                    }
                }
            }
        }
    }
    // Residual: the prognostic outputs' gradient also reaches the last input step.
    const std::int64_t in_vars = t.input.dim(4), steps = m.config.multistep_input;
    const auto pairs = m.config.prognostic_pairs();
    if (d_input == nullptr) return d;
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t n = 0; n < m.n_data; ++n) {
            const float* dr = d.data() + (b * m.n_data + n) * out_vars;
            float* di = d_input->data() + ((b * steps + steps - 1) * m.n_data + n) * in_vars;
            for (const auto& [oi, ii] : pairs) di[ii] += dr[oi];
        }
    return d;
}

}  // namespace training_detail

using namespace training_detail;

Gradients Model::zero_gradients(const Tensor& input) const {
    const backends::ActiveBackendScope on_device(backends::get(impl_->device));
    Gradients g;
    for (const auto& name : impl_->store.names())
        g.parameters.emplace(name, Tensor(impl_->store.get(name).shape()));
    g.input = Tensor(input.shape());
    return g;
}

TrainingTape::TrainingTape() : data(std::make_unique<Data>()) {}
TrainingTape::~TrainingTape() = default;
TrainingTape::TrainingTape(TrainingTape&&) noexcept = default;
TrainingTape& TrainingTape::operator=(TrainingTape&&) noexcept = default;

namespace {

/// Under checkpointing, the decoder's activations (backward drops them once used).
void drop_decoder(TrainingTape::Data& t) {
    if (!t.checkpointed) return;
    t.decoder = BlockTape{};
    t.decoded_y = Tensor();
    t.extractor_norm = Tensor();
    t.decoder_taped = false;
}

}  // namespace

void TrainingTape::drop_recomputable() {
    if (!data->checkpointed) return;
    drop_decoder(*data);
    data->transformer.clear();
    data->graph_transformer.clear();
    data->gnn.clear();
    data->last_chunk_taped = false;
}

Tensor Model::forward_train(const Tensor& input, TrainingTape& tape, bool activation_checkpointing,
                            const dist::Communicator* shards) const {
    auto& t = *tape.data;
    const auto& m = *impl_;
    BOREAS_CHECK(!m.store.holds_bf16(),
                 "this model keeps its weights in bf16 for inference: it cannot be trained");
    m.check_input(input, false);
    const backends::ActiveBackendScope on_device(backends::get(m.device));
    t.shards = nullptr;
    if (shards != nullptr && shards->size() > 1) return forward_train_sharded(m, input, t, *shards);
    const std::int64_t batch = input.dim(0);
    t.batch = batch;
    t.input = input;
    t.data = m.data_features(input, batch);
    t.hidden_in = m.hidden_features(batch);
    // With activation checkpointing only the inputs of the encoder and of each processor chunk
    // are kept; backward recomputes each part (same kernels, same values) just before
    // differentiating it. The decoder, the last part, keeps its activations: backward starts with
    // it, so recomputing it would rebuild the same tape at the same point, for the same peak
    // (torch.utils.checkpoint.checkpoint_sequential leaves its last segment alike). So does the
    // last processor chunk, which backward reaches right after the decoder, unless the decoder
    // runs in chunks (decoder_spans: then the model is large and memory is what matters).
    t.checkpointed = activation_checkpointing;
    t.consumed = false;
    const bool keep_last_chunk =
        activation_checkpointing && (m.config.decoder.type == MapperType::gnn ||
                                     decoder_spans(m, batch, activation_checkpointing).front().all);
    std::optional<trace::Range> range(std::in_place, "encoder");  // the phase tree of the step
    Tensor latent = run_encoder(m, t);
    // A graph-transformer encoder is recomputed in backward; a GNN encoder keeps its tape (its
    // data latents feed the decoder too, so they stay either way).
    if (activation_checkpointing && m.config.encoder.type != MapperType::gnn) {
        t.encoder = BlockTape{};
        t.src_embedding = Tensor();
    }
    range.emplace("processor");
    Tensor x = latent;
    const std::size_t layers = layer_count(m);
    const std::size_t per_chunk = layers / static_cast<std::size_t>(m.config.processor.num_chunks);
    t.chunk_inputs.clear();
    t.chunk_edges.clear();
    Tensor edge_state = m.gnn_layers.empty() ? Tensor() : gnn_initial_edges(m, t);
    for (std::size_t first = 0; first < layers; first += per_chunk) {
        if (activation_checkpointing) {
            t.chunk_inputs.push_back(x);
            if (!m.gnn_layers.empty()) t.chunk_edges.push_back(edge_state);  // updated per layer
        }
        run_processor_layers(m, t, first, std::min(layers, first + per_chunk), x, edge_state);
        const bool last_chunk = first + per_chunk >= layers;
        if (activation_checkpointing && !(last_chunk && keep_last_chunk)) {
            t.transformer.clear();
            t.graph_transformer.clear();
            t.gnn.clear();
        }
    }
    t.last_chunk_taped = keep_last_chunk;
    if (m.config.latent_skip) add_into(x, latent);
    t.processed_in = x;
    range.emplace("decoder");
    run_decoder(m, t);
    Tensor output = output_forward(m, t, input, t.decoded);
    t.decoded = Tensor();
    return output;
}

void Model::backward(TrainingTape& tape, const Tensor& d_output, Gradients& grads) const {
    const auto& t = *tape.data;
    const auto& m = *impl_;
    const backends::ActiveBackendScope on_device(backends::get(m.device));
    // Under checkpointing backward releases each part's saved inputs once it is differentiated
    // (aifs-n320: 2.6 GB of chunk inputs, 1.3 GB of outputs before the boundings).
    BOREAS_CHECK(!t.consumed,
                 "this training tape's backward already ran; under activation checkpointing it "
                 "releases the tape as it goes: run forward_train again");
    tape.data->consumed = t.checkpointed;
    const std::int64_t batch = t.batch;
    const auto out_vars = static_cast<std::int64_t>(m.config.output_variables().size());
    BOREAS_CHECK(d_output.numel() == batch * m.n_data * out_vars,
                 "d_output has {} values, expected {}", d_output.numel(),
                 batch * m.n_data * out_vars);
    if (t.shards != nullptr) return backward_sharded(m, *tape.data, d_output, grads);
    Context ctx{m, grads};
    const std::int64_t in_vars = t.input.dim(4), steps = m.config.multistep_input;
    std::optional<trace::Range> range(std::in_place, "decoder");  // output and decoder
    const Tensor d = output_backward(m, t, d_output, &grads.input);
    if (t.checkpointed) tape.data->before_bounding.clear();
    // Extractor and decoder. Under activation checkpointing their activations are released after
    // use, before the processor's chunks are recomputed (o96: 1.3 GB of decoder activations would
    // otherwise add to that peak); so are their gradients, in any case.
    auto& mutable_tape = *tape.data;
    Tensor d_x = zeros_like(t.processed_in);
    Tensor d_data = zeros_like(t.data);
    Tensor d_data_latent;  // GNN mappers
    if (m.config.decoder.type == MapperType::gnn) {
        Tensor d_decoded({batch * m.n_data, out_vars});
        std::copy(d.values().begin(), d.values().end(), d_decoded.data());
        d_data_latent = gnn_decoder_backward(ctx, m, t, d_decoded, d_x);
    } else if (const auto spans = decoder_spans(m, batch, t.checkpointed); !spans.front().all) {
        // Chunked: each chunk's activations are recomputed, differentiated and dropped in turn;
        // the chunks' d(k|v) add up before the sources' side is differentiated once.
        if (t.decoder.kv.numel() == 0)  // a second backward on this tape
            block_source_forward(m.decoder, t.processed_in, mutable_tape.decoder);
        const auto& dec_edges = m.graph->edge_set("hidden_to_data");
        const Tensor dec_features = edge_features(dec_edges, m.trainable_decoder_edges);
        Tensor d_dec_features = zeros_like(dec_features);
        Tensor d_kv = zeros_like(t.decoder.kv);
        for (std::size_t k = spans.size(); k-- > 0;) {
            const DstSpan& span = spans[k];
            const std::int64_t rows = span.j1 - span.j0, row0 = span.b * m.n_data + span.j0;
            DecoderChunk c;
            {
                BOREAS_RANGE("recompute");
                decoder_chunk_forward(m, t, span, dec_features, c);
            }
            Tensor d_decoded({rows, out_vars});
            std::copy_n(d.data() + row0 * out_vars, rows * out_vars, d_decoded.data());
            const Tensor d_y = extractor_backward(ctx, m, c.extractor_norm, c.decoded_y, d_decoded);
            const auto dst = block_destination_backward(ctx, m.decoder, t.decoder.kv, c.block, d_y,
                                                        dec_edges, dec_features, batch, m.n_hidden,
                                                        m.n_data, span, d_kv, d_dec_features);
            c = DecoderChunk{};
            linear_backward(ctx, m.decoder_dst_embedding, t.data.row(row0), rows, dst.d_g.data(),
                            d_data.row(row0), true);
        }
        Tensor d_src_norm = Tensor::uninitialised(t.decoder.src_norm.shape());
        linear_backward_side_by_side(ctx, {&m.decoder.key, &m.decoder.value}, t.decoder.src_norm,
                                     d_kv, &d_src_norm, false);
        add_into(d_x, layer_norm_backward(ctx, m.decoder.norm_src, t.decoder.src, d_src_norm));
        drop_decoder(mutable_tape);
        if (m.trainable_decoder_edges)
            trainable_gradient(d_dec_features, 3, 1, ctx.find(m.trainable_decoder_edges));
    } else {
        if (!t.decoder_taped) run_decoder(m, mutable_tape);  // a second backward on this tape
        Tensor d_decoded({batch * m.n_data, out_vars});
        std::copy(d.values().begin(), d.values().end(), d_decoded.data());
        const Tensor d_y = extractor_backward(ctx, m, t.extractor_norm, t.decoded_y, d_decoded);
        const auto& dec_edges = m.graph->edge_set("hidden_to_data");
        const Tensor dec_features = edge_features(dec_edges, m.trainable_decoder_edges);
        Tensor d_dec_features = zeros_like(dec_features);
        const Tensor d_dec_dst =
            block_backward(ctx, m.decoder, t.decoder, d_y, dec_edges, dec_features, batch,
                           m.n_hidden, m.n_data, &d_x, d_dec_features);
        drop_decoder(mutable_tape);
        linear_backward(ctx, m.decoder_dst_embedding, t.data, d_dec_dst, &d_data, false);
        if (m.trainable_decoder_edges)
            trainable_gradient(d_dec_features, 3, 1, ctx.find(m.trainable_decoder_edges));
    }
    if (grads.observer) grads.observer->part_done();  // the decoder's
    // Processor (and the latent skip).
    range.emplace("processor");
    Tensor d_latent = m.config.latent_skip ? d_x : zeros_like(d_x);
    const std::size_t layers = layer_count(m);
    const std::size_t per_chunk = layers / static_cast<std::size_t>(m.config.processor.num_chunks);
    const EdgeSet* processor_edges = m.transformer_layers.empty() && m.gnn_layers.empty()
                                         ? &m.graph->edge_set("hidden_to_hidden")
                                         : nullptr;
    Tensor d_gnn_edges;
    if (!m.gnn_layers.empty())
        d_gnn_edges = Tensor({batch * m.graph->edge_set("hidden_to_hidden").count(), m.channels});
    const Tensor processor_features =
        processor_edges ? edge_features(*processor_edges, m.trainable_processor_edges) : Tensor();
    Tensor d_processor_features = zeros_like(processor_features);
    const std::size_t chunks = (layers + per_chunk - 1) / per_chunk;
    for (std::size_t chunk = chunks; chunk-- > 0;) {
        const std::size_t first = chunk * per_chunk, last = std::min(layers, first + per_chunk);
        if (t.checkpointed && !(chunk + 1 == chunks && t.last_chunk_taped)) {
            BOREAS_RANGE("recompute");
            Tensor x = t.chunk_inputs[chunk];
            Tensor edges = m.gnn_layers.empty() ? Tensor() : t.chunk_edges[chunk];
            run_processor_layers(m, mutable_tape, first, last, x, edges);
        }
        for (std::size_t l = last; l-- > first;) {
            if (!m.gnn_layers.empty()) {
                gnn_backward(ctx, m.gnn_layers[l], t.gnn[l], d_x, d_gnn_edges, batch, m.n_hidden,
                             m.graph->edge_set("hidden_to_hidden"));
            } else if (!m.transformer_layers.empty()) {
                d_x = layer_backward(ctx, m.transformer_layers[l], t.transformer[l], d_x, batch,
                                     m.n_hidden);
            } else {
                d_x = block_backward(ctx, m.graph_transformer_layers[l], t.graph_transformer[l],
                                     d_x, *processor_edges, processor_features, batch, m.n_hidden,
                                     m.n_hidden, nullptr, d_processor_features);
            }
            if (grads.observer) grads.observer->part_done();  // layer l's
        }
        if (t.checkpointed) {
            mutable_tape.transformer.clear();
            mutable_tape.graph_transformer.clear();
            mutable_tape.gnn.clear();
            mutable_tape.last_chunk_taped = false;
            mutable_tape.chunk_inputs[chunk] = Tensor();
            if (!m.gnn_layers.empty()) mutable_tape.chunk_edges[chunk] = Tensor();
        }
    }
    if (processor_edges && m.trainable_processor_edges)
        trainable_gradient(d_processor_features, 3, 1, ctx.find(m.trainable_processor_edges));
    if (!m.gnn_layers.empty()) {
        // The initial edge state was the embedding tiled over the batch: sum the tiles.
        const auto count = m.graph->edge_set("hidden_to_hidden").count();
        Tensor d_embedded({count, m.channels});
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t e = 0; e < count; ++e)
                for (std::int64_t k = 0; k < m.channels; ++k)
                    d_embedded.row(e)[k] += d_gnn_edges.row(b * count + e)[k];
        Tensor d_features(t.processor_features.shape());
        mlp_backward(ctx, m.gnn_layers[0].edge_embedding, t.edge_embedding, d_embedded,
                     &d_features);
        if (m.trainable_processor_edges)
            trainable_gradient(d_features, 3, 1, ctx.find(m.trainable_processor_edges));
    }
    add_into(d_latent, d_x);
    if (grads.observer) grads.observer->part_done();  // the processor's shared tensors
    // Encoder (with its recomputation under checkpointing) and the input features.
    range.emplace("encoder");
    Tensor d_hidden_in = zeros_like(t.hidden_in);
    if (m.config.encoder.type == MapperType::gnn) {
        gnn_encoder_backward(ctx, m, t, d_latent, d_data_latent, d_data, d_hidden_in);
    } else {
        encoder_backward(ctx, m, mutable_tape, d_latent, d_data, d_hidden_in);
    }
    if (m.trainable_hidden) trainable_gradient(d_hidden_in, 4, batch, ctx.find(m.trainable_hidden));
    // Data features: inputs (time-major columns) and trainable data columns.
    for (std::int64_t row = 0; row < batch * m.n_data; ++row) {
        const std::int64_t b = row / m.n_data, n = row % m.n_data;
        for (std::int64_t s = 0; s < steps; ++s)
            for (std::int64_t v = 0; v < in_vars; ++v)
                grads.input.data()[((b * steps + s) * m.n_data + n) * in_vars + v] +=
                    d_data.row(row)[s * in_vars + v];
    }
    if (m.trainable_data)
        trainable_gradient(d_data, steps * in_vars + 4, batch, ctx.find(m.trainable_data));
    if (grads.observer) grads.observer->part_done();  // the encoder's and the inputs'
}

}  // namespace boreas::model
