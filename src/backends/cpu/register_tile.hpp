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

/// Every row of the tile = row[0, 16).
[[gnu::always_inline]] inline void tile_fill_row(Tile6x16& t, const float* row) {
    tile_fill(t, _mm256_loadu_ps(row), _mm256_loadu_ps(row + 8));
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

#ifdef BOREAS_ISA_AVX512

/// The 512-bit tile: 12 x 16 of C in 12 zmm registers, one per row, against the same 16-column
/// B panels; A comes as two consecutive packed 6-row tiles (k-major, pack_row_tile). Each k step
/// loads one panel row (one zmm) and issues 12 FMAs whose A operand is an embedded broadcast
/// from memory: on cores with two 512-bit FMA units (Sapphire Rapids) twice the FLOPs per
/// instruction of the 6 x 16 ymm tile, with the same 12 independent chains to cover the FMA
/// latency. Every element of C is the same chain of FMAs over k as in the ymm tile, so both tiles
/// give the same bits.
struct Tile12x16 {
    __m512 c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11;
};

[[gnu::always_inline]] inline void tile_fill(Tile12x16& t, __m512 row) {
    t.c0 = t.c1 = t.c2 = t.c3 = t.c4 = t.c5 = t.c6 = t.c7 = t.c8 = t.c9 = t.c10 = t.c11 = row;
}

[[gnu::always_inline]] inline void tile_fill_row(Tile12x16& t, const float* row) {
    tile_fill(t, _mm512_loadu_ps(row));
}

[[gnu::always_inline]] inline void tile_add(Tile12x16& t, const Tile12x16& o) {
    t.c0 = _mm512_add_ps(t.c0, o.c0), t.c1 = _mm512_add_ps(t.c1, o.c1);
    t.c2 = _mm512_add_ps(t.c2, o.c2), t.c3 = _mm512_add_ps(t.c3, o.c3);
    t.c4 = _mm512_add_ps(t.c4, o.c4), t.c5 = _mm512_add_ps(t.c5, o.c5);
    t.c6 = _mm512_add_ps(t.c6, o.c6), t.c7 = _mm512_add_ps(t.c7, o.c7);
    t.c8 = _mm512_add_ps(t.c8, o.c8), t.c9 = _mm512_add_ps(t.c9, o.c9);
    t.c10 = _mm512_add_ps(t.c10, o.c10), t.c11 = _mm512_add_ps(t.c11, o.c11);
}

[[gnu::always_inline]] inline void tile_load(Tile12x16& t, const float* c, std::int64_t ldc) {
    t.c0 = _mm512_loadu_ps(c), t.c1 = _mm512_loadu_ps(c + ldc);
    t.c2 = _mm512_loadu_ps(c + 2 * ldc), t.c3 = _mm512_loadu_ps(c + 3 * ldc);
    t.c4 = _mm512_loadu_ps(c + 4 * ldc), t.c5 = _mm512_loadu_ps(c + 5 * ldc);
    t.c6 = _mm512_loadu_ps(c + 6 * ldc), t.c7 = _mm512_loadu_ps(c + 7 * ldc);
    t.c8 = _mm512_loadu_ps(c + 8 * ldc), t.c9 = _mm512_loadu_ps(c + 9 * ldc);
    t.c10 = _mm512_loadu_ps(c + 10 * ldc), t.c11 = _mm512_loadu_ps(c + 11 * ldc);
}

[[gnu::always_inline]] inline void tile_store(const Tile12x16& t, float* c, std::int64_t ldc) {
    _mm512_storeu_ps(c, t.c0), _mm512_storeu_ps(c + ldc, t.c1);
    _mm512_storeu_ps(c + 2 * ldc, t.c2), _mm512_storeu_ps(c + 3 * ldc, t.c3);
    _mm512_storeu_ps(c + 4 * ldc, t.c4), _mm512_storeu_ps(c + 5 * ldc, t.c5);
    _mm512_storeu_ps(c + 6 * ldc, t.c6), _mm512_storeu_ps(c + 7 * ldc, t.c7);
    _mm512_storeu_ps(c + 8 * ldc, t.c8), _mm512_storeu_ps(c + 9 * ldc, t.c9);
    _mm512_storeu_ps(c + 10 * ldc, t.c10), _mm512_storeu_ps(c + 11 * ldc, t.c11);
}

/// Rows 0-5 (top) or 6-11 of the tile as a 6 x 16 ymm tile, for the k-major store.
[[gnu::always_inline]] inline Tile6x16 tile_half(const Tile12x16& t, bool top) {
    const auto split = [](__m512 row, __m256& lo, __m256& hi) {
        // Masked extracts: the cast and the plain extract pass an undefined vector through,
        // which trips GCC 12's -Wmaybe-uninitialized once inlined.
        lo = _mm512_mask_extractf32x8_ps(_mm256_setzero_ps(), 0xFF, row, 0);
        hi = _mm512_mask_extractf32x8_ps(_mm256_setzero_ps(), 0xFF, row, 1);
    };
    Tile6x16 h;
    split(top ? t.c0 : t.c6, h.c00, h.c01);
    split(top ? t.c1 : t.c7, h.c10, h.c11);
    split(top ? t.c2 : t.c8, h.c20, h.c21);
    split(top ? t.c3 : t.c9, h.c30, h.c31);
    split(top ? t.c4 : t.c10, h.c40, h.c41);
    split(top ? t.c5 : t.c11, h.c50, h.c51);
    return h;
}

/// tile += A[12, k] B[k, 16], A's rows 0-5 packed k-major at `top`, rows 6-11 at `bottom`.
[[gnu::always_inline]] inline void tile_fma(Tile12x16& t, std::int64_t k, const float* top,
                                            const float* bottom, const float* panel) {
#pragma GCC unroll 2
    for (std::int64_t p = 0; p < k; ++p) {
        const __m512 b = _mm512_loadu_ps(panel + p * kPanel);
        const float* a = top + p * kTileRows;
        const float* c = bottom + p * kTileRows;
        t.c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), b, t.c0);
        t.c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), b, t.c1);
        t.c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2]), b, t.c2);
        t.c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3]), b, t.c3);
        t.c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4]), b, t.c4);
        t.c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5]), b, t.c5);
        t.c6 = _mm512_fmadd_ps(_mm512_set1_ps(c[0]), b, t.c6);
        t.c7 = _mm512_fmadd_ps(_mm512_set1_ps(c[1]), b, t.c7);
        t.c8 = _mm512_fmadd_ps(_mm512_set1_ps(c[2]), b, t.c8);
        t.c9 = _mm512_fmadd_ps(_mm512_set1_ps(c[3]), b, t.c9);
        t.c10 = _mm512_fmadd_ps(_mm512_set1_ps(c[4]), b, t.c10);
        t.c11 = _mm512_fmadd_ps(_mm512_set1_ps(c[5]), b, t.c11);
    }
}

#endif  // BOREAS_ISA_AVX512

#ifdef BOREAS_SIMD_AVX2
/// C = tile (+ bias row) (+ C): bias and accumulation added after the sum, as PyTorch's addmm
/// and the residual add order them (starting the sum from the bias rounds differently: measured
/// 1.2e-5 relative against anemoi on a value that cancels). Either tile, the same order.
template <typename Tile>
[[gnu::always_inline]] inline void tile_finish(Tile& tile, const float* bias, bool accumulate,
                                               float* c, std::int64_t ldc) {
    if (bias) {
        Tile b;
        tile_fill_row(b, bias);
        tile_add(tile, b);
    }
    if (accumulate) {
        Tile before;
        tile_load(before, c, ldc);
        tile_add(tile, before);
    }
    tile_store(tile, c, ldc);
}

/// Asks for the cache lines of `rows` rows of C (16 floats each) ahead of a tile's k loop: they
/// are read (residual) or written once, after it, and the miss (and the stores'
/// read-for-ownership) then overlaps the loop.
[[gnu::always_inline]] inline void prefetch_tile_rows(const float* c, std::int64_t ldc,
                                                      std::int64_t rows) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const char* line = reinterpret_cast<const char*>(c + r * ldc);
        _mm_prefetch(line, _MM_HINT_ET0);
        _mm_prefetch(line + 4 * (kPanel - 1), _MM_HINT_ET0);
    }
}
#endif

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
