// partition.cpp: latitude bands of the grid, the matching split of the mesh,
// and each rank's edges and halo (partition.h).
#include "model/partition.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace gc::model {

int64_t GraphShard::halo() const {
  int64_t n = 0;
  for (const auto& h : halo_from) n += static_cast<int64_t>(h.size());
  return n;
}

int64_t GraphShard::sent() const {
  int64_t n = 0;
  for (const auto& s : send_to) n += static_cast<int64_t>(s.size());
  return n;
}

Partition partition_geometry(const GraphCastGeometry& geometry, int ranks, int layers) {
  const Grid& grid = geometry.grid;
  const int64_t rows = grid.num_lat();
  if (ranks < 1) throw std::invalid_argument("--model-parallel must be >= 1, got " + std::to_string(ranks));
  if (ranks > rows)
    throw std::invalid_argument("--model-parallel " + std::to_string(ranks) + ": the grid has " + std::to_string(rows) +
                                " latitude rows and every shard needs at least one");
  bool descending = true, ascending = true;
  for (int64_t i = 1; i < rows; ++i) {
    descending = descending && grid.latitude_deg[static_cast<size_t>(i)] < grid.latitude_deg[static_cast<size_t>(i - 1)];
    ascending = ascending && grid.latitude_deg[static_cast<size_t>(i)] > grid.latitude_deg[static_cast<size_t>(i - 1)];
  }
  if (!descending && !ascending)
    throw std::invalid_argument("--model-parallel: the grid's latitudes must be monotonic to be cut into bands");
  // Each row's work: its grid nodes and the mesh vertices in its latitude
  // interval (midway to the neighbouring rows), each counted as 1 + the edges it
  // receives, a mesh edge (one per processor layer) weighted layers / 2: a mesh
  // vertex receives ~40 grid2mesh and ~8 mesh edges, a grid node 3 mesh2grid.
  // The weight was measured: with it the ranks' peaks of the 0.25 deg GraphCast
  // step (16 layers, no remat) agree within 1% at Q = 4 and 2% at Q = 8, where
  // counting each edge once leaves them 25% and 40% apart (docs/PARALLEL.md).
  const auto& vertices = geometry.finest_mesh.vertices;
  std::vector<double> row_cost(static_cast<size_t>(rows), 0.0);
  std::vector<int64_t> grid_in(static_cast<size_t>(geometry.num_grid_nodes()), 0), mesh_in(vertices.size(), 0);
  for (int32_t r : geometry.m2g.receivers) ++grid_in[static_cast<size_t>(r)];
  std::vector<int64_t> mesh_edges_in(vertices.size(), 0);
  for (int32_t r : geometry.g2m.receivers) ++mesh_in[static_cast<size_t>(r)];
  for (int32_t r : geometry.mesh.receivers) ++mesh_edges_in[static_cast<size_t>(r)];
  const double mesh_edge_weight = std::max(1.0, 0.5 * layers);
  const int64_t lon = grid.num_lon();
  for (int64_t n = 0; n < geometry.num_grid_nodes(); ++n)
    row_cost[static_cast<size_t>(n / lon)] += 1.0 + static_cast<double>(grid_in[static_cast<size_t>(n)]);
  auto latitude = [&vertices](size_t v) {
    return std::asin(std::max(-1.0, std::min(1.0, vertices[v][2]))) * 180.0 / M_PI;
  };
  // Row i's interval ends at boundary_after[i], midway to row i + 1.
  auto after = [&grid](int64_t i) {
    return 0.5 * (grid.latitude_deg[static_cast<size_t>(i)] + grid.latitude_deg[static_cast<size_t>(i + 1)]);
  };
  auto row_of = [&](double lat) {
    int64_t lo = 0, hi = rows - 1;  // the first row whose interval holds lat
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (descending ? lat >= after(mid) : lat <= after(mid)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  for (size_t v = 0; v < vertices.size(); ++v)
    row_cost[static_cast<size_t>(row_of(latitude(v)))] += 1.0 + static_cast<double>(mesh_in[v]) +
                                                        mesh_edge_weight * static_cast<double>(mesh_edges_in[v]);
  // Bands of whole rows with even work: rank r starts where the work before it
  // first reaches r / Q of the whole (at least one row each).
  double total = 0;
  for (double c : row_cost) total += c;
  Partition p;
  p.first_row.assign(static_cast<size_t>(ranks) + 1, rows);
  p.first_row[0] = 0;
  double prefix = 0;
  int64_t row = 0;
  for (int r = 1; r < ranks; ++r) {
    const double target = total * r / ranks;
    while (row < rows && prefix + 0.5 * row_cost[static_cast<size_t>(row)] < target) prefix += row_cost[static_cast<size_t>(row++)];
    row = std::max(row, p.first_row[static_cast<size_t>(r) - 1] + 1);
    row = std::min(row, rows - (ranks - r));
    p.first_row[static_cast<size_t>(r)] = row;
    prefix = 0;
    for (int64_t i = 0; i < row; ++i) prefix += row_cost[static_cast<size_t>(i)];
  }
  // Band r ends midway between its last row and the next band's first row.
  std::vector<double> boundary(static_cast<size_t>(ranks > 1 ? ranks - 1 : 0));
  for (int r = 0; r + 1 < ranks; ++r) boundary[static_cast<size_t>(r)] = after(p.first_row[static_cast<size_t>(r) + 1] - 1);
  p.mesh_owner.assign(vertices.size(), 0);
  std::vector<int64_t> mesh_count(static_cast<size_t>(ranks), 0);
  for (size_t v = 0; v < vertices.size(); ++v) {
    const double lat = latitude(v);
    int r = 0;
    while (r + 1 < ranks && (descending ? lat < boundary[static_cast<size_t>(r)] : lat > boundary[static_cast<size_t>(r)])) ++r;
    p.mesh_owner[v] = r;
    ++mesh_count[static_cast<size_t>(r)];
  }
  for (int r = 0; r < ranks; ++r)
    if (mesh_count[static_cast<size_t>(r)] == 0)
      throw std::invalid_argument("--model-parallel " + std::to_string(ranks) + ": shard " + std::to_string(r) +
                                  "'s latitude band holds no mesh vertex (the mesh has " +
                                  std::to_string(vertices.size()) + "); use fewer shards or a finer mesh");
  return p;
}

namespace {

// The edges of `graph` whose receiver this rank owns, their senders renumbered
// into [owned, halo by owner rank].
GraphShard shard_graph(const Graph& graph, const std::vector<float>& features, int ranks, int rank,
                       const std::vector<int32_t>& sender_owner, const std::vector<int32_t>& sender_local,
                       const std::vector<int32_t>& receiver_owner, const std::vector<int32_t>& receiver_local,
                       int64_t owned_senders, int64_t owned_receivers) {
  GraphShard s;
  s.owned_senders = owned_senders;
  s.halo_from.assign(static_cast<size_t>(ranks), {});
  s.send_to.assign(static_cast<size_t>(ranks), {});
  const int64_t edges = graph.num_edges();
  // Halo: the senders of kept edges owned elsewhere, by owner, in the owner's local order.
  for (int64_t e = 0; e < edges; ++e) {
    const int32_t recv = graph.receivers[static_cast<size_t>(e)], send = graph.senders[static_cast<size_t>(e)];
    if (receiver_owner[static_cast<size_t>(recv)] != rank) continue;
    s.edges.push_back(e);
    const int32_t owner = sender_owner[static_cast<size_t>(send)];
    if (owner != rank) s.halo_from[static_cast<size_t>(owner)].push_back(sender_local[static_cast<size_t>(send)]);
  }
  std::vector<int64_t> halo_offset(static_cast<size_t>(ranks), 0);
  int64_t offset = owned_senders;
  for (int q = 0; q < ranks; ++q) {
    auto& h = s.halo_from[static_cast<size_t>(q)];
    std::sort(h.begin(), h.end());
    h.erase(std::unique(h.begin(), h.end()), h.end());
    halo_offset[static_cast<size_t>(q)] = offset;
    offset += static_cast<int64_t>(h.size());
  }
  // What the other ranks need from this one: their receivers' senders owned here.
  for (int64_t e = 0; e < edges; ++e) {
    const int32_t recv = graph.receivers[static_cast<size_t>(e)], send = graph.senders[static_cast<size_t>(e)];
    const int32_t dest = receiver_owner[static_cast<size_t>(recv)];
    if (dest != rank && sender_owner[static_cast<size_t>(send)] == rank)
      s.send_to[static_cast<size_t>(dest)].push_back(sender_local[static_cast<size_t>(send)]);
  }
  for (auto& list : s.send_to) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  // The kept edges in the global order (sorted by receiver, so by local receiver too).
  s.graph.num_senders = offset;
  s.graph.num_receivers = owned_receivers;
  s.graph.senders.reserve(s.edges.size());
  s.graph.receivers.reserve(s.edges.size());
  s.features.reserve(s.edges.size() * 4);
  for (int64_t e : s.edges) {
    const int32_t recv = graph.receivers[static_cast<size_t>(e)], send = graph.senders[static_cast<size_t>(e)];
    const int32_t owner = sender_owner[static_cast<size_t>(send)];
    int64_t local = sender_local[static_cast<size_t>(send)];
    if (owner != rank) {
      const auto& h = s.halo_from[static_cast<size_t>(owner)];
      local = halo_offset[static_cast<size_t>(owner)] +
              (std::lower_bound(h.begin(), h.end(), static_cast<int32_t>(local)) - h.begin());
    }
    s.graph.senders.push_back(static_cast<int32_t>(local));
    s.graph.receivers.push_back(receiver_local[static_cast<size_t>(recv)]);
    for (int c = 0; c < 4; ++c) s.features.push_back(features[static_cast<size_t>(e * 4 + c)]);
  }
  return s;
}

}  // namespace

GeometryShard shard_geometry(const GraphCastGeometry& geometry, const Partition& partition, int rank) {
  const int ranks = static_cast<int>(partition.first_row.size()) - 1;
  if (rank < 0 || rank >= ranks) throw std::invalid_argument("shard_geometry: rank out of range");
  const Grid& grid = geometry.grid;
  const int64_t lon = grid.num_lon(), grid_total = grid.num_nodes();
  const int64_t mesh_total = geometry.num_mesh_nodes();
  GeometryShard s;
  s.rank = rank;
  s.ranks = ranks;
  s.grid_first_row = partition.first_row[static_cast<size_t>(rank)];
  s.grid_rows = partition.first_row[static_cast<size_t>(rank) + 1] - s.grid_first_row;
  s.grid_first = s.grid_first_row * lon;
  s.grid_nodes = s.grid_rows * lon;
  // Owners and local ids of every node (grid: by band; mesh: by latitude).
  std::vector<int32_t> grid_owner(static_cast<size_t>(grid_total)), grid_local(static_cast<size_t>(grid_total));
  for (int r = 0; r < ranks; ++r)
    for (int64_t n = partition.first_row[static_cast<size_t>(r)] * lon; n < partition.first_row[static_cast<size_t>(r) + 1] * lon; ++n) {
      grid_owner[static_cast<size_t>(n)] = r;
      grid_local[static_cast<size_t>(n)] = static_cast<int32_t>(n - partition.first_row[static_cast<size_t>(r)] * lon);
    }
  std::vector<int32_t> mesh_local(static_cast<size_t>(mesh_total));
  std::vector<int32_t> next(static_cast<size_t>(ranks), 0);
  for (int64_t v = 0; v < mesh_total; ++v) {
    const int32_t owner = partition.mesh_owner[static_cast<size_t>(v)];
    mesh_local[static_cast<size_t>(v)] = next[static_cast<size_t>(owner)]++;
    if (owner == rank) s.mesh_nodes.push_back(static_cast<int32_t>(v));
  }
  const int64_t mesh_owned = static_cast<int64_t>(s.mesh_nodes.size());
  s.grid_structural.assign(geometry.grid_structural.begin() + s.grid_first * 3,
                           geometry.grid_structural.begin() + (s.grid_first + s.grid_nodes) * 3);
  for (int32_t v : s.mesh_nodes)
    for (int c = 0; c < 3; ++c) s.mesh_structural.push_back(geometry.mesh_structural[static_cast<size_t>(v) * 3 + c]);
  const std::vector<int32_t>& mesh_owner = partition.mesh_owner;
  s.g2m = shard_graph(geometry.g2m, geometry.g2m_features, ranks, rank, grid_owner, grid_local, mesh_owner, mesh_local,
                      s.grid_nodes, mesh_owned);
  s.mesh = shard_graph(geometry.mesh, geometry.mesh_features, ranks, rank, mesh_owner, mesh_local, mesh_owner,
                       mesh_local, mesh_owned, mesh_owned);
  s.m2g = shard_graph(geometry.m2g, geometry.m2g_features, ranks, rank, mesh_owner, mesh_local, grid_owner, grid_local,
                      mesh_owned, s.grid_nodes);
  return s;
}

ShardSummary summarize(const GeometryShard& shard) {
  ShardSummary s;
  s.rank = shard.rank;
  s.grid_nodes = shard.grid_nodes;
  s.mesh_nodes = static_cast<int64_t>(shard.mesh_nodes.size());
  s.g2m_edges = shard.g2m.graph.num_edges();
  s.mesh_edges = shard.mesh.graph.num_edges();
  s.m2g_edges = shard.m2g.graph.num_edges();
  s.g2m_halo = shard.g2m.halo();
  s.mesh_halo = shard.mesh.halo();
  s.m2g_halo = shard.m2g.halo();
  s.g2m_sent = shard.g2m.sent();
  s.mesh_sent = shard.mesh.sent();
  s.m2g_sent = shard.m2g.sent();
  return s;
}

}  // namespace gc::model
