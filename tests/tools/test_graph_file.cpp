// test_graph_file.cpp: --graphs files (tools/io/graph_file.h) on DeepMind's own
// graphs (tests/data/deepmind/graphs.npz): the explicit numbering map onto both
// row orders, gc's edge features on those graphs against DeepMind's, gc's own
// construction against DeepMind's (equal but for the documented tie nodes),
// and clear refusals of inconsistent files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <utility>

#include "model/features.h"
#include "model/graphcast.h"
#include "tests/test_util.h"
#include "tools/io/graph_file.h"
#include "tools/io/npz.h"

namespace gc {
namespace {

const std::string kGraphs = "tests/data/deepmind/graphs.npz";

// DeepMind's grid: rows from -90 (south) to +90, as the fixture's model saw it.
model::Grid south_to_north_grid() {
  model::Grid g = model::make_equiangular_grid(10.0);
  std::reverse(g.latitude_deg.begin(), g.latitude_deg.end());
  std::reverse(g.row_weight.begin(), g.row_weight.end());
  return g;
}

std::set<std::pair<int32_t, int32_t>> edge_set(const model::Graph& g) {
  std::set<std::pair<int32_t, int32_t>> s;
  for (int64_t e = 0; e < g.num_edges(); ++e) s.insert({g.senders[static_cast<size_t>(e)], g.receivers[static_cast<size_t>(e)]});
  return s;
}

TEST(GraphFile, MapsDeepMindNumberingOntoEitherRowOrder) {
  const model::Mesh mesh = model::build_mesh_hierarchy(2).back();
  const GraphFile same = load_graph_file(kGraphs, south_to_north_grid(), mesh);
  for (size_t n = 0; n < same.grid_node_of_file_node.size(); ++n) ASSERT_EQ(same.grid_node_of_file_node[n], static_cast<int64_t>(n));
  EXPECT_EQ(same.g2m.num_edges(), 1236);
  EXPECT_EQ(same.mesh.num_edges(), 1260);
  EXPECT_EQ(same.m2g.num_edges(), 2052);

  // gc's north-to-south grid: file row i (latitude -90 + 10 i) is gc's row 18 - i.
  const GraphFile flipped = load_graph_file(kGraphs, model::make_equiangular_grid(10.0), mesh);
  EXPECT_EQ(flipped.grid_node_of_file_node[0], 18 * 36);
  EXPECT_EQ(flipped.grid_node_of_file_node[36 + 5], 17 * 36 + 5);
  auto flip = [](int32_t node) { return (18 - node / 36) * 36 + node % 36; };
  std::set<std::pair<int32_t, int32_t>> expected;
  for (const auto& [s, r] : edge_set(same.m2g)) expected.insert({s, flip(r)});
  EXPECT_EQ(edge_set(flipped.m2g), expected);
  EXPECT_EQ(edge_set(flipped.mesh), edge_set(same.mesh));
}

TEST(GraphFile, GcFeaturesOnDeepMindGraphsEqualDeepMinds) {
  const NpzFile file = load_npz(kGraphs);
  const model::Grid grid = south_to_north_grid();
  const model::Mesh mesh = model::build_mesh_hierarchy(2).back();
  const model::SphereNodes grid_nodes = model::grid_sphere_nodes(grid), mesh_nodes = model::mesh_sphere_nodes(mesh);
  for (const char* name : {"grid2mesh", "mesh", "mesh2grid"}) {
    const std::string n = name;
    const std::vector<double> s = file.at(n + "_senders").to_doubles(), r = file.at(n + "_receivers").to_doubles();
    model::Graph g;  // DeepMind's edge order, unsorted, as its features are
    g.num_senders = n == "grid2mesh" ? grid.num_nodes() : static_cast<int64_t>(mesh.vertices.size());
    g.num_receivers = n == "mesh2grid" ? grid.num_nodes() : static_cast<int64_t>(mesh.vertices.size());
    for (size_t e = 0; e < s.size(); ++e) {
      g.senders.push_back(static_cast<int32_t>(s[e]));
      g.receivers.push_back(static_cast<int32_t>(r[e]));
    }
    const std::vector<float> ours = model::edge_features(g, n == "grid2mesh" ? grid_nodes : mesh_nodes,
                                                         n == "mesh2grid" ? grid_nodes : mesh_nodes);
    const std::vector<double> theirs = file.at(n + "_edge_features").to_doubles();
    ASSERT_EQ(ours.size(), theirs.size());
    double worst = 0;
    for (size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::fabs(ours[i] - theirs[i]));
    // DeepMind computes them from f32 mesh vertices, latitudes and longitudes
    // (icosahedral_mesh.py casts the vertices to f32): about 3e-6 apart.
    EXPECT_LT(worst, 4e-6) << name;
  }
}

TEST(GraphFile, GcOwnGraphsEqualDeepMindsButForTieNodes) {
  const model::Grid grid = south_to_north_grid();
  const model::GraphCastGeometry own = model::build_geometry(grid, 2);
  const GraphFile dm = load_graph_file(kGraphs, grid, own.finest_mesh);
  EXPECT_EQ(edge_set(own.mesh), edge_set(dm.mesh));
  EXPECT_EQ(edge_set(own.g2m), edge_set(dm.g2m));
  // mesh2grid: grid nodes on an edge or vertex of the mesh's faces lie in several
  // faces; the choice among them (a tie) may differ.
  std::set<int32_t> differing;
  const auto a = edge_set(own.m2g), b = edge_set(dm.m2g);
  for (const auto& e : a) if (!b.count(e)) differing.insert(e.second);
  for (const auto& e : b) if (!a.count(e)) differing.insert(e.second);
  // 43 of the 684 grid nodes, each a tie: its nearest point on the mesh is on an
  // edge shared by two faces, so both faces are equally near (to rounding); gc
  // takes the lower face (model/graphs.h), DeepMind whichever trimesh returns.
  EXPECT_EQ(differing.size(), 43u);
  const std::vector<model::Vec3> positions = model::grid_positions(grid);
  auto distance_to_face = [&](const model::Graph& g, int32_t receiver) {
    std::vector<model::Vec3> corners;
    for (int64_t e = 0; e < g.num_edges(); ++e)
      if (g.receivers[static_cast<size_t>(e)] == receiver) corners.push_back(own.finest_mesh.vertices[static_cast<size_t>(g.senders[static_cast<size_t>(e)])]);
    EXPECT_EQ(corners.size(), 3u);
    const model::Vec3 p = positions[static_cast<size_t>(receiver)];
    const model::Vec3 c = model::closest_point_on_triangle(p, corners[0], corners[1], corners[2]);
    return std::sqrt((p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) + (p[2] - c[2]) * (p[2] - c[2]));
  };
  for (int32_t n : differing) {
    const double ours = distance_to_face(own.m2g, n), theirs = distance_to_face(dm.m2g, n);
    EXPECT_NEAR(ours, theirs, 1e-12) << "grid node " << n << " (row " << n / 36 << ", column " << n % 36 << ")";
  }
}

TEST(GraphFile, InconsistentFilesFailClearly) {
  auto error = [](const std::string& path, const model::Grid& grid, int mesh_level) {
    try {
      load_graph_file(path, grid, model::build_mesh_hierarchy(mesh_level).back());
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const model::Grid grid = south_to_north_grid();
  EXPECT_NE(error(kGraphs, model::make_equiangular_grid(30.0), 2).find("its grid is 19 x 36, the data's 7 x 12"),
            std::string::npos);
  EXPECT_NE(error(kGraphs, grid, 1).find("its mesh has 162 vertices, gc's finest mesh 42"), std::string::npos);
  const std::string bad = error("tests/data/npz/bad_graphs.npz", grid, 2);
  EXPECT_NE(bad.find("mesh2grid edge 7: receiver 684 is outside 0..683"), std::string::npos) << bad;
  EXPECT_NE(error("tests/data/npz/basic.npz", grid, 2).find("not a GraphCast graph file"), std::string::npos);
}

}  // namespace
}  // namespace gc
