#include "boreas/forecast/forcings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "boreas/core/error.hpp"

namespace boreas::forecast {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kDaysPerYear = 365.25;  // earthkit's DAYS_PER_YEAR

double radians(double degrees) {
    return degrees * kPi / 180.0;
}

/// Days since 1 January 00:00 of the date's year, fractional (earthkit's julian_day: 0 at the
/// start of the year).
double julian_day(const DateTime& date) {
    return static_cast<double>(date.day_of_year() - 1) +
           static_cast<double>(date.seconds_of_day()) / 86400.0;
}

/// earthkit-meteo's cos_solar_zenith_angle: declination and equation-of-time fits in the year's
/// angle, the hour angle from the whole UTC hour, clipped at 0 (night).
double cos_solar_zenith(const DateTime& date, double latitude, double longitude) {
    const double angle = julian_day(date) / kDaysPerYear * kPi * 2;
    const double declination = 0.396372 - 22.91327 * std::cos(angle) + 4.025430 * std::sin(angle) -
                               0.387205 * std::cos(2 * angle) + 0.051967 * std::sin(2 * angle) -
                               0.154527 * std::cos(3 * angle) + 0.084798 * std::sin(3 * angle);
    const double time_correction = 0.004297 + 0.107029 * std::cos(angle) -
                                   1.837877 * std::sin(angle) - 0.837378 * std::cos(2 * angle) -
                                   2.340475 * std::sin(2 * angle);
    const double d = radians(declination), lat = radians(latitude);
    const double solar_angle = radians((date.hour() - 12) * 15.0 + longitude + time_correction);
    const double value =
        std::sin(d) * std::sin(lat) + std::cos(d) * std::cos(lat) * std::cos(solar_angle);
    return std::max(value, 0.0);
}

/// earthkit's toa_incident_solar_radiation at `date`: the mean of (incoming radiation x cos of the
/// solar zenith angle) over [date - 30 min, date + 30 min], two half-hour intervals with 3-point
/// Gauss-Legendre nodes each, every node's time rounded as Python's timedelta rounds it (to the
/// microsecond, then whole seconds as datetime arithmetic keeps them).
double toa_incident_solar_radiation(const DateTime& date, double latitude, double longitude) {
    const DateTime begin = date + (-30 * 60);
    const double interval_hours = 1.0;
    const int splits = 2;  // int(1 h x 2 per hour + 0.5)
    const double c1 = std::sqrt(5.0 / 9.0);
    const double nodes[3] = {-c1, 0.0, c1};
    const double weights[3] = {5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0};
    double integral = 0;
    for (int s = 0; s < splits; ++s) {
        const double ti = interval_hours * s / splits, tf = interval_hours * (s + 1) / splits;
        const double jacob = (tf - ti) / 2.0;
        for (int n = 0; n < 3; ++n) {
            const double w = jacob * weights[n] / interval_hours;
            const double t = jacob * nodes[n] + (tf + ti) / 2.0;
            const auto microseconds = static_cast<std::int64_t>(std::nearbyint(t * 3600.0 * 1e6));
            const DateTime at = begin + microseconds / 1000000;
            const double angle = julian_day(at) / kDaysPerYear * kPi * 2;
            const double incoming = std::cos(angle) * 165120.0 + 4892416.0;
            integral += w * (incoming * cos_solar_zenith(at, latitude, longitude));
        }
    }
    return integral;
}

/// Hours since the date's midnight plus the longitude's offset, modulo 24 (earthkit's local_time).
double local_time(const DateTime& date, double longitude) {
    const double hours = static_cast<double>(date.seconds_of_day()) / 86400.0 * 24.0;
    return std::fmod(std::fmod(longitude / 360.0 * 24.0 + hours, 24.0) + 24.0, 24.0);
}

}  // namespace

const std::vector<std::string>& computed_forcing_names() {
    static const std::vector<std::string> names = {"cos_latitude",
                                                   "sin_latitude",
                                                   "cos_longitude",
                                                   "sin_longitude",
                                                   "julian_day",
                                                   "cos_julian_day",
                                                   "sin_julian_day",
                                                   "local_time",
                                                   "cos_local_time",
                                                   "sin_local_time",
                                                   "insolation",
                                                   "cos_solar_zenith_angle",
                                                   "toa_incident_solar_radiation",
                                                   "latitude",
                                                   "longitude",
                                                   "ecef_x",
                                                   "ecef_y",
                                                   "ecef_z"};
    return names;
}

bool is_computed_forcing(const std::string& name) {
    const auto& names = computed_forcing_names();
    return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<float> computed_forcing(const std::string& name, const std::vector<double>& latitudes,
                                    const std::vector<double>& longitudes, const DateTime& date) {
    BOREAS_CHECK(latitudes.size() == longitudes.size(),
                 "computed forcing '{}': {} latitudes but {} longitudes", name, latitudes.size(),
                 longitudes.size());
    std::vector<float> out(latitudes.size());
    auto fill = [&](auto&& f) {
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<float>(f(latitudes[i], longitudes[i]));
    };
    const double jd = julian_day(date);
    const double year_angle = jd / kDaysPerYear * kPi * 2;
    if (name == "cos_latitude")
        fill([](double lat, double) { return std::cos(radians(lat)); });
    else if (name == "sin_latitude")
        fill([](double lat, double) { return std::sin(radians(lat)); });
    else if (name == "cos_longitude")
        fill([](double, double lon) { return std::cos(radians(lon)); });
    else if (name == "sin_longitude")
        fill([](double, double lon) { return std::sin(radians(lon)); });
    else if (name == "julian_day")
        fill([&](double, double) { return jd; });
    else if (name == "cos_julian_day")
        fill([&](double, double) { return std::cos(year_angle); });
    else if (name == "sin_julian_day")
        fill([&](double, double) { return std::sin(year_angle); });
    else if (name == "local_time")
        fill([&](double, double lon) { return local_time(date, lon); });
    else if (name == "cos_local_time")
        fill([&](double, double lon) { return std::cos(local_time(date, lon) / 24.0 * kPi * 2); });
    else if (name == "sin_local_time")
        fill([&](double, double lon) { return std::sin(local_time(date, lon) / 24.0 * kPi * 2); });
    else if (name == "latitude")
        fill([](double lat, double) { return lat; });
    else if (name == "longitude")
        fill([](double, double lon) { return lon; });
    else if (name == "ecef_x")
        fill(
            [](double lat, double lon) { return std::cos(radians(lat)) * std::cos(radians(lon)); });
    else if (name == "ecef_y")
        fill(
            [](double lat, double lon) { return std::cos(radians(lat)) * std::sin(radians(lon)); });
    else if (name == "ecef_z")
        fill([](double lat, double) { return std::sin(radians(lat)); });
    else if (name == "toa_incident_solar_radiation")
        fill([&](double lat, double lon) { return toa_incident_solar_radiation(date, lat, lon); });
    else if (name == "insolation" || name == "cos_solar_zenith_angle")
        fill([&](double lat, double lon) { return cos_solar_zenith(date, lat, lon); });
    else
        BOREAS_FAIL("'{}' is not a computed forcing Boreas knows ({})", name,
                    fmt::join(computed_forcing_names(), ", "));
    return out;
}

}  // namespace boreas::forecast
