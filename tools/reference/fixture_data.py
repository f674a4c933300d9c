"""Random data, statistics and the file layout of tests/data/deepmind/ (used by make_fixture.py).

Everything here is plain numpy/xarray around DeepMind's `data_utils`; the model itself and
the forcings are DeepMind's code (make_fixture.py).
"""

import dataclasses
import importlib.metadata

import numpy as np
import pandas as pd
import xarray

SURFACE = ("2m_temperature", "mean_sea_level_pressure")
ATMOSPHERIC = ("temperature", "geopotential")
FORCINGS = ("toa_incident_solar_radiation", "year_progress_sin", "year_progress_cos",
            "day_progress_sin", "day_progress_cos")
STATIC = ("geopotential_at_surface", "land_sea_mask")
LEVELS = (500, 850, 1000)
START = "2016-01-01T00:00:00"
NUM_FRAMES = 5  # 2 input frames + 3 target frames, 6 h apart
PACKAGES = ("jax", "jaxlib", "dm-haiku", "jraph", "trimesh", "xarray", "scipy", "chex",
            "dm-tree", "rtree", "pandas", "numpy", "dask")

# Typical ERA5 magnitudes (mean, stddev, stddev of 6-h differences); per level for the
# atmospheric variables at LEVELS. The statistics and the data are drawn around these so that
# normalisation changes every value by orders of magnitude.
TYPICAL = {
    "2m_temperature": (278.0, 21.0, 1.5),
    "mean_sea_level_pressure": (100960.0, 1300.0, 130.0),
    "temperature": ([253.0, 274.0, 281.0], [13.0, 15.0, 17.0], [1.2, 1.5, 1.6]),
    "geopotential": ([54000.0, 13700.0, 1000.0], [3400.0, 1400.0, 1000.0],
                     [190.0, 130.0, 110.0]),
    "toa_incident_solar_radiation": (1.07e6, 1.34e6, 8.0e5),
    "year_progress_sin": (0.0, 0.707, 0.0024),
    "year_progress_cos": (0.0, 0.707, 0.0024),
    "day_progress_sin": (0.0, 0.707, 1.0),
    "day_progress_cos": (0.0, 0.707, 1.0),
    "geopotential_at_surface": (3700.0, 8600.0, 1.0),
    "land_sea_mask": (0.34, 0.46, 1.0),
}


def datetimes():
  return pd.date_range(START, periods=NUM_FRAMES, freq="6h").values.astype("datetime64[ns]")


def random_dataset(rng, lat, lon):
  """A batch of one with NUM_FRAMES frames of random weather at realistic magnitudes."""
  n_lat, n_lon, n_lev = len(lat), len(lon), len(LEVELS)
  data = {}
  for name in SURFACE:
    mean, std, _ = TYPICAL[name]
    data[name] = (("batch", "time", "lat", "lon"),
                  (mean + std * rng.standard_normal((1, NUM_FRAMES, n_lat, n_lon)))
                  .astype(np.float32))
  for name in ATMOSPHERIC:
    mean, std, _ = (np.asarray(x)[:, None, None] for x in TYPICAL[name])
    data[name] = (("batch", "time", "level", "lat", "lon"),
                  (mean + std * rng.standard_normal((1, NUM_FRAMES, n_lev, n_lat, n_lon)))
                  .astype(np.float32))
  data["geopotential_at_surface"] = (
      ("lat", "lon"), (8600.0 * np.abs(rng.standard_normal((n_lat, n_lon)))).astype(np.float32))
  data["land_sea_mask"] = (("lat", "lon"), rng.uniform(0.0, 1.0, (n_lat, n_lon))
                           .astype(np.float32))
  times = np.arange(NUM_FRAMES) * np.timedelta64(6, "h")
  coords = {"lat": lat, "lon": lon, "level": np.asarray(LEVELS),
            "time": times.astype("timedelta64[ns]"),
            "datetime": (("batch", "time"), datetimes()[None, :])}
  return xarray.Dataset(data, coords=coords)


def random_stats(rng):
  """DeepMind's three statistics datasets (mean, stddev, diffs_stddev), random but plausible."""
  out = {"mean": {}, "stddev": {}, "diffs_stddev": {}}
  for name, (mean, std, diff) in TYPICAL.items():
    mean, std, diff = (np.asarray(x, np.float64) for x in (mean, std, diff))
    values = {"mean": mean + 0.05 * np.abs(mean + std) * rng.standard_normal(mean.shape),
              "stddev": std * rng.uniform(0.7, 1.3, std.shape),
              "diffs_stddev": diff * rng.uniform(0.7, 1.3, diff.shape)}
    dims = ("level",) if mean.ndim else ()
    for key, value in values.items():
      out[key][name] = (dims, value.astype(np.float32))
  return {key: xarray.Dataset(v, coords={"level": np.asarray(LEVELS)}) for key, v in out.items()}


def extract(dataset, task_config):
  """DeepMind's data_utils split: 3-step and 1-step inputs/targets/forcings."""
  from graphcast import data_utils  # pylint: disable=g-import-not-at-top
  kwargs = dataclasses.asdict(task_config)
  three = data_utils.extract_inputs_targets_forcings(
      dataset, target_lead_times=slice("6h", "18h"), **kwargs)
  one = data_utils.extract_inputs_targets_forcings(
      dataset.isel(time=slice(0, 3)), target_lead_times=slice("6h", "6h"), **kwargs)
  return three + one


def channel_names(dataset):
  """The channels GraphCast stacks, in its order: variables sorted by name, then the
  variable's own non-(batch, lat, lon) dims flattened in their order."""
  names = []
  for name in sorted(dataset.data_vars):
    var = dataset[name]
    extra = [d for d in var.dims if d not in ("batch", "lat", "lon")]
    if not extra:
      names.append(name)
      continue
    index = np.stack(np.meshgrid(*[np.arange(var.sizes[d]) for d in extra], indexing="ij"),
                     axis=-1).reshape(-1, len(extra))
    for idx in index:
      names.append(name + "[" + ",".join(f"{d}={i}" for d, i in zip(extra, idx)) + "]")
  return names


def flatten_stats(stats):
  return {f"{key}/{name}": np.asarray(ds[name].values, np.float32)
          for key, ds in stats.items() for name in ds.data_vars}


def frames(dataset, with_static, with_coords=True, datetime_seconds=None):
  """Per variable float32: [time, level, lat, lon], [time, lat, lon] or static [lat, lon]."""
  dataset = dataset.isel(batch=0) if "batch" in dataset.dims else dataset
  out = {}
  for name in dataset.data_vars:
    var = dataset[name]
    if "time" not in var.dims:
      if with_static:
        out[name] = np.asarray(var.transpose("lat", "lon").values, np.float32)
      continue
    dims = ("time", "level", "lat", "lon") if "level" in var.dims else ("time", "lat", "lon")
    # year_progress_* ([time]) and day_progress_* ([time, lon]) are broadcast over the
    # grid as GraphCast's stacking does.
    var = var.broadcast_like(dataset["lat"]).broadcast_like(dataset["lon"])
    out[name] = np.asarray(var.transpose(*dims).values, np.float32)
  if with_coords:
    out["lat"] = np.asarray(dataset["lat"].values, np.float64)
    out["lon"] = np.asarray(dataset["lon"].values, np.float64)
    out["level"] = np.asarray(LEVELS, np.int64)
  if datetime_seconds is not None:
    out["datetime"] = np.asarray(datetime_seconds, np.int64)
  return out


def max_relative(a, b):
  """max |a - b| / max |b| over all variables of two datasets."""
  worst = 0.0
  for name in b.data_vars:
    x, y = np.asarray(a[name].values, np.float64), np.asarray(b[name].values, np.float64)
    worst = max(worst, float(np.max(np.abs(x - y)) / np.max(np.abs(y))))
  return worst


def self_checks(outputs1, outputs3, outputs3_scan, forcings1, forcings3):
  return {
      "max_rel_diff_1step_vs_3step_first": max_relative(
          outputs3.isel(time=slice(0, 1)), outputs1),
      "max_rel_diff_chunked_vs_scan_3step": max_relative(outputs3, outputs3_scan),
      "max_rel_diff_forcings_1step_vs_3step_first": max_relative(
          forcings3.isel(time=slice(0, 1)), forcings1),
  }


def meta(*, model_config, task_config, lat, lon, inputs, forcings, graphs, factors, channels,
         checks, params, commit, seed):
  versions = {}
  for package in PACKAGES:
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  n_params = int(sum(np.size(w) for module in params.values() for w in module.values()))
  seconds = datetimes().astype("datetime64[s]").astype(np.int64)
  return {
      "graphcast_repository": "google-deepmind/graphcast",
      "graphcast_commit": commit,
      "package_versions": versions,
      "seed": seed,
      "dtype": "float32",
      "model_config": model_config,
      "task_config": task_config,
      "predictor": ("autoregressive.Predictor(normalization.InputsAndResiduals("
                    "graphcast.GraphCast), gradient_checkpointing=True); no Bfloat16Cast"),
      "num_parameters": n_params,
      "dims": {"lat": len(lat), "lon": len(lon), "level": len(LEVELS), "input_time": 2,
               "target_time_1step": 1, "target_time_3step": 3, "batch": 1,
               "grid_nodes": len(lat) * len(lon),
               "mesh_nodes": int(graphs["mesh_vertices"].shape[0]),
               "grid2mesh_edges": int(graphs["grid2mesh_senders"].shape[0]),
               "mesh_edges": int(graphs["mesh_senders"].shape[0]),
               "mesh2grid_edges": int(graphs["mesh2grid_senders"].shape[0])},
      "variables": {"inputs": list(task_config["input_variables"]),
                    "targets": list(task_config["target_variables"]),
                    "forcings": list(task_config["forcing_variables"]),
                    "static": list(STATIC), "surface": list(SURFACE),
                    "atmospheric": list(ATMOSPHERIC)},
      "levels": list(LEVELS),
      "lat_order": "ascending, -90 to 90 (the order the model saw); grid node = i_lat*n_lon+i_lon",
      "lon_order": "ascending, 0 to 360-resolution",
      "lat": [float(x) for x in lat], "lon": [float(x) for x in lon],
      "datetime_inputs": [int(x) for x in seconds[:2]],
      "datetime_targets": [int(x) for x in seconds[2:]],
      "datetime_start": START,
      "edge_normalisation_factors": factors,
      "stacked_channels": channels,
      "self_checks": checks,
      "files": {
          "checkpoint.npz": "graphcast.checkpoint.dump of CheckPoint(params, model_config, "
                            "task_config, description, license): keys 'params:<module>:<w|b|"
                            "scale|offset>', 'model_config:<field>', 'task_config:<field>:<i>'",
          "stats.npz": "mean/<var>, stddev/<var>, diffs_stddev/<var>: float32, [level] for "
                       "atmospheric, [] otherwise (DeepMind's *_by_level datasets, flattened)",
          "inputs.npz": "<var> float32 [2, level, lat, lon] atmospheric, [2, lat, lon] surface "
                        "and forcings, [lat, lon] static; lat, lon (deg, float64), level "
                        "(int64), datetime (int64 s since 1970) of the 2 input frames",
          "forcings.npz": "the 5 forcings at the 3 target times, float32 [3, lat, lon]; lat, "
                          "lon, level, datetime (int64 s)",
          "outputs_1step.npz": "prediction per target variable, float32 [1, level, lat, lon] "
                               "or [1, lat, lon] (inputs + first target's forcings)",
          "outputs_3step.npz": "3-step autoregressive prediction (rollout.chunked_prediction),"
                               " [3, level, lat, lon] or [3, lat, lon]",
          "graphs.npz": "grid2mesh/mesh/mesh2grid _senders/_receivers int32 in DeepMind's "
                        "numbering, grid_lat, grid_lon (float64), mesh_vertices (float64 "
                        "[M,3]); extra: <graph>_edge_features float32 [E,4] (DeepMind's "
                        "normalised distance and relative position)",
      },
      "inputs_channels_note": "stacked_channels: GraphCast's input channel order (inputs, "
                              "then forcings of the target step), from dataset_to_stacked",
      "forcings_source": "graphcast.data_utils.add_derived_vars and add_tisr_var "
                         "(solar_radiation, ERA5 TSI, 1 h integral, 360 bins, f32)",
      "inputs_forcing_datetime_note": "forcings in inputs.npz are those of the input frames",
      "nan_free": bool(all(np.isfinite(inputs[v].values).all() for v in inputs.data_vars)
                       and all(np.isfinite(forcings[v].values).all()
                               for v in forcings.data_vars)),
  }
