#include "boreas/core/datetime.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "boreas/core/error.hpp"

namespace boreas {
namespace {

using namespace std::chrono;

constexpr std::int64_t kDay = 86400;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

year_month_day ymd_of(std::int64_t seconds) {
    return year_month_day{sys_days{days{floor_div(seconds, kDay)}}};
}

}  // namespace

DateTime DateTime::from_fields(int year, int month, int day, int hour, int minute, int second) {
    const year_month_day ymd{std::chrono::year{year},
                             std::chrono::month{static_cast<unsigned>(month)},
                             std::chrono::day{static_cast<unsigned>(day)}};
    BOREAS_CHECK(ymd.ok() && hour >= 0 && hour < 24 && minute >= 0 && minute < 60 && second >= 0 &&
                     second < 60,
                 "{:04}-{:02}-{:02} {:02}:{:02}:{:02} is not a valid date and time", year, month,
                 day, hour, minute, second);
    const auto d = sys_days{ymd}.time_since_epoch().count();
    return {static_cast<std::int64_t>(d) * kDay + hour * 3600 + minute * 60 + second};
}

DateTime DateTime::parse(const std::string& text) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    char sep = 'T';
    int used = 0;
    const int n =
        std::sscanf(text.c_str(), "%d-%d-%d%c%d:%d:%d%n", &y, &mo, &d, &sep, &h, &mi, &s, &used);
    bool ok = false;
    if (n == 3) {
        int date_only = 0;
        std::sscanf(text.c_str(), "%*d-%*d-%*d%n", &date_only);
        ok = static_cast<std::size_t>(date_only) == text.size();
    } else if (n == 5 && (sep == 'T' || sep == ' ')) {  // hours only, as Python's fromisoformat
        int hour_only = 0;
        std::sscanf(text.c_str(), "%*d-%*d-%*d%*c%*d%n", &hour_only);
        const std::string rest = text.substr(static_cast<std::size_t>(hour_only));
        ok = hour_only == 13 && (rest.empty() || rest == "Z" || rest == "+00:00");
    } else if (n >= 6 && (sep == 'T' || sep == ' ')) {
        if (n == 6) {
            s = 0;
            std::sscanf(text.c_str(), "%*d-%*d-%*d%*c%*d:%*d%n", &used);
        }
        const std::string rest = text.substr(static_cast<std::size_t>(used));
        ok = rest.empty() || rest == "Z" || rest == "+00:00";
    }
    BOREAS_CHECK(ok, "'{}' is not an ISO 8601 date-time (YYYY-MM-DDTHH[:MM[:SS]], UTC)", text);
    try {
        return from_fields(y, mo, d, h, mi, s);
    } catch (const Error&) {
        BOREAS_FAIL("'{}' is not a valid date and time", text);
    }
}

int DateTime::year() const {
    return static_cast<int>(ymd_of(seconds).year());
}
int DateTime::month() const {
    return static_cast<int>(static_cast<unsigned>(ymd_of(seconds).month()));
}
int DateTime::day() const {
    return static_cast<int>(static_cast<unsigned>(ymd_of(seconds).day()));
}
std::int64_t DateTime::seconds_of_day() const {
    return seconds - floor_div(seconds, kDay) * kDay;
}
int DateTime::hour() const {
    return static_cast<int>(seconds_of_day() / 3600);
}
int DateTime::minute() const {
    return static_cast<int>(seconds_of_day() % 3600 / 60);
}
int DateTime::second() const {
    return static_cast<int>(seconds_of_day() % 60);
}

int DateTime::day_of_year() const {
    const auto ymd = ymd_of(seconds);
    const auto jan1 = sys_days{ymd.year() / January / 1};
    return static_cast<int>((sys_days{ymd} - jan1).count()) + 1;
}

long DateTime::grib_date() const {
    return year() * 10000L + month() * 100L + day();
}
long DateTime::grib_time() const {
    return hour() * 100L + minute();
}

std::string DateTime::iso() const {
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", year(), month(), day(), hour(),
                       minute(), second());
}

std::int64_t parse_duration(const std::string& text) {
    const auto bad = [&] {
        BOREAS_FAIL("'{}' is not a duration (6h, 1d, 30m, 90s, H:M[:S])", text);
    };
    if (text.empty() || text.size() > 20) bad();
    std::int64_t parts[3] = {0, 0, 0};
    int fields = 0;
    std::size_t at = 0;
    while (true) {  // digits, then ':' or a unit letter or the end
        std::size_t digits = 0;
        std::int64_t value = 0;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9' && digits < 12) {
            value = value * 10 + (text[at++] - '0');
            ++digits;
        }
        if (digits == 0 || fields == 3) bad();
        parts[fields++] = value;
        if (at == text.size()) break;
        if (text[at] == ':') {
            ++at;
            continue;
        }
        if (fields != 1 || at + 1 != text.size()) bad();
        switch (text[at]) {
            case 'd':
                return value * kDay;
            case 'h':
                return value * 3600;
            case 'm':
                return value * 60;
            case 's':
                return value;
            default:
                bad();
        }
    }
    if (fields == 1) return parts[0] * 3600;  // a bare integer: hours
    return parts[0] * 3600 + parts[1] * 60 + parts[2];
}

}  // namespace boreas
