#pragma once
/// The CUDA backend behind backends::Backend (boreas/backends/backend.hpp). Built with
/// BOREAS_ENABLE_CUDA (the cuda preset); a program that wants `--device cuda` calls
/// register_backend() once at start-up (boreas' main does).
///
/// Memory: the model's tensors in CUDA managed memory through a caching pool (host-addressable,
/// so the model's element-wise loops still run on the host while its kernels run on the
/// device); scratch through the driver's stream-ordered pool. Kernels on the device: Linear and
/// the MLP (cuBLASLt), LayerNorm, GELU, graph attention and window attention (forward), and the
/// Linear's, LayerNorm's and GELU's backward. The attention backwards, the loader's
/// fields_to_rows and transpose_csr run on the host over the same managed memory after a
/// synchronisation (describe() lists which run where). Arguments in plain
/// host memory (the graph's edge lists, stacked weights built per call) are copied to the
/// device for the call. Every kernel call ends with a stream synchronisation, since host code reads its result.

#include <nlohmann/json.hpp>

#include "boreas/backends/backend.hpp"

namespace boreas::backends::cuda {

/// Makes backends::get({DeviceKind::cuda, N}) return the CUDA backend of device N (created on
/// first use; an error naming the device where it does not exist).
void register_backend();

/// The GPU part of `boreas roof`: cuBLASLt SGEMM and bf16 GEMM (fp32 sums) at a square size,
/// and the device's memory bandwidth by a device-to-device copy, on device `index`.
nlohmann::ordered_json measure_roof(int index);

}  // namespace boreas::backends::cuda
