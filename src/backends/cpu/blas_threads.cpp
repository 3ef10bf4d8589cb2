#include "blas_threads.hpp"

#include <mutex>

#ifdef BOREAS_BLAS_OPENBLAS
extern "C" void openblas_set_num_threads(int threads);
#endif

namespace boreas::kernels::cpu {

void single_threaded_blas() {
#ifdef BOREAS_BLAS_OPENBLAS
    static std::once_flag once;
    std::call_once(once, [] { openblas_set_num_threads(1); });
#endif
}

}  // namespace boreas::kernels::cpu
