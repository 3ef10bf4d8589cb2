#include "boreas/model/parameters.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>

#include "boreas/core/error.hpp"
#include "boreas/io/safetensors.hpp"

namespace boreas::model {

Tensor* ParameterStore::declare(const std::string& name, std::vector<std::int64_t> shape, Init init,
                                std::int64_t fan_in) {
    BOREAS_CHECK(!entries_.count(name), "parameter '{}' declared twice", name);
    auto [it, inserted] =
        entries_.emplace(name, Entry{Tensor(std::move(shape)), init, fan_in, {}, 0});
    return &it->second.tensor;
}

void ParameterStore::load(const std::filesystem::path& path,
                          const std::function<bool(const std::string&)>& known_extra) {
    check_fp32("loaded into");
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
    check_fp32("initialised");
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
    check_fp32("assigned");
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
    for (const auto& [name, entry] : entries_) count += entry.tensor.numel() + entry.released;
    return count;
}

void ParameterStore::check_fp32(const char* what) const {
    BOREAS_CHECK(!holds_bf16(),
                 "the parameters are kept in bf16 for inference: they cannot be {} (keep the fp32 "
                 "weights for that)",
                 what);
}

void ParameterStore::keep_as_bf16(const std::vector<const Tensor*>& tensors) {
    for (const Tensor* tensor : tensors) {
        auto it = std::find_if(entries_.begin(), entries_.end(),
                               [&](const auto& named) { return &named.second.tensor == tensor; });
        BOREAS_CHECK(it != entries_.end(), "keep_as_bf16: a tensor this store did not declare");
        Entry& entry = it->second;
        if (!entry.bf16.empty()) continue;
        const auto values = entry.tensor.values();
        entry.bf16 = Bf16Buffer(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) {
            const std::uint32_t bits = std::bit_cast<std::uint32_t>(values[i]);  // finite: checked
            entry.bf16.data()[i] =
                static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
        }
        entry.released = entry.tensor.numel();
        entry.tensor = Tensor();
        bf16_[&entry.tensor] = &entry;
    }
}

const std::uint16_t* ParameterStore::bf16_bits(const Tensor* tensor) const {
    if (bf16_.empty()) return nullptr;
    const auto it = bf16_.find(tensor);
    return it == bf16_.end() ? nullptr : it->second->bf16.data();
}

void ParameterStore::save(const std::filesystem::path& path,
                          const std::map<std::string, std::string>& metadata) const {
    check_fp32("saved");
    io::SafetensorsWriter writer;
    for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
    for (const auto& [name, entry] : entries_)
        writer.add<float>(name, entry.tensor.shape(), entry.tensor.values());
    writer.write(path);
}

void ParameterStore::move_to(MemoryResource* memory) {
    for (auto& [name, entry] : entries_) {
        if (entry.tensor.numel() > 0) entry.tensor.move_to(memory);
        entry.bf16.move_to(memory);
    }
}

}  // namespace boreas::model
