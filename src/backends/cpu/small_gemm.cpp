#include "small_gemm.hpp"

#include <algorithm>

#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
namespace {

#ifdef BOREAS_SIMD_AVX2

/// One 6 x 16 block of C over the whole k loop, A read in place.
void block6(std::int64_t k, float alpha, const float* a, std::int64_t lda, const float* panel,
            bool accumulate, float* c, std::int64_t ldc) {
    Tile6x16 tile;
    tile_fill(tile, _mm256_setzero_ps(), _mm256_setzero_ps());
    tile_fma<1>(tile, k, a, lda, panel);
    const __m256 scale = _mm256_set1_ps(alpha);
    auto store = [&](float* row, __m256 lo, __m256 hi) {
        lo = _mm256_mul_ps(lo, scale);
        hi = _mm256_mul_ps(hi, scale);
        if (accumulate) {
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
        }
        _mm256_storeu_ps(row, lo);
        _mm256_storeu_ps(row + 8, hi);
    };
    store(c, tile.c00, tile.c01);
    store(c + ldc, tile.c10, tile.c11);
    store(c + 2 * ldc, tile.c20, tile.c21);
    store(c + 3 * ldc, tile.c30, tile.c31);
    store(c + 4 * ldc, tile.c40, tile.c41);
    store(c + 5 * ldc, tile.c50, tile.c51);
}

/// The last m % 6 rows: through a zero-padded 6-row copy of A and C.
void block_tail(std::int64_t rows, std::int64_t k, float alpha, const float* a, std::int64_t lda,
                const float* panel, bool accumulate, float* c, std::int64_t ldc) {
    constexpr std::int64_t kMaxK = 1024;
    alignas(32) float a_copy[6 * kMaxK];
    alignas(32) float c_copy[6 * kPanel] = {};
    for (std::int64_t k0 = 0; k0 < k; k0 += kMaxK) {  // k blocks keep the copy on the stack
        const std::int64_t kk = std::min(kMaxK, k - k0);
        std::fill(a_copy, a_copy + 6 * kk, 0.0f);
        for (std::int64_t r = 0; r < rows; ++r)
            std::copy(a + r * lda + k0, a + r * lda + k0 + kk, a_copy + r * kk);
        block6(kk, 1.0f, a_copy, kk, panel + k0 * kPanel, k0 > 0, c_copy, kPanel);
    }
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t x = 0; x < kPanel; ++x)
            c[r * ldc + x] = alpha * c_copy[r * kPanel + x] + (accumulate ? c[r * ldc + x] : 0.0f);
}

#endif

}  // namespace

void small_gemm(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                std::int64_t lda, const float* packed_b, std::int64_t panel_stride, bool accumulate,
                float* c, std::int64_t ldc) {
    // Panels outside: a k x 16 panel (4 KiB at k = 64) stays in L1 while every row block passes.
    for (std::int64_t j = 0; j < n; j += kPanel) {
        const float* panel = packed_b + (j / kPanel) * panel_stride;
#ifdef BOREAS_SIMD_AVX2
        std::int64_t i = 0;
        for (; i + 6 <= m; i += 6)
            block6(k, alpha, a + i * lda, lda, panel, accumulate, c + i * ldc + j, ldc);
        if (i < m)
            block_tail(m - i, k, alpha, a + i * lda, lda, panel, accumulate, c + i * ldc + j, ldc);
#else
        for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t x = 0; x < kPanel; ++x) {
                float sum = 0;
                for (std::int64_t p = 0; p < k; ++p) sum += a[i * lda + p] * panel[p * kPanel + x];
                float& out = c[i * ldc + j + x];
                out = alpha * sum + (accumulate ? out : 0.0f);
            }
#endif
    }
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
