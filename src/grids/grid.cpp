#include "boreas/grids/grid.hpp"

#include <eccodes.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include "boreas/core/error.hpp"
#include "boreas/grids/icosahedral.hpp"
#include "boreas/io/safetensors.hpp"

namespace boreas::grids {
namespace {

constexpr double kDegree = std::numbers::pi / 180.0;
// Refinement level 9 has 2.6 million nodes, well past any hidden grid in use; beyond that the
// mesh (and its multi-scale edges) would not fit in memory.
constexpr int kMaxIcosahedralLevel = 9;
// ecCodes ships reduced_gg_pl samples up to N2000; the octahedral rule itself has no limit, but
// O2560 (the IFS's finest) is the largest grid a model uses.
constexpr int kMaxGaussianN = 8000;

/// Fills latitudes/longitudes row by row: row r at latitude lats[r], row_lengths[r] points
/// evenly spaced from longitude 0 eastwards.
void fill_rows(Grid& grid, const std::vector<double>& row_latitudes) {
    std::int64_t total = 0;
    for (auto n : grid.row_lengths) total += n;
    grid.latitudes.reserve(total);
    grid.longitudes.reserve(total);
    for (std::size_t row = 0; row < grid.row_lengths.size(); ++row) {
        const auto count = grid.row_lengths[row];
        for (std::int64_t j = 0; j < count; ++j) {
            grid.latitudes.push_back(row_latitudes[row]);
            grid.longitudes.push_back(2.0 * std::numbers::pi * static_cast<double>(j) /
                                      static_cast<double>(count));
        }
    }
}

int parse_positive_int(std::string_view text, std::string_view spec) {
    int value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    BOREAS_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(),
                 "grid '{}': expected a whole number after the grid letter, found '{}'", spec,
                 text);
    return value;
}

double parse_positive_double(std::string_view text, std::string_view spec) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    BOREAS_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty() &&
                     std::isfinite(value) && value > 0,
                 "grid '{}': expected a positive spacing in degrees, found '{}'", spec, text);
    return value;
}

void check_gaussian_n(int n, char letter) {
    BOREAS_CHECK(n >= 1 && n <= kMaxGaussianN,
                 "grid {}{}: N must be between 1 and {} (number of latitude rows per hemisphere)",
                 letter, n, kMaxGaussianN);
}

std::vector<double> degrees_to_radians(std::span<const double> degrees) {
    std::vector<double> out(degrees.size());
    std::transform(degrees.begin(), degrees.end(), out.begin(),
                   [](double d) { return d * kDegree; });
    return out;
}

template <typename T>
std::vector<double> as_doubles(std::span<const T> values) {
    return std::vector<double>(values.begin(), values.end());
}

std::vector<double> read_degrees(const io::SafetensorsReader& file, const std::string& name) {
    const auto& info = file.info(name);
    BOREAS_CHECK(info.shape.size() == 1, "'{}': tensor '{}' must be 1-D, found shape {}",
                 file.path().string(), name, io::shape_string(info.shape));
    if (info.dtype == io::DType::F64) return as_doubles(file.view<double>(name));
    BOREAS_CHECK(info.dtype == io::DType::F32, "'{}': tensor '{}' must be F32 or F64, found {}",
                 file.path().string(), name, io::dtype_name(info.dtype));
    return as_doubles(file.view<float>(name));
}

}  // namespace

std::vector<double> gaussian_latitudes(int n) {
    check_gaussian_n(n, 'N');
    std::vector<double> degrees(2 * static_cast<std::size_t>(n));
    const int rc = codes_get_gaussian_latitudes(n, degrees.data());
    BOREAS_CHECK(rc == 0, "ecCodes could not compute the Gaussian latitudes of N{}: {}", n,
                 codes_get_error_message(rc));
    return degrees_to_radians(degrees);
}

std::vector<std::int64_t> reduced_gaussian_row_lengths(int n) {
    check_gaussian_n(n, 'N');
    const std::string sample = fmt::format("reduced_gg_pl_{}_grib2", n);
    codes_handle* handle = codes_handle_new_from_samples(nullptr, sample.c_str());
    BOREAS_CHECK(handle != nullptr,
                 "grid N{}: ecCodes has no sample '{}' with its row lengths (classic reduced "
                 "Gaussian grids exist for N32, 48, 64, 80, 96, 128, 160, 200, 256, 320, 400, "
                 "512, 640, 1024, 1280, 2000; is libeccodes-data installed?)",
                 n, sample);
    std::size_t count = 0;
    int rc = codes_get_size(handle, "pl", &count);
    std::vector<long> pl(count);
    if (rc == 0) rc = codes_get_long_array(handle, "pl", pl.data(), &count);
    codes_handle_delete(handle);
    BOREAS_CHECK(rc == 0, "grid N{}: cannot read 'pl' from ecCodes sample '{}': {}", n, sample,
                 codes_get_error_message(rc));
    BOREAS_CHECK(count == 2 * static_cast<std::size_t>(n),
                 "grid N{}: ecCodes sample '{}' has {} rows, expected {}", n, sample, count, 2 * n);
    return std::vector<std::int64_t>(pl.begin(), pl.end());
}

Grid octahedral_grid(int n) {
    check_gaussian_n(n, 'O');
    Grid grid;
    grid.name = fmt::format("O{}", n);
    grid.kind = GridKind::octahedral;
    grid.resolution = n;
    for (int row = 1; row <= 2 * n; ++row) {
        const int from_pole = row <= n ? row : 2 * n + 1 - row;
        grid.row_lengths.push_back(4 * from_pole + 16);
    }
    fill_rows(grid, gaussian_latitudes(n));
    return grid;
}

Grid reduced_gaussian_grid(int n) {
    check_gaussian_n(n, 'N');
    Grid grid;
    grid.name = fmt::format("N{}", n);
    grid.kind = GridKind::reduced_gaussian;
    grid.resolution = n;
    grid.row_lengths = reduced_gaussian_row_lengths(n);
    fill_rows(grid, gaussian_latitudes(n));
    return grid;
}

Grid regular_latlon_grid(double dlat, double dlon) {
    const double rows = 180.0 / dlat;
    const double columns = 360.0 / dlon;
    BOREAS_CHECK(std::abs(rows - std::round(rows)) < 1e-9 &&
                     std::abs(columns - std::round(columns)) < 1e-9,
                 "grid LL{}x{}: the spacing must divide 180 degrees in latitude and 360 in "
                 "longitude", dlat, dlon);
    BOREAS_CHECK(rows <= 36000 && columns <= 72000,
                 "grid LL{}x{}: finer than 0.005 degrees is not supported", dlat, dlon);
    Grid grid;
    grid.name = fmt::format("LL{}x{}", dlat, dlon);
    grid.kind = GridKind::regular_latlon;
    const auto nlat = static_cast<std::int64_t>(std::round(rows)) + 1;
    const auto nlon = static_cast<std::int64_t>(std::round(columns));
    std::vector<double> row_latitudes;
    for (std::int64_t i = 0; i < nlat; ++i) {
        row_latitudes.push_back((90.0 - static_cast<double>(i) * 180.0 / static_cast<double>(nlat - 1)) * kDegree);
        grid.row_lengths.push_back(nlon);
    }
    fill_rows(grid, row_latitudes);
    return grid;
}

Grid icosahedral_grid(int level) {
    BOREAS_CHECK(level >= 0 && level <= kMaxIcosahedralLevel,
                 "grid TRI{}: the refinement level must be between 0 and {}", level,
                 kMaxIcosahedralLevel);
    auto mesh = icosahedral_mesh(level);
    Grid grid;
    grid.name = fmt::format("TRI{}", level);
    grid.kind = GridKind::icosahedral;
    grid.resolution = level;
    grid.latitudes = std::move(mesh.latitudes);
    grid.longitudes = std::move(mesh.longitudes);
    return grid;
}

Grid read_nodes_file(const std::filesystem::path& path) {
    const std::string file = path.string();
    std::vector<double> lat_degrees, lon_degrees;
    std::ifstream probe(path, std::ios::binary);
    BOREAS_CHECK(probe.good(), "cannot open node file '{}'", file);
    char head[9] = {};
    probe.read(head, 9);
    const bool safetensors = probe.gcount() == 9 && head[8] == '{';
    probe.close();
    if (safetensors) {
        io::SafetensorsReader reader(path);
        lat_degrees = read_degrees(reader, "latitudes");
        lon_degrees = read_degrees(reader, "longitudes");
    } else {
        std::ifstream in(path);
        std::string line;
        for (int line_number = 1; std::getline(in, line); ++line_number) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream fields(line);
            double lat = 0, lon = 0;
            BOREAS_CHECK(static_cast<bool>(fields >> lat >> lon),
                         "node file '{}' line {}: expected 'lat lon' in degrees, found '{}'", file,
                         line_number, line);
            lat_degrees.push_back(lat);
            lon_degrees.push_back(lon);
        }
    }
    BOREAS_CHECK(!lat_degrees.empty(), "node file '{}' has no nodes", file);
    BOREAS_CHECK(lat_degrees.size() == lon_degrees.size(),
                 "node file '{}': {} latitudes but {} longitudes", file, lat_degrees.size(),
                 lon_degrees.size());
    for (std::size_t i = 0; i < lat_degrees.size(); ++i) {
        BOREAS_CHECK(std::isfinite(lat_degrees[i]) && std::isfinite(lon_degrees[i]) &&
                         std::abs(lat_degrees[i]) <= 90.0,
                     "node file '{}': node {} has lat {} lon {}; expected finite degrees with "
                     "|lat| <= 90", file, i, lat_degrees[i], lon_degrees[i]);
    }
    Grid grid;
    grid.name = fmt::format("file:{}", file);
    grid.kind = GridKind::file;
    grid.latitudes = degrees_to_radians(lat_degrees);
    grid.longitudes = degrees_to_radians(lon_degrees);
    return grid;
}

Grid make_grid(std::string_view spec) {
    BOREAS_CHECK(!spec.empty(), "empty grid name; expected O<N>, N<N>, LL<deg>, TRI<level> or "
                                "file:<path>");
    if (spec.rfind("file:", 0) == 0) return read_nodes_file(std::string(spec.substr(5)));
    std::string upper(spec);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    std::string_view text = upper;
    if (text.rfind("TRI", 0) == 0) return icosahedral_grid(parse_positive_int(text.substr(3), spec));
    if (text.rfind("LL", 0) == 0) {
        auto rest = text.substr(2);
        auto x = rest.find('X');
        const double dlat = parse_positive_double(rest.substr(0, x), spec);
        const double dlon =
            x == std::string_view::npos ? dlat : parse_positive_double(rest.substr(x + 1), spec);
        return regular_latlon_grid(dlat, dlon);
    }
    if (text.front() == 'O' || text.front() == 'N') {
        BOREAS_CHECK(text.size() > 1 && (std::isdigit(static_cast<unsigned char>(text[1])) ||
                                         text[1] == '-'),
                     "unknown grid '{}'; expected O<N>, N<N>, LL<deg>, TRI<level> or file:<path>",
                     spec);
        int n = 0;
        auto digits = text.substr(1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        BOREAS_CHECK(ec == std::errc() && end == digits.data() + digits.size(),
                     "grid '{}': expected a whole number after '{}'", spec, text.front());
        return text.front() == 'O' ? octahedral_grid(n) : reduced_gaussian_grid(n);
    }
    BOREAS_FAIL("unknown grid '{}'; expected O<N>, N<N>, LL<deg>, TRI<level> or file:<path>", spec);
}

std::vector<Vec3> unit_vectors(const Grid& grid) {
    std::vector<Vec3> points(grid.size());
    for (std::size_t i = 0; i < points.size(); ++i)
        points[i] = to_xyz(grid.latitudes[i], grid.longitudes[i]);
    return points;
}

}  // namespace boreas::grids
