#!/usr/bin/env python3
"""Makes tests/data/deepmind/: a small GraphCast run by DeepMind's own reference code.

A tiny GraphCast (10 deg grid, mesh 2, latent 32) is built exactly as DeepMind runs it:
`graphcast.GraphCast` wrapped in `normalization.InputsAndResiduals` and
`autoregressive.Predictor` (as graphcast_demo.ipynb does, without its Bfloat16Cast so that the
whole run is f32), with random weights, random normalisation statistics and random inputs
whose forcings (TOA solar radiation, year/day progress) come from DeepMind's `data_utils`.
It writes the checkpoint in DeepMind's `checkpoint.dump` format, the statistics, inputs,
forcings, the 1-step and 3-step predictions and the three graphs' edge lists, all as
uncompressed .npz (a zip of stored .npy), plus meta.json. CI never runs this script; the
committed fixture is what the tests use.

Reference code: google-deepmind/graphcast at GRAPHCAST_COMMIT (below), the last commit with
the `graphcast/` package at the repository root. Take a clone of that public repository
(GitHub) and export the commit, e.g.
  mkdir /tmp/graphcast-ref
  git -C CLONE archive 08cf73625c9d12bd9aaa038868bcb2fe488f2a22 | tar -x -C /tmp/graphcast-ref

Environment (Python 3.11, CPU only; these versions made the committed fixture; newer xarray
(2026.x) and pandas 3 break rollout.chunked_prediction at this commit):
  python3 -m venv /work/venv-ref
  /work/venv-ref/bin/pip install "jax[cpu]==0.10.2" jaxlib==0.10.2 dm-haiku==0.0.17 \
      jraph==0.0.6.dev0 trimesh==5.2.0 xarray==2024.11.0 scipy==1.17.1 chex==0.1.92 \
      dm-tree==0.1.10 rtree==1.4.1 pandas==2.2.3 numpy==2.4.6 dask==2026.8.0

Run (from the repository root):
  /work/venv-ref/bin/python tools/reference/make_fixture.py \
      --graphcast-src /tmp/graphcast-ref --out tests/data/deepmind
"""

import argparse
import dataclasses
import functools
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_graphs  # pylint: disable=g-import-not-at-top
import fixture_data  # pylint: disable=g-import-not-at-top

GRAPHCAST_COMMIT = export_graphs.GRAPHCAST_COMMIT
SEED = 20160101


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--graphcast-src", required=True,
                      help=f"checkout of google-deepmind/graphcast at {GRAPHCAST_COMMIT}")
  parser.add_argument("--out", required=True, help="output folder (tests/data/deepmind)")
  args = parser.parse_args()

  sys.path.insert(0, args.graphcast_src)
  # pylint: disable=g-import-not-at-top
  import haiku as hk
  import jax
  from graphcast import autoregressive
  from graphcast import checkpoint
  from graphcast import graphcast
  from graphcast import normalization
  from graphcast import rollout
  # pylint: enable=g-import-not-at-top

  if jax.config.jax_enable_x64:
    raise SystemExit("run with jax_enable_x64 off: the fixture is DeepMind's f32 run")
  os.makedirs(args.out, exist_ok=True)
  rng = np.random.default_rng(SEED)

  model_config = graphcast.ModelConfig(
      resolution=10.0, mesh_size=2, latent_size=32, gnn_msg_steps=2, hidden_layers=1,
      radius_query_fraction_edge_length=0.6, mesh2grid_edge_normalization_factor=None)
  task_config = graphcast.TaskConfig(
      input_variables=(fixture_data.SURFACE + fixture_data.ATMOSPHERIC + fixture_data.FORCINGS
                       + fixture_data.STATIC),
      target_variables=fixture_data.SURFACE + fixture_data.ATMOSPHERIC,
      forcing_variables=fixture_data.FORCINGS,
      pressure_levels=fixture_data.LEVELS,
      input_duration="12h")

  lat, lon = export_graphs.reference_grid(model_config.resolution)
  dataset = fixture_data.random_dataset(rng, lat, lon)
  stats = fixture_data.random_stats(rng)
  inputs, targets3, forcings3, inputs1, targets1, forcings1 = fixture_data.extract(
      dataset, task_config)

  channels = {}

  class RecordingGraphCast(graphcast.GraphCast):
    """GraphCast that records the channel order it stacks (for meta.json only)."""

    def _inputs_to_grid_node_features(self, inputs, forcings):
      if not channels:
        channels["inputs"] = fixture_data.channel_names(inputs)
        channels["forcings"] = fixture_data.channel_names(forcings)
      return super()._inputs_to_grid_node_features(inputs, forcings)

  def construct(model_cfg, task_cfg):
    predictor = RecordingGraphCast(model_cfg, task_cfg)
    predictor = normalization.InputsAndResiduals(
        predictor, diffs_stddev_by_level=stats["diffs_stddev"],
        mean_by_level=stats["mean"], stddev_by_level=stats["stddev"])
    return autoregressive.Predictor(predictor, gradient_checkpointing=True)

  @hk.transform_with_state
  def run_forward(model_cfg, task_cfg, inputs, targets_template, forcings):
    return construct(model_cfg, task_cfg)(
        inputs, targets_template=targets_template, forcings=forcings)

  configs = dict(model_cfg=model_config, task_cfg=task_config)
  params, state = jax.jit(functools.partial(run_forward.init, **configs))(
      rng=jax.random.PRNGKey(SEED), inputs=inputs1, targets_template=targets1,
      forcings=forcings1)
  # Haiku's initialisation leaves biases at 0 and layer-norm scales at 1; perturb every
  # parameter so that a loader which drops or transposes any of them fails the comparison.
  params = jax.tree_util.tree_map(
      lambda p: np.asarray(p, np.float32)
      + rng.normal(0.0, 0.1, size=p.shape).astype(np.float32), params)

  forward = jax.jit(functools.partial(run_forward.apply, **configs))

  def predict(rng, inputs, targets_template, forcings):
    return forward(params, state, rng, inputs=inputs,
                   targets_template=targets_template, forcings=forcings)[0]

  outputs1 = predict(jax.random.PRNGKey(0), inputs1, targets1 * np.nan, forcings1)
  # Three steps as the demo notebook's "loop in python": one chunk per step.
  outputs3 = rollout.chunked_prediction(
      predict, rng=jax.random.PRNGKey(0), inputs=inputs, targets_template=targets3 * np.nan,
      forcings=forcings3)
  # The same three steps with the loop inside JAX (autoregressive.Predictor's scan).
  outputs3_scan = predict(jax.random.PRNGKey(0), inputs, targets3 * np.nan, forcings3)

  graphs, factors = export_graphs.dm_graphs(
      graphcast, model_config, task_config, lat, lon, with_features=True)

  with open(os.path.join(args.out, "checkpoint.npz"), "wb") as f:
    checkpoint.dump(f, graphcast.CheckPoint(
        params=jax.device_get(params), model_config=model_config, task_config=task_config,
        description=("gc test fixture: GraphCast 10 deg, mesh 2, latent 32, 2 message-passing "
                     f"steps, random weights (seed {SEED}); made by "
                     "tools/reference/make_fixture.py"),
        license="Random weights; no trained model. Apache License 2.0 as the reference code."))
  seconds = fixture_data.datetimes().astype("datetime64[s]").astype(np.int64)
  files = {
      "stats.npz": fixture_data.flatten_stats(stats),
      "inputs.npz": fixture_data.frames(inputs, with_static=True,
                                       datetime_seconds=seconds[:2]),
      "forcings.npz": fixture_data.frames(forcings3, with_static=False,
                                         datetime_seconds=seconds[2:]),
      "outputs_1step.npz": fixture_data.frames(outputs1, with_static=False, with_coords=False),
      "outputs_3step.npz": fixture_data.frames(outputs3, with_static=False, with_coords=False),
      "graphs.npz": graphs,
  }
  for name, arrays in files.items():
    with open(os.path.join(args.out, name), "wb") as f:
      np.savez(f, **arrays)

  checks = fixture_data.self_checks(outputs1, outputs3, outputs3_scan, forcings1, forcings3)
  meta = fixture_data.meta(
      model_config=dataclasses.asdict(model_config), task_config=dataclasses.asdict(task_config),
      lat=lat, lon=lon, inputs=inputs, forcings=forcings3, graphs=graphs, factors=factors,
      channels=channels, checks=checks, params=params, commit=GRAPHCAST_COMMIT, seed=SEED)
  with open(os.path.join(args.out, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)
    f.write("\n")
  for name in sorted(os.listdir(args.out)):
    print(f"{name:22s} {os.path.getsize(os.path.join(args.out, name)):>9d} bytes")
  print("checks:", json.dumps(checks))


if __name__ == "__main__":
  main()
