// test_mesh.cpp: the icosahedral hierarchy against the counts and chords of
// GRAPHCAST.md section 1, plus the geometric invariants (unit vertices, outward
// winding, prefix property, reverse edges, no duplicate edges).
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <utility>

#include "model/graphs.h"
#include "model/mesh.h"

namespace gc::model {
namespace {

struct LevelFacts {
  int level;
  int64_t nodes, faces, directed_edges, multimesh_edges;
  double longest_chord;
};
const LevelFacts kLevels[] = {
    {0, 12, 20, 60, 60, 1.051462},          {1, 42, 80, 240, 300, 0.618034},
    {2, 162, 320, 960, 1260, 0.324920},     {3, 642, 1280, 3840, 5100, 0.164647},
    {4, 2562, 5120, 15360, 20460, 0.082604}, {5, 10242, 20480, 61440, 81900, 0.041337},
    {6, 40962, 81920, 245760, 327660, 0.020673},
};

const std::vector<Mesh>& hierarchy_m6() {
  static const std::vector<Mesh> meshes = build_mesh_hierarchy(6);
  return meshes;
}

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 minus(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }

TEST(Mesh, CountsAndLongestChordsPerLevel) {
  const auto& meshes = hierarchy_m6();
  ASSERT_EQ(meshes.size(), 7u);
  for (const LevelFacts& facts : kLevels) {
    SCOPED_TRACE("level " + std::to_string(facts.level));
    const Mesh& mesh = meshes[facts.level];
    EXPECT_EQ(static_cast<int64_t>(mesh.vertices.size()), facts.nodes);
    EXPECT_EQ(static_cast<int64_t>(mesh.faces.size()), facts.faces);
    EXPECT_EQ(build_mesh_graph(mesh).num_edges(), facts.directed_edges);
    const std::vector<Mesh> prefix(meshes.begin(), meshes.begin() + facts.level + 1);
    const Graph multimesh = build_multimesh(prefix);
    EXPECT_EQ(multimesh.num_edges(), facts.multimesh_edges);
    EXPECT_EQ(multimesh.num_senders, facts.nodes);
    EXPECT_EQ(multimesh.num_receivers, facts.nodes);
    EXPECT_NEAR(longest_edge_chord(mesh), facts.longest_chord, 1e-6);
  }
}

TEST(Mesh, BaseIcosahedronRotation) {
  const Mesh m0 = base_icosahedron();
  ASSERT_EQ(m0.vertices.size(), 12u);
  EXPECT_NEAR(m0.vertices[2][0], 0.607062, 1e-6);
  EXPECT_NEAR(m0.vertices[2][1], 0.0, 1e-12);
  EXPECT_NEAR(m0.vertices[2][2], 0.794654, 1e-6);
  EXPECT_NEAR(std::asin(m0.vertices[2][2]) * 180.0 / M_PI, 52.6226, 1e-4);
  // Faces (1,2,7) and (4,10,11) are horizontal after the rotation.
  EXPECT_NEAR(m0.vertices[1][2], m0.vertices[2][2], 1e-12);
  EXPECT_NEAR(m0.vertices[7][2], m0.vertices[2][2], 1e-12);
  EXPECT_NEAR(m0.vertices[10][2], m0.vertices[4][2], 1e-12);
  EXPECT_NEAR(m0.vertices[11][2], m0.vertices[4][2], 1e-12);
  for (const Vec3& v : m0.vertices) EXPECT_LT(std::fabs(v[2]), 0.99);  // no vertex on a pole
}

TEST(Mesh, VerticesUnitAndFacesOutward) {
  for (const Mesh& mesh : hierarchy_m6()) {
    for (const Vec3& v : mesh.vertices) ASSERT_NEAR(dot(v, v), 1.0, 1e-14);
    for (const auto& f : mesh.faces) {
      const Vec3& a = mesh.vertices[f[0]];
      const Vec3 normal = cross(minus(mesh.vertices[f[1]], a), minus(mesh.vertices[f[2]], a));
      ASSERT_GT(dot(normal, a), 0.0);  // counter-clockwise seen from outside
    }
    // Euler characteristic of a sphere.
    const int64_t undirected_edges = static_cast<int64_t>(mesh.faces.size()) * 3 / 2;
    EXPECT_EQ(static_cast<int64_t>(mesh.vertices.size()) - undirected_edges +
                  static_cast<int64_t>(mesh.faces.size()),
              2);
  }
}

TEST(Mesh, RefinementNumberingAndChildren) {
  const auto& meshes = hierarchy_m6();
  for (size_t level = 1; level < meshes.size(); ++level) {
    const Mesh& coarse = meshes[level - 1];
    const Mesh& fine = meshes[level];
    for (size_t v = 0; v < coarse.vertices.size(); ++v) ASSERT_EQ(fine.vertices[v], coarse.vertices[v]);
  }
  // First face (0,1,2) of M0 creates vertices 12 (0-1), 13 (1-2), 14 (2-0).
  const Mesh& m0 = meshes[0];
  const Mesh& m1 = meshes[1];
  auto midpoint = [&](int a, int b) {
    Vec3 m = {m0.vertices[a][0] + m0.vertices[b][0], m0.vertices[a][1] + m0.vertices[b][1],
              m0.vertices[a][2] + m0.vertices[b][2]};
    const double norm = std::sqrt(dot(m, m));
    return Vec3{m[0] / norm, m[1] / norm, m[2] / norm};
  };
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(m1.vertices[12][k], midpoint(0, 1)[k], 1e-15);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(m1.vertices[13][k], midpoint(1, 2)[k], 1e-15);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(m1.vertices[14][k], midpoint(2, 0)[k], 1e-15);
  using Face = std::array<int32_t, 3>;
  EXPECT_EQ(m1.faces[0], (Face{0, 12, 14}));
  EXPECT_EQ(m1.faces[1], (Face{12, 1, 13}));
  EXPECT_EQ(m1.faces[2], (Face{14, 13, 2}));
  EXPECT_EQ(m1.faces[3], (Face{12, 13, 14}));
  // Second face (0,6,1): edge (1,0) already has vertex 12; new ones are 15 (0-6), 16 (6-1).
  EXPECT_EQ(m1.faces[4], (Face{0, 15, 12}));
  EXPECT_EQ(m1.faces[5], (Face{15, 6, 16}));
}

TEST(Mesh, MultimeshEdgesHaveReversesAndNoDuplicates) {
  const auto& meshes = hierarchy_m6();
  for (int finest = 0; finest <= 6; finest += 3) {
    SCOPED_TRACE("finest level " + std::to_string(finest));
    const std::vector<Mesh> prefix(meshes.begin(), meshes.begin() + finest + 1);
    const Graph graph = build_multimesh(prefix);
    std::set<std::pair<int32_t, int32_t>> edges;
    for (int64_t e = 0; e < graph.num_edges(); ++e) edges.insert({graph.senders[e], graph.receivers[e]});
    EXPECT_EQ(static_cast<int64_t>(edges.size()), graph.num_edges());
    for (const auto& [sender, receiver] : edges) {
      ASSERT_NE(sender, receiver);
      ASSERT_TRUE(edges.count({receiver, sender})) << sender << " -> " << receiver;
    }
    for (int64_t e = 1; e < graph.num_edges(); ++e) {
      ASSERT_TRUE(graph.receivers[e - 1] < graph.receivers[e] ||
                  (graph.receivers[e - 1] == graph.receivers[e] && graph.senders[e - 1] < graph.senders[e]));
    }
  }
  // The convenience overload builds the same graph.
  const Graph from_level = build_multimesh(2);
  const Graph from_meshes = build_multimesh(std::vector<Mesh>(meshes.begin(), meshes.begin() + 3));
  EXPECT_EQ(from_level.senders, from_meshes.senders);
  EXPECT_EQ(from_level.receivers, from_meshes.receivers);
}

TEST(Mesh, RejectsBadLevels) {
  EXPECT_THROW(build_mesh_hierarchy(-1), std::invalid_argument);
  EXPECT_THROW(build_mesh_hierarchy(11), std::invalid_argument);
  EXPECT_THROW(build_multimesh(std::vector<Mesh>{}), std::invalid_argument);
}

}  // namespace
}  // namespace gc::model
