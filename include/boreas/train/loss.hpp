#pragma once
/// The training loss and one training step over a rollout (spec/model.md 9.2, 9.3;
/// model-audit.md 1.6): area-weighted MSE in normalised space over all model outputs, per-variable
/// weights with pressure-level scaling, averaged over the rollout; gradients flow through the
/// whole rollout (predictions feed the next input without being detached).

#include <map>
#include <string>
#include <vector>

#include "boreas/model/model.hpp"

namespace boreas::train {

struct LossConfig {
    std::map<std::string, double> variable_weights;  ///< default 1
    /// Pressure-level scaling max(intercept, slope * level) for variables named "<param>_<level>".
    bool pressure_level_scaling = true;
    double level_intercept = 0.2;
    double level_slope = 0.001;
};

/// s_v for each output variable.
std::vector<double> variable_scaling(const std::vector<std::string>& outputs,
                                     const LossConfig& config);

/// Node weights normalised to sum to one (anemoi-core's unit-sum node weights).
std::vector<double> unit_sum(const std::vector<float>& area_weight);

/// loss = mean_b sum_n w_n mean_v s_v (prediction - target)^2 for [B, 1, 1, N, V] tensors;
/// adds `scale * d loss / d prediction` into `d_prediction` and returns the loss.
double weighted_mse(const Tensor& prediction, const Tensor& target,
                    const std::vector<double>& node_weights, const std::vector<double>& scaling,
                    double scale, Tensor& d_prediction);

struct StepResult {
    double loss = 0;  ///< averaged over the rollout
    std::vector<double> step_losses;
    model::Gradients gradients;  ///< parameters; `input` holds d loss / d initial input
};

/// One training step: `batch` is [B, T + R, 1, N, V_dataset] (all dataset variables, dataset
/// order, normalised); inputs drop diagnostics, targets drop forcings; forcings of the next
/// input come from the batch.
/// `activation_checkpointing`: keep only part inputs, recompute in backward (same gradients).
/// `shards`: the model-parallel group the step is sharded over (Model::forward_train); every
/// rank of it passes the same batch and gets the whole loss and gradients.
StepResult rollout_step(const model::Model& model, const Tensor& batch, int rollout,
                        const LossConfig& config, bool activation_checkpointing = false,
                        const dist::Communicator* shards = nullptr,
                        model::GradientObserver* observer = nullptr);

/// The same rollout's loss without gradients (validation): the inference forward, no tape, no
/// backward; `gradients` stays empty. Equal to rollout_step's loss up to the forward's
/// summation order (both match anemoi-models within fp32 rounding).
StepResult rollout_loss(const model::Model& model, const Tensor& batch, int rollout,
                        const LossConfig& config, const dist::Communicator* shards = nullptr);

}  // namespace boreas::train
