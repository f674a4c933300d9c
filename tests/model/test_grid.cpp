// test_grid.cpp: equiangular and Gaussian grids: sizes, row order, positions,
// and area weights checked against the exact spherical band areas.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "model/grid.h"

namespace gc::model {
namespace {

double node_mean(const Grid& grid) {
  double sum = 0.0;
  for (double w : grid.row_weight) sum += w * grid.num_lon();
  return sum / grid.num_nodes();
}

TEST(Grid, EquiangularSizesAndRowOrder) {
  const Grid quarter = make_equiangular_grid(0.25);
  EXPECT_EQ(quarter.num_lat(), 721);
  EXPECT_EQ(quarter.num_lon(), 1440);
  EXPECT_EQ(quarter.num_nodes(), 1038240);
  EXPECT_EQ(quarter.latitude_deg.front(), 90.0);
  EXPECT_EQ(quarter.latitude_deg[360], 0.0);
  EXPECT_EQ(quarter.latitude_deg.back(), -90.0);
  EXPECT_EQ(quarter.longitude_deg[1], 0.25);
  EXPECT_EQ(quarter.longitude_deg.back(), 359.75);
  EXPECT_EQ(quarter.node_index(2, 5), 2 * 1440 + 5);
  const Grid one = make_equiangular_grid(1.0);
  EXPECT_EQ(one.num_lat(), 181);
  EXPECT_EQ(one.num_lon(), 360);
}

TEST(Grid, EquiangularWeightsAreBandAreas) {
  for (double spacing : {0.25, 1.0, 5.625, 10.0, 90.0}) {
    SCOPED_TRACE("spacing " + std::to_string(spacing));
    const Grid grid = make_equiangular_grid(spacing);
    const int64_t rows = grid.num_lat();
    EXPECT_NEAR(node_mean(grid), 1.0, 1e-12);
    for (int64_t i = 0; i < rows; ++i) EXPECT_NEAR(grid.row_weight[i], grid.row_weight[rows - 1 - i], 1e-12);
    // A row stands for the band between its half-spacing neighbours (a cap at
    // the poles); its share of the sphere, 2*pi*(sin top - sin bottom) / (4*pi),
    // times the number of rows is the normalized weight.
    const double half = spacing / 2 * M_PI / 180.0;
    for (int64_t i = 0; i < rows; ++i) {
      const double lat = grid.latitude_deg[i] * M_PI / 180.0;
      const double top = std::min(lat + half, M_PI / 2), bottom = std::max(lat - half, -M_PI / 2);
      const double expected = (std::sin(top) - std::sin(bottom)) / 2.0 * rows;
      EXPECT_NEAR(grid.row_weight[i], expected, 1e-12 * rows) << "row " << i;
    }
  }
}

TEST(Grid, EquiangularPoleRowFormula) {
  const double spacing = 1.0;
  const Grid grid = make_equiangular_grid(spacing);
  const double delta = spacing * M_PI / 180.0;
  // Ratio of pole row to equator row: sin(delta/4)^2 / (cos 0 * sin(delta/2)).
  EXPECT_NEAR(grid.row_weight[0] / grid.row_weight[90], std::pow(std::sin(delta / 4), 2) / std::sin(delta / 2),
              1e-12);
  EXPECT_NEAR(grid.row_weight[1] / grid.row_weight[90], std::cos(89.0 * M_PI / 180.0), 1e-12);
}

TEST(Grid, PositionsOnUnitSphere) {
  const Grid grid = make_equiangular_grid(10.0);
  const std::vector<Vec3> positions = grid_positions(grid);
  ASSERT_EQ(static_cast<int64_t>(positions.size()), grid.num_nodes());
  for (const Vec3& p : positions) EXPECT_NEAR(p[0] * p[0] + p[1] * p[1] + p[2] * p[2], 1.0, 1e-15);
  const Vec3 north = positions[grid.node_index(0, 7)];
  EXPECT_NEAR(north[2], 1.0, 1e-15);
  EXPECT_NEAR(std::hypot(north[0], north[1]), 0.0, 1e-15);
  const Vec3 equator_90e = positions[grid.node_index(9, 9)];  // lat 0, lon 90
  EXPECT_NEAR(equator_90e[0], 0.0, 1e-15);
  EXPECT_NEAR(equator_90e[1], 1.0, 1e-15);
  EXPECT_NEAR(equator_90e[2], 0.0, 1e-15);
  const std::vector<double> lats = grid_node_latitudes_deg(grid), lons = grid_node_longitudes_deg(grid);
  EXPECT_EQ(lats[grid.node_index(3, 4)], 60.0);
  EXPECT_EQ(lons[grid.node_index(3, 4)], 40.0);
}

// Gauss-Legendre nodes (sin latitude) and weights by Newton iteration on P_n.
void gauss_legendre(int n, std::vector<double>& nodes, std::vector<double>& weights) {
  nodes.assign(n, 0.0);
  weights.assign(n, 0.0);
  for (int i = 0; i < n; ++i) {
    double x = std::cos(M_PI * (i + 0.75) / (n + 0.5));
    double derivative = 0.0;
    for (int iteration = 0; iteration < 100; ++iteration) {
      double p0 = 1.0, p1 = x;
      for (int k = 2; k <= n; ++k) {
        const double p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      derivative = n * (x * p1 - p0) / (x * x - 1.0);
      const double step = p1 / derivative;
      x -= step;
      if (std::fabs(step) < 1e-16) break;
    }
    nodes[i] = x;
    weights[i] = 2.0 / ((1.0 - x * x) * derivative * derivative);
  }
}

TEST(Grid, GaussianFromLatitudes) {
  const int num_lat = 33;
  std::vector<double> sin_lat, gauss_weights;
  gauss_legendre(num_lat, sin_lat, gauss_weights);
  std::vector<double> latitude_deg(num_lat);
  double weight_sum = 0.0;
  for (int i = 0; i < num_lat; ++i) {
    latitude_deg[i] = std::asin(sin_lat[i]) * 180.0 / M_PI;
    weight_sum += gauss_weights[i];
  }
  ASSERT_NEAR(weight_sum, 2.0, 1e-13);
  const Grid grid = make_grid_from_latitudes(latitude_deg, 64, gauss_weights);
  EXPECT_EQ(grid.num_lat(), num_lat);
  EXPECT_EQ(grid.num_lon(), 64);
  EXPECT_EQ(grid.num_nodes(), num_lat * 64);
  EXPECT_GT(grid.latitude_deg.front(), 80.0);  // north to south, no pole row
  EXPECT_LT(grid.latitude_deg.front(), 90.0);
  EXPECT_EQ(grid.longitude_deg[16], 90.0);
  EXPECT_NEAR(node_mean(grid), 1.0, 1e-12);
  for (int i = 0; i < num_lat; ++i) {
    EXPECT_NEAR(grid.row_weight[i], gauss_weights[i] * num_lat / 2.0, 1e-12);
    EXPECT_NEAR(grid.row_weight[i], grid.row_weight[num_lat - 1 - i], 1e-12);
  }
  const std::vector<Vec3> positions = grid_positions(grid);
  EXPECT_NEAR(positions[grid.node_index(5, 0)][2], sin_lat[5], 1e-14);
}

TEST(Grid, RejectsBadInput) {
  EXPECT_THROW(make_equiangular_grid(0.0), std::invalid_argument);
  EXPECT_THROW(make_equiangular_grid(-1.0), std::invalid_argument);
  EXPECT_THROW(make_equiangular_grid(0.7), std::invalid_argument);
  EXPECT_THROW(make_equiangular_grid(std::nan("")), std::invalid_argument);
  EXPECT_THROW(make_grid_from_latitudes({10.0, -10.0}, 8, {1.0}), std::invalid_argument);
  EXPECT_THROW(make_grid_from_latitudes({10.0, -10.0}, 8, {1.0, -1.0}), std::invalid_argument);
  EXPECT_THROW(make_grid_from_latitudes({91.0, -10.0}, 8, {1.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(make_grid_from_latitudes({10.0, -10.0}, 0, {1.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(make_grid_from_latitudes({}, 8, {}), std::invalid_argument);
}

}  // namespace
}  // namespace gc::model
