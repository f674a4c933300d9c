// partition.h: graph-sharded model parallelism (gc_train --model-parallel Q).
//
// One sample's graphs split over Q ranks. The grid is cut into latitude bands
// of whole rows, in the grid's row order, that hold even work (partition_geometry);
// a mesh vertex belongs to the band its latitude falls in (the band boundary is
// midway between the last row of one band and the first of the next), so the
// encoder's and decoder's edges, which are short, mostly stay inside a rank.
// Each rank keeps the edges whose receiver it owns, in the global edge order,
// and the senders it does not own (its halo) arrive from their owners before
// each edge update (autograd's exchange_rows); their gradients go back the same
// way in backward.
//
// Local numbering on a rank: owned grid nodes are the band's global nodes minus
// its first; owned mesh vertices in ascending global order; a graph's senders
// are [owned senders, then the halo: from rank 0, 1, ... in each owner's local
// order].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/graphcast.h"

namespace gc::model {

// One graph on one rank: the edges whose receiver it owns, their features, and
// its halo.
struct GraphShard {
  Graph graph;                  // senders: [owned senders + halo], receivers: owned receivers
  std::vector<float> features;  // [edges, 4]
  std::vector<int64_t> edges;   // the global id of each kept edge
  int64_t owned_senders = 0;
  std::vector<std::vector<int32_t>> halo_from;  // [Q] local ids, at their owner q, of the senders it sends here
  std::vector<std::vector<int32_t>> send_to;    // [Q] local ids of this rank's senders that rank q needs
  int64_t halo() const;                         // halo sender nodes (rows received per sample)
  int64_t sent() const;                         // rows sent per sample
};

struct GeometryShard {
  int rank = 0, ranks = 1;
  int64_t grid_first = 0, grid_nodes = 0;  // owned grid nodes: [grid_first, grid_first + grid_nodes)
  int64_t grid_first_row = 0, grid_rows = 0;
  std::vector<int32_t> mesh_nodes;         // owned mesh vertices, ascending global ids
  std::vector<float> grid_structural;      // [grid_nodes, 3]
  std::vector<float> mesh_structural;      // [mesh nodes, 3]
  GraphShard g2m, mesh, m2g;
};

// Owner rank of every mesh vertex and the first grid row of every rank ([Q + 1]).
// The bands hold even work (partition.cpp: nodes and the edges they receive,
// mesh edges weighted by the processor's `layers`), not even rows.
struct Partition {
  std::vector<int64_t> first_row;   // [Q + 1]
  std::vector<int32_t> mesh_owner;  // [mesh vertices]
};
// Throws std::invalid_argument (naming the limit) when a rank would own no grid
// row or no mesh vertex, or the grid's latitudes are not monotonic.
Partition partition_geometry(const GraphCastGeometry& geometry, int ranks, int layers);

// Rank `rank`'s part of the geometry.
GeometryShard shard_geometry(const GraphCastGeometry& geometry, const Partition& partition, int rank);

// What a partition gives, per rank (for --model-parallel's report and gc_study shards).
struct ShardSummary {
  int rank = 0;
  int64_t grid_nodes = 0, mesh_nodes = 0;
  int64_t g2m_edges = 0, mesh_edges = 0, m2g_edges = 0;
  int64_t g2m_halo = 0, mesh_halo = 0, m2g_halo = 0;  // sender nodes received per sample
  int64_t g2m_sent = 0, mesh_sent = 0, m2g_sent = 0;  // sender nodes sent per sample
};
ShardSummary summarize(const GeometryShard& shard);

}  // namespace gc::model
