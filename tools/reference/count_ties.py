#!/usr/bin/env python3
"""Counts the grid nodes whose mesh2grid senders differ between gc and DeepMind ("tie nodes").

Reads gc's mesh2grid edges written by gc_mesh2grid (tools/reference/gc_mesh2grid.cpp) for a
grid, builds DeepMind's graphs for the same latitudes and longitudes with
export_graphs.dm_graphs (DeepMind's GraphCast._maybe_init at the pinned commit; latitudes
given ascending as DeepMind's datasets order them), matches grid nodes by (lat, lon) and mesh
vertices by position (DeepMind's are float32-rounded: the two meshes must agree to 1e-6; the vertex
numbering may differ) and compares each grid node's set of 3 sender vertices.

  /work/venv-ref/bin/python tools/reference/count_ties.py \
      --graphcast-src /tmp/graphcast-ref --gc /tmp/gc_1deg --mesh-size 5

Also prints, for the differing nodes, whether gc's and DeepMind's faces share an edge or only
a vertex, and the largest difference between the point's f64 distances to the two flat
triangles (unit sphere): a tie under the rule both codes state (nearest flat triangle) is a
difference of 0; anything within float32 rounding (~1e-7) is a tie to DeepMind's f32 inputs.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_graphs  # pylint: disable=g-import-not-at-top


def sender_sets(senders, receivers, num_grid):
  order = np.lexsort((senders, receivers))
  s, r = senders[order], receivers[order]
  if len(r) != 3 * num_grid or not np.array_equal(r, np.repeat(np.arange(num_grid), 3)):
    raise ValueError("mesh2grid must have exactly 3 edges per grid node")
  return s.reshape(num_grid, 3)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--graphcast-src", required=True)
  parser.add_argument("--gc", required=True, help="folder written by gc_mesh2grid")
  parser.add_argument("--mesh-size", type=int, required=True)
  args = parser.parse_args()

  load = lambda name: np.load(os.path.join(args.gc, name + ".npy"))
  gc_lat, gc_lon, gc_vertices = load("grid_lat"), load("grid_lon"), load("mesh_vertices")
  gc_sets = sender_sets(load("mesh2grid_senders"), load("mesh2grid_receivers"),
                        len(gc_lat) * len(gc_lon))

  dm_graphcast = export_graphs.import_graphcast(args.graphcast_src)
  model_config = dm_graphcast.ModelConfig(
      resolution=0.0, mesh_size=args.mesh_size, latent_size=4, gnn_msg_steps=1,
      hidden_layers=1, radius_query_fraction_edge_length=0.6)
  task_config = dm_graphcast.TaskConfig(
      input_variables=("2m_temperature",), target_variables=("2m_temperature",),
      forcing_variables=(), pressure_levels=(), input_duration="12h")
  dm_lat = np.sort(gc_lat)
  dm, _ = export_graphs.dm_graphs(dm_graphcast, model_config, task_config, dm_lat, gc_lon)
  dm_sets = sender_sets(dm["mesh2grid_senders"], dm["mesh2grid_receivers"],
                        len(dm_lat) * len(gc_lon))

  # Mesh vertices: DeepMind's index -> gc's index, by position.
  dm_vertices = dm["mesh_vertices"]
  if dm_vertices.shape != gc_vertices.shape:
    raise ValueError(f"mesh sizes differ: {dm_vertices.shape} vs {gc_vertices.shape}")
  from scipy.spatial import cKDTree  # pylint: disable=g-import-not-at-top
  distance, dm_to_gc = cKDTree(gc_vertices).query(dm_vertices)
  if distance.max() > 1e-6 or len(np.unique(dm_to_gc)) != len(dm_vertices):
    raise ValueError(f"the meshes' vertex positions differ (by up to {distance.max():.3g})")
  same_numbering = bool(np.array_equal(dm_to_gc, np.arange(len(dm_vertices))))

  # Grid nodes: gc row i is DeepMind row dm_row[i].
  dm_row = np.searchsorted(dm_lat, gc_lat)
  n_lon = len(gc_lon)
  dm_node = (dm_row[:, None] * n_lon + np.arange(n_lon)[None, :]).reshape(-1)
  dm_in_gc = np.sort(dm_to_gc[dm_sets[dm_node]], axis=1)
  gc_sorted = np.sort(gc_sets, axis=1)
  differ = np.any(dm_in_gc != gc_sorted, axis=1)

  # Distance of each differing grid point to the segment shared by the two triangles.
  positions = np.stack(np.meshgrid(np.radians(gc_lat), np.radians(gc_lon), indexing="ij"), -1)
  positions = positions.reshape(-1, 2)[differ]
  p = np.stack([np.cos(positions[:, 0]) * np.cos(positions[:, 1]),
                np.cos(positions[:, 0]) * np.sin(positions[:, 1]), np.sin(positions[:, 0])], -1)
  # How close each differing node was to a tie under the rule both codes state (nearest flat
  # triangle): the f64 distances from the point to gc's face and to DeepMind's face.
  import trimesh  # pylint: disable=g-import-not-at-top
  gap = np.abs(
      np.linalg.norm(p - trimesh.triangles.closest_point(gc_vertices[gc_sorted[differ]], p), axis=1)
      - np.linalg.norm(p - trimesh.triangles.closest_point(gc_vertices[dm_in_gc[differ]], p), axis=1))
  worst = float(gap.max()) if len(gap) else 0.0
  shared = [len(np.intersect1d(a, b)) for a, b in zip(gc_sorted[differ], dm_in_gc[differ])]
  at_edge, at_vertex, apart = shared.count(2), shared.count(1), shared.count(0)
  print(f"grid {len(gc_lat)} x {n_lon} ({len(gc_lat) * n_lon} nodes), mesh {args.mesh_size} "
        f"({len(gc_vertices)} vertices, same numbering: {same_numbering}): "
        f"{int(differ.sum())} grid nodes with different mesh2grid senders; "
        f"{at_edge} across a shared edge, {at_vertex} at a shared vertex, {apart} apart; "
        f"largest |distance to gc's face - distance to DeepMind's face| {worst:.3g}")


if __name__ == "__main__":
  main()
