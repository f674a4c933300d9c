// grid.cpp: equiangular and latitude-array grids, their area weights and positions.
//
// Latitudes and longitudes are computed from the row/column index (not by
// accumulating the spacing), so 0.25 deg rows hit the poles and the equator exactly.
#include "model/grid.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace gc::model {
namespace {

constexpr double kRadiansPerDegree = M_PI / 180.0;

std::vector<double> equally_spaced_longitudes(int64_t num_lon) {
  std::vector<double> longitude_deg(num_lon);
  for (int64_t j = 0; j < num_lon; ++j) longitude_deg[j] = 360.0 * j / num_lon;
  return longitude_deg;
}

void normalize_to_node_mean_one(std::vector<double>& row_weight) {
  // Every row has the same number of nodes, so the node mean is the row mean.
  double sum = 0.0;
  for (double w : row_weight) sum += w;
  const double mean = sum / row_weight.size();
  for (double& w : row_weight) w /= mean;
}

}  // namespace

Grid make_equiangular_grid(double spacing_deg) {
  if (!(spacing_deg > 0.0) || spacing_deg > 90.0) {
    throw std::invalid_argument("make_equiangular_grid: spacing must be in (0, 90] degrees, got " +
                                std::to_string(spacing_deg));
  }
  const double rows_between_poles = 180.0 / spacing_deg;
  const double rounded = std::round(rows_between_poles);
  if (std::fabs(rows_between_poles - rounded) > 1e-9 * rounded) {
    throw std::invalid_argument("make_equiangular_grid: 180 / spacing must be a whole number, got "
                                "spacing " + std::to_string(spacing_deg) + " deg");
  }
  const int64_t intervals = static_cast<int64_t>(rounded);
  Grid grid;
  grid.latitude_deg.resize(intervals + 1);
  for (int64_t i = 0; i <= intervals; ++i) grid.latitude_deg[i] = 90.0 - 180.0 * i / intervals;
  grid.longitude_deg = equally_spaced_longitudes(2 * intervals);

  const double delta = 180.0 / intervals * kRadiansPerDegree;
  grid.row_weight.resize(intervals + 1);
  for (int64_t i = 0; i <= intervals; ++i) {
    const bool pole_row = (i == 0 || i == intervals);
    grid.row_weight[i] =
        pole_row ? std::pow(std::sin(delta / 4), 2)
                 : std::cos(grid.latitude_deg[i] * kRadiansPerDegree) * std::sin(delta / 2);
  }
  normalize_to_node_mean_one(grid.row_weight);
  return grid;
}

Grid make_grid_from_latitudes(std::vector<double> latitude_deg, int64_t num_lon,
                              std::vector<double> quadrature_weights) {
  if (latitude_deg.empty() || num_lon < 1) {
    throw std::invalid_argument("make_grid_from_latitudes: need at least one row and one column, got " +
                                std::to_string(latitude_deg.size()) + " x " + std::to_string(num_lon));
  }
  if (quadrature_weights.size() != latitude_deg.size()) {
    throw std::invalid_argument("make_grid_from_latitudes: " + std::to_string(quadrature_weights.size()) +
                                " weights for " + std::to_string(latitude_deg.size()) + " latitudes");
  }
  for (size_t i = 0; i < latitude_deg.size(); ++i) {
    if (!(latitude_deg[i] >= -90.0 && latitude_deg[i] <= 90.0)) {
      throw std::invalid_argument("make_grid_from_latitudes: latitude " + std::to_string(latitude_deg[i]) +
                                  " at row " + std::to_string(i) + " is outside [-90, 90]");
    }
    if (!(quadrature_weights[i] > 0.0) || !std::isfinite(quadrature_weights[i])) {
      throw std::invalid_argument("make_grid_from_latitudes: weight " + std::to_string(quadrature_weights[i]) +
                                  " at row " + std::to_string(i) + " is not positive and finite");
    }
  }
  Grid grid;
  grid.latitude_deg = std::move(latitude_deg);
  grid.longitude_deg = equally_spaced_longitudes(num_lon);
  grid.row_weight = std::move(quadrature_weights);
  normalize_to_node_mean_one(grid.row_weight);
  return grid;
}

Vec3 unit_vector_from_lat_lon(double latitude_deg, double longitude_deg) {
  const double colatitude = (90.0 - latitude_deg) * kRadiansPerDegree;
  const double longitude = longitude_deg * kRadiansPerDegree;
  return {std::cos(longitude) * std::sin(colatitude), std::sin(longitude) * std::sin(colatitude),
          std::cos(colatitude)};
}

std::vector<Vec3> grid_positions(const Grid& grid) {
  std::vector<Vec3> positions(grid.num_nodes());
  for (int64_t i = 0; i < grid.num_lat(); ++i) {
    for (int64_t j = 0; j < grid.num_lon(); ++j) {
      positions[grid.node_index(i, j)] = unit_vector_from_lat_lon(grid.latitude_deg[i], grid.longitude_deg[j]);
    }
  }
  return positions;
}

std::vector<double> grid_node_latitudes_deg(const Grid& grid) {
  std::vector<double> latitudes(grid.num_nodes());
  for (int64_t i = 0; i < grid.num_lat(); ++i) {
    for (int64_t j = 0; j < grid.num_lon(); ++j) latitudes[grid.node_index(i, j)] = grid.latitude_deg[i];
  }
  return latitudes;
}

std::vector<double> grid_node_longitudes_deg(const Grid& grid) {
  std::vector<double> longitudes(grid.num_nodes());
  for (int64_t i = 0; i < grid.num_lat(); ++i) {
    for (int64_t j = 0; j < grid.num_lon(); ++j) longitudes[grid.node_index(i, j)] = grid.longitude_deg[j];
  }
  return longitudes;
}

}  // namespace gc::model
