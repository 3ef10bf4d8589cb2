// Backward kernels of the CPU backend. Every reduction runs in a fixed order for a given thread
// count (static schedules, per-thread partials summed in thread order): no atomics, so training
// is bit-reproducible run to run.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "blas_threads.hpp"
#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "edge_projection.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {
namespace {

/// Sums per-thread partial buffers into `target` in thread order.
void reduce_partials(const std::vector<std::vector<float>>& partials, float* target) {
    if (target == nullptr) return;
    for (const auto& partial : partials)
        for (std::size_t i = 0; i < partial.size(); ++i) target[i] += partial[i];
}

}  // namespace

void linear_backward(const LinearBackwardParams& p) {
    single_threaded_blas();
    const int in = static_cast<int>(p.in), out = static_cast<int>(p.out);
    if (p.rows == 0) return;
    if (p.dx) {
        // dx[rows, in] = dy[rows, out] W[out, in]: a Linear over dy with W as its transposed
        // weight (the packed register-tile path where out <= 2048, row-split sgemm otherwise).
        LinearParams dx;
        dx.x = p.dy;
        dx.weight = p.weight;
        dx.weight_transposed = true;
        dx.y = p.dx;
        dx.rows = p.rows;
        dx.in = p.out;
        dx.out = p.in;
        dx.accumulate = p.accumulate_dx;
        linear(dx);
    }
    if (p.dweight == nullptr && p.dbias == nullptr) return;
    // dW[out, in] += dy^T x and db += column sums of dy, the rows split over the threads: each
    // thread's partial (a single-threaded sgemm with K = its rows) is summed into dW in thread
    // order, so the result depends on the thread count only, never on timing.
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int used = static_cast<int>(std::clamp<std::int64_t>(p.rows / 256, 1, threads));
    const std::int64_t weights = p.out * p.in;
    std::vector<float> partial_w(p.dweight ? static_cast<std::size_t>(used * weights) : 0);
    std::vector<double> partial_b(p.dbias ? static_cast<std::size_t>(used * p.out) : 0, 0.0);
#pragma omp parallel num_threads(used) if (used > 1)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const std::int64_t r0 = p.rows * t / n, r1 = p.rows * (t + 1) / n;
        if (p.dweight)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, static_cast<int>(r1 - r0),
                        1.0f, p.dy + r0 * out, out, p.x + r0 * in, in, 0.0f,
                        partial_w.data() + t * weights, in);
        if (p.dbias) {
            double* sums = partial_b.data() + t * p.out;
            for (std::int64_t r = r0; r < r1; ++r)
                for (int c = 0; c < out; ++c) sums[c] += p.dy[r * out + c];
        }
#pragma omp barrier
        if (p.dweight) {
#pragma omp for schedule(static)
            for (std::int64_t i = 0; i < weights; ++i) {
                float sum = p.dweight[i];
                for (int u = 0; u < n; ++u) sum += partial_w[u * weights + i];
                p.dweight[i] = sum;
            }
        }
    }
    if (p.dbias)
        for (int c = 0; c < out; ++c) {
            double sum = 0;
            for (int u = 0; u < used; ++u) sum += partial_b[u * p.out + c];
            p.dbias[c] += static_cast<float>(sum);
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
        float* dg = dgamma[t].data();
        float* db = dbeta[t].data();
#pragma omp for schedule(static)
        for (std::int64_t r = 0; r < p.rows; ++r) {
            const float* x = p.x + r * c;
            const float* dy = p.dy + r * c;
            // The forward's own statistics (dense.cpp).
            const auto [mean, inv] = simd::row_moments(x, c, p.eps);
            float sum_g = 0, sum_gx = 0;
            std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
            const __m256 m = _mm256_set1_ps(mean);
            if (p.gamma) {
                const __m256 scale = _mm256_set1_ps(inv);
                __m256 acc_g = _mm256_setzero_ps(), acc_gx = _mm256_setzero_ps();
                for (; i + 8 <= c; i += 8) {
                    const __m256 n = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), scale);
                    const __m256 d = _mm256_loadu_ps(dy + i);
                    const __m256 gi = _mm256_mul_ps(d, _mm256_loadu_ps(p.gamma + i));
                    _mm256_storeu_ps(normalised.data() + i, n);
                    _mm256_storeu_ps(g.data() + i, gi);
                    acc_g = _mm256_add_ps(acc_g, gi);
                    acc_gx = _mm256_fmadd_ps(gi, n, acc_gx);
                    _mm256_storeu_ps(dg + i, _mm256_fmadd_ps(d, n, _mm256_loadu_ps(dg + i)));
                    _mm256_storeu_ps(db + i, _mm256_add_ps(d, _mm256_loadu_ps(db + i)));
                }
                sum_g = simd::horizontal_sum(acc_g);
                sum_gx = simd::horizontal_sum(acc_gx);
            }
#endif
            for (; i < c; ++i) {
                normalised[i] = (x[i] - mean) * inv;
                g[i] = dy[i] * (p.gamma ? p.gamma[i] : 1.0f);
                sum_g += g[i];
                sum_gx += g[i] * normalised[i];
                dg[i] += dy[i] * normalised[i];
                db[i] += dy[i];
            }
            const float mean_g = sum_g / static_cast<float>(c),
                        mean_gx = sum_gx / static_cast<float>(c);
            float* dx = p.dx + r * c;
            for (std::int64_t k = 0; k < c; ++k)
                dx[k] = inv * (g[k] - mean_g - normalised[k] * mean_gx);
        }
    }
    reduce_partials(dgamma, p.dgamma);
    reduce_partials(dbeta, p.dbeta);
}

void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) {
    // GELU'(x) = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = e^(-x^2 / 2) /
    // sqrt(2 pi).
    constexpr float kInvSqrt2 = 0.70710678118654752440f;
    const auto inv_sqrt_2pi = static_cast<float>(1.0 / std::sqrt(2.0 * std::numbers::pi));
    constexpr std::int64_t kBlock = 4096;
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (std::int64_t block = 0; block < blocks; ++block) {
        std::int64_t i = block * kBlock;
        const std::int64_t end = std::min(n, i + kBlock);
#ifdef BOREAS_VECTOR_ERF
        const __m256 half = _mm256_set1_ps(0.5f), minus_half = _mm256_set1_ps(-0.5f),
                     one = _mm256_set1_ps(1.0f);
        const __m256 inv_sqrt2 = _mm256_set1_ps(kInvSqrt2), density = _mm256_set1_ps(inv_sqrt_2pi);
        for (; i + 8 <= end; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            const __m256 cdf =
                _mm256_mul_ps(half, _mm256_add_ps(one, _ZGVdN8v_erff(_mm256_mul_ps(v, inv_sqrt2))));
            const __m256 pdf =
                _mm256_mul_ps(density, simd::exp(_mm256_mul_ps(minus_half, _mm256_mul_ps(v, v))));
            _mm256_storeu_ps(dx + i,
                             _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_fmadd_ps(v, pdf, cdf)));
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
    // dst_offsets may be a slice of a larger CSR (a chunk of destinations): its edges are
    // [dst_offsets[0], dst_offsets[n_dst]) and keep their global indices.
    const auto first = dst_offsets[0], last = dst_offsets[n_dst];
    for (auto e = first; e < last; ++e) ++src_offsets[src[e] + 1];
    for (std::int64_t i = 0; i < n_src; ++i) src_offsets[i + 1] += src_offsets[i];
    std::vector<std::int64_t> cursor(src_offsets, src_offsets + n_src);
    for (auto e = first; e < last; ++e) edges_by_src[cursor[src[e]]++] = e;
}

void graph_attention_backward_destinations(const GraphAttentionBackwardParams& bp,
                                           GraphAttentionBackwardScratch& scratch) {
    const auto& p = bp.forward;
    const auto heads = p.heads, d = p.head_dim, de = p.edge_dim, width = heads * d;
    BOREAS_CHECK(p.lse && p.out && p.k && p.v && bp.d_out && bp.dq,
                 "graph_attention_backward: the forward's k, v, out and lse, d(out) and dq are "
                 "needed");
    const auto q_stride = p.q_stride ? p.q_stride : width;
    const auto kv_stride = p.kv_stride ? p.kv_stride : width;
    const auto out_stride = p.out_stride ? p.out_stride : width;
    const auto dq_stride = bp.dq_stride ? bp.dq_stride : width;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    const int threads = omp_get_max_threads();
    const std::int64_t edges = p.dst_offsets[p.n_dst] - p.dst_offsets[0];
    const std::int64_t first_edge = p.dst_offsets[0];
    std::vector<std::vector<float>> dw(threads), db(threads);

    // The edge term eps_e = W_e e + b_e is never formed per edge and channel: with W_e^T q,
    // W_e^T g (edge_dim wide) per destination, the scores, the upstream terms and the edge
    // feature gradients take edge_dim products per edge and head, and the W_e / b_e gradients
    // collect per destination through sum(alpha e) and sum(ds e).
    std::vector<float> edge_weight_t(static_cast<std::size_t>(de * width));
    for (std::int64_t r = 0; r < width; ++r)
        for (std::int64_t c = 0; c < de; ++c)
            edge_weight_t[c * width + r] = p.edge_weight[r * de + c];
    // Per edge and head: the softmax weight alpha and scale * ds, kept for the source pass
    // (edges x heads values, not edges x channels).
    auto& alpha_saved = scratch.alpha;
    auto& ds_saved = scratch.ds;
    auto& edge_dst = scratch.edge_dst;
    alpha_saved.assign(static_cast<std::size_t>(p.batch * edges * heads), 0.0f);
    ds_saved.assign(alpha_saved.size(), 0.0f);
    edge_dst.assign(static_cast<std::size_t>(edges), 0);
    for (std::int64_t j = 0; j < p.n_dst; ++j)
        for (auto e = p.dst_offsets[j]; e < p.dst_offsets[j + 1]; ++e)
            edge_dst[e - first_edge] = static_cast<std::int32_t>(j);
    const float* We_t = edge_weight_t.data();
    const EdgeProjection projection(p.edge_weight, p.edge_bias, width, de);
    const std::int64_t pc = projection.columns(), bias_column = projection.bias_column();

    // Destination pass: dq, alpha and ds per edge, d(edge features), W_e and b_e gradients.
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        dw[t].assign(static_cast<std::size_t>(width * de), 0.0f);
        db[t].assign(static_cast<std::size_t>(width), 0.0f);
        // Per head: W_e^h^T q^h (de values), then q^h . b_e^h (EdgeProjection's layout); g
        // likewise.
        std::vector<float> q_edge(heads * pc), g_edge(heads * pc), delta(heads), sum_alpha(heads),
            sum_ds(heads), alpha_f(heads * de), ds_f(heads * de);
        // Static: which rows feed which thread's W_e / b_e partial must not vary run to run.
#pragma omp for schedule(static)
        for (std::int64_t j = 0; j < p.n_dst; ++j) {
            for (std::int64_t b = 0; b < p.batch; ++b) {
                const std::int64_t row = b * p.n_dst + j;
                const float* q = p.q + row * q_stride;
                const float* o = p.out + row * out_stride;
                const float* g = bp.d_out + row * width;
                float* dq = bp.dq + row * dq_stride;
                std::fill(dq, dq + width, 0.0f);
                for (std::int64_t h = 0; h < heads; ++h)
                    delta[h] = simd::dot(g + h * d, o + h * d, d);
                projection.project(q, heads, d, q_edge.data());
                projection.project(g, heads, d, g_edge.data());
                std::fill(sum_alpha.begin(), sum_alpha.end(), 0.0f);
                std::fill(sum_ds.begin(), sum_ds.end(), 0.0f);
                std::fill(alpha_f.begin(), alpha_f.end(), 0.0f);
                std::fill(ds_f.begin(), ds_f.end(), 0.0f);
                const auto begin = p.dst_offsets[j], end = p.dst_offsets[j + 1];
                for (auto e = begin; e < end; ++e) {
                    if (e + 1 < end) {
                        const std::int64_t next = (b * p.n_src + p.src[e + 1]) * kv_stride;
                        simd::prefetch_row(p.k + next, width);
                        simd::prefetch_row(p.v + next, width);
                    }
                    const std::int64_t source = b * p.n_src + p.src[e];
                    const float* k = p.k + source * kv_stride;
                    const float* v = p.v + source * kv_stride;
                    const float* f = p.edge_features + e * de;
                    float* dfe = bp.d_edge_features ? bp.d_edge_features + e * de : nullptr;
                    const std::int64_t saved = (b * edges + e - first_edge) * heads;
                    for (std::int64_t h = 0; h < heads; ++h) {
                        const float* qe = q_edge.data() + h * pc;
                        const float* ge = g_edge.data() + h * pc;
                        float score = qe[bias_column] + simd::dot(q + h * d, k + h * d, d);
                        float a = ge[bias_column] + simd::dot(g + h * d, v + h * d, d);
                        for (std::int64_t c = 0; c < de; ++c) {
                            score += qe[c] * f[c];
                            a += ge[c] * f[c];
                        }
                        const float alpha = std::exp(score * scale - p.lse[row * heads + h]);
                        const float ds = alpha * (a - delta[h]) * scale;
                        alpha_saved[saved + h] = alpha;
                        ds_saved[saved + h] = ds;
                        simd::axpy(dq + h * d, ds, k + h * d, d);
                        sum_alpha[h] += alpha;
                        sum_ds[h] += ds;
                        for (std::int64_t c = 0; c < de; ++c) {
                            alpha_f[h * de + c] += alpha * f[c];
                            ds_f[h * de + c] += ds * f[c];
                            if (dfe) dfe[c] += alpha * ge[c] + ds * qe[c];
                        }
                    }
                }
                for (std::int64_t h = 0; h < heads; ++h) {
                    // dq += ds scale (W_e e + b_e), summed over the edges.
                    for (std::int64_t c = 0; c < de; ++c)
                        simd::axpy(dq + h * d, ds_f[h * de + c], We_t + c * width + h * d, d);
                    if (p.edge_bias) simd::axpy(dq + h * d, sum_ds[h], p.edge_bias + h * d, d);
                    // d eps_e = alpha_e g + ds_e scale q  =>  dW_e += g (sum alpha e)^T + q (sum ds
                    // e)^T.
                    for (std::int64_t x = 0; x < d; ++x) {
                        const float gx = g[h * d + x], qx = q[h * d + x];
                        float* wrow = dw[t].data() + (h * d + x) * de;
                        for (std::int64_t c = 0; c < de; ++c)
                            wrow[c] += gx * alpha_f[h * de + c] + qx * ds_f[h * de + c];
                        db[t][h * d + x] += gx * sum_alpha[h] + qx * sum_ds[h];
                    }
                }
            }
        }
    }
    reduce_partials(dw, bp.d_edge_weight);
    reduce_partials(db, bp.d_edge_bias);
}

void graph_attention_backward_sources(const GraphAttentionBackwardParams& bp,
                                      const GraphAttentionBackwardScratch& scratch,
                                      std::int64_t row_begin, std::int64_t row_end) {
    const auto& p = bp.forward;
    const auto heads = p.heads, d = p.head_dim, width = heads * d;
    BOREAS_CHECK(bp.d_out && bp.dk && bp.dv && bp.src_offsets && bp.edges_by_src,
                 "graph_attention_backward: d(out), dk, dv and the edges by source are needed");
    const std::int64_t edges = p.dst_offsets[p.n_dst] - p.dst_offsets[0];
    const std::int64_t first_edge = p.dst_offsets[0];
    BOREAS_CHECK(static_cast<std::int64_t>(scratch.alpha.size()) == p.batch * edges * heads &&
                     0 <= row_begin && row_begin <= row_end && row_end <= p.batch * p.n_src,
                 "graph_attention_backward_sources: no destination pass for these parameters, or "
                 "source rows [{}, {}) outside [0, {})",
                 row_begin, row_end, p.batch * p.n_src);
    const auto q_stride = p.q_stride ? p.q_stride : width;
    const auto dkv_stride = bp.dkv_stride ? bp.dkv_stride : width;
    const float* alpha_saved = scratch.alpha.data();
    const float* ds_saved = scratch.ds.data();
    const std::int32_t* edge_dst = scratch.edge_dst.data();

    // Source pass: dk_i = sum ds scale q_j, dv_i = sum alpha g_j over the edges leaving i, in CSR
    // order (one writer per row: deterministic).
#pragma omp parallel for schedule(dynamic, 16)
    for (std::int64_t source = row_begin; source < row_end; ++source) {
        const std::int64_t b = source / p.n_src, i = source % p.n_src;
        float* dk = bp.dk + (source - row_begin) * dkv_stride;
        float* dv = bp.dv + (source - row_begin) * dkv_stride;
        std::fill(dk, dk + width, 0.0f);
        std::fill(dv, dv + width, 0.0f);
        const auto begin = bp.src_offsets[i], end = bp.src_offsets[i + 1];
        for (auto n = begin; n < end; ++n) {
            const auto e = bp.edges_by_src[n];
            const std::int64_t row = b * p.n_dst + edge_dst[e - first_edge];
            if (n + 1 < end) {
                const std::int64_t next =
                    b * p.n_dst + edge_dst[bp.edges_by_src[n + 1] - first_edge];
                simd::prefetch_row(p.q + next * q_stride, width);
                simd::prefetch_row(bp.d_out + next * width, width);
            }
            const float* q = p.q + row * q_stride;
            const float* g = bp.d_out + row * width;
            const std::int64_t saved = (b * edges + e - first_edge) * heads;
            for (std::int64_t h = 0; h < heads; ++h) {
                simd::axpy(dk + h * d, ds_saved[saved + h], q + h * d, d);
                simd::axpy(dv + h * d, alpha_saved[saved + h], g + h * d, d);
            }
        }
    }
}

void graph_attention_backward(const GraphAttentionBackwardParams& bp) {
    GraphAttentionBackwardScratch scratch;
    BOREAS_ISA_NS::graph_attention_backward_destinations(bp, scratch);
    BOREAS_ISA_NS::graph_attention_backward_sources(bp, scratch, 0,
                                                    bp.forward.batch * bp.forward.n_src);
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
