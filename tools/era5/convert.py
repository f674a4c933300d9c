#!/usr/bin/env python3
"""Converts ERA5 / WeatherBench2 NetCDF or Zarr into gc's weather data format (docs/DATA.md).

    python3 tools/era5/convert.py SOURCE [SOURCE ...] --out DIR [options]

SOURCE: NetCDF files or Zarr stores (WeatherBench2's layout: dims time, level, latitude,
longitude; variables named as WeatherBench2 names them, e.g. `geopotential`, `2m_temperature`;
ERA5's short names from the Copernicus store (`z`, `t2m`, ...) and its dims `valid_time`,
`pressure_level` are accepted too). Several sources are merged by variable name (one file per
variable, or pressure-level and surface files side by side).

What it does, in order:
  1. checks the sources: every variable asked for is there with the expected units and dims,
     the grid is regular and global, the times are 6-hourly without gaps; names what is missing;
  2. selects variables, pressure levels and the time range, puts latitudes north to south and
     longitudes 0..360, coarsens by an integer factor (subsampling, which keeps the poles, or
     block means);
  3. writes the fields in time-chunked files (f32 or bf16), one chunk at a time, each written
     to a temporary file and renamed, with its partial statistics beside it: an interrupted
     conversion resumes where it stopped when run again with the same arguments;
  4. computes the statistics in DeepMind's layout (mean, stddev, stddev of 6-hour differences,
     per variable and level; over --stats-start..--stats-end) into stats.npz, and the same as
     DeepMind's NetCDF files (stats/mean_by_level.nc, ...), or takes DeepMind's with --stats-from;
  5. writes dataset.json last: a folder without it is an unfinished conversion.

Needs numpy, xarray and netCDF4 (Debian: python3-xarray python3-netcdf4); Zarr needs zarr.
"""
import argparse
import datetime as dt
import json
import os
import sys
import time as time_module

try:
    import numpy as np
    import xarray as xr
except ImportError as error:  # pragma: no cover - environment message
    sys.exit("convert.py needs numpy and xarray (Debian: apt-get install python3-xarray python3-netcdf4): %s" % error)

FORMAT = "gc-weather"
VERSION = 1
HEADER_BYTES = 64
MAGIC = b"GCWXCHK1"
DTYPE_CODES = {"f32": 0, "bf16": 1}
STEP_SECONDS = 6 * 3600

# WeatherBench2 name -> (expected units, has a level axis, role). Roles: state (input and
# target), target (target only, as DeepMind's total_precipitation_6hr), forcing, static.
VARIABLES = {
    "geopotential": ("m**2 s**-2", True, "state"),
    "temperature": ("K", True, "state"),
    "u_component_of_wind": ("m s**-1", True, "state"),
    "v_component_of_wind": ("m s**-1", True, "state"),
    "vertical_velocity": ("Pa s**-1", True, "state"),
    "specific_humidity": ("kg kg**-1", True, "state"),
    "2m_temperature": ("K", False, "state"),
    "10m_u_component_of_wind": ("m s**-1", False, "state"),
    "10m_v_component_of_wind": ("m s**-1", False, "state"),
    "mean_sea_level_pressure": ("Pa", False, "state"),
    "total_precipitation_6hr": ("m", False, "target"),
    "toa_incident_solar_radiation": ("J m**-2", False, "forcing"),
    "geopotential_at_surface": ("m**2 s**-2", False, "static"),
    "land_sea_mask": ("1", False, "static"),
}
# GraphCast's variables (DeepMind's TASK), taken by default when the sources hold them.
GRAPHCAST_VARIABLES = list(VARIABLES)
# ERA5's short names (Copernicus Climate Data Store) -> WeatherBench2 names.
ALIASES = {
    "z": "geopotential", "t": "temperature", "u": "u_component_of_wind", "v": "v_component_of_wind",
    "w": "vertical_velocity", "q": "specific_humidity", "t2m": "2m_temperature",
    "u10": "10m_u_component_of_wind", "v10": "10m_v_component_of_wind", "msl": "mean_sea_level_pressure",
    "tp": "total_precipitation_6hr", "tisr": "toa_incident_solar_radiation", "lsm": "land_sea_mask",
}
# Spellings of the same unit found in ERA5 and WeatherBench2 files.
UNIT_SYNONYMS = {
    "m**2 s**-2": {"m**2 s**-2", "m2 s-2", "m^2/s^2", "m2/s2", "m**2/s**2"},
    "K": {"K", "kelvin"},
    "m s**-1": {"m s**-1", "m s-1", "m/s"},
    "Pa s**-1": {"Pa s**-1", "Pa s-1", "Pa/s"},
    "kg kg**-1": {"kg kg**-1", "kg kg-1", "kg/kg", "1"},
    "Pa": {"Pa"},
    "m": {"m"},
    "J m**-2": {"J m**-2", "J m-2", "J/m^2", "J/m2"},
    "1": {"1", "(0 - 1)", "0-1", "dimensionless", "", "fraction"},
}
DIM_ALIASES = {"valid_time": "time", "pressure_level": "level", "lat": "latitude", "lon": "longitude",
               "isobaricInhPa": "level"}


class ConversionError(Exception):
    """A problem with the sources or the arguments, reported as one clear message (exit 2)."""


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- sources ------------------------------------------------------------------------------

def open_source(path):
    if not os.path.exists(path):
        raise ConversionError("%s: no such file or directory" % path)
    if os.path.isdir(path) or path.endswith(".zarr"):
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise ConversionError("%s is a Zarr store; reading it needs the zarr package (pip install zarr)" % path)
        ds = xr.open_zarr(path, chunks=None)
    else:
        try:
            ds = xr.open_dataset(path, chunks=None)
        except Exception as error:  # xarray raises many kinds; name the file
            raise ConversionError("%s: cannot be opened as NetCDF (%s)" % (path, error))
    renames = {d: DIM_ALIASES[d] for d in list(ds.dims) + list(ds.coords) if d in DIM_ALIASES
               and DIM_ALIASES[d] not in ds.dims and DIM_ALIASES[d] not in ds.coords}
    ds = ds.rename(renames)
    names = {v: ALIASES[v] for v in ds.data_vars if v in ALIASES and ALIASES[v] not in ds.data_vars}
    return ds.rename(names)


class Source:
    """The variables of several opened datasets, by WeatherBench2 name."""

    def __init__(self, paths):
        self.datasets = [(p, open_source(p)) for p in paths]
        self.where = {}
        for path, ds in self.datasets:
            for v in ds.data_vars:
                self.where.setdefault(v, (path, ds))

    def has(self, name):
        return name in self.where

    def array(self, name):
        return self.where[name][1][name]

    def path(self, name):
        return self.where[name][0]


def check_units(source, name, ignore_units):
    expected = VARIABLES[name][0]
    units = str(source.array(name).attrs.get("units", "")).strip()
    if units in UNIT_SYNONYMS[expected] or ignore_units:
        return units or expected
    if units == "":
        raise ConversionError("%s (in %s) has no units attribute; expected %s (--ignore-units accepts it as is)"
                              % (name, source.path(name), expected))
    raise ConversionError("%s (in %s) is in '%s'; gc expects %s (ERA5's and WeatherBench2's unit). Convert it first, "
                          "or pass --ignore-units if the values are in %s anyway"
                          % (name, source.path(name), units, expected, expected))


def regular_longitudes(lon, where):
    lon = np.asarray(lon, dtype=np.float64) % 360.0
    order = np.argsort(lon, kind="stable")
    lon_sorted = lon[order]
    n = len(lon_sorted)
    expected = np.arange(n) * (360.0 / n)
    if n < 4 or np.max(np.abs(lon_sorted - expected)) > 1e-4 * (360.0 / n):
        raise ConversionError("%s: the longitudes are not a global regular grid 0, 360/n, ... (n = %d; first %s)"
                              % (where, n, np.round(lon_sorted[:4], 4).tolist()))
    return order, expected


def latitude_order(lat, where):
    lat = np.asarray(lat, dtype=np.float64)
    if np.any(np.abs(lat) > 90.0 + 1e-9):
        raise ConversionError("%s: latitudes outside -90..90" % where)
    order = np.argsort(-lat, kind="stable")
    if len(np.unique(lat)) != len(lat):
        raise ConversionError("%s: repeated latitudes" % where)
    return order, lat[order]


# ---- the plan ---------------------------------------------------------------------------------

def parse_time(text, name):
    try:
        return np.datetime64(text, "s")
    except ValueError:
        raise ConversionError("%s '%s' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH)" % (name, text))


def make_plan(args, source):
    wanted = args.variables.split(",") if args.variables else None
    missing = []
    variables = []
    for name in (wanted or GRAPHCAST_VARIABLES):
        if name not in VARIABLES:
            raise ConversionError("unknown variable '%s'; gc knows %s" % (name, ", ".join(VARIABLES)))
        if not source.has(name):
            missing.append(name)
            continue
        variables.append(name)
    if wanted and missing:
        raise ConversionError("the sources lack %s (they hold: %s)"
                              % (", ".join(missing), ", ".join(sorted(source.where)) or "nothing"))
    if missing:
        log("convert: not in the sources (left out): %s" % ", ".join(missing))
    dynamic = [v for v in variables if VARIABLES[v][2] != "static"]
    static = [v for v in variables if VARIABLES[v][2] == "static"]
    if not dynamic:
        raise ConversionError("no time-dependent variable to convert")
    units = {v: check_units(source, v, args.ignore_units) for v in variables}

    first = source.array(dynamic[0])
    for dim in ("time", "latitude", "longitude"):
        if dim not in first.dims:
            raise ConversionError("%s (in %s) has no '%s' dimension (dims: %s)"
                                  % (dynamic[0], source.path(dynamic[0]), dim, ", ".join(first.dims)))
    lat_order, lat = latitude_order(first["latitude"].values, source.path(dynamic[0]))
    lon_order, lon = regular_longitudes(first["longitude"].values, source.path(dynamic[0]))
    times = first["time"].values.astype("datetime64[s]")
    for v in variables:
        a = source.array(v)
        has_level = VARIABLES[v][1]
        expected_dims = {"latitude", "longitude"} | ({"level"} if has_level else set()) | \
            (set() if VARIABLES[v][2] == "static" else {"time"})
        extra = set(a.dims) - expected_dims - ({"time"} if VARIABLES[v][2] == "static" else set())
        if not expected_dims <= set(a.dims) or extra:
            raise ConversionError("%s (in %s) has dims (%s); expected (%s)" % (
                v, source.path(v), ", ".join(a.dims), ", ".join(sorted(expected_dims))))
        if not np.array_equal(np.sort(np.asarray(a["latitude"].values, np.float64)), np.sort(lat)) or \
                a.sizes["longitude"] != len(lon):
            raise ConversionError("%s (in %s) is on another grid than %s" % (v, source.path(v), dynamic[0]))
        if "time" in a.dims and v in dynamic and not np.array_equal(a["time"].values.astype("datetime64[s]"), times):
            raise ConversionError("%s (in %s) has other times than %s" % (v, source.path(v), dynamic[0]))

    # Levels: every atmospheric variable must hold each level asked for.
    atmospheric = [v for v in variables if VARIABLES[v][1]]
    levels = []
    if atmospheric:
        available = None
        for v in atmospheric:
            lv = set(int(round(float(x))) for x in source.array(v)["level"].values)
            available = lv if available is None else available & lv
        if args.levels:
            levels = [int(x) for x in args.levels.split(",")]
            absent = [x for x in levels if x not in available]
            if absent:
                raise ConversionError("pressure levels %s are not in every atmospheric variable (common levels: %s)"
                                      % (absent, sorted(available)))
        else:
            levels = sorted(available)
        if not levels:
            raise ConversionError("the atmospheric variables share no pressure level")
    levels = sorted(levels)

    # Times: the range asked for, 6-hourly, no gaps.
    start = parse_time(args.start, "--start") if args.start else times[0]
    end = parse_time(args.end, "--end") if args.end else times[-1]
    in_range = np.nonzero((times >= start) & (times <= end))[0]
    if len(in_range) < 3:
        raise ConversionError("%d times between %s and %s (the sources run %s..%s); gc needs at least 3"
                              % (len(in_range), start, end, times[0], times[-1]))
    selected = times[in_range]
    steps = np.diff(selected).astype(np.int64)
    subsample_time = 1
    if np.all(steps == steps[0]) and steps[0] < STEP_SECONDS and STEP_SECONDS % steps[0] == 0:
        subsample_time = STEP_SECONDS // int(steps[0])  # e.g. hourly ERA5: every 6th time
        in_range = in_range[::subsample_time]
        selected = times[in_range]
        steps = np.diff(selected).astype(np.int64)
    if np.any(steps != STEP_SECONDS):
        bad = int(np.nonzero(steps != STEP_SECONDS)[0][0])
        raise ConversionError("the times are not 6-hourly without gaps: %s is followed by %s"
                              % (selected[bad], selected[bad + 1]))
    if int(selected[0].astype(np.int64)) % STEP_SECONDS != 0:
        raise ConversionError("the first time %s is not at 00, 06, 12 or 18 UTC" % selected[0])

    # Coarsening.
    n_lat, n_lon = len(lat), len(lon)
    factor = args.coarsen
    if args.resolution:
        source_res = 360.0 / n_lon
        factor = int(round(args.resolution / source_res))
        if factor < 1 or abs(factor * source_res - args.resolution) > 1e-6:
            raise ConversionError("--resolution %g is not a whole multiple of the sources' %g deg"
                                  % (args.resolution, source_res))
    poles = abs(lat[0] - 90.0) < 1e-6 and abs(lat[-1] + 90.0) < 1e-6
    if factor > 1:
        if n_lon % factor:
            raise ConversionError("coarsening by %d needs a longitude count divisible by it (%d)" % (factor, n_lon))
        if args.coarsen_method == "subsample":
            if poles and (n_lat - 1) % factor:
                raise ConversionError("coarsening by %d keeps the poles only when %d - 1 latitudes divide by it"
                                      % (factor, n_lat))
        else:
            if poles:
                raise ConversionError("--coarsen-method mean needs a grid without pole rows (block means of "
                                      "rows centred on the poles are not cell means); use subsample")
            if n_lat % factor:
                raise ConversionError("coarsening by %d needs a latitude count divisible by it (%d)" % (factor, n_lat))
    out_lat, out_lon = coarsen_coordinates(lat, lon, factor, args.coarsen_method)
    if 360.0 / len(out_lon) < 1.0 - 1e-9 and not args.allow_fine:
        raise ConversionError("the output grid would be %g deg; gc's demo trains on 1 deg or coarser "
                              "(--resolution 1, or --allow-fine to keep it)" % (360.0 / len(out_lon)))

    stats_start = parse_time(args.stats_start, "--stats-start") if args.stats_start else selected[0]
    stats_end = parse_time(args.stats_end, "--stats-end") if args.stats_end else selected[-1]
    return {
        "variables": [v for v in dynamic],
        "static": static,
        "units": units,
        "levels": levels,
        "time_indices": in_range.tolist(),
        "start_seconds": int(selected[0].astype(np.int64)),
        "count": int(len(selected)),
        "lat_order": lat_order.tolist(),
        "lon_order": lon_order.tolist(),
        "coarsen": factor,
        "coarsen_method": args.coarsen_method,
        "latitudes": [float(x) for x in out_lat],
        "longitudes": [float(x) for x in out_lon],
        "dtype": args.dtype,
        "chunk_times": args.chunk_times or auto_chunk_times(len(out_lat), len(out_lon), dynamic, levels),
        "stats_start_seconds": int(stats_start.astype(np.int64)),
        "stats_end_seconds": int(stats_end.astype(np.int64)),
        "sources": [os.path.abspath(p) for p, _ in source.datasets],
    }


def auto_chunk_times(n_lat, n_lon, dynamic, levels):
    """Times per chunk when --chunk-times is not given: at most 64, and a block (held in f64
    while it is converted) of at most 256 MiB, so 0.25-degree data converts one time at a time."""
    n_ch = sum(len(levels) if VARIABLES[v][1] else 1 for v in dynamic)
    return int(max(1, min(64, (256 << 20) // (n_lat * n_lon * n_ch * 8))))


def coarsen_coordinates(lat, lon, factor, method):
    if factor <= 1:
        return lat, lon
    if method == "subsample":
        return lat[::factor], lon[::factor]
    return lat.reshape(-1, factor).mean(axis=1), lon[::factor]


def coarsen_field(x, factor, method):
    """x [..., lat, lon] north to south, lon from 0 -> the output grid.

    mean: rows in blocks of `factor` (their mean latitude); columns in cells of `factor`
    source cells centred on the kept longitudes 0, factor * d, ... (gc's grids start at 0), so
    for an even factor the two source cells at a cell's edges count half (0.25, 0.5, 0.25 for
    2)."""
    if factor <= 1:
        return x
    if method == "subsample":
        return x[..., ::factor, ::factor]
    shape = x.shape[:-2] + (x.shape[-2] // factor, factor, x.shape[-1])
    x = x.reshape(shape).mean(axis=-2)
    half = factor // 2
    out = 0.0
    for m in range(-half, half + 1):
        weight = 0.5 if factor % 2 == 0 and abs(m) == half else 1.0
        out = out + weight * np.roll(x, -m, axis=-1)[..., ::factor]
    return out / factor


# ---- reading one block of times -----------------------------------------------------------------

def channels(plan):
    out = []
    for v in plan["variables"]:
        if VARIABLES[v][1]:
            out += [(v, level) for level in plan["levels"]]
        else:
            out.append((v, None))
    return out


def read_block(source, plan, first, count):
    """Times [first, first + count) of the plan -> f64 [count, lat, lon, channels]."""
    idx = plan["time_indices"][first:first + count]
    lat_order, lon_order = np.array(plan["lat_order"]), np.array(plan["lon_order"])
    parts = []
    for v in plan["variables"]:
        a = source.array(v).isel(time=idx)
        if VARIABLES[v][1]:
            level_values = [int(round(float(x))) for x in a["level"].values]
            a = a.isel(level=[level_values.index(l) for l in plan["levels"]]).transpose("time", "level", "latitude", "longitude")
            x = np.asarray(a.values, dtype=np.float64)
        else:
            x = np.asarray(a.transpose("time", "latitude", "longitude").values, dtype=np.float64)[:, None]
        x = x[:, :, lat_order][:, :, :, lon_order]
        x = coarsen_field(x, plan["coarsen"], plan["coarsen_method"])  # [time, levels, lat, lon]
        parts.append(np.moveaxis(x, 1, -1))
    block = np.concatenate(parts, axis=-1)
    if not np.all(np.isfinite(block)):
        bad = np.argwhere(~np.isfinite(block))[0]
        raise ConversionError("non-finite value (NaN or inf) at time %s, channel %s"
                              % (np.datetime64(plan["start_seconds"] + (first + bad[0]) * STEP_SECONDS, "s"),
                                 channels(plan)[bad[-1]]))
    return block


def read_static(source, plan):
    out = {}
    lat_order, lon_order = np.array(plan["lat_order"]), np.array(plan["lon_order"])
    for v in plan["static"]:
        a = source.array(v)
        if "time" in a.dims:
            a = a.isel(time=0)
        x = np.asarray(a.transpose("latitude", "longitude").values, dtype=np.float64)
        x = x[lat_order][:, lon_order]
        out[v] = coarsen_field(x, plan["coarsen"], plan["coarsen_method"])
    return out


# ---- chunks ---------------------------------------------------------------------------------------

def to_bf16_bits(x):
    """f64 -> bf16 bit patterns, round to nearest even (through f32, as gc rounds)."""
    f = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (f + 0x7FFF + ((f >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def chunk_header(plan, first, count, n_channels):
    import struct
    return MAGIC + struct.pack("<IIqqqqqQ", VERSION, DTYPE_CODES[plan["dtype"]], first, count,
                               len(plan["latitudes"]), len(plan["longitudes"]), n_channels, 0)


def chunk_bytes(plan, count, n_channels):
    item = 4 if plan["dtype"] == "f32" else 2
    return HEADER_BYTES + count * len(plan["latitudes"]) * len(plan["longitudes"]) * n_channels * item


def write_atomic(path, data_writer):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        data_writer(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Moments:
    """Per-channel count, mean and M2 (Chan et al.'s parallel combination, f64)."""

    def __init__(self, n_channels):
        self.n = np.zeros(n_channels)
        self.mean = np.zeros(n_channels)
        self.m2 = np.zeros(n_channels)

    def add(self, x):  # x [..., channels]
        x = x.reshape(-1, x.shape[-1])
        if x.shape[0] == 0:
            return
        self.combine(np.full(x.shape[1], float(x.shape[0])), x.mean(axis=0),
                     ((x - x.mean(axis=0)) ** 2).sum(axis=0))

    def combine(self, n, mean, m2):
        total = self.n + n
        delta = mean - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(total > 0, n / np.maximum(total, 1), 0.0)
        self.mean = self.mean + delta * w
        self.m2 = self.m2 + m2 + delta ** 2 * self.n * w
        self.n = total

    def std(self):
        return np.sqrt(self.m2 / np.maximum(self.n, 1))


def chunk_statistics(block, previous, plan, first):
    """Moments of the values and of the 6-hour differences at times in the statistics range
    (a difference counts when both of its times are in the range)."""
    seconds = plan["start_seconds"] + (first + np.arange(block.shape[0])) * STEP_SECONDS
    if previous is not None:
        block_full = np.concatenate([previous[None], block], axis=0)
        seconds_full = np.concatenate([[seconds[0] - STEP_SECONDS], seconds])
    else:
        block_full, seconds_full = block, seconds
    in_stats = (seconds_full >= plan["stats_start_seconds"]) & (seconds_full <= plan["stats_end_seconds"])
    values = Moments(block.shape[-1])
    values.add(block[in_stats[1:]] if previous is not None else block[in_stats])
    diffs = Moments(block.shape[-1])
    diffs.add((block_full[1:] - block_full[:-1])[in_stats[1:] & in_stats[:-1]])
    return values, diffs


def convert(args):
    source = Source(args.sources)
    plan = make_plan(args, source)
    out = args.out
    os.makedirs(out, exist_ok=True)
    plan_path = os.path.join(out, "conversion.json")
    if os.path.exists(os.path.join(out, "dataset.json")) and not args.overwrite:
        with open(plan_path) as f:
            if json.load(f) == plan:
                log("convert: %s is complete (dataset.json is there); nothing to do" % out)
                return
        raise ConversionError("%s holds a finished conversion with other settings; use another --out or --overwrite" % out)
    if os.path.exists(plan_path) and not args.overwrite:
        with open(plan_path) as f:
            if json.load(f) != plan:
                raise ConversionError("%s holds an unfinished conversion with other settings (conversion.json); "
                                      "run with the same arguments to resume it, or --overwrite" % out)
        log("convert: resuming the conversion in %s" % out)
    if args.overwrite and os.path.exists(os.path.join(out, "dataset.json")):
        os.remove(os.path.join(out, "dataset.json"))
    write_atomic(plan_path, lambda f: f.write(json.dumps(plan, indent=1).encode()))
    os.makedirs(os.path.join(out, "partial"), exist_ok=True)

    chans = channels(plan)
    n_ch = len(chans)
    count, per = plan["count"], plan["chunk_times"]
    n_chunks = (count + per - 1) // per
    total_values, total_diffs = Moments(n_ch), Moments(n_ch)
    started = time_module.time()
    converted = 0
    files = []
    last_frame = None  # (time index, frame) of the last chunk converted in this run
    for k in range(n_chunks):
        first = k * per
        n = min(per, count - first)
        name = "chunk-%05d.bin" % k
        files.append(name)
        path = os.path.join(out, name)
        partial = os.path.join(out, "partial", "chunk-%05d.npz" % k)
        done = os.path.exists(path) and os.path.getsize(path) == chunk_bytes(plan, n, n_ch) and os.path.exists(partial)
        if done and not args.overwrite:
            with open(path, "rb") as f:
                done = f.read(HEADER_BYTES) == chunk_header(plan, first, n, n_ch)
        if not done or args.overwrite:
            t0 = time_module.time()
            block = read_block(source, plan, first, n)
            # The time before the chunk (for its first 6-hour difference): kept from the chunk
            # just converted, read again after a resumption.
            if first == 0:
                previous = None
            elif last_frame is not None and last_frame[0] == first - 1:
                previous = last_frame[1]
            else:
                previous = read_block(source, plan, first - 1, 1)[0]
            values, diffs = chunk_statistics(block, previous, plan, first)
            np.savez(partial + ".tmp.npz", vn=values.n, vmean=values.mean, vm2=values.m2,
                     dn=diffs.n, dmean=diffs.mean, dm2=diffs.m2)
            os.replace(partial + ".tmp.npz", partial)
            payload = block.astype(np.float32) if plan["dtype"] == "f32" else to_bf16_bits(block)
            header = chunk_header(plan, first, n, n_ch)
            write_atomic(path, lambda f: (f.write(header), f.write(np.ascontiguousarray(payload).astype("<" + payload.dtype.str[1:]).tobytes())))
            last_frame = (first + n - 1, block[-1].copy())
            del block, payload
            converted += 1
            elapsed = time_module.time() - started
            eta = elapsed / converted * (n_chunks - k - 1)
            log("convert: chunk %d/%d (%s .. %s) %.1f s, ETA %.0f s" % (
                k + 1, n_chunks, np.datetime64(plan["start_seconds"] + first * STEP_SECONDS, "s"),
                np.datetime64(plan["start_seconds"] + (first + n - 1) * STEP_SECONDS, "s"), time_module.time() - t0, eta))
        p = np.load(partial)
        total_values.combine(p["vn"], p["vmean"], p["vm2"])
        total_diffs.combine(p["dn"], p["dmean"], p["dm2"])
    if converted < n_chunks:
        log("convert: %d of %d chunks were already converted" % (n_chunks - converted, n_chunks))

    static = read_static(source, plan)
    if static:
        np.savez(os.path.join(out, "static.npz.tmp.npz"), **{v: np.ascontiguousarray(x, dtype=np.float32) for v, x in static.items()})
        os.replace(os.path.join(out, "static.npz.tmp.npz"), os.path.join(out, "static.npz"))

    stats = statistics(plan, chans, total_values, total_diffs, static, args.stats_from)
    np.savez(os.path.join(out, "stats.npz.tmp.npz"), **stats)
    os.replace(os.path.join(out, "stats.npz.tmp.npz"), os.path.join(out, "stats.npz"))
    write_deepmind_statistics(os.path.join(out, "stats"), stats, plan["levels"])

    description = {
        "format": FORMAT,
        "version": VERSION,
        "dtype": plan["dtype"],
        "grid": {"latitudes": plan["latitudes"], "longitudes": plan["longitudes"]},
        "levels": plan["levels"],
        "time": {"start": str(np.datetime64(plan["start_seconds"], "s")), "start_seconds": plan["start_seconds"],
                 "step_hours": 6, "count": count},
        "variables": [{"name": v, "units": plan["units"][v], "levels": VARIABLES[v][1], "role": VARIABLES[v][2]}
                      for v in plan["variables"]],
        "static": [{"name": v, "units": plan["units"][v]} for v in plan["static"]],
        "chunks": {"times": per, "files": files},
        "statistics": "stats.npz",
        "statistics_range": [str(np.datetime64(plan["stats_start_seconds"], "s")),
                             str(np.datetime64(plan["stats_end_seconds"], "s"))],
        "source": {"files": [os.path.basename(p) for p in plan["sources"]], "coarsen": plan["coarsen"], "coarsen_method": plan["coarsen_method"]},
    }
    if static:
        description["static_file"] = "static.npz"
    write_atomic(os.path.join(out, "dataset.json"), lambda f: f.write(json.dumps(description, indent=1).encode()))
    log("convert: wrote %s: %d times from %s, %d x %d grid, %d channels, %s, %.1f s"
        % (out, count, description["time"]["start"], len(plan["latitudes"]), len(plan["longitudes"]), n_ch,
           plan["dtype"], time_module.time() - started))


def progress_features(seconds, lon):
    """DeepMind's year/day progress features (data_utils.py) at these times and longitudes."""
    seconds = np.asarray(seconds, dtype=np.int64)
    year = np.mod(seconds / (365.24219 * 86400.0), 1.0).astype(np.float32)
    day = np.mod((np.mod(seconds, 86400) / 86400.0)[:, None] + np.asarray(lon)[None, :] / 360.0, 1.0).astype(np.float32)
    feats = {}
    for name, p in (("year_progress", year), ("day_progress", day)):
        phase = (p * np.float32(2 * np.pi)).astype(np.float32)
        feats[name + "_sin"], feats[name + "_cos"] = np.sin(phase), np.cos(phase)
    return feats


def statistics(plan, chans, values, diffs, static, stats_from):
    stats = {}
    mean, std, dstd = values.mean, values.std(), diffs.std()
    for v in plan["variables"]:
        idx = [i for i, (name, _) in enumerate(chans) if name == v]
        shape = (slice(None),) if VARIABLES[v][1] else 0
        for key, arr in (("mean", mean), ("stddev", std), ("diffs_stddev", dstd)):
            a = arr[idx].astype(np.float32)
            stats["%s/%s" % (key, v)] = a if VARIABLES[v][1] else np.float32(a[0])
        if np.any(std[idx] <= 0):
            log("convert: warning: %s has zero spread in the statistics range" % v)
    for v, x in static.items():
        stats["mean/" + v] = np.float32(x.mean())
        stats["stddev/" + v] = np.float32(x.std())
        stats["diffs_stddev/" + v] = np.float32(0.0)
    # The progress features over the statistics range (6-hourly times).
    seconds = np.arange(plan["stats_start_seconds"], plan["stats_end_seconds"] + 1, STEP_SECONDS)
    for name, x in progress_features(seconds, plan["longitudes"]).items():
        x64 = x.astype(np.float64)
        stats["mean/" + name] = np.float32(x64.mean())
        stats["stddev/" + name] = np.float32(x64.std())
        stats["diffs_stddev/" + name] = np.float32(np.diff(x64, axis=0).std())
    if stats_from:
        taken = read_deepmind_statistics(stats_from, plan["levels"])
        for key in list(stats):
            if key in taken:
                stats[key] = taken[key]
        log("convert: statistics taken from %s where they exist (%d of %d)"
            % (stats_from, sum(k in taken for k in stats), len(stats)))
    return stats


def write_deepmind_statistics(folder, stats, levels):
    """The statistics as DeepMind's files: stats/{mean,stddev,diffs_stddev}_by_level.nc."""
    os.makedirs(folder, exist_ok=True)
    for key in ("mean", "stddev", "diffs_stddev"):
        data = {}
        for name, value in stats.items():
            k, v = name.split("/", 1)
            if k != key:
                continue
            data[v] = (("level",), value) if np.ndim(value) == 1 else ((), value)
        ds = xr.Dataset(data, coords={"level": np.array(levels, dtype=np.int32)} if levels else None)
        path = os.path.join(folder, "%s_by_level.nc" % key)
        ds.to_netcdf(path + ".tmp")
        os.replace(path + ".tmp", path)


def read_deepmind_statistics(folder, levels):
    taken = {}
    for key in ("mean", "stddev", "diffs_stddev"):
        path = os.path.join(folder, "%s_by_level.nc" % key)
        if not os.path.exists(path):
            raise ConversionError("--stats-from %s: no %s (DeepMind's statistics are mean_by_level.nc, "
                                  "stddev_by_level.nc, diffs_stddev_by_level.nc)" % (folder, path))
        ds = xr.open_dataset(path)
        for v in ds.data_vars:
            a = ds[v]
            if "level" in a.dims:
                have = [int(round(float(x))) for x in a["level"].values]
                absent = [l for l in levels if l not in have]
                if absent:
                    raise ConversionError("--stats-from %s: %s has no levels %s" % (path, v, absent))
                taken["%s/%s" % (key, v)] = np.array([float(a.sel(level=l)) for l in levels], dtype=np.float32) \
                    if "level" in a.coords else a.values.astype(np.float32)
            else:
                taken["%s/%s" % (key, v)] = np.float32(a.values)
    return taken


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Convert ERA5 / WeatherBench2 NetCDF or Zarr into gc's weather data format (docs/DATA.md).")
    p.add_argument("sources", nargs="+", help="NetCDF files or Zarr stores (merged by variable name)")
    p.add_argument("--out", required=True, help="output folder (created; resumed when it holds this conversion)")
    p.add_argument("--variables", help="comma-separated WeatherBench2 names (default: GraphCast's, those present)")
    p.add_argument("--levels", help="comma-separated pressure levels in hPa (default: all the sources share)")
    p.add_argument("--start", help="first time, e.g. 2016-01-01 (default: the sources' first)")
    p.add_argument("--end", help="last time, inclusive, e.g. 2016-12-31T18 (default: the sources' last)")
    p.add_argument("--coarsen", type=int, default=1, help="integer coarsening factor of the grid (default 1)")
    p.add_argument("--resolution", type=float, help="output resolution in degrees (a whole multiple of the source's)")
    p.add_argument("--coarsen-method", choices=("subsample", "mean"), default="subsample",
                   help="subsample keeps every Nth row/column (and the poles); mean averages N x N cells "
                        "(grids without pole rows)")
    p.add_argument("--allow-fine", action="store_true", help="allow outputs finer than 1 deg")
    p.add_argument("--dtype", choices=("f32", "bf16"), default="f32", help="value type on disk (default f32)")
    p.add_argument("--chunk-times", type=int,
                   help="times per chunk file (default: up to 64, fewer when a chunk would pass 256 MiB in f64)")
    p.add_argument("--stats-start", help="first time of the statistics (default: --start)")
    p.add_argument("--stats-end", help="last time of the statistics (default: --end)")
    p.add_argument("--stats-from", help="folder of DeepMind's statistics (*_by_level.nc) to use instead")
    p.add_argument("--ignore-units", action="store_true", help="accept units other than ERA5's as they are")
    p.add_argument("--overwrite", action="store_true", help="convert again into a folder that holds a conversion")
    args = p.parse_args(argv)
    if args.chunk_times is not None and args.chunk_times < 1:
        p.error("--chunk-times must be at least 1")
    if args.coarsen < 1:
        p.error("--coarsen must be at least 1")
    try:
        convert(args)
    except ConversionError as error:
        print("convert: %s" % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convert: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
