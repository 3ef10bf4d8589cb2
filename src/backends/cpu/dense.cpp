// Dense CPU kernels: Linear through BLAS sgemm, LayerNorm, GELU.
#include <cblas.h>

#include <cmath>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"

namespace boreas::kernels::cpu {

void linear(const LinearParams& p) {
    BOREAS_CHECK(p.x && p.weight && p.y && p.rows >= 0 && p.in > 0 && p.out > 0,
                 "linear: invalid parameters (rows {}, in {}, out {})", p.rows, p.in, p.out);
    if (p.rows == 0) return;
    const std::int64_t ldx = p.x_stride ? p.x_stride : p.in;
    const std::int64_t ldy = p.y_stride ? p.y_stride : p.out;
    float beta = p.accumulate ? 1.0f : 0.0f;
    if (p.bias != nullptr) {
        // The bias goes in first so sgemm adds the product onto it (beta = 1): one pass over y.
#pragma omp parallel for schedule(static) if (p.rows * p.out > 65536)
        for (std::int64_t r = 0; r < p.rows; ++r) {
            float* row = p.y + r * ldy;
            if (p.accumulate) {
                for (std::int64_t c = 0; c < p.out; ++c) row[c] += p.bias[c];
            } else {
                for (std::int64_t c = 0; c < p.out; ++c) row[c] = p.bias[c];
            }
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(p.rows),
                static_cast<int>(p.out), static_cast<int>(p.in), 1.0f, p.x, static_cast<int>(ldx),
                p.weight, static_cast<int>(p.in), beta, p.y, static_cast<int>(ldy));
}

void layer_norm(const LayerNormParams& p) {
    const auto c = p.channels;
#pragma omp parallel for schedule(static) if (p.rows * c > 65536)
    for (std::int64_t r = 0; r < p.rows; ++r) {
        const float* x = p.x + r * c;
        float* y = p.y + r * c;
        double sum = 0;
        for (std::int64_t i = 0; i < c; ++i) sum += x[i];
        const double mean = sum / static_cast<double>(c);
        double squares = 0;
        for (std::int64_t i = 0; i < c; ++i) squares += (x[i] - mean) * (x[i] - mean);
        const auto inv = static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(c) + p.eps));
        const auto mean_f = static_cast<float>(mean);
        for (std::int64_t i = 0; i < c; ++i) {
            const float normalised = (x[i] - mean_f) * inv;
            y[i] = normalised * (p.gamma ? p.gamma[i] : 1.0f) + (p.beta ? p.beta[i] : 0.0f);
        }
    }
}

void gelu(float* x, std::int64_t n) {
    constexpr float kInvSqrt2 = 0.70710678118654752440f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

}  // namespace boreas::kernels::cpu
