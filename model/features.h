// features.h: the structural input features of nodes and edges.
//
// Node: [sin lat, cos lon, sin lon]. Edge: d = x_sender - x_receiver expressed in
// the receiver's local frame (radial r, east e, north n), [|d|, d.r, d.e, d.n] / N
// with N the longest |d| of that graph. Each node set carries its own lat/lon
// (not re-derived from positions) because grid pole rows have a longitude that
// the position alone does not define, and the reference features use it.
#pragma once

#include <vector>

#include "model/graphs.h"
#include "model/grid.h"
#include "model/mesh.h"

namespace gc::model {

struct SphereNodes {
  std::vector<Vec3> positions;          // [nodes] unit vectors
  std::vector<double> latitude_deg;     // [nodes]
  std::vector<double> longitude_deg;    // [nodes]
};

// Grid nodes in node-index order (positions from lat/lon).
SphereNodes grid_sphere_nodes(const Grid& grid);
// Mesh vertices with lat = asin(z), lon = atan2(y, x).
SphereNodes mesh_sphere_nodes(const Mesh& mesh);

// [nodes, 3] row-major: sin lat, cos lon, sin lon.
std::vector<float> node_structural_features(const SphereNodes& nodes);

// [edges, 4] row-major: [|d|, d.r, d.e, d.n] / N. N is `fixed_normalization`
// when positive (DeepMind's explicit mesh2grid factor), else the longest |d| (1
// when all edges have zero length); it is written to *normalization_out when given.
// Throws std::invalid_argument when the graph's node counts do not match the sets.
std::vector<float> edge_features(const Graph& graph, const SphereNodes& sender_nodes,
                                 const SphereNodes& receiver_nodes, double* normalization_out = nullptr,
                                 double fixed_normalization = 0.0);

}  // namespace gc::model
