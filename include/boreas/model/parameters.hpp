#pragma once
/// The model's parameters by their anemoi state-dict names. Layers declare what they need (name,
/// shape, how to initialise); the store then fills everything either from a safetensors file of
/// anemoi weights (every declared tensor present with the right dtype and shape, nothing extra)
/// or from a seeded initialisation for benchmarks without weights.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "boreas/core/tensor.hpp"

namespace boreas::model {

enum class Init {
    linear_weight,  ///< U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's Linear default bound
    linear_bias,    ///< U(-1/sqrt(fan_in), ...) with the fan-in of the owning weight
    ones,           ///< LayerNorm weight
    zeros,          ///< LayerNorm bias, trainable node/edge tensors (anemoi's initialisation)
};

class ParameterStore {
public:
    /// Declares a parameter; returns a stable pointer to its tensor (filled by load or initialise).
    Tensor* declare(const std::string& name, std::vector<std::int64_t> shape, Init init,
                    std::int64_t fan_in = 0);

    /// Fills every declared tensor from the file; throws naming the file and the first missing,
    /// extra, mistyped or misshapen tensor. Tensors for which `known_extra` returns true may be
    /// present without being declared (anemoi's persistent buffers and aliases).
    void load(const std::filesystem::path& path,
              const std::function<bool(const std::string&)>& known_extra = {});
    /// Seeded initialisation; `noise` > 0 also perturbs ones/zeros tensors (tests need non-zero
    /// trainable tensors).
    void initialise(std::uint64_t seed, float noise = 0.0f);

    const Tensor& get(const std::string& name) const;
    /// Every declared name, sorted.
    std::vector<std::string> names() const;
    /// Overwrites a declared tensor's values (count must match); `origin` names the source in
    /// errors. Non-finite values are refused.
    void assign(const std::string& name, std::span<const float> values, const std::string& origin);
    std::int64_t parameter_count() const;
    std::size_t size() const { return entries_.size(); }
    /// Writes every parameter to a safetensors file (anemoi names), atomically, with `metadata`
    /// in the header.
    void save(const std::filesystem::path& path,
              const std::map<std::string, std::string>& metadata = {}) const;

  private:
    struct Entry {
        Tensor tensor;
        Init init;
        std::int64_t fan_in;
    };
    std::map<std::string, Entry> entries_;
};

}  // namespace boreas::model
