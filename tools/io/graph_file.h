// graph_file.h: GraphCast's three edge lists from a file (--graphs FILE.npz), so
// that a published model runs on exactly the graphs it was trained with.
//
// Format (tools/reference/export_graphs.py writes it from DeepMind's code):
// int32 `grid2mesh_senders/_receivers`, `mesh_senders/_receivers`,
// `mesh2grid_senders/_receivers` in DeepMind's numbering; float64 `grid_lat`,
// `grid_lon` (the grid rows and columns that numbering refers to: node =
// i_lat * n_lon + i_lon) and `mesh_vertices` [M, 3].
//
// Numbering is mapped explicitly, never assumed: each file row is matched to
// the row of gc's grid at the same latitude (so DeepMind's south-to-north rows
// land on a north-to-south grid correctly), columns must be the same
// longitudes, and the mesh vertices must be gc's finest mesh vertex for vertex
// (within 1e-6: DeepMind keeps them in f32), else the file is refused with the first disagreement.
#pragma once

#include <string>
#include <vector>

#include "model/graphs.h"
#include "model/grid.h"
#include "model/mesh.h"

namespace gc {

struct GraphFile {
  model::Graph g2m, mesh, m2g;  // in gc's node numbering, edges sorted by receiver
  std::vector<int64_t> grid_node_of_file_node;  // [grid nodes] the explicit mapping
};

// Throws std::runtime_error starting with the path on anything inconsistent.
GraphFile load_graph_file(const std::string& path, const model::Grid& grid, const model::Mesh& finest_mesh);

}  // namespace gc
