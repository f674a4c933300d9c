// geometry.cpp: build_geometry (graphcast.h): the grid, the mesh hierarchy, the
// three graphs (gc's own construction or the edge lists given) and their
// structural features, all on the host.
#include <stdexcept>
#include <string>

#include "model/graphcast.h"

namespace gc::model {

GraphCastGeometry build_geometry(const Grid& grid, int mesh_level, const GeometryOptions& options) {
  if (mesh_level < 0 || mesh_level > 7) throw std::invalid_argument("mesh level must be 0..7, got " + std::to_string(mesh_level));
  const bool given = options.g2m != nullptr || options.mesh != nullptr || options.m2g != nullptr;
  if (given && (options.g2m == nullptr || options.mesh == nullptr || options.m2g == nullptr))
    throw std::invalid_argument("build_geometry: give all three graphs or none");
  GraphCastGeometry g;
  g.grid = grid;
  std::vector<Mesh> hierarchy = build_mesh_hierarchy(mesh_level);
  g.finest_mesh = hierarchy.back();
  const std::vector<Vec3> grid_pos = grid_positions(grid);
  if (given) {
    g.g2m = *options.g2m;
    g.mesh = *options.mesh;
    g.m2g = *options.m2g;
    const int64_t grid_nodes = grid.num_nodes(), mesh_nodes = static_cast<int64_t>(g.finest_mesh.vertices.size());
    auto check = [](const Graph& graph, const char* name, int64_t senders, int64_t receivers) {
      if (graph.num_senders != senders || graph.num_receivers != receivers)
        throw std::invalid_argument(std::string("the given ") + name + " graph joins " +
                                    std::to_string(graph.num_senders) + " senders to " +
                                    std::to_string(graph.num_receivers) + " receivers; this grid and mesh have " +
                                    std::to_string(senders) + " and " + std::to_string(receivers));
    };
    check(g.g2m, "grid2mesh", grid_nodes, mesh_nodes);
    check(g.mesh, "mesh", mesh_nodes, mesh_nodes);
    check(g.m2g, "mesh2grid", mesh_nodes, grid_nodes);
  } else {
    g.mesh = build_multimesh(hierarchy);
    g.g2m = build_grid2mesh(grid_pos, g.finest_mesh, options.radius_fraction);
    g.m2g = build_mesh2grid(grid_pos, g.finest_mesh);
  }
  SphereNodes grid_nodes = grid_sphere_nodes(grid);
  SphereNodes mesh_nodes = mesh_sphere_nodes(g.finest_mesh);
  g.grid_structural = node_structural_features(grid_nodes);
  g.mesh_structural = node_structural_features(mesh_nodes);
  g.g2m_features = edge_features(g.g2m, grid_nodes, mesh_nodes);
  g.mesh_features = edge_features(g.mesh, mesh_nodes, mesh_nodes);
  g.m2g_features = edge_features(g.m2g, mesh_nodes, grid_nodes, nullptr, options.m2g_edge_normalization);
  return g;
}

}  // namespace gc::model
