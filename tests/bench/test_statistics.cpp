#include <gtest/gtest.h>

#include "boreas/bench/bench.hpp"
#include "boreas/core/error.hpp"

namespace {

TEST(BenchStatistics, MedianSpreadAndSampleStddev) {
    const auto s = boreas::bench::statistics({4.0, 1.0, 3.0, 2.0}, 2);
    EXPECT_DOUBLE_EQ(s["median"].get<double>(), 2.5);
    EXPECT_DOUBLE_EQ(s["min"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(s["max"].get<double>(), 4.0);
    EXPECT_DOUBLE_EQ(s["mean"].get<double>(), 2.5);
    EXPECT_NEAR(s["stddev"].get<double>(), 1.2909944487, 1e-9);
    EXPECT_EQ(s["n"].get<int>(), 4);
    EXPECT_EQ(s["warmup"].get<int>(), 2);
    EXPECT_THROW(boreas::bench::statistics({}, 0), boreas::Error);
}

nlohmann::json document(double median, bool noisy, double spread) {
    nlohmann::json r = {{"name", "forward"},
                        {"stats", {{"median", median}, {"min", median - spread}, {"max", median + spread}}},
                        {"noisy", noisy}};
    return {{"schema", "boreas-bench"},
            {"schema_version", "1.0.0"},
            {"context", {{"run", {{"config", "tiny"}, {"resolved_config", "x"}, {"implementation", "t"}}}}},
            {"results", {r}}};
}

TEST(BenchCompare, Verdicts) {
    boreas::bench::CompareOptions options;
    auto verdict = [&](double base, double other, bool noisy = false, double spread = 0.001) {
        return boreas::bench::compare(document(base, noisy, spread), "a", document(other, noisy, spread), "b", options);
    };
    EXPECT_NE(verdict(1.0, 1.02).find("SAME"), std::string::npos);
    EXPECT_NE(verdict(1.0, 0.5).find("FASTER"), std::string::npos);
    EXPECT_NE(verdict(1.0, 1.5).find("SLOWER"), std::string::npos);
    EXPECT_NE(verdict(1.0, 1.2, true, 0.3).find("NOISY"), std::string::npos);
}

}  // namespace
