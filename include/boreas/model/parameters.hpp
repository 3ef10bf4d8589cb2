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

    /// bf16 inference: each of `tensors` (declared here) is kept as bf16 bits only, rounded to
    /// nearest even, and its fp32 storage released (the Tensor stays, empty). Linear layers then
    /// read the bits (bf16_bits). A store holding bf16 tensors is for the bf16 forward only: it
    /// refuses load, initialise, assign and save.
    void keep_as_bf16(const std::vector<const Tensor*>& tensors);
    /// The bf16 bits kept for `tensor`, or null where it is fp32.
    const std::uint16_t* bf16_bits(const Tensor* tensor) const;
    bool holds_bf16() const { return !bf16_.empty(); }
    /// Moves every tensor's values, and the bf16 bits kept for them, to `memory` (null: the host
    /// heap); the tensors stay at their addresses (layers hold pointers to them).
    void move_to(MemoryResource* memory);

  private:
    struct Entry {
        Tensor tensor;
        Init init;
        std::int64_t fan_in;
        Bf16Buffer bf16;            ///< keep_as_bf16: the values, when tensor is released
        std::int64_t released = 0;  ///< the released tensor's element count
    };
    void check_fp32(const char* what) const;
    std::map<std::string, Entry> entries_;
    std::map<const Tensor*, const Entry*> bf16_;
};

}  // namespace boreas::model
