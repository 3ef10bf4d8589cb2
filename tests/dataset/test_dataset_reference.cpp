// The Zarr reader against stores written by anemoi-datasets' own `create` and by zarr-python
// (tools/reference/make_dataset_fixtures.py): every array of every store decodes to the bytes
// zarr-python reads (SHA-256 per first-axis index, exact sample values), and the anemoi stores
// give open_dataset's variables, dates, missing dates, statistics, coordinates and fields.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "boreas/core/datetime.hpp"
#include "boreas/data/dataset.hpp"
#include "boreas/data/zarr.hpp"
#include "support/sha256.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using boreas::data::AnemoiDataset;
using boreas::data::DType;
using boreas::data::ZarrArray;
using boreas::data::ZarrGroup;
using boreas::testing_support::error_of;
using boreas::testing_support::sha256;
using json = nlohmann::json;

namespace {

const fs::path kStores = fs::path(BOREAS_TEST_DATA) / "datasets";

json expected() {
    std::ifstream in(kStores / "expected.json");
    return json::parse(in);
}

/// The bytes of `array[index]` (the whole first-axis slice), native order.
std::vector<std::byte> slice(const ZarrArray& array, std::int64_t index) {
    const auto& m = array.metadata();
    std::vector<std::int64_t> start(m.shape.size(), 0), count = m.shape;
    start[0] = index;
    count[0] = 1;
    std::int64_t n = m.item_bytes;
    for (std::size_t d = 1; d < m.shape.size(); ++d) n *= m.shape[d];
    std::vector<std::byte> bytes(static_cast<std::size_t>(n));
    array.read_region(start, count, bytes);
    return bytes;
}

/// One element as a double (numbers) or seconds since the epoch (datetimes).
double element(const ZarrArray& array, const std::vector<std::int64_t>& at) {
    const auto& m = array.metadata();
    const std::vector<std::int64_t> count(at.size(), 1);
    std::vector<std::byte> bytes(static_cast<std::size_t>(m.item_bytes));
    array.read_region(at, count, bytes);
    switch (m.dtype) {
        case DType::float32: {
            float v;
            std::memcpy(&v, bytes.data(), 4);
            return v;
        }
        case DType::float64: {
            double v;
            std::memcpy(&v, bytes.data(), 8);
            return v;
        }
        case DType::int64:
        case DType::datetime64: {
            std::int64_t v;
            std::memcpy(&v, bytes.data(), 8);
            return static_cast<double>(v * m.datetime_unit_seconds_num /
                                       m.datetime_unit_seconds_den);
        }
        case DType::int32: {
            std::int32_t v;
            std::memcpy(&v, bytes.data(), 4);
            return v;
        }
        case DType::uint8:
        case DType::boolean:
            return static_cast<double>(std::to_integer<unsigned>(bytes[0]));
        default:
            ADD_FAILURE() << "dtype " << m.dtype_text << " not sampled";
            return 0;
    }
}

bool same(double ours, double theirs) {
    return (std::isnan(ours) && std::isnan(theirs)) || ours == theirs;
}

double expected_value(const json& value, const ZarrArray& array) {
    if (value.is_number()) return value.get<double>();
    const auto text = value.get<std::string>();
    if (array.metadata().dtype == DType::datetime64)
        return static_cast<double>(boreas::DateTime::parse(text).seconds);
    return std::strtod(text.c_str(), nullptr);  // float.hex, nan, inf
}

TEST(DatasetReference, EveryStoreDecodesAsZarrPythonReadsIt) {
    const auto all = expected();
    int arrays = 0;
    for (const auto& [store, info] : all.at("stores").items()) {
        SCOPED_TRACE(store);
        const ZarrGroup group(kStores / store);
        for (const auto& [name, want] : info.at("arrays").items()) {
            SCOPED_TRACE(name);
            const auto array = group.array(name);
            const auto& m = array.metadata();
            const auto& zarray = want.at("zarray");
            EXPECT_EQ(m.shape, zarray.at("shape").get<std::vector<std::int64_t>>());
            EXPECT_EQ(m.chunks, zarray.at("chunks").get<std::vector<std::int64_t>>());
            EXPECT_EQ(m.dtype_text, zarray.at("dtype").get<std::string>());
            EXPECT_EQ(m.compressor, zarray.at("compressor").is_null()
                                        ? ""
                                        : zarray["compressor"].at("id").get<std::string>());
            if (want.contains("sha256_per_index")) {
                const auto& hashes = want["sha256_per_index"];
                ASSERT_EQ(static_cast<std::int64_t>(hashes.size()), m.shape[0]);
                for (std::int64_t i = 0; i < m.shape[0]; ++i)
                    EXPECT_EQ(sha256(std::span<const std::byte>(slice(array, i))),
                              hashes[static_cast<std::size_t>(i)])
                        << "index " << i;
            }
            if (want.contains("sha256")) {
                std::vector<std::byte> whole(static_cast<std::size_t>(m.elements() * m.item_bytes));
                const std::vector<std::int64_t> start(m.shape.size(), 0);
                array.read_region(start, m.shape, whole);
                EXPECT_EQ(sha256(std::span<const std::byte>(whole)),
                          want["sha256"].get<std::string>());
            }
            for (const auto& sample : want.value("samples", json::array())) {
                const auto at = sample[0].get<std::vector<std::int64_t>>();
                const double ours = element(array, at);
                const double theirs = expected_value(sample[1], array);
                EXPECT_TRUE(same(ours, theirs)) << "at " << sample[0].dump() << ": Boreas " << ours
                                                << ", zarr-python " << sample[1].dump();
            }
            ++arrays;
        }
    }
    EXPECT_GE(arrays, 30);
    // Python's json writes NaN and Infinity bare; they read as strings.
    const auto& nan_example = all.at("zattrs_nan_example");
    const auto store = nan_example.at("store").get<std::string>();
    const ZarrGroup group(kStores / fs::path(store).parent_path());
    EXPECT_EQ(group.attributes().at("odd"), "NaN");
    EXPECT_EQ(group.attributes().at("big"), "Infinity");
    EXPECT_EQ(group.attributes().at("small"), "-Infinity");
}

std::vector<double> from_hex(const json& list) {
    std::vector<double> out;
    for (const auto& v : list) out.push_back(std::strtod(v.get<std::string>().c_str(), nullptr));
    return out;
}

TEST(DatasetReference, AnemoiStoresReadAsOpenDataset) {
    const auto all = expected();
    for (const auto& [store, want] : all.at("anemoi").items()) {
        SCOPED_TRACE(store);
        const AnemoiDataset ds(kStores / store);
        EXPECT_EQ(ds.variables(), want.at("variables").get<std::vector<std::string>>());
        std::vector<std::string> dates;
        for (const auto& d : ds.dates()) dates.push_back(d.iso());
        EXPECT_EQ(dates, want.at("dates").get<std::vector<std::string>>());
        EXPECT_EQ(ds.missing_indices(), want.at("missing").get<std::vector<std::int64_t>>());
        EXPECT_EQ(ds.frequency_seconds(),
                  boreas::parse_duration(want.at("frequency").get<std::string>()));
        const auto stats = ds.statistics();
        const auto& s = want.at("statistics");
        EXPECT_EQ(stats.mean, from_hex(s.at("mean")));
        EXPECT_EQ(stats.stdev, from_hex(s.at("stdev")));
        EXPECT_EQ(stats.minimum, from_hex(s.at("minimum")));
        EXPECT_EQ(stats.maximum, from_hex(s.at("maximum")));
        for (const char* axis : {"latitudes", "longitudes"}) {
            const auto values = std::string(axis) == "latitudes" ? ds.latitudes() : ds.longitudes();
            EXPECT_EQ(sha256(std::as_bytes(std::span(values))), want.at(axis).at("sha256")) << axis;
            const auto first = from_hex(want[axis].at("first"));
            for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(values[i], first[i]) << axis;
        }
        const auto n =
            static_cast<std::size_t>(ds.variables().size() * ds.ensembles() * ds.points());
        std::vector<float> field(n);
        int compared = 0;
        for (std::int64_t i = 0; i < static_cast<std::int64_t>(ds.dates().size()); ++i) {
            if (ds.is_missing(i)) {
                const auto message = error_of([&] { ds.read_date(i, field); });
                EXPECT_NE(message.find("is a missing date"), std::string::npos) << message;
                EXPECT_FALSE(want.at("data").contains(std::to_string(i)));
                continue;
            }
            ds.read_date(i, field);
            EXPECT_EQ(sha256(std::as_bytes(std::span(field))),
                      want.at("data").at(std::to_string(i)).get<std::string>())
                << "date index " << i;
            ++compared;
        }
        EXPECT_EQ(compared, static_cast<int>(want.at("data").size()));
        // Unknown names and dates are named.
        const auto variable = error_of([&] { ds.variable_index("msl"); });
        EXPECT_NE(variable.find("has no variable 'msl'"), std::string::npos) << variable;
        const auto date = error_of([&] { ds.date_index(boreas::DateTime::parse("2030-01-01")); });
        EXPECT_NE(date.find("has no date 2030-01-01T00:00:00 (its dates run from"),
                  std::string::npos)
            << date;
    }
}

}  // namespace
