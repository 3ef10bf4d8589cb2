#include <fmt/format.h>

#include "boreas/core/log.hpp"
#include "boreas/core/timer.hpp"
#include "boreas/graphs/builder.hpp"
#include "commands.hpp"

namespace boreas::apps {
namespace {

struct BuildArguments {
    graphs::GraphOptions options;
    std::string convention = "current";
    std::string edge_norm = "unit-std";
    std::string area_norm = "unit-max";
    std::string hidden_edges = "none";
    std::string output;
    bool json = false;
    int threads = 0;
};

void print_summary_text(const nlohmann::ordered_json& summary) {
    fmt::print("nodes\n");
    for (const auto& [name, count] : summary["nodes"].items())
        fmt::print("  {:<18} {:>12}  {}\n", name, count.get<std::int64_t>(),
                   summary["grids"].value(name, ""));
    fmt::print("edges                            count   in-degree min / mean / max   zero\n");
    for (const auto& [name, count] : summary["edges"].items()) {
        const auto& degree = summary["in_degree"][name];
        fmt::print("  {:<18} {:>12}   {:>6} / {:>6.2f} / {:<6}          {}\n", name,
                   count.get<std::int64_t>(), degree["min"].get<std::int64_t>(),
                   degree["mean"].get<double>(), degree["max"].get<std::int64_t>(),
                   degree["zero"].get<std::int64_t>());
    }
}

int run_build(const BuildArguments& args) {
    apply_threads(args.threads);
    auto options = args.options;
    options.convention = graphs::parse_convention(args.convention);
    options.edge_norm = graphs::parse_norm(args.edge_norm);
    options.area_norm = graphs::parse_norm(args.area_norm);
    options.hidden_edges = graphs::parse_hidden_edges(args.hidden_edges);
    Stopwatch clock;
    log::info("building graph {} -> {} (cutoff {}, k {}, {} convention)", options.data_grid,
              options.hidden_grid, options.cutoff_factor, options.knn, args.convention);
    const auto graph = graphs::build_graph(options);
    const double build_seconds = clock.seconds();
    graphs::save_graph(graph, args.output);
    const auto summary = graphs::summarise(graph);
    for (const auto& [name, degree] : summary["in_degree"].items())
        if (degree["zero"].get<std::int64_t>() > 0)
            log::warning("{}: {} destination node(s) have no incoming edge", name,
                         degree["zero"].get<std::int64_t>());
    log::info("wrote {} in {:.2f} s (build {:.2f} s, peak RSS {:.0f} MiB)", args.output,
              clock.seconds(), build_seconds, static_cast<double>(peak_rss_bytes()) / (1 << 20));
    if (args.json) fmt::print("{}\n", summary.dump(2));
    return 0;
}

}  // namespace

Runner add_graph_command(CLI::App& app) {
    auto* graph = app.add_subcommand("graph", "Build and inspect encoder/processor/decoder graphs");
    graph->require_subcommand(1);

    auto build_args = std::make_shared<BuildArguments>();
    auto* build = graph->add_subcommand("build", "Build a graph as anemoi-graphs does and save it");
    auto& o = build_args->options;
    o.data_grid = "N320";
    o.hidden_grid = "O96";
    build
        ->add_option("--data-grid", o.data_grid,
                     "Data grid: O<N>, N<N>, LL<deg>[x<deg>], TRI<level> or file:<path>")
        ->capture_default_str();
    build->add_option("--hidden-grid", o.hidden_grid, "Hidden grid (same forms)")
        ->capture_default_str();
    build
        ->add_option("--cutoff-factor", o.cutoff_factor,
                     "Encoder radius as a multiple of the hidden grid's largest "
                     "nearest-neighbour distance")
        ->capture_default_str();
    build
        ->add_option("--max-neighbours", o.max_neighbours,
                     "Most encoder edges per hidden node, nearest kept (current convention; 0: "
                     "no limit)")
        ->capture_default_str();
    build->add_option("-k,--knn", o.knn, "Decoder: nearest hidden nodes per data node")
        ->capture_default_str();
    build
        ->add_option("--hidden-edges", build_args->hidden_edges,
                     "Processor edges: none (transformer), multiscale (TRI grids), knn")
        ->capture_default_str();
    build->add_option("--hidden-knn", o.hidden_knn, "k for --hidden-edges knn")
        ->capture_default_str();
    build
        ->add_option("--multiscale-min-level", o.multiscale_min_level,
                     "Coarsest mesh level in --hidden-edges multiscale (1: anemoi-training's "
                     "configs; 0: every level)")
        ->capture_default_str();
    build
        ->add_option("--convention", build_args->convention,
                     "anemoi-graphs behaviour: current (>= 0.8) or aifs-1.0")
        ->capture_default_str();
    build
        ->add_option("--edge-norm", build_args->edge_norm,
                     "Edge attribute normalisation: none, unit-std, unit-max, unit-sum, unit-range")
        ->capture_default_str();
    build->add_option("--area-norm", build_args->area_norm, "Area weight normalisation")
        ->capture_default_str();
    build->add_option("--threads", build_args->threads,
                      "OpenMP threads (default: OMP_NUM_THREADS)");
    build->add_option("-o,--output", build_args->output, "Graph file to write (.safetensors)")
        ->required();
    build->add_flag("--json", build_args->json, "Print the graph summary as JSON on stdout");

    auto info_file = std::make_shared<std::string>();
    auto info_json = std::make_shared<bool>(false);
    auto* info = graph->add_subcommand("info", "Summarise a graph file");
    info->add_option("file", *info_file, "Graph file")->required();
    info->add_flag("--json", *info_json, "Print JSON");

    return [build, build_args, info, info_file, info_json]() {
        if (build->parsed()) return run_build(*build_args);
        const auto summary = graphs::summarise(graphs::load_graph(*info_file));
        if (*info_json) {
            fmt::print("{}\n", summary.dump(2));
        } else {
            print_summary_text(summary);
        }
        return 0;
    };
}

}  // namespace boreas::apps
