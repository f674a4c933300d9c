// features.cpp: node and edge structural features.
//
// Edge displacements are computed in double and divided by N before the one
// rounding to float, so the longest edge gets exactly |d| / N = 1. The maximum
// is a reduction of exact values, so N does not depend on the thread count.
#include "model/features.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace gc::model {
namespace {

constexpr double kRadiansPerDegree = M_PI / 180.0;
constexpr double kDegreesPerRadian = 180.0 / M_PI;

void check_node_set(const SphereNodes& nodes, const char* caller) {
  if (nodes.latitude_deg.size() != nodes.positions.size() || nodes.longitude_deg.size() != nodes.positions.size()) {
    throw std::invalid_argument(std::string(caller) + ": node set has " + std::to_string(nodes.positions.size()) +
                                " positions, " + std::to_string(nodes.latitude_deg.size()) + " latitudes, " +
                                std::to_string(nodes.longitude_deg.size()) + " longitudes");
  }
}

}  // namespace

SphereNodes grid_sphere_nodes(const Grid& grid) {
  SphereNodes nodes;
  nodes.positions = grid_positions(grid);
  nodes.latitude_deg = grid_node_latitudes_deg(grid);
  nodes.longitude_deg = grid_node_longitudes_deg(grid);
  return nodes;
}

SphereNodes mesh_sphere_nodes(const Mesh& mesh) {
  SphereNodes nodes;
  nodes.positions = mesh.vertices;
  nodes.latitude_deg.reserve(mesh.vertices.size());
  nodes.longitude_deg.reserve(mesh.vertices.size());
  for (const Vec3& v : mesh.vertices) {
    nodes.latitude_deg.push_back(std::asin(std::clamp(v[2], -1.0, 1.0)) * kDegreesPerRadian);
    nodes.longitude_deg.push_back(std::atan2(v[1], v[0]) * kDegreesPerRadian);
  }
  return nodes;
}

std::vector<float> node_structural_features(const SphereNodes& nodes) {
  check_node_set(nodes, "node_structural_features");
  const size_t num_nodes = nodes.positions.size();
  std::vector<float> features(3 * num_nodes);
  for (size_t i = 0; i < num_nodes; ++i) {
    const double lat = nodes.latitude_deg[i] * kRadiansPerDegree;
    const double lon = nodes.longitude_deg[i] * kRadiansPerDegree;
    features[3 * i + 0] = static_cast<float>(std::sin(lat));
    features[3 * i + 1] = static_cast<float>(std::cos(lon));
    features[3 * i + 2] = static_cast<float>(std::sin(lon));
  }
  return features;
}

std::vector<float> edge_features(const Graph& graph, const SphereNodes& sender_nodes,
                                 const SphereNodes& receiver_nodes, double* normalization_out,
                                 double fixed_normalization) {
  check_node_set(sender_nodes, "edge_features");
  check_node_set(receiver_nodes, "edge_features");
  if (graph.num_senders != static_cast<int64_t>(sender_nodes.positions.size()) ||
      graph.num_receivers != static_cast<int64_t>(receiver_nodes.positions.size())) {
    throw std::invalid_argument("edge_features: graph has " + std::to_string(graph.num_senders) + " senders x " +
                                std::to_string(graph.num_receivers) + " receivers, node sets have " +
                                std::to_string(sender_nodes.positions.size()) + " and " +
                                std::to_string(receiver_nodes.positions.size()));
  }
  const int64_t num_edges = graph.num_edges();
  auto displacement = [&](int64_t e) {
    const Vec3& xs = sender_nodes.positions[graph.senders[e]];
    const Vec3& xr = receiver_nodes.positions[graph.receivers[e]];
    return Vec3{xs[0] - xr[0], xs[1] - xr[1], xs[2] - xr[2]};
  };
  auto length = [](const Vec3& d) { return std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]); };

  double longest = 0.0;
#pragma omp parallel for schedule(static) reduction(max : longest)
  for (int64_t e = 0; e < num_edges; ++e) longest = std::max(longest, length(displacement(e)));
  const double normalization = fixed_normalization > 0.0 ? fixed_normalization : longest > 0.0 ? longest : 1.0;
  if (normalization_out != nullptr) *normalization_out = normalization;

  std::vector<float> features(4 * num_edges);
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < num_edges; ++e) {
    const Vec3 d = displacement(e);
    const int32_t r = graph.receivers[e];
    const double lat = receiver_nodes.latitude_deg[r] * kRadiansPerDegree;
    const double lon = receiver_nodes.longitude_deg[r] * kRadiansPerDegree;
    const double sin_lat = std::sin(lat), cos_lat = std::cos(lat);
    const double sin_lon = std::sin(lon), cos_lon = std::cos(lon);
    const double radial = d[0] * cos_lat * cos_lon + d[1] * cos_lat * sin_lon + d[2] * sin_lat;
    const double east = -d[0] * sin_lon + d[1] * cos_lon;
    const double north = -d[0] * sin_lat * cos_lon - d[1] * sin_lat * sin_lon + d[2] * cos_lat;
    features[4 * e + 0] = static_cast<float>(length(d) / normalization);
    features[4 * e + 1] = static_cast<float>(radial / normalization);
    features[4 * e + 2] = static_cast<float>(east / normalization);
    features[4 * e + 3] = static_cast<float>(north / normalization);
  }
  return features;
}

}  // namespace gc::model
