// grid.h: latitude-longitude grids (the nodes the data lives on).
//
// Node index = i_lat * num_lon + i_lon. Row order is whatever the latitude array
// says; the equiangular constructor runs from +90 (north pole) to -90, the row
// order of ERA5 files. Longitudes are equally spaced from 0 (east positive).
// row_weight is the area (loss) weight of each row, normalized so that its mean
// over all grid nodes is 1.
#pragma once

#include <cstdint>
#include <vector>

#include "model/mesh.h"

namespace gc::model {

struct Grid {
  std::vector<double> latitude_deg;   // [num_lat] row latitudes
  std::vector<double> longitude_deg;  // [num_lon] 0, 360/num_lon, ...
  std::vector<double> row_weight;     // [num_lat] area weight, mean over nodes 1

  int64_t num_lat() const { return static_cast<int64_t>(latitude_deg.size()); }
  int64_t num_lon() const { return static_cast<int64_t>(longitude_deg.size()); }
  int64_t num_nodes() const { return num_lat() * num_lon(); }
  int64_t node_index(int64_t i_lat, int64_t i_lon) const { return i_lat * num_lon() + i_lon; }
};

// Equiangular grid including both poles: 0.25 deg -> 721 x 1440, 1 deg -> 181 x 360.
// Rows run from +90 to -90. Weights: cos(lat) sin(delta/2) on interior rows and
// sin(delta/4)^2 on the two pole rows (the area of the cell each row stands for),
// normalized. Throws std::invalid_argument unless 180/spacing is a whole number.
Grid make_equiangular_grid(double spacing_deg);

// Grid defined by its row latitudes (e.g. a Gaussian grid, no pole rows) with
// num_lon equally spaced longitudes from 0. quadrature_weights [num_lat] are the
// caller's positive per-row weights (Gauss weights w_j); they are rescaled to mean 1
// over the nodes (for Gauss weights summing to 2 that is w_j * num_lat / 2).
Grid make_grid_from_latitudes(std::vector<double> latitude_deg, int64_t num_lon,
                              std::vector<double> quadrature_weights);

// Unit vector of (lat, lon): colatitude theta = 90 - lat,
// x = (cos lon sin theta, sin lon sin theta, cos theta).
Vec3 unit_vector_from_lat_lon(double latitude_deg, double longitude_deg);

// Positions of all grid nodes in node-index order. [num_nodes]
std::vector<Vec3> grid_positions(const Grid& grid);

// Per-node latitude and longitude in node-index order. [num_nodes] each.
std::vector<double> grid_node_latitudes_deg(const Grid& grid);
std::vector<double> grid_node_longitudes_deg(const Grid& grid);

}  // namespace gc::model
