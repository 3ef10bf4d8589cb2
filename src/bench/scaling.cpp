#include "boreas/bench/scaling.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "boreas/core/error.hpp"
#include "boreas/graphs/halo.hpp"

namespace boreas::bench {

const std::vector<SystemFigures>& eurohpc_systems() {
    // Per device and direction; docs/scaling.md gives each figure's source. Inter-node
    // bandwidth: the node's injection bandwidth shared by its devices.
    static const std::vector<SystemFigures> systems = {
        {"LUMI-G", "MI250X GCD", 8, 23.9, 191.5, 50.0, 25.0 / 2, 2.0, 3.0,
         "docs.lumi-supercomputer.eu/hardware/lumig: 8 GCDs per node, GCDs of different "
         "MI250X linked by 1-2 Infinity Fabric links of 100 GB/s both ways; hardware/network: "
         "4 Slingshot-11 endpoints of 50 GB/s both ways per node, one per MI250X (2 GCDs)"},
        {"Leonardo Booster", "A100 64 GB", 4, 19.5, 312.0, 100.0, 50.0 / 4, 2.0, 3.0,
         "leonardo-supercomputer.cineca.eu/hpc-system: 4 A100 SXM4 64 GB per node, 2 dual-port "
         "HDR interfaces (400 Gb/s aggregated); NVLink 3 between the 4 GPUs (600 GB/s both ways "
         "per GPU, a third per pair)"},
        {"MareNostrum 5 ACC", "H100 64 GB", 4, 67.0, 989.0, 150.0, 100.0 / 4, 2.0, 3.0,
         "4 H100 per BullSequana XH3000 node (BSC, heise.de); the NVLink 4 pairs and 4 x NDR200 "
         "per node assumed as JUPITER's XH3000 design (not found in BSC's public docs)"},
        {"JUPITER Booster", "GH200 (H100)", 4, 67.0, 989.0, 150.0, 100.0 / 4, 2.0, 3.0,
         "apps.fz-juelich.de/jsc/hps/jupiter/configuration.html: 4 GH200 per node, NVLink 4 "
         "300 GB/s between pairs of GPUs (150 GB/s per direction), 4 x InfiniBand NDR200"},
    };
    return systems;
}

namespace {

/// Rank 0's rows of a node set over S ranks (the ranks' counters report rank 0).
double own(std::int64_t n, int shards) {
    return static_cast<double>(n / shards);  // n * 1 / S, rounded down as Sharding::range
}

}  // namespace

ShardTraffic shard_traffic(const model::ModelConfig& config, const graphs::Graph& graph,
                           std::int64_t batch, int shards, bool training, double values) {
    ShardTraffic t;
    if (shards <= 1) return t;
    const double s = shards, b = static_cast<double>(batch), c = config.num_channels;
    const std::int64_t nd = graph.node_set("data").count(), nh = graph.node_set("hidden").count();
    const double out_vars = static_cast<double>(config.output_variables().size());
    const double share = c / s;
    // Collectives as dist::Communicator accounts them (bytes this rank sends).
    auto gather = [&](std::int64_t n, double width) {
        t.bytes += 4 * b * own(n, shards) * width * (s - 1);
        t.collectives += 1;
    };
    auto rows_to_heads = [&](double parts) {
        t.bytes += 4 * b * own(nh, shards) * parts * share * (s - 1);
        t.collectives += 1;
    };
    auto heads_to_rows = [&](double parts) {
        t.bytes += 4 * b * (static_cast<double>(nh) - own(nh, shards)) * parts * share;
        t.collectives += 1;
    };
    // Graph-transformer blocks exchange their halos (graphs::Halo): the k|v rows of the
    // sources their edges read, and in backward those rows' gradients back to their owners.
    auto halo = [&](const std::string& edge_set, std::int64_t n_src) {
        return graphs::halo_volume(graph.edge_set(edge_set), n_src, shards, 0);
    };
    auto halo_exchange = [&](const graphs::HaloVolume& v) {
        t.bytes += 4 * b * static_cast<double>(v.sent) * 2 * c;
        t.collectives += 1;
    };
    auto halo_reduce = [&](const graphs::HaloVolume& v) {
        t.bytes += 4 * b * static_cast<double>(v.received) * 2 * c;
        t.collectives += 1;
    };
    const bool gnn_mappers = config.encoder.type == model::MapperType::gnn;
    const auto layers = config.processor.num_layers;
    using model::ProcessorType;
    const bool graph_processor = config.processor.type == ProcessorType::graph_transformer;
    const auto encoder = gnn_mappers ? graphs::HaloVolume{} : halo("data_to_hidden", nd);
    const auto decoder = gnn_mappers ? graphs::HaloVolume{} : halo("hidden_to_data", nh);
    const auto processor = graph_processor ? halo("hidden_to_hidden", nh) : graphs::HaloVolume{};
    // Forward.
    if (gnn_mappers)
        gather(nd, c);
    else
        halo_exchange(encoder);
    for (int l = 0; l < layers; ++l) {
        if (config.processor.type == ProcessorType::transformer) {
            rows_to_heads(3);
            heads_to_rows(1);
        } else if (graph_processor) {
            halo_exchange(processor);
        } else {
            gather(nh, c);
        }
    }
    if (gnn_mappers)
        gather(nh, c);
    else
        halo_exchange(decoder);
    gather(nd, out_vars);
    if (!training) return t;
    // Backward: each exchange's adjoint, then the gradients' sum over the group.
    halo_reduce(decoder);
    for (int l = 0; l < layers; ++l) {
        if (config.processor.type == ProcessorType::transformer) {
            rows_to_heads(1);
            heads_to_rows(3);
        } else {
            halo_reduce(processor);
        }
    }
    halo_reduce(encoder);
    t.bytes += 8 * values * (s - 1) / s;
    t.collectives += 1;
    return t;
}

Workload workload_from(const nlohmann::json& document, const model::ModelConfig& config,
                       const graphs::Graph& graph, int max_shards) {
    auto median = [&](const std::string& name) {
        for (const auto& r : document.at("results"))
            if (r.at("name") == name) return r.at("stats").at("median").get<double>();
        BOREAS_FAIL("bench document has no '{}' result (run boreas bench train)", name);
    };
    Workload w;
    w.config = config.name;
    w.batch = document.at("context").at("run").at("batch").get<std::int64_t>();
    w.step_s = median("train");
    w.optimizer_s = median("train/optimizer");
    w.overlap_s = std::max(0.0, median("train/backward") - median("train/backward/decoder"));
    const double parameters = document.at("context").at("run").value("parameters", 0.0);
    w.gradient_bytes = 4 * parameters;
    w.host_rank_gflops = document.at("roof").value("sgemm_gflops", 0.0);
    const auto& shape = graph.node_set("data");
    const double input_values = static_cast<double>(w.batch) * config.multistep_input *
                                static_cast<double>(shape.count()) *
                                static_cast<double>(config.input_variables().size());
    w.shard.resize(static_cast<std::size_t>(max_shards) + 1);
    for (int s = 2; s <= max_shards; s *= 2)
        w.shard[static_cast<std::size_t>(s)] =
            shard_traffic(config, graph, w.batch, s, true, parameters + input_values);
    return w;
}

Prediction predict(const Workload& w, const SystemFigures& system, int replicas, int shards,
                   double compute_ratio) {
    Prediction p;
    p.replicas = replicas;
    p.shards = shards;
    const double model_s = (w.step_s - w.optimizer_s) * compute_ratio;
    p.compute_s = model_s / shards + w.optimizer_s * compute_ratio;
    auto link = [&](int ranks, double bytes, double hops) {
        const bool intra = ranks <= system.devices_per_node;
        const double gbs = intra ? system.intra_gbs : system.inter_gbs;
        const double latency = intra ? system.intra_latency_us : system.inter_latency_us;
        return bytes / (gbs * 1e9) + hops * latency * 1e-6;
    };
    if (shards > 1) {
        BOREAS_CHECK(static_cast<std::size_t>(shards) < w.shard.size() &&
                         w.shard[static_cast<std::size_t>(shards)].collectives > 0,
                     "no shard traffic for {} shards", shards);
        const auto& t = w.shard[static_cast<std::size_t>(shards)];
        p.shard_s = link(shards, t.bytes, t.collectives * (shards - 1));
    }
    if (replicas > 1) {
        // Ring all-reduce: each rank sends 2 (R - 1) / R of the gradients in 2 (R - 1) hops,
        // over the slowest link the replicas span.
        const double bytes = 2.0 * (replicas - 1) / replicas * w.gradient_bytes;
        p.allreduce_s = link(replicas * shards, bytes, 2.0 * (replicas - 1));
        // Hidden behind the backward after the decoder's part, as Boreas buckets it; with
        // shards the gradients are final only after the group's sum, so none is hidden yet.
        p.exposed_s =
            shards > 1 ? p.allreduce_s : std::max(0.0, p.allreduce_s - w.overlap_s * compute_ratio);
    }
    p.step_s = p.compute_s + p.shard_s + p.exposed_s;
    const double one = w.step_s * compute_ratio;
    p.efficiency = one / (shards * p.step_s);
    return p;
}

std::string prediction_svg(
    const std::vector<std::pair<std::string, std::vector<Prediction>>>& lines,
    const std::string& title) {
    const double width = 900, height = 460, left = 70, right = 390, top = 40, bottom = 60;
    const double plot_w = width - left - right, plot_h = height - top - bottom;
    auto x_of = [&](double ranks) { return left + plot_w * std::log2(ranks) / 10.0; };
    auto y_of = [&](double e) { return top + plot_h * (1.0 - std::clamp(e, 0.0, 1.1) / 1.1); };
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
        "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
        "fill=\"white\"/>\n<text x=\"{}\" y=\"22\" font-size=\"14\">{}</text>\n",
        width, height, left, title);
    for (int k = 0; k <= 10; ++k) {
        const double x = x_of(std::pow(2.0, k));
        svg += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>"
            "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
            x, top, top + plot_h, top + plot_h + 18, 1 << k);
    }
    for (int k = 0; k <= 11; ++k) {
        const double e = k / 10.0, y = y_of(e);
        svg += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
            "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:.0f} %</text>\n",
            left, y, left + plot_w, left - 6, y + 4, 100 * e);
    }
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">ranks (devices)</text>\n"
        "<text x=\"16\" y=\"{:.1f}\" transform=\"rotate(-90 16 {:.1f})\" "
        "text-anchor=\"middle\">efficiency</text>\n",
        left + plot_w / 2, height - 16, top + plot_h / 2, top + plot_h / 2);
    static const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const char* colour = colours[i % 8];
        const bool dashed = lines[i].first.find("shards") != std::string::npos;
        std::string points;
        for (const auto& p : lines[i].second)
            points +=
                fmt::format("{:.1f},{:.1f} ", x_of(p.replicas * p.shards), y_of(p.efficiency));
        svg += fmt::format(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} "
            "points=\"{}\"/>\n",
            colour, dashed ? " stroke-dasharray=\"6 4\"" : "", points);
        svg += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" "
            "stroke=\"{3}\" stroke-width=\"2\"{4}/><text x=\"{5:.1f}\" "
            "y=\"{6:.1f}\">{7}</text>\n",
            left + plot_w + 10, top + 10 + 18.0 * static_cast<double>(i), left + plot_w + 34,
            colour, dashed ? " stroke-dasharray=\"6 4\"" : "", left + plot_w + 40,
            top + 14 + 18.0 * static_cast<double>(i), lines[i].first);
    }
    // anemoi's published data-parallel efficiencies (docs/scaling.md).
    const double ly = top + 14 + 18.0 * static_cast<double>(lines.size());
    for (const auto& [ranks, e] : {std::pair{4.0, 0.957}, std::pair{400.0, 0.85}})
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"black\"/>\n",
                           x_of(ranks), y_of(e));
    svg += fmt::format(
        "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"black\"/><text "
        "x=\"{:.1f}\" y=\"{:.1f}\">anemoi, published (GH200)</text>\n",
        left + plot_w + 22, ly - 4, left + plot_w + 40, ly);
    svg += "</svg>\n";
    return svg;
}

}  // namespace boreas::bench
