#pragma once
/// UTC date-times (forecast dates, dataset dates): seconds since 1970-01-01T00:00:00Z (no leap
/// seconds, as numpy's datetime64 and anemoi count them), parsed from and printed as ISO 8601.

#include <cstdint>
#include <string>

namespace boreas {

struct DateTime {
    std::int64_t seconds = 0;  ///< since the Unix epoch, UTC

    /// "2024-06-01T06:00:00", "2024-06-01T06:00", "2024-06-01 06:00:00Z", "2024-06-01"; throws
    /// naming the text otherwise.
    static DateTime parse(const std::string& text);
    static DateTime from_fields(int year, int month, int day, int hour = 0, int minute = 0,
                                int second = 0);

    int year() const;
    int month() const;
    int day() const;
    int hour() const;
    int minute() const;
    int second() const;
    /// Seconds since 00:00 of the same day.
    std::int64_t seconds_of_day() const;
    /// 1 on 1 January.
    int day_of_year() const;
    /// YYYYMMDD and HHMM as GRIB's dataDate / dataTime.
    long grib_date() const;
    long grib_time() const;
    std::string iso() const;  ///< 2024-06-01T06:00:00

    DateTime operator+(std::int64_t s) const { return {seconds + s}; }
    std::int64_t operator-(const DateTime& other) const { return seconds - other.seconds; }
    bool operator==(const DateTime&) const = default;
    auto operator<=>(const DateTime&) const = default;
};

/// A duration in seconds as anemoi writes them (anemoi-utils' as_timedelta): "6h", "1d", "30m",
/// "90s", a bare integer meaning hours, or "H:M" / "H:M:S"; throws naming the text otherwise.
std::int64_t parse_duration(const std::string& text);

}  // namespace boreas
