#include "cost_model.hpp"

#include <algorithm>

namespace boreas::bench {
namespace {

constexpr double kFloat = 4;

struct Cost {
    PhaseCost c;
    void linear(double rows, double in, double out) {
        c.flops += 2 * rows * in * out;
        c.bytes += kFloat * (rows * in + in * out + rows * out + out);
    }
    void elementwise(double values, double passes = 2) { c.bytes += kFloat * values * passes; }
    /// Graph attention over `edges` incoming edges of `dst` destinations with H heads of width d.
    void graph_attention(double edges, double dst, double channels, double heads, double edge_dim) {
        c.flops += edges * (4 * channels + 4 * heads * edge_dim) + dst * 4 * channels * edge_dim;
        c.bytes += kFloat * (edges * (2 * channels + edge_dim) + dst * 2 * channels);
    }
};

double hidden_of(double channels, double ratio) {
    return static_cast<double>(static_cast<long>(channels * ratio + 0.5));
}

/// One graph-transformer block: q, self, projection, MLP on dst rows; k, v on src rows.
void gt_block(Cost& cost, double src_rows, double dst_rows, double edges, double c, double heads,
              double ratio, double edge_dim) {
    const double h = hidden_of(c, ratio);
    cost.elementwise(src_rows * c + 2 * dst_rows * c);  // LayerNorms
    cost.linear(src_rows, c, c);                        // key
    cost.linear(src_rows, c, c);                        // value
    cost.linear(dst_rows, c, c);                        // query
    cost.linear(dst_rows, c, c);                        // self
    cost.graph_attention(edges, dst_rows, c, heads, edge_dim);
    cost.linear(dst_rows, c, c);  // projection
    cost.linear(dst_rows, c, h);
    cost.elementwise(dst_rows * h);  // GELU
    cost.linear(dst_rows, h, c);
}

/// anemoi's MLP: `linears` Linears in -> hidden -> ... -> hidden -> out, GELUs between them,
/// LayerNorm after (when `norm`).
void mlp(Cost& cost, double rows, double in, double hidden, double out, int linears,
         bool norm = true) {
    cost.linear(rows, in, hidden);
    for (int m = 2; m < linears; ++m) cost.linear(rows, hidden, hidden);
    cost.linear(rows, hidden, out);
    cost.elementwise(rows * hidden * (linears - 1));  // GELUs
    if (norm) cost.elementwise(rows * out);
}

/// One GNN mapper GraphConv (spec: GNN mappers): edge embedding, the edge MLP (its first Linear
/// split into per-node projections), the sum into destinations, the node MLP.
void gnn_mapper(Cost& cost, double src_rows, double dst_rows, double edges, double c,
                const model::MapperConfig& mapper, double edge_dim) {
    const double h = hidden_of(c, mapper.mlp_hidden_ratio);
    const int linears = mapper.mlp_extra_layers + 3;
    mlp(cost, edges, edge_dim, h, c, linears);  // edge embedding
    cost.linear(src_rows, c, c);                // source projection
    cost.linear(dst_rows, c, c);                // destination projection
    cost.linear(edges, c, c);                   // edge projection
    for (int m = 1; m < linears; ++m) cost.linear(edges, c, c);
    cost.elementwise(edges * c * linears, 3);   // gathers, GELUs, LayerNorm, message sum
    mlp(cost, dst_rows, 2 * c, h, c, linears);  // node MLP
}

}  // namespace

std::map<std::string, PhaseCost> forward_costs(const model::ModelConfig& config,
                                               const graphs::Graph& graph, int batch) {
    const double b = batch;
    const double n_data = static_cast<double>(graph.node_set("data").count());
    const double n_hidden = static_cast<double>(graph.node_set("hidden").count());
    const double c = config.num_channels;
    const double width = static_cast<double>(config.data_feature_width());
    const double vars_in = static_cast<double>(config.input_variables().size());
    const double vars_out = static_cast<double>(config.output_variables().size());
    const auto& t = config.trainable;
    std::map<std::string, PhaseCost> costs;

    Cost input;
    input.elementwise(b * n_data * (config.multistep_input * vars_in + width));
    costs["input"] = input.c;

    const bool gnn_mappers = config.encoder.type == model::MapperType::gnn;
    const double encoder_edges = b * static_cast<double>(graph.edge_set("data_to_hidden").count());
    const double decoder_edges = b * static_cast<double>(graph.edge_set("hidden_to_data").count());
    Cost encoder;
    if (gnn_mappers) {
        const double h = hidden_of(c, config.encoder.mlp_hidden_ratio);
        const int linears = config.encoder.mlp_extra_layers + 3;
        mlp(encoder, b * n_data, width, h, c, linears);  // source embedding
        mlp(encoder, b * n_hidden, static_cast<double>(config.hidden_feature_width()), h, c,
            linears);                                    // destination embedding
        mlp(encoder, b * n_data, 2 * c, h, c, linears);  // source update
        gnn_mapper(encoder, b * n_data, b * n_hidden, encoder_edges, c, config.encoder,
                   3.0 + t.data2hidden);
    } else {
        encoder.linear(b * n_data, width, c);
        encoder.linear(b * n_hidden, static_cast<double>(config.hidden_feature_width()), c);
        gt_block(encoder, b * n_data, b * n_hidden, encoder_edges, c, config.encoder.num_heads,
                 config.encoder.mlp_hidden_ratio, 3.0 + t.data2hidden);
    }
    costs["encoder"] = encoder.c;

    const auto& p = config.processor;
    const int per_chunk = p.num_layers / p.num_chunks;
    PhaseCost processor;
    for (int chunk = 0; chunk < p.num_chunks; ++chunk) {
        Cost layers;
        for (int l = 0; l < per_chunk; ++l) {
            const double rows = b * n_hidden;
            if (p.type == model::ProcessorType::transformer) {
                const double h = hidden_of(c, p.mlp_hidden_ratio);
                // Average keys per query of a +-w window truncated at the sequence ends.
                const double n = n_hidden, w = std::min<double>(p.window_size, n - 1);
                const double keys = (2 * w + 1) - w * (w + 1) / n;
                layers.elementwise(2 * rows * c);
                for (int m = 0; m < 4; ++m) layers.linear(rows, c, c);  // q, k, v, projection
                layers.c.flops += 4 * rows * keys * c;
                layers.c.bytes += kFloat * 4 * rows * c;
                layers.linear(rows, c, h);
                layers.elementwise(rows * h);
                layers.linear(rows, h, c);
            } else if (p.type == model::ProcessorType::graph_transformer) {
                gt_block(layers, rows, rows,
                         b * static_cast<double>(graph.edge_set("hidden_to_hidden").count()), c,
                         p.num_heads, p.mlp_hidden_ratio, 3.0 + t.hidden2hidden);
            } else {
                const double edges =
                    b * static_cast<double>(graph.edge_set("hidden_to_hidden").count());
                const double h = hidden_of(c, p.mlp_hidden_ratio);
                const int linears = p.mlp_extra_layers + 3;
                layers.linear(edges, 3 * c, c);
                for (int m = 1; m < linears; ++m) layers.linear(edges, c, c);
                layers.linear(rows, 2 * c, h);
                for (int m = 2; m < linears; ++m) layers.linear(rows, h, h);
                layers.linear(rows, h, c);
                layers.elementwise(3 * edges * c + 3 * rows * c);
            }
        }
        costs["processor/chunk" + std::to_string(chunk)] = layers.c;
        processor.flops += layers.c.flops;
        processor.bytes += layers.c.bytes;
    }
    costs["processor"] = processor;

    Cost decoder;
    if (gnn_mappers) {
        gnn_mapper(decoder, b * n_hidden, b * n_data, decoder_edges, c, config.decoder,
                   3.0 + t.hidden2data);
        mlp(decoder, b * n_data, c, hidden_of(c, config.decoder.mlp_hidden_ratio), vars_out,
            config.decoder.mlp_extra_layers + 3, /*norm=*/false);  // extractor
    } else {
        decoder.linear(b * n_data, width, c);
        gt_block(decoder, b * n_hidden, b * n_data, decoder_edges, c, config.decoder.num_heads,
                 config.decoder.mlp_hidden_ratio, 3.0 + t.hidden2data);
        decoder.elementwise(b * n_data * c);
        decoder.linear(b * n_data, c, vars_out);
    }
    costs["decoder"] = decoder.c;

    Cost output;
    output.elementwise(b * n_data * vars_out, 3);
    costs["output"] = output.c;
    return costs;
}

}  // namespace boreas::bench
