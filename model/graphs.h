// graphs.h: the three GraphCast graphs as host-side edge lists.
//
// Invariant of every Graph built here: edges are sorted by receiver, ties by
// sender ascending. Segment sums run over receiver groups, so receiver_offsets()
// is the CSR of the edge list itself (no permutation); sender_csr() gives the
// permutation that the backward pass of a gather needs.
#pragma once

#include <cstdint>
#include <vector>

#include "model/mesh.h"

namespace gc::model {

struct SenderCsr {
  std::vector<int32_t> order;    // [edges] edge ids grouped by sender, ascending within a group
  std::vector<int32_t> offsets;  // [num_senders + 1] group g is order[offsets[g] .. offsets[g+1])
};

struct Graph {
  int64_t num_senders = 0;
  int64_t num_receivers = 0;
  std::vector<int32_t> senders;    // [edges] index into the sender node set
  std::vector<int32_t> receivers;  // [edges] index into the receiver node set, non-decreasing

  int64_t num_edges() const { return static_cast<int64_t>(senders.size()); }
  // [num_receivers + 1] edges of receiver r are offsets[r] .. offsets[r+1].
  std::vector<int32_t> receiver_offsets() const;
  SenderCsr sender_csr() const;
};

// Validates indices (std::invalid_argument on any out of range, or more than
// INT32_MAX edges) and sorts edges by (receiver, sender).
Graph make_graph(int64_t num_senders, int64_t num_receivers, std::vector<int32_t> senders,
                 std::vector<int32_t> receivers);

// Directed edges a->b, b->c, c->a of every face of one mesh, sorted by receiver.
Graph build_mesh_graph(const Mesh& mesh);

// Multimesh: nodes of the finest mesh (hierarchy.back()), directed edges of all levels.
Graph build_multimesh(const std::vector<Mesh>& hierarchy);
Graph build_multimesh(int finest_level);

// Grid2Mesh (encoder): grid node -> every mesh node whose chord distance is
// <= radius_fraction * longest_edge_chord(finest_mesh), inclusive.
// Senders index grid_positions [grid nodes], receivers index finest_mesh.vertices.
Graph build_grid2mesh(const std::vector<Vec3>& grid_positions, const Mesh& finest_mesh,
                      double radius_fraction = 0.6);

// Mesh2Grid (decoder): for each grid node the 3 vertices of the face of finest_mesh
// whose flat triangle has the nearest closest point; faces within 1e-12 (unit
// sphere) of the nearest are a tie, won by the lowest face index, so that the
// choice does not depend on the build's rounding.
// Exactly 3 edges per grid node. Senders index the mesh, receivers the grid.
Graph build_mesh2grid(const std::vector<Vec3>& grid_positions, const Mesh& finest_mesh);

// Index of the face chosen by build_mesh2grid for each grid position. [grid nodes]
std::vector<int32_t> containing_faces(const std::vector<Vec3>& grid_positions, const Mesh& mesh);

// Closest point to p on the flat triangle (a, b, c), edges and corners included.
Vec3 closest_point_on_triangle(const Vec3& p, const Vec3& a, const Vec3& b, const Vec3& c);

}  // namespace gc::model
