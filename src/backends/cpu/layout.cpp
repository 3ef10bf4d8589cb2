// Layout changes of the data path: a date's fields (variables, points) to the model's rows
// (points, variables), gathered and normalised on the way.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "boreas/kernels/kernels.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
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

#ifdef BOREAS_SIMD_AVX2
/// dst[0, n) = src[0, n), the 32-byte aligned part of dst with non-temporal stores.
void stream_copy(const float* src, float* dst, std::int64_t n) {
    std::int64_t i = 0;
    while (i < n && reinterpret_cast<std::uintptr_t>(dst + i) % 32 != 0) {
        dst[i] = src[i];
        ++i;
    }
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; ++i) dst[i] = src[i];
}
#endif

}  // namespace

void fields_to_rows(const FieldsToRowsParams& p) {
    // Blocks of up to 1024 points: each variable is read in runs of 4 KB, long enough for the
    // prefetcher to follow every one of them (runs of 256 bytes across 115 variables ran 12 %
    // slower at O96). A block's rows are one contiguous span of the output: they are assembled
    // in a tile that stays in L2 (at most 512 KB), then streamed out with non-temporal stores,
    // which skip reading the output's cache lines first (the batch is written once and read by
    // the next step, long after).
    const std::int64_t block = std::clamp<std::int64_t>(
        (512 << 10) / (4 * std::max<std::int64_t>(p.width, 1)) / 8 * 8, 8, 1024);
#ifdef BOREAS_SIMD_AVX2
    std::vector<float> tile_buffer(static_cast<std::size_t>(block * p.width));
    FieldsToRowsParams tile = p;
    tile.out = tile_buffer.data();
#endif
    for (std::int64_t b0 = 0; b0 < p.points; b0 += block) {
        const std::int64_t b1 = std::min(p.points, b0 + block);
#ifdef BOREAS_SIMD_AVX2
        // The tile holds points b0 .. b1 - 1 as rows 0 .. b1 - b0 - 1.
        tile.in = p.in;
        const std::int64_t full = (b1 - b0) / 8 * 8;
        const std::int64_t width8 = p.width / 8 * 8;
        for (std::int64_t c0 = 0; c0 < width8; c0 += 8) {
            const float* in[8];
            __m256 mul[8], add[8];
            for (int j = 0; j < 8; ++j) {
                in[j] = p.in + static_cast<std::int64_t>(p.columns[c0 + j]) * p.in_stride + b0;
                mul[j] = _mm256_set1_ps(p.mul[c0 + j]);
                add[j] = _mm256_set1_ps(p.add[c0 + j]);
            }
            for (std::int64_t i = 0; i < full; i += 8) {
                __m256 r[8];
                for (int j = 0; j < 8; ++j)  // r[j]: 8 points of column c0 + j
                    r[j] = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(in[j] + i), mul[j]), add[j]);
                simd::transpose8x8(r);  // r[k]: point b0 + i + k, columns c0 .. c0 + 7
                for (int k = 0; k < 8; ++k)
                    _mm256_storeu_ps(tile.out + (i + k) * p.width + c0, r[k]);
            }
        }
        // The last columns and the last points, through the scalar path on the tile: point
        // b0 + i of the input is row i of the tile.
        tile.in = p.in + b0;
        fields_to_rows_scalar(tile, 0, full, width8, p.width);
        fields_to_rows_scalar(tile, full, b1 - b0, 0, p.width);
        stream_copy(tile.out, p.out + b0 * p.width, (b1 - b0) * p.width);
#else
        fields_to_rows_scalar(p, b0, b1, 0, p.width);
#endif
    }
#ifdef BOREAS_SIMD_AVX2
    _mm_sfence();  // the streamed rows are visible to other threads once the call returns
#endif
}

void copy_rows(const CopyRowsParams& p) {
    const std::int64_t xs = p.x_stride ? p.x_stride : p.cols;
    const std::int64_t ys = p.y_stride ? p.y_stride : p.cols;
    // On all threads above 64 Ki values: one thread alone leaves the others waiting (about 1 %
    // of a small forward step, with the model's other element-wise loops).
#pragma omp parallel for schedule(static) if (p.rows * p.cols >= (std::int64_t{1} << 16))
    for (std::int64_t r = 0; r < p.rows; ++r) {
        const float* x = p.x + r * xs;
        float* y = p.y + r * ys;
        if (p.add) {
            for (std::int64_t c = 0; c < p.cols; ++c) y[c] += x[c];
        } else if (x != y) {
            std::copy(x, x + p.cols, y);
        }
    }
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
