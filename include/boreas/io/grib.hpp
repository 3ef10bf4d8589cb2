#pragma once
/// GRIB files through ecCodes: every message's identifying keys and values, its coordinates, and
/// new messages cloned from a template message with keys and values replaced.

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace boreas::io {

struct GribMessage {
    std::size_t index = 0;  ///< 1-based position in the file
    long edition = 0;
    std::string short_name;  ///< shortName (z, t, 2t, sp, lsm, ...)
    long param_id = 0;
    std::string levtype;        ///< MARS levtype: sfc, pl, ml, pt, pv, o2d, ...
    std::string type_of_level;  ///< typeOfLevel (isobaricInhPa, surface, ...)
    long level = 0;
    long data_date = 0, data_time = 0;          ///< reference date YYYYMMDD and time HHMM
    long validity_date = 0, validity_time = 0;  ///< valid date and time
    std::string grid_type;                      ///< gridType (reduced_gg, regular_ll, ...)
    std::int64_t points = 0;                    ///< numberOfPoints
    std::vector<double> values;                 ///< missing points (bitmap) as NaN
    std::vector<unsigned char> bytes;           ///< the message as encoded, a template for output

    /// anemoi-inference's default name: shortName for surface fields (levtype sfc, o2d),
    /// shortName_level otherwise (z_500).
    std::string anemoi_name() const;
};

/// Every message of a GRIB file; throws naming the file and the message on a truncated or
/// corrupt message or one ecCodes cannot decode.
/// A message claiming more points than `max_points` is refused before its values are decoded
/// (50 million: 7x a 0.1-degree global grid).
std::vector<GribMessage> read_grib(const std::filesystem::path& path,
                                   std::int64_t max_points = 50'000'000);
/// The same from bytes in memory; `origin` names them in errors.
std::vector<GribMessage> read_grib(std::span<const std::byte> bytes, const std::string& origin,
                                   std::int64_t max_points = 50'000'000);

/// numberOfPoints of an encoded message.
std::int64_t read_grib_points(const std::vector<unsigned char>& message);

/// Latitudes and longitudes (degrees) of every grid point of a message, in its value order.
void grib_coordinates(const GribMessage& message, std::vector<double>& latitudes,
                      std::vector<double>& longitudes);

/// A GRIB key's new value: text (set as a string) or an integer.
struct GribKey {
    std::string name;
    std::string text;
    long number = 0;
    bool is_text = false;
    static GribKey of(std::string name, std::string text) {
        return {std::move(name), std::move(text), 0, true};
    }
    static GribKey of(std::string name, long number) {
        return {std::move(name), {}, number, false};
    }
};

/// A message cloned from `template_bytes` (a whole GRIB message) with `keys` set in the given
/// order (ecCodes derives keys from one another: the order matters), then `values`; returns the
/// encoded bytes. `what` names the message in errors.
std::vector<unsigned char> encode_grib(const std::vector<unsigned char>& template_bytes,
                                       const std::vector<GribKey>& keys,
                                       const std::vector<double>& values, const std::string& what);

}  // namespace boreas::io
