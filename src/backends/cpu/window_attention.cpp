// Sliding-window self-attention, flash-style (see kernels.hpp). Work is split over
// (batch element, head, block of queries); each task walks the key blocks its window touches,
// computing one query-block x key-block tile of scores with sgemm and folding it into running
// row maxima, sums and outputs.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"

namespace boreas::kernels::cpu {
namespace {

constexpr std::int64_t kQueryBlock = 64;
constexpr std::int64_t kKeyBlock = 256;

}  // namespace

void window_attention(const WindowAttentionParams& p) {
    const auto heads = p.heads, d = p.head_dim, seq = p.seq, w = p.window;
    BOREAS_CHECK(p.q && p.k && p.v && p.out && d > 0 && seq >= 0 && w >= 0,
                 "window_attention: invalid parameters");
    const auto stride = p.stride ? p.stride : heads * d;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const std::int64_t query_blocks = (seq + kQueryBlock - 1) / kQueryBlock;
    const std::int64_t tasks = p.batch * heads * query_blocks;
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#pragma omp parallel
    {
        std::vector<float> scores(static_cast<std::size_t>(kQueryBlock * kKeyBlock));
        std::vector<float> acc(static_cast<std::size_t>(kQueryBlock * d));
        std::vector<float> row_max(kQueryBlock), row_sum(kQueryBlock);
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t task = 0; task < tasks; ++task) {
            const std::int64_t block = task % query_blocks;
            const std::int64_t h = (task / query_blocks) % heads;
            const std::int64_t b = task / (query_blocks * heads);
            const std::int64_t i0 = block * kQueryBlock, i1 = std::min(seq, i0 + kQueryBlock);
            const std::int64_t m = i1 - i0;
            const std::int64_t base = b * seq;
            const float* q = p.q + (base + i0) * stride + h * d;
            std::fill(acc.begin(), acc.begin() + m * d, 0.0f);
            std::fill(row_max.begin(), row_max.begin() + m, kNegInf);
            std::fill(row_sum.begin(), row_sum.begin() + m, 0.0f);
            const std::int64_t key_begin = std::max<std::int64_t>(0, i0 - w);
            const std::int64_t key_end = std::min(seq, i1 + w);
            for (std::int64_t j0 = key_begin; j0 < key_end; j0 += kKeyBlock) {
                const std::int64_t n = std::min(kKeyBlock, key_end - j0);
                const float* k = p.k + (base + j0) * stride + h * d;
                const float* v = p.v + (base + j0) * stride + h * d;
                // scores[m, n] = scale * Q K^T
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                            static_cast<int>(n), static_cast<int>(d), scale, q,
                            static_cast<int>(stride), k, static_cast<int>(stride), 0.0f,
                            scores.data(), static_cast<int>(kKeyBlock));
                for (std::int64_t r = 0; r < m; ++r) {
                    const std::int64_t i = i0 + r;
                    // Keys of this block inside query i's window: [lo, hi).
                    const std::int64_t lo = std::max<std::int64_t>(0, i - w - j0);
                    const std::int64_t hi = std::min<std::int64_t>(n, i + w + 1 - j0);
                    float* row = scores.data() + r * kKeyBlock;
                    if (lo >= hi) {
                        std::fill(row, row + n, 0.0f);
                        continue;
                    }
                    float block_max = kNegInf;
                    for (std::int64_t c = lo; c < hi; ++c) block_max = std::max(block_max, row[c]);
                    const float new_max = std::max(row_max[r], block_max);
                    const float correction = std::exp(row_max[r] - new_max);
                    float sum = 0;
                    for (std::int64_t c = 0; c < n; ++c) {
                        const float weight = (c >= lo && c < hi) ? std::exp(row[c] - new_max) : 0.0f;
                        row[c] = weight;
                        sum += weight;
                    }
                    row_sum[r] = row_sum[r] * correction + sum;
                    row_max[r] = new_max;
                    float* a = acc.data() + r * d;
                    for (std::int64_t x = 0; x < d; ++x) a[x] *= correction;
                }
                // acc[m, d] += P V
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m),
                            static_cast<int>(d), static_cast<int>(n), 1.0f, scores.data(),
                            static_cast<int>(kKeyBlock), v, static_cast<int>(stride), 1.0f,
                            acc.data(), static_cast<int>(d));
            }
            for (std::int64_t r = 0; r < m; ++r) {
                float* out = p.out + (base + i0 + r) * stride + h * d;
                const float inv = 1.0f / row_sum[r];
                for (std::int64_t x = 0; x < d; ++x) out[x] = acc[r * d + x] * inv;
            }
        }
    }
}

}  // namespace boreas::kernels::cpu
