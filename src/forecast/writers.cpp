#include <fmt/format.h>
#include <netcdf.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/forecast/io.hpp"
#include "boreas/io/grib.hpp"
#include "boreas/io/netcdf.hpp"
#include "boreas/io/safetensors.hpp"

namespace boreas::forecast {
namespace {

namespace fs = std::filesystem;

/// A file written under a temporary name beside its final one and renamed by commit(): a reader
/// never sees a half-written output under the final name. The folder is checked at once.
class PendingFile {
  public:
    explicit PendingFile(const fs::path& path) : final_(path) {
        const auto folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
        BOREAS_CHECK(fs::is_directory(folder), "output '{}': folder '{}' does not exist",
                     path.string(), folder.string());
        std::string name = path.filename().string();
        name.insert(name.begin(), '.');
        name.append(".partial");
        temporary_ = folder / name;
        std::ofstream probe(temporary_, std::ios::binary | std::ios::trunc);
        BOREAS_CHECK(probe.good(), "output '{}': cannot write in folder '{}'", path.string(),
                     folder.string());
    }
    ~PendingFile() {
        std::error_code ignored;
        if (!committed_) fs::remove(temporary_, ignored);
    }
    const fs::path& temporary() const { return temporary_; }
    void commit() {
        fs::rename(temporary_, final_);
        committed_ = true;
    }

  private:
    fs::path final_, temporary_;
    bool committed_ = false;
};

/// One safetensors state per step: <folder>/step_<lead hours>h.safetensors, each tensor a
/// variable [points], metadata base/valid/step/lead.
class SafetensorsStepWriter : public Writer {
  public:
    SafetensorsStepWriter(const fs::path& folder, const ForecastContext& context)
        : folder_(folder), context_(context) {
        std::error_code error;
        fs::create_directories(folder, error);
        BOREAS_CHECK(!error && fs::is_directory(folder), "output folder '{}' cannot be created: {}",
                     folder.string(), error.message());
        PendingFile probe(folder / "probe");  // writable?
    }
    void write(const StepResult& r) override {
        io::SafetensorsWriter writer;
        const auto points = static_cast<std::int64_t>(context_.latitudes.size());
        for (std::size_t v = 0; v < r.names.size(); ++v)
            writer.add<float>(r.names[v], {points}, r.values[v]);
        writer.set_metadata("base_date", r.base.iso());
        writer.set_metadata("valid_date", r.valid.iso());
        writer.set_metadata("step", std::to_string(r.step));
        writer.set_metadata("lead_seconds", std::to_string(r.lead_seconds));
        writer.write(folder_ / fmt::format("step_{:03}h.safetensors", r.lead_seconds / 3600));
    }
    void close() override {}

  private:
    fs::path folder_;
    ForecastContext context_;
};

/// anemoi-inference's NetCDF layout: dimensions time (unlimited) and values;
/// forecast_reference_time (scalar), time and forecast_period (int64 seconds), latitude and
/// longitude (float32), one float32 variable [time, values] per output field, NaN as fill value.
class NetcdfWriter : public Writer {
  public:
    NetcdfWriter(const fs::path& path, const ForecastContext& context, const DateTime& base,
                 bool initial_state)
        : pending_(path), file_(pending_.temporary()) {
        // Variables in the order anemoi-inference first sees them: the initial state's, then the
        // outputs'; a field absent from a step (lsm after step 0, tp at step 0) stays NaN.
        std::vector<std::string> names;
        if (initial_state) names = context.initial_state_variables;
        for (const auto& name : context.output_variables)
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
        const auto points = context.latitudes.size();
        const int time = file_.define_dimension("time", 0);
        const int values = file_.define_dimension("values", points);
        const int reference = file_.define_variable("forecast_reference_time", NC_INT64, {});
        file_.attribute(reference, "standard_name", "forecast_reference_time");
        file_.attribute(reference, "long_name", "start time of forecast");
        file_.attribute(reference, "units", "seconds since 1970-01-01 00:00:00+00:00");
        file_.attribute(reference, "calendar", "standard");
        time_ = file_.define_variable("time", NC_INT64, {time});
        file_.set_chunking(time_, {512});
        file_.attribute(time_, "standard_name", "time");
        file_.attribute(time_, "long_name", "valid time");
        file_.attribute(time_, "axis", "T");
        file_.attribute(time_, "units", "seconds since 1970-01-01 00:00:00+00:00");
        file_.attribute(time_, "calendar", "standard");
        period_ = file_.define_variable("forecast_period", NC_INT64, {time});
        file_.set_chunking(period_, {512});
        file_.attribute(period_, "standard_name", "forecast_period");
        file_.attribute(period_, "long_name", "lead time");
        file_.attribute(period_, "units", "seconds");
        const int lat = file_.define_variable("latitude", NC_FLOAT, {values});
        file_.attribute(lat, "standard_name", "latitude");
        file_.attribute(lat, "units", "degrees_north");
        const int lon = file_.define_variable("longitude", NC_FLOAT, {values});
        file_.attribute(lon, "standard_name", "longitude");
        file_.attribute(lon, "units", "degrees_east");
        std::size_t chunk = points;
        while (chunk > 1000000) chunk = (chunk + 1) / 2;
        for (const auto& name : names) {
            const int var = file_.define_variable(name, NC_FLOAT, {time, values});
            file_.set_chunking(var, {1, chunk});
            // Each step writes whole chunks: written through, not held in a 16 MiB cache per
            // variable until close (1.7 GiB of an AIFS forecast's RSS, and its I/O deferred to
            // the end instead of overlapped with compute).
            file_.set_chunk_cache(var, 0);
            file_.set_fill(var, std::numeric_limits<float>::quiet_NaN());
            file_.attribute(var, "missing_value", std::numeric_limits<float>::quiet_NaN());
            file_.attribute(var, "coordinates",
                            "forecast_reference_time forecast_period latitude longitude");
            variables_[name] = var;
        }
        file_.end_definitions();
        const std::int64_t reference_time = base.seconds;
        file_.put(reference, {}, {}, &reference_time);
        std::vector<float> lat_f(context.latitudes.begin(), context.latitudes.end()),
            lon_f(context.longitudes.begin(), context.longitudes.end());
        file_.put(lat, {0}, {points}, lat_f.data());
        file_.put(lon, {0}, {points}, lon_f.data());
        points_ = points;
    }
    void write(const StepResult& r) override {
        const std::int64_t valid = r.valid.seconds, lead = r.lead_seconds;
        file_.put(time_, {written_}, {1}, &valid);
        file_.put(period_, {written_}, {1}, &lead);
        for (std::size_t v = 0; v < r.names.size(); ++v)
            file_.put(variables_.at(r.names[v]), {written_, 0}, {1, points_}, r.values[v].data());
        ++written_;
    }
    void close() override {
        file_.close();
        pending_.commit();
    }

  private:
    PendingFile pending_;
    io::NetcdfFile file_;
    int time_ = -1, period_ = -1;
    std::map<std::string, int> variables_;
    std::size_t points_ = 0, written_ = 0;
};

/// GRIB2 as anemoi-inference writes it: each message cloned from the input's message of the same
/// variable (else from an input surface field, with the parameter set from the checkpoint's
/// MARS metadata), with the forecast's date, time and step.
class GribWriter : public Writer {
  public:
    GribWriter(const fs::path& path, const ForecastContext& context, const fs::path& input)
        : pending_(path), context_(context) {
        out_.open(pending_.temporary(), std::ios::binary | std::ios::trunc);
        // Fields the input lacks (diagnostics) are cloned from its first field on the surface
        // level (a 2 m field's level would stay on them).
        for (auto& m : io::read_grib(input)) {
            if (fallback_name_.empty() && m.type_of_level == "surface")
                fallback_name_ = m.anemoi_name();
            templates_[m.anemoi_name()] = std::move(m.bytes);
        }
        if (!fallback_name_.empty()) fallback_ = &templates_[fallback_name_];
        BOREAS_CHECK(fallback_ != nullptr,
                     "GRIB output '{}': the input '{}' has no surface field to serve as the "
                     "template of fields it lacks",
                     path.string(), input.string());
    }
    void write(const StepResult& r) override {
        const long hours = static_cast<long>(r.lead_seconds / 3600);
        for (std::size_t v = 0; v < r.names.size(); ++v) {
            const auto& name = r.names[v];
            const auto it = templates_.find(name);
            const auto meta = context_.variables_metadata.contains(name)
                                  ? context_.variables_metadata[name]
                                  : nlohmann::json::object();
            const auto mars = meta.value("mars", nlohmann::json::object());
            const auto separator = name.rfind('_');
            const bool has_level =
                separator != std::string::npos && separator + 1 < name.size() &&
                name.find_first_not_of("0123456789", separator + 1) == std::string::npos;
            const std::string param = mars.contains("param") ? mars["param"].get<std::string>()
                                      : has_level            ? name.substr(0, separator)
                                                             : name;
            const std::string levtype = mars.value("levtype", has_level ? "pl" : "sfc");
            // anemoi-inference's keys, in its order (grib/encoding.py grib_keys).
            std::vector<io::GribKey> keys;
            if (levtype == "pl") {
                keys.push_back(io::GribKey::of("typeOfLevel", "isobaricInhPa"));
                keys.push_back(io::GribKey::of(
                    "level", mars.contains("levelist") ? mars["levelist"].get<long>()
                                                       : std::stol(name.substr(separator + 1))));
            }
            const bool accumulation = meta.value("process", std::string()) == "accumulation";
            long period = static_cast<long>(context_.timestep / 3600);
            if (accumulation && meta.contains("period") && meta["period"].is_array() &&
                meta["period"].size() == 2)
                period = meta["period"][1].get<long>() - meta["period"][0].get<long>();
            if (accumulation) {
                keys.push_back(io::GribKey::of("stepType", "accum"));
                keys.push_back(io::GribKey::of("productDefinitionTemplateNumber", 8L));
            } else {
                keys.push_back(io::GribKey::of("stepType", "instant"));
            }
            keys.push_back(io::GribKey::of("shortName", param));
            keys.push_back(io::GribKey::of("dataType", "fc"));
            keys.push_back(io::GribKey::of("date", r.base.grib_date()));
            keys.push_back(io::GribKey::of("time", r.base.grib_time()));
            if (accumulation) {
                keys.push_back(io::GribKey::of("startStep", std::max(0L, hours - period)));
                keys.push_back(io::GribKey::of("endStep", hours));
            } else {
                keys.push_back(io::GribKey::of("step", hours));
            }
            keys.push_back(io::GribKey::of("generatingProcessIdentifier", 255L));
            const std::vector<double> values(r.values[v].begin(), r.values[v].end());
            const auto bytes =
                io::encode_grib(it == templates_.end() ? *fallback_ : it->second, keys, values,
                                fmt::format("'{}' step {}", name, r.step));
            out_.write(reinterpret_cast<const char*>(bytes.data()),
                       static_cast<std::streamsize>(bytes.size()));
            BOREAS_CHECK(out_.good(), "GRIB output: writing '{}' failed",
                         pending_.temporary().string());
        }
    }
    void close() override {
        out_.close();
        BOREAS_CHECK(!out_.fail(), "GRIB output: closing '{}' failed",
                     pending_.temporary().string());
        pending_.commit();
    }

  private:
    PendingFile pending_;
    ForecastContext context_;
    std::ofstream out_;
    std::map<std::string, std::vector<unsigned char>> templates_;
    std::string fallback_name_;
    const std::vector<unsigned char>* fallback_ = nullptr;
};

}  // namespace

OutputFormat output_format(const std::filesystem::path& path) {
    const auto ext = path.extension().string();
    if (ext == ".nc" || ext == ".nc4" || ext == ".netcdf") return OutputFormat::netcdf;
    if (ext == ".grib" || ext == ".grib2" || ext == ".grb" || ext == ".grb2")
        return OutputFormat::grib;
    return OutputFormat::safetensors;
}

std::unique_ptr<Writer> make_writer(const std::filesystem::path& path,
                                    const ForecastContext& context, const DateTime& base,
                                    const std::optional<std::filesystem::path>& grib_input,
                                    bool initial_state) {
    switch (output_format(path)) {
        case OutputFormat::netcdf:
            return std::make_unique<NetcdfWriter>(path, context, base, initial_state);
        case OutputFormat::grib:
            BOREAS_CHECK(grib_input.has_value(),
                         "GRIB output '{}' needs GRIB initial conditions: their messages are the "
                         "templates (grid, centre, packing) of the output's",
                         path.string());
            return std::make_unique<GribWriter>(path, context, *grib_input);
        case OutputFormat::safetensors:
            return std::make_unique<SafetensorsStepWriter>(path, context);
    }
    BOREAS_FAIL("unknown output format");
}

}  // namespace boreas::forecast
