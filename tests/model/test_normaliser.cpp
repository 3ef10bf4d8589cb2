// The normaliser against anemoi-models 0.18's InputNormalizer (tests/data/model/normaliser,
// made by tools/reference/make_normaliser_fixture.py): mul/add and both directions bit for bit.
#include <gtest/gtest.h>

#include <filesystem>

#include "boreas/core/error.hpp"
#include "boreas/io/safetensors.hpp"
#include "boreas/model/config.hpp"
#include "boreas/model/normaliser.hpp"

namespace {

using boreas::Tensor;
const std::filesystem::path kFile = std::filesystem::path(BOREAS_TEST_DATA) / "model" / "normaliser.safetensors";

Tensor read(const boreas::io::SafetensorsReader& file, const std::string& name) {
    const auto values = file.view<float>(name);
    return Tensor(file.info(name).shape, std::vector<float>(values.begin(), values.end()));
}

TEST(Normaliser, MatchesAnemoiBitForBit) {
    // The tiny config carries the fixture's normaliser settings (mean-std default, std for tp and
    // cp with cp remapped to tp's statistics, min-max sp, max z_500, none for the forcings).
    const auto config = boreas::model::load_config("tiny");
    const boreas::io::SafetensorsReader file(kFile);
    const boreas::model::Normaliser normaliser(config, boreas::model::read_statistics(kFile, 8));
    const auto mul = file.view<float>("norm_mul");
    const auto add = file.view<float>("norm_add");
    ASSERT_EQ(normaliser.mul().size(), mul.size());
    for (std::size_t i = 0; i < mul.size(); ++i) {
        EXPECT_EQ(normaliser.mul()[i], mul[i]) << config.variables[i];
        EXPECT_EQ(normaliser.add()[i], add[i]) << config.variables[i];
    }

    // Forward on the model's input columns (dataset order minus diagnostics = the first six).
    const Tensor physical = read(file, "x_physical");      // [2, 2, 1, 50, 8]: all variables
    const Tensor expected = read(file, "x_normalised");
    Tensor input({physical.rows(), 6});
    for (std::int64_t r = 0; r < physical.rows(); ++r)
        std::copy_n(physical.row(r), 6, input.row(r));
    normaliser.normalise_input(input);
    for (std::int64_t r = 0; r < input.rows(); ++r)
        for (int c = 0; c < 6; ++c)
            ASSERT_EQ(input.row(r)[c], expected.row(r)[c]) << "row " << r << " column " << c;

    // Inverse on the model's output columns (z_500, t_850, 2t, sp, tp, cp).
    Tensor output = read(file, "y_normalised");
    const Tensor output_physical = read(file, "y_physical");
    normaliser.denormalise_output(output);
    for (std::int64_t i = 0; i < output.numel(); ++i)
        ASSERT_EQ(output.values()[i], output_physical.values()[i]) << "index " << i;
}

TEST(Normaliser, BadStatisticsAreRefused) {
    auto config = boreas::model::load_config("tiny");
    boreas::model::Statistics statistics{std::vector<double>(8, 0.0), std::vector<double>(8, 1.0),
                                         std::vector<double>(8, 0.0), std::vector<double>(8, 1.0)};
    statistics.stdev[1] = 0;  // t_850 is mean-std
    EXPECT_THROW(boreas::model::Normaliser normaliser(config, statistics), boreas::Error);
    EXPECT_THROW(boreas::model::read_statistics(kFile, 9), boreas::Error);
    EXPECT_THROW(boreas::model::load_config("tiny", {"data.normalizer.std=[tp, snow]"}), boreas::Error);
}

}  // namespace
