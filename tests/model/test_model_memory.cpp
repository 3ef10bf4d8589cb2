// Peak memory of the o96 forward pass stays below a bound derived from the model's size
// (docs/model.md, "Memory bound"). A per-edge x channel tensor (decoder: 3 N_data C floats) or a
// window score matrix (N_hidden x (2w+1) x heads floats) would break it. Runs in its own process
// so the high-water mark is this forward's alone.
#include <gtest/gtest.h>

#include <cmath>

#include "boreas/core/timer.hpp"
#include "boreas/model/model.hpp"

namespace {

TEST(ModelMemory, O96ForwardStaysWithinTheDerivedBound) {
    auto config = boreas::model::load_config("o96");
    auto graph = boreas::model::graph_for(config);
    boreas::model::Model model(config, graph);
    model.parameters().initialise(3);
    const auto n_data = graph->node_set("data").count();
    const auto n_hidden = graph->node_set("hidden").count();
    const auto vars = static_cast<std::int64_t>(config.input_variables().size());
    boreas::Tensor input({1, config.multistep_input, 1, n_data, vars});
    for (std::int64_t i = 0; i < input.numel(); ++i)
        input.data()[i] = std::sin(0.001f * static_cast<float>(i));
    const auto before = boreas::peak_rss_bytes();
    model.forward(input);
    const auto peak = boreas::peak_rss_bytes();

    const double c = config.num_channels, bytes = 4;
    std::int64_t edges = 0;
    for (const auto& [name, set] : graph->edges) edges += set.count();
    const double chunk = std::min<double>(static_cast<double>(n_data), 32768.0);
    const double hidden = c * config.decoder.mlp_hidden_ratio;
    const double parameters = bytes * static_cast<double>(model.parameters().parameter_count());
    const double features = bytes * static_cast<double>(n_data) * static_cast<double>(config.data_feature_width());
    const double encoder = bytes * 4 * static_cast<double>(n_data) * c;       // src, LN(src), k, v
    const double latents = bytes * 5 * static_cast<double>(n_hidden) * c;     // Z, P, k, v, LN
    const double decoder_chunk = bytes * chunk * (5 * c + hidden);           // g, LN, q, o, r; MLP
    const double graph_bytes = 40.0 * static_cast<double>(edges) + 16.0 * static_cast<double>(n_data + n_hidden);
    const double runtime = 64.0 * (1 << 20);  // libraries, OpenBLAS buffers, allocator slack
    const double bound = parameters + features + std::max(encoder, decoder_chunk) + latents +
                         graph_bytes + runtime;
    RecordProperty("peak_rss_mib", std::to_string(static_cast<double>(peak) / (1 << 20)));
    RecordProperty("bound_mib", std::to_string(bound / (1 << 20)));
    std::printf("o96 forward: peak RSS %.0f MiB (before forward %.0f MiB), bound %.0f MiB\n",
                static_cast<double>(peak) / (1 << 20), static_cast<double>(before) / (1 << 20),
                bound / (1 << 20));
    EXPECT_LE(static_cast<double>(peak), bound);
}

}  // namespace
