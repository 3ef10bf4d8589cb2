#pragma once
// The CPU kernels of one instruction-set path, as function pointers: every kernel source is
// compiled once per path into namespace boreas::kernels::cpu::<path> (isa_prelude.hpp), each path
// fills one table (isa_table.cpp), and the public kernels::cpu functions call through the table
// dispatch.cpp selected for this CPU (or BOREAS_ISA).
#include <cstdint>

#include "boreas/kernels/kernels.hpp"

namespace boreas::kernels::cpu {

/// The register tile the path's fp32 Linear and MLP run on.
struct Fp32Tile {
    int bits = 0;  ///< 512: the 12 x 16 zmm tile; 256: the 6 x 16 ymm tile; 0: none (OpenBLAS)
    const char* selected_by = "the path";   ///< "the path", "measured", "BOREAS_FP32_TILE", ...
    double gflops_256 = 0, gflops_512 = 0;  ///< the measurement (one thread), where measured
};

struct KernelTable {
    const char* name;
    void (*fields_to_rows)(const FieldsToRowsParams&);
    void (*copy_rows)(const CopyRowsParams&);
    void (*linear)(const LinearParams&);
    void (*mlp)(const MlpParams&);
    void (*layer_norm)(const LayerNormParams&);
    void (*gelu)(float*, std::int64_t);
    void (*graph_attention)(const GraphAttentionParams&);
    void (*window_attention)(const WindowAttentionParams&);
    void (*linear_backward)(const LinearBackwardParams&);
    void (*layer_norm_backward)(const LayerNormBackwardParams&);
    void (*gelu_backward)(const float*, const float*, float*, std::int64_t);
    void (*graph_attention_backward)(const GraphAttentionBackwardParams&);
    void (*graph_attention_backward_destinations)(const GraphAttentionBackwardParams&,
                                                  GraphAttentionBackwardScratch&);
    void (*graph_attention_backward_sources)(const GraphAttentionBackwardParams&,
                                             const GraphAttentionBackwardScratch&, std::int64_t,
                                             std::int64_t);
    void (*window_attention_backward)(const WindowAttentionBackwardParams&);
    void (*transpose_csr)(const std::int64_t*, const std::int32_t*, std::int64_t, std::int64_t,
                          std::int64_t*, std::int64_t*);
    bool vector_erf;  ///< GELU through libmvec's vector erff (else libm's erff, lane by lane)
    const char* (*bf16_method)();
    /// Sets the fp32 tile: `forced_bits` (256 or 512), or 0 for the path's own choice (on
    /// avx512: whichever tile measures faster on this CPU). A width the path lacks is an error
    /// naming `origin` if `strict`, else the path keeps its own tile (BOREAS_FP32_TILE
    /// configures the avx512 path, the only one with two tiles).
    Fp32Tile (*choose_fp32_tile)(int forced_bits, const char* origin, bool strict);
};

}  // namespace boreas::kernels::cpu

#ifdef BOREAS_ISA_NS
namespace boreas::kernels::cpu::BOREAS_ISA_NS {

// The path's kernels, declared here so that an unqualified call inside the path (dense.cpp's
// Linear from the MLP, ...) stays on the path instead of going back through the dispatcher.
void fields_to_rows(const FieldsToRowsParams& p);
void copy_rows(const CopyRowsParams& p);
void linear(const LinearParams& p);
void mlp(const MlpParams& p);
void layer_norm(const LayerNormParams& p);
void gelu(float* x, std::int64_t n);
void graph_attention(const GraphAttentionParams& p);
void window_attention(const WindowAttentionParams& p);
void linear_backward(const LinearBackwardParams& p);
void layer_norm_backward(const LayerNormBackwardParams& p);
void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n);
void graph_attention_backward(const GraphAttentionBackwardParams& p);
void graph_attention_backward_destinations(const GraphAttentionBackwardParams& p,
                                           GraphAttentionBackwardScratch& scratch);
void graph_attention_backward_sources(const GraphAttentionBackwardParams& p,
                                      const GraphAttentionBackwardScratch& scratch,
                                      std::int64_t row_begin, std::int64_t row_end);
void window_attention_backward(const WindowAttentionBackwardParams& p);
void transpose_csr(const std::int64_t* dst_offsets, const std::int32_t* src, std::int64_t n_dst,
                   std::int64_t n_src, std::int64_t* src_offsets, std::int64_t* edges_by_src);

const KernelTable& kernel_table();

// Shared inside the path.
void gelu_row(float* x, std::int64_t n);
void linear_bf16(const LinearParams& p);
void mlp_bf16(const MlpParams& p);
/// How this path runs bf16 products on this CPU: "avx512_bf16" or "emulated".
const char* bf16_method();
Fp32Tile choose_fp32_tile(int forced_bits, const char* origin, bool strict);

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
#endif
