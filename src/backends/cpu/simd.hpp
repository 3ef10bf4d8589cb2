#pragma once
// Vector helpers of the CPU backend. Every kernel source is compiled once per instruction-set path
// (isa_prelude.hpp, dispatch.cpp): the avx2 and avx512 paths define BOREAS_ISA_AVX2 and get the
// helpers below in AVX2 + FMA; the generic path gets the plain loops, which the compiler
// vectorises at the baseline of the target (SSE2 on x86-64, NEON on aarch64). The project
// compiles with -ffp-contract=off, so a reduction like `sum += a[i] * b[i]` is neither vectorised
// nor fused by the compiler: kernels that are hot call these instead. Results differ from the
// scalar loops only by rounding (reassociated sums, fused multiply-adds), far inside the fp32
// tolerances against anemoi.
#include <algorithm>
#include <cmath>
#include <cstdint>

#ifndef BOREAS_ISA_NS
#error "kernel sources are compiled through src/backends/cpu/isa_prelude.hpp (one copy per path)"
#endif

#ifdef BOREAS_ISA_AVX2
#include <immintrin.h>
#define BOREAS_SIMD_AVX2 1
#endif

#if defined(BOREAS_SIMD_AVX2) && defined(BOREAS_HAVE_LIBMVEC)
// glibc's libmvec (2.35+): the AVX2 variant of erff, 8 lanes, within a few ulp of erff.
extern "C" __m256 _ZGVdN8v_erff(__m256);
#define BOREAS_VECTOR_ERF 1
#endif

namespace boreas::kernels::cpu::BOREAS_ISA_NS::simd {

#ifdef BOREAS_SIMD_AVX2

inline float horizontal_sum(__m256 v) {
    const __m128 folded = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 pairs = _mm_add_ps(folded, _mm_movehl_ps(folded, folded));
    return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

inline float horizontal_max(__m256 v) {
    const __m128 folded = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 pairs = _mm_max_ps(folded, _mm_movehl_ps(folded, folded));
    return _mm_cvtss_f32(_mm_max_ss(pairs, _mm_movehdup_ps(pairs)));
}

/// e^x for x <= 88 (larger x saturate at e^88), 0 below -87.33 (and for -inf); NaN stays NaN.
/// Cephes-style: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, scaled by 2^n through the
/// exponent bits. Relative error within 2 ulp of expf.
inline __m256 exp(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654475f), _CMP_LT_OQ);
    // The operand order keeps a NaN x: min/max return their second operand when one is NaN.
    x = _mm256_max_ps(_mm256_set1_ps(-87.33654475f), _mm256_min_ps(_mm256_set1_ps(88.0f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 e_r = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    const __m256i biased =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 result = _mm256_mul_ps(e_r, _mm256_castsi256_ps(biased));
    return _mm256_andnot_ps(underflow, result);
}

/// Transposes the 8 x 8 block held in r (row i = r[i]) in place: afterwards r[j] is column j.
inline void transpose8x8(__m256 (&r)[8]) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    __m256 u[8];
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

#endif  // BOREAS_SIMD_AVX2

/// Asks for the cache lines of x[0, n) ahead of a gathered (random-row) access.
inline void prefetch_row(const float* x, std::int64_t n) {
#ifdef BOREAS_SIMD_AVX2
    for (std::int64_t i = 0; i < n; i += 16)
        _mm_prefetch(reinterpret_cast<const char*>(x + i), _MM_HINT_T0);
#else
    (void)x;
    (void)n;
#endif
}

/// sum_i a[i] * b[i].
inline float dot(const float* a, const float* b, std::int64_t n) {
    std::int64_t i = 0;
    float sum = 0;
#ifdef BOREAS_SIMD_AVX2
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    sum = horizontal_sum(_mm256_add_ps(acc0, acc1));
#endif
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

#ifdef BOREAS_SIMD_AVX2
/// result[j] = the sum of p[j]'s eight lanes, for eight vectors at once: three rounds of pairwise
/// adds in place of eight separate horizontal sums.
inline __m256 lane_sums(const __m256 (&p)[8]) {
    // hadd works within 128-bit halves: after two rounds, half 0 holds the low-half sums of
    // p[0..3] (of p[4..7] in the second vector) and half 1 the high-half sums.
    const __m256 s03 = _mm256_hadd_ps(_mm256_hadd_ps(p[0], p[1]), _mm256_hadd_ps(p[2], p[3]));
    const __m256 s47 = _mm256_hadd_ps(_mm256_hadd_ps(p[4], p[5]), _mm256_hadd_ps(p[6], p[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s03, s47, 0x20),
                         _mm256_permute2f128_ps(s03, s47, 0x31));
}
#endif

/// out[h] = a^h . b^h for h < heads: the per-head dot products of two rows of heads * d values.
inline void head_dots(const float* a, const float* b, std::int64_t heads, std::int64_t d,
                      float* out) {
    std::int64_t h = 0;
#ifdef BOREAS_SIMD_AVX2
    if (d % 8 == 0)
        for (; h + 8 <= heads; h += 8) {
            __m256 p[8];
            for (int j = 0; j < 8; ++j) {
                const float* x = a + (h + j) * d;
                const float* y = b + (h + j) * d;
                p[j] = _mm256_mul_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(y));
                for (std::int64_t i = 8; i < d; i += 8)
                    p[j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), p[j]);
            }
            _mm256_storeu_ps(out + h, lane_sums(p));
        }
#endif
    for (; h < heads; ++h) out[h] = dot(a + h * d, b + h * d, d);
}

/// y[i] += alpha * x[i].
inline void axpy(float* y, float alpha, const float* x, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    const __m256 a = _mm256_set1_ps(alpha);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; ++i) y[i] += alpha * x[i];
}

/// y[i] += x[i].
inline void add(float* y, const float* x, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
#endif
    for (; i < n; ++i) y[i] += x[i];
}

/// y[0, n) = x[0, n) and y[0, n) = 0 for the short rows of the attention kernels: inline vector
/// moves, where std::copy and std::fill become memmove and memset calls (14 % of the small
/// window-attention step went to their call overhead).
inline void copy(float* y, const float* x, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_loadu_ps(x + i));
#endif
    for (; i < n; ++i) y[i] = x[i];
}

inline void zero(float* y, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_setzero_ps());
#endif
    for (; i < n; ++i) y[i] = 0.0f;
}

/// y[i] *= alpha.
inline void scale(float* y, float alpha, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    const __m256 a = _mm256_set1_ps(alpha);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(a, _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; ++i) y[i] *= alpha;
}

/// y[i] = x[i] * alpha.
inline void scaled_copy(float* y, const float* x, float alpha, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    const __m256 a = _mm256_set1_ps(alpha);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), a));
#endif
    for (; i < n; ++i) y[i] = x[i] * alpha;
}

/// y[0, n) += sum_c a[c] * m[c, 0, n): a [k] weights, m [k, n] row-major (head-minor columns).
inline void add_scaled_columns(float* y, const float* m, const float* a, std::int64_t k,
                               std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    for (; i + 8 <= n; i += 8) {
        // Even and odd columns in two chains: one chain of k dependent FMAs waited on their
        // latency (k is the edge dimension, 11 in the AIFS configs).
        __m256 even = _mm256_loadu_ps(y + i), odd = _mm256_setzero_ps();
        std::int64_t c = 0;
        for (; c + 2 <= k; c += 2) {
            even = _mm256_fmadd_ps(_mm256_set1_ps(a[c]), _mm256_loadu_ps(m + c * n + i), even);
            odd = _mm256_fmadd_ps(_mm256_set1_ps(a[c + 1]), _mm256_loadu_ps(m + (c + 1) * n + i),
                                  odd);
        }
        if (c < k)
            even = _mm256_fmadd_ps(_mm256_set1_ps(a[c]), _mm256_loadu_ps(m + c * n + i), even);
        _mm256_storeu_ps(y + i, _mm256_add_ps(even, odd));
    }
#endif
    for (; i < n; ++i)
        for (std::int64_t c = 0; c < k; ++c) y[i] += a[c] * m[c * n + i];
}

/// m[c, 0, n) += a[c] * b[0, n) for c < k: the outer product a b^T added to m [k, n].
inline void add_outer(float* m, const float* a, std::int64_t k, const float* b, std::int64_t n) {
    for (std::int64_t c = 0; c < k; ++c) axpy(m + c * n, a[c], b, n);
}

/// Softmax numerators down each column of x [rows, n] (row-major, rows >= 1), in place:
/// x[r, i] = e^(x[r, i] - max_r x[r, i]); maxima[i] and sums[i] receive each column's maximum
/// and the sum of its numerators. Columns run across vector lanes, so a few rows (edges) of many
/// columns (heads) cost no horizontal reductions.
inline void column_softmax_numerators(float* x, std::int64_t rows, std::int64_t n, float* maxima,
                                      float* sums) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_loadu_ps(x + i);
        for (std::int64_t r = 1; r < rows; ++r)
            m = _mm256_max_ps(m, _mm256_loadu_ps(x + r * n + i));
        __m256 sum = _mm256_setzero_ps();
        for (std::int64_t r = 0; r < rows; ++r) {
            const __m256 e = exp(_mm256_sub_ps(_mm256_loadu_ps(x + r * n + i), m));
            _mm256_storeu_ps(x + r * n + i, e);
            sum = _mm256_add_ps(sum, e);
        }
        _mm256_storeu_ps(maxima + i, m);
        _mm256_storeu_ps(sums + i, sum);
    }
#endif
    for (; i < n; ++i) {
        float m = x[i];
        for (std::int64_t r = 1; r < rows; ++r) m = std::max(m, x[r * n + i]);
        float sum = 0;
        for (std::int64_t r = 0; r < rows; ++r) sum += (x[r * n + i] = std::exp(x[r * n + i] - m));
        maxima[i] = m;
        sums[i] = sum;
    }
}

/// max_i x[i] (-inf for n = 0).
inline float max(const float* x, std::int64_t n) {
    std::int64_t i = 0;
    float result = -INFINITY;
#ifdef BOREAS_SIMD_AVX2
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        result = horizontal_max(m);
    }
#endif
    for (; i < n; ++i) result = std::max(result, x[i]);
    return result;
}

/// Mean and 1 / sqrt(variance + eps) of a row of n values (biased variance, two passes: no
/// cancellation for rows far from zero). The LayerNorm forward and backward share it so the
/// backward sees exactly the forward's statistics.
struct RowMoments {
    float mean = 0, inv = 0;
};
inline RowMoments row_moments(const float* x, std::int64_t n, float eps) {
    const float inv_n = 1.0f / static_cast<float>(n);
    std::int64_t i = 0;
    float sum = 0;
#ifdef BOREAS_SIMD_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    sum = horizontal_sum(acc);
#endif
    for (; i < n; ++i) sum += x[i];
    const float mean = sum * inv_n;
    float squares = 0;
    i = 0;
#ifdef BOREAS_SIMD_AVX2
    const __m256 m = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        const __m256 dev = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
        acc = _mm256_fmadd_ps(dev, dev, acc);
    }
    squares = horizontal_sum(acc);
#endif
    for (; i < n; ++i) squares += (x[i] - mean) * (x[i] - mean);
    return {mean, 1.0f / std::sqrt(squares * inv_n + eps)};
}

/// x[i] = e^(x[i] - shift) in place; returns the sum of the results.
inline float exp_shifted_sum(float* x, float shift, std::int64_t n) {
    std::int64_t i = 0;
    float sum = 0;
#ifdef BOREAS_SIMD_AVX2
    const __m256 s = _mm256_set1_ps(shift);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    sum = horizontal_sum(acc);
#endif
    for (; i < n; ++i) {
        x[i] = std::exp(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS::simd
