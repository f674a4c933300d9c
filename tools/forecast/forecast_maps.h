// forecast_maps.h: PNG maps of a forecast: one panel per step of one variable at
// one level, north at the top whatever the data's row order, one colour scale.
#pragma once

#include <string>
#include <vector>

namespace gc::forecast {

// values: [steps * n_lat * n_lon] in the data's row order (lat_deg gives it).
void write_forecast_map(const std::string& path, const std::string& title, const std::vector<float>& values,
                        int steps, const std::vector<double>& lat_deg, int n_lon, int hours_per_step);

}  // namespace gc::forecast
