#pragma once
// A register-blocked GEMM for the small, cache-resident tiles of the attention kernels
// (48 x 256 x 64 and the like). OpenBLAS packs both operands on every call, which costs as
// much as the arithmetic at these sizes. Here the caller packs B once per kernel call into
// 16-column panels (contiguous k x 16 blocks: no L1 set conflicts from the 2-4 KiB row strides
// of q/k/v) and each 6 x 16 block of C is one register tile (register_tile.hpp).
#include <cstdint>

#include "register_tile.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {

/// C[m, n] = alpha A[m, k] B[k, n] (+ C when `accumulate`), A and C row-major (lda, ldc). B is
/// packed in 16-column panels: columns [16t, 16t+16) of row p at packed_b[t * panel_stride +
/// 16 p + (0..15)], zero beyond n. C is written for whole panels: ldc >= panel_padded(n).
void small_gemm(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                std::int64_t lda, const float* packed_b, std::int64_t panel_stride, bool accumulate,
                float* c, std::int64_t ldc);

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
