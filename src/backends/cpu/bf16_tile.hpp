#pragma once
// The AVX512-BF16 register tile shared by the bf16 Linear (dense_bf16.cpp) and the bf16 window
// attention: 12 rows x 32 columns of fp32 accumulators (24 zmm) over k-pairs, one vdpbf16ps per
// 16 columns and pair (16 lanes x 2 products). A is bf16 pairs by row (convert_rows), B is packed
// in 32-column panels of k-pairs: pair k of a panel is 64 bf16, column c's (B[2k, c],
// B[2k + 1, c]) at 2c. Only on the avx512 path, and only called where the CPU has AVX512-BF16.
#include <algorithm>
#include <cstdint>

#include "simd.hpp"

#ifdef BOREAS_ISA_AVX512
#define BOREAS_BF16_TARGET gnu::target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")

namespace boreas::kernels::cpu::BOREAS_ISA_NS::bf16 {

constexpr std::int64_t kPanelCols = 32;
constexpr std::int64_t kTileRows = 12;

/// Whether this CPU has vdpbf16ps (checked once).
inline bool cpu_has_dot() {
    static const bool has = __builtin_cpu_supports("avx512bf16");
    return has;
}

/// Lane masks of the first `count` of 32 floats held in two zmm (0-15, 16-31).
struct Masks {
    __mmask16 lo, hi;
};
inline Masks first_lanes(std::int64_t count) {
    auto lanes = [](std::int64_t n) {
        return n >= 16 ? __mmask16{0xFFFF}
                       : (n > 0 ? static_cast<__mmask16>((1u << n) - 1) : __mmask16{0});
    };
    return {lanes(count), lanes(count - 16)};
}

/// Row stride of a converted A tile, in pairs: a multiple of 16 (whole zmm stores) plus 16, so
/// that the 12 rows of a tile fall in different L1 sets for any width.
inline std::int64_t tile_stride(std::int64_t pairs) {
    return (pairs + 15) / 16 * 16 + 16;
}

/// rows of x (ldx apart) to bf16 pairs (nearest even), `stride` pairs apart; rows past `rows` up
/// to `padded` and pairs past the width are zero.
[[BOREAS_BF16_TARGET]] inline void convert_rows(const float* x, std::int64_t ldx, std::int64_t rows,
                                                std::int64_t padded, std::int64_t in,
                                                std::int64_t stride, std::uint32_t* out) {
    for (std::int64_t r = 0; r < padded; ++r) {
        std::uint32_t* row = out + r * stride;
        if (r >= rows) {
            std::fill_n(row, stride, 0u);
            continue;
        }
        const float* src = x + r * ldx;
        std::int64_t k = 0;
        for (; k < in; k += 32) {
            const Masks m = first_lanes(in - k);
            const __m512 lo = _mm512_maskz_loadu_ps(m.lo, src + k);
            const __m512 hi = _mm512_maskz_loadu_ps(m.hi, src + k + 16);
            _mm512_storeu_si512(row + k / 2, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
        std::fill(row + k / 2, row + stride, 0u);
    }
}

/// acc[12][2] = a[12, pairs] (pairs `stride` apart) x the panel; then store(r, lo, hi) per row
/// (columns 0-15 and 16-31). Inlined into its caller so the accumulators stay in registers.
template <typename Store>
[[BOREAS_BF16_TARGET, gnu::always_inline]] inline void tile(std::int64_t pairs,
                                                            const std::uint32_t* a,
                                                            std::int64_t stride,
                                                            const std::uint16_t* panel,
                                                            Store&& store) {
    __m512 acc[kTileRows][2];
#pragma GCC unroll 12
    for (int r = 0; r < kTileRows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (std::int64_t k = 0; k < pairs; ++k) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + k * 64);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + k * 64 + 32);
#pragma GCC unroll 12
        for (int r = 0; r < kTileRows; ++r) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r * stride + k]));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < kTileRows; ++r) store(r, acc[r][0], acc[r][1]);
}

/// c[m, n] (+)= alpha a[m, k] b[k, n]: a fp32 rows (lda apart, converted here through `scratch`),
/// b packed (panel j at packed_b + j * panel_stride), c rows ldc apart; columns past n and rows
/// past m are not written.
[[BOREAS_BF16_TARGET]] inline void small_gemm(std::int64_t m, std::int64_t n, std::int64_t k,
                                              float alpha, const float* a, std::int64_t lda,
                                              const std::uint16_t* packed_b,
                                              std::int64_t panel_stride, bool accumulate, float* c,
                                              std::int64_t ldc,
                                              std::vector<std::uint32_t>& scratch) {
    const std::int64_t pairs = (k + 1) / 2, stride = tile_stride(pairs);
    const std::int64_t tiles = (m + kTileRows - 1) / kTileRows;
    scratch.resize(static_cast<std::size_t>(tiles * kTileRows * stride));
    convert_rows(a, lda, m, tiles * kTileRows, k, stride, scratch.data());
    const __m512 scale = _mm512_set1_ps(alpha);
    for (std::int64_t j = 0; j * kPanelCols < n; ++j) {
        const std::int64_t cols = std::min(kPanelCols, n - j * kPanelCols);
        const Masks mask = first_lanes(cols);
        for (std::int64_t t = 0; t < tiles; ++t) {
            const std::int64_t r0 = t * kTileRows;
            float* c0 = c + r0 * ldc + j * kPanelCols;
            tile(pairs, scratch.data() + r0 * stride, stride, packed_b + j * panel_stride,
                 [&](int r, __m512 lo, __m512 hi) {
                     if (r0 + r >= m) return;
                     float* row = c0 + r * ldc;
                     lo = _mm512_mul_ps(lo, scale);
                     hi = _mm512_mul_ps(hi, scale);
                     if (accumulate) {
                         lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(mask.lo, row));
                         hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mask.hi, row + 16));
                     }
                     _mm512_mask_storeu_ps(row, mask.lo, lo);
                     _mm512_mask_storeu_ps(row + 16, mask.hi, hi);
                 });
        }
    }
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS::bf16
#endif  // BOREAS_ISA_AVX512
