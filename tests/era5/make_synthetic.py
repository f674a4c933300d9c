#!/usr/bin/env python3
"""Writes a tiny ERA5-like NetCDF in WeatherBench2's layout, with a known pattern.

    python3 tests/era5/make_synthetic.py OUT.nc [--times N] [--start 2015-12-27T00]

10 deg grid with both poles, latitudes south to north (as WeatherBench2's coarse data sets
store them, so the converter must flip them), longitudes -180..170 (so it must roll them),
4 pressure levels (the test converts 3 of them), N 6-hourly times. Every value is
    base + amplitude * (cos(lat) * cos(lon - 2 pi t / 5 days) + level / 1000) + noise
with noise from a fixed seed, so the file is the same on every run. Variables: geopotential,
temperature, u_component_of_wind (on levels), 2m_temperature, 10m_u_component_of_wind,
mean_sea_level_pressure, and the static geopotential_at_surface and land_sea_mask.
"""
import argparse

import numpy as np
import xarray as xr

ATMOSPHERIC = {"geopotential": (5.4e4, 3000.0, "m**2 s**-2"), "temperature": (250.0, 20.0, "K"),
               "u_component_of_wind": (5.0, 10.0, "m s**-1")}
SURFACE = {"2m_temperature": (280.0, 15.0, "K"), "10m_u_component_of_wind": (1.0, 5.0, "m s**-1"),
           "mean_sea_level_pressure": (1.01e5, 1000.0, "Pa")}
LEVELS = [250, 500, 850, 1000]


def pattern(base, amplitude, t_hours, lat, lon, level, rng):
    phase = np.deg2rad(lon)[None, None, :] - 2 * np.pi * t_hours[:, None, None] / 120.0
    x = np.cos(np.deg2rad(lat))[None, :, None] * np.cos(phase) + level / 1000.0
    return (base + amplitude * x + 0.01 * amplitude * rng.standard_normal(x.shape)).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--times", type=int, default=40)
    p.add_argument("--start", default="2015-12-27T00")
    p.add_argument("--resolution", type=float, default=10.0, help="grid spacing in degrees (default 10)")
    p.add_argument("--no-poles", action="store_true", help="latitudes half a spacing from the poles (WeatherBench2's 64 x 32)")
    p.add_argument("--levels", help="comma-separated pressure levels (default 250,500,850,1000)")
    p.add_argument("--precipitation", action="store_true", help="also total_precipitation_6hr (a target only)")
    p.add_argument("--full", action="store_true",
                   help="all of GraphCast's variables (v, w, q, 10 m v wind, precipitation, TOA radiation too)")
    args = p.parse_args()
    global LEVELS
    if args.levels:
        LEVELS = [int(x) for x in args.levels.split(",")]
    if args.full:
        ATMOSPHERIC.update({"v_component_of_wind": (0.0, 8.0, "m s**-1"), "vertical_velocity": (0.0, 0.2, "Pa s**-1"),
                            "specific_humidity": (5e-3, 3e-3, "kg kg**-1")})
        SURFACE.update({"10m_v_component_of_wind": (0.0, 5.0, "m s**-1"), "total_precipitation_6hr": (1e-3, 5e-4, "m"),
                        "toa_incident_solar_radiation": (1.0e6, 1.0e6, "J m**-2")})
    if args.precipitation:
        SURFACE["total_precipitation_6hr"] = (1e-3, 5e-4, "m")
    rng = np.random.default_rng(17)
    r = args.resolution
    lat = np.arange(-90.0 + r / 2, 90.0, r) if args.no_poles else np.arange(-90.0, 90.0 + r / 2, r)
    lon = np.arange(-180.0, 180.0, r)
    times = np.datetime64(args.start, "s") + np.arange(args.times) * np.timedelta64(6, "h")
    t_hours = np.arange(args.times) * 6.0
    data = {}
    for name, (base, amp, units) in ATMOSPHERIC.items():
        x = np.stack([pattern(base, amp, t_hours, lat, lon, l, rng) for l in LEVELS], axis=1)
        data[name] = xr.DataArray(x, dims=("time", "level", "latitude", "longitude"), attrs={"units": units})
    for name, (base, amp, units) in SURFACE.items():
        data[name] = xr.DataArray(pattern(base, amp, t_hours, lat, lon, 0.0, rng),
                                  dims=("time", "latitude", "longitude"), attrs={"units": units})
    data["geopotential_at_surface"] = xr.DataArray(
        (1000.0 * rng.random((lat.size, lon.size))).astype(np.float32), dims=("latitude", "longitude"),
        attrs={"units": "m**2 s**-2"})
    data["land_sea_mask"] = xr.DataArray(
        (rng.random((lat.size, lon.size)) > 0.7).astype(np.float32), dims=("latitude", "longitude"),
        attrs={"units": "1"})
    ds = xr.Dataset(data, coords={"time": times.astype("datetime64[ns]"), "level": np.array(LEVELS, np.int32),
                                  "latitude": lat, "longitude": lon})
    ds.to_netcdf(args.out)


if __name__ == "__main__":
    main()
