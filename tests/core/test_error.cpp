#include <gtest/gtest.h>

#include "boreas/core/error.hpp"

namespace {

int checked_twice(int& calls) {
    ++calls;
    return calls;
}

TEST(Error, CarriesMessageAndLocation) {
    try {
        BOREAS_FAIL("expected {} nodes, found {}", 3, 4);
        FAIL() << "no exception";
    } catch (const boreas::Error& error) {
        EXPECT_EQ(error.message(), "expected 3 nodes, found 4");
        EXPECT_NE(error.location().find("tests/core/test_error.cpp:"), std::string::npos)
            << error.location();
        EXPECT_NE(std::string(error.what()).find("expected 3 nodes, found 4 [tests/core/"),
                  std::string::npos);
    }
}

TEST(Error, CheckEvaluatesItsConditionOnce) {
    int calls = 0;
    BOREAS_CHECK(checked_twice(calls) == 1, "never");
    EXPECT_EQ(calls, 1);
    EXPECT_THROW(BOREAS_CHECK(checked_twice(calls) == 1, "second call is {}", calls),
                 boreas::Error);
    EXPECT_EQ(calls, 2);
}

}  // namespace
