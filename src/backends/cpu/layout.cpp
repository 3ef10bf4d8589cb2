// Layout changes of the data path: a date's fields (variables, points) to the model's rows
// (points, variables), gathered and normalised on the way.
#include <algorithm>

#include "boreas/kernels/kernels.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu {
namespace {

void fields_to_rows_scalar(const FieldsToRowsParams& p, std::int64_t p0, std::int64_t p1,
                           std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
        const float* in = p.in + static_cast<std::int64_t>(p.columns[c]) * p.in_stride;
        const float mul = p.mul[c], add = p.add[c];
        for (std::int64_t i = p0; i < p1; ++i) {
            const float scaled = in[i] * mul;  // two roundings, as anemoi's mul_ then add_
            p.out[i * p.width + c] = scaled + add;
        }
    }
}

}  // namespace

void fields_to_rows(const FieldsToRowsParams& p) {
    // Blocks of 64 points: each variable is read in 256-byte runs, and the block's rows
    // (64 x width floats) are written while they stay in L1/L2.
    constexpr std::int64_t kBlock = 64;
    for (std::int64_t b0 = 0; b0 < p.points; b0 += kBlock) {
        const std::int64_t b1 = std::min(p.points, b0 + kBlock);
#ifdef BOREAS_SIMD_AVX2
        const std::int64_t full = b0 + (b1 - b0) / 8 * 8;
        const std::int64_t width8 = p.width / 8 * 8;
        for (std::int64_t c0 = 0; c0 < width8; c0 += 8) {
            const float* in[8];
            __m256 mul[8], add[8];
            for (int j = 0; j < 8; ++j) {
                in[j] = p.in + static_cast<std::int64_t>(p.columns[c0 + j]) * p.in_stride;
                mul[j] = _mm256_set1_ps(p.mul[c0 + j]);
                add[j] = _mm256_set1_ps(p.add[c0 + j]);
            }
            for (std::int64_t i = b0; i < full; i += 8) {
                __m256 r[8];
                for (int j = 0; j < 8; ++j)  // r[j]: 8 points of column c0 + j
                    r[j] = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(in[j] + i), mul[j]), add[j]);
                simd::transpose8x8(r);  // r[k]: point i + k, columns c0 .. c0 + 7
                for (int k = 0; k < 8; ++k) _mm256_storeu_ps(p.out + (i + k) * p.width + c0, r[k]);
            }
        }
        fields_to_rows_scalar(p, b0, full, width8, p.width);  // the last columns
        fields_to_rows_scalar(p, full, b1, 0, p.width);       // the last points
#else
        fields_to_rows_scalar(p, b0, b1, 0, p.width);
#endif
    }
}

}  // namespace boreas::kernels::cpu
