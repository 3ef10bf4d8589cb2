#include "boreas/model/parameters.hpp"

#include <cmath>
#include <random>

#include "boreas/core/error.hpp"
#include "boreas/io/safetensors.hpp"

namespace boreas::model {

Tensor* ParameterStore::declare(const std::string& name, std::vector<std::int64_t> shape, Init init,
                                std::int64_t fan_in) {
    BOREAS_CHECK(!entries_.count(name), "parameter '{}' declared twice", name);
    auto [it, inserted] = entries_.emplace(name, Entry{Tensor(std::move(shape)), init, fan_in});
    return &it->second.tensor;
}

void ParameterStore::load(const std::filesystem::path& path,
                          const std::function<bool(const std::string&)>& known_extra) {
    const std::string file = path.string();
    io::SafetensorsReader reader(path);
    std::vector<std::string> missing, extra;
    for (const auto& [name, entry] : entries_)
        if (!reader.contains(name)) missing.push_back(name);
    for (const auto& [name, info] : reader.tensors())
        if (!entries_.count(name) && !(known_extra && known_extra(name))) extra.push_back(name);
    auto list = [](const std::vector<std::string>& names) {
        std::string text;
        for (std::size_t i = 0; i < names.size() && i < 5; ++i) text += (i ? ", " : "") + names[i];
        if (names.size() > 5) text += fmt::format(", ... ({} in all)", names.size());
        return text;
    };
    BOREAS_CHECK(missing.empty(), "weights '{}' lack {} tensor(s) the model needs: {}", file,
                 missing.size(), list(missing));
    BOREAS_CHECK(extra.empty(), "weights '{}' have {} tensor(s) this model does not use: {}", file,
                 extra.size(), list(extra));
    for (auto& [name, entry] : entries_) {
        const auto values = reader.view<float>(name, entry.tensor.shape());
        std::copy(values.begin(), values.end(), entry.tensor.data());
        for (std::size_t i = 0; i < values.size(); ++i)
            BOREAS_CHECK(std::isfinite(values[i]),
                         "weights '{}': tensor '{}' has a non-finite value "
                         "at flat index {}",
                         file, name, i);
    }
}

void ParameterStore::initialise(std::uint64_t seed, float noise) {
    std::uint64_t index = 0;
    for (auto& [name, entry] : entries_) {
        // One generator per tensor, seeded from (seed, declaration order): reproducible and
        // independent of which other tensors exist.
        std::mt19937_64 generator(seed * 0x9E3779B97F4A7C15ULL + (++index));
        auto& t = entry.tensor;
        const float bound =
            entry.fan_in > 0 ? 1.0f / std::sqrt(static_cast<float>(entry.fan_in)) : 0.0f;
        std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (auto& value : t.storage()) {
            switch (entry.init) {
                case Init::linear_weight:
                case Init::linear_bias:
                    value = bound * uniform(generator);
                    break;
                case Init::ones:
                    value = 1.0f + noise * normal(generator);
                    break;
                case Init::zeros:
                    value = noise * normal(generator);
                    break;
            }
        }
    }
}

const Tensor& ParameterStore::get(const std::string& name) const {
    auto it = entries_.find(name);
    BOREAS_CHECK(it != entries_.end(), "no parameter '{}'", name);
    return it->second.tensor;
}

std::vector<std::string> ParameterStore::names() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_) out.push_back(name);
    return out;
}

void ParameterStore::assign(const std::string& name, std::span<const float> values,
                            const std::string& origin) {
    auto it = entries_.find(name);
    BOREAS_CHECK(it != entries_.end(), "no parameter '{}'", name);
    auto& tensor = it->second.tensor;
    BOREAS_CHECK(static_cast<std::int64_t>(values.size()) == tensor.numel(),
                 "{}: {} values for '{}', expected {} (shape {})", origin, values.size(), name,
                 tensor.numel(), tensor.shape_string());
    for (std::size_t i = 0; i < values.size(); ++i)
        BOREAS_CHECK(std::isfinite(values[i]), "{}: non-finite value at flat index {}", origin, i);
    std::copy(values.begin(), values.end(), tensor.data());
}

std::int64_t ParameterStore::parameter_count() const {
    std::int64_t count = 0;
    for (const auto& [name, entry] : entries_) count += entry.tensor.numel();
    return count;
}

void ParameterStore::save(const std::filesystem::path& path,
                          const std::map<std::string, std::string>& metadata) const {
    io::SafetensorsWriter writer;
    for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
    for (const auto& [name, entry] : entries_)
        writer.add<float>(name, entry.tensor.shape(), entry.tensor.values());
    writer.write(path);
}

}  // namespace boreas::model
