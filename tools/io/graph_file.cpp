// graph_file.cpp: load_graph_file (graph_file.h).
#include "tools/io/graph_file.h"

#include <cmath>
#include <stdexcept>

#include "tools/io/npz.h"

namespace gc {

GraphFile load_graph_file(const std::string& path, const model::Grid& grid, const model::Mesh& finest_mesh) {
  const NpzFile file = load_npz(path);
  auto fail = [&path](const std::string& what) { throw std::runtime_error(path + ": " + what); };
  auto need = [&](const std::string& name, NpyKind kind, size_t dims) -> const NpyArray& {
    const NpyArray* a = file.find(name);
    if (a == nullptr) fail("not a GraphCast graph file: no array '" + name + "'");
    if (a->kind != kind || a->shape.size() != dims) fail("array '" + name + "' is " + a->describe());
    return *a;
  };
  const std::vector<double> lat = need("grid_lat", NpyKind::f64, 1).to_doubles();
  const std::vector<double> lon = need("grid_lon", NpyKind::f64, 1).to_doubles();
  const NpyArray& vertices = need("mesh_vertices", NpyKind::f64, 2);
  if (static_cast<int64_t>(lat.size()) != grid.num_lat() || static_cast<int64_t>(lon.size()) != grid.num_lon())
    fail("its grid is " + std::to_string(lat.size()) + " x " + std::to_string(lon.size()) + ", the data's " +
         std::to_string(grid.num_lat()) + " x " + std::to_string(grid.num_lon()));
  std::vector<int64_t> row_of_file_row(lat.size());
  for (size_t i = 0; i < lat.size(); ++i) {
    int64_t found = -1;
    for (int64_t r = 0; r < grid.num_lat(); ++r)
      if (std::fabs(grid.latitude_deg[static_cast<size_t>(r)] - lat[i]) < 1e-6) found = r;
    if (found < 0) fail("its grid row " + std::to_string(i) + " (latitude " + std::to_string(lat[i]) + ") is not a row of the data's grid");
    row_of_file_row[i] = found;
  }
  for (size_t j = 0; j < lon.size(); ++j)
    if (std::fabs(grid.longitude_deg[j] - lon[j]) > 1e-6)
      fail("its grid column " + std::to_string(j) + " is longitude " + std::to_string(lon[j]) + ", the data's " +
           std::to_string(grid.longitude_deg[j]));
  const size_t mesh_nodes = finest_mesh.vertices.size();
  if (vertices.shape[0] != static_cast<int64_t>(mesh_nodes) || vertices.shape[1] != 3)
    fail("its mesh has " + std::to_string(vertices.shape[0]) + " vertices, gc's finest mesh " + std::to_string(mesh_nodes) +
         " (another mesh size?)");
  const std::vector<double> xyz = vertices.to_doubles();
  for (size_t v = 0; v < mesh_nodes; ++v)
    for (size_t k = 0; k < 3; ++k)
      if (std::fabs(xyz[3 * v + k] - finest_mesh.vertices[v][k]) > 1e-6)
        fail("mesh vertex " + std::to_string(v) + " differs from gc's (the mesh numbering is not the same)");

  GraphFile out;
  const int64_t n_lon = grid.num_lon();
  out.grid_node_of_file_node.resize(static_cast<size_t>(grid.num_nodes()));
  for (size_t i = 0; i < lat.size(); ++i)
    for (int64_t j = 0; j < n_lon; ++j)
      out.grid_node_of_file_node[i * static_cast<size_t>(n_lon) + static_cast<size_t>(j)] = row_of_file_row[i] * n_lon + j;
  auto edges = [&](const std::string& name, bool senders_grid, bool receivers_grid) {
    const NpyArray& s = need(name + "_senders", NpyKind::i32, 1);
    const NpyArray& r = need(name + "_receivers", NpyKind::i32, 1);
    if (s.shape[0] != r.shape[0]) fail(name + ": " + std::to_string(s.shape[0]) + " senders, " + std::to_string(r.shape[0]) + " receivers");
    std::vector<int32_t> senders(static_cast<size_t>(s.shape[0])), receivers(senders.size());
    const auto* sp = reinterpret_cast<const int32_t*>(s.data.data());
    const auto* rp = reinterpret_cast<const int32_t*>(r.data.data());
    const int64_t num_senders = senders_grid ? grid.num_nodes() : static_cast<int64_t>(mesh_nodes);
    const int64_t num_receivers = receivers_grid ? grid.num_nodes() : static_cast<int64_t>(mesh_nodes);
    auto map = [&](int32_t index, bool is_grid, int64_t limit, size_t e, const char* side) {
      if (index < 0 || index >= limit)
        fail(name + " edge " + std::to_string(e) + ": " + side + " " + std::to_string(index) + " is outside 0.." +
             std::to_string(limit - 1));
      return is_grid ? static_cast<int32_t>(out.grid_node_of_file_node[static_cast<size_t>(index)]) : index;
    };
    for (size_t e = 0; e < senders.size(); ++e) {
      senders[e] = map(sp[e], senders_grid, num_senders, e, "sender");
      receivers[e] = map(rp[e], receivers_grid, num_receivers, e, "receiver");
    }
    try {
      return model::make_graph(num_senders, num_receivers, std::move(senders), std::move(receivers));
    } catch (const std::invalid_argument& error) {
      fail(name + ": " + error.what());
    }
    return model::Graph();
  };
  out.g2m = edges("grid2mesh", true, false);
  out.mesh = edges("mesh", false, false);
  out.m2g = edges("mesh2grid", false, true);
  return out;
}

}  // namespace gc
