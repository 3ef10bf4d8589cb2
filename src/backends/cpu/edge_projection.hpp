#pragma once
// The graph-attention kernels never form the edge embedding eps_e = W_e e + b_e per edge and
// channel; they need, per destination row, its projections onto the edge space instead:
// W_e^h^T q^h (edge_dim values per head) and q^h . b_e^h. This helper computes all of them in
// one pass over the row: W_e with b_e appended as a column, padded to whole vectors, so that
// each channel of q updates a few column vectors (broadcast and FMA, no horizontal sums).
#include <cstdint>
#include <vector>

#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {

class EdgeProjection {
  public:
    /// `weight` [width, edge_dim] (row-major, as the Linear stores it), `bias` [width] or null.
    EdgeProjection(const float* weight, const float* bias, std::int64_t width,
                   std::int64_t edge_dim)
        : edge_dim_(edge_dim), columns_((edge_dim + 1 + 7) / 8 * 8) {
        packed_.assign(static_cast<std::size_t>(width * columns_), 0.0f);
        for (std::int64_t r = 0; r < width; ++r) {
            float* row = packed_.data() + r * columns_;
            for (std::int64_t c = 0; c < edge_dim; ++c) row[c] = weight[r * edge_dim + c];
            row[edge_dim] = bias ? bias[r] : 0.0f;
        }
    }

    /// Values per head in project()'s output: edge_dim projections, then the bias term, padding.
    std::int64_t columns() const { return columns_; }
    std::int64_t bias_column() const { return edge_dim_; }

    /// out[h * columns() + c] = sum_x row[h d + x] W_e[h d + x, c] for c < edge_dim, and
    /// out[h * columns() + edge_dim] = row^h . b_e^h.
    void project(const float* row, std::int64_t heads, std::int64_t d, float* out) const {
        project_rows(row, 0, 1, heads, d, out);
    }

    /// project() for `count` rows `stride` apart, into out [count, heads * columns()]. Rows go
    /// four at a time through register tiles: each loaded vector of W_e serves four rows, and the
    /// four rows' independent accumulators (eight from 16 columns on) hide the FMA latency that
    /// one row's chain would expose.
    void project_rows(const float* rows, std::int64_t stride, std::int64_t count,
                      std::int64_t heads, std::int64_t d, float* out) const {
        const std::int64_t out_stride = heads * columns_;
        std::int64_t r = 0;
        // Six rows at a time where the columns are one 16-wide pair of vectors: 12 accumulators,
        // as the GEMM's register tile has (four rows left the FMA pipes a fifth idle).
        if (columns_ == 16)
            for (; r + 6 <= count; r += 6)
                for (std::int64_t h = 0; h < heads; ++h)
                    project_tile<6>(rows + r * stride + h * d, stride, d, h,
                                    out + r * out_stride + h * columns_, out_stride);
        for (; r + 4 <= count; r += 4)
            for (std::int64_t h = 0; h < heads; ++h)
                project_tile<4>(rows + r * stride + h * d, stride, d, h,
                                out + r * out_stride + h * columns_, out_stride);
        for (; r < count; ++r)
            for (std::int64_t h = 0; h < heads; ++h)
                project_tile<1>(rows + r * stride + h * d, stride, d, h,
                                out + r * out_stride + h * columns_, out_stride);
    }

  private:
    /// Head h of `Rows` rows: x points at the head's first channel of the first row.
    template <int Rows>
    void project_tile(const float* x, std::int64_t stride, std::int64_t d, std::int64_t h, float* o,
                      std::int64_t o_stride) const {
        const float* w = packed_.data() + h * d * columns_;
        std::int64_t c0 = 0;
#ifdef BOREAS_SIMD_AVX2
        for (; c0 + 16 <= columns_; c0 += 16) {
            __m256 a0[Rows], a1[Rows];
            for (int r = 0; r < Rows; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
            for (std::int64_t i = 0; i < d; ++i) {
                const __m256 w0 = _mm256_loadu_ps(w + i * columns_ + c0),
                             w1 = _mm256_loadu_ps(w + i * columns_ + c0 + 8);
                for (int r = 0; r < Rows; ++r) {
                    const __m256 b = _mm256_broadcast_ss(x + r * stride + i);
                    a0[r] = _mm256_fmadd_ps(b, w0, a0[r]);
                    a1[r] = _mm256_fmadd_ps(b, w1, a1[r]);
                }
            }
            for (int r = 0; r < Rows; ++r) {
                _mm256_storeu_ps(o + r * o_stride + c0, a0[r]);
                _mm256_storeu_ps(o + r * o_stride + c0 + 8, a1[r]);
            }
        }
        for (; c0 < columns_; c0 += 8) {
            __m256 a[Rows];
            for (int r = 0; r < Rows; ++r) a[r] = _mm256_setzero_ps();
            for (std::int64_t i = 0; i < d; ++i) {
                const __m256 w0 = _mm256_loadu_ps(w + i * columns_ + c0);
                for (int r = 0; r < Rows; ++r)
                    a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + r * stride + i), w0, a[r]);
            }
            for (int r = 0; r < Rows; ++r) _mm256_storeu_ps(o + r * o_stride + c0, a[r]);
        }
#else
        for (; c0 < columns_; ++c0)
            for (int r = 0; r < Rows; ++r) {
                float sum = 0;
                for (std::int64_t i = 0; i < d; ++i)
                    sum += x[r * stride + i] * w[i * columns_ + c0];
                o[r * o_stride + c0] = sum;
            }
#endif
    }

    std::int64_t edge_dim_, columns_;
    std::vector<float> packed_;  // [width, columns_]: W_e, b_e, zeros
};

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
