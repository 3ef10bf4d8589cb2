#pragma once
// fp32 -> nearest bf16 value (round half to even), kept in fp32: what a tensor's .to(bfloat16)
// keeps of a float. NaN stays NaN (made quiet); infinities and overflow to infinity as in torch.
#include <bit>
#include <cstdint>

#include "simd.hpp"

namespace boreas::kernels::cpu::BOREAS_ISA_NS {

/// The bits of v rounded to bf16 (low 16 bits zero).
inline std::uint32_t rounded_bf16_bits(float v) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (bits | 0x00400000u) & 0xFFFF0000u;
    return (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
}

/// The bf16 value of v (the high half of rounded_bf16_bits).
inline std::uint16_t bf16_bits(float v) {
    return static_cast<std::uint16_t>(rounded_bf16_bits(v) >> 16);
}

/// x[i] = bf16(x[i]) for n values.
inline void round_to_bf16(float* x, std::int64_t n) {
    std::int64_t i = 0;
#ifdef BOREAS_SIMD_AVX2
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7FFF);
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
    const __m256i quiet = _mm256_set1_epi32(0x00400000);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256i bits = _mm256_castps_si256(v);
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
        const __m256i rounded =
            _mm256_and_si256(_mm256_add_epi32(bits, _mm256_add_epi32(half, odd)), high);
        const __m256i nan = _mm256_and_si256(_mm256_or_si256(bits, quiet), high);
        const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        _mm256_storeu_ps(x + i, _mm256_blendv_ps(_mm256_castsi256_ps(rounded),
                                                 _mm256_castsi256_ps(nan), is_nan));
    }
#endif
    for (; i < n; ++i) x[i] = std::bit_cast<float>(rounded_bf16_bits(x[i]));
}

}  // namespace boreas::kernels::cpu::BOREAS_ISA_NS
