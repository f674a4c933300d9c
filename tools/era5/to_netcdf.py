#!/usr/bin/env python3
"""Converts a gc forecast (safetensors, as ./gc_forecast --out writes it) to NetCDF.

    python3 tools/era5/to_netcdf.py FORECAST.safetensors OUT.nc [--inputs INPUTS.npz | --data DIR --init-time T]

The NetCDF file has WeatherBench2's forecast layout: dims (time, prediction_timedelta, level,
latitude, longitude) with `time` the initialisation time (one), `prediction_timedelta` 6 h,
12 h, ..., variables under their WeatherBench2 names with units, so WeatherBench2's
evaluation and the usual NetCDF tools read it. The grid and the initialisation time come
from the file's metadata (gc.latitudes, gc.longitudes, gc.init_seconds) when gc_forecast
wrote them, else from the forecast's inputs (--inputs, DeepMind's layout: lat, lon,
datetime) or a gc data set (--data DIR, with --init-time).
Needs numpy, xarray and netCDF4; the safetensors file is read with numpy alone.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

UNITS = {
    "geopotential": "m**2 s**-2", "temperature": "K", "u_component_of_wind": "m s**-1",
    "v_component_of_wind": "m s**-1", "vertical_velocity": "Pa s**-1", "specific_humidity": "kg kg**-1",
    "2m_temperature": "K", "10m_u_component_of_wind": "m s**-1", "10m_v_component_of_wind": "m s**-1",
    "mean_sea_level_pressure": "Pa", "total_precipitation_6hr": "m",
}
DTYPES = {"F32": "<f4", "F64": "<f8", "BF16": None, "F16": "<f2", "I32": "<i4", "I64": "<i8"}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: too short for safetensors" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError("%s: header length %d past the end of the file" % (path, n))
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = info["dtype"]
        data = raw[base + begin:base + end]
        if dtype == "BF16":
            x = (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in DTYPES:
            x = np.frombuffer(data, DTYPES[dtype])
        else:
            raise ValueError("%s: tensor %s has dtype %s" % (path, name, dtype))
        tensors[name] = x.reshape(info["shape"])
    return tensors, metadata


def main():
    p = argparse.ArgumentParser(description="Convert a gc forecast (safetensors) to NetCDF (WeatherBench2's layout).")
    p.add_argument("forecast")
    p.add_argument("out")
    p.add_argument("--inputs", help="the forecast's inputs (.npz in DeepMind's layout: lat, lon, datetime)")
    p.add_argument("--data", help="a gc data set (dataset.json) giving the grid")
    p.add_argument("--init-time", help="initialisation time, e.g. 2016-01-01T06 (with --data)")
    args = p.parse_args()
    try:
        import xarray as xr
    except ImportError:
        sys.exit("to_netcdf.py needs xarray and netCDF4 (Debian: apt-get install python3-xarray python3-netcdf4)")
    try:
        tensors, meta = read_safetensors(args.forecast)
    except (OSError, ValueError, KeyError) as error:
        print("to_netcdf: %s" % error, file=sys.stderr)
        return 2
    lat = lon = init = None
    if "gc.latitudes" in meta:
        lat = np.array([float(x) for x in meta["gc.latitudes"].split(",")])
        lon = np.array([float(x) for x in meta["gc.longitudes"].split(",")])
        init = np.datetime64(int(meta["gc.init_seconds"]), "s")
    elif args.inputs:
        z = np.load(args.inputs)
        lat, lon = z["lat"].astype(np.float64), z["lon"].astype(np.float64)
        init = np.datetime64(int(np.asarray(z["datetime"]).reshape(-1)[-1]), "s")
    elif args.data:
        d = json.load(open(os.path.join(args.data, "dataset.json")))
        lat, lon = np.array(d["grid"]["latitudes"]), np.array(d["grid"]["longitudes"])
        if not args.init_time:
            print("to_netcdf: --data needs --init-time", file=sys.stderr)
            return 2
        init = np.datetime64(args.init_time, "s")
    else:
        print("to_netcdf: %s has no grid in its metadata: give --inputs or --data" % args.forecast, file=sys.stderr)
        return 2
    levels = [int(x) for x in meta.get("gc.levels", "").split(",") if x]
    data = {}
    steps = None
    for name, x in tensors.items():
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 4:
            if x.shape[1] != len(levels):
                print("to_netcdf: %s has %d levels, the metadata %d" % (name, x.shape[1], len(levels)), file=sys.stderr)
                return 2
            dims = ("time", "prediction_timedelta", "level", "latitude", "longitude")
        elif x.ndim == 3:
            dims = ("time", "prediction_timedelta", "latitude", "longitude")
        else:
            print("to_netcdf: %s has shape %s; expected [steps, (levels,) lat, lon]" % (name, list(x.shape)),
                  file=sys.stderr)
            return 2
        if x.shape[-2:] != (len(lat), len(lon)):
            print("to_netcdf: %s is %s, the grid %d x %d" % (name, list(x.shape), len(lat), len(lon)), file=sys.stderr)
            return 2
        steps = x.shape[0]
        data[name] = xr.DataArray(x[None], dims=dims, attrs={"units": UNITS.get(name, "")})
    coords = {"time": np.array([init]).astype("datetime64[ns]"),
              "prediction_timedelta": (np.arange(1, (steps or 0) + 1) * np.timedelta64(6, "h")).astype("timedelta64[ns]"),
              "latitude": lat, "longitude": lon}
    if levels:
        coords["level"] = np.array(levels, dtype=np.int32)
    ds = xr.Dataset(data, coords=coords, attrs={"source": "gc forecast " + os.path.basename(args.forecast)})
    ds.to_netcdf(args.out)
    print("to_netcdf: wrote %s (%d variables, %d lead times)" % (args.out, len(data), steps or 0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
