#include "boreas/io/grib.hpp"

#include <eccodes.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <string_view>

#include "boreas/core/error.hpp"
#include "boreas/core/log.hpp"

namespace boreas::io {
namespace {

struct HandleDeleter {
    void operator()(codes_handle* h) const { codes_handle_delete(h); }
};
using Handle = std::unique_ptr<codes_handle, HandleDeleter>;

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

std::uint64_t big_endian(const unsigned char* p, int bytes) {
    std::uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value = value << 8 | p[i];
    return value;
}

/// The messages of a GRIB file by its own framing, checked before ecCodes sees any of it:
/// "GRIB", the edition (octet 8), the total length (GRIB2: octets 9-16; GRIB1: octets 5-7),
/// inside the data and ending in "7777". ecCodes' file reader trusts the length and overflows
/// its buffer on a message that claims fewer bytes than its own header (found by fuzzing).
std::vector<std::pair<std::size_t, std::size_t>> frame_messages(std::span<const unsigned char> data,
                                                                const std::string& file) {
    std::vector<std::pair<std::size_t, std::size_t>> frames;
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    for (std::size_t at = text.find("GRIB"); at != std::string_view::npos;
         at = text.find("GRIB", at)) {
        const std::size_t index = frames.size() + 1;
        BOREAS_CHECK(at + 16 <= data.size(),
                     "GRIB file '{}': message {} at byte {} is truncated (its header)", file, index,
                     at);
        const unsigned edition = data[at + 7];
        std::uint64_t length = 0;
        if (edition == 2) {
            length = big_endian(&data[at + 8], 8);
        } else if (edition == 1) {
            length = big_endian(&data[at + 4], 3);
            BOREAS_CHECK((length & 0x800000) == 0,
                         "GRIB file '{}': message {} is a GRIB1 message over 8 MB (large-message "
                         "length encoding), which Boreas does not read",
                         file, index);
        } else {
            BOREAS_FAIL("GRIB file '{}': message {} at byte {} has edition {} (1 or 2 expected)",
                        file, index, at, edition);
        }
        const bool inside = length >= 20 && length <= data.size() - at;
        BOREAS_CHECK(inside && text.substr(at + length - 4, 4) == "7777",
                     "GRIB file '{}': message {} at byte {} claims {} bytes{}: truncated or "
                     "corrupt",
                     file, index, at, length, inside ? " without its end marker 7777" : "");
        frames.emplace_back(at, static_cast<std::size_t>(length));
        at += static_cast<std::size_t>(length);
    }
    return frames;
}

/// Whether `unit` is a time unit of GRIB's code table (GRIB1 table 4, GRIB2 code table 4.4):
/// minute, hour, day, month, year, decade, normal, century, 3/6/12 hours, and for GRIB1 quarter
/// and half hours and seconds, for GRIB2 seconds.
bool known_time_unit(long edition, long unit) {
    if ((unit >= 0 && unit <= 7) || (unit >= 10 && unit <= 12)) return true;
    if (edition == 1) return unit == 13 || unit == 14 || unit == 254;
    return unit == 13;
}

/// The message's valid date and time from ecCodes (validityDate/validityTime, as
/// anemoi-inference reads them through earthkit), after checking the step's time units: on a
/// unit outside the code table ecCodes 2.28's validityTime computation never returns (found by
/// fuzzing, tests/fuzz/corpus/fuzz_forecast_input/eccodes-validity-time-hang.grib2).
void set_validity(codes_handle* h, GribMessage& m, const std::string& file) {
    for (const char* key : {"indicatorOfUnitOfTimeRange", "indicatorOfUnitForTimeRange"}) {
        long unit = 0;
        if (codes_get_long(h, key, &unit) != 0) continue;  // not in this product template
        BOREAS_CHECK(known_time_unit(m.edition, unit),
                     "GRIB file '{}': message {} ({}) has {} = {}, not a time unit of GRIB{}'s "
                     "code table",
                     file, m.index, m.short_name, key, unit, m.edition);
    }
    m.validity_date = get_long(h, "validityDate", -1);
    m.validity_time = get_long(h, "validityTime", -1);
}

std::vector<GribMessage> read_messages(std::span<const unsigned char> data, const std::string& file,
                                       std::int64_t max_points) {
    quiet_eccodes();
    std::vector<GribMessage> messages;
    const auto frames = frame_messages(data, file);
    for (std::size_t index = 1; index <= frames.size(); ++index) {
        const auto [offset, length] = frames[index - 1];
        Handle h(codes_handle_new_from_message_copy(nullptr, data.data() + offset, length));
        BOREAS_CHECK(h != nullptr, "GRIB file '{}': message {} cannot be decoded", file, index);
        int rc = 0;
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
        set_validity(h.get(), m, file);
        m.grid_type = get_string(h.get(), "gridType");
        m.points = get_long(h.get(), "numberOfPoints");
        BOREAS_CHECK(m.points > 0 && m.points <= max_points,
                     "GRIB file '{}': message {} ({}) claims {} points (at most {} are read)", file,
                     index, m.short_name, m.points, max_points);
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

std::vector<GribMessage> read_grib(const std::filesystem::path& path, std::int64_t max_points) {
    const std::string file = path.string();
    std::ifstream in(path, std::ios::binary);
    BOREAS_CHECK(in.good(), "cannot open GRIB file '{}'", file);
    const std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)),
                                          std::istreambuf_iterator<char>());
    return read_messages(data, file, max_points);
}

std::vector<GribMessage> read_grib(std::span<const std::byte> bytes, const std::string& origin,
                                   std::int64_t max_points) {
    BOREAS_CHECK(!bytes.empty(), "GRIB data '{}' is empty", origin);
    return read_messages({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()},
                         origin, max_points);
}

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
    // ecCodes sizes its grid iterator from the geometry keys and aborts the process when that
    // allocation fails (found by fuzzing): the geometry must describe numberOfPoints first.
    const std::string grid = message.grid_type;
    if (grid == "reduced_gg" || grid == "regular_gg") {
        const long n = get_long(h.get(), "N");
        BOREAS_CHECK(n >= 1 && n <= 8000,
                     "GRIB message {} ({}): Gaussian grid N = {} (expected 1 to 8000)",
                     message.index, message.short_name, n);
    }
    if (grid == "reduced_gg") {
        std::size_t rows = 0;
        BOREAS_CHECK(codes_get_size(h.get(), "pl", &rows) == 0 && rows > 0 && rows <= 16000,
                     "GRIB message {} ({}): a reduced Gaussian grid without a valid pl array",
                     message.index, message.short_name);
        std::vector<long> pl(rows);
        BOREAS_CHECK(codes_get_long_array(h.get(), "pl", pl.data(), &rows) == 0,
                     "GRIB message {} ({}): pl cannot be read", message.index, message.short_name);
        long long total = 0;
        for (const long p : pl) total += p >= 0 && p <= 100000 ? p : 1LL << 40;
        BOREAS_CHECK(total == message.points,
                     "GRIB message {} ({}): the rows' pl add up to {} points, numberOfPoints is {} "
                     "(only global reduced Gaussian grids are read)",
                     message.index, message.short_name, total, message.points);
    } else if (grid == "regular_ll" || grid == "regular_gg") {
        const long ni = get_long(h.get(), "Ni"), nj = get_long(h.get(), "Nj");
        BOREAS_CHECK(ni > 0 && nj > 0 && ni <= 100000 && nj <= 100000 &&
                         static_cast<long long>(ni) * nj == message.points,
                     "GRIB message {} ({}): Ni x Nj = {} x {} for {} points", message.index,
                     message.short_name, ni, nj, message.points);
    } else {
        BOREAS_FAIL(
            "GRIB message {} ({}): grid type '{}' is not read (reduced_gg, regular_gg, "
            "regular_ll are)",
            message.index, message.short_name, grid);
    }
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
