#!/usr/bin/env python3
"""Exports the three GraphCast graphs exactly as DeepMind's reference code builds them.

The edges come from `graphcast.GraphCast._maybe_init` itself (not a re-implementation): a
GraphCast module is built for the given resolution and mesh size, initialised on a grid of
that resolution, and its grid2mesh, mesh and mesh2grid edge sets are written to one
uncompressed .npz that gc's `--graphs FILE` reads:

  grid2mesh_senders, grid2mesh_receivers   int32 [E_g2m]  grid node -> mesh node
  mesh_senders, mesh_receivers             int32 [E_m]    mesh node -> mesh node (multimesh)
  mesh2grid_senders, mesh2grid_receivers   int32 [E_m2g]  mesh node -> grid node
  grid_lat, grid_lon                       float64 [lat], [lon] in degrees, DeepMind's order
  mesh_vertices                            float64 [M, 3] finest-mesh vertices (unit sphere)

Node numbering is DeepMind's: grid node g = lat_index * num_lon + lon_index (np.meshgrid of
lon, lat flattened, lat from -90 to 90), mesh nodes in the order of the finest mesh's
vertices. The reference grid has the poles: lat = -90, -90 + r, ..., 90 and
lon = 0, r, ..., 360 - r for a resolution r that divides 180.

Environment and the pinned reference commit: see make_fixture.py's header. Example:

  /work/venv-ref/bin/python tools/reference/export_graphs.py \
      --graphcast-src /tmp/graphcast-ref --resolution 1.0 --mesh-size 5 --out graphs_1deg.npz
"""

import argparse
import sys

import numpy as np

# The reference commit: the last one with the `graphcast/` package at its root.
GRAPHCAST_COMMIT = "08cf73625c9d12bd9aaa038868bcb2fe488f2a22"


def import_graphcast(src_dir):
  """Imports DeepMind's modules from a checkout of GRAPHCAST_COMMIT."""
  sys.path.insert(0, src_dir)
  import graphcast.graphcast as dm_graphcast  # pylint: disable=g-import-not-at-top
  return dm_graphcast


def reference_grid(resolution):
  """DeepMind's ERA5 grid for a resolution: poles included, lat ascending."""
  n_lat = int(round(180.0 / resolution)) + 1
  n_lon = int(round(360.0 / resolution))
  if abs((n_lat - 1) * resolution - 180.0) > 1e-9 or abs(n_lon * resolution - 360.0) > 1e-9:
    raise ValueError(f"resolution {resolution} does not divide 180 degrees")
  lat = np.linspace(-90.0, 90.0, n_lat)
  lon = np.arange(n_lon) * resolution
  return lat, lon


def dm_graphs(dm_graphcast, model_config, task_config, lat, lon, with_features=False):
  """Builds DeepMind's three graphs for a grid; returns the arrays of the .npz layout.

  With with_features, also returns the structural edge features DeepMind computed
  (`<graph>_edge_features`, float32 [E, 4]: distance, then the relative position, each
  divided by the graph's normalisation factor) and the factors themselves.
  """
  import haiku as hk  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import xarray  # pylint: disable=g-import-not-at-top

  captured = {}

  def build():
    model = dm_graphcast.GraphCast(model_config, task_config)
    sample = xarray.Dataset(coords={"lat": lat, "lon": lon})
    model._maybe_init(sample)  # pylint: disable=protected-access
    captured["model"] = model

  hk.transform(build).init(jax.random.PRNGKey(0))
  model = captured["model"]
  out = {}
  structures = {
      "grid2mesh": model._grid2mesh_graph_structure,  # pylint: disable=protected-access
      "mesh": model._mesh_graph_structure,  # pylint: disable=protected-access
      "mesh2grid": model._mesh2grid_graph_structure,  # pylint: disable=protected-access
  }
  factors = {}
  for name, graph in structures.items():
    edge_set = graph.edge_key_by_name(name)
    edges = graph.edges[edge_set]
    out[f"{name}_senders"] = np.asarray(edges.indices.senders, dtype=np.int32)
    out[f"{name}_receivers"] = np.asarray(edges.indices.receivers, dtype=np.int32)
    if with_features:
      features = np.asarray(edges.features, dtype=np.float32)
      out[f"{name}_edge_features"] = features
  out["grid_lat"] = np.asarray(lat, dtype=np.float64)
  out["grid_lon"] = np.asarray(lon, dtype=np.float64)
  out["mesh_vertices"] = np.asarray(model._finest_mesh.vertices, dtype=np.float64)  # pylint: disable=protected-access
  if with_features:
    factors = edge_normalisation_factors(model, out)
  return out, factors


def edge_normalisation_factors(model, graphs):
  """The length each graph's edge features were divided by (DeepMind's default: max length).

  DeepMind normalises by the longest edge of the graph in 3-d chord distance computed from the
  f32 node lat/lon; the first edge feature is distance / factor, so factor = distance of any
  edge / its feature. Recomputed here from the features of the longest edge for the record.
  """
  factors = {}
  lat_g = model._grid_nodes_lat.astype(np.float64)  # pylint: disable=protected-access
  lon_g = model._grid_nodes_lon.astype(np.float64)  # pylint: disable=protected-access
  lat_m = model._mesh_nodes_lat.astype(np.float64)  # pylint: disable=protected-access
  lon_m = model._mesh_nodes_lon.astype(np.float64)  # pylint: disable=protected-access

  def xyz(lat, lon):
    la, lo = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)

  positions = {"grid2mesh": (xyz(lat_g, lon_g), xyz(lat_m, lon_m)),
               "mesh": (xyz(lat_m, lon_m), xyz(lat_m, lon_m)),
               "mesh2grid": (xyz(lat_m, lon_m), xyz(lat_g, lon_g))}
  for name, (send_pos, recv_pos) in positions.items():
    d = np.linalg.norm(send_pos[graphs[f"{name}_senders"]] -
                       recv_pos[graphs[f"{name}_receivers"]], axis=-1)
    i = int(np.argmax(d))
    factors[name] = float(d[i] / graphs[f"{name}_edge_features"][i, 0])
  return factors


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--graphcast-src", required=True,
                      help=f"checkout of google-deepmind/graphcast at {GRAPHCAST_COMMIT}")
  parser.add_argument("--resolution", type=float, required=True, help="grid spacing, degrees")
  parser.add_argument("--mesh-size", type=int, required=True, help="icosahedral refinements")
  parser.add_argument("--radius-query-fraction-edge-length", type=float, default=0.6)
  parser.add_argument("--out", required=True, help="output .npz")
  args = parser.parse_args()

  dm_graphcast = import_graphcast(args.graphcast_src)
  model_config = dm_graphcast.ModelConfig(
      resolution=args.resolution, mesh_size=args.mesh_size, latent_size=4,
      gnn_msg_steps=1, hidden_layers=1,
      radius_query_fraction_edge_length=args.radius_query_fraction_edge_length)
  task_config = dm_graphcast.TaskConfig(
      input_variables=("2m_temperature",), target_variables=("2m_temperature",),
      forcing_variables=(), pressure_levels=(), input_duration="12h")
  lat, lon = reference_grid(args.resolution)
  graphs, _ = dm_graphs(dm_graphcast, model_config, task_config, lat, lon)
  with open(args.out, "wb") as f:
    np.savez(f, **graphs)
  print(f"{args.out}: grid {len(lat)} x {len(lon)}, "
        f"{len(graphs['mesh_vertices'])} mesh nodes, "
        f"grid2mesh {len(graphs['grid2mesh_senders'])}, mesh {len(graphs['mesh_senders'])}, "
        f"mesh2grid {len(graphs['mesh2grid_senders'])} edges")


if __name__ == "__main__":
  main()
