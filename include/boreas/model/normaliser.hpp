#pragma once
/// anemoi's InputNormalizer: per dataset variable, x_norm = x * mul + add, with mul/add from the
/// dataset statistics and the variable's method (mean-std, std, min-max, max, none), computed in
/// double and stored as float32, applied as two float32 operations; inverse (x - add) / mul.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "boreas/core/tensor.hpp"

namespace boreas::model {

struct ModelConfig;

struct NormaliserConfig {
    std::string default_method = "mean-std";
    std::map<std::string, std::string> method_of;  ///< variable -> method, from the method lists
    std::map<std::string, std::string> remap;      ///< variable -> variable whose statistics it uses
};

/// Dataset statistics over data.variables (dataset order), as anemoi-datasets stores them.
struct Statistics {
    std::vector<double> mean, stdev, minimum, maximum;
};

/// Reads `mean`, `stdev`, `minimum`, `maximum` (F64 or F32, one value per dataset variable) from
/// a safetensors file; `statistics.` prefixed names are accepted too.
Statistics read_statistics(const std::filesystem::path& path, std::size_t variables);

class Normaliser {
public:
    Normaliser(const ModelConfig& config, const Statistics& statistics);
    /// From anemoi's InputNormalizer buffers (_norm_mul, _norm_add over data.variables), as a
    /// checkpoint carries them; `origin` names them in errors.
    Normaliser(const ModelConfig& config, std::vector<float> mul, std::vector<float> add,
               const std::string& origin);

    const std::vector<float>& mul() const { return mul_; }
    const std::vector<float>& add() const { return add_; }

    /// In place on [..., V_in] with the model's input variables in their order.
    void normalise_input(Tensor& x) const;
    /// In place on [..., V_out] with the model's output variables in their order.
    void denormalise_output(Tensor& y) const;

private:
  void index_columns(const ModelConfig& config);

  std::vector<float> mul_, add_;           // over dataset variables
  std::vector<std::size_t> input_index_;   // dataset index of each input column
  std::vector<std::size_t> output_index_;  // dataset index of each output column
};

}  // namespace boreas::model
