// Backward kernels of the CPU backend. Every reduction runs in a fixed order for a given thread
// count (static schedules, per-thread partials summed in thread order): no atomics, so training
// is bit-reproducible run to run.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu {
namespace {

/// Sums per-thread partial buffers into `target` in thread order.
void reduce_partials(const std::vector<std::vector<float>>& partials, float* target) {
    if (target == nullptr) return;
    for (const auto& partial : partials)
        for (std::size_t i = 0; i < partial.size(); ++i) target[i] += partial[i];
}

}  // namespace

void linear_backward(const LinearBackwardParams& p) {
    const int rows = static_cast<int>(p.rows), in = static_cast<int>(p.in), out = static_cast<int>(p.out);
    if (p.rows == 0) return;
    if (p.dx)  // dx[rows, in] = dy[rows, out] W[out, in]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f, p.dy, out,
                    p.weight, in, p.accumulate_dx ? 1.0f : 0.0f, p.dx, in);
    if (p.dweight)  // dW[out, in] += dy^T x
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, rows, 1.0f, p.dy, out, p.x,
                    in, 1.0f, p.dweight, in);
    if (p.dbias) {
        // Column sums in row order: one pass, deterministic.
        std::vector<double> sums(static_cast<std::size_t>(out), 0.0);
        for (std::int64_t r = 0; r < p.rows; ++r)
            for (int c = 0; c < out; ++c) sums[c] += p.dy[r * out + c];
        for (int c = 0; c < out; ++c) p.dbias[c] += static_cast<float>(sums[c]);
    }
}

void layer_norm_backward(const LayerNormBackwardParams& p) {
    const auto c = p.channels;
    const int threads = omp_get_max_threads();
    std::vector<std::vector<float>> dgamma(threads, std::vector<float>(c, 0.0f));
    std::vector<std::vector<float>> dbeta(threads, std::vector<float>(c, 0.0f));
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        std::vector<float> normalised(static_cast<std::size_t>(c)), g(static_cast<std::size_t>(c));
#pragma omp for schedule(static)
        for (std::int64_t r = 0; r < p.rows; ++r) {
            const float* x = p.x + r * c;
            const float* dy = p.dy + r * c;
            double sum = 0;
            for (std::int64_t i = 0; i < c; ++i) sum += x[i];
            const double mean = sum / static_cast<double>(c);
            double squares = 0;
            for (std::int64_t i = 0; i < c; ++i) squares += (x[i] - mean) * (x[i] - mean);
            const double inv = 1.0 / std::sqrt(squares / static_cast<double>(c) + p.eps);
            double mean_g = 0, mean_gx = 0;
            for (std::int64_t i = 0; i < c; ++i) {
                normalised[i] = static_cast<float>((x[i] - mean) * inv);
                g[i] = dy[i] * (p.gamma ? p.gamma[i] : 1.0f);
                mean_g += g[i];
                mean_gx += static_cast<double>(g[i]) * normalised[i];
                dgamma[t][i] += dy[i] * normalised[i];
                dbeta[t][i] += dy[i];
            }
            mean_g /= static_cast<double>(c);
            mean_gx /= static_cast<double>(c);
            float* dx = p.dx + r * c;
            for (std::int64_t i = 0; i < c; ++i)
                dx[i] = static_cast<float>(inv * (g[i] - mean_g - normalised[i] * mean_gx));
        }
    }
    reduce_partials(dgamma, p.dgamma);
    reduce_partials(dbeta, p.dbeta);
}

void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) {
    // GELU'(x) = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = e^(-x^2 / 2) / sqrt(2 pi).
    constexpr float kInvSqrt2 = 0.70710678118654752440f;
    const auto inv_sqrt_2pi = static_cast<float>(1.0 / std::sqrt(2.0 * std::numbers::pi));
    constexpr std::int64_t kBlock = 4096;
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (std::int64_t block = 0; block < blocks; ++block) {
        std::int64_t i = block * kBlock;
        const std::int64_t end = std::min(n, i + kBlock);
#ifdef BOREAS_VECTOR_ERF
        const __m256 half = _mm256_set1_ps(0.5f), minus_half = _mm256_set1_ps(-0.5f), one = _mm256_set1_ps(1.0f);
        const __m256 inv_sqrt2 = _mm256_set1_ps(kInvSqrt2), density = _mm256_set1_ps(inv_sqrt_2pi);
        for (; i + 8 <= end; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            const __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, _ZGVdN8v_erff(_mm256_mul_ps(v, inv_sqrt2))));
            const __m256 pdf =
                _mm256_mul_ps(density, simd::exp(_mm256_mul_ps(minus_half, _mm256_mul_ps(v, v))));
            _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_fmadd_ps(v, pdf, cdf)));
        }
#endif
        for (; i < end; ++i) {
            const float v = x[i];
            const float cdf = 0.5f * (1.0f + std::erf(v * kInvSqrt2));
            const float pdf = inv_sqrt_2pi * std::exp(-0.5f * v * v);
            dx[i] = dy[i] * (cdf + v * pdf);
        }
    }
}

void transpose_csr(const std::int64_t* dst_offsets, const std::int32_t* src, std::int64_t n_dst,
                   std::int64_t n_src, std::int64_t* src_offsets, std::int64_t* edges_by_src) {
    std::fill(src_offsets, src_offsets + n_src + 1, 0);
    const auto edges = dst_offsets[n_dst];
    for (std::int64_t e = 0; e < edges; ++e) ++src_offsets[src[e] + 1];
    for (std::int64_t i = 0; i < n_src; ++i) src_offsets[i + 1] += src_offsets[i];
    std::vector<std::int64_t> cursor(src_offsets, src_offsets + n_src);
    for (std::int64_t e = 0; e < edges; ++e) edges_by_src[cursor[src[e]]++] = e;
}

void graph_attention_backward(const GraphAttentionBackwardParams& bp) {
    const auto& p = bp.forward;
    const auto heads = p.heads, d = p.head_dim, de = p.edge_dim, width = heads * d;
    BOREAS_CHECK(p.lse && p.out && bp.d_out && bp.dq && bp.dk && bp.dv && bp.src_offsets &&
                     bp.edges_by_src,
                 "graph_attention_backward: the forward's out and lse and every gradient are needed");
    const auto q_stride = p.q_stride ? p.q_stride : width;
    const auto kv_stride = p.kv_stride ? p.kv_stride : width;
    const auto out_stride = p.out_stride ? p.out_stride : width;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const int threads = omp_get_max_threads();
    std::vector<float> delta(static_cast<std::size_t>(p.batch * p.n_dst * heads));
    std::vector<std::vector<float>> dw(threads), db(threads);

    // eps_e = W_e e + b_e for head h into `eps` (d values).
    auto edge_projection = [&](std::int64_t e, std::int64_t h, float* eps) {
        const float* features = p.edge_features + e * de;
        for (std::int64_t x = 0; x < d; ++x) {
            const float* w = p.edge_weight + (h * d + x) * de;
            float value = p.edge_bias ? p.edge_bias[h * d + x] : 0.0f;
            for (std::int64_t c = 0; c < de; ++c) value += w[c] * features[c];
            eps[x] = value;
        }
    };

    // Destination pass: D_j, dq_j, and the edge-projection gradients (each edge once per batch).
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        dw[t].assign(static_cast<std::size_t>(width * de), 0.0f);
        db[t].assign(static_cast<std::size_t>(width), 0.0f);
        std::vector<float> eps(static_cast<std::size_t>(d)), d_eps(static_cast<std::size_t>(d));
#pragma omp for schedule(static)
        for (std::int64_t j = 0; j < p.n_dst; ++j) {
            for (std::int64_t b = 0; b < p.batch; ++b) {
                const std::int64_t row = b * p.n_dst + j;
                const float* q = p.q + row * q_stride;
                const float* o = p.out + row * out_stride;
                const float* g = bp.d_out + row * width;
                float* dq = bp.dq + row * width;
                std::fill(dq, dq + width, 0.0f);
                for (std::int64_t h = 0; h < heads; ++h) {
                    float D = 0;
                    for (std::int64_t x = 0; x < d; ++x) D += g[h * d + x] * o[h * d + x];
                    delta[row * heads + h] = D;
                    const float lse = p.lse[row * heads + h];
                    for (auto e = p.dst_offsets[j]; e < p.dst_offsets[j + 1]; ++e) {
                        const std::int64_t source = b * p.n_src + p.src[e];
                        const float* k = p.k + source * kv_stride + h * d;
                        const float* v = p.v + source * kv_stride + h * d;
                        edge_projection(e, h, eps.data());
                        float score = 0, a = 0;
                        for (std::int64_t x = 0; x < d; ++x) {
                            score += q[h * d + x] * (k[x] + eps[x]);
                            a += g[h * d + x] * (v[x] + eps[x]);
                        }
                        const float alpha = std::exp(score * scale - lse);
                        const float ds = alpha * (a - D);
                        for (std::int64_t x = 0; x < d; ++x) {
                            dq[h * d + x] += ds * (k[x] + eps[x]) * scale;
                            d_eps[x] = alpha * g[h * d + x] + ds * q[h * d + x] * scale;
                        }
                        const float* features = p.edge_features + e * de;
                        for (std::int64_t x = 0; x < d; ++x) {
                            float* wrow = dw[t].data() + (h * d + x) * de;
                            for (std::int64_t c = 0; c < de; ++c) wrow[c] += d_eps[x] * features[c];
                            db[t][h * d + x] += d_eps[x];
                        }
                        if (bp.d_edge_features) {
                            float* dfe = bp.d_edge_features + e * de;
                            for (std::int64_t c = 0; c < de; ++c) {
                                float sum = 0;
                                for (std::int64_t x = 0; x < d; ++x)
                                    sum += p.edge_weight[(h * d + x) * de + c] * d_eps[x];
                                dfe[c] += sum;
                            }
                        }
                    }
                }
            }
        }
    }
    reduce_partials(dw, bp.d_edge_weight);
    reduce_partials(db, bp.d_edge_bias);

    // Source pass: dk_i, dv_i over the edges leaving i, in CSR order.
#pragma omp parallel
    {
        std::vector<float> eps(static_cast<std::size_t>(d));
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < p.n_src; ++i) {
            for (std::int64_t b = 0; b < p.batch; ++b) {
                const std::int64_t source = b * p.n_src + i;
                float* dk = bp.dk + source * width;
                float* dv = bp.dv + source * width;
                std::fill(dk, dk + width, 0.0f);
                std::fill(dv, dv + width, 0.0f);
                const float* k = p.k + source * kv_stride;
                const float* v = p.v + source * kv_stride;
                for (auto n = bp.src_offsets[i]; n < bp.src_offsets[i + 1]; ++n) {
                    const auto e = bp.edges_by_src[n];
                    const std::int64_t j = std::upper_bound(p.dst_offsets, p.dst_offsets + p.n_dst + 1, e) -
                                           p.dst_offsets - 1;
                    const std::int64_t row = b * p.n_dst + j;
                    const float* q = p.q + row * q_stride;
                    const float* g = bp.d_out + row * width;
                    for (std::int64_t h = 0; h < heads; ++h) {
                        edge_projection(e, h, eps.data());
                        float score = 0, a = 0;
                        for (std::int64_t x = 0; x < d; ++x) {
                            score += q[h * d + x] * (k[h * d + x] + eps[x]);
                            a += g[h * d + x] * (v[h * d + x] + eps[x]);
                        }
                        const float alpha = std::exp(score * scale - p.lse[row * heads + h]);
                        const float ds = alpha * (a - delta[row * heads + h]);
                        for (std::int64_t x = 0; x < d; ++x) {
                            dk[h * d + x] += ds * q[h * d + x] * scale;
                            dv[h * d + x] += alpha * g[h * d + x];
                        }
                    }
                }
            }
        }
    }
}

}  // namespace boreas::kernels::cpu
