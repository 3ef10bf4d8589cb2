#include <gtest/gtest.h>

#include "boreas/bench/bench.hpp"
#include "boreas/bench/roof.hpp"
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
    nlohmann::json r = {
        {"name", "forward"},
        {"stats", {{"median", median}, {"min", median - spread}, {"max", median + spread}}},
        {"noisy", noisy}};
    return {{"schema", "boreas-bench"},
            {"schema_version", "1.0.0"},
            {"context",
             {{"run", {{"config", "tiny"}, {"resolved_config", "x"}, {"implementation", "t"}}}}},
            {"results", {r}}};
}

TEST(BenchCompare, Verdicts) {
    boreas::bench::CompareOptions options;
    auto verdict = [&](double base, double other, bool noisy = false, double spread = 0.001) {
        return boreas::bench::compare(document(base, noisy, spread), "a",
                                      document(other, noisy, spread), "b", options);
    };
    EXPECT_NE(verdict(1.0, 1.02).find("SAME"), std::string::npos);
    EXPECT_NE(verdict(1.0, 0.5).find("FASTER"), std::string::npos);
    EXPECT_NE(verdict(1.0, 1.5).find("SLOWER"), std::string::npos);
    EXPECT_NE(verdict(1.0, 1.2, true, 0.3).find("NOISY"), std::string::npos);
}

TEST(BenchRoof, DoubtWhenThreadsDoNotScale) {
    using boreas::bench::roof_doubt;
    EXPECT_EQ(roof_doubt(100.0, 195.0, 2), "");  // two cores, both free
    EXPECT_EQ(roof_doubt(100.0, 101.0, 1), "");  // one thread: nothing to compare
    // The cached roofs seen on the dev VM while another process held a core: 99.6 / 94.8.
    const auto doubt = roof_doubt(99.6, 94.8, 2);
    EXPECT_NE(doubt.find("did not scale"), std::string::npos) << doubt;
    EXPECT_NE(doubt.find("95 GFLOP/s on 2 threads"), std::string::npos) << doubt;
    EXPECT_NE(roof_doubt(100.0, 140.0, 2), "");  // below 0.75 x 2 x 100
}

nlohmann::ordered_json table_document(double fraction, bool doubt) {
    nlohmann::ordered_json roof = {
        {"fp32_fma_gflops", {{"1", 100.0}, {"all", 94.0}, {"threads", 2}}},
        {"sgemm_gflops", 86.0},
        {"triad_gbs", {{"1", 17.0}, {"all", 17.2}, {"threads", 2}}},
        {"cached", false}};
    if (doubt) roof["doubt"] = "the FMA roof did not scale";
    nlohmann::ordered_json r = {{"name", "forward"},
                                {"stats", {{"median", 1.0}, {"min", 1.0}, {"max", 1.0}}},
                                {"share_of_step", 1.0},
                                {"achieved", {{"gflops", 141.0}, {"gbs", 0.8}}},
                                {"fraction_of_roof", fraction},
                                {"bound", "compute"},
                                {"noisy", false},
                                {"verification", {{"status", "checksum"}, {"detail", "sum 1"}}}};
    return {{"context", {{"run", {{"config", "tiny"}, {"threads", 2}}}}},
            {"roof", roof},
            {"results", {r}}};
}

TEST(BenchRoof, TableFlagsPhasesAboveTheRoofAndADoubtedRoof) {
    const auto above = boreas::bench::format_table(table_document(1.648, false));
    EXPECT_NE(above.find("forward ran at 165 % of the roof"), std::string::npos) << above;
    const auto doubted = boreas::bench::format_table(table_document(0.9, true));
    EXPECT_NE(doubted.find("roof in doubt: the FMA roof did not scale"), std::string::npos)
        << doubted;
    const auto plain = boreas::bench::format_table(table_document(0.9, false));
    EXPECT_EQ(plain.find("note:"), std::string::npos) << plain;
    EXPECT_EQ(plain.find("in doubt"), std::string::npos) << plain;
}

}  // namespace
