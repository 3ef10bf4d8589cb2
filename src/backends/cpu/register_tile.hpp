#pragma once
// The 6 x 16 register tile shared by the CPU backend's hand-written GEMMs (small_gemm for the
// attention tiles, the packed Linear in dense.cpp). A 6 x 16 block of C lives in 12 AVX2
// registers for the whole k loop; each k step loads one 16-wide row of a packed B panel (2
// loads), broadcasts 6 values of A and issues 12 FMAs: enough independent chains to keep both
// FMA pipes busy through their latency, and 15 of the 16 ymm registers.
#include <cstdint>

#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {

/// B is packed in panels of 16 columns: row p of a panel is 16 consecutive floats.
constexpr std::int64_t kPanel = 16;
/// Rows of C per register tile.
constexpr std::int64_t kTileRows = 6;

inline std::int64_t panel_padded(std::int64_t n) {
    return (n + kPanel - 1) / kPanel * kPanel;
}

#ifdef BOREAS_SIMD_AVX2

/// Named members, not an array: GCC spilled an accumulator array to the stack on every step.
struct Tile6x16 {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
};

/// Every row of the tile = (lo, hi).
[[gnu::always_inline]] inline void tile_fill(Tile6x16& t, __m256 lo, __m256 hi) {
    t.c00 = t.c10 = t.c20 = t.c30 = t.c40 = t.c50 = lo;
    t.c01 = t.c11 = t.c21 = t.c31 = t.c41 = t.c51 = hi;
}

[[gnu::always_inline]] inline void tile_load(Tile6x16& t, const float* c, std::int64_t ldc) {
    t.c00 = _mm256_loadu_ps(c), t.c01 = _mm256_loadu_ps(c + 8);
    t.c10 = _mm256_loadu_ps(c + ldc), t.c11 = _mm256_loadu_ps(c + ldc + 8);
    t.c20 = _mm256_loadu_ps(c + 2 * ldc), t.c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    t.c30 = _mm256_loadu_ps(c + 3 * ldc), t.c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    t.c40 = _mm256_loadu_ps(c + 4 * ldc), t.c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    t.c50 = _mm256_loadu_ps(c + 5 * ldc), t.c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
}

[[gnu::always_inline]] inline void tile_store(const Tile6x16& t, float* c, std::int64_t ldc) {
    _mm256_storeu_ps(c, t.c00), _mm256_storeu_ps(c + 8, t.c01);
    _mm256_storeu_ps(c + ldc, t.c10), _mm256_storeu_ps(c + ldc + 8, t.c11);
    _mm256_storeu_ps(c + 2 * ldc, t.c20), _mm256_storeu_ps(c + 2 * ldc + 8, t.c21);
    _mm256_storeu_ps(c + 3 * ldc, t.c30), _mm256_storeu_ps(c + 3 * ldc + 8, t.c31);
    _mm256_storeu_ps(c + 4 * ldc, t.c40), _mm256_storeu_ps(c + 4 * ldc + 8, t.c41);
    _mm256_storeu_ps(c + 5 * ldc, t.c50), _mm256_storeu_ps(c + 5 * ldc + 8, t.c51);
}

/// tile += other, element by element.
[[gnu::always_inline]] inline void tile_add(Tile6x16& t, const Tile6x16& other) {
    t.c00 = _mm256_add_ps(t.c00, other.c00), t.c01 = _mm256_add_ps(t.c01, other.c01);
    t.c10 = _mm256_add_ps(t.c10, other.c10), t.c11 = _mm256_add_ps(t.c11, other.c11);
    t.c20 = _mm256_add_ps(t.c20, other.c20), t.c21 = _mm256_add_ps(t.c21, other.c21);
    t.c30 = _mm256_add_ps(t.c30, other.c30), t.c31 = _mm256_add_ps(t.c31, other.c31);
    t.c40 = _mm256_add_ps(t.c40, other.c40), t.c41 = _mm256_add_ps(t.c41, other.c41);
    t.c50 = _mm256_add_ps(t.c50, other.c50), t.c51 = _mm256_add_ps(t.c51, other.c51);
}

/// tile += A[6, k] B[k, 16]. Row r of A is read at a + r * row_step + p * k_step: (lda, 1) for
/// A in place, (1, 6) for A packed k-major (6 values per k, see pack_row_tile).
template <std::int64_t KStep>
[[gnu::always_inline]] inline void tile_fma(Tile6x16& t, std::int64_t k, const float* a,
                                            std::int64_t row_step, const float* panel) {
    const float *a0 = a, *a1 = a + row_step, *a2 = a + 2 * row_step, *a3 = a + 3 * row_step,
                *a4 = a + 4 * row_step, *a5 = a + 5 * row_step;
#pragma GCC unroll 4
    for (std::int64_t p = 0; p < k; ++p) {
        const __m256 b0 = _mm256_loadu_ps(panel + p * kPanel);
        const __m256 b1 = _mm256_loadu_ps(panel + p * kPanel + 8);
        __m256 ar = _mm256_broadcast_ss(a0 + p * KStep);
        t.c00 = _mm256_fmadd_ps(ar, b0, t.c00);
        t.c01 = _mm256_fmadd_ps(ar, b1, t.c01);
        ar = _mm256_broadcast_ss(a1 + p * KStep);
        t.c10 = _mm256_fmadd_ps(ar, b0, t.c10);
        t.c11 = _mm256_fmadd_ps(ar, b1, t.c11);
        ar = _mm256_broadcast_ss(a2 + p * KStep);
        t.c20 = _mm256_fmadd_ps(ar, b0, t.c20);
        t.c21 = _mm256_fmadd_ps(ar, b1, t.c21);
        ar = _mm256_broadcast_ss(a3 + p * KStep);
        t.c30 = _mm256_fmadd_ps(ar, b0, t.c30);
        t.c31 = _mm256_fmadd_ps(ar, b1, t.c31);
        ar = _mm256_broadcast_ss(a4 + p * KStep);
        t.c40 = _mm256_fmadd_ps(ar, b0, t.c40);
        t.c41 = _mm256_fmadd_ps(ar, b1, t.c41);
        ar = _mm256_broadcast_ss(a5 + p * KStep);
        t.c50 = _mm256_fmadd_ps(ar, b0, t.c50);
        t.c51 = _mm256_fmadd_ps(ar, b1, t.c51);
    }
}

#endif  // BOREAS_SIMD_AVX2

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
