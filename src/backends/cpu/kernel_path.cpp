// Which instruction set the CPU kernels were compiled for: recorded with every result, so runs
// on different paths are never compared as if they were one (boreas compare refuses them).
#include "boreas/kernels/kernels.hpp"
#include "simd.hpp"

namespace boreas::kernels::cpu {

nlohmann::ordered_json kernel_path() {
    nlohmann::ordered_json path;
#ifdef BOREAS_SIMD_AVX2
    path["name"] = "avx2-fma";
#else
    path["name"] = "scalar";
#endif
#ifdef BOREAS_VECTOR_ERF
    path["vector_erf"] = "libmvec";
#else
    path["vector_erf"] = "libm";
#endif
#if defined(__AVX512F__)
    path["compiler_may_emit_avx512"] = true;  // -march allows it in loops the compiler vectorises
#else
    path["compiler_may_emit_avx512"] = false;
#endif
    path["dispatch"] = "compile time (-march of the preset)";
    return path;
}

}  // namespace boreas::kernels::cpu
