// test_features.cpp: node and edge structural features (GRAPHCAST.md section 3):
// frame identities (own position -> radial, tangent steps -> east/north), zero
// self edges, length preservation, and the normalization maximum of 1.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>

#include "model/features.h"
#include "model/graphs.h"
#include "model/grid.h"
#include "model/mesh.h"

namespace gc::model {
namespace {

SphereNodes nodes_at(const std::vector<std::pair<double, double>>& lat_lon_deg) {
  SphereNodes nodes;
  for (const auto& [lat, lon] : lat_lon_deg) {
    nodes.positions.push_back(unit_vector_from_lat_lon(lat, lon));
    nodes.latitude_deg.push_back(lat);
    nodes.longitude_deg.push_back(lon);
  }
  return nodes;
}

TEST(Features, GridNodeFeatures) {
  const Grid grid = make_equiangular_grid(30.0);
  const SphereNodes nodes = grid_sphere_nodes(grid);
  const std::vector<float> features = node_structural_features(nodes);
  ASSERT_EQ(static_cast<int64_t>(features.size()), 3 * grid.num_nodes());
  for (int64_t i = 0; i < grid.num_lat(); ++i) {
    for (int64_t j = 0; j < grid.num_lon(); ++j) {
      const int64_t n = grid.node_index(i, j);
      const double lat = grid.latitude_deg[i] * M_PI / 180, lon = grid.longitude_deg[j] * M_PI / 180;
      EXPECT_FLOAT_EQ(features[3 * n + 0], static_cast<float>(std::sin(lat)));
      EXPECT_FLOAT_EQ(features[3 * n + 1], static_cast<float>(std::cos(lon)));
      EXPECT_FLOAT_EQ(features[3 * n + 2], static_cast<float>(std::sin(lon)));
    }
  }
  // Pole rows keep their longitude (not derivable from the position).
  EXPECT_NEAR(features[3 * grid.node_index(0, 3) + 1], 0.0f, 1e-7);  // cos 90
  EXPECT_FLOAT_EQ(features[3 * grid.node_index(0, 3) + 2], 1.0f);
}

TEST(Features, MeshNodeFeaturesFromPositions) {
  const Mesh mesh = build_mesh_hierarchy(2).back();
  const std::vector<float> features = node_structural_features(mesh_sphere_nodes(mesh));
  ASSERT_EQ(features.size(), 3 * mesh.vertices.size());
  for (size_t v = 0; v < mesh.vertices.size(); ++v) {
    const Vec3& x = mesh.vertices[v];
    const double horizontal = std::hypot(x[0], x[1]);
    EXPECT_NEAR(features[3 * v + 0], x[2], 1e-7);
    EXPECT_NEAR(features[3 * v + 1], x[0] / horizontal, 1e-7);
    EXPECT_NEAR(features[3 * v + 2], x[1] / horizontal, 1e-7);
  }
}

TEST(Features, LocalFrameIdentities) {
  // Receivers at odd places, poles included; senders placed relative to them.
  const std::vector<std::pair<double, double>> receivers_lat_lon = {
      {0, 0}, {37.5, 123.25}, {-61, 301}, {90, 45}, {-90, 200}, {12.25, -77}};
  const SphereNodes receivers = nodes_at(receivers_lat_lon);
  const double step = 0.01;
  SphereNodes senders;
  std::vector<int32_t> sender_ids, receiver_ids;
  for (size_t r = 0; r < receivers.positions.size(); ++r) {
    const Vec3& x = receivers.positions[r];
    const double lat = receivers.latitude_deg[r] * M_PI / 180, lon = receivers.longitude_deg[r] * M_PI / 180;
    const Vec3 east = {-std::sin(lon), std::cos(lon), 0.0};
    const Vec3 north = {-std::sin(lat) * std::cos(lon), -std::sin(lat) * std::sin(lon), std::cos(lat)};
    const std::vector<Vec3> placed = {
        x,                                                                    // self edge
        {2 * x[0], 2 * x[1], 2 * x[2]},                                       // d = own position
        {x[0] + step * east[0], x[1] + step * east[1], x[2] + step * east[2]},  // d = step * east
        {x[0] + step * north[0], x[1] + step * north[1], x[2] + step * north[2]}};
    for (const Vec3& p : placed) {
      sender_ids.push_back(static_cast<int32_t>(senders.positions.size()));
      receiver_ids.push_back(static_cast<int32_t>(r));
      senders.positions.push_back(p);
      senders.latitude_deg.push_back(0.0);  // sender angles are not used by edge features
      senders.longitude_deg.push_back(0.0);
    }
  }
  // make_graph keeps this order: receivers ascending, senders ascending within.
  const Graph graph = make_graph(static_cast<int64_t>(senders.positions.size()),
                                 static_cast<int64_t>(receivers.positions.size()), sender_ids, receiver_ids);
  double normalization = 0.0;
  const std::vector<float> features = edge_features(graph, senders, receivers, &normalization);
  ASSERT_EQ(static_cast<int64_t>(features.size()), 4 * graph.num_edges());
  EXPECT_NEAR(normalization, 1.0, 1e-15);  // the "own position" edges have |d| = 1
  for (size_t r = 0; r < receivers.positions.size(); ++r) {
    SCOPED_TRACE("receiver at lat " + std::to_string(receivers.latitude_deg[r]));
    const float* self = &features[4 * (4 * r + 0)];
    const float* radial = &features[4 * (4 * r + 1)];
    const float* east = &features[4 * (4 * r + 2)];
    const float* north = &features[4 * (4 * r + 3)];
    for (int k = 0; k < 4; ++k) EXPECT_EQ(self[k], 0.0f);
    const double expected_radial[4] = {1, 1, 0, 0}, expected_east[4] = {step, 0, step, 0},
                 expected_north[4] = {step, 0, 0, step};
    for (int k = 0; k < 4; ++k) {
      EXPECT_NEAR(radial[k], expected_radial[k], 1e-7);
      EXPECT_NEAR(east[k], expected_east[k], 1e-7);
      EXPECT_NEAR(north[k], expected_north[k], 1e-7);
    }
  }
}

TEST(Features, GraphFeaturesNormalizedAndLengthPreserving) {
  const Grid grid = make_equiangular_grid(10.0);
  const std::vector<Mesh> meshes = build_mesh_hierarchy(2);
  const SphereNodes grid_nodes = grid_sphere_nodes(grid);
  const SphereNodes mesh_nodes = mesh_sphere_nodes(meshes.back());
  struct Case {
    const char* name;
    Graph graph;
    const SphereNodes* senders;
    const SphereNodes* receivers;
  };
  const Case cases[] = {
      {"multimesh", build_multimesh(meshes), &mesh_nodes, &mesh_nodes},
      {"grid2mesh", build_grid2mesh(grid_nodes.positions, meshes.back()), &grid_nodes, &mesh_nodes},
      {"mesh2grid", build_mesh2grid(grid_nodes.positions, meshes.back()), &mesh_nodes, &grid_nodes}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    double normalization = 0.0;
    const std::vector<float> features = edge_features(c.graph, *c.senders, *c.receivers, &normalization);
    double longest = 0.0, largest_feature = 0.0;
    for (int64_t e = 0; e < c.graph.num_edges(); ++e) {
      const Vec3& xs = c.senders->positions[c.graph.senders[e]];
      const Vec3& xr = c.receivers->positions[c.graph.receivers[e]];
      const double length = std::sqrt(std::pow(xs[0] - xr[0], 2) + std::pow(xs[1] - xr[1], 2) + std::pow(xs[2] - xr[2], 2));
      longest = std::max(longest, length);
      const float* f = &features[4 * e];
      largest_feature = std::max(largest_feature, static_cast<double>(f[0]));
      // The frame is orthonormal: components reproduce the length.
      EXPECT_NEAR(std::sqrt(double(f[1]) * f[1] + double(f[2]) * f[2] + double(f[3]) * f[3]), f[0], 1e-6);
    }
    EXPECT_DOUBLE_EQ(normalization, longest);
    EXPECT_EQ(largest_feature, 1.0);
  }
  // The multimesh's longest edge is an M0 edge.
  double multimesh_normalization = 0.0;
  edge_features(cases[0].graph, mesh_nodes, mesh_nodes, &multimesh_normalization);
  EXPECT_NEAR(multimesh_normalization, 1.051462, 1e-6);
}

TEST(Features, RejectsMismatchedNodeSets) {
  const Mesh mesh = base_icosahedron();
  const SphereNodes mesh_nodes = mesh_sphere_nodes(mesh);
  const Graph graph = build_mesh_graph(mesh);
  const SphereNodes too_few = nodes_at({{0, 0}});
  EXPECT_THROW(edge_features(graph, too_few, mesh_nodes), std::invalid_argument);
  SphereNodes inconsistent = mesh_nodes;
  inconsistent.latitude_deg.pop_back();
  EXPECT_THROW(edge_features(graph, mesh_nodes, inconsistent), std::invalid_argument);
  EXPECT_THROW(node_structural_features(inconsistent), std::invalid_argument);
}

}  // namespace
}  // namespace gc::model
