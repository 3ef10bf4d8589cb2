// This path's kernel table (compiled once per path, like the kernels; see kernel_table.hpp).
#include "kernel_table.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {

const KernelTable& kernel_table() {
    static const KernelTable table{
        .name = BOREAS_ISA_NAME,
        .fields_to_rows = &fields_to_rows,
        .copy_rows = &copy_rows,
        .linear = &linear,
        .mlp = &mlp,
        .layer_norm = &layer_norm,
        .gelu = &gelu,
        .graph_attention = &graph_attention,
        .window_attention = &window_attention,
        .linear_backward = &linear_backward,
        .layer_norm_backward = &layer_norm_backward,
        .gelu_backward = &gelu_backward,
        .graph_attention_backward = &graph_attention_backward,
        .graph_attention_backward_destinations = &graph_attention_backward_destinations,
        .graph_attention_backward_sources = &graph_attention_backward_sources,
        .window_attention_backward = &window_attention_backward,
        .transpose_csr = &transpose_csr,
#ifdef BOREAS_VECTOR_ERF
        .vector_erf = true,
#else
        .vector_erf = false,
#endif
        .bf16_method = &bf16_method,
        .choose_fp32_tile = &choose_fp32_tile,
    };
    return table;
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
