// The cut of --model-parallel (model/partition.h): latitude bands of whole grid
// rows, the mesh split at the same latitudes, every edge kept by exactly one
// rank (its receiver's owner) with the sender renumbered into [owned, halo],
// and halos that are exactly what the owners send. The exchange itself runs
// under mpirun (tests/mpi/test_mpi_model_parallel.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "model/partition.h"

namespace gc::model {
namespace {

const GraphCastGeometry& geometry() {
  static const GraphCastGeometry g = build_geometry(make_equiangular_grid(10.0), 2);  // 19 x 36, 162 mesh nodes
  return g;
}

double mesh_latitude(const GraphCastGeometry& g, int32_t v) {
  return std::asin(g.finest_mesh.vertices[static_cast<size_t>(v)][2]) * 180.0 / M_PI;
}

class Partitions : public ::testing::TestWithParam<int> {};

TEST_P(Partitions, BandsOfWholeRowsAndTheMeshAtTheSameLatitudes) {
  const int Q = GetParam();
  const GraphCastGeometry& g = geometry();
  const Partition p = partition_geometry(g, Q, 16);
  ASSERT_EQ(p.first_row.size(), static_cast<size_t>(Q + 1));
  EXPECT_EQ(p.first_row.front(), 0);
  EXPECT_EQ(p.first_row.back(), g.grid.num_lat());
  for (int r = 0; r < Q; ++r) EXPECT_LT(p.first_row[static_cast<size_t>(r)], p.first_row[static_cast<size_t>(r) + 1]);
  // A mesh vertex's latitude lies between the band's boundaries (rows run north to south).
  for (size_t v = 0; v < p.mesh_owner.size(); ++v) {
    const int r = p.mesh_owner[v];
    const double lat = mesh_latitude(g, static_cast<int32_t>(v));
    if (r > 0) {
      const int64_t first = p.first_row[static_cast<size_t>(r)];
      EXPECT_LE(lat, 0.5 * (g.grid.latitude_deg[static_cast<size_t>(first - 1)] + g.grid.latitude_deg[static_cast<size_t>(first)]));
    }
    if (r + 1 < Q) {
      const int64_t next = p.first_row[static_cast<size_t>(r) + 1];
      EXPECT_GE(lat, 0.5 * (g.grid.latitude_deg[static_cast<size_t>(next - 1)] + g.grid.latitude_deg[static_cast<size_t>(next)]));
    }
  }
}

// Maps a shard's local sender back to the global node.
int64_t global_sender(const GraphShard& s, int32_t local, const std::vector<std::vector<int64_t>>& owned_by_rank, int rank) {
  if (local < s.owned_senders) return owned_by_rank[static_cast<size_t>(rank)][static_cast<size_t>(local)];
  int64_t k = local - s.owned_senders;
  for (size_t q = 0; q < s.halo_from.size(); ++q) {
    if (k < static_cast<int64_t>(s.halo_from[q].size()))
      return owned_by_rank[q][static_cast<size_t>(s.halo_from[q][static_cast<size_t>(k)])];
    k -= static_cast<int64_t>(s.halo_from[q].size());
  }
  return -1;
}

TEST_P(Partitions, EveryEdgeOnceWithItsSenderReceiverAndFeatures) {
  const int Q = GetParam();
  const GraphCastGeometry& g = geometry();
  const Partition p = partition_geometry(g, Q, 16);
  std::vector<GeometryShard> shards;
  for (int r = 0; r < Q; ++r) shards.push_back(shard_geometry(g, p, r));
  // Global ids of each rank's owned grid and mesh nodes, in local order.
  std::vector<std::vector<int64_t>> grid_owned(static_cast<size_t>(Q)), mesh_owned(static_cast<size_t>(Q));
  for (int r = 0; r < Q; ++r) {
    for (int64_t n = 0; n < shards[static_cast<size_t>(r)].grid_nodes; ++n)
      grid_owned[static_cast<size_t>(r)].push_back(shards[static_cast<size_t>(r)].grid_first + n);
    for (int32_t v : shards[static_cast<size_t>(r)].mesh_nodes) mesh_owned[static_cast<size_t>(r)].push_back(v);
  }
  struct Case {
    const Graph* global;
    const std::vector<float>* features;
    GraphShard GeometryShard::*part;
    const std::vector<std::vector<int64_t>>* senders;
    const std::vector<std::vector<int64_t>>* receivers;
  };
  const Case cases[] = {{&g.g2m, &g.g2m_features, &GeometryShard::g2m, &grid_owned, &mesh_owned},
                        {&g.mesh, &g.mesh_features, &GeometryShard::mesh, &mesh_owned, &mesh_owned},
                        {&g.m2g, &g.m2g_features, &GeometryShard::m2g, &mesh_owned, &grid_owned}};
  for (const Case& c : cases) {
    std::vector<int> seen(static_cast<size_t>(c.global->num_edges()), 0);
    for (int r = 0; r < Q; ++r) {
      const GraphShard& s = shards[static_cast<size_t>(r)].*(c.part);
      ASSERT_EQ(s.graph.num_edges(), static_cast<int64_t>(s.edges.size()));
      ASSERT_EQ(s.graph.num_senders, s.owned_senders + s.halo());
      EXPECT_TRUE(s.halo_from[static_cast<size_t>(r)].empty());
      EXPECT_TRUE(s.send_to[static_cast<size_t>(r)].empty());
      for (size_t i = 0; i < s.edges.size(); ++i) {
        const int64_t e = s.edges[i];
        ++seen[static_cast<size_t>(e)];
        if (i > 0) {
          EXPECT_LT(s.edges[i - 1], e);  // the global order
          EXPECT_LE(s.graph.receivers[i - 1], s.graph.receivers[i]);
        }
        EXPECT_EQ(global_sender(s, s.graph.senders[i], *c.senders, r), c.global->senders[static_cast<size_t>(e)]);
        EXPECT_EQ((*c.receivers)[static_cast<size_t>(r)][static_cast<size_t>(s.graph.receivers[i])],
                  c.global->receivers[static_cast<size_t>(e)]);
        for (int k = 0; k < 4; ++k)
          EXPECT_EQ(s.features[i * 4 + static_cast<size_t>(k)], (*c.features)[static_cast<size_t>(e) * 4 + static_cast<size_t>(k)]);
      }
      // What rank q sends this one is exactly this one's halo from q.
      for (int q = 0; q < Q; ++q)
        EXPECT_EQ((shards[static_cast<size_t>(q)].*(c.part)).send_to[static_cast<size_t>(r)],
                  s.halo_from[static_cast<size_t>(q)]);
    }
    for (size_t e = 0; e < seen.size(); ++e) ASSERT_EQ(seen[e], 1) << "edge " << e;
  }
  // Structural features follow the owned nodes.
  for (int r = 0; r < Q; ++r) {
    const GeometryShard& s = shards[static_cast<size_t>(r)];
    for (size_t i = 0; i < s.mesh_nodes.size(); ++i)
      for (int k = 0; k < 3; ++k)
        EXPECT_EQ(s.mesh_structural[i * 3 + static_cast<size_t>(k)],
                  g.mesh_structural[static_cast<size_t>(s.mesh_nodes[i]) * 3 + static_cast<size_t>(k)]);
    EXPECT_EQ(s.grid_structural.size(), static_cast<size_t>(s.grid_nodes * 3));
    EXPECT_EQ(s.grid_structural[0], g.grid_structural[static_cast<size_t>(s.grid_first) * 3]);
  }
}

INSTANTIATE_TEST_SUITE_P(Shards, Partitions, ::testing::Values(1, 2, 3, 4, 7));

// The bands hold even work: nodes plus the edges they receive, mesh edges
// weighted by layers / 2 (partition.cpp), to within a few rows' worth at 1 deg.
TEST(Partition, BandsHoldEvenWork) {
  const GraphCastGeometry g = build_geometry(make_equiangular_grid(1.0), 5);
  const int layers = 16;
  for (int Q : {2, 4, 8}) {
    const Partition p = partition_geometry(g, Q, layers);
    std::vector<double> work;
    double total = 0;
    for (int r = 0; r < Q; ++r) {
      const GeometryShard s = shard_geometry(g, p, r);
      const double w = static_cast<double>(s.grid_nodes + s.m2g.graph.num_edges()) +
                       static_cast<double>(s.mesh_nodes.size() + s.g2m.graph.num_edges()) +
                       0.5 * layers * static_cast<double>(s.mesh.graph.num_edges());
      work.push_back(w);
      total += w;
    }
    for (int r = 0; r < Q; ++r) EXPECT_NEAR(work[static_cast<size_t>(r)], total / Q, 0.05 * total / Q) << "Q " << Q << " rank " << r;
  }
}

TEST(Partition, OneShardKeepsTheWholeGraphsWithNoHalo) {
  const GraphCastGeometry& g = geometry();
  const GeometryShard s = shard_geometry(g, partition_geometry(g, 1, 16), 0);
  EXPECT_EQ(s.g2m.graph.senders, g.g2m.senders);
  EXPECT_EQ(s.mesh.graph.senders, g.mesh.senders);
  EXPECT_EQ(s.m2g.graph.receivers, g.m2g.receivers);
  EXPECT_EQ(s.g2m.halo() + s.mesh.halo() + s.m2g.halo(), 0);
}

TEST(Partition, TooManyShardsAreRefusedNamingTheLimit) {
  const GraphCastGeometry& g = geometry();
  try {
    partition_geometry(g, 20, 16);
    ADD_FAILURE() << "20 shards of 19 rows accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("19 latitude rows"), std::string::npos) << e.what();
  }
  // Mesh 0 has 12 vertices: 19 bands leave some without a vertex.
  const GraphCastGeometry coarse = build_geometry(make_equiangular_grid(10.0), 0);
  EXPECT_THROW(partition_geometry(coarse, 19, 16), std::invalid_argument);
  EXPECT_THROW(partition_geometry(g, 0, 16), std::invalid_argument);
}

}  // namespace
}  // namespace gc::model
