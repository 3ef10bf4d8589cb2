// fields_to_rows against its definition, element by element and bit for bit, on shapes that
// take every path: whole 8 x 8 tiles, the last columns, the last points of a block, blocks of
// 64 points, gathered and repeated columns, NaN and infinities.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "boreas/kernels/kernels.hpp"

namespace {

bool same_bits(float a, float b) {
    std::uint32_t x = 0, y = 0;
    std::memcpy(&x, &a, sizeof x);
    std::memcpy(&y, &b, sizeof y);
    return x == y || (std::isnan(a) && std::isnan(b));
}

}  // namespace

TEST(FieldsToRows, EqualsMultiplyThenAddPerElement) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> value(-1e4f, 1e4f);
    for (const auto& [variables, points, width] : {std::tuple{8, 1600, 8},
                                                   {20, 131, 13},
                                                   {5, 7, 3},
                                                   {115, 2100, 115},
                                                   {3, 64, 24},
                                                   {600, 300, 600}}) {
        SCOPED_TRACE(::testing::Message() << variables << " variables, " << points << " points, "
                                          << width << " columns");
        const std::int64_t stride = points + 5;  // not the point count: the stride is honoured
        std::vector<float> in(static_cast<std::size_t>(variables * stride));
        for (auto& v : in) v = value(rng);
        in[3] = std::numeric_limits<float>::quiet_NaN();
        in[static_cast<std::size_t>(stride + 1)] = std::numeric_limits<float>::infinity();
        std::vector<std::size_t> columns;
        std::vector<float> mul, add;
        for (int c = 0; c < width; ++c) {
            columns.push_back(static_cast<std::size_t>((c * 7 + 3) % variables));
            mul.push_back(value(rng) * 1e-3f);
            add.push_back(value(rng));
        }
        std::vector<float> out(static_cast<std::size_t>(points * width), -1.0f);
        boreas::kernels::FieldsToRowsParams p;
        p.in = in.data();
        p.in_stride = stride;
        p.columns = columns.data();
        p.mul = mul.data();
        p.add = add.data();
        p.out = out.data();
        p.points = points;
        p.width = width;
        boreas::kernels::cpu::fields_to_rows(p);
        int wrong = 0;
        for (std::int64_t i = 0; i < points; ++i)
            for (std::int64_t c = 0; c < width; ++c) {
                const float x = in[columns[static_cast<std::size_t>(c)] * stride + i];
                const volatile float scaled = x * mul[static_cast<std::size_t>(c)];
                const float want = scaled + add[static_cast<std::size_t>(c)];
                const float got = out[static_cast<std::size_t>(i * width + c)];
                if (!same_bits(got, want) && ++wrong <= 5)
                    ADD_FAILURE() << "point " << i << ", column " << c << ": " << got << " vs "
                                  << want;
            }
        EXPECT_EQ(wrong, 0);
    }
}

// copy_rows: copies and adds over strided rows, in place too; the padding between rows untouched.
TEST(CopyRows, CopiesAndAddsStridedRows) {
    const std::int64_t rows = 300, cols = 250, xs = 260, ys = 255;  // 75000 values: threaded
    std::mt19937 generator(3);
    std::normal_distribution<float> normal;
    std::vector<float> x(rows * xs), y0(rows * ys);
    for (auto& v : x) v = normal(generator);
    for (auto& v : y0) v = normal(generator);
    for (const bool add : {false, true}) {
        std::vector<float> y = y0;
        boreas::kernels::CopyRowsParams p;
        p.x = x.data();
        p.y = y.data();
        p.rows = rows;
        p.cols = cols;
        p.x_stride = xs;
        p.y_stride = ys;
        p.add = add;
        boreas::kernels::cpu::copy_rows(p);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < ys; ++c) {
                const float want = c >= cols ? y0[r * ys + c]
                                   : add     ? y0[r * ys + c] + x[r * xs + c]
                                             : x[r * xs + c];
                ASSERT_TRUE(same_bits(y[r * ys + c], want)) << "row " << r << ", column " << c;
            }
    }
    std::vector<float> y = y0;  // in place: y += y
    boreas::kernels::CopyRowsParams p;
    p.x = p.y = y.data();
    p.rows = rows;
    p.cols = ys;
    p.add = true;
    boreas::kernels::cpu::copy_rows(p);
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], 2 * y0[i]) << i;
}
