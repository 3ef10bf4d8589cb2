// Built-in model configs. The AIFS-shaped ones share one variable list (spec/model.md section 5),
// bounding list and normaliser; they differ in grids and sizes.
#include "builtin_configs.hpp"

#include <fmt/format.h>

namespace boreas::model::detail {
namespace {

// AIFS-single 1.0 dataset variables in dataset order; boundings as spec/model.md section 5 reports
// them (a secondary source: check config.model.bounding of the checkpoint you run).
constexpr const char* kAifsData = R"yaml(data:
  variables: VARIABLES
  forcing: FORCING
  diagnostic: DIAGNOSTIC
  normalizer:
    default: mean-std
    std: [tp]
    max: [sdor, slor, z]
    none: [cos_latitude, sin_latitude, cos_longitude, sin_longitude, cos_julian_day, sin_julian_day, cos_local_time, sin_local_time, insolation, lsm]
training:
  multistep_input: 2
)yaml";

constexpr const char* kAifsBounding = R"yaml(  bounding:
    - {_target_: anemoi.models.layers.bounding.ReluBounding, variables: [tp, ro, tcw, ssrd, q_50, q_100, q_150, q_200, q_250, q_300, q_400, q_500, q_600, q_700, q_850, q_925, q_1000]}
    - {_target_: anemoi.models.layers.bounding.HardtanhBounding, variables: [tcc, swvl1, swvl2], min_val: 0.0, max_val: 1.0}
    - {_target_: anemoi.models.layers.bounding.FractionBounding, variables: [cp, sf], min_val: 0.0, max_val: 1.0, total_var: tp}
    - {_target_: anemoi.models.layers.bounding.FractionBounding, variables: [lcc, mcc, hcc], min_val: 0.0, max_val: 1.0, total_var: tcc}
)yaml";

struct Shape {
    const char* comment;
    int channels, heads, layers, chunks, window;
    const char* data_grid;
    const char* hidden_grid;
};

std::string aifs_shaped(const Shape& s) {
    std::string data = kAifsData;
    const std::pair<const char*, const char*> lists[] = {
        {"VARIABLES",
         "[q_50, q_100, q_150, q_200, q_250, q_300, q_400, q_500, q_600, q_700, q_850, q_925, "
         "q_1000, t_50, t_100, t_150, t_200, t_250, t_300, t_400, t_500, t_600, t_700, t_850, "
         "t_925, t_1000, u_50, u_100, u_150, u_200, u_250, u_300, u_400, u_500, u_600, u_700, "
         "u_850, u_925, u_1000, v_50, v_100, v_150, v_200, v_250, v_300, v_400, v_500, v_600, "
         "v_700, v_850, v_925, v_1000, w_50, w_100, w_150, w_200, w_250, w_300, w_400, w_500, "
         "w_600, w_700, w_850, w_925, w_1000, z_50, z_100, z_150, z_200, z_250, z_300, z_400, "
         "z_500, z_600, z_700, z_850, z_925, z_1000, 10u, 10v, 2d, 2t, lsm, msl, sdor, skt, slor, "
         "sp, tcw, z, cp, tp, cos_latitude, sin_latitude, cos_longitude, sin_longitude, "
         "cos_julian_day, sin_julian_day, cos_local_time, sin_local_time, insolation, 100u, 100v, "
         "hcc, lcc, mcc, ro, sf, ssrd, stl1, stl2, strd, swvl1, swvl2, tcc]"},
        {"FORCING",
         "[lsm, sdor, slor, z, cos_latitude, sin_latitude, cos_longitude, sin_longitude, "
         "cos_julian_day, sin_julian_day, cos_local_time, sin_local_time, insolation]"},
        {"DIAGNOSTIC", "[cp, tp, 100u, 100v, hcc, lcc, mcc, ro, sf, ssrd, strd, tcc]"}};
    for (const auto& [key, value] : lists)
        data.replace(data.find(key), std::string(key).size(), value);
    return fmt::format(R"yaml(# {0}
model:
  num_channels: {1}
  latent_skip: true
  processor:
    _target_: anemoi.models.layers.processor.TransformerProcessor
    num_layers: {3}
    num_chunks: {4}
    num_heads: {2}
    window_size: {5}
    mlp_hidden_ratio: 4
  encoder: {{_target_: anemoi.models.layers.mapper.GraphTransformerForwardMapper, num_heads: {2}, mlp_hidden_ratio: 4, num_chunks: 1}}
  decoder: {{_target_: anemoi.models.layers.mapper.GraphTransformerBackwardMapper, num_heads: {2}, mlp_hidden_ratio: 4, num_chunks: 1}}
  trainable_parameters: {{data: 8, hidden: 8, data2hidden: 8, hidden2data: 8, hidden2hidden: 8}}
{6}{7}graph:
  data_grid: {8}
  hidden_grid: {9}
  cutoff_factor: 0.6
  num_nearest_neighbours: 3
)yaml",
                       s.comment, s.channels, s.heads, s.layers, s.chunks, s.window, kAifsBounding,
                       data, s.data_grid, s.hidden_grid);
}

constexpr const char* kTiny =
    R"yaml(# tiny: the test model (spec/model.md section 12); forward well under a second.
model:
  num_channels: 32
  latent_skip: true
  processor:
    _target_: anemoi.models.layers.processor.TransformerProcessor
    num_layers: 2
    num_chunks: 2
    num_heads: 4
    window_size: 16
    mlp_hidden_ratio: 4
  encoder: {_target_: anemoi.models.layers.mapper.GraphTransformerForwardMapper, num_heads: 4, mlp_hidden_ratio: 4, num_chunks: 1}
  decoder: {_target_: anemoi.models.layers.mapper.GraphTransformerBackwardMapper, num_heads: 4, mlp_hidden_ratio: 4, num_chunks: 1}
  trainable_parameters: {data: 2, hidden: 2, data2hidden: 2, hidden2data: 2, hidden2hidden: 2}
  bounding:
    - {_target_: anemoi.models.layers.bounding.ReluBounding, variables: [tp]}
    - {_target_: anemoi.models.layers.bounding.FractionBounding, variables: [cp], min_val: 0.0, max_val: 1.0, total_var: tp}
    - {_target_: anemoi.models.layers.bounding.HardtanhBounding, variables: [sp], min_val: -1.0, max_val: 1.0}
data:
  variables: [z_500, t_850, 2t, sp, lsm, cos_latitude, tp, cp]
  forcing: [lsm, cos_latitude]
  diagnostic: [tp, cp]
  normalizer: {default: mean-std, std: [tp, cp], min-max: [sp], max: [z_500], none: [lsm, cos_latitude], remap: {cp: tp}}
training:
  multistep_input: 2
graph:
  data_grid: O16
  hidden_grid: O4
  cutoff_factor: 0.6
  num_nearest_neighbours: 3
)yaml";

}  // namespace

const std::vector<BuiltinConfig>& builtin_configs() {
    static const std::vector<BuiltinConfig> configs = {
        {"tiny", kTiny},
        {"small", aifs_shaped({"small: the default benchmark (O48 data, O16 hidden, 256 channels); "
                               "forward in seconds on 2 cores.",
                               256, 8, 4, 2, 128, "O48", "O16"})},
        {"o96", aifs_shaped(
                    {"o96: O96 data grid (40,320 points), O48 hidden grid, 512 channels, 8 layers.",
                     512, 8, 8, 2, 256, "O96", "O48"})},
        {"aifs-n320",
         aifs_shaped({"aifs-n320: the AIFS-single 1.0 shape: N320 data, O96 hidden, 1024 channels, "
                      "16 heads, 16 layers, window 512, 103 inputs / 102 outputs, 2 input steps.",
                      1024, 16, 16, 2, 512, "N320", "O96"})},
    };
    return configs;
}

}  // namespace boreas::model::detail
