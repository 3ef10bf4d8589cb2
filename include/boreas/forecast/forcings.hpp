#pragma once
/// Forcings computed from the grid and the date, as anemoi-inference computes them for the
/// variables a checkpoint marks `computed_forcing` (earthkit-data's forcings source).

#include <string>
#include <vector>

#include "boreas/core/datetime.hpp"

namespace boreas::forecast {

/// The computed forcings Boreas knows: cos/sin_latitude, cos/sin_longitude, julian_day,
/// cos/sin_julian_day, local_time, cos/sin_local_time, insolation, cos_solar_zenith_angle.
const std::vector<std::string>& computed_forcing_names();
bool is_computed_forcing(const std::string& name);

/// `name` at every grid point (latitudes and longitudes in degrees) at `date`, in float32 as
/// anemoi-inference hands it to the model; throws naming an unknown forcing.
std::vector<float> computed_forcing(const std::string& name, const std::vector<double>& latitudes,
                                    const std::vector<double>& longitudes, const DateTime& date);

}  // namespace boreas::forecast
