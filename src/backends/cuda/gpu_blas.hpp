#pragma once
// cuBLASLt behind one set of names, as gpu_runtime.hpp does for the runtime: hipBLASLt mirrors
// cuBLASLt's API with a hipblasLt prefix, so the GEMMs build for HIP by the same flag. No
// cublas*/hipblas* name outside this header (tests/backends/gpu_names_test.sh). Host code.
#include <cstdint>

#include "gpu_runtime.hpp"

#if defined(__HIP_PLATFORM_AMD__)
#include <hipblaslt/hipblaslt.h>
#define BOREAS_BLAS_NAME(name) hipblasLt##name
#define BOREAS_BLAS_ENUM(name) HIPBLASLT_##name
#define BOREAS_BLAS_STATUS_OK HIPBLAS_STATUS_SUCCESS
#define BOREAS_BLAS_STATUS_NOT_SUPPORTED HIPBLAS_STATUS_NOT_SUPPORTED
#define BOREAS_BLAS_OP_N HIPBLAS_OP_N
#define BOREAS_BLAS_OP_T HIPBLAS_OP_T
#define BOREAS_BLAS_COMPUTE_32F HIPBLAS_COMPUTE_32F
#define BOREAS_BLAS_R_32F HIP_R_32F
#define BOREAS_BLAS_R_16BF HIP_R_16BF
#else
#include <cublasLt.h>
#define BOREAS_BLAS_NAME(name) cublasLt##name
#define BOREAS_BLAS_ENUM(name) CUBLASLT_##name
#define BOREAS_BLAS_STATUS_OK CUBLAS_STATUS_SUCCESS
#define BOREAS_BLAS_STATUS_NOT_SUPPORTED CUBLAS_STATUS_NOT_SUPPORTED
#define BOREAS_BLAS_OP_N CUBLAS_OP_N
#define BOREAS_BLAS_OP_T CUBLAS_OP_T
// fp32 products in fp32: never TF32 (the fp32 path is the one checked against the CPU to 1e-5).
#define BOREAS_BLAS_COMPUTE_32F CUBLAS_COMPUTE_32F
#define BOREAS_BLAS_R_32F CUDA_R_32F
#define BOREAS_BLAS_R_16BF CUDA_R_16BF
#endif

namespace boreas::gpu::blas {

using Handle = BOREAS_BLAS_NAME(Handle_t);
using MatmulDesc = BOREAS_BLAS_NAME(MatmulDesc_t);
using MatrixLayout = BOREAS_BLAS_NAME(MatrixLayout_t);
using Preference = BOREAS_BLAS_NAME(MatmulPreference_t);
using Heuristic = BOREAS_BLAS_NAME(MatmulHeuristicResult_t);
using BlasStatus = decltype(BOREAS_BLAS_STATUS_OK);
using DataType = decltype(BOREAS_BLAS_R_32F);

inline bool ok(BlasStatus s) {
    return s == BOREAS_BLAS_STATUS_OK;
}
inline int code(BlasStatus s) {
    return static_cast<int>(s);
}
inline constexpr DataType kF32 = BOREAS_BLAS_R_32F;
inline constexpr DataType kBF16 = BOREAS_BLAS_R_16BF;

/// The largest power of two (up to 256) that divides p's address.
inline std::uint32_t alignment_of(const void* p) {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    std::uint32_t alignment = 256;
    while (alignment > 1 && address % alignment != 0) alignment /= 2;
    return alignment;
}

inline BlasStatus create(Handle* h) {
    return BOREAS_BLAS_NAME(Create)(h);
}
inline BlasStatus destroy(Handle h) {
    return BOREAS_BLAS_NAME(Destroy)(h);
}

/// C[m, n] (column-major, ldc) = alpha op(A) op(B) + beta C (+ bias[m] per row of C): one
/// GEMM with the bias in the epilogue where `bias` is set. A: [m, k] after op (stored [k, m]
/// when transposed), B: [k, n] after op (stored [n, k] when transposed). `workspace` of
/// `workspace_bytes` on the device. Types: A and B `ab_type` (fp32 or bf16), C fp32, fp32
/// products and sums. The bias, where given, must be 16-byte aligned (the epilogue's need).
inline BlasStatus matmul(Handle handle, bool transpose_a, bool transpose_b, std::int64_t m,
                         std::int64_t n, std::int64_t k, float alpha, const void* a,
                         std::int64_t lda, const void* b, std::int64_t ldb, float beta, float* c,
                         std::int64_t ldc, const float* bias, DataType ab_type, void* workspace,
                         std::size_t workspace_bytes, Stream stream) {
    MatmulDesc op = nullptr;
    MatrixLayout la = nullptr, lb = nullptr, lc = nullptr;
    Preference preference = nullptr;
    BlasStatus status = BOREAS_BLAS_NAME(MatmulDescCreate)(&op, BOREAS_BLAS_COMPUTE_32F, kF32);
    auto set = [&](auto attribute, const auto& value) {
        if (ok(status))
            status = BOREAS_BLAS_NAME(MatmulDescSetAttribute)(op, attribute, &value, sizeof(value));
    };
    const auto trans_a = transpose_a ? BOREAS_BLAS_OP_T : BOREAS_BLAS_OP_N;
    const auto trans_b = transpose_b ? BOREAS_BLAS_OP_T : BOREAS_BLAS_OP_N;
    set(BOREAS_BLAS_ENUM(MATMUL_DESC_TRANSA), trans_a);
    set(BOREAS_BLAS_ENUM(MATMUL_DESC_TRANSB), trans_b);
    if (bias != nullptr) {
        set(BOREAS_BLAS_ENUM(MATMUL_DESC_EPILOGUE), BOREAS_BLAS_ENUM(EPILOGUE_BIAS));
        set(BOREAS_BLAS_ENUM(MATMUL_DESC_BIAS_POINTER), bias);
        set(BOREAS_BLAS_ENUM(MATMUL_DESC_BIAS_DATA_TYPE), kF32);
    }
    const std::uint64_t a_rows = static_cast<std::uint64_t>(transpose_a ? k : m),
                        a_cols = static_cast<std::uint64_t>(transpose_a ? m : k);
    if (ok(status))
        status = BOREAS_BLAS_NAME(MatrixLayoutCreate)(&la, ab_type, a_rows, a_cols, lda);
    if (ok(status))
        status = BOREAS_BLAS_NAME(MatrixLayoutCreate)(
            &lb, ab_type, static_cast<std::uint64_t>(transpose_b ? n : k),
            static_cast<std::uint64_t>(transpose_b ? k : n), ldb);
    if (ok(status))
        status = BOREAS_BLAS_NAME(MatrixLayoutCreate)(&lc, kF32, static_cast<std::uint64_t>(m),
                                                      static_cast<std::uint64_t>(n), ldc);
    if (ok(status)) status = BOREAS_BLAS_NAME(MatmulPreferenceCreate)(&preference);
    if (ok(status))
        status = BOREAS_BLAS_NAME(MatmulPreferenceSetAttribute)(
            preference, BOREAS_BLAS_ENUM(MATMUL_PREF_MAX_WORKSPACE_BYTES), &workspace_bytes,
            sizeof(workspace_bytes));
    // cuBLASLt assumes 256-byte aligned operands unless told otherwise: a row or column slice
    // at another offset would get an algorithm that faults. Tell it what each pointer has.
    const std::uint32_t alignments[] = {alignment_of(a), alignment_of(b), alignment_of(c)};
    const auto pref = [&](auto attribute, std::uint32_t value) {
        if (ok(status))
            status = BOREAS_BLAS_NAME(MatmulPreferenceSetAttribute)(preference, attribute, &value,
                                                                    sizeof(value));
    };
    pref(BOREAS_BLAS_ENUM(MATMUL_PREF_MIN_ALIGNMENT_A_BYTES), alignments[0]);
    pref(BOREAS_BLAS_ENUM(MATMUL_PREF_MIN_ALIGNMENT_B_BYTES), alignments[1]);
    pref(BOREAS_BLAS_ENUM(MATMUL_PREF_MIN_ALIGNMENT_C_BYTES), alignments[2]);
    pref(BOREAS_BLAS_ENUM(MATMUL_PREF_MIN_ALIGNMENT_D_BYTES), alignments[2]);
    Heuristic heuristic{};
    int found = 0;
    if (ok(status))
        status = BOREAS_BLAS_NAME(MatmulAlgoGetHeuristic)(handle, op, la, lb, lc, lc, preference, 1,
                                                          &heuristic, &found);
    if (ok(status) && found == 0) status = BOREAS_BLAS_STATUS_NOT_SUPPORTED;
    if (ok(status))
        status = BOREAS_BLAS_NAME(Matmul)(handle, op, &alpha, a, la, b, lb, &beta, c, lc, c, lc,
                                          &heuristic.algo, workspace, workspace_bytes, stream);
    if (preference) BOREAS_BLAS_NAME(MatmulPreferenceDestroy)(preference);
    if (lc) BOREAS_BLAS_NAME(MatrixLayoutDestroy)(lc);
    if (lb) BOREAS_BLAS_NAME(MatrixLayoutDestroy)(lb);
    if (la) BOREAS_BLAS_NAME(MatrixLayoutDestroy)(la);
    if (op) BOREAS_BLAS_NAME(MatmulDescDestroy)(op);
    return status;
}

}  // namespace boreas::gpu::blas
