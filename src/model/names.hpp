#pragma once
// anemoi-models' state-dict names (anemoi-models 0.18, single dataset "data"), in one place so a
// renaming upstream is a one-file change. spec/model.md 5.1 lists the 0.3.1 names.

#include <string>
#include <vector>

namespace boreas::model {

struct BlockNames {
    std::string query, key, value, self, edge, projection;
    std::string norm_src, norm_dst, norm_mlp, mlp_in, mlp_out;
};

struct TransformerNames {
    std::string norm_attention, q, k, v, projection, norm_mlp, mlp_in, mlp_out;
};

namespace names {

inline const std::string kTrainableData = "node_attributes.trainable_tensors.data.trainable";
inline const std::string kTrainableHidden = "node_attributes.trainable_tensors.hidden.trainable";
inline const std::string kTrainableEncoderEdges = "encoder_graph_provider.data.trainable.trainable";
inline const std::string kTrainableDecoderEdges = "decoder_graph_provider.data.trainable.trainable";
inline const std::string kTrainableProcessorEdges = "processor_graph_provider.trainable.trainable";

inline const std::string kLatLonsData = "node_attributes.latlons_data";
inline const std::string kLatLonsHidden = "node_attributes.latlons_hidden";
inline const std::string kLayoutVersionSuffix = "trainable_layout_version";
inline const std::string kNormAlias = "layer_norm_attention_dest";

inline std::string encoder(const std::string& leaf) {
    return "encoder.data." + leaf;
}
inline std::string decoder(const std::string& leaf) {
    return "decoder.data." + leaf;
}

inline BlockNames gt_block(const std::string& prefix, bool mapper) {
    BlockNames n;
    n.query = prefix + "lin_query";
    n.key = prefix + "lin_key";
    n.value = prefix + "lin_value";
    n.self = prefix + "lin_self";
    n.edge = prefix + "lin_edge";
    n.projection = prefix + "projection";
    n.norm_src = prefix + "layer_norm_attention_src";
    n.norm_dst = prefix + "layer_norm_attention";
    n.norm_mlp = prefix + "layer_norm_mlp_dst";
    n.mlp_in = prefix + "node_dst_mlp.mlp.0";
    n.mlp_out = prefix + "node_dst_mlp.mlp.2";
    (void)mapper;
    return n;
}

/// "encoder" or "decoder": the mapper's GraphTransformerMapperBlock.
inline BlockNames mapper_block(const std::string& mapper) {
    return gt_block(mapper + ".data.proc.", true);
}

inline BlockNames processor_block(int layer) {
    return gt_block("processor.proc." + std::to_string(layer) + ".", false);
}

inline TransformerNames transformer_layer(int layer) {
    const std::string p = "processor.proc." + std::to_string(layer) + ".";
    TransformerNames n;
    n.norm_attention = p + "layer_norm_attention";
    n.q = p + "attention.lin_q";
    n.k = p + "attention.lin_k";
    n.v = p + "attention.lin_v";
    n.projection = p + "attention.projection";
    n.norm_mlp = p + "layer_norm_mlp";
    n.mlp_in = p + "mlp.mlp.0";
    n.mlp_out = p + "mlp.mlp.2";
    return n;
}

struct MlpNames {
    std::vector<std::string> linears;  ///< mlp.0, mlp.2, mlp.4, ...
    std::string norm;                  ///< layer_norm
};

/// anemoi's MLP (layers/mlp.py): Linear, activation, ..., Linear, then an optional LayerNorm.
inline MlpNames mlp(const std::string& prefix, int linears) {
    MlpNames n;
    for (int i = 0; i < linears; ++i) n.linears.push_back(prefix + "mlp." + std::to_string(2 * i));
    n.norm = prefix + "layer_norm";
    return n;
}

struct GnnNames {
    MlpNames edge_embedding, edge_mlp, node_mlp;
};

inline GnnNames gnn_layer(int layer, int linears) {
    const std::string p = "processor.proc." + std::to_string(layer) + ".";
    return {mlp(p + "emb_edges.", linears), mlp(p + "conv.edge_mlp.", linears),
            mlp(p + "node_mlp.", linears)};
}

}  // namespace names
}  // namespace boreas::model
