#pragma once
/// Where a forecast's initial conditions come from and where its steps go.
///
/// Inputs: GRIB (fields named as anemoi-inference names them: shortName for surface fields,
/// shortName_level otherwise; matched to the model's inputs at each input date, on the
/// checkpoint's grid), a safetensors state (one tensor per input variable, [dates, points] or
/// [points] for a constant, metadata "date" = the last input date), or an anemoi dataset
/// ("STORE@DATE": the fields of the input dates up to DATE, ensemble member 0).
/// Outputs, chosen by the path: `.nc` NetCDF in anemoi-inference's layout, `.grib`/`.grib2`
/// GRIB2 (messages cloned from the input's of the same variable), anything else a folder of one
/// safetensors state per step.

#include <filesystem>
#include <memory>
#include <optional>

#include "boreas/forecast/forecast.hpp"

namespace boreas::forecast {

/// Reads initial conditions for `context`; `date` (optional) is the forecast's base date, else
/// the file's latest valid date (GRIB), its "date" metadata (safetensors) or the date after '@'
/// (datasets). Throws naming the
/// file and the missing fields, the date or the grid that differs.
InitialConditions read_initial_conditions(const std::filesystem::path& path,
                                          const ForecastContext& context,
                                          std::optional<DateTime> date);

/// Whether the file starts with a GRIB message ("GRIB"): GRIB initial conditions, whose messages
/// also serve as GRIB output templates.
bool is_grib(const std::filesystem::path& path);

enum class OutputFormat { netcdf, grib, safetensors };
OutputFormat output_format(const std::filesystem::path& path);

/// A writer for `path` (format from output_format). It is created before the first step so that
/// an output that cannot be written fails before any compute; GRIB templates come from `grib_input`
/// when the initial conditions were GRIB.
/// `initial_state`: step 0 will be written too (its variables get a place in the NetCDF file).
std::unique_ptr<Writer> make_writer(const std::filesystem::path& path,
                                    const ForecastContext& context, const DateTime& base,
                                    const std::optional<std::filesystem::path>& grib_input,
                                    bool initial_state = true);

}  // namespace boreas::forecast
