// Micro-benchmarks of the CPU kernels with FLOP/s and byte/s counters (the byte model counts each
// operand once, as docs/bench.md's cost model does). Shapes are those of the built-in configs:
// small (C = 256, O48 -> O16), o96 (C = 512, O96 -> O48) and aifs-n320 (C = 1024, N320 -> O96).
//
//   build/cpu-release/bench/boreas_micro --benchmark_filter=linear
//
// Compare the rates with `boreas roof` (measured SGEMM, FMA and triad roofs of this machine).
#include "boreas/kernels/kernels.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "boreas/graphs/builder.hpp"

namespace {

namespace kc = boreas::kernels::cpu;

std::vector<float> random_values(std::int64_t n, std::uint32_t seed, float scale = 1.0f) {
    std::mt19937 generator(seed);
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> values(static_cast<std::size_t>(n));
    for (auto& v : values) v = normal(generator);
    return values;
}

void set_rates(benchmark::State& state, double flops, double bytes) {
    const auto iterations = static_cast<double>(state.iterations());
    state.counters["FLOP/s"] = benchmark::Counter(flops * iterations, benchmark::Counter::kIsRate);
    state.counters["B/s"] = benchmark::Counter(bytes * iterations, benchmark::Counter::kIsRate);
}

// Args: rows, in, out, gelu epilogue (0/1), bias (0/1). BM_linear_bf16: the same in bf16
// (LinearParams::bf16; vdpbf16ps on AVX512-BF16, against `boreas roof`'s BF16 dot roof).
void linear_bench(benchmark::State& state, bool bf16) {
    const auto rows = state.range(0), in = state.range(1), out = state.range(2);
    const auto x = random_values(rows * in, 1), w = random_values(out * in, 2, 0.05f);
    const auto b = random_values(out, 3);
    std::vector<float> y(static_cast<std::size_t>(rows * out));
    boreas::kernels::LinearParams p;
    p.x = x.data();
    p.weight = w.data();
    p.bias = state.range(4) ? b.data() : nullptr;
    p.y = y.data();
    p.rows = rows;
    p.in = in;
    p.out = out;
    p.gelu = state.range(3) != 0;
    p.bf16 = bf16;
    for (auto _ : state) {
        kc::linear(p);
        benchmark::DoNotOptimize(y.data());
    }
    set_rates(state, 2.0 * rows * in * out, 4.0 * (rows * in + in * out + rows * out));
}
void BM_linear(benchmark::State& state) {
    linear_bench(state, false);
}
void BM_linear_bf16(benchmark::State& state) {
    linear_bench(state, true);
}
BENCHMARK(BM_linear_bf16)
    ->ArgNames({"rows", "in", "out", "gelu", "bias"})
    ->Args({40320, 512, 512, 0, 1})    // o96: decoder projections
    ->Args({10944, 512, 2048, 1, 1})   // o96: processor MLP in
    ->Args({32768, 1024, 2048, 0, 1})  // aifs-n320: encoder K|V, one row chunk
    ->Args({40320, 1024, 1024, 0, 0})  // aifs-n320: processor QKV
    ->Args({40320, 1024, 4096, 1, 1})  // aifs-n320: processor MLP in
    ->Args({40320, 4096, 1024, 0, 1})  // aifs-n320: processor MLP out
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_linear)
    ->ArgNames({"rows", "in", "out", "gelu", "bias"})
    ->Args({10944, 256, 256, 0, 1})    // small: decoder query/self/projection
    ->Args({10944, 256, 1024, 1, 1})   // small: decoder MLP in (+GELU)
    ->Args({10944, 256, 1024, 0, 1})   // the same without GELU: the epilogue's cost
    ->Args({10944, 1024, 256, 0, 1})   // small: decoder MLP out
    ->Args({1600, 256, 1024, 1, 1})    // small: processor MLP in
    ->Args({10944, 512, 2048, 1, 1})   // o96: processor MLP in
    ->Args({40320, 512, 512, 0, 1})    // o96: decoder projections
    ->Args({32768, 218, 1024, 0, 1})   // aifs-n320: encoder source embedding, one row chunk
    ->Args({32768, 1024, 2048, 0, 1})  // aifs-n320: encoder K|V, one row chunk
    ->Args({40320, 1024, 1024, 0, 0})  // aifs-n320: processor QKV
    ->Args({40320, 1024, 4096, 1, 1})  // aifs-n320: processor MLP in
    ->Args({40320, 4096, 1024, 0, 1})  // aifs-n320: processor MLP out
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void mlp_bench(benchmark::State& state, bool bf16) {
    const auto rows = state.range(0), in = state.range(1), hidden = state.range(2);
    const auto x = random_values(rows * in, 1), w_in = random_values(hidden * in, 2, 0.05f),
               w_out = random_values(in * hidden, 3, 0.05f);
    const auto b_in = random_values(hidden, 4), b_out = random_values(in, 5);
    std::vector<float> y(static_cast<std::size_t>(rows * in));
    boreas::kernels::MlpParams p;
    p.x = x.data();
    p.weight_in = w_in.data();
    p.bias_in = b_in.data();
    p.weight_out = w_out.data();
    p.bias_out = b_out.data();
    p.y = y.data();
    p.rows = rows;
    p.in = in;
    p.hidden = hidden;
    p.out = in;
    p.accumulate = true;
    p.bf16 = bf16;
    for (auto _ : state) {
        kc::mlp(p);
        benchmark::DoNotOptimize(y.data());
    }
    set_rates(state, 4.0 * rows * in * hidden, 4.0 * (2 * rows * in + 2 * in * hidden));
}
void BM_mlp(benchmark::State& state) {
    mlp_bench(state, false);
}
void BM_mlp_bf16(benchmark::State& state) {
    mlp_bench(state, true);
}
BENCHMARK(BM_mlp_bf16)
    ->ArgNames({"rows", "channels", "hidden"})
    ->Args({10944, 512, 2048})   // o96: processor MLP
    ->Args({40320, 1024, 4096})  // aifs-n320: processor MLP
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_mlp)
    ->ArgNames({"rows", "channels", "hidden"})
    ->Args({10944, 256, 1024})   // small: decoder MLP (fused)
    ->Args({1600, 256, 1024})    // small: processor MLP (fused)
    ->Args({10944, 512, 2048})   // o96: processor MLP (fused)
    ->Args({40320, 1024, 4096})  // aifs-n320: processor MLP (two Linears)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// The Linear backward's weight and bias gradients alone (dW += dy^T x, db += column sums).
void BM_linear_weight_gradient(benchmark::State& state) {
    const auto rows = state.range(0), in = state.range(1), out = state.range(2);
    const auto x = random_values(rows * in, 1), dy = random_values(rows * out, 2);
    std::vector<float> dw(static_cast<std::size_t>(out * in)), db(static_cast<std::size_t>(out));
    boreas::kernels::LinearBackwardParams p;
    p.x = x.data();
    p.dy = dy.data();
    p.dweight = dw.data();
    p.dbias = db.data();
    p.rows = rows;
    p.in = in;
    p.out = out;
    for (auto _ : state) {
        kc::linear_backward(p);
        benchmark::DoNotOptimize(dw.data());
    }
    set_rates(state, 2.0 * rows * in * out, 4.0 * (rows * in + rows * out + 2 * in * out));
}
BENCHMARK(BM_linear_weight_gradient)
    ->ArgNames({"rows", "in", "out"})
    ->Args({10944, 256, 1024})  // small: decoder MLP in
    ->Args({10944, 1024, 256})  // small: decoder MLP out
    ->Args({10944, 256, 512})   // small: decoder query|self
    ->Args({1600, 256, 768})    // small: processor QKV
    ->Args({10944, 512, 2048})  // o96: processor MLP in
    ->Args({40320, 512, 512})   // o96: decoder projection
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_layer_norm(benchmark::State& state) {
    const auto rows = state.range(0), c = state.range(1);
    const auto x = random_values(rows * c, 1), gamma = random_values(c, 2),
               beta = random_values(c, 3);
    std::vector<float> y(static_cast<std::size_t>(rows * c));
    boreas::kernels::LayerNormParams p;
    p.x = x.data();
    p.y = y.data();
    p.gamma = gamma.data();
    p.beta = beta.data();
    p.rows = rows;
    p.channels = c;
    for (auto _ : state) {
        kc::layer_norm(p);
        benchmark::DoNotOptimize(y.data());
    }
    set_rates(state, 8.0 * rows * c, 8.0 * rows * c);
}
BENCHMARK(BM_layer_norm)
    ->ArgNames({"rows", "channels"})
    ->Args({10944, 256})
    ->Args({40320, 1024})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_gelu(benchmark::State& state) {
    const auto n = state.range(0);
    const auto original = random_values(n, 1);
    auto x = original;
    for (auto _ : state) {
        kc::gelu(x.data(), n);
        benchmark::DoNotOptimize(x.data());
    }
    set_rates(state, 0.0, 8.0 * n);
}
BENCHMARK(BM_gelu)->Arg(10944 * 1024)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Times graph_attention over the destination-sorted edges (offsets, src) with random values in
/// the model's layout (q beside the skip projection, k and v side by side in one row), counting
/// the byte model of docs/bench.md: per edge a gathered k row and v row and its features, per
/// destination q and out.
void run_graph_attention(benchmark::State& state, std::int64_t n_dst, std::int64_t n_src,
                         const std::vector<std::int64_t>& offsets,
                         const std::vector<std::int32_t>& src, std::int64_t heads, std::int64_t d,
                         std::int64_t de) {
    const auto width = heads * d, edges = static_cast<std::int64_t>(src.size());
    const auto q = random_values(n_dst * 2 * width, 1), kv = random_values(n_src * 2 * width, 2);
    const auto features = random_values(edges * de, 4);
    const auto we = random_values(width * de, 5, 0.1f), be = random_values(width, 6, 0.1f);
    std::vector<float> out(static_cast<std::size_t>(n_dst * width));
    boreas::kernels::GraphAttentionParams p;
    p.q = q.data();
    p.q_stride = 2 * width;
    p.k = kv.data();
    p.v = kv.data() + width;
    p.kv_stride = 2 * width;
    p.edge_features = features.data();
    p.edge_weight = we.data();
    p.edge_bias = be.data();
    p.dst_offsets = offsets.data();
    p.src = src.data();
    p.out = out.data();
    p.n_src = n_src;
    p.n_dst = n_dst;
    p.heads = heads;
    p.head_dim = d;
    p.edge_dim = de;
    for (auto _ : state) {
        kc::graph_attention(p);
        benchmark::DoNotOptimize(out.data());
    }
    const auto e = static_cast<double>(edges);
    set_rates(state, e * (4.0 * width + 4.0 * heads * de),
              4.0 * (e * (2.0 * width + de + 1) + 2.0 * n_dst * width));
}

// Args: destinations, sources, in-degree, heads, head_dim, edge_dim. Sources of each destination
// are a random (seeded) sample over the whole source grid: no locality at all, the worst case
// for the gathers (BM_graph_attention_mesh runs the real graphs).
void BM_graph_attention(benchmark::State& state) {
    const auto n_dst = state.range(0), n_src = state.range(1), degree = state.range(2);
    std::vector<std::int64_t> offsets(static_cast<std::size_t>(n_dst + 1));
    std::vector<std::int32_t> src(static_cast<std::size_t>(n_dst * degree));
    std::mt19937 generator(7);
    std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(n_src - 1));
    for (std::int64_t j = 0; j <= n_dst; ++j) offsets[j] = j * degree;
    for (auto& s : src) s = pick(generator);
    run_graph_attention(state, n_dst, n_src, offsets, src, state.range(3), state.range(4),
                        state.range(5));
}
BENCHMARK(BM_graph_attention)
    ->ArgNames({"dst", "src", "degree", "heads", "d", "de"})
    ->Args({1600, 10944, 24, 8, 32, 3})     // small encoder (O48 -> O16 cut-off)
    ->Args({10944, 1600, 3, 8, 32, 3})      // small decoder (kNN 3)
    ->Args({1600, 10944, 24, 8, 32, 11})    // the same with the 8 trainable edge columns the
    ->Args({10944, 1600, 3, 8, 32, 11})     // AIFS-shaped configs add (edge_dim 3 + 8)
    ->Args({40320, 10944, 3, 8, 64, 11})    // o96 decoder (O48 -> O96, kNN 3)
    ->Args({40320, 542080, 19, 16, 64, 3})  // aifs-n320 encoder (N320 -> O96)
    ->Args({542080, 40320, 3, 16, 64, 3})   // aifs-n320 decoder
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// The mapper edges of a built-in config's graph, built once per process as the model builds it.
const boreas::graphs::EdgeSet& mesh_edges(int config, bool decoder) {
    static std::map<int, boreas::graphs::Graph> graphs;
    static const char* const grids[][2] = {{"O48", "O16"}, {"O96", "O48"}, {"N320", "O96"}};
    auto found = graphs.find(config);
    if (found == graphs.end()) {
        boreas::graphs::GraphOptions options;
        options.data_grid = grids[config][0];
        options.hidden_grid = grids[config][1];
        found = graphs.emplace(config, boreas::graphs::build_graph(options)).first;
    }
    return found->second.edge_set(decoder ? "hidden_to_data" : "data_to_hidden");
}

// Args: config (0 small, 1 o96, 2 aifs-n320), mapper (0 encoder, 1 decoder), heads, head_dim,
// edge_dim (3 graph attributes + 8 trainable columns). The config's real graph: nodes in grid
// order, so neighbouring destinations share most of their sources, as in the model.
void BM_graph_attention_mesh(benchmark::State& state) {
    const auto& edges = mesh_edges(static_cast<int>(state.range(0)), state.range(1) != 0);
    const auto n_dst = static_cast<std::int64_t>(edges.dst_offsets.size()) - 1;
    const auto n_src =
        static_cast<std::int64_t>(*std::max_element(edges.src.begin(), edges.src.end())) + 1;
    run_graph_attention(state, n_dst, n_src, edges.dst_offsets, edges.src, state.range(2),
                        state.range(3), state.range(4));
}
BENCHMARK(BM_graph_attention_mesh)
    ->ArgNames({"config", "decoder", "heads", "d", "de"})
    ->Args({0, 0, 8, 32, 11})   // small encoder
    ->Args({0, 1, 8, 32, 11})   // small decoder
    ->Args({1, 0, 8, 64, 11})   // o96 encoder
    ->Args({1, 1, 8, 64, 11})   // o96 decoder
    ->Args({2, 0, 16, 64, 11})  // aifs-n320 encoder
    ->Args({2, 1, 16, 64, 11})  // aifs-n320 decoder
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// Query-key pairs inside a sliding window of +-window over seq positions, truncated at the
/// ends: the pairs whose products count as the window-attention kernels' model FLOPs.
double window_pairs(std::int64_t seq, std::int64_t window) {
    double pairs = 0;
    for (std::int64_t i = 0; i < seq; ++i)
        pairs += static_cast<double>(std::min(seq - 1, i + window) -
                                     std::max<std::int64_t>(0, i - window) + 1);
    return pairs;
}

// Args: sequence, window, heads, head_dim, fused (1: q, k, v side by side in one [seq, 3 width]
// buffer, as the transformer layer produces them).
void BM_window_attention(benchmark::State& state) {
    const auto seq = state.range(0), window = state.range(1), heads = state.range(2),
               d = state.range(3);
    const auto width = heads * d, fused = state.range(4);
    const auto stride = fused ? 3 * width : width;
    const auto q = random_values(seq * stride, 1), k = random_values(seq * width, 2);
    const auto v = random_values(seq * width, 3);
    std::vector<float> out(static_cast<std::size_t>(seq * width));
    boreas::kernels::WindowAttentionParams p;
    p.q = q.data();
    p.k = fused ? q.data() + width : k.data();
    p.v = fused ? q.data() + 2 * width : v.data();
    p.stride = stride;
    p.out = out.data();
    p.out_stride = width;
    p.seq = seq;
    p.heads = heads;
    p.head_dim = d;
    p.window = window;
    for (auto _ : state) {
        kc::window_attention(p);
        benchmark::DoNotOptimize(out.data());
    }
    // Model FLOPs: keys actually inside each query's window (truncated at the ends), QK^T and PV.
    const double pairs = window_pairs(seq, window);
    set_rates(state, 4.0 * pairs * width, 4.0 * 4.0 * seq * width);
}
BENCHMARK(BM_window_attention)
    ->ArgNames({"seq", "window", "heads", "d", "fused"})
    ->Args({1600, 128, 8, 32, 1})    // small
    ->Args({10944, 256, 8, 64, 1})   // o96
    ->Args({40320, 512, 16, 64, 0})  // aifs-n320, separate q, k, v
    ->Args({40320, 512, 16, 64, 1})  // aifs-n320, as the transformer layer runs it
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Args: sequence, window, heads, head_dim. The training layout: q|k|v and dq|dk|dv side by side,
// out and d_out apart.
void BM_window_attention_backward(benchmark::State& state) {
    const auto seq = state.range(0), window = state.range(1), heads = state.range(2),
               d = state.range(3);
    const auto width = heads * d;
    const auto qkv = random_values(seq * 3 * width, 1), d_out = random_values(seq * width, 2);
    std::vector<float> out(static_cast<std::size_t>(seq * width)),
        lse(static_cast<std::size_t>(seq * heads)),
        d_qkv(static_cast<std::size_t>(seq * 3 * width));
    boreas::kernels::WindowAttentionBackwardParams bp;
    auto& p = bp.forward;
    p.q = qkv.data();
    p.k = qkv.data() + width;
    p.v = qkv.data() + 2 * width;
    p.stride = 3 * width;
    p.out = out.data();
    p.out_stride = width;
    p.lse = lse.data();
    p.seq = seq;
    p.heads = heads;
    p.head_dim = d;
    p.window = window;
    kc::window_attention(p);
    bp.d_out = d_out.data();
    bp.dq = d_qkv.data();
    bp.dk = d_qkv.data() + width;
    bp.dv = d_qkv.data() + 2 * width;
    for (auto _ : state) {
        kc::window_attention_backward(bp);
        benchmark::DoNotOptimize(d_qkv.data());
    }
    // Model FLOPs of the backward: the scores and dP recomputed, then dV, dK and dQ (5 products
    // of 2 * d per query-key pair inside the window).
    const double pairs = window_pairs(seq, window);
    set_rates(state, 10.0 * pairs * width, 4.0 * 9.0 * seq * width);
}
BENCHMARK(BM_window_attention_backward)
    ->ArgNames({"seq", "window", "heads", "d"})
    ->Args({1600, 128, 8, 32})   // small
    ->Args({10944, 256, 8, 64})  // o96
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
