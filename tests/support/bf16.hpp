#pragma once
// bf16 rounding for the tests' reference computations: nearest even, as torch's .to(bfloat16)
// and the kernels round (finite values only). Header-only: the kernels-only cross build has no
// io module for test_support.hpp.
#include <cstdint>
#include <cstring>

namespace boreas::testing_support {

/// The bf16 bits of v (its high half after rounding).
inline std::uint16_t bf16_bits(float v) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

/// v rounded to the nearest bf16 value, as a float.
inline float round_to_bf16(float v) {
    const std::uint32_t bits = static_cast<std::uint32_t>(bf16_bits(v)) << 16;
    float out;
    std::memcpy(&out, &bits, 4);
    return out;
}

}  // namespace boreas::testing_support
