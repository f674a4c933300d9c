// test_graphs.cpp: graph sorting/CSR helpers, the closest-point oracle, the
// grid<->mesh graphs against brute-force searches on small configurations, and
// the 0.25 deg / M6 counts of GRAPHCAST.md section 2.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <tuple>

#include "model/graphs.h"
#include "model/grid.h"
#include "model/mesh.h"

namespace gc::model {
namespace {

double distance(const Vec3& a, const Vec3& b) {
  const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return std::sqrt(dx * dx + dy * dy + dz * dz);
}

::testing::AssertionResult sorted_by_receiver(const Graph& graph) {
  for (int64_t e = 1; e < graph.num_edges(); ++e) {
    if (std::make_pair(graph.receivers[e - 1], graph.senders[e - 1]) >=
        std::make_pair(graph.receivers[e], graph.senders[e])) {
      return ::testing::AssertionFailure() << "edges " << e - 1 << ", " << e << " out of (receiver, sender) order";
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(Graphs, MakeGraphSortsAndBuildsCsr) {
  for (int num_edges : {1, 31, 65}) {
    std::mt19937 rng(1234 + num_edges);
    const int num_senders = 7, num_receivers = 5;
    std::vector<int32_t> senders(num_edges), receivers(num_edges);
    for (int e = 0; e < num_edges; ++e) {
      senders[e] = static_cast<int32_t>(rng() % num_senders);
      receivers[e] = static_cast<int32_t>(rng() % num_receivers);
    }
    std::vector<std::pair<int32_t, int32_t>> reference;  // (receiver, sender)
    for (int e = 0; e < num_edges; ++e) reference.push_back({receivers[e], senders[e]});
    std::sort(reference.begin(), reference.end());

    const Graph graph = make_graph(num_senders, num_receivers, senders, receivers);
    ASSERT_EQ(graph.num_edges(), num_edges);
    for (int e = 0; e < num_edges; ++e) {
      EXPECT_EQ(graph.receivers[e], reference[e].first);
      EXPECT_EQ(graph.senders[e], reference[e].second);
    }
    const std::vector<int32_t> offsets = graph.receiver_offsets();
    ASSERT_EQ(offsets.size(), static_cast<size_t>(num_receivers + 1));
    EXPECT_EQ(offsets.front(), 0);
    EXPECT_EQ(offsets.back(), num_edges);
    for (int r = 0; r < num_receivers; ++r) {
      for (int32_t e = offsets[r]; e < offsets[r + 1]; ++e) EXPECT_EQ(graph.receivers[e], r);
    }
    const SenderCsr csr = graph.sender_csr();
    ASSERT_EQ(csr.offsets.size(), static_cast<size_t>(num_senders + 1));
    ASSERT_EQ(csr.order.size(), static_cast<size_t>(num_edges));
    EXPECT_EQ(csr.offsets.back(), num_edges);
    std::vector<int> seen(num_edges, 0);
    for (int s = 0; s < num_senders; ++s) {
      for (int32_t k = csr.offsets[s]; k < csr.offsets[s + 1]; ++k) {
        EXPECT_EQ(graph.senders[csr.order[k]], s);
        if (k > csr.offsets[s]) {
          EXPECT_LT(csr.order[k - 1], csr.order[k]);
        }
        ++seen[csr.order[k]];
      }
    }
    for (int count : seen) EXPECT_EQ(count, 1);
  }
}

TEST(Graphs, MakeGraphRejectsBadInput) {
  EXPECT_THROW(make_graph(2, 2, {0, 1}, {0}), std::invalid_argument);
  EXPECT_THROW(make_graph(2, 2, {0, 2}, {0, 1}), std::invalid_argument);
  EXPECT_THROW(make_graph(2, 2, {0, 1}, {-1, 1}), std::invalid_argument);
  EXPECT_THROW(make_graph(-1, 2, {}, {}), std::invalid_argument);
  EXPECT_THROW(build_grid2mesh({{1.0, 0.0, 0.0}}, base_icosahedron(), 0.0), std::invalid_argument);
  EXPECT_THROW(build_mesh2grid({{1.0, 0.0, 0.0}}, Mesh{}), std::invalid_argument);
}

TEST(Graphs, ClosestPointOnTriangleAgainstSampling) {
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  auto random_point = [&] { return Vec3{uniform(rng), uniform(rng), uniform(rng)}; };
  for (int trial = 0; trial < 200; ++trial) {
    const Vec3 a = random_point(), b = random_point(), c = random_point();
    const Vec3 p = {2 * uniform(rng), 2 * uniform(rng), 2 * uniform(rng)};
    const Vec3 q = closest_point_on_triangle(p, a, b, c);
    // q lies in the plane of the triangle, inside it (barycentric coordinates >= 0) ...
    const Vec3 ab = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, ac = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    const Vec3 aq = {q[0] - a[0], q[1] - a[1], q[2] - a[2]};
    auto dot = [](const Vec3& u, const Vec3& v) { return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]; };
    const double d00 = dot(ab, ab), d01 = dot(ab, ac), d11 = dot(ac, ac), d20 = dot(aq, ab), d21 = dot(aq, ac);
    const double denominator = d00 * d11 - d01 * d01;
    const double v = (d11 * d20 - d01 * d21) / denominator, w = (d00 * d21 - d01 * d20) / denominator;
    EXPECT_GE(v, -1e-9);
    EXPECT_GE(w, -1e-9);
    EXPECT_LE(v + w, 1.0 + 1e-9);
    // ... and no sampled point of the triangle is closer.
    const double got = distance(p, q);
    const int steps = 60;
    for (int i = 0; i <= steps; ++i) {
      for (int j = 0; i + j <= steps; ++j) {
        const double s = double(i) / steps, t = double(j) / steps;
        const Vec3 sample = {a[0] + s * ab[0] + t * ac[0], a[1] + s * ab[1] + t * ac[1], a[2] + s * ab[2] + t * ac[2]};
        ASSERT_LE(got, distance(p, sample) + 1e-12) << "trial " << trial;
      }
    }
  }
}

Graph brute_force_grid2mesh(const std::vector<Vec3>& grid, const Mesh& mesh) {
  const double radius = 0.6 * longest_edge_chord(mesh);
  std::vector<int32_t> senders, receivers;
  for (size_t m = 0; m < mesh.vertices.size(); ++m) {
    for (size_t g = 0; g < grid.size(); ++g) {
      if (distance(grid[g], mesh.vertices[m]) <= radius) {
        senders.push_back(static_cast<int32_t>(g));
        receivers.push_back(static_cast<int32_t>(m));
      }
    }
  }
  Graph graph;
  graph.num_senders = static_cast<int64_t>(grid.size());
  graph.num_receivers = static_cast<int64_t>(mesh.vertices.size());
  graph.senders = senders;
  graph.receivers = receivers;
  return graph;
}

std::vector<int32_t> brute_force_faces(const std::vector<Vec3>& grid, const Mesh& mesh) {
  // Every face's distance, then the lowest face within 1e-12 of the nearest (the tie rule).
  std::vector<int32_t> faces(grid.size());
  std::vector<double> d(mesh.faces.size());
  for (size_t g = 0; g < grid.size(); ++g) {
    for (size_t f = 0; f < mesh.faces.size(); ++f) {
      const auto& face = mesh.faces[f];
      d[f] = distance(grid[g], closest_point_on_triangle(grid[g], mesh.vertices[face[0]], mesh.vertices[face[1]],
                                                         mesh.vertices[face[2]]));
    }
    const double nearest = *std::min_element(d.begin(), d.end());
    faces[g] = static_cast<int32_t>(std::find_if(d.begin(), d.end(), [&](double x) { return x <= nearest + 1e-12; }) -
                                    d.begin());
  }
  return faces;
}

struct SmallConfig {
  double spacing_deg;
  int mesh_level;
};

class GraphsBruteForce : public ::testing::TestWithParam<SmallConfig> {};

TEST_P(GraphsBruteForce, SmallConfigs) {
  const Grid grid = make_equiangular_grid(GetParam().spacing_deg);
  const std::vector<Vec3> positions = grid_positions(grid);
  const Mesh mesh = build_mesh_hierarchy(GetParam().mesh_level).back();

  const Graph grid2mesh = build_grid2mesh(positions, mesh);
  const Graph expected_g2m = brute_force_grid2mesh(positions, mesh);
  EXPECT_EQ(grid2mesh.num_senders, grid.num_nodes());
  EXPECT_EQ(grid2mesh.num_receivers, static_cast<int64_t>(mesh.vertices.size()));
  EXPECT_EQ(grid2mesh.senders, expected_g2m.senders);
  EXPECT_EQ(grid2mesh.receivers, expected_g2m.receivers);
  EXPECT_TRUE(sorted_by_receiver(grid2mesh));
  // Coverage holds from M1 on; M0's face centres are farther than 0.6 edge from every vertex.
  if (GetParam().mesh_level >= 1) {
    const SenderCsr csr = grid2mesh.sender_csr();
    for (int64_t g = 0; g < grid.num_nodes(); ++g) EXPECT_GT(csr.offsets[g + 1], csr.offsets[g]) << "grid node " << g;
  }

  const std::vector<int32_t> faces = containing_faces(positions, mesh);
  const std::vector<int32_t> expected_faces = brute_force_faces(positions, mesh);
  for (int64_t g = 0; g < grid.num_nodes(); ++g) {
    EXPECT_EQ(faces[g], expected_faces[g]) << "grid node " << g;
  }
  const Graph mesh2grid = build_mesh2grid(positions, mesh);
  ASSERT_EQ(mesh2grid.num_edges(), 3 * grid.num_nodes());
  EXPECT_EQ(mesh2grid.num_senders, static_cast<int64_t>(mesh.vertices.size()));
  EXPECT_TRUE(sorted_by_receiver(mesh2grid));
  for (int64_t g = 0; g < grid.num_nodes(); ++g) {
    auto expected = mesh.faces[faces[g]];
    std::sort(expected.begin(), expected.end());
    for (int k = 0; k < 3; ++k) {
      ASSERT_EQ(mesh2grid.receivers[3 * g + k], g);
      ASSERT_EQ(mesh2grid.senders[3 * g + k], expected[k]);
    }
    // The three senders are corners of a face around the point: none is farther than an edge.
    for (int k = 0; k < 3; ++k) {
      EXPECT_LE(distance(positions[g], mesh.vertices[mesh2grid.senders[3 * g + k]]), longest_edge_chord(mesh) * (1 + 1e-12));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Geometry, GraphsBruteForce,
                         ::testing::Values(SmallConfig{10.0, 2}, SmallConfig{5.0, 3}, SmallConfig{7.5, 1},
                                           SmallConfig{30.0, 0}),
                         [](const ::testing::TestParamInfo<SmallConfig>& info) {
                           std::string name = std::to_string(info.param.spacing_deg);
                           name = name.substr(0, name.find('.')) + "deg_M" + std::to_string(info.param.mesh_level);
                           return name;
                         });

// A grid point over the edge two faces share is equally near both: the lower
// face wins, also when the last bits of its position (and so of the two
// distances) move, as they do between builds with and without fused
// multiply-adds; a point over the higher face's middle gets that face.
TEST(Graphs, Mesh2GridTieGoesToTheLowerFaceWhateverTheLastBits) {
  const Mesh mesh = build_mesh_hierarchy(1).back();
  int tested = 0;
  for (size_t f1 = 0; f1 < mesh.faces.size() && tested < 10; ++f1) {
    for (size_t f2 = f1 + 1; f2 < mesh.faces.size(); ++f2) {
      std::vector<int32_t> shared;
      for (int32_t a : mesh.faces[f1])
        for (int32_t b : mesh.faces[f2])
          if (a == b) shared.push_back(a);
      if (shared.size() != 2) continue;
      const Vec3 &u = mesh.vertices[static_cast<size_t>(shared[0])], &v = mesh.vertices[static_cast<size_t>(shared[1])];
      Vec3 centroid_high{0, 0, 0};
      for (int32_t k : mesh.faces[f2])
        for (int i = 0; i < 3; ++i) centroid_high[i] += mesh.vertices[static_cast<size_t>(k)][i] / 3;
      auto on_sphere = [&](double towards_high) {
        Vec3 p;
        for (int i = 0; i < 3; ++i) p[i] = (u[i] + v[i]) / 2 + towards_high * (centroid_high[i] - (u[i] + v[i]) / 2);
        const double n = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
        for (int i = 0; i < 3; ++i) p[i] /= n;
        return p;
      };
      const std::vector<int32_t> faces = containing_faces({on_sphere(0), on_sphere(1e-15), on_sphere(-1e-15),
                                                           on_sphere(3e-14), on_sphere(0.9)}, mesh);
      for (int k = 0; k < 4; ++k) EXPECT_EQ(faces[static_cast<size_t>(k)], static_cast<int32_t>(f1)) << "faces " << f1 << ", " << f2 << ", point " << k;
      EXPECT_EQ(faces[4], static_cast<int32_t>(f2)) << "faces " << f1 << ", " << f2;
      ++tested;
      break;
    }
  }
  EXPECT_EQ(tested, 10);
}

TEST(Graphs, ResultsIndependentOfThreadCount) {
  const std::vector<Vec3> positions = grid_positions(make_equiangular_grid(2.0));
  const Mesh mesh = build_mesh_hierarchy(4).back();
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Graph g2m_one = build_grid2mesh(positions, mesh);
  const Graph m2g_one = build_mesh2grid(positions, mesh);
  omp_set_num_threads(3);
  const Graph g2m_three = build_grid2mesh(positions, mesh);
  const Graph m2g_three = build_mesh2grid(positions, mesh);
  omp_set_num_threads(saved_threads);
  EXPECT_EQ(g2m_one.senders, g2m_three.senders);
  EXPECT_EQ(g2m_one.receivers, g2m_three.receivers);
  EXPECT_EQ(m2g_one.senders, m2g_three.senders);
  EXPECT_EQ(m2g_one.receivers, m2g_three.receivers);
}

TEST(Graphs, QuarterDegreeM6Counts) {
  const auto start = std::chrono::steady_clock::now();
  const Grid grid = make_equiangular_grid(0.25);
  const std::vector<Vec3> positions = grid_positions(grid);
  const Mesh mesh = build_mesh_hierarchy(6).back();
  const Graph grid2mesh = build_grid2mesh(positions, mesh);
  const Graph mesh2grid = build_mesh2grid(positions, mesh);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("0.25 deg / M6: grid nodes %lld, grid2mesh edges %lld (paper 1618746), mesh2grid edges %lld, "
              "built in %.2f s\n",
              static_cast<long long>(grid.num_nodes()), static_cast<long long>(grid2mesh.num_edges()),
              static_cast<long long>(mesh2grid.num_edges()), seconds);

  EXPECT_EQ(grid.num_nodes(), 1038240);
  EXPECT_EQ(mesh2grid.num_edges(), 3114720);
  EXPECT_NEAR(static_cast<double>(grid2mesh.num_edges()), 1618746.0, 1618746.0 * 1e-4);
  const SenderCsr csr = grid2mesh.sender_csr();
  int64_t grid_nodes_without_edge = 0;
  for (int64_t g = 0; g < grid.num_nodes(); ++g) grid_nodes_without_edge += csr.offsets[g + 1] == csr.offsets[g];
  EXPECT_EQ(grid_nodes_without_edge, 0);
  EXPECT_TRUE(sorted_by_receiver(grid2mesh));
  EXPECT_TRUE(sorted_by_receiver(mesh2grid));
}

}  // namespace
}  // namespace gc::model
