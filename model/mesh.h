// mesh.h: the icosahedral mesh hierarchy M0..M_R on the unit sphere.
//
// Invariant: level r+1 keeps the vertices of level r as a prefix of its vertex
// list (midpoints are appended), so a vertex index of any coarser level names
// the same point in the finest mesh. That is what lets the multimesh be the
// finest vertices plus the edges of every level, with no re-indexing.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace gc::model {

using Vec3 = std::array<double, 3>;

struct Mesh {
  std::vector<Vec3> vertices;                 // [nodes] unit vectors
  std::vector<std::array<int32_t, 3>> faces;  // [faces] counter-clockwise seen from outside
};

// Base icosahedron M0: 12 vertices, 20 faces, rotated about y so that no vertex
// sits on a pole (the vertex and face order is fixed: features and weights depend on it).
Mesh base_icosahedron();

// One subdivision: every face splits into 4, edge midpoints are projected onto
// the sphere and numbered in order of first creation.
Mesh refine_mesh(const Mesh& coarse);

// Meshes M0..M_finest_level (finest_level + 1 entries). Throws std::invalid_argument
// outside 0..10 (M10 already has ~10.5M vertices).
std::vector<Mesh> build_mesh_hierarchy(int finest_level);

// Longest chord |v_a - v_b| over the edges of the mesh's faces.
double longest_edge_chord(const Mesh& mesh);

}  // namespace gc::model
