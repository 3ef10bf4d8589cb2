#include "boreas/io/grib.hpp"

#include <eccodes.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <span>

#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"

namespace boreas::io {
namespace {

struct HandleDeleter {
    void operator()(codes_handle* h) const { codes_handle_delete(h); }
};
using Handle = std::unique_ptr<codes_handle, HandleDeleter>;

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

/// ecCodes prints its own diagnostics to stderr; Boreas reports a failure as one line naming
/// the file and message, so its log goes to debug output instead.
void quiet_eccodes() {
    static const bool done = [] {
        codes_context_set_logging_proc(codes_context_get_default(),
                                       [](const codes_context*, int, const char* message) {
                                           log::debug("ecCodes: {}", message);
                                       });
        return true;
    }();
    (void)done;
}

std::string get_string(codes_handle* h, const char* key) {
    char buffer[256] = {0};
    std::size_t length = sizeof(buffer);
    if (codes_get_string(h, key, buffer, &length) != 0) return "";
    return buffer;
}

long get_long(codes_handle* h, const char* key, long fallback = 0) {
    long value = fallback;
    if (codes_get_long(h, key, &value) != 0) return fallback;
    return value;
}

}  // namespace

std::string GribMessage::anemoi_name() const {
    if (levtype == "sfc" || levtype == "o2d" || levtype.empty()) return short_name;
    return short_name + "_" + std::to_string(level);
}

namespace {

std::vector<GribMessage> read_messages(std::FILE* stream, const std::string& file);

}  // namespace

std::vector<GribMessage> read_grib(const std::filesystem::path& path) {
    const std::string file = path.string();
    std::unique_ptr<std::FILE, FileCloser> in(std::fopen(file.c_str(), "rb"));
    BOREAS_CHECK(in != nullptr, "cannot open GRIB file '{}'", file);
    return read_messages(in.get(), file);
}

std::vector<GribMessage> read_grib(std::span<const std::byte> bytes, const std::string& origin) {
    BOREAS_CHECK(!bytes.empty(), "GRIB data '{}' is empty", origin);
    // fmemopen does not write through a "rb" stream; the cast only satisfies its signature.
    std::unique_ptr<std::FILE, FileCloser> in(
        fmemopen(const_cast<std::byte*>(bytes.data()), bytes.size(), "rb"));
    BOREAS_CHECK(in != nullptr, "GRIB data '{}' cannot be opened", origin);
    return read_messages(in.get(), origin);
}

namespace {

std::vector<GribMessage> read_messages(std::FILE* stream, const std::string& file) {
    quiet_eccodes();
    std::vector<GribMessage> messages;
    for (std::size_t index = 1;; ++index) {
        int rc = 0;
        Handle h(codes_handle_new_from_file(nullptr, stream, PRODUCT_GRIB, &rc));
        BOREAS_CHECK(rc == 0, "GRIB file '{}': message {} cannot be read: {}", file, index,
                     codes_get_error_message(rc));
        if (!h) break;
        GribMessage m;
        m.index = index;
        m.edition = get_long(h.get(), "edition");
        m.short_name = get_string(h.get(), "shortName");
        m.param_id = get_long(h.get(), "paramId");
        m.levtype = get_string(h.get(), "levtype");
        m.type_of_level = get_string(h.get(), "typeOfLevel");
        m.level = get_long(h.get(), "level");
        m.data_date = get_long(h.get(), "dataDate");
        m.data_time = get_long(h.get(), "dataTime");
        m.validity_date = get_long(h.get(), "validityDate");
        m.validity_time = get_long(h.get(), "validityTime");
        m.grid_type = get_string(h.get(), "gridType");
        m.points = get_long(h.get(), "numberOfPoints");
        // A bound on what a message may claim before anything is allocated for it: 50 million
        // points is 7x a 0.1-degree global grid.
        constexpr std::int64_t kMaxPoints = 50'000'000;
        BOREAS_CHECK(m.points > 0 && m.points <= kMaxPoints,
                     "GRIB file '{}': message {} ({}) claims {} points (at most {} are read)", file,
                     index, m.short_name, m.points, kMaxPoints);
        std::size_t count = 0;
        rc = codes_get_size(h.get(), "values", &count);
        BOREAS_CHECK(rc != 0 || static_cast<std::int64_t>(count) == m.points,
                     "GRIB file '{}': message {} ({}): {} values for {} points", file, index,
                     m.short_name, count, m.points);
        if (rc == 0) {
            m.values.resize(count);
            rc = codes_get_double_array(h.get(), "values", m.values.data(), &count);
        }
        BOREAS_CHECK(rc == 0 && static_cast<std::int64_t>(count) == m.points,
                     "GRIB file '{}': message {} ({}): {} values for {} points{}{}", file, index,
                     m.short_name, count, m.points, rc ? ": " : "",
                     rc ? codes_get_error_message(rc) : "");
        if (get_long(h.get(), "bitmapPresent") != 0) {
            double missing = 9999;
            codes_get_double(h.get(), "missingValue", &missing);
            for (auto& v : m.values)
                if (v == missing) v = std::nan("");
        }
        const void* bytes = nullptr;
        std::size_t size = 0;
        rc = codes_get_message(h.get(), &bytes, &size);
        BOREAS_CHECK(rc == 0, "GRIB file '{}': message {}: {}", file, index,
                     codes_get_error_message(rc));
        const auto* b = static_cast<const unsigned char*>(bytes);
        m.bytes.assign(b, b + size);
        messages.push_back(std::move(m));
    }
    BOREAS_CHECK(!messages.empty(), "GRIB file '{}' holds no GRIB message", file);
    return messages;
}

}  // namespace

std::int64_t read_grib_points(const std::vector<unsigned char>& message) {
    Handle h(codes_handle_new_from_message_copy(nullptr, message.data(), message.size()));
    BOREAS_CHECK(h != nullptr, "a GRIB message of {} bytes cannot be decoded", message.size());
    return get_long(h.get(), "numberOfPoints");
}

void grib_coordinates(const GribMessage& message, std::vector<double>& latitudes,
                      std::vector<double>& longitudes) {
    quiet_eccodes();
    Handle h(
        codes_handle_new_from_message_copy(nullptr, message.bytes.data(), message.bytes.size()));
    BOREAS_CHECK(h != nullptr, "GRIB message {} ({}) cannot be decoded again", message.index,
                 message.short_name);
    latitudes.assign(static_cast<std::size_t>(message.points), 0.0);
    longitudes.assign(static_cast<std::size_t>(message.points), 0.0);
    std::vector<double> values(static_cast<std::size_t>(message.points));
    const int rc = codes_grib_get_data(h.get(), latitudes.data(), longitudes.data(), values.data());
    BOREAS_CHECK(rc == 0, "GRIB message {} ({}): no coordinates: {}", message.index,
                 message.short_name, codes_get_error_message(rc));
}

std::vector<unsigned char> encode_grib(const std::vector<unsigned char>& template_bytes,
                                       const std::vector<GribKey>& keys,
                                       const std::vector<double>& values, const std::string& what) {
    Handle h(
        codes_handle_new_from_message_copy(nullptr, template_bytes.data(), template_bytes.size()));
    BOREAS_CHECK(h != nullptr, "GRIB output {}: the template message cannot be decoded", what);
    for (const auto& key : keys) {
        int rc = 0;
        if (key.is_text) {
            std::size_t length = key.text.size();
            rc = codes_set_string(h.get(), key.name.c_str(), key.text.c_str(), &length);
        } else {
            rc = codes_set_long(h.get(), key.name.c_str(), key.number);
        }
        BOREAS_CHECK(rc == 0, "GRIB output {}: cannot set {}={}: {}", what, key.name,
                     key.is_text ? key.text : std::to_string(key.number),
                     codes_get_error_message(rc));
    }
    const int rc = codes_set_double_array(h.get(), "values", values.data(), values.size());
    BOREAS_CHECK(rc == 0, "GRIB output {}: cannot set {} values: {}", what, values.size(),
                 codes_get_error_message(rc));
    const void* bytes = nullptr;
    std::size_t size = 0;
    BOREAS_CHECK(codes_get_message(h.get(), &bytes, &size) == 0, "GRIB output {}: no message",
                 what);
    const auto* b = static_cast<const unsigned char*>(bytes);
    return {b, b + size};
}

}  // namespace boreas::io
