#include "boreas/model/normaliser.hpp"

#include <algorithm>
#include <cmath>

#include "boreas/core/error.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/model/config.hpp"

namespace boreas::model {
namespace {

std::vector<double> read_vector(const io::SafetensorsReader& file, const std::string& name,
                                std::size_t count) {
    std::string key = name;
    if (!file.contains(key) && file.contains("statistics." + name)) key = "statistics." + name;
    const auto& info = file.info(key);
    BOREAS_CHECK(info.numel() == static_cast<std::int64_t>(count),
                 "statistics '{}': '{}' has {} values, expected {} (one per data.variables entry)",
                 file.path().string(), key, info.numel(), count);
    if (info.dtype == io::DType::F64) {
        const auto v = file.view<double>(key);
        return {v.begin(), v.end()};
    }
    const auto v = file.view<float>(key);
    return {v.begin(), v.end()};
}

std::size_t index_in(const std::vector<std::string>& names, const std::string& name) {
    return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

}  // namespace

Statistics read_statistics(const std::filesystem::path& path, std::size_t variables) {
    io::SafetensorsReader file(path);
    Statistics s;
    s.mean = read_vector(file, "mean", variables);
    s.stdev = read_vector(file, "stdev", variables);
    s.minimum = read_vector(file, "minimum", variables);
    s.maximum = read_vector(file, "maximum", variables);
    return s;
}

Normaliser::Normaliser(const ModelConfig& config, const Statistics& statistics) {
    const auto& variables = config.variables;
    const auto n = variables.size();
    BOREAS_CHECK(statistics.mean.size() == n && statistics.stdev.size() == n &&
                     statistics.minimum.size() == n && statistics.maximum.size() == n,
                 "statistics cover {} variables, the config has {}", statistics.mean.size(), n);
    mul_.resize(n);
    add_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto& name = variables[i];
        auto method_it = config.normaliser.method_of.find(name);
        const std::string method = method_it == config.normaliser.method_of.end()
                                       ? config.normaliser.default_method
                                       : method_it->second;
        std::size_t stats = i;
        if (auto remap = config.normaliser.remap.find(name); remap != config.normaliser.remap.end())
            stats = index_in(variables, remap->second);
        const double mean = statistics.mean[stats], stdev = statistics.stdev[stats];
        const double minimum = statistics.minimum[stats], maximum = statistics.maximum[stats];
        double mul = 1, add = 0;
        if (method == "mean-std" || method == "std") {
            BOREAS_CHECK(stdev > 0 && std::isfinite(stdev),
                         "normaliser: variable '{}' ({}) has stdev {}", name, method, stdev);
            mul = 1.0 / stdev;
            add = method == "mean-std" ? -mean / stdev : 0.0;
        } else if (method == "min-max") {
            BOREAS_CHECK(maximum > minimum,
                         "normaliser: variable '{}' (min-max) has minimum {} >= "
                         "maximum {}",
                         name, minimum, maximum);
            mul = 1.0 / (maximum - minimum);
            add = -minimum / (maximum - minimum);
        } else if (method == "max") {
            BOREAS_CHECK(maximum != 0, "normaliser: variable '{}' (max) has maximum 0", name);
            mul = 1.0 / maximum;
        } else {
            BOREAS_CHECK(method == "none", "normaliser: unknown method '{}' for '{}'", method,
                         name);
        }
        mul_[i] = static_cast<float>(mul);
        add_[i] = static_cast<float>(add);
    }
    index_columns(config);
}

Normaliser::Normaliser(const ModelConfig& config, std::vector<float> mul, std::vector<float> add,
                       const std::string& origin)
    : mul_(std::move(mul)), add_(std::move(add)) {
    BOREAS_CHECK(mul_.size() == config.variables.size() && add_.size() == config.variables.size(),
                 "{}: normaliser has {} and {} values, expected {} (one per dataset variable)",
                 origin, mul_.size(), add_.size(), config.variables.size());
    for (std::size_t i = 0; i < mul_.size(); ++i)
        BOREAS_CHECK(std::isfinite(mul_[i]) && std::isfinite(add_[i]) && mul_[i] != 0,
                     "{}: normaliser of '{}' is x * {} + {}", origin, config.variables[i], mul_[i],
                     add_[i]);
    index_columns(config);
}

void Normaliser::index_columns(const ModelConfig& config) {
    const auto& variables = config.variables;
    for (const auto& v : config.input_variables()) input_index_.push_back(index_in(variables, v));
    for (const auto& v : config.output_variables()) output_index_.push_back(index_in(variables, v));
}

void Normaliser::normalise_input(Tensor& x) const {
    const auto width = static_cast<std::int64_t>(input_index_.size());
    BOREAS_CHECK(x.cols() == width, "normaliser: input has {} variables, expected {}", x.cols(),
                 width);
    for (std::int64_t r = 0; r < x.rows(); ++r) {
        float* row = x.row(r);
        for (std::int64_t c = 0; c < width; ++c) {
            const auto i = input_index_[c];
            const float scaled = row[c] * mul_[i];
            row[c] = scaled + add_[i];
        }
    }
}

void Normaliser::denormalise_output(Tensor& y) const {
    const auto width = static_cast<std::int64_t>(output_index_.size());
    BOREAS_CHECK(y.cols() == width, "normaliser: output has {} variables, expected {}", y.cols(),
                 width);
    for (std::int64_t r = 0; r < y.rows(); ++r) {
        float* row = y.row(r);
        for (std::int64_t c = 0; c < width; ++c) {
            const auto i = output_index_[c];
            row[c] = (row[c] - add_[i]) / mul_[i];
        }
    }
}

}  // namespace boreas::model
