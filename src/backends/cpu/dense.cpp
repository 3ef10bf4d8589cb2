// Dense CPU kernels: Linear through BLAS sgemm (with a fused bias + GELU epilogue), LayerNorm,
// GELU. The element-wise passes are vectorised by hand (simd.hpp): with -ffp-contract=off and
// libm's scalar erff they cost as much as a third of the GEMM time at 256 channels.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu {
namespace {

constexpr float kInvSqrt2 = 0.70710678118654752440f;

// GELU(x) = 0.5 x (1 + erf(x / sqrt 2)), written as PyTorch writes it: erfc(-x / sqrt 2) would
// be more accurate in the negative tail, but the goal is anemoi's numbers.
inline float gelu_scalar(float x) { return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2)); }

/// x[i] = GELU(x[i]) for n values.
void gelu_row(float* x, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_VECTOR_ERF
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 inv_sqrt2 = _mm256_set1_ps(kInvSqrt2);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 cdf2 = _mm256_add_ps(one, _ZGVdN8v_erff(_mm256_mul_ps(v, inv_sqrt2)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), cdf2));
    }
#endif
    for (; i < n; ++i) x[i] = gelu_scalar(x[i]);
}

}  // namespace

void linear(const LinearParams& p) {
    BOREAS_CHECK(p.x && p.weight && p.y && p.rows >= 0 && p.in > 0 && p.out > 0,
                 "linear: invalid parameters (rows {}, in {}, out {})", p.rows, p.in, p.out);
    BOREAS_CHECK(!(p.gelu && p.accumulate), "linear: the GELU epilogue cannot accumulate");
    if (p.rows == 0) return;
    const std::int64_t ldx = p.x_stride ? p.x_stride : p.in;
    const std::int64_t ldy = p.y_stride ? p.y_stride : p.out;
    // Each thread runs a single-threaded sgemm on its own rows and then the epilogue (bias,
    // GELU) on them while they are still in its cache: measured 5-15% faster than OpenBLAS'
    // own threading on these tall-skinny shapes (docs/performance.md), and no extra pass over y
    // from another thread. OpenBLAS runs single-threaded inside an OpenMP parallel region.
    const auto flops_per_row = p.in * p.out;
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    const std::int64_t min_rows_per_thread = std::max<std::int64_t>(16, (1 << 20) / flops_per_row);
    const int used = static_cast<int>(std::clamp<std::int64_t>(p.rows / min_rows_per_thread, 1, threads));
#pragma omp parallel num_threads(used) if (used > 1)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const std::int64_t r0 = p.rows * t / n, r1 = p.rows * (t + 1) / n;
        if (r1 > r0) {
            // The bias goes in first and sgemm adds onto it (beta = 1): OpenBLAS then skips its
            // separate pass that scales (zeroes) C for beta = 0.
            if (p.bias) {
                for (std::int64_t r = r0; r < r1; ++r) {
                    float* row = p.y + r * ldy;
                    if (p.accumulate)
                        simd::add(row, p.bias, p.out);
                    else
                        std::copy(p.bias, p.bias + p.out, row);
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(r1 - r0),
                        static_cast<int>(p.out), static_cast<int>(p.in), 1.0f, p.x + r0 * ldx,
                        static_cast<int>(ldx), p.weight, static_cast<int>(p.in),
                        (p.accumulate || p.bias) ? 1.0f : 0.0f, p.y + r0 * ldy, static_cast<int>(ldy));
            if (p.gelu)
                for (std::int64_t r = r0; r < r1; ++r) {
                    if (p.pre_activation) std::copy_n(p.y + r * ldy, p.out, p.pre_activation + r * p.out);
                    gelu_row(p.y + r * ldy, p.out);
                }
        }
    }
}

void layer_norm(const LayerNormParams& p) {
    const auto c = p.channels;
#pragma omp parallel for schedule(static) if (p.rows * c > 16384)
    for (std::int64_t r = 0; r < p.rows; ++r) {
        const float* x = p.x + r * c;
        float* y = p.y + r * c;
        const auto [mean, inv] = simd::row_moments(x, c, p.eps);
        std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
        const __m256 m = _mm256_set1_ps(mean);
        const __m256 scale = _mm256_set1_ps(inv);
        if (p.gamma && p.beta) {
            for (; i + 8 <= c; i += 8) {
                const __m256 normalised = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), scale);
                _mm256_storeu_ps(y + i, _mm256_fmadd_ps(normalised, _mm256_loadu_ps(p.gamma + i),
                                                        _mm256_loadu_ps(p.beta + i)));
            }
        }
#endif
        for (; i < c; ++i) {
            const float normalised = (x[i] - mean) * inv;
            y[i] = normalised * (p.gamma ? p.gamma[i] : 1.0f) + (p.beta ? p.beta[i] : 0.0f);
        }
    }
}

void gelu(float* x, std::int64_t n) {
    constexpr std::int64_t kBlock = 4096;
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (std::int64_t b = 0; b < blocks; ++b)
        gelu_row(x + b * kBlock, std::min(kBlock, n - b * kBlock));
}

}  // namespace boreas::kernels::cpu
