#include "codecs.hpp"

#include <blosc.h>
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>

#include "boreas/core/error.hpp"

namespace boreas::data::detail {
namespace {

/// c-blosc's context API (no global state, safe from many threads), one internal thread: the
/// loader parallelises over chunks. The header is validated against the stored size first
/// because blosc_decompress_ctx trusts it.
void blosc(std::span<const std::byte> in, std::span<std::byte> out, const std::string& where) {
    std::size_t nbytes = 0;
    BOREAS_CHECK(in.size() >= BLOSC_MIN_HEADER_LENGTH &&
                     blosc_cbuffer_validate(in.data(), in.size(), &nbytes) == 0,
                 "{}: not a valid blosc buffer ({} bytes; corrupt header or truncated)", where,
                 in.size());
    BOREAS_CHECK(nbytes == out.size(), "{}: blosc buffer holds {} bytes, the chunk has {}", where,
                 nbytes, out.size());
    if (out.empty()) return;
    const char* library = blosc_cbuffer_complib(in.data());
    const int got = blosc_decompress_ctx(in.data(), out.data(), out.size(), 1);
    BOREAS_CHECK(got >= 0 && static_cast<std::size_t>(got) == out.size(),
                 "{}: blosc decompression failed (codec library {}, code {}): corrupt data or a "
                 "codec this c-blosc lacks ({})",
                 where, library ? library : "unknown", got, blosc_list_compressors());
}

void zstd(std::span<const std::byte> in, std::span<std::byte> out, const std::string& where) {
    const auto content = ZSTD_getFrameContentSize(in.data(), in.size());
    BOREAS_CHECK(content != ZSTD_CONTENTSIZE_ERROR, "{}: not a zstd frame ({} bytes)", where,
                 in.size());
    BOREAS_CHECK(content == ZSTD_CONTENTSIZE_UNKNOWN || content == out.size(),
                 "{}: zstd frame holds {} bytes, the chunk has {}", where, content, out.size());
    const std::size_t got = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
    BOREAS_CHECK(!ZSTD_isError(got), "{}: zstd: {}", where,
                 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "");
    BOREAS_CHECK(got == out.size(), "{}: zstd data holds {} bytes, the chunk has {}", where, got,
                 out.size());
}

/// numcodecs' LZ4: the uncompressed size as 4 little-endian bytes, then one LZ4 block.
void lz4(std::span<const std::byte> in, std::span<std::byte> out, const std::string& where) {
    BOREAS_CHECK(in.size() >= 4, "{}: lz4 data of {} bytes lacks its size header", where,
                 in.size());
    std::uint32_t size = 0;
    for (int i = 3; i >= 0; --i) size = size << 8 | static_cast<std::uint8_t>(in[i]);
    BOREAS_CHECK(size == out.size(), "{}: lz4 data holds {} bytes, the chunk has {}", where, size,
                 out.size());
    BOREAS_CHECK(in.size() - 4 <= INT_MAX && out.size() <= INT_MAX, "{}: lz4 block over 2 GiB",
                 where);
    const int got = LZ4_decompress_safe(
        reinterpret_cast<const char*>(in.data() + 4), reinterpret_cast<char*>(out.data()),
        static_cast<int>(in.size() - 4), static_cast<int>(out.size()));
    BOREAS_CHECK(got >= 0 && static_cast<std::size_t>(got) == out.size(),
                 "{}: lz4 data is corrupt (decoded {} of {} bytes)", where, got, out.size());
}

/// zlib and gzip streams (numcodecs' Zlib and GZip); window bits 15 + 32 detect either header.
void inflate_stream(std::span<const std::byte> in, std::span<std::byte> out,
                    const std::string& where, const char* codec) {
    z_stream stream{};
    BOREAS_CHECK(inflateInit2(&stream, 15 + 32) == Z_OK, "{}: zlib cannot start", where);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    std::size_t in_left = in.size(), out_done = 0;
    int rc = Z_OK;
    while (true) {  // uInt limits each call to 4 GiB
        const auto in_now = static_cast<uInt>(std::min<std::size_t>(in_left, UINT_MAX));
        const auto out_now =
            static_cast<uInt>(std::min<std::size_t>(out.size() - out_done, UINT_MAX));
        stream.avail_in = in_now;
        stream.next_out = reinterpret_cast<Bytef*>(out.data() + out_done);
        stream.avail_out = out_now;
        rc = inflate(&stream, Z_NO_FLUSH);
        in_left -= in_now - stream.avail_in;
        out_done += out_now - stream.avail_out;
        const bool progress = in_now != stream.avail_in || out_now != stream.avail_out;
        if (rc == Z_STREAM_END || (rc != Z_OK && rc != Z_BUF_ERROR) || !progress) break;
    }
    const std::string message = stream.msg ? stream.msg : "";
    inflateEnd(&stream);
    BOREAS_CHECK(rc == Z_STREAM_END, "{}: {} data is corrupt or truncated ({})", where, codec,
                 !message.empty() ? message
                 : out_done == out.size()
                     ? "it holds more than the chunk's " + std::to_string(out.size()) + " bytes"
                     : "it ends early");
    BOREAS_CHECK(out_done == out.size(), "{}: {} data holds {} bytes, the chunk has {}", where,
                 codec, out_done, out.size());
}

}  // namespace

bool known_compressor(const std::string& id) {
    return id.empty() || id == "blosc" || id == "zstd" || id == "lz4" || id == "zlib" ||
           id == "gzip";
}

void decompress(const std::string& id, std::span<const std::byte> stored, std::span<std::byte> out,
                const std::string& where) {
    if (id.empty()) {
        BOREAS_CHECK(stored.size() == out.size(),
                     "{}: uncompressed chunk of {} bytes, the chunk has {}", where, stored.size(),
                     out.size());
        if (!out.empty()) std::memcpy(out.data(), stored.data(), out.size());
    } else if (id == "blosc") {
        blosc(stored, out, where);
    } else if (id == "zstd") {
        zstd(stored, out, where);
    } else if (id == "lz4") {
        lz4(stored, out, where);
    } else if (id == "zlib" || id == "gzip") {
        inflate_stream(stored, out, where, id.c_str());
    } else {
        BOREAS_FAIL("{}: compressor '{}' is not read (blosc, zstd, lz4, zlib, gzip or none)", where,
                    id);
    }
}

}  // namespace boreas::data::detail
