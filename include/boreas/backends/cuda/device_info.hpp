#pragma once
/// What the CUDA runtime sees: versions and devices. Built only with BOREAS_ENABLE_CUDA; it
/// reports "no device" rather than failing on a machine without a GPU.

#include <nlohmann/json.hpp>

namespace boreas::backends::cuda {

nlohmann::ordered_json device_report();

}  // namespace boreas::backends::cuda
