#pragma once
/// Build and system context: what every result must carry to be reproducible and comparable
/// (version, commit, compiler, options, BLAS, CPU and its ISA, memory, OS, relevant environment).

#include <nlohmann/json.hpp>

namespace boreas {

nlohmann::ordered_json build_context();
nlohmann::ordered_json system_context();

namespace detail {
extern const char* const kVersion;
extern const char* const kCompilerId;
extern const char* const kCompilerVersion;
extern const char* const kBuildType;
extern const char* const kCxxFlags;
extern const char* const kBlasVendor;
extern const bool kOpenMP;
extern const bool kCuda;
extern const bool kMpi;
extern const char* const kCudaArchitectures;
extern const char* const kGitCommit;
extern const bool kGitDirty;
}  // namespace detail

}  // namespace boreas
