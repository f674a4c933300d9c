// mesh.cpp: base icosahedron and midpoint refinement.
//
// Midpoints are keyed by the sorted vertex pair, so the edge shared by two faces
// gets one vertex, numbered when the first of those faces is visited.
#include "model/mesh.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace gc::model {
namespace {

Vec3 normalized(const Vec3& v) {
  const double norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return {v[0] / norm, v[1] / norm, v[2] / norm};
}

}  // namespace

Mesh base_icosahedron() {
  const double phi = (1.0 + std::sqrt(5.0)) / 2.0;
  const double circumradius = std::sqrt(1.0 + phi * phi);
  Mesh mesh;
  for (double c1 : {1.0, -1.0}) {
    for (double c2 : {phi, -phi}) {
      mesh.vertices.push_back({c1, c2, 0.0});
      mesh.vertices.push_back({0.0, c1, c2});
      mesh.vertices.push_back({c2, 0.0, c1});
    }
  }
  // Rotating by half the supplement of the dihedral angle makes faces (1,2,7)
  // and (4,10,11) horizontal, so the poles fall on face centres, not vertices.
  const double dihedral = 2.0 * std::asin(phi / std::sqrt(3.0));
  const double beta = (M_PI - dihedral) / 2.0;
  const double cos_beta = std::cos(beta), sin_beta = std::sin(beta);
  for (Vec3& v : mesh.vertices) {
    const double x = v[0] / circumradius, y = v[1] / circumradius, z = v[2] / circumradius;
    // Row vector times R_y(beta): x' = x cos - z sin, z' = x sin + z cos.
    v = {x * cos_beta - z * sin_beta, y, x * sin_beta + z * cos_beta};
  }
  mesh.faces = {{0, 1, 2},  {0, 6, 1},  {8, 0, 2},  {8, 4, 0},  {3, 8, 2},
                {3, 2, 7},  {7, 2, 1},  {0, 4, 6},  {4, 11, 6}, {6, 11, 5},
                {1, 5, 7},  {4, 10, 11}, {4, 8, 10}, {10, 8, 3}, {10, 3, 9},
                {11, 10, 9}, {11, 9, 5}, {5, 9, 7},  {9, 3, 7},  {1, 6, 5}};
  return mesh;
}

Mesh refine_mesh(const Mesh& coarse) {
  Mesh fine;
  fine.vertices = coarse.vertices;
  fine.vertices.reserve(coarse.vertices.size() + coarse.faces.size() * 3 / 2);
  fine.faces.reserve(coarse.faces.size() * 4);
  std::unordered_map<int64_t, int32_t> midpoint_of_edge;
  midpoint_of_edge.reserve(coarse.faces.size() * 3 / 2);
  auto midpoint = [&](int32_t a, int32_t b) -> int32_t {
    const int64_t lo = std::min(a, b), hi = std::max(a, b);
    const int64_t key = (lo << 32) | hi;
    auto found = midpoint_of_edge.find(key);
    if (found != midpoint_of_edge.end()) return found->second;
    const Vec3& va = fine.vertices[a];
    const Vec3& vb = fine.vertices[b];
    const int32_t index = static_cast<int32_t>(fine.vertices.size());
    fine.vertices.push_back(
        normalized({(va[0] + vb[0]) / 2, (va[1] + vb[1]) / 2, (va[2] + vb[2]) / 2}));
    midpoint_of_edge.emplace(key, index);
    return index;
  };
  for (const auto& face : coarse.faces) {
    const int32_t i1 = face[0], i2 = face[1], i3 = face[2];
    const int32_t i12 = midpoint(i1, i2);
    const int32_t i23 = midpoint(i2, i3);
    const int32_t i31 = midpoint(i3, i1);
    fine.faces.push_back({i1, i12, i31});
    fine.faces.push_back({i12, i2, i23});
    fine.faces.push_back({i31, i23, i3});
    fine.faces.push_back({i12, i23, i31});
  }
  return fine;
}

std::vector<Mesh> build_mesh_hierarchy(int finest_level) {
  if (finest_level < 0 || finest_level > 10) {
    throw std::invalid_argument("build_mesh_hierarchy: finest_level must be in 0..10, got " +
                                std::to_string(finest_level));
  }
  std::vector<Mesh> levels;
  levels.reserve(finest_level + 1);
  levels.push_back(base_icosahedron());
  for (int level = 1; level <= finest_level; ++level) levels.push_back(refine_mesh(levels.back()));
  return levels;
}

double longest_edge_chord(const Mesh& mesh) {
  double longest_squared = 0.0;
  for (const auto& face : mesh.faces) {
    for (int k = 0; k < 3; ++k) {
      const Vec3& a = mesh.vertices[face[k]];
      const Vec3& b = mesh.vertices[face[(k + 1) % 3]];
      const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
      longest_squared = std::max(longest_squared, dx * dx + dy * dy + dz * dz);
    }
  }
  return std::sqrt(longest_squared);
}

}  // namespace gc::model
