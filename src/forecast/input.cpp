#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"
#include "boreas/data/dataset.hpp"
#include "boreas/forecast/io.hpp"
#include "boreas/io/grib.hpp"
#include "boreas/io/safetensors.hpp"

namespace boreas::forecast {
bool is_grib(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {0, 0, 0, 0};
    in.read(magic, 4);
    return in.gcount() == 4 && std::string(magic, 4) == "GRIB";
}

namespace {

DateTime grib_valid(const io::GribMessage& m, const std::string& file) {
    const bool in_range = m.validity_date >= 10101 && m.validity_date <= 99991231 &&
                          m.validity_time >= 0 && m.validity_time <= 2359;
    try {
        BOREAS_CHECK(in_range, "out of range");
        return DateTime::from_fields(
            static_cast<int>(m.validity_date / 10000),
            static_cast<int>(m.validity_date / 100 % 100), static_cast<int>(m.validity_date % 100),
            static_cast<int>(m.validity_time / 100), static_cast<int>(m.validity_time % 100));
    } catch (const Error&) {
        BOREAS_FAIL(
            "GRIB file '{}': message {} ({}) is valid at date {} time {}: not a date and "
            "time (dataDate {}, dataTime {} and its step)",
            file, m.index, m.anemoi_name(), m.validity_date, m.validity_time, m.data_date,
            m.data_time);
    }
}

/// The GRIB grid must be the checkpoint's: same point count and coordinates (to 1e-3 degrees).
void check_grid(const io::GribMessage& m, const ForecastContext& context, const std::string& file,
                InitialConditions& initial) {
    const auto points = static_cast<std::int64_t>(context.latitudes.size());
    BOREAS_CHECK(m.points == points,
                 "GRIB file '{}': message {} ({}) is on a {} grid of {} points; the checkpoint's "
                 "grid has {} points",
                 file, m.index, m.anemoi_name(), m.grid_type, m.points, points);
    auto& lats = initial.latitudes;
    auto& lons = initial.longitudes;
    io::grib_coordinates(m, lats, lons);
    for (std::int64_t p = 0; p < points; ++p) {
        const double dlon = std::remainder(lons[p] - context.longitudes[p], 360.0);
        BOREAS_CHECK(std::abs(lats[p] - context.latitudes[p]) <= 1e-3 && std::abs(dlon) <= 1e-3,
                     "GRIB file '{}': message {} ({}): point {} is at ({}, {}), the checkpoint's "
                     "grid point at ({}, {}): another grid or point order",
                     file, m.index, m.anemoi_name(), p, lats[p], lons[p], context.latitudes[p],
                     context.longitudes[p]);
    }
}

InitialConditions from_grib(const std::filesystem::path& path, const ForecastContext& context,
                            std::optional<DateTime> date) {
    const std::string file = path.string();
    const auto messages = io::read_grib(path);
    for (const auto& m : messages)
        BOREAS_CHECK(!m.short_name.empty() && m.short_name != "unknown",
                     "GRIB file '{}': message {} has an unknown parameter (paramId {}, level {} "
                     "{}): ecCodes cannot name it",
                     file, m.index, m.param_id, m.level, m.type_of_level);
    InitialConditions initial;
    initial.origin = file;
    if (date) {
        initial.date = *date;
    } else {
        initial.date = grib_valid(messages.front(), file);
        for (const auto& m : messages) initial.date = std::max(initial.date, grib_valid(m, file));
    }
    const std::set<std::string> computed(context.computed_forcings.begin(),
                                         context.computed_forcings.end());
    const std::set<std::string> constant(context.constant_forcings.begin(),
                                         context.constant_forcings.end());
    std::vector<DateTime> dates;
    for (int t = 0; t < context.multistep_input; ++t)
        dates.push_back(initial.date + (t - (context.multistep_input - 1)) * context.timestep);
    // The first field used is checked point by point, every other one against its grid.
    const io::GribMessage* first = nullptr;
    auto check_same_grid = [&](const io::GribMessage& m) {
        if (!first) {
            check_grid(m, context, file, initial);
            first = &m;
            return;
        }
        BOREAS_CHECK(m.grid_type == first->grid_type && m.points == first->points,
                     "GRIB file '{}': message {} ({}) is on a {} grid of {} points, message {} "
                     "({}) on a {} grid of {}: the fields must share the checkpoint's grid",
                     file, m.index, m.anemoi_name(), m.grid_type, m.points, first->index,
                     first->anemoi_name(), first->grid_type, first->points);
    };
    std::vector<std::string> missing;
    for (const auto& name : context.input_variables) {
        if (computed.count(name)) continue;
        std::vector<const io::GribMessage*> found(dates.size(), nullptr);
        const io::GribMessage* any = nullptr;
        for (const auto& m : messages) {
            if (m.anemoi_name() != name) continue;
            any = any && grib_valid(*any, file) > grib_valid(m, file) ? any : &m;
            for (std::size_t t = 0; t < dates.size(); ++t)
                if (grib_valid(m, file) == dates[t]) found[t] = &m;
        }
        if (constant.count(name) && any) {
            // A constant field: the one at the last input date, else the latest one given.
            const auto* m = found.back() ? found.back() : any;
            check_same_grid(*m);
            BOREAS_CHECK(m->points == static_cast<std::int64_t>(context.latitudes.size()),
                         "GRIB file '{}': message {} ({}) has {} points, the checkpoint's grid {}",
                         file, m->index, name, m->points, context.latitudes.size());
            initial.fields[name] = {std::vector<float>(m->values.begin(), m->values.end())};
            continue;
        }
        std::vector<std::vector<float>> values;
        for (std::size_t t = 0; t < dates.size(); ++t) {
            if (!found[t]) {
                missing.push_back(fmt::format("{} at {}", name, dates[t].iso()));
                continue;
            }
            const auto& m = *found[t];
            check_same_grid(m);
            BOREAS_CHECK(m.points == static_cast<std::int64_t>(context.latitudes.size()),
                         "GRIB file '{}': message {} ({}) has {} points, the checkpoint's grid {}",
                         file, m.index, name, m.points, context.latitudes.size());
            values.emplace_back(m.values.begin(), m.values.end());
        }
        if (values.size() == dates.size()) initial.fields[name] = std::move(values);
    }
    BOREAS_CHECK(missing.empty(),
                 "GRIB file '{}': missing field(s) {} (the input dates are {} every {} h up to "
                 "the base date {})",
                 file, fmt::join(missing, ", "), dates.size(), context.timestep / 3600,
                 initial.date.iso());
    return initial;
}

InitialConditions from_safetensors(const std::filesystem::path& path,
                                   const ForecastContext& context, std::optional<DateTime> date) {
    const std::string file = path.string();
    io::SafetensorsReader reader(path);
    InitialConditions initial;
    initial.origin = file;
    if (date) {
        initial.date = *date;
    } else {
        const auto it = reader.metadata().find("date");
        BOREAS_CHECK(it != reader.metadata().end(),
                     "'{}' has no metadata 'date' (the last input date); pass --date", file);
        initial.date = DateTime::parse(it->second);
    }
    const auto points = static_cast<std::int64_t>(context.latitudes.size());
    if (reader.contains("input") && !reader.contains(context.input_variables.front())) {
        // The model's input as `forward --input` takes it: [1, T, (1,) N, V_in], physical units.
        auto shape = reader.info("input").shape;
        if (shape.size() == 5 && shape[2] == 1) shape.erase(shape.begin() + 2);
        const auto steps = static_cast<std::int64_t>(context.multistep_input);
        const auto vars = static_cast<std::int64_t>(context.input_variables.size());
        BOREAS_CHECK(shape.size() == 4 && shape[0] == 1 && shape[1] == steps &&
                         shape[2] == points && shape[3] == vars,
                     "'{}': tensor 'input' has shape {}, expected [1, {}, {}, {}] (batch, input "
                     "dates, grid points, input variables)",
                     file, fmt::join(reader.info("input").shape, "x"), steps, points, vars);
        const auto values = reader.view<float>("input");
        for (std::int64_t v = 0; v < vars; ++v) {
            auto& field = initial.fields[context.input_variables[v]];
            for (std::int64_t t = 0; t < steps; ++t) {
                field.emplace_back(static_cast<std::size_t>(points));
                for (std::int64_t p = 0; p < points; ++p)
                    field.back()[p] = values[(t * points + p) * vars + v];
            }
        }
        for (const auto& name : context.computed_forcings) initial.fields.erase(name);
        return initial;
    }
    for (const auto& name : context.input_variables) {
        if (!reader.contains(name)) continue;  // missing ones are named by the check
        const auto& info = reader.info(name);
        const auto values = reader.view<float>(name);
        const std::int64_t dates = info.shape.size() == 2 ? info.shape[0] : 1;
        BOREAS_CHECK(
            (info.shape.size() == 1 || info.shape.size() == 2) && info.shape.back() == points,
            "'{}': tensor '{}' has shape {}, expected [dates, {}] or [{}]", file, name,
            fmt::join(info.shape, "x"), points, points);
        auto& field = initial.fields[name];
        for (std::int64_t t = 0; t < dates; ++t)
            field.emplace_back(values.begin() + t * points, values.begin() + (t + 1) * points);
    }
    return initial;
}

/// The input dates of an anemoi dataset: the multistep input dates up to the base date, every
/// input variable (computed forcings excepted) from the store's fields at those dates, ensemble
/// member 0, on the checkpoint's grid.
InitialConditions from_dataset(const std::filesystem::path& store, const ForecastContext& context,
                               const DateTime& base) {
    const data::AnemoiDataset dataset(store);
    const auto& where = dataset.location();
    const auto points = static_cast<std::int64_t>(context.latitudes.size());
    BOREAS_CHECK(dataset.points() == points,
                 "dataset '{}' has {} grid points; the checkpoint's grid has {}", where,
                 dataset.points(), points);
    const auto lats = dataset.latitudes(), lons = dataset.longitudes();
    for (std::int64_t p = 0; p < points; ++p) {
        const double dlon = std::remainder(lons[p] - context.longitudes[p], 360.0);
        BOREAS_CHECK(std::abs(lats[p] - context.latitudes[p]) <= 1e-3 && std::abs(dlon) <= 1e-3,
                     "dataset '{}': point {} is at ({}, {}), the checkpoint's grid point at ({}, "
                     "{}): another grid or point order",
                     where, p, lats[p], lons[p], context.latitudes[p], context.longitudes[p]);
    }
    if (dataset.ensembles() > 1)
        log::info("dataset '{}' holds {} ensemble members; member 0 is used", where,
                  dataset.ensembles());
    InitialConditions initial;
    initial.origin = where + "@" + base.iso();
    initial.date = base;
    const std::set<std::string> computed(context.computed_forcings.begin(),
                                         context.computed_forcings.end());
    std::vector<std::pair<std::string, std::size_t>> columns;
    for (const auto& name : context.input_variables)
        if (!computed.contains(name)) columns.emplace_back(name, dataset.variable_index(name));
    const auto variables = static_cast<std::int64_t>(dataset.variables().size());
    std::vector<float> date_fields(
        static_cast<std::size_t>(variables * dataset.ensembles() * points));
    for (int t = 0; t < context.multistep_input; ++t) {
        const auto date = base + (t - context.multistep_input + 1) * context.timestep;
        dataset.read_date(dataset.date_index(date), date_fields);
        for (const auto& [name, index] : columns) {
            const auto* first = date_fields.data() +
                                static_cast<std::int64_t>(index) * dataset.ensembles() * points;
            initial.fields[name].emplace_back(first, first + points);
        }
    }
    initial.latitudes = lats;
    initial.longitudes = lons;
    return initial;
}

}  // namespace

InitialConditions read_initial_conditions(const std::filesystem::path& path,
                                          const ForecastContext& context,
                                          std::optional<DateTime> date) {
    if (const auto dataset = data::parse_dataset_input(path.string())) {
        const auto& store = dataset->store;
        const auto& store_date = dataset->date;
        BOREAS_CHECK(!(store_date && date && *store_date != *date),
                     "initial conditions '{}': the date after '@' and --date {} differ",
                     path.string(), date->iso());
        const auto base = store_date ? store_date : date;
        BOREAS_CHECK(base.has_value(),
                     "initial conditions from dataset '{}' need a date: STORE@2024-01-01T06 or "
                     "--date",
                     store.string());
        auto initial = from_dataset(store, context, *base);
        check_initial_conditions(context, initial, /*allow_nan=*/true);
        return initial;
    }
    BOREAS_CHECK(std::filesystem::is_regular_file(path), "initial conditions '{}': no such file",
                 path.string());
    auto initial =
        is_grib(path) ? from_grib(path, context, date) : from_safetensors(path, context, date);
    check_initial_conditions(context, initial, /*allow_nan=*/true);
    return initial;
}

}  // namespace boreas::forecast
