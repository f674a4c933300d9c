// gc_mesh2grid.cpp: writes gc's own mesh2grid edges for a grid, so that
// tools/reference/count_ties.py can compare them with DeepMind's (docs/REFERENCE.md, "tie
// nodes"). A measuring tool run by hand, not part of `make`; build it against the library:
//
//   make -j2 build/libgc.a
//   g++ -std=c++17 -O2 -fopenmp -I. tools/reference/gc_mesh2grid.cpp build/libgc.a -o /tmp/gc_mesh2grid
//   /tmp/gc_mesh2grid --grid 1.0 --mesh 5 --out /tmp/gc_1deg      # equiangular with poles
//   /tmp/gc_mesh2grid --gaussian 32 --mesh 3 --out /tmp/gc_demo    # the demo's 32 x 64 grid
//
// Writes into --out (created if missing) numpy .npy files: grid_lat, grid_lon (float64, gc's
// row order), mesh_vertices (float64 [M, 3], gc's finest mesh), mesh2grid_senders and
// mesh2grid_receivers (int32, gc's numbering: grid node = i_lat * num_lon + i_lon).
#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/graphs.h"
#include "model/grid.h"
#include "model/mesh.h"
#include "tools/data/swe_transform.h"

namespace {

template <typename T>
void write_npy(const std::string& path, const char* descr, const std::vector<int64_t>& shape, const std::vector<T>& data) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ",";
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const uint16_t header_len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(header_len & 0xff));
  out.put(static_cast<char>(header_len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(T)));
  if (!out) throw std::runtime_error("cannot write " + path);
}

int usage() {
  std::fprintf(stderr, "usage: gc_mesh2grid (--grid DEG | --gaussian NLAT) --mesh LEVEL --out DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  double grid_deg = 0;
  int gaussian_nlat = 0, mesh_level = -1;
  std::string out_dir;
  try {
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string flag = argv[i], value = argv[i + 1];
      if (flag == "--grid") grid_deg = std::stod(value);
      else if (flag == "--gaussian") gaussian_nlat = std::stoi(value);
      else if (flag == "--mesh") mesh_level = std::stoi(value);
      else if (flag == "--out") out_dir = value;
      else return usage();
    }
  } catch (const std::exception&) {  // a value that is not a number
    return usage();
  }
  if (argc % 2 != 1 || out_dir.empty() || mesh_level < 0 || (grid_deg > 0) == (gaussian_nlat > 0)) return usage();
  try {
    gc::model::Grid grid;
    if (grid_deg > 0) {
      grid = gc::model::make_equiangular_grid(grid_deg);
    } else {  // the demo's Gaussian grid: nlat rows (north to south), 2 * nlat longitudes
      std::vector<double> nodes, weights, lat;
      gc::data::gauss_legendre(gaussian_nlat, nodes, weights);
      for (double x : nodes) lat.push_back(std::asin(x) * 180.0 / M_PI);
      grid = gc::model::make_grid_from_latitudes(lat, 2 * gaussian_nlat, weights);
    }
    const auto hierarchy = gc::model::build_mesh_hierarchy(mesh_level);
    const gc::model::Mesh& mesh = hierarchy.back();
    const gc::model::Graph m2g = gc::model::build_mesh2grid(gc::model::grid_positions(grid), mesh);
    mkdir(out_dir.c_str(), 0755);
    std::vector<double> vertices;
    for (const auto& v : mesh.vertices) vertices.insert(vertices.end(), v.begin(), v.end());
    write_npy(out_dir + "/grid_lat.npy", "<f8", {grid.num_lat()}, grid.latitude_deg);
    write_npy(out_dir + "/grid_lon.npy", "<f8", {grid.num_lon()}, grid.longitude_deg);
    write_npy(out_dir + "/mesh_vertices.npy", "<f8", {static_cast<int64_t>(mesh.vertices.size()), 3}, vertices);
    write_npy(out_dir + "/mesh2grid_senders.npy", "<i4", {m2g.num_edges()}, m2g.senders);
    write_npy(out_dir + "/mesh2grid_receivers.npy", "<i4", {m2g.num_edges()}, m2g.receivers);
    std::printf("%s: grid %lld x %lld, %zu mesh nodes, %lld mesh2grid edges\n", out_dir.c_str(),
                static_cast<long long>(grid.num_lat()), static_cast<long long>(grid.num_lon()), mesh.vertices.size(),
                static_cast<long long>(m2g.num_edges()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gc_mesh2grid: %s\n", e.what());
    return 1;
  }
  return 0;
}
