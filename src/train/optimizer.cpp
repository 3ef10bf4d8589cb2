#include "boreas/train/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "boreas/core/error.hpp"

namespace boreas::train {

void adamw_step(std::span<float> param, std::span<const float> grad, AdamWState& state,
                std::int64_t step, double lr, const AdamWOptions& options) {
    BOREAS_CHECK(param.size() == grad.size(), "adamw: {} parameters but {} gradients", param.size(),
                 grad.size());
    BOREAS_CHECK(step >= 1, "adamw: step must be >= 1, found {}", step);
    if (state.exp_avg.size() != param.size()) {
        state.exp_avg.assign(param.size(), 0.0f);
        state.exp_avg_sq.assign(param.size(), 0.0f);
    }
    const auto b1 = static_cast<float>(options.beta1), b2 = static_cast<float>(options.beta2);
    const double correction1 = 1.0 - std::pow(options.beta1, static_cast<double>(step));
    const double correction2_sqrt =
        std::sqrt(1.0 - std::pow(options.beta2, static_cast<double>(step)));
    const auto decay = static_cast<float>(1.0 - lr * options.weight_decay);
    const auto step_size = static_cast<float>(lr / correction1);
    const auto inv_c2 = static_cast<float>(1.0 / correction2_sqrt);
    const auto eps = static_cast<float>(options.eps);
    for (std::size_t i = 0; i < param.size(); ++i) {
        const float g = grad[i];
        param[i] *= decay;
        // torch: exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 -
        // beta2)
        state.exp_avg[i] += (1.0f - b1) * (g - state.exp_avg[i]);
        state.exp_avg_sq[i] = state.exp_avg_sq[i] * b2 + (1.0f - b2) * g * g;
        const float denom = std::sqrt(state.exp_avg_sq[i]) * inv_c2 + eps;
        param[i] -= step_size * state.exp_avg[i] / denom;
    }
}

double CosineSchedule::lr(std::int64_t t) const {
    if (t < warmup_steps)
        return base_lr * static_cast<double>(t) / static_cast<double>(warmup_steps);
    if (t >= total_steps) return min_lr;
    const double progress = static_cast<double>(t) / static_cast<double>(total_steps);
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
}

void clip_by_value(std::span<float> grad, float limit) {
    for (auto& g : grad) g = std::clamp(g, -limit, limit);
}

double clip_by_global_norm(const std::vector<std::span<float>>& grads, double max_norm) {
    double squares = 0;
    for (const auto& grad : grads)
        for (float g : grad) squares += static_cast<double>(g) * g;
    const double norm = std::sqrt(squares);
    if (norm > max_norm && norm > 0) {
        const auto scale = static_cast<float>(max_norm / (norm + 1e-6));
        for (const auto& grad : grads)
            for (auto& g : grad) g *= scale;
    }
    return norm;
}

}  // namespace boreas::train
