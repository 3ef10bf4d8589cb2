#include "boreas/data/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "boreas/core/error.hpp"

namespace boreas::data {
using json = nlohmann::json;

namespace {

std::vector<std::string> variables_of(const ZarrGroup& group) {
    const auto& attrs = group.attributes();
    std::vector<std::string> names;
    if (attrs.contains("variables")) {
        BOREAS_CHECK(attrs["variables"].is_array(),
                     "store '{}': attribute 'variables' is not a list", group.location());
        for (const auto& v : attrs["variables"]) {
            BOREAS_CHECK(v.is_string(),
                         "store '{}': attribute 'variables' holds {}, names "
                         "expected",
                         group.location(), v.dump());
            names.push_back(v.get<std::string>());
        }
    } else {  // stores before 0.20 kept only name_to_index
        BOREAS_CHECK(attrs.contains("name_to_index") && attrs["name_to_index"].is_object(),
                     "store '{}' lists no variables (attribute 'variables' or 'name_to_index')",
                     group.location());
        const auto& map = attrs["name_to_index"];
        names.resize(map.size());
        for (const auto& [name, index] : map.items()) {
            BOREAS_CHECK(index.is_number_integer() && index.get<std::int64_t>() >= 0 &&
                             index.get<std::size_t>() < names.size() &&
                             names[index.get<std::size_t>()].empty(),
                         "store '{}': name_to_index gives '{}' the index {}", group.location(),
                         name, index.dump());
            names[index.get<std::size_t>()] = name;
        }
    }
    return names;
}

}  // namespace

AnemoiDataset::AnemoiDataset(const std::filesystem::path& path) : AnemoiDataset(ZarrGroup(path)) {}

AnemoiDataset::AnemoiDataset(ZarrGroup group)
    : group_(std::move(group)), data_(group_.array("data")) {
    const auto& where = location();
    const auto& attrs = group_.attributes();
    const auto layout = attrs.value("layout", json("gridded"));
    BOREAS_CHECK(layout == "gridded", "store '{}' has layout {}; Boreas reads gridded datasets",
                 where, layout.dump());
    const auto& m = data_.metadata();
    BOREAS_CHECK(m.shape.size() == 4,
                 "store '{}': array 'data' has {} dimensions; (dates, variables, ensembles, "
                 "points) expected",
                 where, m.shape.size());
    BOREAS_CHECK(m.dtype == DType::float32 || m.dtype == DType::float64,
                 "store '{}': array 'data' has dtype {} (float32 or float64 expected)", where,
                 m.dtype_text);
    variables_ = variables_of(group_);
    BOREAS_CHECK(static_cast<std::int64_t>(variables_.size()) == m.shape[1],
                 "store '{}' names {} variables; array 'data' has {}", where, variables_.size(),
                 m.shape[1]);
    const auto seconds = group_.array("dates").read_datetimes_seconds();
    BOREAS_CHECK(static_cast<std::int64_t>(seconds.size()) == m.shape[0],
                 "store '{}': array 'dates' has {} dates; array 'data' has {}", where,
                 seconds.size(), m.shape[0]);
    for (const auto s : seconds) dates_.push_back(DateTime{s});
    for (std::size_t i = 1; i < dates_.size(); ++i)
        BOREAS_CHECK(dates_[i] > dates_[i - 1], "store '{}': dates {} and {} are not increasing",
                     where, dates_[i - 1].iso(), dates_[i].iso());
    if (attrs.contains("frequency")) {
        const auto& f = attrs["frequency"];
        try {
            frequency_ = f.is_number_integer() ? f.get<std::int64_t>() * 3600
                                               : parse_duration(f.get<std::string>());
        } catch (const std::exception&) {
            BOREAS_FAIL("store '{}': attribute 'frequency' is {}, not a duration", where, f.dump());
        }
    } else if (dates_.size() >= 2) {
        frequency_ = dates_[1] - dates_[0];
    }
    missing_.assign(dates_.size(), false);
    if (attrs.contains("missing_dates")) {
        BOREAS_CHECK(attrs["missing_dates"].is_array(),
                     "store '{}': attribute 'missing_dates' is not a list", where);
        for (const auto& d : attrs["missing_dates"]) {
            BOREAS_CHECK(d.is_string(), "store '{}': missing_dates holds {}, dates expected", where,
                         d.dump());
            const auto date = DateTime::parse(d.get<std::string>());
            const auto it = std::lower_bound(dates_.begin(), dates_.end(), date);
            BOREAS_CHECK(it != dates_.end() && *it == date,
                         "store '{}': missing date {} is not one of its dates", where, date.iso());
            missing_[static_cast<std::size_t>(it - dates_.begin())] = true;
        }
    }
    for (std::size_t i = 0; i < missing_.size(); ++i)
        if (missing_[i]) missing_indices_.push_back(static_cast<std::int64_t>(i));
}

std::size_t AnemoiDataset::variable_index(const std::string& name) const {
    const auto it = std::find(variables_.begin(), variables_.end(), name);
    BOREAS_CHECK(it != variables_.end(), "store '{}' has no variable '{}' ({} variables: {})",
                 location(), name, variables_.size(), fmt::join(variables_, ", "));
    return static_cast<std::size_t>(it - variables_.begin());
}

std::int64_t AnemoiDataset::date_index(const DateTime& date) const {
    BOREAS_CHECK(!dates_.empty(), "store '{}' holds no dates", location());
    const auto it = std::lower_bound(dates_.begin(), dates_.end(), date);
    BOREAS_CHECK(it != dates_.end() && *it == date,
                 "store '{}' has no date {} (its dates run from {} to {} every {} s)", location(),
                 date.iso(), dates_.front().iso(), dates_.back().iso(), frequency_);
    return it - dates_.begin();
}

std::vector<double> AnemoiDataset::latitudes() const {
    auto values = group_.array("latitudes").read_doubles();
    BOREAS_CHECK(static_cast<std::int64_t>(values.size()) == points(),
                 "store '{}': array 'latitudes' has {} values for {} points", location(),
                 values.size(), points());
    return values;
}

std::vector<double> AnemoiDataset::longitudes() const {
    auto values = group_.array("longitudes").read_doubles();
    BOREAS_CHECK(static_cast<std::int64_t>(values.size()) == points(),
                 "store '{}': array 'longitudes' has {} values for {} points", location(),
                 values.size(), points());
    return values;
}

DatasetStatistics AnemoiDataset::statistics() const {
    DatasetStatistics s;
    auto read = [&](const char* name) {
        auto values = group_.array(name).read_doubles();
        BOREAS_CHECK(values.size() == variables_.size(),
                     "store '{}': array '{}' has {} values for {} variables", location(), name,
                     values.size(), variables_.size());
        return values;
    };
    s.mean = read("mean");
    s.stdev = read("stdev");
    s.minimum = read("minimum");
    s.maximum = read("maximum");
    return s;
}

void AnemoiDataset::read_date(std::int64_t index, std::span<float> out, StoredBytes* stored) const {
    BOREAS_CHECK(index >= 0 && index < static_cast<std::int64_t>(dates_.size()),
                 "store '{}': date index {} is outside its {} dates", location(), index,
                 dates_.size());
    BOREAS_CHECK(!is_missing(index), "store '{}': date {} (index {}) is a missing date", location(),
                 dates_[static_cast<std::size_t>(index)].iso(), index);
    const auto& m = data_.metadata();
    const std::int64_t start[4] = {index, 0, 0, 0};
    const std::int64_t count[4] = {1, m.shape[1], m.shape[2], m.shape[3]};
    const auto n = static_cast<std::size_t>(m.shape[1] * m.shape[2] * m.shape[3]);
    BOREAS_CHECK(out.size() == n, "store '{}': a buffer of {} values for a date of {}", location(),
                 out.size(), n);
    if (m.dtype == DType::float32) {
        data_.read_region(start, count, std::as_writable_bytes(out), stored);
        return;
    }
    std::vector<double> wide(n);
    data_.read_region(start, count, std::as_writable_bytes(std::span<double>(wide)));
    std::transform(wide.begin(), wide.end(), out.begin(),
                   [](double v) { return static_cast<float>(v); });
}

Tensor AnemoiDataset::read_sample(std::span<const std::int64_t> indices,
                                  std::span<const std::size_t> variables) const {
    const auto all = static_cast<std::int64_t>(variables_.size());
    std::vector<std::size_t> columns(variables.begin(), variables.end());
    if (columns.empty())
        for (std::int64_t v = 0; v < all; ++v) columns.push_back(static_cast<std::size_t>(v));
    for (const auto c : columns)
        BOREAS_CHECK(c < variables_.size(), "store '{}': variable index {} of {}", location(), c,
                     variables_.size());
    const auto dates = static_cast<std::int64_t>(indices.size());
    const auto members = ensembles(), grid = points();
    const auto width = static_cast<std::int64_t>(columns.size());
    Tensor sample({dates, members, grid, width});
    std::vector<float> chunk(static_cast<std::size_t>(all * members * grid));
    for (std::int64_t t = 0; t < dates; ++t) {
        read_date(indices[static_cast<std::size_t>(t)], chunk);
        float* out = sample.data() + t * members * grid * width;
        // (variables, ensembles, points) -> (ensembles, points, variables)
        for (std::int64_t e = 0; e < members; ++e)
            for (std::int64_t c = 0; c < width; ++c) {
                const float* in =
                    chunk.data() + (static_cast<std::int64_t>(columns[c]) * members + e) * grid;
                float* o = out + e * grid * width + c;
                for (std::int64_t p = 0; p < grid; ++p) o[p * width] = in[p];
            }
    }
    return sample;
}

std::optional<DatasetInput> parse_dataset_input(const std::string& text) {
    std::error_code ec;
    const auto at = text.rfind('@');
    if (at != std::string::npos && !std::filesystem::exists(text, ec)) {
        const std::filesystem::path store = text.substr(0, at);
        if (!std::filesystem::exists(store, ec)) return std::nullopt;
        return DatasetInput{store, DateTime::parse(text.substr(at + 1))};
    }
    if (std::filesystem::is_directory(text, ec)) return DatasetInput{text, std::nullopt};
    return std::nullopt;
}

}  // namespace boreas::data
