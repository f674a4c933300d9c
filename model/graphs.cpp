// graphs.cpp: edge lists of the multimesh and of the grid<->mesh bipartite graphs.
//
// The bipartite searches use a uniform 3-D bucket grid: with cells at least as
// wide as the search radius, every point within that radius of a query lies in
// the 27 cells around it. Each grid node's result depends on that node alone,
// so the parallel loops give the same edges for any thread count.
#include "model/graphs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace gc::model {
namespace {

double distance_squared(const Vec3& a, const Vec3& b) {
  const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return dx * dx + dy * dy + dz * dz;
}

class SpatialBuckets {
 public:
  // points [n]; queries visit a superset of the points within cell_size of them.
  SpatialBuckets(const std::vector<Vec3>& points, double cell_size) : cell_size_(cell_size) {
    // 2^20 cells an axis keeps keys in int64 and is finer than any useful radius.
    const double cells = std::floor(2.0 / cell_size) + 1.0;
    cells_per_axis_ = static_cast<int64_t>(std::min(cells, 1048576.0));
    cell_size_ = std::max(cell_size, 2.0 / cells_per_axis_);
    std::vector<std::pair<int64_t, int32_t>> key_and_point(points.size());
    for (size_t i = 0; i < points.size(); ++i) {
      key_and_point[i] = {cell_key(axis_index(points[i][0]), axis_index(points[i][1]),
                                   axis_index(points[i][2])),
                          static_cast<int32_t>(i)};
    }
    std::sort(key_and_point.begin(), key_and_point.end());
    point_ids_.reserve(points.size());
    for (size_t i = 0; i < key_and_point.size(); ++i) {
      if (i == 0 || key_and_point[i].first != key_and_point[i - 1].first) {
        cell_keys_.push_back(key_and_point[i].first);
        cell_starts_.push_back(static_cast<int32_t>(i));
      }
      point_ids_.push_back(key_and_point[i].second);
    }
    cell_starts_.push_back(static_cast<int32_t>(point_ids_.size()));
  }

  template <class Visit>
  void for_each_candidate(const Vec3& p, Visit&& visit) const {
    const int64_t ix = axis_index(p[0]), iy = axis_index(p[1]), iz = axis_index(p[2]);
    const int64_t z_first = std::max<int64_t>(iz - 1, 0);
    const int64_t z_last = std::min<int64_t>(iz + 1, cells_per_axis_ - 1);
    for (int64_t x = std::max<int64_t>(ix - 1, 0); x <= std::min(ix + 1, cells_per_axis_ - 1); ++x) {
      for (int64_t y = std::max<int64_t>(iy - 1, 0); y <= std::min(iy + 1, cells_per_axis_ - 1); ++y) {
        // The three z-neighbours have consecutive keys: one range scan.
        const int64_t key_last = cell_key(x, y, z_last);
        auto cell = std::lower_bound(cell_keys_.begin(), cell_keys_.end(), cell_key(x, y, z_first));
        for (; cell != cell_keys_.end() && *cell <= key_last; ++cell) {
          const size_t c = cell - cell_keys_.begin();
          for (int32_t k = cell_starts_[c]; k < cell_starts_[c + 1]; ++k) visit(point_ids_[k]);
        }
      }
    }
  }

  double cell_size() const { return cell_size_; }

 private:
  // Clamping only merges boundary cells, which never separates neighbours.
  int64_t axis_index(double coordinate) const {
    const double cell = std::floor((coordinate + 1.0) / cell_size_);
    return static_cast<int64_t>(std::clamp(cell, 0.0, static_cast<double>(cells_per_axis_ - 1)));
  }
  int64_t cell_key(int64_t x, int64_t y, int64_t z) const {
    return (x * cells_per_axis_ + y) * cells_per_axis_ + z;
  }

  double cell_size_;
  int64_t cells_per_axis_ = 1;
  std::vector<int64_t> cell_keys_;    // [occupied cells] ascending
  std::vector<int32_t> cell_starts_;  // [occupied cells + 1] into point_ids_
  std::vector<int32_t> point_ids_;    // [points] grouped by cell, ascending id within a cell
};

void check_grid_size(const std::vector<Vec3>& grid_positions, const char* caller) {
  // Three edges a node must still have an int32 edge index.
  if (static_cast<int64_t>(grid_positions.size()) > std::numeric_limits<int32_t>::max() / 3) {
    throw std::invalid_argument(std::string(caller) + ": " + std::to_string(grid_positions.size()) +
                                " grid nodes exceed the int32 edge index");
  }
}

void check_mesh(const Mesh& mesh, const char* caller) {
  if (mesh.vertices.empty() || mesh.faces.empty()) {
    throw std::invalid_argument(std::string(caller) + ": mesh has no vertices or no faces");
  }
  const int64_t num_vertices = static_cast<int64_t>(mesh.vertices.size());
  for (const auto& face : mesh.faces) {
    for (int32_t v : face) {
      if (v < 0 || v >= num_vertices) {
        throw std::invalid_argument(std::string(caller) + ": face vertex " + std::to_string(v) +
                                    " outside 0.." + std::to_string(num_vertices - 1));
      }
    }
  }
}

// Stable counting sort of edge ids by key; keys in [0, num_keys).
std::vector<int32_t> stable_order_by(const std::vector<int32_t>& keys, const std::vector<int32_t>& edges_in,
                                     int64_t num_keys) {
  std::vector<int32_t> offsets(num_keys + 1, 0);
  for (int32_t e : edges_in) ++offsets[keys[e] + 1];
  for (int64_t k = 0; k < num_keys; ++k) offsets[k + 1] += offsets[k];
  std::vector<int32_t> edges_out(edges_in.size());
  for (int32_t e : edges_in) edges_out[offsets[keys[e]]++] = e;
  return edges_out;
}

}  // namespace

std::vector<int32_t> Graph::receiver_offsets() const {
  std::vector<int32_t> offsets(num_receivers + 1, 0);
  for (int32_t r : receivers) ++offsets[r + 1];
  for (int64_t r = 0; r < num_receivers; ++r) offsets[r + 1] += offsets[r];
  return offsets;
}

SenderCsr Graph::sender_csr() const {
  std::vector<int32_t> edge_ids(senders.size());
  for (size_t e = 0; e < edge_ids.size(); ++e) edge_ids[e] = static_cast<int32_t>(e);
  SenderCsr csr;
  csr.order = stable_order_by(senders, edge_ids, num_senders);
  csr.offsets.assign(num_senders + 1, 0);
  for (int32_t s : senders) ++csr.offsets[s + 1];
  for (int64_t s = 0; s < num_senders; ++s) csr.offsets[s + 1] += csr.offsets[s];
  return csr;
}

Graph make_graph(int64_t num_senders, int64_t num_receivers, std::vector<int32_t> senders,
                 std::vector<int32_t> receivers) {
  constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();
  if (num_senders < 0 || num_receivers < 0 || num_senders > kMaxIndex || num_receivers > kMaxIndex) {
    throw std::invalid_argument("make_graph: node counts must be in 0..INT32_MAX, got " +
                                std::to_string(num_senders) + " senders, " +
                                std::to_string(num_receivers) + " receivers");
  }
  if (senders.size() != receivers.size()) {
    throw std::invalid_argument("make_graph: " + std::to_string(senders.size()) + " senders but " +
                                std::to_string(receivers.size()) + " receivers");
  }
  if (static_cast<int64_t>(senders.size()) > kMaxIndex) {
    throw std::invalid_argument("make_graph: " + std::to_string(senders.size()) +
                                " edges exceed the int32 edge index");
  }
  for (size_t e = 0; e < senders.size(); ++e) {
    if (senders[e] < 0 || senders[e] >= num_senders || receivers[e] < 0 || receivers[e] >= num_receivers) {
      throw std::invalid_argument("make_graph: edge " + std::to_string(e) + " (" + std::to_string(senders[e]) +
                                  " -> " + std::to_string(receivers[e]) + ") outside " +
                                  std::to_string(num_senders) + " senders x " +
                                  std::to_string(num_receivers) + " receivers");
    }
  }
  // Two stable passes (sender, then receiver) give (receiver, sender) order.
  std::vector<int32_t> edge_ids(senders.size());
  for (size_t e = 0; e < edge_ids.size(); ++e) edge_ids[e] = static_cast<int32_t>(e);
  edge_ids = stable_order_by(receivers, stable_order_by(senders, edge_ids, num_senders), num_receivers);
  Graph graph;
  graph.num_senders = num_senders;
  graph.num_receivers = num_receivers;
  graph.senders.resize(edge_ids.size());
  graph.receivers.resize(edge_ids.size());
  for (size_t k = 0; k < edge_ids.size(); ++k) {
    graph.senders[k] = senders[edge_ids[k]];
    graph.receivers[k] = receivers[edge_ids[k]];
  }
  return graph;
}

Graph build_mesh_graph(const Mesh& mesh) {
  check_mesh(mesh, "build_mesh_graph");
  return build_multimesh(std::vector<Mesh>{mesh});
}

Graph build_multimesh(const std::vector<Mesh>& hierarchy) {
  if (hierarchy.empty()) throw std::invalid_argument("build_multimesh: empty mesh hierarchy");
  const int64_t num_nodes = static_cast<int64_t>(hierarchy.back().vertices.size());
  std::vector<int32_t> senders, receivers;
  for (const Mesh& mesh : hierarchy) {
    check_mesh(mesh, "build_multimesh");
    if (static_cast<int64_t>(mesh.vertices.size()) > num_nodes) {
      throw std::invalid_argument("build_multimesh: a coarser level has more vertices than the finest");
    }
    for (const auto& face : mesh.faces) {
      for (int k = 0; k < 3; ++k) {
        senders.push_back(face[k]);
        receivers.push_back(face[(k + 1) % 3]);
      }
    }
  }
  return make_graph(num_nodes, num_nodes, std::move(senders), std::move(receivers));
}

Graph build_multimesh(int finest_level) { return build_multimesh(build_mesh_hierarchy(finest_level)); }

Graph build_grid2mesh(const std::vector<Vec3>& grid_positions, const Mesh& finest_mesh, double radius_fraction) {
  check_mesh(finest_mesh, "build_grid2mesh");
  check_grid_size(grid_positions, "build_grid2mesh");
  if (!(radius_fraction > 0.0)) {
    throw std::invalid_argument("build_grid2mesh: radius_fraction must be positive, got " +
                                std::to_string(radius_fraction));
  }
  const double radius = radius_fraction * longest_edge_chord(finest_mesh);
  // The slack keeps points at exactly the radius inside the 27 cells despite rounding.
  const SpatialBuckets buckets(finest_mesh.vertices, radius * (1.0 + 1e-9));
  const std::vector<Vec3>& mesh_vertices = finest_mesh.vertices;
  const int64_t num_grid = static_cast<int64_t>(grid_positions.size());
  auto within_radius = [&](const Vec3& p, int32_t m) {
    return std::sqrt(distance_squared(p, mesh_vertices[m])) <= radius;
  };

  std::vector<int64_t> edge_offsets(num_grid + 1, 0);
#pragma omp parallel for schedule(dynamic, 4096)
  for (int64_t g = 0; g < num_grid; ++g) {
    int64_t count = 0;
    buckets.for_each_candidate(grid_positions[g], [&](int32_t m) { count += within_radius(grid_positions[g], m); });
    edge_offsets[g + 1] = count;
  }
  for (int64_t g = 0; g < num_grid; ++g) edge_offsets[g + 1] += edge_offsets[g];

  std::vector<int32_t> senders(edge_offsets[num_grid]), receivers(edge_offsets[num_grid]);
#pragma omp parallel for schedule(dynamic, 4096)
  for (int64_t g = 0; g < num_grid; ++g) {
    int64_t next = edge_offsets[g];
    buckets.for_each_candidate(grid_positions[g], [&](int32_t m) {
      if (!within_radius(grid_positions[g], m)) return;
      senders[next] = static_cast<int32_t>(g);
      receivers[next] = m;
      ++next;
    });
  }
  return make_graph(num_grid, static_cast<int64_t>(mesh_vertices.size()), std::move(senders),
                    std::move(receivers));
}

Vec3 closest_point_on_triangle(const Vec3& p, const Vec3& a, const Vec3& b, const Vec3& c) {
  // Voronoi regions of the corners, then the edges, then the interior.
  auto sub = [](const Vec3& u, const Vec3& v) { return Vec3{u[0] - v[0], u[1] - v[1], u[2] - v[2]}; };
  auto dot = [](const Vec3& u, const Vec3& v) { return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]; };
  auto along = [](const Vec3& origin, const Vec3& direction, double t) {
    return Vec3{origin[0] + t * direction[0], origin[1] + t * direction[1], origin[2] + t * direction[2]};
  };
  const Vec3 ab = sub(b, a), ac = sub(c, a), ap = sub(p, a);
  const double d1 = dot(ab, ap), d2 = dot(ac, ap);
  if (d1 <= 0 && d2 <= 0) return a;
  const Vec3 bp = sub(p, b);
  const double d3 = dot(ab, bp), d4 = dot(ac, bp);
  if (d3 >= 0 && d4 <= d3) return b;
  const double vc = d1 * d4 - d3 * d2;
  if (vc <= 0 && d1 >= 0 && d3 <= 0) return along(a, ab, d1 / (d1 - d3));
  const Vec3 cp = sub(p, c);
  const double d5 = dot(ab, cp), d6 = dot(ac, cp);
  if (d6 >= 0 && d5 <= d6) return c;
  const double vb = d5 * d2 - d1 * d6;
  if (vb <= 0 && d2 >= 0 && d6 <= 0) return along(a, ac, d2 / (d2 - d6));
  const double va = d3 * d6 - d5 * d4;
  if (va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0) {
    return along(b, sub(c, b), (d4 - d3) / ((d4 - d3) + (d5 - d6)));
  }
  const double denominator = va + vb + vc;
  const Vec3 on_ab = along(a, ab, vb / denominator);
  return along(on_ab, ac, vc / denominator);
}

std::vector<int32_t> containing_faces(const std::vector<Vec3>& grid_positions, const Mesh& mesh) {
  check_mesh(mesh, "containing_faces");
  check_grid_size(grid_positions, "containing_faces");
  const int64_t num_faces = static_cast<int64_t>(mesh.faces.size());
  std::vector<Vec3> centroids(num_faces);
  double max_centroid_to_vertex = 0.0;
  for (int64_t f = 0; f < num_faces; ++f) {
    const Vec3& a = mesh.vertices[mesh.faces[f][0]];
    const Vec3& b = mesh.vertices[mesh.faces[f][1]];
    const Vec3& c = mesh.vertices[mesh.faces[f][2]];
    centroids[f] = {(a[0] + b[0] + c[0]) / 3, (a[1] + b[1] + c[1]) / 3, (a[2] + b[2] + c[2]) / 3};
    for (const Vec3* v : {&a, &b, &c}) {
      max_centroid_to_vertex = std::max(max_centroid_to_vertex, std::sqrt(distance_squared(centroids[f], *v)));
    }
  }
  // The best face's closest point is no farther than the nearest centroid, and
  // every point of a face lies within max_centroid_to_vertex of its centroid; so
  // the best face's centroid is within nearest + max_centroid_to_vertex.
  const double slack = 1.0 + 1e-9;
  const SpatialBuckets buckets(centroids, 2.0 * longest_edge_chord(mesh) * slack);
  auto triangle_distance_squared = [&](const Vec3& p, int64_t f) {
    const auto& face = mesh.faces[f];
    return distance_squared(
        p, closest_point_on_triangle(p, mesh.vertices[face[0]], mesh.vertices[face[1]], mesh.vertices[face[2]]));
  };
  // Faces within kTieDistance of the nearest are equally near: the lowest index
  // wins. Without the tolerance the choice at a tie (a grid point over an edge or
  // vertex shared by several faces) would follow the last bit of the distances,
  // which differs between builds (fused multiply-adds or not) and machines.
  constexpr double kTieDistance = 1e-12;  // unit sphere: 6 micrometres on the Earth

  const int64_t num_grid = static_cast<int64_t>(grid_positions.size());
  std::vector<int32_t> face_of_point(num_grid);
#pragma omp parallel for schedule(dynamic, 4096)
  for (int64_t g = 0; g < num_grid; ++g) {
    const Vec3& p = grid_positions[g];
    double nearest_centroid_d2 = std::numeric_limits<double>::infinity();
    buckets.for_each_candidate(p, [&](int32_t f) {
      nearest_centroid_d2 = std::min(nearest_centroid_d2, distance_squared(p, centroids[f]));
    });
    const double search_radius = (std::sqrt(nearest_centroid_d2) + max_centroid_to_vertex) * slack;
    std::vector<std::pair<double, int64_t>> candidates;  // (distance, face)
    auto consider = [&](int64_t f) { candidates.emplace_back(std::sqrt(triangle_distance_squared(p, f)), f); };
    if (search_radius <= buckets.cell_size()) {
      buckets.for_each_candidate(p, [&](int32_t f) {
        if (distance_squared(p, centroids[f]) <= search_radius * search_radius) consider(f);
      });
    } else {
      // Far from the mesh (not a unit vector): the bucket bound does not hold.
      for (int64_t f = 0; f < num_faces; ++f) consider(f);
    }
    // Two passes, so that the choice does not depend on the candidates' order.
    double nearest = std::numeric_limits<double>::infinity();
    for (const auto& c : candidates) nearest = std::min(nearest, c.first);
    int64_t best_face = num_faces;
    for (const auto& c : candidates)
      if (c.first <= nearest + kTieDistance) best_face = std::min(best_face, c.second);
    face_of_point[g] = static_cast<int32_t>(best_face);
  }
  return face_of_point;
}

Graph build_mesh2grid(const std::vector<Vec3>& grid_positions, const Mesh& finest_mesh) {
  const std::vector<int32_t> face_of_point = containing_faces(grid_positions, finest_mesh);
  const int64_t num_grid = static_cast<int64_t>(grid_positions.size());
  std::vector<int32_t> senders(3 * num_grid), receivers(3 * num_grid);
  for (int64_t g = 0; g < num_grid; ++g) {
    auto vertices = finest_mesh.faces[face_of_point[g]];
    std::sort(vertices.begin(), vertices.end());
    for (int k = 0; k < 3; ++k) {
      senders[3 * g + k] = vertices[k];
      receivers[3 * g + k] = static_cast<int32_t>(g);
    }
  }
  return make_graph(static_cast<int64_t>(finest_mesh.vertices.size()), num_grid, std::move(senders),
                    std::move(receivers));
}

}  // namespace gc::model
