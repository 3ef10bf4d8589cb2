#pragma once
/// A forecast as anemoi-inference runs one: from initial conditions at the input dates, the model
/// steps forward by its time step over the lead time, feeding its prognostic outputs back as the
/// next input, with forcings refreshed for each new date (computed ones recomputed, constant ones
/// kept from the initial conditions). Each step's outputs go to a Writer, which may run on its
/// own thread (AsyncWriter) so that the model does not wait on I/O.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "boreas/core/datetime.hpp"
#include "boreas/model/model.hpp"

namespace boreas::model {
class Checkpoint;
class Normaliser;
}  // namespace boreas::model

namespace boreas::dist {
class Communicator;
}

namespace boreas::forecast {

/// Initial conditions on the model's data grid.
struct InitialConditions {
    std::string origin;  ///< the file they came from, for messages
    DateTime date;       ///< the forecast's base date: the last input date
    /// name -> values at each input date, oldest first: [multistep_input][points]. Constant
    /// fields may hold one date only.
    std::map<std::string, std::vector<std::vector<float>>> fields;
    /// The input's own grid coordinates (degrees; GRIB), empty where it has none.
    std::vector<double> latitudes, longitudes;
};

/// What a forecast needs to know about the model's grid and variables (from the checkpoint).
struct ForecastContext {
    std::vector<double> latitudes, longitudes;  ///< degrees, the data grid in model order
    std::int64_t timestep = 0;                  ///< seconds
    int multistep_input = 1;
    std::vector<std::string> input_variables, output_variables;  ///< the model's order
    std::vector<std::string> prognostic;                         ///< inputs that are also outputs
    std::vector<std::string> computed_forcings;  ///< inputs computed from grid and date
    std::vector<std::string> constant_forcings;  ///< other forcings: kept from the input
    /// What anemoi-inference writes at step 0: the prognostic fields and constant forcings at
    /// the base date.
    std::vector<std::string> initial_state_variables;
    nlohmann::json variables_metadata;  ///< the dataset's (mars keys, accumulations)
    std::string origin;                 ///< the checkpoint, for messages
};

ForecastContext forecast_context(const model::Checkpoint& checkpoint);

/// One step's output: every output variable of the model, valid at base + lead (step 0: the
/// initial state's initial_state_variables at the base date).
struct StepResult {
    int step = 0;  ///< 0 (initial state), 1, 2, ...
    DateTime base, valid;
    std::int64_t lead_seconds = 0;
    std::vector<std::string> names;
    std::vector<std::vector<float>> values;  ///< [variable][points], physical units
};

class Writer {
  public:
    virtual ~Writer() = default;
    virtual void write(const StepResult& result) = 0;
    /// Completes the output: everything written so far is complete and valid afterwards.
    virtual void close() = 0;
};

/// Runs `inner` on a thread of its own behind a queue of `depth` steps; `write` blocks only when
/// the queue is full (that time is the model's wait on I/O). An error of the writer is rethrown
/// by the next write or by close.
class AsyncWriter : public Writer {
  public:
    explicit AsyncWriter(std::unique_ptr<Writer> inner, std::size_t depth = 2);
    ~AsyncWriter() override;
    void write(const StepResult& result) override;
    void close() override;
    double wait_seconds() const;   ///< time write() spent waiting for room in the queue
    double write_seconds() const;  ///< time the writer thread spent writing

    struct State;

  private:
    std::unique_ptr<State> state_;
};

/// Per-step progress: the step just finished and the seconds it took.
struct Progress {
    int step = 0, steps = 0;
    DateTime valid;
    double step_seconds = 0, elapsed_seconds = 0;
};

struct ForecastOptions {
    std::int64_t lead_seconds = 0;
    bool write_initial_state = true;  ///< step 0 first, as anemoi-inference does by default
    bool allow_nan_input = false;
    model::Precision precision = model::Precision::fp32;  ///< of every step's forward
    /// Model sharding: every rank of the group runs the rollout (ForwardOptions::shards) and
    /// holds every step's output; the caller lets one of them write.
    const dist::Communicator* shards = nullptr;
    std::function<void(const Progress&)> progress;
};

struct ForecastTimings {
    int steps = 0;
    double forcings = 0, model = 0, write = 0, wait = 0, total = 0;  ///< seconds
    std::vector<double> step_seconds;
};

/// Checks the initial conditions against the context: every non-computed input variable present
/// at every input date (constant forcings: at least one), one value per grid point, finite
/// unless allowed. Throws naming the missing fields, or the field and what differs.
void check_initial_conditions(const ForecastContext& context, const InitialConditions& initial,
                              bool allow_nan);

/// Runs the forecast; outputs go to `writer` step by step. A non-finite output stops the run
/// with the step and variable named, after the steps before it were handed to the writer (the
/// caller closes the writer).
ForecastTimings run_forecast(const ForecastContext& context, const model::Model& model,
                             const model::Normaliser& normaliser, const InitialConditions& initial,
                             const ForecastOptions& options, Writer& writer);

}  // namespace boreas::forecast
