#include <fmt/format.h>

#include <cmath>

#include "boreas/bench/bench.hpp"
#include "boreas/core/error.hpp"

namespace boreas::bench {
namespace {

double median_of(const nlohmann::json& result) {
    return result.at("stats").at("median").get<double>();
}

const nlohmann::json* find_phase(const nlohmann::json& document, const std::string& name) {
    for (const auto& result : document.at("results"))
        if (result.at("name") == name) return &result;
    return nullptr;
}

}  // namespace

std::string format_table(const nlohmann::ordered_json& document) {
    std::string out;
    const auto& run = document["context"]["run"];
    out += fmt::format("{} | config {} | {} threads | batch {}\n", run.value("implementation", "?"),
                       run.value("config", "?"), run.value("threads", 0), run.value("batch", 1));
    out += fmt::format("{:<34} {:>10} {:>10} {:>10} {:>7} {:>9} {:>8} {:>9}  {}\n", "phase",
                       "median s", "min s", "max s", "share", "GFLOP/s", "GB/s", "% roof", "bound");
    double total = 0, train_total = 0;
    for (const auto& r : document["results"]) {
        if (r["name"] == "forward") total = median_of(r);
        if (r["name"] == "train") train_total = median_of(r);
        out += fmt::format(
            "{:<34} {:>10.4f} {:>10.4f} {:>10.4f} {:>6.1f}% {:>9.1f} {:>8.1f} {:>8.1f}%  {}{}\n",
            r["name"].get<std::string>(), median_of(r), r["stats"]["min"].get<double>(),
            r["stats"]["max"].get<double>(), 100 * r.value("share_of_step", 0.0),
            r["achieved"]["gflops"].get<double>(), r["achieved"]["gbs"].get<double>(),
            100 * r["fraction_of_roof"].get<double>(), r["bound"].get<std::string>(),
            r["noisy"].get<bool>() ? " (noisy)" : "");
    }
    if (total > 0 && document["results"].size() > 0) {
        const auto& first = document["results"][0];
        out += fmt::format("throughput: {:.3f} forecast steps/s; verification: {} ({})\n",
                           1.0 / total, first["verification"]["status"].get<std::string>(),
                           first["verification"]["detail"].get<std::string>());
    }
    if (train_total > 0)
        out += fmt::format("training: {:.3f} samples/s ({} per step)\n",
                           document["context"]["run"].value("batch", 1) / train_total,
                           document["context"]["run"].value("batch", 1));
    for (const auto& r : document["results"])
        if (r.contains("communication")) {
            const auto& c = r["communication"];
            const auto& layout = r["params"].value("layout", nlohmann::json::object());
            out += fmt::format(
                "{} exchanges (rank 0; {} replica(s) x {} shard(s)): {:.2f} MB sent, {:.4f} s, "
                "{:.0f} collectives per step; slowest rank's step {:.4f} s, mean {:.4f} s\n",
                r["name"].get<std::string>(), layout.value("replicas", 1),
                layout.value("shards", 1), c["bytes_sent_per_step"].get<double>() / 1e6,
                c["seconds_per_step"].get<double>(), c["collectives_per_step"].get<double>(),
                r["ranks"]["max_of_medians_s"].get<double>(),
                r["ranks"]["mean_of_medians_s"].get<double>());
        }
    const auto& roof = document["roof"];
    out += fmt::format(
        "roof: FP32 FMA {:.0f} GFLOP/s ({} threads), SGEMM {:.0f} GFLOP/s, triad {:.1f} GB/s{}\n",
        roof["fp32_fma_gflops"].value("all", 0.0), roof["fp32_fma_gflops"].value("threads", 0),
        roof.value("sgemm_gflops", 0.0), roof["triad_gbs"].value("all", 0.0),
        roof.value("cached", false) ? " (cached this boot)" : "");
    if (roof.contains("doubt"))
        out += fmt::format("roof in doubt: {}\n", roof["doubt"].get<std::string>());
    for (const auto& r : document["results"])
        if (r["fraction_of_roof"].get<double>() > 1.05) {
            out += fmt::format(
                "note: {} ran at {:.0f} % of the roof: the roof was measured low (a busy machine); "
                "`boreas roof --fresh` on a quiet machine, then run again\n",
                r["name"].get<std::string>(), 100 * r["fraction_of_roof"].get<double>());
            break;
        }
    return out;
}

std::string format_csv(const nlohmann::ordered_json& document) {
    std::string out =
        "name,phase,median_s,min_s,max_s,mean_s,stddev_s,n,gflops,gbs,fraction_of_roof,bound,"
        "noisy\n";
    for (const auto& r : document["results"]) {
        const auto& s = r["stats"];
        out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r["name"].get<std::string>(),
                           r["phase"].get<std::string>(), s["median"].get<double>(),
                           s["min"].get<double>(), s["max"].get<double>(), s["mean"].get<double>(),
                           s["stddev"].get<double>(), s["n"].get<int>(),
                           r["achieved"]["gflops"].get<double>(),
                           r["achieved"]["gbs"].get<double>(), r["fraction_of_roof"].get<double>(),
                           r["bound"].get<std::string>(), r["noisy"].get<bool>());
    }
    return out;
}

void check_document(const nlohmann::json& document, const std::string& origin) {
    BOREAS_CHECK(document.is_object() && document.value("schema", "") == kSchemaName,
                 "'{}' is not a boreas-bench document (no \"schema\": \"{}\")", origin,
                 kSchemaName);
    const auto version = document.value("schema_version", "");
    BOREAS_CHECK(version.rfind("1.", 0) == 0, "'{}' has schema_version '{}', this Boreas reads 1.x",
                 origin, version);
    try {
        for (const auto& result : document.at("results")) {
            (void)result.at("name").get<std::string>();
            (void)median_of(result);
        }
        (void)document.at("context").at("run").at("config").get<std::string>();
    } catch (const nlohmann::json::exception& error) {
        BOREAS_FAIL("'{}' is a malformed boreas-bench document: {}", origin, error.what());
    }
}

std::string compare(const nlohmann::json& base, const std::string& base_name,
                    const nlohmann::json& other, const std::string& other_name,
                    const CompareOptions& options) {
    check_document(base, base_name);
    check_document(other, other_name);
    const auto& base_run = base["context"]["run"];
    const auto& other_run = other["context"]["run"];
    const bool same_config =
        base_run.value("resolved_config", "") == other_run.value("resolved_config", "") &&
        base_run.value("batch", 1) == other_run.value("batch", 1);
    BOREAS_CHECK(same_config || options.force,
                 "'{}' ({}) and '{}' ({}) ran different configs or batch sizes; pass --force to "
                 "compare them anyway",
                 base_name, base_run.value("config", "?"), other_name,
                 other_run.value("config", "?"));
    // Documents from before kernel paths were recorded carry none: nothing to check.
    const auto path_of = [](const nlohmann::json& document) {
        const auto& build = document["context"].value("build", nlohmann::json::object());
        return build.contains("kernel_path") ? build["kernel_path"].value("name", "") : "";
    };
    const std::string base_path = path_of(base), other_path = path_of(other);
    BOREAS_CHECK(
        base_path.empty() || other_path.empty() || base_path == other_path || options.force,
        "'{}' ran the {} kernels and '{}' the {} kernels; pass --force to compare "
        "different kernel paths anyway",
        base_name, base_path, other_name, other_path);
    std::string out = fmt::format("base: {} ({})\nnew:  {} ({})\n", base_name,
                                  base_run.value("implementation", "?"), other_name,
                                  other_run.value("implementation", "?"));
    out += fmt::format("{:<28} {:>11} {:>11} {:>9} {:>8}  {}\n", "phase", "base s", "new s",
                       "new/base", "speedup", "verdict");
    for (const auto& result : base["results"]) {
        const auto name = result["name"].get<std::string>();
        const auto* match = find_phase(other, name);
        if (match == nullptr) continue;
        const double a = median_of(result), b = median_of(*match);
        const double ratio = a > 0 ? b / a : 0;
        std::string verdict = "SAME";
        if (ratio < 1 - options.tolerance) verdict = "FASTER";
        if (ratio > 1 + options.tolerance) verdict = "SLOWER";
        // Overlapping min-max ranges of a noisy run cannot tell a difference.
        const bool overlap =
            (*match)["stats"]["min"].get<double>() <= result["stats"]["max"].get<double>() &&
            result["stats"]["min"].get<double>() <= (*match)["stats"]["max"].get<double>();
        if (verdict != "SAME" && overlap &&
            (result.value("noisy", false) || match->value("noisy", false)))
            verdict = "NOISY";
        out += fmt::format("{:<28} {:>11.4f} {:>11.4f} {:>9.3f} {:>7.2f}x  {}\n", name, a, b, ratio,
                           b > 0 ? a / b : 0.0, verdict);
    }
    return out;
}

}  // namespace boreas::bench
