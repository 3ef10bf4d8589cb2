// libFuzzer target: what `boreas forecast` parses from its inputs. The bytes go through the GRIB
// reader (ecCodes behind io::read_grib: every message's keys, values and, for the first, grid
// coordinates) and their first line through the ISO date parser. Anything but a boreas::Error is
// a bug. Built as a fuzzer with the `fuzz` preset; ctest replays the committed corpus.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "boreas/core/datetime.hpp"
#include "boreas/core/error.hpp"
#include "boreas/io/grib.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 64));
    try {
        (void)boreas::DateTime::parse(text.substr(0, text.find('\n')));
    } catch (const boreas::Error&) {
    }
    try {
        const auto messages = boreas::io::read_grib(
            std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
        std::vector<double> lats, lons;
        if (messages.front().points <= (1 << 20))
            boreas::io::grib_coordinates(messages.front(), lats, lons);
        for (const auto& m : messages) (void)m.anemoi_name();
    } catch (const boreas::Error&) {
    }
    return 0;
}
