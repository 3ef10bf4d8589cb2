#include "boreas/forecast/forecast.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numbers>
#include <set>
#include <thread>

#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/forecast/forcings.hpp"
#include "boreas/model/checkpoint.hpp"
#include "boreas/model/model.hpp"
#include "boreas/model/normaliser.hpp"

namespace boreas::forecast {

ForecastContext forecast_context(const model::Checkpoint& checkpoint) {
    const auto& config = checkpoint.config();
    const auto describe = checkpoint.describe();
    ForecastContext c;
    c.origin = describe.value("file", std::string());
    const auto& data_nodes = checkpoint.graph()->node_set("data");
    const auto points = data_nodes.count();
    try {
        c.latitudes = checkpoint.supporting_array("latitudes");
        c.longitudes = checkpoint.supporting_array("longitudes");
    } catch (const Error&) {
        // Older checkpoints (anemoi-utils < 0.4.12) carry no supporting arrays: the graph's data
        // nodes (float32 radians) give the grid; GRIB inputs bring their own coordinates.
        c.latitudes.resize(static_cast<std::size_t>(points));
        c.longitudes.resize(static_cast<std::size_t>(points));
        for (std::int64_t p = 0; p < points; ++p) {
            c.latitudes[p] =
                static_cast<double>(data_nodes.coords[2 * p]) * 180.0 / std::numbers::pi;
            c.longitudes[p] =
                static_cast<double>(data_nodes.coords[2 * p + 1]) * 180.0 / std::numbers::pi;
        }
        log::info(
            "{}: no latitudes/longitudes supporting arrays; the grid comes from the graph's "
            "data nodes",
            c.origin);
    }
    BOREAS_CHECK(static_cast<std::int64_t>(c.latitudes.size()) == points &&
                     c.longitudes.size() == c.latitudes.size(),
                 "{}: the supporting arrays hold {} latitudes and {} longitudes for a grid of {} "
                 "points",
                 c.origin, c.latitudes.size(), c.longitudes.size(), points);
    c.timestep = checkpoint.timestep_seconds();
    c.multistep_input = config.multistep_input;
    c.input_variables = config.input_variables();
    c.output_variables = config.output_variables();
    for (const auto& v : c.input_variables)
        if (std::find(c.output_variables.begin(), c.output_variables.end(), v) !=
            c.output_variables.end())
            c.prognostic.push_back(v);
    c.variables_metadata = checkpoint.variables_metadata();
    for (const auto& f : config.forcing) {
        const auto* meta = c.variables_metadata.contains(f) ? &c.variables_metadata[f] : nullptr;
        const bool computed =
            meta ? meta->value("computed_forcing", false) : is_computed_forcing(f);
        if (computed) {
            BOREAS_CHECK(is_computed_forcing(f),
                         "{}: forcing '{}' is marked computed_forcing; Boreas computes {}",
                         c.origin, f, fmt::join(computed_forcing_names(), ", "));
            c.computed_forcings.push_back(f);
        } else {
            BOREAS_CHECK(!meta || meta->value("constant_in_time", true),
                         "{}: forcing '{}' is neither computed nor constant in time; forcings "
                         "read from a file at every date are not supported yet",
                         c.origin, f);
            c.constant_forcings.push_back(f);
        }
    }
    c.initial_state_variables = c.prognostic;
    c.initial_state_variables.insert(c.initial_state_variables.end(), c.constant_forcings.begin(),
                                     c.constant_forcings.end());
    return c;
}

// ---- AsyncWriter -------------------------------------------------------------------------------

struct AsyncWriter::State {
    std::unique_ptr<Writer> inner;
    std::size_t depth = 2;
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<StepResult> queue;
    bool closing = false, busy = false;
    std::exception_ptr error;
    double wait = 0, write = 0;
    std::thread thread;

    void run() {
        for (;;) {
            StepResult next;
            {
                std::unique_lock lock(mutex);
                changed.wait(lock, [&] { return !queue.empty() || closing; });
                if (queue.empty()) return;
                next = std::move(queue.front());
                queue.pop_front();
                busy = true;
            }
            Stopwatch watch;
            try {
                if (!error) inner->write(next);
            } catch (...) {
                std::lock_guard lock(mutex);
                error = std::current_exception();
            }
            std::lock_guard lock(mutex);
            write += watch.seconds();
            busy = false;
            changed.notify_all();
        }
    }
};

AsyncWriter::AsyncWriter(std::unique_ptr<Writer> inner, std::size_t depth)
    : state_(std::make_unique<State>()) {
    state_->inner = std::move(inner);
    state_->depth = std::max<std::size_t>(1, depth);
    state_->thread = std::thread([s = state_.get()] { s->run(); });
}

AsyncWriter::~AsyncWriter() {
    if (state_->thread.joinable()) {
        {
            std::lock_guard lock(state_->mutex);
            state_->closing = true;
        }
        state_->changed.notify_all();
        state_->thread.join();
    }
}

void AsyncWriter::write(const StepResult& result) {
    Stopwatch watch;
    std::unique_lock lock(state_->mutex);
    state_->changed.wait(
        lock, [&] { return state_->queue.size() < state_->depth || state_->error != nullptr; });
    state_->wait += watch.seconds();
    if (state_->error) std::rethrow_exception(state_->error);
    state_->queue.push_back(result);
    state_->changed.notify_all();
}

void AsyncWriter::close() {
    Stopwatch watch;
    {
        std::lock_guard lock(state_->mutex);
        state_->closing = true;
    }
    state_->changed.notify_all();
    if (state_->thread.joinable()) state_->thread.join();
    state_->wait += watch.seconds();
    if (state_->error) std::rethrow_exception(state_->error);
    state_->inner->close();
}

double AsyncWriter::wait_seconds() const {
    return state_->wait;
}
double AsyncWriter::write_seconds() const {
    return state_->write;
}

// ---- the forecast ------------------------------------------------------------------------------

void check_initial_conditions(const ForecastContext& context, const InitialConditions& initial,
                              bool allow_nan) {
    const auto points = context.latitudes.size();
    std::vector<std::string> missing;
    const std::set<std::string> computed(context.computed_forcings.begin(),
                                         context.computed_forcings.end());
    const std::set<std::string> constant(context.constant_forcings.begin(),
                                         context.constant_forcings.end());
    for (const auto& name : context.input_variables) {
        if (computed.count(name)) continue;
        const auto it = initial.fields.find(name);
        if (it == initial.fields.end()) {
            missing.push_back(name);
            continue;
        }
        const auto& dates = it->second;
        const auto wanted = static_cast<std::size_t>(context.multistep_input);
        BOREAS_CHECK(dates.size() == wanted || (constant.count(name) && dates.size() == 1),
                     "{}: field '{}' is given at {} date(s); the model needs it at {} (every "
                     "{} s up to {})",
                     initial.origin, name, dates.size(), wanted, context.timestep,
                     initial.date.iso());
        for (std::size_t t = 0; t < dates.size(); ++t) {
            BOREAS_CHECK(dates[t].size() == points,
                         "{}: field '{}' has {} values; the checkpoint's grid has {} points",
                         initial.origin, name, dates[t].size(), points);
            if (allow_nan) continue;
            for (std::size_t p = 0; p < points; ++p)
                BOREAS_CHECK(std::isfinite(dates[t][p]),
                             "{}: field '{}' has a non-finite value at point {} (date {} of {}); "
                             "pass --allow-nan to accept it",
                             initial.origin, name, p, t + 1, dates.size());
        }
    }
    BOREAS_CHECK(missing.empty(), "{}: missing field(s) {} (the model's inputs are {})",
                 initial.origin, fmt::join(missing, ", "), fmt::join(context.input_variables, " "));
}

ForecastTimings run_forecast(const ForecastContext& context, const model::Model& model,
                             const model::Normaliser& normaliser, const InitialConditions& initial,
                             const ForecastOptions& options, Writer& writer) {
    check_initial_conditions(context, initial, options.allow_nan_input);
    BOREAS_CHECK(options.lead_seconds > 0, "the lead time must be positive");
    Stopwatch total;
    ForecastTimings timings;
    const auto steps =
        static_cast<int>((options.lead_seconds + context.timestep - 1) / context.timestep);
    const auto t_count = static_cast<std::int64_t>(context.multistep_input);
    const auto n = static_cast<std::int64_t>(context.latitudes.size());
    const auto v_in = static_cast<std::int64_t>(context.input_variables.size());
    const auto v_out = static_cast<std::int64_t>(context.output_variables.size());
    auto index_of = [](const std::vector<std::string>& names, const std::string& name) {
        return static_cast<std::int64_t>(std::find(names.begin(), names.end(), name) -
                                         names.begin());
    };
    // x [1, T, 1, N, V_in] in physical units; slot t holds date base - (T - 1 - t) * timestep.
    Tensor x({1, t_count, 1, n, v_in});
    auto slot = [&](std::int64_t t, std::int64_t point) {
        return x.data() + (t * n + point) * v_in;
    };
    // Forcings on the input's own coordinates where it has them (GRIB: as anemoi-inference
    // computes them, from the first field's grid points), else the checkpoint's.
    const auto& latitudes = initial.latitudes.empty() ? context.latitudes : initial.latitudes;
    const auto& longitudes = initial.longitudes.empty() ? context.longitudes : initial.longitudes;
    auto set_computed = [&](std::int64_t t, const DateTime& date) {
        Stopwatch watch;
        for (const auto& name : context.computed_forcings) {
            const auto column = index_of(context.input_variables, name);
            const auto values = computed_forcing(name, latitudes, longitudes, date);
            for (std::int64_t p = 0; p < n; ++p) slot(t, p)[column] = values[p];
        }
        timings.forcings += watch.seconds();
    };
    for (std::int64_t t = 0; t < t_count; ++t) {
        for (std::int64_t i = 0; i < v_in; ++i) {
            const auto it = initial.fields.find(context.input_variables[i]);
            if (it == initial.fields.end()) continue;  // computed
            const auto& values = it->second.size() == 1 ? it->second[0] : it->second[t];
            for (std::int64_t p = 0; p < n; ++p) slot(t, p)[i] = values[p];
        }
        set_computed(t, initial.date + (t - (t_count - 1)) * context.timestep);
    }
    std::vector<std::pair<std::int64_t, std::int64_t>> feedback;  // (input column, output column)
    for (const auto& name : context.prognostic)
        feedback.emplace_back(index_of(context.input_variables, name),
                              index_of(context.output_variables, name));

    if (options.write_initial_state) {
        StepResult initial_state;
        initial_state.step = 0;
        initial_state.base = initial.date;
        initial_state.valid = initial.date;
        initial_state.names = context.initial_state_variables;
        for (const auto& name : initial_state.names) {
            const auto column = index_of(context.input_variables, name);
            auto& values = initial_state.values.emplace_back(static_cast<std::size_t>(n));
            for (std::int64_t p = 0; p < n; ++p) values[p] = slot(t_count - 1, p)[column];
        }
        Stopwatch watch;
        writer.write(initial_state);
        timings.wait += watch.seconds();
    }
    for (int step = 1; step <= steps; ++step) {
        Stopwatch step_watch;
        const DateTime valid = initial.date + step * context.timestep;
        Tensor y;
        {
            Stopwatch watch;
            Tensor normalised = x;
            normaliser.normalise_input(normalised);
            model::ForwardOptions forward_options;
            forward_options.allow_nan = options.allow_nan_input;
            forward_options.precision = options.precision;
            forward_options.shards = options.shards;
            y = model.forward(normalised, forward_options);
            normaliser.denormalise_output(y);
            timings.model += watch.seconds();
        }
        StepResult result;
        result.step = step;
        result.base = initial.date;
        result.valid = valid;
        result.lead_seconds = step * context.timestep;
        result.names = context.output_variables;
        result.values.assign(static_cast<std::size_t>(v_out),
                             std::vector<float>(static_cast<std::size_t>(n)));
        for (std::int64_t p = 0; p < n; ++p) {
            const float* row = y.data() + p * v_out;
            for (std::int64_t v = 0; v < v_out; ++v) result.values[v][p] = row[v];
        }
        for (std::int64_t v = 0; v < v_out; ++v) {
            const auto& values = result.values[v];
            const auto bad = std::find_if(values.begin(), values.end(),
                                          [](float value) { return !std::isfinite(value); });
            BOREAS_CHECK(bad == values.end(),
                         "step {} (valid {}): output '{}' is not finite at point {} (lat {}, lon "
                         "{}); the {} step(s) before it are in the output",
                         step, valid.iso(), context.output_variables[v], bad - values.begin(),
                         context.latitudes[bad - values.begin()],
                         context.longitudes[bad - values.begin()], step - 1);
        }
        {
            Stopwatch watch;
            writer.write(result);
            timings.wait += watch.seconds();
        }
        // The next input: shift the dates, feed the prognostic outputs back, refresh forcings.
        if (step < steps) {
            std::copy(x.data() + n * v_in, x.data() + t_count * n * v_in, x.data());
            for (std::int64_t p = 0; p < n; ++p) {
                float* in = slot(t_count - 1, p);
                const float* out = y.data() + p * v_out;
                for (const auto& [i, o] : feedback) in[i] = out[o];
            }
            set_computed(t_count - 1, valid);
        }
        timings.step_seconds.push_back(step_watch.seconds());
        timings.steps = step;
        if (options.progress) {
            Progress progress;
            progress.step = step;
            progress.steps = steps;
            progress.valid = valid;
            progress.step_seconds = timings.step_seconds.back();
            progress.elapsed_seconds = total.seconds();
            options.progress(progress);
        }
    }
    timings.total = total.seconds();
    return timings;
}

}  // namespace boreas::forecast
