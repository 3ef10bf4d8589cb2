#include "boreas/train/loss.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/core/trace.hpp"

namespace boreas::train {
namespace {

std::vector<std::int64_t> indices_of(const std::vector<std::string>& names,
                                     const std::vector<std::string>& within) {
    std::vector<std::int64_t> out;
    for (const auto& n : names)
        out.push_back(
            static_cast<std::int64_t>(std::find(within.begin(), within.end(), n) - within.begin()));
    return out;
}

/// batch[:, step, 0, :, columns] into a [B, 1, 1, N, |columns|] tensor.
Tensor slice(const Tensor& batch, std::int64_t step, const std::vector<std::int64_t>& columns) {
    const auto b_count = batch.dim(0), steps = batch.dim(1), nodes = batch.dim(3),
               vars = batch.dim(4);
    const auto width = static_cast<std::int64_t>(columns.size());
    Tensor out = Tensor::uninitialised({b_count, 1, 1, nodes, width});
#pragma omp parallel for schedule(static) if (b_count * nodes * width >= (1 << 16))
    for (std::int64_t r = 0; r < b_count * nodes; ++r) {
        const std::int64_t b = r / nodes, n = r % nodes;
        const float* from = batch.data() + ((b * steps + step) * nodes + n) * vars;
        float* to = out.data() + r * width;
        for (std::int64_t c = 0; c < width; ++c) to[c] = from[columns[c]];
    }
    return out;
}

}  // namespace

std::vector<double> variable_scaling(const std::vector<std::string>& outputs,
                                     const LossConfig& config) {
    std::vector<double> scaling;
    for (const auto& name : outputs) {
        double s = 1.0;
        if (auto it = config.variable_weights.find(name); it != config.variable_weights.end())
            s = it->second;
        const auto underscore = name.rfind('_');
        const std::string level =
            underscore == std::string::npos ? "" : name.substr(underscore + 1);
        const bool pressure_level =
            !level.empty() && std::all_of(level.begin(), level.end(), [](char c) {
                return std::isdigit(static_cast<unsigned char>(c)) != 0;
            });
        if (pressure_level && config.pressure_level_scaling)
            s *= std::max(config.level_intercept, config.level_slope * std::stod(level));
        scaling.push_back(s);
    }
    return scaling;
}

std::vector<double> unit_sum(const std::vector<float>& area_weight) {
    double total = 0;
    for (float w : area_weight) total += w;
    BOREAS_CHECK(total > 0, "node weights sum to {}, expected a positive total", total);
    std::vector<double> out(area_weight.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = area_weight[i] / total;
    return out;
}

double weighted_mse(const Tensor& prediction, const Tensor& target,
                    const std::vector<double>& node_weights, const std::vector<double>& scaling,
                    double scale, Tensor& d_prediction) {
    BOREAS_CHECK(prediction.shape() == target.shape(),
                 "loss: prediction {} and target {} differ in shape", prediction.shape_string(),
                 target.shape_string());
    const auto batch = prediction.dim(0), nodes = prediction.dim(3), vars = prediction.dim(4);
    BOREAS_CHECK(static_cast<std::int64_t>(node_weights.size()) == nodes &&
                     static_cast<std::int64_t>(scaling.size()) == vars,
                 "loss: {} node weights and {} variable scalings for {} nodes and {} variables",
                 node_weights.size(), scaling.size(), nodes, vars);
    // Rows in parallel, each row's term kept and summed in row order afterwards: the loss does
    // not depend on the thread count. The gradient's constant factors are taken out of the
    // inner loop (it divided per value: 3 ms of a small training step, more than anemoi's).
    const std::int64_t rows = batch * nodes;
    std::vector<double> row_terms(static_cast<std::size_t>(rows));
    const double gradient_factor = scale * 2.0 / (static_cast<double>(vars) * batch);
#pragma omp parallel for schedule(static) if (rows * vars >= (1 << 16))
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t n = r % nodes;
        const float* p = prediction.data() + r * vars;
        const float* t = target.data() + r * vars;
        float* d = d_prediction.data() + r * vars;
        const double node_factor = gradient_factor * node_weights[n];
        double node = 0;
        for (std::int64_t v = 0; v < vars; ++v) {
            const double error = static_cast<double>(p[v]) - t[v];
            node += scaling[v] * error * error;
            d[v] += static_cast<float>(node_factor * scaling[v] * error);
        }
        row_terms[r] = node_weights[n] * node / static_cast<double>(vars);
    }
    double loss = 0;
    for (const double term : row_terms) loss += term;
    return loss / static_cast<double>(batch);
}

namespace {

/// What a rollout over a batch needs besides the model: which columns are inputs, outputs,
/// forcings and prognostic pairs, and the loss weights.
struct Rollout {
    const model::Model& model;
    const Tensor& batch;
    std::int64_t steps, b_count, nodes, in_vars;
    std::vector<std::int64_t> inputs, outputs, forcing_in, forcing_data;
    std::vector<std::pair<int, int>> pairs;
    std::vector<double> node_weights, scaling;

    Rollout(const model::Model& m, const Tensor& b, int rollout, const LossConfig& config)
        : model(m), batch(b) {
        const auto& c = model.config();
        steps = c.multistep_input;
        BOREAS_CHECK(rollout >= 1, "rollout must be >= 1, found {}", rollout);
        BOREAS_CHECK(batch.rank() == 5 && batch.dim(1) == steps + rollout &&
                         batch.dim(4) == static_cast<std::int64_t>(c.variables.size()),
                     "training batch has shape {}, expected [batch, {}, 1, nodes, {}] (input "
                     "steps + rollout, all dataset variables)",
                     batch.shape_string(), steps + rollout, c.variables.size());
        inputs = indices_of(c.input_variables(), c.variables);
        outputs = indices_of(c.output_variables(), c.variables);
        forcing_in = indices_of(c.forcing, c.input_variables());
        forcing_data = indices_of(c.forcing, c.variables);
        pairs = c.prognostic_pairs();
        node_weights = unit_sum(model.graph().node_set("data").area_weight);
        scaling = variable_scaling(c.output_variables(), config);
        b_count = batch.dim(0);
        nodes = batch.dim(3);
        in_vars = static_cast<std::int64_t>(inputs.size());
    }

    /// x_0 = batch[:, 0:T, inputs].
    Tensor initial_input() const {
        Tensor x({b_count, steps, 1, nodes, in_vars});
        for (std::int64_t t = 0; t < steps; ++t) {
            const Tensor s = slice(batch, t, inputs);
            for (std::int64_t b = 0; b < b_count; ++b)
                std::copy_n(s.data() + b * nodes * in_vars, nodes * in_vars,
                            x.data() + (b * steps + t) * nodes * in_vars);
        }
        return x;
    }

    /// The loss of step r's prediction against batch[:, T + r, outputs]; its gradient (times
    /// 1/rollout) into d_prediction.
    double loss(const Tensor& prediction, int r, int rollout, Tensor& d_prediction) const {
        return weighted_mse(prediction, slice(batch, steps + r, outputs), node_weights, scaling,
                            1.0 / rollout, d_prediction);
    }

    /// The input of step r + 1: the window shifted, the prediction's prognostic variables and
    /// the batch's forcings of date T + r written into the last step.
    Tensor advance(const Tensor& x, const Tensor& prediction, int r) const {
        Tensor next(x.shape());
        for (std::int64_t b = 0; b < b_count; ++b) {
            for (std::int64_t t = 0; t + 1 < steps; ++t)
                std::copy_n(x.data() + (b * steps + t + 1) * nodes * in_vars, nodes * in_vars,
                            next.data() + (b * steps + t) * nodes * in_vars);
            float* last = next.data() + (b * steps + steps - 1) * nodes * in_vars;
            std::copy_n(x.data() + (b * steps + steps - 1) * nodes * in_vars, nodes * in_vars,
                        last);
            const auto out_vars = prediction.dim(4);
            for (std::int64_t n = 0; n < nodes; ++n) {
                for (const auto& [o, i] : pairs)
                    last[n * in_vars + i] = prediction.data()[(b * nodes + n) * out_vars + o];
                const float* data =
                    batch.data() + ((b * batch.dim(1) + steps + r) * nodes + n) * batch.dim(4);
                for (std::size_t f = 0; f < forcing_in.size(); ++f)
                    last[n * in_vars + forcing_in[f]] = data[forcing_data[f]];
            }
        }
        return next;
    }
};

}  // namespace

StepResult rollout_loss(const model::Model& model, const Tensor& batch, int rollout,
                        const LossConfig& config, const dist::Communicator* shards) {
    const Rollout run(model, batch, rollout, config);
    Tensor x = run.initial_input();
    StepResult result;
    for (int r = 0; r < rollout; ++r) {
        model::ForwardOptions options;
        options.shards = shards;
        const Tensor prediction = model.forward(x, options);
        Tensor unused(prediction.shape());
        const double loss = run.loss(prediction, r, rollout, unused);
        result.step_losses.push_back(loss);
        result.loss += loss / rollout;
        if (r + 1 < rollout) x = run.advance(x, prediction, r);
    }
    return result;
}

StepResult rollout_step(const model::Model& model, const Tensor& batch, int rollout,
                        const LossConfig& config, bool activation_checkpointing,
                        const dist::Communicator* shards, model::GradientObserver* observer) {
    const Rollout run(model, batch, rollout, config);
    const auto steps = run.steps, b_count = run.b_count, nodes = run.nodes, in_vars = run.in_vars;
    const auto& pairs = run.pairs;
    Tensor x = run.initial_input();
    StepResult result;
    result.gradients = model.zero_gradients(x);
    if (observer) {
        result.gradients.observer = observer;
        observer->begin(result.gradients);
    }
    std::vector<model::TrainingTape> tapes(static_cast<std::size_t>(rollout));
    std::vector<Tensor> d_predictions;
    for (int r = 0; r < rollout; ++r) {
        std::optional<trace::Range> range(std::in_place, "forward");
        const Tensor prediction =
            model.forward_train(x, tapes[r], activation_checkpointing, shards);
        range.reset();
        BOREAS_RANGE("loss");
        Tensor d_prediction(prediction.shape());
        const double loss = run.loss(prediction, r, rollout, d_prediction);
        result.step_losses.push_back(loss);
        result.loss += loss / rollout;
        d_predictions.push_back(std::move(d_prediction));
        if (r + 1 == rollout) break;
        tapes[r].drop_recomputable();  // its backward comes after the later steps' forwards
        x = run.advance(x, prediction, r);
    }
    // Backward through the rollout, last step first.
    BOREAS_RANGE("backward");
    Tensor d_next;  // gradient with respect to the input of step r + 1
    for (int r = rollout - 1; r >= 0; --r) {
        Tensor d_prediction = d_predictions[r];
        if (d_next.numel() > 0) {
            const auto out_vars = d_prediction.dim(4);
            for (std::int64_t b = 0; b < b_count; ++b)
                for (std::int64_t n = 0; n < nodes; ++n) {
                    const float* d_last =
                        d_next.data() + ((b * steps + steps - 1) * nodes + n) * in_vars;
                    for (const auto& [o, i] : pairs)
                        d_prediction.data()[(b * nodes + n) * out_vars + o] += d_last[i];
                }
        }
        std::fill(result.gradients.input.storage().begin(), result.gradients.input.storage().end(),
                  0.0f);
        model.backward(tapes[r], d_prediction, result.gradients);
        Tensor d_x = result.gradients.input;
        if (d_next.numel() > 0)  // x_{r+1}[t] = x_r[t + 1] for t < T - 1
            for (std::int64_t b = 0; b < b_count; ++b)
                for (std::int64_t t = 0; t + 1 < steps; ++t) {
                    const float* from = d_next.data() + (b * steps + t) * nodes * in_vars;
                    float* to = d_x.data() + (b * steps + t + 1) * nodes * in_vars;
                    for (std::int64_t k = 0; k < nodes * in_vars; ++k) to[k] += from[k];
                }
        d_next = std::move(d_x);
    }
    result.gradients.input = std::move(d_next);
    return result;
}

}  // namespace boreas::train
