#pragma once
// Small helpers shared by the test suites.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "boreas/backends/backend.hpp"
#include "boreas/core/error.hpp"
#include "boreas/io/safetensors.hpp"

namespace boreas::testing_support {

/// The fixtures folder: BOREAS_TEST_DATA from the environment (a copy of the tree elsewhere: the
/// GPU host of tools/device/check.sh), else the one this build was configured with.
inline std::filesystem::path test_data_dir() {
    const char* folder = std::getenv("BOREAS_TEST_DATA");
    return folder && *folder ? std::filesystem::path(folder)
                             : std::filesystem::path(BOREAS_TEST_DATA);
}

/// The device the reference tests run their models on: BOREAS_TEST_DEVICE (cpu, cuda, cuda:N;
/// ctest's NAME@cuda tests set it), else the CPU.
inline backends::Device test_device() {
    const char* text = std::getenv("BOREAS_TEST_DEVICE");
    return text && *text ? backends::parse_device(text, "BOREAS_TEST_DEVICE") : backends::Device{};
}

/// The message of the boreas::Error that `action` throws, or "" if it throws none.
template <typename Action>
std::string error_of(Action&& action) {
    try {
        action();
    } catch (const boreas::Error& error) {
        return error.message();
    }
    return "";
}

/// A path in a per-process scratch folder under the system's temporary directory.
inline std::filesystem::path temp_path(const std::string& name) {
    const auto folder =
        std::filesystem::temp_directory_path() / ("boreas_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(folder);
    return folder / name;
}

/// Central differences of `loss` at `samples` random entries of `values` (step 1e-2 scaled to
/// the entry), each checked against `analytic` within `tolerance` x the largest |analytic|.
template <typename Loss>
void check_finite_differences(const std::string& name, std::span<float> values,
                              std::span<const float> analytic, Loss&& loss, int samples,
                              std::uint32_t seed, double floor, double tolerance = 3e-2) {
    double scale = floor;
    for (float g : analytic) scale = std::max(scale, static_cast<double>(std::abs(g)));
    std::mt19937 pick(seed);
    for (int s = 0; s < samples; ++s) {
        const std::size_t i = pick() % values.size();
        const float saved = values[i];
        const float step = 1e-2f * std::max(1.0f, std::abs(saved));
        values[i] = saved + step;
        const double plus = loss();
        values[i] = saved - step;
        const double minus = loss();
        values[i] = saved;
        EXPECT_NEAR(analytic[i], (plus - minus) / (2.0 * step), tolerance * scale)
            << name << "[" << i << "]";
    }
}

/// Central differences of `loss` along `directions` random +-1 directions over all of `values`,
/// each checked against the analytic directional derivative analytic . d within `tolerance` x
/// |analytic|_2 (d's entries are +-1, so |analytic . d| ~ |analytic|_2).
/// One entry at a time, a tensor whose gradient is spread thinly over many entries (a trainable
/// edge tensor) has entries whose finite difference is below the fp32 forward's rounding noise;
/// moving every entry at once lifts the signal by about sqrt(n) over that noise, and a gradient
/// stored at the wrong index still misses, as it is uncorrelated with d.
/// Every entry moves by a step relative to the tensor's RMS, at three sizes (3e-2, 1e-2, 3e-3):
/// the curvature error shrinks with the step and the rounding noise grows, and which wins
/// differs from tensor to tensor, so the step closest to the analytic value is the one checked.
/// A wrong gradient misses at every step.
template <typename Loss>
void check_directional_derivatives(const std::string& name, std::span<float> values,
                                   std::span<const float> analytic, Loss&& loss, int directions,
                                   std::uint32_t seed, double tolerance = 3e-2) {
    double norm = 0, squares = 0;
    for (float g : analytic) norm += static_cast<double>(g) * g;
    norm = std::sqrt(norm);
    for (float v : values) squares += static_cast<double>(v) * v;
    const double rms =
        std::sqrt(squares / static_cast<double>(std::max<std::size_t>(values.size(), 1)));
    const std::vector<float> saved(values.begin(), values.end());
    std::mt19937 pick(seed);
    for (int k = 0; k < directions; ++k) {
        std::vector<float> d(values.size());
        for (auto& v : d) v = (pick() & 1u) ? 1.0f : -1.0f;
        double along = 0;
        for (std::size_t i = 0; i < d.size(); ++i) along += static_cast<double>(analytic[i]) * d[i];
        double best = 0;
        std::ostringstream tried;  // (string += " " + to_string trips GCC 12's -Wrestrict)
        for (const double relative_step : {3e-2, 1e-2, 3e-3}) {
            const auto step = static_cast<float>(relative_step * (rms > 0 ? rms : 1.0));
            const auto shifted = [&](float sign) {
                for (std::size_t i = 0; i < d.size(); ++i)
                    values[i] = saved[i] + sign * step * d[i];
                return loss();
            };
            const double plus = shifted(1.0f);
            const double minus = shifted(-1.0f);
            const double estimate = (plus - minus) / (2.0 * static_cast<double>(step));
            if (relative_step == 3e-2 || std::abs(estimate - along) < std::abs(best - along))
                best = estimate;
            tried << " " << estimate;
        }
        std::copy(saved.begin(), saved.end(), values.begin());
        EXPECT_NEAR(along, best, tolerance * norm + 1e-9)
            << name << " direction " << k << " (|gradient| " << norm
            << "; finite differences at the three steps:" << tried.str() << ")";
    }
}

/// The variant's complete weights file. Some fixtures store only what differs from another
/// variant ("kind": "delta", "base", "drop_prefixes"); assemble the whole file as a user has it.
inline std::filesystem::path complete_weights(const std::string& name) {
    const auto path = test_data_dir() / "model" / (name + ".weights.safetensors");
    const boreas::io::SafetensorsReader delta(path);
    const auto meta = nlohmann::json::parse(delta.metadata().at("boreas"));
    if (meta.value("kind", "") != "delta") return path;
    // The base may itself be a delta (gnn_mappers -> gnn -> graphtransformer).
    const auto base_file = meta.at("base").get<std::string>();
    const auto suffix = std::string(".weights.safetensors");
    const boreas::io::SafetensorsReader base(
        complete_weights(base_file.substr(0, base_file.size() - suffix.size())));
    boreas::io::SafetensorsWriter writer;
    auto copy = [&](const boreas::io::SafetensorsReader& from, const std::string& tensor) {
        const auto& info = from.info(tensor);
        if (info.dtype == boreas::io::DType::I64) {
            writer.add<std::int64_t>(tensor, info.shape, from.view<std::int64_t>(tensor));
        } else {
            writer.add<float>(tensor, info.shape, from.view<float>(tensor));
        }
    };
    for (const auto& [tensor, info] : base.tensors()) {
        bool dropped = delta.contains(tensor);
        for (const auto& prefix : meta.value("drop_prefixes", std::vector<std::string>{}))
            dropped = dropped || tensor.rfind(prefix, 0) == 0;
        if (!dropped) copy(base, tensor);
    }
    for (const auto& [tensor, info] : delta.tensors()) copy(delta, tensor);
    // Per process: ctest runs tests in parallel, and two may complete the same fixture at once.
    const auto out =
        std::filesystem::temp_directory_path() /
        ("boreas_fixture_" + name + "_" + std::to_string(::getpid()) + ".weights.safetensors");
    writer.write(out);
    return out;
}

}  // namespace boreas::testing_support
