#include "boreas/core/context.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef BOREAS_BLAS_OPENBLAS
extern "C" {
// OpenBLAS' own introspection; declared here so Boreas does not depend on a cblas.h flavour.
char* openblas_get_config(void);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);
}
#endif

extern char** environ;

namespace boreas {
namespace {

std::string cpuinfo_field(const std::string& key) {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0) {
            auto colon = line.find(':');
            if (colon != std::string::npos) {
                auto value = line.substr(colon + 1);
                value.erase(0, value.find_first_not_of(" \t"));
                return value;
            }
        }
    }
    return "";
}

std::int64_t meminfo_kib(const std::string& key) {
    std::ifstream in("/proc/meminfo");
    std::string name;
    std::int64_t value = 0;
    std::string unit;
    while (in >> name >> value >> unit) {
        if (name == key + ":") return value;
    }
    return -1;
}

std::string os_release_name() {
    std::ifstream in("/etc/os-release");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("PRETTY_NAME=", 0) == 0) {
            auto value = line.substr(12);
            if (value.size() >= 2 && value.front() == '"') value = value.substr(1, value.size() - 2);
            return value;
        }
    }
    return "unknown";
}

nlohmann::ordered_json isa_flags() {
    std::set<std::string> flags;
    std::istringstream words(cpuinfo_field("flags"));
    for (std::string word; words >> word;) flags.insert(word);
    nlohmann::ordered_json isa;
    for (const char* name : {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                             "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"}) {
        isa[name] = flags.count(name) > 0;
    }
    return isa;
}

nlohmann::ordered_json relevant_environment() {
    nlohmann::ordered_json env = nlohmann::ordered_json::object();
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string text = *entry;
        for (const char* prefix : {"OMP_", "OPENBLAS_", "GOMP_", "KMP_", "SLURM_", "BOREAS_",
                                   "CUDA_VISIBLE_DEVICES", "OMPI_COMM_WORLD_"}) {
            if (text.rfind(prefix, 0) == 0) {
                auto eq = text.find('=');
                env[text.substr(0, eq)] = eq == std::string::npos ? "" : text.substr(eq + 1);
                break;
            }
        }
    }
    return env;
}

nlohmann::ordered_json blas_context() {
    nlohmann::ordered_json blas;
    blas["vendor"] = detail::kBlasVendor;
#ifdef BOREAS_BLAS_OPENBLAS
    {
        blas["config"] = openblas_get_config();
        blas["threads"] = openblas_get_num_threads();
        static const char* const kParallel[] = {"sequential", "pthreads", "openmp"};
        int parallel = openblas_get_parallel();
        blas["threading"] = parallel >= 0 && parallel <= 2 ? kParallel[parallel] : "unknown";
    }
#endif
    return blas;
}

}  // namespace

nlohmann::ordered_json build_context() {
    nlohmann::ordered_json build;
    build["version"] = detail::kVersion;
    build["git_commit"] = detail::kGitCommit;
    build["git_dirty"] = detail::kGitDirty;
    build["compiler"] = std::string(detail::kCompilerId) + " " + detail::kCompilerVersion;
    build["build_type"] = detail::kBuildType;
    build["cxx_flags"] = detail::kCxxFlags;
    build["options"] = {{"openmp", detail::kOpenMP},
                        {"cuda", detail::kCuda},
                        {"mpi", detail::kMpi}};
    if (detail::kCuda) build["cuda_architectures"] = detail::kCudaArchitectures;
    build["blas"] = blas_context();
    return build;
}

nlohmann::ordered_json system_context() {
    nlohmann::ordered_json system;
    utsname names{};
    uname(&names);
    system["hostname"] = names.nodename;
    system["os"] = os_release_name();
    system["kernel"] = std::string(names.sysname) + " " + names.release;
    system["arch"] = names.machine;
    system["cpu_model"] = cpuinfo_field("model name");
    system["logical_cpus"] = std::thread::hardware_concurrency();
    system["online_cpus"] = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef _OPENMP
    system["omp_max_threads"] = omp_get_max_threads();
#endif
    system["isa"] = isa_flags();
    system["memory_total_bytes"] = meminfo_kib("MemTotal") * 1024;
    system["memory_available_bytes"] = meminfo_kib("MemAvailable") * 1024;
    system["environment"] = relevant_environment();
    return system;
}

}  // namespace boreas
