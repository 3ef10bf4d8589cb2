// Run-time dispatch of the CPU kernels. Each kernel source is compiled once per instruction-set
// path (generic everywhere; avx2 and avx512 on x86-64 with GCC) into its own namespace; this file,
// compiled once for the build's baseline, picks the best path the CPU runs (or the one
// BOREAS_ISA names) on first use and forwards every kernels::cpu call through its table.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "boreas/core/error.hpp"
#include "boreas/kernels/kernels.hpp"
#include "kernel_table.hpp"

namespace boreas::kernels::cpu {

namespace generic {
const KernelTable& kernel_table();
}
#ifdef BOREAS_KERNELS_AVX2
namespace avx2 {
const KernelTable& kernel_table();
}
#endif
#ifdef BOREAS_KERNELS_AVX512
namespace avx512 {
const KernelTable& kernel_table();
}
#endif

namespace {

struct Path {
    const char* name;
    const KernelTable& (*table)();
    const char* needs;  ///< what the CPU must have, for the messages
    bool (*cpu_has)();
};

#if defined(BOREAS_KERNELS_AVX2) || defined(BOREAS_KERNELS_AVX512)
bool cpu_has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
#ifdef BOREAS_KERNELS_AVX512
bool cpu_has_avx512() {
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}
#endif

/// In increasing order of preference.
const std::vector<Path>& paths() {
    static const std::vector<Path> all{
        {"generic", &generic::kernel_table, "nothing (portable C++)", [] { return true; }},
#ifdef BOREAS_KERNELS_AVX2
        {"avx2", &avx2::kernel_table, "AVX2 and FMA", &cpu_has_avx2},
#endif
#ifdef BOREAS_KERNELS_AVX512
        {"avx512", &avx512::kernel_table, "AVX-512 F, BW, DQ and VL", &cpu_has_avx512},
#endif
    };
    return all;
}

const Path* find(const std::string& name) {
    for (const Path& path : paths())
        if (name == path.name) return &path;
    return nullptr;
}

std::string compiled_list() {
    std::string list;
    for (const Path& path : paths()) list += (list.empty() ? "" : ", ") + std::string(path.name);
    return list;
}

/// The path `name` if this CPU runs it, else an error naming `origin` (BOREAS_ISA, --isa, ...).
const Path& require(const std::string& name, const std::string& origin) {
    const Path* path = find(name);
    BOREAS_CHECK(path != nullptr, "{}={}: not a kernel path of this binary (compiled: {})", origin,
                 name, compiled_list());
    BOREAS_CHECK(path->cpu_has(), "{}={}: this CPU lacks {}, which the path needs", origin, name,
                 path->needs);
    return *path;
}

struct Selection {
    const Path* path = nullptr;
    std::string selected_by;
    Fp32Tile fp32;
};

/// BOREAS_FP32_TILE (256 or 512), or 0 where it is not set.
int forced_fp32_tile() {
    const char* text = std::getenv("BOREAS_FP32_TILE");
    if (text == nullptr || *text == '\0') return 0;
    const std::string value = text;
    BOREAS_CHECK(value == "256" || value == "512", "BOREAS_FP32_TILE={}: expected 256 or 512",
                 value);
    return std::stoi(value);
}

Selection& selection() {
    static Selection current = [] {
        Selection s;
        if (const char* forced = std::getenv("BOREAS_ISA"); forced && *forced) {
            s.path = &require(forced, "BOREAS_ISA");
            s.selected_by = "BOREAS_ISA";
        } else {
            for (const Path& path : paths())
                if (path.cpu_has()) s.path = &path;
            s.selected_by = "cpuid: the widest path this CPU runs";
        }
        return s;
    }();
    return current;
}

std::atomic<const KernelTable*> active_table{nullptr};

const KernelTable& table() {
    const KernelTable* t = active_table.load(std::memory_order_acquire);
    if (t == nullptr) {
        static std::mutex mutex;
        const std::lock_guard lock(mutex);
        t = active_table.load(std::memory_order_acquire);
        if (t == nullptr) {
            t = &selection().path->table();
            selection().fp32 = t->choose_fp32_tile(forced_fp32_tile(), "BOREAS_FP32_TILE", false);
            active_table.store(t, std::memory_order_release);
        }
    }
    return *t;
}

}  // namespace

std::vector<std::string> compiled_paths() {
    std::vector<std::string> names;
    for (const Path& path : paths()) names.emplace_back(path.name);
    return names;
}

bool path_supported(const std::string& name, std::string* why) {
    const Path* path = find(name);
    if (path == nullptr) {
        if (why) *why = "not compiled into this binary (compiled: " + compiled_list() + ")";
        return false;
    }
    if (!path->cpu_has()) {
        if (why) *why = "this CPU lacks " + std::string(path->needs);
        return false;
    }
    return true;
}

std::string active_path() {
    return table().name;
}

void select_path(const std::string& name) {
    const Path& path = require(name, "kernel path");
    (void)table();  // resolve BOREAS_ISA first, so its errors are never hidden by a later switch
    selection().path = &path;
    selection().selected_by = "selected by the program";
    selection().fp32 = path.table().choose_fp32_tile(forced_fp32_tile(), "BOREAS_FP32_TILE", false);
    active_table.store(&path.table(), std::memory_order_release);
}

void select_fp32_tile(int bits) {
    const KernelTable& t = table();
    selection().fp32 = t.choose_fp32_tile(bits, "fp32 tile", true);
    if (bits != 0) selection().fp32.selected_by = "selected by the program";
}

int fp32_tile_bits() {
    (void)table();
    return selection().fp32.bits;
}

nlohmann::ordered_json kernel_path() {
    const KernelTable& t = table();
    nlohmann::ordered_json path;
    path["name"] = t.name;
    path["selected_by"] = selection().selected_by;
    path["compiled"] = compiled_paths();
    std::vector<std::string> runnable;
    for (const Path& p : paths())
        if (p.cpu_has()) runnable.emplace_back(p.name);
    path["runnable"] = runnable;
    path["vector_erf"] = t.vector_erf ? "libmvec" : "libm";
    path["bf16"] = t.bf16_method();
    const Fp32Tile& tile = selection().fp32;
    nlohmann::ordered_json fp32;
    fp32["bits"] = tile.bits;
    fp32["selected_by"] = tile.selected_by;
    if (tile.gflops_256 > 0)
        fp32["measured_gflops"] = {{"256", tile.gflops_256}, {"512", tile.gflops_512}};
    path["fp32_tile"] = fp32;
    path["dispatch"] = "run time (one copy of every kernel per path; BOREAS_ISA forces one)";
    return path;
}

void fields_to_rows(const FieldsToRowsParams& p) {
    table().fields_to_rows(p);
}
void copy_rows(const CopyRowsParams& p) {
    table().copy_rows(p);
}
void linear(const LinearParams& p) {
    table().linear(p);
}
void mlp(const MlpParams& p) {
    table().mlp(p);
}
void layer_norm(const LayerNormParams& p) {
    table().layer_norm(p);
}
void gelu(float* x, std::int64_t n) {
    table().gelu(x, n);
}
void graph_attention(const GraphAttentionParams& p) {
    table().graph_attention(p);
}
void window_attention(const WindowAttentionParams& p) {
    table().window_attention(p);
}
void linear_backward(const LinearBackwardParams& p) {
    table().linear_backward(p);
}
void layer_norm_backward(const LayerNormBackwardParams& p) {
    table().layer_norm_backward(p);
}
void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) {
    table().gelu_backward(x, dy, dx, n);
}
void graph_attention_backward(const GraphAttentionBackwardParams& p) {
    table().graph_attention_backward(p);
}
void graph_attention_backward_destinations(const GraphAttentionBackwardParams& p,
                                           GraphAttentionBackwardScratch& scratch) {
    table().graph_attention_backward_destinations(p, scratch);
}
void graph_attention_backward_sources(const GraphAttentionBackwardParams& p,
                                      const GraphAttentionBackwardScratch& scratch,
                                      std::int64_t row_begin, std::int64_t row_end) {
    table().graph_attention_backward_sources(p, scratch, row_begin, row_end);
}
void window_attention_backward(const WindowAttentionBackwardParams& p) {
    table().window_attention_backward(p);
}
void transpose_csr(const std::int64_t* dst_offsets, const std::int32_t* src, std::int64_t n_dst,
                   std::int64_t n_src, std::int64_t* src_offsets, std::int64_t* edges_by_src) {
    table().transpose_csr(dst_offsets, src, n_dst, n_src, src_offsets, edges_by_src);
}

}  // namespace boreas::kernels::cpu
