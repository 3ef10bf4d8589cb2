#pragma once
// SHA-256 of raw bytes as lowercase hex: reference fixtures record the hashes of the exact
// float32 bytes Python produced. Link the test with OpenSSL::Crypto.

#include <fmt/format.h>
#include <openssl/evp.h>

#include <span>
#include <string>

namespace boreas::testing_support {

inline std::string sha256(const void* data, std::size_t size) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr) != 1)
        return "(EVP_Digest failed)";
    std::string hex;
    for (unsigned i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
    return hex;
}

template <typename T>
std::string sha256(std::span<const T> values) {
    return sha256(values.data(), values.size_bytes());
}

}  // namespace boreas::testing_support
