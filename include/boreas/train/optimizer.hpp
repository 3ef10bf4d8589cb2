#pragma once
/// AdamW as torch.optim.AdamW computes it (decoupled weight decay, bias-corrected moments),
/// timm's CosineLRScheduler with linear warm-up as anemoi-training configures it, and gradient
/// clipping by value or by global norm (spec/model.md 9.4, model-audit.md 1.6).

#include <cstdint>
#include <span>
#include <vector>

namespace boreas::train {

struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9, beta2 = 0.95;
    double eps = 1e-8;
    double weight_decay = 0.01;
};

/// State of one parameter tensor.
struct AdamWState {
    std::vector<float> exp_avg, exp_avg_sq;
};

/// One AdamW update of `param` with `grad` at step `step` (1-based) and learning rate `lr`:
///   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
///   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
void adamw_step(std::span<float> param, std::span<const float> grad, AdamWState& state,
                std::int64_t step, double lr, const AdamWOptions& options);

struct CosineSchedule {
    double base_lr = 1e-4;
    double min_lr = 3e-7;
    std::int64_t warmup_steps = 1000;
    std::int64_t total_steps = 100000;  ///< t_initial

    /// timm semantics: during warm-up lr = t * base / warmup (so step 0 has lr 0); afterwards the
    /// cosine is evaluated at the absolute step t (the warm-up is not subtracted).
    double lr(std::int64_t t) const;
};

/// Clamps every gradient value to [-limit, limit] (anemoi's gradient_clip_algorithm: value).
void clip_by_value(std::span<float> grad, float limit);
/// Scales all gradients by min(1, max_norm / global L2 norm); returns the norm before clipping.
double clip_by_global_norm(const std::vector<std::span<float>>& grads, double max_norm);

}  // namespace boreas::train
