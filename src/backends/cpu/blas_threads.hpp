#pragma once
// The CPU kernels split their work over OpenMP threads themselves and call BLAS on each
// thread's share. A BLAS with its own thread pool (Debian's default OpenBLAS is the pthreads
// build) would then run 2 x threads threads on the cores, and OpenBLAS 0.3.21 serialises
// concurrent callers on its one server queue: the small training step's backward took 1.71 s
// on 2 threads against 0.60 s with OpenBLAS single-threaded (docs/performance.md). Every kernel
// that calls BLAS calls this first.
namespace boreas::kernels::cpu {

/// Makes BLAS single-threaded, once per process (OpenBLAS; other BLAS vendors are left as they
/// are: set their thread count to 1 in the environment).
void single_threaded_blas();

}  // namespace boreas::kernels::cpu
