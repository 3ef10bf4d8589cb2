// Run-time dispatch of the CPU kernels: the paths this binary holds, selecting one, refusing one
// this CPU cannot run or that does not exist, and every runnable path giving the same Linear,
// LayerNorm and GELU to rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"

namespace {

using namespace boreas::kernels;

/// Restores the path a test found, so later tests run where ctest put them (BOREAS_ISA).
class PathGuard {
  public:
    PathGuard() : path_(cpu::active_path()) {}
    ~PathGuard() { cpu::select_path(path_); }
    PathGuard(const PathGuard&) = delete;
    PathGuard& operator=(const PathGuard&) = delete;

  private:
    std::string path_;
};

std::vector<std::string> runnable_paths() {
    std::vector<std::string> runnable;
    for (const std::string& path : cpu::compiled_paths())
        if (cpu::path_supported(path)) runnable.push_back(path);
    return runnable;
}

TEST(KernelDispatch, GenericIsAlwaysCompiledAndRunnable) {
    const auto compiled = cpu::compiled_paths();
    ASSERT_FALSE(compiled.empty());
    EXPECT_EQ(compiled.front(), "generic");
    EXPECT_TRUE(cpu::path_supported("generic"));
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    EXPECT_NE(std::find(compiled.begin(), compiled.end(), "avx2"), compiled.end());
    EXPECT_NE(std::find(compiled.begin(), compiled.end(), "avx512"), compiled.end());
#endif
}

TEST(KernelDispatch, KernelPathNamesTheActivePath) {
    const auto path = cpu::kernel_path();
    EXPECT_EQ(path["name"].get<std::string>(), cpu::active_path());
    EXPECT_TRUE(path.contains("compiled"));
    EXPECT_TRUE(path.contains("runnable"));
    EXPECT_TRUE(path.contains("selected_by"));
}

TEST(KernelDispatch, UnknownPathIsRefusedWithTheCompiledOnes) {
    PathGuard guard;
    std::string why;
    EXPECT_FALSE(cpu::path_supported("sse9", &why));
    EXPECT_NE(why.find("generic"), std::string::npos) << why;
    try {
        cpu::select_path("sse9");
        FAIL() << "no error";
    } catch (const boreas::Error& e) {
        EXPECT_NE(std::string(e.what()).find("sse9"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("compiled: generic"), std::string::npos) << e.what();
    }
}

// Each path names its fp32 register tile; only avx512 has the 512-bit one, chosen by
// measurement unless forced; a width the path lacks is refused with the reason.
TEST(KernelDispatch, EveryPathNamesItsFp32Tile) {
    PathGuard guard;
    for (const std::string& path : runnable_paths()) {
        cpu::select_path(path);
        const auto tile = cpu::kernel_path()["fp32_tile"];
        EXPECT_EQ(tile["bits"].get<int>(), cpu::fp32_tile_bits()) << path;
        const auto refused = [&](int bits, const std::string& expected) {
            try {
                cpu::select_fp32_tile(bits);
                ADD_FAILURE() << path << ": " << bits << " bits accepted";
            } catch (const boreas::Error& e) {
                EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
            }
        };
        if (path == "generic") {
            EXPECT_EQ(cpu::fp32_tile_bits(), 0);
            refused(256, "no fp32 register tile");
        } else if (path == "avx2") {
            EXPECT_EQ(cpu::fp32_tile_bits(), 256);
            refused(512, "512 needs the avx512 path");
        } else if (path == "avx512") {
            const int bits = cpu::fp32_tile_bits();
            EXPECT_TRUE(bits == 256 || bits == 512) << bits;
            if (tile["selected_by"] == "measured") {
                EXPECT_GT(tile["measured_gflops"]["256"].get<double>(), 0.0);
                EXPECT_GT(tile["measured_gflops"]["512"].get<double>(), 0.0);
            }
            cpu::select_fp32_tile(512);
            EXPECT_EQ(cpu::fp32_tile_bits(), 512);
            EXPECT_EQ(cpu::kernel_path()["fp32_tile"]["selected_by"], "selected by the program");
            refused(384, "256 or 512");
        }
    }
}

TEST(KernelDispatch, PathsTheCpuLacksAreRefused) {
    PathGuard guard;
    for (const std::string& path : cpu::compiled_paths()) {
        std::string why;
        if (cpu::path_supported(path, &why)) continue;
        EXPECT_NE(why.find("lacks"), std::string::npos) << why;
        EXPECT_THROW(cpu::select_path(path), boreas::Error) << path;
    }
}

TEST(KernelDispatch, EveryRunnablePathGivesTheSameNumbers) {
    PathGuard guard;
    const std::int64_t rows = 101, in = 72, out = 40;
    std::mt19937 generator(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto random = [&](std::int64_t n) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (float& value : v) value = normal(generator);
        return v;
    };
    const auto x = random(rows * in), weight = random(out * in), bias = random(out);
    const auto gamma = random(in), beta = random(in);
    auto run = [&](const std::string& path) {
        cpu::select_path(path);
        EXPECT_EQ(cpu::active_path(), path);
        std::vector<float> normalised(x.size()), y(static_cast<std::size_t>(rows * out));
        cpu::layer_norm({x.data(), normalised.data(), gamma.data(), beta.data(), rows, in});
        LinearParams p;
        p.x = normalised.data();
        p.weight = weight.data();
        p.bias = bias.data();
        p.y = y.data();
        p.rows = rows, p.in = in, p.out = out;
        p.gelu = true;
        cpu::linear(p);
        return y;
    };
    const auto reference = run("generic");
    for (const std::string& path : runnable_paths()) {
        const auto y = run(path);
        double worst = 0;
        for (std::size_t i = 0; i < y.size(); ++i)
            worst = std::max(worst, std::abs(double(y[i]) - reference[i]) /
                                        (1.0 + std::abs(double(reference[i]))));
        // Reassociated sums, FMAs and libmvec's erff against libm's: a few ulp of the outputs.
        EXPECT_LT(worst, 1e-5) << path << " against generic";
    }
}

}  // namespace
